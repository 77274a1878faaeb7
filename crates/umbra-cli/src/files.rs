//! `umbra send-file` and `umbra download` (`attachments.md`; issue 9), and
//! the attachment lines `umbra messages` prints.
//!
//! `send-file` encrypts the file, uploads it through onion paths to the
//! profile's file server (the `file_server` of the network configuration
//! saved when the account was created) with a progress bar, and sends the
//! pointer.
//! `download MSG[:INDEX] [PATH]` fetches the attachment of the message sent
//! at timestamp `MSG` (as `umbra messages` shows it) into the profile,
//! verified and encrypted, and decrypts it to `PATH` (default: its file
//! name, or `<MSG>-<INDEX>.<ext>`, in the current directory). `PATH`
//! appears only once complete; an existing file is never overwritten.

use std::path::{Path, PathBuf};

use anyhow::Context;
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::{Value, json};
use umbra_client::attachments::{AttachmentRecord, Progress, SendOptions};
use umbra_client::client::Client;
use umbra_client::store::Message;

use crate::messaging::{Common, InputError};

/// Attachment commands (flattened into the top level).
#[derive(Debug, clap::Subcommand)]
pub enum FilesCommand {
    /// Send a file (image, voice message or any file) to an account ID or contact.
    SendFile {
        /// Account ID (66 hex) or contact name.
        peer: String,
        /// The file to send.
        path: PathBuf,
        /// A caption sent with the file.
        #[arg(long)]
        caption: Option<String>,
        /// Flag the file as a voice message.
        #[arg(long)]
        voice: bool,
    },
    /// Download an attachment of a received message.
    Download {
        /// The message's timestamp as shown by `umbra messages`, optionally
        /// `:INDEX` for its attachment number (default 0).
        msg: String,
        /// Where to write the file (must not exist).
        path: Option<PathBuf>,
    },
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")
}

fn bar(common: &Common, total: u64, what: &str) -> ProgressBar {
    if common.json {
        return ProgressBar::hidden();
    }
    let pb = ProgressBar::new(total);
    if let Ok(style) = ProgressStyle::with_template(
        "{msg} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
    ) {
        pb.set_style(style.progress_chars("=> "));
    }
    pb.set_message(what.to_string());
    pb
}

/// Runs an attachment command.
pub fn run(common: &Common, cmd: FilesCommand) -> anyhow::Result<()> {
    let client = crate::messaging::open_client(common)?;
    let rt = runtime()?;
    let r = rt.block_on(run_async(common, &client, cmd));
    let _ = rt.block_on(client.persist());
    r
}

async fn run_async(common: &Common, client: &Client, cmd: FilesCommand) -> anyhow::Result<()> {
    match cmd {
        FilesCommand::SendFile {
            peer,
            path,
            caption,
            voice,
        } => {
            let to = crate::messaging::resolve(client, &peer)?;
            let size = std::fs::metadata(&path)
                .map_err(|e| InputError(format!("{}: {e}", path.display())))?
                .len();
            let pb = bar(common, size, "uploading");
            let progress = |p: Progress| {
                pb.set_length(p.total);
                pb.set_position(p.done);
            };
            let opts = SendOptions {
                caption,
                voice,
                ttl_secs: None,
            };
            let sent = client.send_attachment(&to, &path, &opts, &progress).await;
            pb.finish_and_clear();
            let sent = sent?;
            if common.json {
                println!(
                    "{}",
                    json!({
                        "direction": "out",
                        "peer": to.to_string(),
                        "timestamp": sent.timestamp_ms,
                        "status": "sent",
                        "attachment": record_json(&sent.record),
                        "chunks_uploaded": sent.chunks_uploaded,
                        "chunks_resumed": sent.chunks_resumed,
                    })
                );
            } else {
                println!(
                    "sent {} at {}{}",
                    sent.record.describe(),
                    sent.timestamp_ms,
                    if sent.chunks_resumed > 0 {
                        format!(" ({} chunk(s) resumed)", sent.chunks_resumed)
                    } else {
                        String::new()
                    }
                );
            }
        }
        FilesCommand::Download { msg, path } => {
            let (ts, index) = match msg.split_once(':') {
                Some((t, i)) => (t, i),
                None => (msg.as_str(), "0"),
            };
            let bad = || InputError(format!("{msg:?} is not TIMESTAMP or TIMESTAMP:INDEX"));
            let ts: u64 = ts.parse().map_err(|_| bad())?;
            let index: usize = index.parse().map_err(|_| bad())?;
            let m = client
                .message_at(ts)?
                .ok_or_else(|| InputError(format!("no message sent at {ts}")))?;
            let recs = client.attachments(m.id)?;
            let rec = recs.iter().find(|r| r.index == index).ok_or_else(|| {
                InputError(format!(
                    "the message at {ts} has {} attachment(s); no attachment {index}",
                    recs.len()
                ))
            })?;
            let out = match path {
                Some(p) => p,
                None => PathBuf::from(default_name(&m, rec)),
            };
            if out.exists() {
                return Err(
                    InputError(format!("{} exists; choose another path", out.display())).into(),
                );
            }
            let pb = bar(common, rec.size, "downloading");
            let progress = |p: Progress| {
                pb.set_length(p.total);
                pb.set_position(p.done);
            };
            let r = client.export_attachment(m.id, index, &out, &progress).await;
            pb.finish_and_clear();
            let n = r?;
            if common.json {
                println!(
                    "{}",
                    json!({"timestamp": ts, "index": index, "path": out.display().to_string(), "size": n})
                );
            } else {
                println!("wrote {} ({n} bytes)", out.display());
            }
        }
    }
    Ok(())
}

/// A safe default file name for an attachment.
fn default_name(m: &Message, rec: &AttachmentRecord) -> String {
    let safe = rec.file_name.as_deref().and_then(|n| {
        let base = Path::new(n).file_name()?.to_str()?;
        (!base.starts_with('.') && !base.is_empty()).then(|| base.to_string())
    });
    safe.unwrap_or_else(|| {
        let ext = rec
            .content_type
            .split_once('/')
            .map(|(_, sub)| sub)
            .filter(|s| s.bytes().all(|b| b.is_ascii_alphanumeric()) && *s != "octet")
            .unwrap_or("bin");
        format!("{}-{}.{ext}", m.timestamp_ms, rec.index)
    })
}

/// An attachment as `--json` prints it (no key, no URL).
pub fn record_json(r: &AttachmentRecord) -> Value {
    json!({
        "index": r.index,
        "content_type": r.content_type,
        "file_name": r.file_name,
        "size": r.size,
        "voice": r.voice,
        "width": r.width,
        "height": r.height,
        "caption": r.caption,
        "downloaded": r.local.is_some(),
        "error": r.error,
    })
}

/// The attachments of `m` for `umbra messages` (empty when none).
pub fn attachments_of(client: &Client, m: &Message) -> Vec<AttachmentRecord> {
    client.attachments(m.id).unwrap_or_default()
}
