//! Attachment files kept in the profile (`<profile>/attachments/`), always
//! encrypted at rest.
//!
//! A file is a header and a sequence of segments of [`SEGMENT`] plaintext
//! bytes (the last may be shorter), each sealed with XChaCha20-Poly1305
//! under a per-file key derived from the profile's local key (the store's
//! keyed index of the file's random name, so nothing extra is stored). The
//! nonce is the segment index and the associated data binds the header
//! (total size) and the index, so segments cannot be reordered, dropped or
//! moved between files unnoticed.
//!
//! Files are written to `<name>.part` and renamed only once complete
//! ([`LocalWriter::finish`]); a writer dropped unfinished deletes its part
//! file. Exports to a user's path follow the same rule: a temporary file
//! next to the target, renamed after every segment opened.

use std::fs::File;
use std::io::{BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use umbra_crypto::aead::{TAG_LEN, xchacha20_decrypt, xchacha20_encrypt};
use zeroize::Zeroizing;

use super::AttachError;
use crate::store::LocalStore;

/// Plaintext bytes per segment (the chunk size, so a downloaded chunk is
/// one segment).
pub const SEGMENT: usize = umbra_proto::attachment::chunked::CHUNK_SIZE;
const MAGIC: &[u8; 8] = b"UMBRAATT";
const HEADER_LEN: usize = 8 + 4 + 8 + 4;
const DIR: &str = "attachments";

fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> AttachError {
    let what = what.into();
    move |source| AttachError::Io { what, source }
}

/// The directory of a profile's attachment files.
pub fn dir(profile_dir: &Path) -> PathBuf {
    profile_dir.join(DIR)
}

fn file_key(store: &LocalStore, name: &str) -> Zeroizing<[u8; 32]> {
    Zeroizing::new(
        store
            .crypt()
            .index("umbra attachment file key", name.as_bytes()),
    )
}

fn header(total: u64) -> [u8; HEADER_LEN] {
    let mut h = [0u8; HEADER_LEN];
    h[..8].copy_from_slice(MAGIC);
    h[8..12].copy_from_slice(&1u32.to_le_bytes());
    h[12..20].copy_from_slice(&total.to_le_bytes());
    h[20..24].copy_from_slice(&(SEGMENT as u32).to_le_bytes());
    h
}

fn nonce(i: u64) -> [u8; 24] {
    let mut n = [0u8; 24];
    n[..8].copy_from_slice(&i.to_le_bytes());
    n
}

fn aad(header: &[u8; HEADER_LEN], i: u64) -> Vec<u8> {
    let mut a = header.to_vec();
    a.extend_from_slice(&i.to_le_bytes());
    a
}

fn segments(total: u64) -> u64 {
    total.div_ceil(SEGMENT as u64).max(1)
}

/// Writes one encrypted file, segment by segment, in order.
pub struct LocalWriter {
    name: String,
    part: PathBuf,
    final_path: PathBuf,
    out: Option<BufWriter<File>>,
    key: Zeroizing<[u8; 32]>,
    header: [u8; HEADER_LEN],
    total: u64,
    next: u64,
    written: u64,
}

impl LocalWriter {
    /// Starts a new file of `total` plaintext bytes in the profile.
    pub fn create(
        profile_dir: &Path,
        store: &LocalStore,
        total: u64,
    ) -> Result<LocalWriter, AttachError> {
        let d = dir(profile_dir);
        std::fs::create_dir_all(&d).map_err(io(format!("creating {}", d.display())))?;
        let name = hex::encode(umbra_crypto::random_bytes::<16>());
        let part = d.join(format!("{name}.part"));
        let final_path = d.join(format!("{name}.enc"));
        let f = File::create(&part).map_err(io("creating the attachment file"))?;
        let mut out = BufWriter::with_capacity(1 << 16, f);
        let h = header(total);
        out.write_all(&h)
            .map_err(io("writing the attachment file"))?;
        Ok(LocalWriter {
            key: file_key(store, &name),
            name,
            part,
            final_path,
            out: Some(out),
            header: h,
            total,
            next: 0,
            written: 0,
        })
    }

    /// Appends the next segment: exactly [`SEGMENT`] bytes, except the
    /// last, which holds the rest.
    pub fn write_segment(&mut self, plain: &[u8]) -> Result<(), AttachError> {
        let remaining = self.total - self.written;
        let expected = remaining.min(SEGMENT as u64) as usize;
        if plain.len() != expected || self.next >= segments(self.total) {
            return Err(AttachError::Invalid(format!(
                "local segment {} has {} bytes, expected {expected}",
                self.next,
                plain.len()
            )));
        }
        let ct = xchacha20_encrypt(
            &self.key,
            &nonce(self.next),
            plain,
            &aad(&self.header, self.next),
        );
        let out = self
            .out
            .as_mut()
            .ok_or_else(|| AttachError::Invalid("attachment file already closed".into()))?;
        out.write_all(&ct)
            .map_err(io("writing the attachment file"))?;
        self.next += 1;
        self.written += plain.len() as u64;
        Ok(())
    }

    /// Closes the file once every segment is written and gives its name.
    pub fn finish(mut self) -> Result<String, AttachError> {
        if self.total == 0 && self.next == 0 {
            self.write_segment(&[])?;
        }
        if self.written != self.total || self.next != segments(self.total) {
            return Err(AttachError::Invalid(format!(
                "attachment file incomplete: {} of {} bytes",
                self.written, self.total
            )));
        }
        let out = self
            .out
            .take()
            .ok_or_else(|| AttachError::Invalid("attachment file already closed".into()))?;
        let f = out.into_inner().map_err(|e| AttachError::Io {
            what: "writing the attachment file".into(),
            source: e.into_error(),
        })?;
        f.sync_all().map_err(io("syncing the attachment file"))?;
        std::fs::rename(&self.part, &self.final_path)
            .map_err(io("renaming the attachment file"))?;
        Ok(std::mem::take(&mut self.name))
    }
}

impl Drop for LocalWriter {
    fn drop(&mut self) {
        if self.out.take().is_some() {
            let _ = std::fs::remove_file(&self.part);
        }
    }
}

/// Checks a local file name (as recorded) before it becomes a path.
fn checked_path(profile_dir: &Path, name: &str) -> Result<PathBuf, AttachError> {
    if name.len() != 32 || !name.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(AttachError::Invalid(format!(
            "bad local attachment name {name:?}"
        )));
    }
    Ok(dir(profile_dir).join(format!("{name}.enc")))
}

/// Decrypts local file `name`, handing each plaintext segment to `sink`.
/// Returns the plaintext size.
pub fn read(
    profile_dir: &Path,
    store: &LocalStore,
    name: &str,
    mut sink: impl FnMut(&[u8]) -> Result<(), AttachError>,
) -> Result<u64, AttachError> {
    let path = checked_path(profile_dir, name)?;
    let f = File::open(&path).map_err(io(format!("opening {}", path.display())))?;
    let mut r = BufReader::with_capacity(1 << 16, f);
    let mut h = [0u8; HEADER_LEN];
    let corrupt = |why: &str| AttachError::LocalCorrupt(format!("{name}: {why}"));
    r.read_exact(&mut h).map_err(|_| corrupt("no header"))?;
    let total = u64::from_le_bytes(h[12..20].try_into().unwrap_or_default());
    if h != header(total) {
        return Err(corrupt("bad header"));
    }
    let key = file_key(store, name);
    let count = segments(total);
    let mut buf = vec![0u8; SEGMENT + TAG_LEN];
    let mut left = total;
    for i in 0..count {
        let len = left.min(SEGMENT as u64) as usize + TAG_LEN;
        r.read_exact(&mut buf[..len])
            .map_err(|_| corrupt(&format!("segment {i} truncated")))?;
        let plain = Zeroizing::new(
            xchacha20_decrypt(&key, &nonce(i), &buf[..len], &aad(&h, i))
                .map_err(|_| corrupt(&format!("segment {i} does not authenticate")))?,
        );
        sink(&plain)?;
        left -= (len - TAG_LEN) as u64;
    }
    let mut extra = [0u8; 1];
    if r.read(&mut extra)
        .map_err(io("reading the attachment file"))?
        != 0
    {
        return Err(corrupt("bytes after the last segment"));
    }
    Ok(total)
}

/// Decrypts local file `name` into `out`: written to a temporary file next
/// to `out` and renamed only once every segment authenticated; on any
/// error the temporary file is removed and `out` is untouched.
pub fn export(
    profile_dir: &Path,
    store: &LocalStore,
    name: &str,
    out: &Path,
) -> Result<u64, AttachError> {
    let parent = match out.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let tmp = parent.join(format!(
        ".umbra-download-{}.part",
        hex::encode(umbra_crypto::random_bytes::<8>())
    ));
    let result = (|| {
        let f = File::create(&tmp).map_err(io(format!("creating {}", tmp.display())))?;
        let mut w = BufWriter::with_capacity(1 << 16, f);
        let n = read(profile_dir, store, name, |seg| {
            w.write_all(seg)
                .map_err(io(format!("writing {}", tmp.display())))
        })?;
        let f = w.into_inner().map_err(|e| AttachError::Io {
            what: format!("writing {}", tmp.display()),
            source: e.into_error(),
        })?;
        f.sync_all()
            .map_err(io(format!("syncing {}", tmp.display())))?;
        std::fs::rename(&tmp, out).map_err(io(format!("renaming to {}", out.display())))?;
        Ok(n)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// Removes local file `name` (missing is fine).
pub fn remove(profile_dir: &Path, name: &str) -> Result<(), AttachError> {
    let path = checked_path(profile_dir, name)?;
    match std::fs::remove_file(&path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(AttachError::Io {
            what: format!("removing {}", path.display()),
            source: e,
        }),
        _ => Ok(()),
    }
}
