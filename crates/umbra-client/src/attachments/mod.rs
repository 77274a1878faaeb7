//! Attachments (`attachments.md`): the client side of files, images and
//! voice messages.
//!
//! | module | owns |
//! | --- | --- |
//! | this one | [`Client::send_attachment`], [`Client::download_attachment`], [`Client::export_attachment`], attachment records of messages, auto-download on sync, content type and image size |
//! | [`transfer`] | v4 lsrpc uploads and downloads through onion paths; chunked files (§5) with a manifest, verified chunk by chunk |
//! | [`local`] | attachment files in the profile, encrypted at rest |
//!
//! Sending: files up to 9,999,936 bytes use the legacy scheme (§2, padded);
//! larger files are chunked (§5): chunks are uploaded at most 3 at a time,
//! each retried on its own, and the upload's progress is kept in the store
//! so a failed `send_attachment` of the same file resumes where it
//! stopped. Receiving: a message's pointers are recorded with it (in the
//! store's encrypted blobs); images and voice messages up to a size
//! setting are downloaded during sync, anything else on request. Every
//! piece is verified before its plaintext is written, and plaintext is
//! only ever written to the profile's encrypted attachment files, or to a
//! user's chosen path through a temporary file renamed once complete.

pub mod local;
pub mod transfer;

use std::io::Read;
use std::path::{Path, PathBuf};

use futures::StreamExt;
use serde::{Deserialize, Serialize};
use umbra_proto::attachment::chunked::{self, CHUNK_SIZE, ManifestChunk, PARALLEL_CHUNKS};
use umbra_proto::attachment::legacy::MAX_PADDED;
use umbra_proto::identity::AccountId;
use umbra_proto::message::Content;
use umbra_proto::message::protos::{AttachmentPointer, DataMessage};

use crate::client::{Client, ClientError, DEFAULT_TTL_MS};
use crate::net::NetError;
use crate::store::{
    Direction, DisappearingMode, Message, MessageId, MessageStatus, NewMessage, StoreError,
};
pub use transfer::FileServer;
use transfer::{Fetch, UploadState};

/// `AttachmentPointer.flags` bit of a voice message.
pub const VOICE_MESSAGE: u32 = 1;
/// The setting naming the largest image or voice message fetched during
/// sync (bytes, decimal).
pub const AUTO_DOWNLOAD_SETTING: &str = "attachments.auto_download_max";
/// Its default: 10 MB.
pub const DEFAULT_AUTO_DOWNLOAD_MAX: u64 = 10_000_000;
/// The setting holding the file server (JSON of [`FileServer`]).
pub const FILE_SERVER_SETTING: &str = "attachments.file_server";
/// A legacy profile file naming the file server (devnets before the
/// network configuration's `file_server` entry wrote it, and
/// `umbra account create` copied it); still read as a last resort.
pub const FILE_SERVER_FILE: &str = "fileserver.json";

/// An attachment failure; `what` names the piece (`chunk 3`, `manifest`,
/// `attachment`).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AttachError {
    /// No file server is configured (or its entry is unusable).
    #[error("no usable file server: {0}")]
    NoFileServer(String),
    /// A URL names a server the client cannot encrypt to.
    #[error("unknown file server {0}")]
    UnknownServer(String),
    /// A local file operation.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// The local store.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Sending the message.
    #[error(transparent)]
    Client(#[from] ClientError),
    /// The onion network could not carry a request.
    #[error("{what}: {source}")]
    Net {
        /// The piece.
        what: String,
        /// Why.
        source: NetError,
    },
    /// The file server answered an error.
    #[error("{what}: {reason} (file server answered {status})")]
    Server {
        /// The piece.
        what: String,
        /// The status.
        status: u16,
        /// What it means.
        reason: String,
    },
    /// A downloaded piece failed a check (tampered, truncated, wrong key).
    #[error("{what}: {source}")]
    Verify {
        /// The piece.
        what: String,
        /// The failed check.
        source: umbra_proto::attachment::AttachmentError,
    },
    /// A file too large to send.
    #[error("the file is {size} bytes; at most {max} can be sent")]
    TooLarge {
        /// Its size.
        size: u64,
        /// The limit.
        max: u64,
    },
    /// An encrypted attachment file in the profile is damaged.
    #[error("local attachment file damaged: {0}")]
    LocalCorrupt(String),
    /// Bad input (unknown message, no such attachment, …).
    #[error("{0}")]
    Invalid(String),
}

/// Transfer progress: plaintext bytes done of the total.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Progress {
    /// Bytes done.
    pub done: u64,
    /// Bytes in all.
    pub total: u64,
}

impl Progress {
    /// `done` of `total`.
    pub fn new(done: u64, total: u64) -> Self {
        Progress { done, total }
    }
}

/// Options of [`Client::send_attachment`].
#[derive(Debug, Clone, Default)]
pub struct SendOptions {
    /// A caption (sent as the message body and the pointer's caption).
    pub caption: Option<String>,
    /// Flag the file as a voice message.
    pub voice: bool,
    /// `X-FS-TTL` for the uploads (default: the server's 14 days).
    pub ttl_secs: Option<u64>,
}

/// One attachment of a stored message (kept encrypted in the store).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AttachmentRecord {
    /// Its index in the message.
    pub index: usize,
    /// MIME type.
    pub content_type: String,
    /// File name (documents only).
    pub file_name: Option<String>,
    /// Plaintext size in bytes.
    pub size: u64,
    /// A voice message.
    pub voice: bool,
    /// Image width.
    pub width: Option<u32>,
    /// Image height.
    pub height: Option<u32>,
    /// Caption.
    pub caption: Option<String>,
    /// The pointer's URL.
    pub url: String,
    /// The pointer's key, hex.
    pub key: String,
    /// The pointer's digest, hex.
    pub digest: Option<String>,
    /// The encrypted local copy in the profile, once downloaded (or sent).
    pub local: Option<String>,
    /// Why the last download failed.
    pub error: Option<String>,
}

impl AttachmentRecord {
    /// Images and voice messages are fetched during sync (§1, up to a size).
    pub fn is_auto_kind(&self) -> bool {
        self.voice || self.content_type.starts_with("image/")
    }

    /// A short description: `image/png 1200×800 34 kB "name"`.
    pub fn describe(&self) -> String {
        let mut s = if self.voice {
            "voice message".to_string()
        } else {
            self.content_type.clone()
        };
        if let (Some(w), Some(h)) = (self.width, self.height) {
            s.push_str(&format!(" {w}×{h}"));
        }
        s.push_str(&format!(" {}", human_size(self.size)));
        if let Some(n) = &self.file_name {
            s.push_str(&format!(" {n:?}"));
        }
        s.push_str(if self.local.is_some() {
            " (downloaded)"
        } else {
            " (not downloaded)"
        });
        s
    }

    fn from_pointer(index: usize, p: &AttachmentPointer) -> Self {
        AttachmentRecord {
            index,
            content_type: p
                .content_type
                .clone()
                .unwrap_or_else(|| "application/octet-stream".into()),
            file_name: p.file_name.clone(),
            size: u64::from(p.size.unwrap_or(0)),
            voice: p.flags.unwrap_or(0) & VOICE_MESSAGE != 0,
            width: p.width,
            height: p.height,
            caption: p.caption.clone(),
            url: p.url.clone().unwrap_or_default(),
            key: hex::encode(p.key.as_deref().unwrap_or_default()),
            digest: p.digest.as_ref().map(hex::encode),
            local: None,
            error: None,
        }
    }
}

impl Drop for AttachmentRecord {
    fn drop(&mut self) {
        zeroize::Zeroize::zeroize(&mut self.key);
    }
}

/// `12.3 MB`, `45 kB`, `17 B`.
pub fn human_size(n: u64) -> String {
    match n {
        0..1_000 => format!("{n} B"),
        1_000..1_000_000 => format!("{} kB", n / 1_000),
        _ => format!("{:.1} MB", n as f64 / 1e6),
    }
}

/// What [`media_info`] found in a file's first bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MediaInfo {
    /// MIME type (`application/octet-stream` when unknown).
    pub content_type: String,
    /// Width and height of an image.
    pub dimensions: Option<(u32, u32)>,
}

/// The content type (from the bytes, with the `infer` crate) and, for
/// images, the width and height (from the header).
pub fn media_info(head: &[u8]) -> MediaInfo {
    let content_type = infer::get(head)
        .map(|t| t.mime_type().to_string())
        .unwrap_or_else(|| "application/octet-stream".into());
    let dimensions = if content_type.starts_with("image/") {
        imagesize::blob_size(head)
            .ok()
            .and_then(|s| Some((u32::try_from(s.width).ok()?, u32::try_from(s.height).ok()?)))
    } else {
        None
    };
    MediaInfo {
        content_type,
        dimensions,
    }
}

/// What [`Client::send_attachment`] did.
#[derive(Debug, Clone)]
pub struct SentAttachment {
    /// The message's timestamp.
    pub timestamp_ms: u64,
    /// Its local ID.
    pub message: MessageId,
    /// The recorded attachment.
    pub record: AttachmentRecord,
    /// Chunks uploaded now (0 for a single-blob file).
    pub chunks_uploaded: usize,
    /// Chunks skipped because an earlier try had uploaded them.
    pub chunks_resumed: usize,
}

fn records_blob(id: MessageId) -> String {
    format!("attachments/message/{}", id.0)
}

fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> AttachError {
    let what = what.into();
    move |source| AttachError::Io { what, source }
}

/// A key identifying one file's upload (path, size, modification time).
fn upload_state_name(path: &Path, meta: &std::fs::Metadata) -> String {
    let mtime = meta
        .modified()
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_nanos());
    let mut id = path.display().to_string().into_bytes();
    id.extend_from_slice(&meta.len().to_le_bytes());
    id.extend_from_slice(&mtime.to_le_bytes());
    format!(
        "attachments/upload/{}",
        hex::encode(umbra_crypto::hash::sha256(&id))
    )
}

fn read_exact_at(f: &mut std::fs::File, buf: &mut [u8]) -> std::io::Result<()> {
    f.read_exact(buf)
}

impl Client {
    /// The configured file server: the profile setting, else the network
    /// configuration's `file_server` (`attachments.md` §4.1), else a
    /// legacy `fileserver.json` in the profile.
    pub fn file_server(&self) -> Result<FileServer, AttachError> {
        let store = self.profile().store();
        let s: FileServer = if let Some(text) = store.setting(FILE_SERVER_SETTING)? {
            serde_json::from_str(&text)
                .map_err(|e| AttachError::NoFileServer(format!("bad file server setting: {e}")))?
        } else if let Some(entry) = &self.network().config().file_server {
            FileServer::from(entry)
        } else {
            let p = self.profile().dir().join(FILE_SERVER_FILE);
            let text = std::fs::read_to_string(&p).map_err(|_| {
                AttachError::NoFileServer(
                    "none configured (no file_server in the network configuration)".into(),
                )
            })?;
            serde_json::from_str(&text)
                .map_err(|e| AttachError::NoFileServer(format!("bad {FILE_SERVER_FILE}: {e}")))?
        };
        s.target()?;
        Ok(s)
    }

    /// Sets the file server this profile uploads to.
    pub fn set_file_server(&self, server: &FileServer) -> Result<(), AttachError> {
        server.target()?;
        let json = serde_json::to_string(server)
            .map_err(|e| AttachError::Invalid(format!("file server: {e}")))?;
        self.profile()
            .store()
            .set_setting(FILE_SERVER_SETTING, &json)?;
        Ok(())
    }

    /// The largest image or voice message fetched during sync.
    pub fn auto_download_max(&self) -> Result<u64, AttachError> {
        Ok(self
            .profile()
            .store()
            .setting(AUTO_DOWNLOAD_SETTING)?
            .and_then(|s| s.parse().ok())
            .unwrap_or(DEFAULT_AUTO_DOWNLOAD_MAX))
    }

    /// Sets [`Client::auto_download_max`] (0 turns auto-download off).
    pub fn set_auto_download_max(&self, bytes: u64) -> Result<(), AttachError> {
        self.profile()
            .store()
            .set_setting(AUTO_DOWNLOAD_SETTING, &bytes.to_string())?;
        Ok(())
    }

    /// The attachments recorded with message `id`.
    pub fn attachments(&self, id: MessageId) -> Result<Vec<AttachmentRecord>, AttachError> {
        Ok(match self.profile().store().blob(&records_blob(id))? {
            Some(b) => serde_json::from_slice(&b)
                .map_err(|e| AttachError::LocalCorrupt(format!("attachment records: {e}")))?,
            None => Vec::new(),
        })
    }

    fn put_attachments(&self, id: MessageId, recs: &[AttachmentRecord]) -> Result<(), AttachError> {
        let bytes = zeroize::Zeroizing::new(
            serde_json::to_vec(recs)
                .map_err(|e| AttachError::Invalid(format!("attachment records: {e}")))?,
        );
        self.profile().store().put_blob(&records_blob(id), &bytes)?;
        Ok(())
    }

    /// The stored message sent at `timestamp_ms` (any conversation).
    pub fn message_at(&self, timestamp_ms: u64) -> Result<Option<Message>, AttachError> {
        let store = self.profile().store();
        for c in store.conversations()?.into_iter().chain(store.requests()?) {
            if let Some(m) = store
                .messages(&c.peer, Some(timestamp_ms))?
                .into_iter()
                .find(|m| m.timestamp_ms == timestamp_ms)
            {
                return Ok(Some(m));
            }
        }
        Ok(None)
    }

    /// Encrypts and uploads the file at `path` through onion paths and
    /// sends it to `to` (`attachments.md` §2, §5; `messages.md` §6). The
    /// sent file is also kept, encrypted, in the profile.
    pub async fn send_attachment(
        &self,
        to: &AccountId,
        path: &Path,
        opts: &SendOptions,
        progress: &(dyn Fn(Progress) + Send + Sync),
    ) -> Result<SentAttachment, AttachError> {
        let store = self.profile().store();
        if store.conversation(to)?.is_some_and(|c| c.blocked) {
            return Err(AttachError::Invalid(
                "that account is blocked; unblock it first".into(),
            ));
        }
        let server = self.file_server()?;
        let mut file =
            std::fs::File::open(path).map_err(io(format!("opening {}", path.display())))?;
        let meta = file
            .metadata()
            .map_err(io(format!("reading {}", path.display())))?;
        let n = meta.len();
        if n == 0 || n > chunked::MAX_FILE_SIZE {
            return Err(AttachError::TooLarge {
                size: n,
                max: chunked::MAX_FILE_SIZE,
            });
        }
        // Content type and image size from the first bytes.
        let mut head = vec![0u8; (n as usize).min(64 * 1024)];
        read_exact_at(&mut file, &mut head).map_err(io(format!("reading {}", path.display())))?;
        let media = media_info(&head);
        drop(head);
        let mut local = local::LocalWriter::create(self.profile().dir(), store, n)?;
        let (up, chunks_uploaded, chunks_resumed) = if n <= MAX_PADDED as u64 {
            let mut plain = zeroize::Zeroizing::new(vec![0u8; n as usize]);
            file_read_from(&mut file, 0, &mut plain, path)?;
            for seg in plain.chunks(CHUNK_SIZE) {
                local.write_segment(seg)?;
            }
            let up = transfer::upload_legacy(
                self.network(),
                &server,
                &plain,
                opts.ttl_secs,
                "attachment",
            )
            .await?;
            progress(Progress::new(n, n));
            (up, 0, 0)
        } else {
            self.upload_chunked(&server, path, &meta, &mut file, &mut local, opts, progress)
                .await?
        };
        let local_name = local.finish()?;
        let is_media = media.content_type.starts_with("image/")
            || media.content_type.starts_with("video/")
            || opts.voice;
        let pointer = AttachmentPointer {
            deprecated_id: 0,
            content_type: Some(media.content_type.clone()),
            key: Some(up.key.to_vec()),
            size: Some(u32::try_from(n).map_err(|_| AttachError::TooLarge {
                size: n,
                max: chunked::MAX_FILE_SIZE,
            })?),
            digest: Some(up.digest.to_vec()),
            file_name: (!is_media)
                .then(|| path.file_name().map(|f| f.to_string_lossy().into_owned()))
                .flatten(),
            flags: opts.voice.then_some(VOICE_MESSAGE),
            width: media.dimensions.map(|d| d.0),
            height: media.dimensions.map(|d| d.1),
            caption: opts.caption.clone(),
            url: Some(up.url.clone()),
        };
        let mut record = AttachmentRecord::from_pointer(0, &pointer);
        record.local = Some(local_name);
        let (timestamp_ms, message) = self
            .send_pointer(
                to,
                opts.caption.clone(),
                pointer,
                std::slice::from_ref(&record),
            )
            .await?;
        Ok(SentAttachment {
            timestamp_ms,
            message,
            record,
            chunks_uploaded,
            chunks_resumed,
        })
    }

    /// §5.5: chunks at most 3 at a time (each retried alone), progress kept
    /// in the store for a later resume, then the manifest.
    #[allow(clippy::too_many_arguments)]
    async fn upload_chunked(
        &self,
        server: &FileServer,
        path: &Path,
        meta: &std::fs::Metadata,
        file: &mut std::fs::File,
        local: &mut local::LocalWriter,
        opts: &SendOptions,
        progress: &(dyn Fn(Progress) + Send + Sync),
    ) -> Result<(transfer::Uploaded, usize, usize), AttachError> {
        let n = meta.len();
        let count = chunked::n_chunks(n) as usize;
        let store = self.profile().store();
        let state_name = upload_state_name(path, meta);
        let mut state: UploadState = store
            .blob(&state_name)?
            .and_then(|b| serde_json::from_slice(&b).ok())
            .filter(|s: &UploadState| s.chunks.len() == count && s.key.len() == 64)
            .unwrap_or_else(|| UploadState {
                key: hex::encode(umbra_crypto::random_bytes::<32>()),
                chunks: vec![None; count],
            });
        let mut key = zeroize::Zeroizing::new([0u8; 32]);
        hex::decode_to_slice(&state.key, &mut key[..])
            .map_err(|_| AttachError::Invalid("bad resumable upload state".into()))?;
        let resumed = state.chunks.iter().filter(|c| c.is_some()).count();
        let save = |state: &UploadState| -> Result<(), AttachError> {
            let bytes = zeroize::Zeroizing::new(
                serde_json::to_vec(state)
                    .map_err(|e| AttachError::Invalid(format!("upload state: {e}")))?,
            );
            store.put_blob(&state_name, &bytes)?;
            Ok(())
        };
        save(&state)?;
        let net = self.network();
        let ttl = opts.ttl_secs;
        let mut done_bytes: u64 = state
            .chunks
            .iter()
            .enumerate()
            .filter(|(_, c)| c.is_some())
            .map(|(i, _)| chunk_len(n, i))
            .sum();
        progress(Progress::new(done_bytes, n));
        // Read (and keep locally) in order; encrypt and upload up to 3 at a time.
        let mut read_error: Option<AttachError> = None;
        let already: Vec<bool> = state.chunks.iter().map(Option::is_some).collect();
        let key_ref = &key;
        let mut uploads = futures::stream::iter(0..count)
            .map(|i| {
                let mut plain = zeroize::Zeroizing::new(vec![0u8; chunk_len(n, i) as usize]);
                let read = file_read_from(file, (i * CHUNK_SIZE) as u64, &mut plain, path)
                    .and_then(|()| local.write_segment(&plain));
                let skip = already[i];
                async move {
                    read?;
                    if skip {
                        return Ok((i, None));
                    }
                    let what = format!("chunk {i}");
                    let c =
                        chunked::encrypt_chunk(key_ref, n, i as u64, &plain).map_err(|source| {
                            AttachError::Verify {
                                what: what.clone(),
                                source,
                            }
                        })?;
                    drop(plain);
                    let id = transfer::upload(net, server, &what, &c.stored, ttl).await?;
                    Ok::<_, AttachError>((i, Some((id, c.digest))))
                }
            })
            .buffer_unordered(PARALLEL_CHUNKS);
        let mut uploaded = 0;
        while let Some(r) = uploads.next().await {
            match r {
                Ok((_, None)) => {}
                Ok((i, Some((id, digest)))) => {
                    state.chunks[i] = Some((
                        server.url(&id, false, false)?.to_string(),
                        hex::encode(digest),
                    ));
                    save(&state)?;
                    uploaded += 1;
                    done_bytes += chunk_len(n, i);
                    progress(Progress::new(done_bytes, n));
                }
                Err(e) => {
                    read_error = Some(e);
                    break;
                }
            }
        }
        drop(uploads);
        if let Some(e) = read_error {
            return Err(e);
        }
        let mut chunks = Vec::with_capacity(count);
        for (i, c) in state.chunks.iter().enumerate() {
            let (url, digest) = c
                .as_ref()
                .ok_or_else(|| AttachError::Invalid(format!("chunk {i}: not uploaded")))?;
            chunks.push(ManifestChunk {
                url: url.clone(),
                digest: hex::decode(digest)
                    .map_err(|_| AttachError::Invalid("bad resumable upload state".into()))?,
            });
        }
        let up = transfer::upload_manifest(net, server, n, &key, chunks, ttl).await?;
        store.remove_blob(&state_name)?;
        Ok((up, uploaded, resumed))
    }

    /// Sends a data message carrying `pointer` and records it (like
    /// `send_text`: accepts a request first, honours the disappearing
    /// setting, sends a sync copy).
    async fn send_pointer(
        &self,
        to: &AccountId,
        caption: Option<String>,
        pointer: AttachmentPointer,
        records: &[AttachmentRecord],
    ) -> Result<(u64, MessageId), AttachError> {
        let store = self.profile().store();
        let conv = store.conversation(to)?;
        if conv
            .as_ref()
            .is_some_and(|c| !c.approved_by_us && c.approved_us)
        {
            self.accept(to).await?;
        }
        let t = self.now().await;
        let d = conv.map(|c| c.disappearing).unwrap_or_default();
        let mut content = Content {
            data_message: Some(DataMessage {
                body: caption.clone(),
                attachments: vec![pointer],
                ..DataMessage::default()
            }),
            ..Content::default()
        };
        crate::client::expiration(&mut content, d);
        let (recipient_ttl, sync_ttl) = match d.mode {
            DisappearingMode::Off => (DEFAULT_TTL_MS, DEFAULT_TTL_MS),
            DisappearingMode::AfterSend => {
                (u64::from(d.timer_s) * 1000, u64::from(d.timer_s) * 1000)
            }
            DisappearingMode::AfterRead => (DEFAULT_TTL_MS, u64::from(d.timer_s) * 1000),
        };
        let me = self.account_id();
        let id = store
            .insert_message(&NewMessage {
                peer: *to,
                direction: Direction::Out,
                author: me,
                timestamp_ms: t,
                received_at_ms: t,
                text: caption.unwrap_or_default(),
                status: MessageStatus::Sending,
                hash: None,
                disappearing: d,
                expires_at_ms: (d.mode != DisappearingMode::Off)
                    .then(|| t + u64::from(d.timer_s) * 1000),
            })?
            .ok_or_else(|| AttachError::Invalid("duplicate message".into()))?;
        self.put_attachments(id, records)?;
        store.set_approved_by_us(to, true)?;
        match self
            .send_content(to, content, t, recipient_ttl, Some(sync_ttl))
            .await
        {
            Ok((_, sync_hash)) => {
                store.set_status(id, MessageStatus::Sent)?;
                if let Some(h) = sync_hash {
                    store.set_hash(id, &h)?;
                }
                let _ = self.persist().await;
                Ok((t, id))
            }
            Err(e) => {
                store.set_status(id, MessageStatus::Failed)?;
                Err(e.into())
            }
        }
    }

    /// The thumbnail of `message`'s link preview (`messages.md` §16.1 step
    /// 5), downloaded through onion paths and verified like any attachment;
    /// `None` when the message carries no preview image. Nothing is kept.
    pub async fn preview_image(&self, message: &Message) -> Result<Option<Vec<u8>>, AttachError> {
        let store = self.profile().store();
        let Some(image) = crate::preview::lookup(store, message)?.and_then(|p| p.image) else {
            return Ok(None);
        };
        let rec = AttachmentRecord {
            index: 0,
            content_type: image.content_type,
            file_name: None,
            size: u64::from(image.size),
            voice: false,
            width: image.width,
            height: image.height,
            caption: None,
            url: image.url,
            key: image.key,
            digest: image.digest,
            local: None,
            error: None,
        };
        let name = self.fetch_record(&rec, &|_| {}).await?;
        let dir = self.profile().dir().to_path_buf();
        let mut bytes = Vec::with_capacity(rec.size as usize);
        let read = local::read(&dir, store, &name, |seg| {
            bytes.extend_from_slice(seg);
            Ok(())
        });
        let _ = local::remove(&dir, &name);
        read?;
        Ok(Some(bytes))
    }

    /// Downloads attachment `index` of message `id` into the profile
    /// (encrypted) unless it is there already, verifying every piece.
    pub async fn download_attachment(
        &self,
        id: MessageId,
        index: usize,
        progress: &(dyn Fn(Progress) + Send + Sync),
    ) -> Result<AttachmentRecord, AttachError> {
        let mut recs = self.attachments(id)?;
        let rec = recs.iter_mut().find(|r| r.index == index).ok_or_else(|| {
            AttachError::Invalid(format!("that message has no attachment {index}"))
        })?;
        if rec.local.is_some() {
            return Ok(rec.clone());
        }
        let result = self.fetch_record(rec, progress).await;
        match result {
            Ok(name) => {
                rec.local = Some(name);
                rec.error = None;
            }
            Err(e) => {
                rec.error = Some(e.to_string());
                let _ = self.put_attachments(id, &recs);
                return Err(e);
            }
        }
        let out = rec.clone();
        self.put_attachments(id, &recs)?;
        Ok(out)
    }

    async fn fetch_record(
        &self,
        rec: &AttachmentRecord,
        progress: &(dyn Fn(Progress) + Send + Sync),
    ) -> Result<String, AttachError> {
        let key = zeroize::Zeroizing::new(
            hex::decode(&rec.key).map_err(|_| AttachError::Invalid("bad recorded key".into()))?,
        );
        let digest = rec
            .digest
            .as_ref()
            .map(hex::decode)
            .transpose()
            .map_err(|_| AttachError::Invalid("bad recorded digest".into()))?;
        let default = self.file_server().ok();
        let dir = self.profile().dir().to_path_buf();
        let store = self.profile().store();
        let f = Fetch {
            url: &rec.url,
            key: &key,
            digest: digest.as_deref(),
            size: Some(rec.size),
        };
        let out = transfer::fetch(
            self.network(),
            default.as_ref(),
            &f,
            |n| local::LocalWriter::create(&dir, store, n),
            progress,
        )
        .await?;
        out.finish()
    }

    /// Decrypts attachment `index` of message `id` (downloading it first
    /// when needed) into `out`. `out` appears only once complete.
    pub async fn export_attachment(
        &self,
        id: MessageId,
        index: usize,
        out: &Path,
        progress: &(dyn Fn(Progress) + Send + Sync),
    ) -> Result<u64, AttachError> {
        let rec = self.download_attachment(id, index, progress).await?;
        let name = rec
            .local
            .as_deref()
            .ok_or_else(|| AttachError::Invalid("not downloaded".into()))?;
        local::export(self.profile().dir(), self.profile().store(), name, out)
    }

    /// The path of a decrypted copy for viewing (`<profile>/attachments/open/`),
    /// e.g. for a system opener; the caller removes it when done.
    pub async fn open_copy(&self, id: MessageId, index: usize) -> Result<PathBuf, AttachError> {
        let rec = self.download_attachment(id, index, &|_| {}).await?;
        let d = local::dir(self.profile().dir()).join("open");
        std::fs::create_dir_all(&d).map_err(io("creating the viewing directory"))?;
        let name = rec
            .file_name
            .clone()
            .filter(|n| !n.contains(['/', '\\']) && !n.starts_with('.'))
            .unwrap_or_else(|| format!("{}-{}{}", id.0, index, extension(&rec.content_type)));
        let out = d.join(name);
        self.export_attachment(id, index, &out, &|_| {}).await?;
        Ok(out)
    }

    /// Records the attachments of a received message (sync) and fetches
    /// images and voice messages up to [`Client::auto_download_max`] —
    /// never for message requests (§1). Failures are recorded, not raised.
    pub(crate) async fn on_received_attachments(
        &self,
        id: MessageId,
        dm: &DataMessage,
        is_request: bool,
    ) -> Result<(), ClientError> {
        let recs: Vec<AttachmentRecord> = dm
            .attachments
            .iter()
            .enumerate()
            .map(|(i, p)| AttachmentRecord::from_pointer(i, p))
            .collect();
        if let Err(e) = self.put_attachments(id, &recs) {
            tracing::warn!(error = %e, "cannot record attachments");
            return Ok(());
        }
        if is_request {
            return Ok(());
        }
        let max = self
            .auto_download_max()
            .unwrap_or(DEFAULT_AUTO_DOWNLOAD_MAX);
        for r in &recs {
            if r.is_auto_kind()
                && r.size <= max
                && let Err(e) = self.download_attachment(id, r.index, &|_| {}).await
            {
                tracing::debug!(error = %e, "attachment auto-download failed");
            }
        }
        Ok(())
    }

    /// Fetches every not-yet-downloaded image and voice attachment of
    /// approved conversations up to the auto-download size. Returns how
    /// many were fetched. See [`Client::download_pending_of`].
    pub async fn download_pending(&self) -> Result<usize, AttachError> {
        let mut n = 0;
        for c in self.profile().store().conversations()? {
            n += self.download_pending_of(&c.peer).await?;
        }
        Ok(n)
    }

    /// Fetches the not-yet-downloaded image and voice attachments of the
    /// conversation with `peer` up to the auto-download size, as sync does
    /// for new messages: after its request was accepted (§1: never while it
    /// is a request; nothing for blocked peers). One that cannot be fetched
    /// is left for `umbra download` and does not stop the others. Returns
    /// how many were fetched.
    pub async fn download_pending_of(&self, peer: &AccountId) -> Result<usize, AttachError> {
        let store = self.profile().store();
        if !store
            .conversation(peer)?
            .is_some_and(|c| c.approved_by_us && !c.blocked)
        {
            return Ok(0);
        }
        let max = self.auto_download_max()?;
        let mut n = 0;
        for m in store.messages(peer, None)? {
            for r in self.attachments(m.id)? {
                if r.local.is_none() && r.is_auto_kind() && r.size <= max {
                    match self.download_attachment(m.id, r.index, &|_| {}).await {
                        Ok(_) => n += 1,
                        Err(e) => tracing::debug!(error = %e, "attachment auto-download failed"),
                    }
                }
            }
        }
        Ok(n)
    }
}

fn extension(content_type: &str) -> &'static str {
    match content_type {
        "image/png" => ".png",
        "image/jpeg" => ".jpg",
        "image/gif" => ".gif",
        "image/webp" => ".webp",
        "audio/mpeg" => ".mp3",
        "audio/ogg" => ".ogg",
        "audio/aac" => ".aac",
        "video/mp4" => ".mp4",
        "application/pdf" => ".pdf",
        _ => "",
    }
}

fn chunk_len(n: u64, i: usize) -> u64 {
    let start = (i * CHUNK_SIZE) as u64;
    n.saturating_sub(start).min(CHUNK_SIZE as u64)
}

fn file_read_from(
    f: &mut std::fs::File,
    offset: u64,
    buf: &mut [u8],
    path: &Path,
) -> Result<(), AttachError> {
    use std::io::Seek;
    f.seek(std::io::SeekFrom::Start(offset))
        .and_then(|_| f.read_exact(buf))
        .map_err(io(format!("reading {}", path.display())))
}
