//! `umbra group …` (groups.md; issue 8): create, add, remove, leave,
//! promote, rename, info, list, disappearing timer and history setting; and
//! the group side of `send`, `messages`, `accept` and `decline` (a `03` ID or
//! a group name where those take an account), called from `messaging`.
//!
//! With `--json` each command prints one JSON object per line.

use anyhow::Context;
use serde_json::json;
use umbra_client::client::Client;
use umbra_client::groups::GroupView;
use umbra_proto::identity::{AccountId, IdPrefix};

use crate::messaging::{Common, InputError};

/// Group commands.
#[derive(Debug, clap::Subcommand)]
pub enum GroupCommand {
    /// Create a group and invite members (INVITEs go 1:1).
    Create {
        /// The group's name (1 to 100 bytes).
        name: String,
        /// Account IDs or contact names to invite.
        members: Vec<String>,
        /// Let members added later read earlier messages.
        #[arg(long)]
        share_history: bool,
    },
    /// Add members (admins only): a new key generation, INVITEs 1:1.
    Add {
        /// Group ID (03…) or name.
        group: String,
        /// Account IDs or contact names.
        #[arg(required = true)]
        members: Vec<String>,
    },
    /// Remove members (admins only): a new key generation, their access revoked.
    Remove {
        /// Group ID (03…) or name.
        group: String,
        /// Account IDs or contact names.
        #[arg(required = true)]
        members: Vec<String>,
    },
    /// Leave a group (the last admin must promote someone first).
    Leave {
        /// Group ID (03…) or name.
        group: String,
    },
    /// Make a member an admin (admins only; cannot be undone).
    Promote {
        /// Group ID (03…) or name.
        group: String,
        /// Account ID or contact name.
        member: String,
    },
    /// Rename a group (admins only).
    Rename {
        /// Group ID (03…) or name.
        group: String,
        /// The new name.
        name: String,
    },
    /// Set the delete-after-send timer in seconds, 0 = off (admins only).
    Disappearing {
        /// Group ID (03…) or name.
        group: String,
        /// Seconds (0 = off).
        seconds: u32,
    },
    /// Whether members added later may read earlier messages (admins only).
    History {
        /// Group ID (03…) or name.
        group: String,
        /// on | off
        value: String,
    },
    /// Show a group's name, settings and members (after fetching its state).
    Info {
        /// Group ID (03…) or name.
        group: String,
    },
    /// List your groups and pending invites.
    List,
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")
}

/// Runs a group command.
pub fn run(common: &Common, cmd: GroupCommand) -> anyhow::Result<()> {
    let client = crate::messaging::open_client(common)?;
    let rt = runtime()?;
    let r = rt.block_on(run_async(common, &client, cmd));
    let _ = rt.block_on(client.persist());
    r
}

/// A `05` member from an ID or a contact name.
fn member(client: &Client, who: &str) -> anyhow::Result<AccountId> {
    if let Ok(id) = who.parse::<AccountId>() {
        if id.prefix() != IdPrefix::Standard {
            return Err(InputError(format!("{} is not a 05 account ID", id.short())).into());
        }
        return Ok(id);
    }
    client
        .profile()
        .store()
        .contacts()?
        .into_iter()
        .find(|c| c.name == who)
        .map(|c| c.id)
        .ok_or_else(|| {
            InputError(format!(
                "{who:?} is neither an account ID nor a contact name"
            ))
            .into()
        })
}

fn members(client: &Client, who: &[String]) -> anyhow::Result<Vec<AccountId>> {
    who.iter().map(|w| member(client, w)).collect()
}

/// A group this device is in, from its `03` ID or name.
fn group(client: &Client, g: &str) -> anyhow::Result<AccountId> {
    match client.find_group(g)? {
        Some(id) if client.group_info(&id).is_ok() => Ok(id),
        _ => Err(InputError(format!(
            "{g:?} is not a group of this account (a 03 ID or a group name; see `umbra group list`)"
        ))
        .into()),
    }
}

/// For `send`/`messages`/`accept`/`decline`: `who` names a group (a `03`
/// ID, a group's name, or a pending invite's group name) and no contact.
pub(crate) fn resolve_group(client: &Client, who: &str) -> anyhow::Result<Option<AccountId>> {
    if let Ok(id) = who.parse::<AccountId>() {
        return Ok((id.prefix() == IdPrefix::Group).then_some(id));
    }
    if client
        .profile()
        .store()
        .contacts()?
        .iter()
        .any(|c| c.name == who)
    {
        return Ok(None);
    }
    if let Some(id) = client.find_group(who)? {
        return Ok(Some(id));
    }
    Ok(client
        .group_invites()?
        .into_iter()
        .find(|i| i.name == who)
        .map(|i| i.group))
}

fn print_view(c: &Common, v: &GroupView) {
    if c.json {
        println!("{}", v.to_json());
        return;
    }
    println!("Group:       {}", v.id);
    println!("Name:        {}", v.name);
    println!(
        "You:         {}{}",
        if v.is_admin { "admin" } else { "member" },
        if v.removed {
            " (removed from group)"
        } else {
            ""
        }
    );
    println!(
        "Key:         generation {}, state version {}",
        v.generation.map_or("-".into(), |g| g.to_string()),
        v.version
    );
    println!(
        "Disappear:   {}",
        if v.timer_s == 0 {
            "off".to_string()
        } else {
            format!("{} s after send", v.timer_s)
        }
    );
    println!(
        "History:     {}",
        if v.share_history {
            "new members read earlier messages"
        } else {
            "new members read only new messages"
        }
    );
    println!("Members ({}):", v.members.len());
    for m in &v.members {
        println!(
            "  {}  {}{}",
            m.id,
            if m.admin { "admin" } else { "member" },
            if m.joined { "" } else { ", invited" }
        );
    }
}

fn done(c: &Common, what: &str, g: &AccountId) {
    if c.json {
        println!(
            "{}",
            json!({"ok": true, "action": what, "group_id": g.to_string()})
        );
    } else {
        println!("{what}: {}", g.short());
    }
}

async fn run_async(c: &Common, client: &Client, cmd: GroupCommand) -> anyhow::Result<()> {
    match cmd {
        GroupCommand::Create {
            name,
            members: who,
            share_history,
        } => {
            let ids = members(client, &who)?;
            let g = client.create_group_with(&name, &ids, share_history).await?;
            if c.json {
                println!(
                    "{}",
                    json!({"group_id": g.to_string(), "name": name, "invited": ids.iter().map(ToString::to_string).collect::<Vec<_>>()})
                );
            } else {
                println!("Group ID: {g}");
                println!(
                    "Created \u{201c}{name}\u{201d}; invited {} member(s).",
                    ids.len()
                );
            }
        }
        GroupCommand::Add {
            group: g,
            members: who,
        } => {
            let g = group(client, &g)?;
            client
                .add_group_members(&g, &members(client, &who)?)
                .await?;
            done(c, "added", &g);
        }
        GroupCommand::Remove {
            group: g,
            members: who,
        } => {
            let g = group(client, &g)?;
            client
                .remove_group_members(&g, &members(client, &who)?)
                .await?;
            done(c, "removed", &g);
        }
        GroupCommand::Leave { group: g } => {
            let g = group(client, &g)?;
            client.leave_group(&g).await?;
            done(c, "left", &g);
        }
        GroupCommand::Promote {
            group: g,
            member: m,
        } => {
            let g = group(client, &g)?;
            client
                .promote_group_member(&g, &member(client, &m)?)
                .await?;
            done(c, "promoted", &g);
        }
        GroupCommand::Rename { group: g, name } => {
            let g = group(client, &g)?;
            client.rename_group(&g, &name).await?;
            done(c, "renamed", &g);
        }
        GroupCommand::Disappearing { group: g, seconds } => {
            if seconds != 0 && !(10..=1_209_600).contains(&seconds) {
                return Err(
                    InputError("the timer must be 0 (off) or 10 s to 14 days".into()).into(),
                );
            }
            let g = group(client, &g)?;
            client.set_group_disappearing(&g, seconds).await?;
            done(c, "disappearing set", &g);
        }
        GroupCommand::History { group: g, value } => {
            let on = match value.as_str() {
                "on" | "yes" | "true" => true,
                "off" | "no" | "false" => false,
                _ => return Err(InputError("value must be on or off".into()).into()),
            };
            let g = group(client, &g)?;
            client.set_group_share_history(&g, on).await?;
            done(c, "history set", &g);
        }
        GroupCommand::Info { group: g } => {
            let g = group(client, &g)?;
            // Fetch the newest state first; show what we hold if offline.
            if let Err(e) = client.refresh_group(&g).await {
                eprintln!("umbra: warning: showing the stored state ({e})");
            }
            print_view(c, &client.group_info(&g)?);
        }
        GroupCommand::List => {
            for v in client.groups()? {
                if c.json {
                    println!("{}", v.to_json());
                } else {
                    println!(
                        "{}  {}  ({} members{}{})",
                        v.id,
                        v.name,
                        v.members.len(),
                        if v.is_admin { ", admin" } else { "" },
                        if v.removed { ", removed" } else { "" }
                    );
                }
            }
            for i in client.group_invites()? {
                if c.json {
                    println!(
                        "{}",
                        json!({"group_id": i.group.to_string(), "name": i.name, "invited_by": i.inviter.to_string(), "pending": true})
                    );
                } else {
                    println!(
                        "{}  {}  (invited by {}; `umbra accept {}` to join)",
                        i.group,
                        i.name,
                        i.inviter.short(),
                        i.group
                    );
                }
            }
        }
    }
    Ok(())
}

/// `umbra send GROUP TEXT`.
pub(crate) async fn send(
    c: &Common,
    client: &Client,
    g: &AccountId,
    text: &str,
) -> anyhow::Result<()> {
    let sent = client.send_group_text(g, text).await?;
    if c.json {
        println!(
            "{}",
            json!({"direction": "out", "peer": g.to_string(), "timestamp": sent.timestamp_ms, "text": text, "status": "sent", "stored_by": sent.accepted_by})
        );
    } else {
        println!(
            "sent to the group at {} (stored by {} swarm member(s))",
            sent.timestamp_ms, sent.accepted_by
        );
    }
    Ok(())
}

/// `umbra accept GROUP`: joins a group from a pending invite.
pub(crate) async fn accept(c: &Common, client: &Client, g: &AccountId) -> anyhow::Result<()> {
    client.accept_group_invite(g).await?;
    done(c, "joined", g);
    Ok(())
}
