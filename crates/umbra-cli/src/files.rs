//! `umbra send-file` and `umbra download` (attachments.md; issue 9).
//! Work in progress.

use std::path::PathBuf;

use crate::messaging::Common;

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
        /// The message (as shown by `umbra messages`).
        msg: String,
        /// Where to write the file.
        path: Option<PathBuf>,
    },
}

/// Runs an attachment command.
pub fn run(_common: &Common, _cmd: FilesCommand) -> anyhow::Result<()> {
    anyhow::bail!("attachments are not implemented yet")
}
