//! The file server's pure rules, spec `attachments.md` §4: content-hash
//! file IDs (§4.3), `X-FS-TTL` and the default lifetime (§4.4), body limits
//! (§4.5), and file URLs with their fragment flags (§4.6).

use std::fmt;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use umbra_crypto::hash::{Blake2bParams, blake2b};

use super::AttachmentError;

/// Length of a file ID.
pub const FILE_ID_LEN: usize = 44;
/// Default lifetime of an upload, in seconds (14 days).
pub const DEFAULT_TTL_SECS: u64 = 14 * 24 * 3600;
/// Smallest accepted `X-FS-TTL`.
pub const MIN_TTL_SECS: u64 = 60;
/// Largest accepted `X-FS-TTL` (30 days).
pub const MAX_TTL_SECS: u64 = 30 * 24 * 3600;
/// Largest file body.
pub const MAX_FILE_BODY: usize = 10_000_000;
/// Largest HTTP request carrying an encrypted v4 request (10 MiB).
pub const MAX_REQUEST_BODY: usize = 10_485_760;
/// The TTL header.
pub const TTL_HEADER: &str = "X-FS-TTL";
/// Where hop 3 forwards v4 requests.
pub const LSRPC_TARGET: &str = "/oxen/v4/lsrpc";
/// Session's deprecated integer IDs are below this.
pub const MAX_NUMERIC_ID: u64 = 1 << 53;

const FILE_ID_SALT: &[u8; 16] = b"SessionFileSvr\0\0";

/// `base64url(BLAKE2b-33(data, salt = "SessionFileSvr\0\0"))`, 44 chars.
pub fn file_id(data: &[u8]) -> String {
    let h = blake2b(
        data,
        33,
        Blake2bParams {
            salt: FILE_ID_SALT,
            ..Blake2bParams::default()
        },
    )
    // 33 bytes and a 16-byte salt are valid parameters; the empty vector
    // fallback is unreachable and would produce an invalid (empty) ID.
    .unwrap_or_default();
    URL_SAFE_NO_PAD.encode(h)
}

/// Whether `s` has the shape of a file ID Umbra's server issues: 44
/// base64url characters.
pub fn is_file_id(s: &str) -> bool {
    s.len() == FILE_ID_LEN
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// Whether `s` is a Session-era numeric ID (decimal, below 2^53).
pub fn numeric_id(s: &str) -> Option<u64> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) || s.len() > 16 {
        return None;
    }
    s.parse::<u64>().ok().filter(|&n| n < MAX_NUMERIC_ID)
}

/// Parses `X-FS-TTL`: a decimal number of seconds in 60 … 2,592,000; a
/// fraction is allowed and cut off.
pub fn parse_ttl(value: &str) -> Result<u64, AttachmentError> {
    let bad = || AttachmentError::BadTtl(value.chars().take(40).collect());
    let (int, frac) = value.split_once('.').unwrap_or((value, ""));
    if int.is_empty()
        || int.len() > 12
        || !int.bytes().all(|b| b.is_ascii_digit())
        || !frac.bytes().all(|b| b.is_ascii_digit())
        || (value.contains('.') && frac.is_empty())
    {
        return Err(bad());
    }
    let secs: u64 = int.parse().map_err(|_| bad())?;
    let has_fraction = frac.bytes().any(|b| b != b'0');
    if !(MIN_TTL_SECS..=MAX_TTL_SECS).contains(&secs) || (secs == MAX_TTL_SECS && has_fraction) {
        return Err(bad());
    }
    Ok(secs)
}

/// A file URL (§4.6): `<protocol>://<host>[:<port>]/file/<id>[#<fragment>]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileUrl {
    /// `http` or `https`.
    pub https: bool,
    /// Host name or IP literal.
    pub host: String,
    /// Explicit port (`None`: the protocol's default).
    pub port: Option<u16>,
    /// The file ID (44 characters, or a Session numeric ID).
    pub id: String,
    /// `p=`: the server's Ed25519 key.
    pub server_key: Option<[u8; 32]>,
    /// `d`: deterministic encryption.
    pub deterministic: bool,
    /// `m`: Umbra chunk manifest.
    pub manifest: bool,
}

impl FileUrl {
    /// The port hop 3 connects to.
    pub fn effective_port(&self) -> u16 {
        self.port.unwrap_or(if self.https { 443 } else { 80 })
    }

    /// The pointer's `deprecated_id`: the ID if numeric, else 0.
    pub fn deprecated_id(&self) -> u64 {
        numeric_id(&self.id).unwrap_or(0)
    }

    /// Parses a URL. Accepts `/file/<id>` and the legacy `/files/<id>`,
    /// `d`/`d=`/`m`/`m=` flags, `p=<64 hex>`; ignores unknown entries.
    pub fn parse(url: &str) -> Result<Self, AttachmentError> {
        let bad = |why: &str| AttachmentError::BadUrl(why.to_string());
        let (https, rest) = if let Some(r) = url.strip_prefix("https://") {
            (true, r)
        } else if let Some(r) = url.strip_prefix("http://") {
            (false, r)
        } else {
            return Err(bad("protocol must be http or https"));
        };
        let (rest, fragment) = rest.split_once('#').unwrap_or((rest, ""));
        let (authority, path) = rest.split_once('/').ok_or_else(|| bad("no path"))?;
        let (host, port) = match authority.rsplit_once(':') {
            Some((h, p)) => (h, Some(p.parse::<u16>().map_err(|_| bad("invalid port"))?)),
            None => (authority, None),
        };
        if host.is_empty()
            || !host
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-')
        {
            return Err(bad("invalid host"));
        }
        let id = path
            .strip_prefix("file/")
            .or_else(|| path.strip_prefix("files/"))
            .ok_or_else(|| bad("path must be /file/<id>"))?;
        let id = id.split_once('?').map_or(id, |(i, _)| i);
        if !is_file_id(id) && numeric_id(id).is_none() {
            return Err(bad("invalid file id"));
        }
        let mut out = FileUrl {
            https,
            host: host.to_string(),
            port,
            id: id.to_string(),
            server_key: None,
            deterministic: false,
            manifest: false,
        };
        for entry in fragment.split('&').filter(|e| !e.is_empty()) {
            let (k, v) = entry.split_once('=').unwrap_or((entry, ""));
            match k {
                "d" => out.deterministic = true,
                "m" => out.manifest = true,
                "p" => {
                    let key = hex::decode(v).map_err(|_| bad("p is not hex"))?;
                    out.server_key = Some(
                        key.try_into()
                            .map_err(|_| bad("p must be a 32-byte Ed25519 key"))?,
                    );
                }
                _ => {}
            }
        }
        Ok(out)
    }
}

impl fmt::Display for FileUrl {
    /// Writes bare flags (`d`, `m`) and `p=<hex>` when a key is set.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}://{}",
            if self.https { "https" } else { "http" },
            self.host
        )?;
        if let Some(p) = self.port {
            let default = if self.https { 443 } else { 80 };
            if p != default {
                write!(f, ":{p}")?;
            }
        }
        write!(f, "/file/{}", self.id)?;
        let mut entries = Vec::new();
        if let Some(k) = &self.server_key {
            entries.push(format!("p={}", hex::encode(k)));
        }
        if self.deterministic {
            entries.push("d".to_string());
        }
        if self.manifest {
            entries.push("m".to_string());
        }
        if !entries.is_empty() {
            write!(f, "#{}", entries.join("&"))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn ids() {
        let id = file_id(b"hello");
        assert_eq!(id.len(), FILE_ID_LEN);
        assert!(is_file_id(&id));
        assert_eq!(id, file_id(b"hello"));
        assert_ne!(id, file_id(b"hello!"));
        assert!(!is_file_id("short"));
        assert_eq!(numeric_id("12345"), Some(12345));
        assert_eq!(numeric_id("9007199254740992"), None);
    }

    #[test]
    fn ttl() {
        assert_eq!(parse_ttl("60").unwrap(), 60);
        assert_eq!(parse_ttl("3600.5").unwrap(), 3600);
        assert_eq!(parse_ttl("2592000").unwrap(), 2_592_000);
        for bad in [
            "59",
            "2592001",
            "2592000.5",
            "",
            "-60",
            "1e5",
            "60.",
            " 60",
            "abc",
        ] {
            assert!(
                matches!(parse_ttl(bad), Err(AttachmentError::BadTtl(_))),
                "{bad}"
            );
        }
    }

    #[test]
    fn urls() {
        let id = file_id(b"x");
        let u = FileUrl::parse(&format!(
            "http://127.0.0.1:8080/file/{id}#m&p={}",
            "ab".repeat(32)
        ))
        .unwrap();
        assert!(u.manifest && !u.deterministic && !u.https);
        assert_eq!(u.port, Some(8080));
        assert_eq!(u.server_key, Some([0xab; 32]));
        assert_eq!(FileUrl::parse(&u.to_string()).unwrap(), u);
        let u = FileUrl::parse("https://filev2.getsession.org/files/12345#d=&zz=1").unwrap();
        assert!(u.deterministic);
        assert_eq!(u.deprecated_id(), 12345);
        assert_eq!(u.effective_port(), 443);
        assert_eq!(u.to_string(), "https://filev2.getsession.org/file/12345#d");
        for bad in [
            "ftp://a/file/1",
            "http://a/x/1",
            "http://a/file/",
            "http://a:99999/file/1",
            "http://a/file/1#p=zz",
        ] {
            assert!(
                matches!(FileUrl::parse(bad), Err(AttachmentError::BadUrl(_))),
                "{bad}"
            );
        }
    }

    proptest! {
        #[test]
        fn url_round_trip(data: Vec<u8>, https: bool, port: Option<u16>, key: Option<[u8; 32]>, d: bool, m: bool,
                          host in "[a-z][a-z0-9.-]{0,20}") {
            let u = FileUrl { https, host, port: port.filter(|&p| p != if https { 443 } else { 80 }),
                              id: file_id(&data), server_key: key, deterministic: d, manifest: m };
            prop_assert_eq!(FileUrl::parse(&u.to_string()).unwrap(), u);
        }
    }
}
