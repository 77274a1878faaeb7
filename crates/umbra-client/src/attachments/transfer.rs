//! Moving encrypted blobs to and from a file server through onion paths
//! (`attachments.md` §4, §5.5, §5.6): v4 lsrpc requests over
//! [`Network::server_request`], chunk uploads at most 3 at a time with
//! independent retries, and downloads that verify every chunk before its
//! plaintext is written (to the profile's encrypted store only).

use std::collections::BTreeMap;
use std::time::Duration;

use futures::StreamExt;
use serde::{Deserialize, Serialize};
use umbra_crypto::Ed25519Public;
use umbra_proto::attachment::chunked::{
    self, CHUNK_SIZE, CHUNK_TRIES, ChunkManifest, ManifestChunk, PARALLEL_CHUNKS, STORED_CHUNK_SIZE,
};
use umbra_proto::attachment::server::{FileUrl, LSRPC_TARGET, MAX_FILE_BODY, TTL_HEADER, file_id};
use umbra_proto::attachment::{deterministic, legacy};
use umbra_proto::onion::{Protocol, ServerTarget, V4Request, V4Response};

use super::local::LocalWriter;
use super::{AttachError, Progress};
use crate::net::Network;

/// How long one try of a file request may take (a 2 MB chunk through
/// three hops and a proxy, on a busy machine).
pub const FILE_REQUEST_TIMEOUT: Duration = Duration::from_secs(60);

/// A file server clients know (`attachments.md` §4.1): where hop 3 sends
/// the request and the Ed25519 key its layer is encrypted to. Its JSON is
/// that of the network configuration's `file_server` entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileServer {
    /// Host name or IPv4 literal.
    pub host: String,
    /// TCP port.
    pub port: u16,
    /// `http` or `https` (what hop 3 uses).
    pub protocol: String,
    /// The server's Ed25519 key, hex.
    pub pubkey_ed25519: String,
}

impl From<&umbra_proto::network::NetworkFileServer> for FileServer {
    fn from(s: &umbra_proto::network::NetworkFileServer) -> Self {
        FileServer {
            host: s.host.clone(),
            port: s.port,
            protocol: s.protocol.as_str().into(),
            pubkey_ed25519: s.pubkey_ed25519.to_string(),
        }
    }
}

impl FileServer {
    /// The server's Ed25519 key.
    pub fn key(&self) -> Result<[u8; 32], AttachError> {
        let mut k = [0u8; 32];
        hex::decode_to_slice(&self.pubkey_ed25519, &mut k)
            .map_err(|_| AttachError::NoFileServer("its key is not 64 hex digits".into()))?;
        Ok(k)
    }

    fn https(&self) -> bool {
        self.protocol == "https"
    }

    /// The onion destination.
    pub fn target(&self) -> Result<ServerTarget, AttachError> {
        let x25519 = Ed25519Public::from_bytes(self.key()?)
            .to_x25519()
            .map_err(|e| AttachError::NoFileServer(format!("bad server key: {e}")))?;
        let protocol = match self.protocol.as_str() {
            "http" => Protocol::Http,
            "https" => Protocol::Https,
            p => return Err(AttachError::NoFileServer(format!("unknown protocol {p:?}"))),
        };
        Ok(ServerTarget {
            host: self.host.clone(),
            target: LSRPC_TARGET.into(),
            protocol,
            port: self.port,
            x25519,
        })
    }

    /// The URL of file `id` on this server (`p=` only when `with_key`).
    pub fn url(&self, id: &str, with_key: bool, manifest: bool) -> Result<FileUrl, AttachError> {
        Ok(FileUrl {
            https: self.https(),
            host: self.host.clone(),
            port: Some(self.port),
            id: id.to_string(),
            server_key: if with_key { Some(self.key()?) } else { None },
            deterministic: false,
            manifest,
        })
    }

    /// Whether `url` points at this server.
    pub fn serves(&self, url: &FileUrl) -> bool {
        url.https == self.https() && url.host == self.host && url.effective_port() == self.port
    }

    /// The server a URL names: its `p=` key, else this (default) server.
    pub fn for_url(default: Option<&FileServer>, url: &FileUrl) -> Result<FileServer, AttachError> {
        if let Some(k) = url.server_key {
            return Ok(FileServer {
                host: url.host.clone(),
                port: url.effective_port(),
                protocol: if url.https { "https" } else { "http" }.into(),
                pubkey_ed25519: hex::encode(k),
            });
        }
        match default {
            Some(d) if d.serves(url) => Ok(d.clone()),
            _ => Err(AttachError::UnknownServer(format!(
                "{}:{} (no p= key in the URL and not the configured file server)",
                url.host,
                url.effective_port()
            ))),
        }
    }
}

/// Names the piece a request is for in errors: `"chunk 3"`, `"manifest"`, …
type What<'a> = &'a str;

async fn v4(
    net: &Network,
    server: &FileServer,
    what: What<'_>,
    req: V4Request,
) -> Result<V4Response, AttachError> {
    let payload = req
        .encode()
        .map_err(|e| AttachError::Invalid(format!("{what}: {e}")))?;
    drop(req);
    net.server_request(&server.target()?, &payload, FILE_REQUEST_TIMEOUT)
        .await
        .map_err(|source| AttachError::Net {
            what: what.to_string(),
            source,
        })
}

fn server_error(what: What<'_>, r: &V4Response) -> AttachError {
    let reason = match r.code {
        400 => "bad request",
        404 => "missing or expired on the file server",
        413 => "refused as empty or oversized",
        429 => "rate limited",
        507 => "the file server is full",
        _ => "refused",
    };
    AttachError::Server {
        what: what.to_string(),
        status: r.code,
        reason: reason.into(),
    }
}

/// Uploads one blob (`POST /file`), once. Checks the returned ID is the
/// content hash of what was sent.
pub async fn upload_once(
    net: &Network,
    server: &FileServer,
    what: What<'_>,
    blob: &[u8],
    ttl_secs: Option<u64>,
) -> Result<String, AttachError> {
    let mut headers = BTreeMap::new();
    headers.insert("Content-Type".into(), "application/octet-stream".into());
    headers.insert("Content-Disposition".into(), "attachment".into());
    if let Some(t) = ttl_secs {
        headers.insert(TTL_HEADER.into(), t.to_string());
    }
    let r = v4(
        net,
        server,
        what,
        V4Request {
            method: "POST".into(),
            endpoint: "/file".into(),
            headers,
            body: Some(blob.to_vec()),
        },
    )
    .await?;
    if r.code != 200 {
        return Err(server_error(what, &r));
    }
    let id = serde_json::from_slice::<serde_json::Value>(&r.body)
        .ok()
        .and_then(|v| v["id"].as_str().map(str::to_string))
        .ok_or_else(|| AttachError::Invalid(format!("{what}: upload reply has no id")))?;
    if id != file_id(blob) {
        return Err(AttachError::Invalid(format!(
            "{what}: the server's id is not the content hash of the upload"
        )));
    }
    Ok(id)
}

/// [`upload_once`] with up to [`CHUNK_TRIES`] tries (§5.5); refusals
/// (`4xx`) are not retried.
pub async fn upload(
    net: &Network,
    server: &FileServer,
    what: What<'_>,
    blob: &[u8],
    ttl_secs: Option<u64>,
) -> Result<String, AttachError> {
    let mut last = None;
    for attempt in 0..CHUNK_TRIES {
        match upload_once(net, server, what, blob, ttl_secs).await {
            Ok(id) => return Ok(id),
            Err(e @ AttachError::Server { status, .. }) if (400..500).contains(&status) => {
                return Err(e);
            }
            Err(e) => {
                tracing::debug!(%what, attempt, error = %e, "upload try failed");
                last = Some(e);
            }
        }
    }
    Err(last.unwrap_or_else(|| AttachError::Invalid(format!("{what}: not uploaded"))))
}

/// Downloads one file (`GET /file/{id}`), with up to [`CHUNK_TRIES`]
/// tries for network failures. A `404` is final.
pub async fn download(
    net: &Network,
    server: &FileServer,
    what: What<'_>,
    id: &str,
) -> Result<Vec<u8>, AttachError> {
    let mut last = None;
    for attempt in 0..CHUNK_TRIES {
        let req = V4Request {
            method: "GET".into(),
            endpoint: format!("/file/{id}"),
            headers: BTreeMap::new(),
            body: None,
        };
        match v4(net, server, what, req).await {
            Ok(r) if r.code == 200 => return Ok(r.body),
            Ok(r) => return Err(server_error(what, &r)),
            Err(e) => {
                tracing::debug!(%what, attempt, error = %e, "download try failed");
                last = Some(e);
            }
        }
    }
    Err(last.unwrap_or_else(|| AttachError::Invalid(format!("{what}: not downloaded"))))
}

/// What a pointer needs to fetch a file.
pub struct Fetch<'a> {
    /// The pointer's URL.
    pub url: &'a str,
    /// The pointer's key.
    pub key: &'a [u8],
    /// The pointer's digest (absent for deterministic attachments).
    pub digest: Option<&'a [u8]>,
    /// The pointer's size.
    pub size: Option<u64>,
}

/// Downloads and verifies the attachment `f` into a new encrypted file in
/// the profile (`out`), returning the plaintext size. Nothing is written
/// for a piece before every check of its format passed; on error `out` is
/// dropped (and its part file deleted) by the caller.
pub async fn fetch(
    net: &Network,
    default_server: Option<&FileServer>,
    f: &Fetch<'_>,
    make_out: impl FnOnce(u64) -> Result<LocalWriter, AttachError>,
    progress: &(dyn Fn(Progress) + Send + Sync),
) -> Result<LocalWriter, AttachError> {
    let url = FileUrl::parse(f.url).map_err(|e| AttachError::Verify {
        what: "attachment URL".into(),
        source: e,
    })?;
    let server = FileServer::for_url(default_server, &url)?;
    let verify = |what: &str| {
        let what = what.to_string();
        move |source| AttachError::Verify { what, source }
    };
    if url.deterministic {
        let blob = download(net, &server, "attachment", &url.id).await?;
        let plain = zeroize::Zeroizing::new(
            deterministic::decrypt(f.key, &blob, f.size).map_err(verify("attachment"))?,
        );
        let mut out = make_out(plain.len() as u64)?;
        for seg in plain.chunks(CHUNK_SIZE) {
            out.write_segment(seg)?;
        }
        progress(Progress::new(plain.len() as u64, plain.len() as u64));
        return Ok(out);
    }
    let digest = f.digest.ok_or_else(|| AttachError::Verify {
        what: "attachment".into(),
        source: umbra_proto::attachment::AttachmentError::DigestLength(0),
    })?;
    let what = if url.manifest {
        "manifest"
    } else {
        "attachment"
    };
    let blob = download(net, &server, what, &url.id).await?;
    if !url.manifest {
        let plain = zeroize::Zeroizing::new(
            legacy::decrypt(f.key, digest, &blob, f.size).map_err(verify("attachment"))?,
        );
        let mut out = make_out(plain.len() as u64)?;
        for seg in plain.chunks(CHUNK_SIZE) {
            out.write_segment(seg)?;
        }
        progress(Progress::new(plain.len() as u64, plain.len() as u64));
        return Ok(out);
    }
    // §5.6: the manifest, then every chunk verified in order.
    let size = f
        .size
        .ok_or_else(|| AttachError::Invalid("manifest pointer without a size".into()))?;
    let plain = zeroize::Zeroizing::new(
        legacy::decrypt_padded(f.key, digest, &blob).map_err(verify("manifest"))?,
    );
    let manifest = ChunkManifest::decode_padded(&plain, size).map_err(verify("manifest"))?;
    let key = manifest.key_array().map_err(verify("manifest"))?;
    let mut out = make_out(size)?;
    let mut servers = Vec::with_capacity(manifest.chunks.len());
    for (i, c) in manifest.chunks.iter().enumerate() {
        let u = FileUrl::parse(&c.url).map_err(verify(&format!("chunk {i}")))?;
        let s = FileServer::for_url(Some(&server), &u)
            .or_else(|_| FileServer::for_url(default_server, &u))?;
        servers.push((u.id, s));
    }
    let mut done = 0u64;
    let mut results = futures::stream::iter(servers.into_iter().enumerate().map(|(i, (id, s))| {
        let digest = manifest.chunks[i].digest.clone();
        let key = &key;
        async move {
            let what = format!("chunk {i}");
            let stored = download(net, &s, &what, &id).await?;
            if stored.len() != STORED_CHUNK_SIZE {
                return Err(AttachError::Verify {
                    what,
                    source: umbra_proto::attachment::AttachmentError::ChunkLength {
                        chunk: i as u32,
                        expected: STORED_CHUNK_SIZE,
                        got: stored.len(),
                    },
                });
            }
            let plain = chunked::decrypt_chunk(&key[..], size, i as u64, &stored, &digest)
                .map_err(|source| AttachError::Verify { what, source })?;
            Ok::<_, AttachError>(zeroize::Zeroizing::new(plain))
        }
    }))
    .buffered(PARALLEL_CHUNKS);
    while let Some(r) = results.next().await {
        let plain = r?;
        out.write_segment(&plain)?;
        done += plain.len() as u64;
        progress(Progress::new(done, size));
    }
    Ok(out)
}

/// What an upload produced: the pointer's URL, key and digest.
pub struct Uploaded {
    /// The URL (with `m` for a manifest).
    pub url: String,
    /// The 64-byte legacy key (of the file, or of its manifest).
    pub key: zeroize::Zeroizing<Vec<u8>>,
    /// The legacy blob's digest.
    pub digest: [u8; 32],
}

/// Resumable state of a chunked upload, kept (encrypted) in the store.
#[derive(Serialize, Deserialize, Default)]
pub struct UploadState {
    /// The chunk key `K`, hex.
    pub key: String,
    /// Uploaded chunks: `(url, digest hex)` by index.
    pub chunks: Vec<Option<(String, String)>>,
}

impl Drop for UploadState {
    fn drop(&mut self) {
        zeroize::Zeroize::zeroize(&mut self.key);
    }
}

/// Encrypts and uploads a legacy (single-blob) attachment.
pub async fn upload_legacy(
    net: &Network,
    server: &FileServer,
    plain: &[u8],
    ttl_secs: Option<u64>,
    what: What<'_>,
) -> Result<Uploaded, AttachError> {
    let key = zeroize::Zeroizing::new(umbra_crypto::random_bytes::<64>());
    let iv = umbra_crypto::random_bytes::<16>();
    let blob = legacy::encrypt(&key, &iv, plain).map_err(|source| AttachError::Verify {
        what: what.to_string(),
        source,
    })?;
    if blob.blob.len() > MAX_FILE_BODY {
        return Err(AttachError::TooLarge {
            size: blob.blob.len() as u64,
            max: MAX_FILE_BODY as u64,
        });
    }
    let id = upload(net, server, what, &blob.blob, ttl_secs).await?;
    Ok(Uploaded {
        url: server.url(&id, false, false)?.to_string(),
        key: zeroize::Zeroizing::new(key.to_vec()),
        digest: blob.digest,
    })
}

/// Builds, encrypts and uploads the manifest of a chunked upload.
pub async fn upload_manifest(
    net: &Network,
    server: &FileServer,
    n: u64,
    key: &[u8; 32],
    chunks: Vec<ManifestChunk>,
    ttl_secs: Option<u64>,
) -> Result<Uploaded, AttachError> {
    let m = ChunkManifest::new(n, key, chunks).map_err(|source| AttachError::Verify {
        what: "manifest".into(),
        source,
    })?;
    let up = upload_legacy(net, server, &m.encode(), ttl_secs, "manifest").await?;
    let mut url = FileUrl::parse(&up.url).map_err(|source| AttachError::Verify {
        what: "manifest".into(),
        source,
    })?;
    url.manifest = true;
    Ok(Uploaded {
        url: url.to_string(),
        ..up
    })
}
