//! `umbra group …` (groups.md; issue 8). Work in progress.

use crate::messaging::Common;

/// Group commands.
#[derive(Debug, clap::Subcommand)]
pub enum GroupCommand {
    /// Create a group and invite members.
    Create {
        /// The group's name.
        name: String,
        /// Account IDs or contact names to invite.
        members: Vec<String>,
    },
}

/// Runs a group command.
pub fn run(_common: &Common, _cmd: GroupCommand) -> anyhow::Result<()> {
    anyhow::bail!("groups are not implemented yet")
}
