//! The messaging commands: `umbra account …`, `send`, `sync`, `messages`,
//! `contacts`, `requests`, `accept`, `decline`, `block`, `unblock`,
//! `settings`, `disappearing`, `unsend`.
//!
//! All client state lives in one profile directory (`--home DIR`, else
//! `UMBRA_HOME`, else the platform data directory). The profile keeps a copy
//! of the network configuration it was created with. With `--json` each
//! command prints one JSON object per line.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use clap::{Args, Subcommand};
use serde_json::json;
use umbra_client::client::Client;
use umbra_client::profile::Profile;
use umbra_client::store::{Direction, Disappearing, DisappearingMode, Message, MessageStatus};
use umbra_proto::identity::AccountId;
use umbra_proto::mnemonic::AccountSeed;
use umbra_proto::network::NetworkConfig;
use umbra_proto::path::PathConfig;

/// Options every messaging command takes.
#[derive(Debug, Args, Clone)]
pub struct Common {
    /// The profile directory (default: $UMBRA_HOME, else the platform data dir).
    #[arg(long, global = true)]
    home: Option<PathBuf>,
    /// A file holding the profile passphrase (or set UMBRA_PASSPHRASE).
    #[arg(long, global = true)]
    passphrase_file: Option<PathBuf>,
    /// One JSON object per line instead of text.
    #[arg(long, global = true)]
    pub(crate) json: bool,
}

/// `umbra account …`.
#[derive(Debug, Subcommand)]
pub enum AccountCommand {
    /// Create a new account (prints its ID and 25-word recovery phrase once).
    Create {
        /// The network configuration (e.g. DIR/network.json written by `umbra devnet up`).
        #[arg(long)]
        network: PathBuf,
        /// Protect the profile with the passphrase in --passphrase-file.
        #[arg(long)]
        protect: bool,
    },
    /// Restore an account from its 13- or 25-word phrase (stdin, or --mnemonic).
    Restore {
        /// The network configuration.
        #[arg(long)]
        network: PathBuf,
        /// The phrase (prefer stdin: arguments can end up in shell history).
        #[arg(long)]
        mnemonic: Option<String>,
        /// Protect the profile with the passphrase in --passphrase-file.
        #[arg(long)]
        protect: bool,
    },
    /// Show this profile's account ID and public keys.
    Show,
}

/// A messaging command.
#[derive(Debug, Subcommand)]
pub enum MsgCommand {
    /// Send a text message to an account ID (or a contact's name).
    Send {
        /// Account ID (66 hex) or contact name.
        to: String,
        /// The text.
        text: String,
    },
    /// Fetch new messages from your swarm (through onion paths).
    Sync,
    /// List messages (of one conversation, marking it read).
    Messages {
        /// Account ID or contact name; all conversations when absent.
        peer: Option<String>,
        /// Only messages sent at or after this time (unix ms).
        #[arg(long)]
        since: Option<u64>,
    },
    /// List contacts, or name one: `contacts set-name ID NAME`.
    Contacts {
        #[command(subcommand)]
        action: Option<ContactsAction>,
    },
    /// List message requests (first messages from unknown accounts).
    Requests,
    /// Accept a message request.
    Accept {
        /// Account ID or contact name.
        peer: String,
    },
    /// Decline a message request (deletes it; nothing is sent).
    Decline {
        /// Account ID or contact name.
        peer: String,
    },
    /// Block an account (its messages are dropped silently).
    Block {
        /// Account ID or contact name.
        peer: String,
    },
    /// Unblock an account.
    Unblock {
        /// Account ID or contact name.
        peer: String,
    },
    /// Privacy settings: read-receipts, typing-indicators, link-previews (all off by default).
    Settings {
        #[command(subcommand)]
        action: Option<SettingsAction>,
    },
    /// Disappearing messages for a conversation: off, after-read or after-send.
    Disappearing {
        /// Account ID or contact name.
        peer: String,
        /// off | after-read | after-send
        mode: String,
        /// Timer in seconds (defaults: 43200 after read, 86400 after send).
        timer: Option<u32>,
    },
    /// Delete one of your messages for everyone (by its timestamp, see `messages`).
    Unsend {
        /// Account ID, contact name, or a group (03 ID or name).
        peer: String,
        /// The message's timestamp (ms).
        timestamp: u64,
        /// In a group, an admin may unsend another member's message: its
        /// author's account ID (default: you).
        #[arg(long)]
        author: Option<String>,
    },
}

/// `contacts` actions.
#[derive(Debug, Subcommand)]
pub enum ContactsAction {
    /// Give an account a local name.
    SetName {
        /// Account ID.
        id: String,
        /// The name.
        name: String,
    },
}

/// `settings` actions.
#[derive(Debug, Subcommand)]
pub enum SettingsAction {
    /// Show one setting.
    Get {
        /// read-receipts | typing-indicators | link-previews
        key: String,
    },
    /// Change one setting.
    Set {
        /// read-receipts | typing-indicators | link-previews
        key: String,
        /// on | off
        value: String,
    },
}

/// Bad input from the user (exit code 2).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct InputError(pub String);

fn home(c: &Common) -> anyhow::Result<PathBuf> {
    match &c.home {
        Some(h) => Ok(h.clone()),
        None => Profile::default_dir()
            .context("no profile directory: pass --home DIR or set UMBRA_HOME"),
    }
}

fn passphrase(c: &Common) -> anyhow::Result<Option<String>> {
    if let Some(f) = &c.passphrase_file {
        let s = std::fs::read_to_string(f).with_context(|| format!("reading {}", f.display()))?;
        return Ok(Some(s.trim_end_matches(['\n', '\r']).to_string()));
    }
    Ok(std::env::var("UMBRA_PASSPHRASE").ok())
}

fn read_network(path: &Path) -> anyhow::Result<NetworkConfig> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    NetworkConfig::from_json(&text)
        .with_context(|| format!("{} is not a network configuration", path.display()))
}

const NETWORK_FILE: &str = "network.json";

fn path_config(network: &NetworkConfig) -> PathConfig {
    // Small local networks (a devnet) have fewer than the 8 nodes a public
    // network needs before a client bootstraps again.
    let _ = network;
    PathConfig::default().with_min_usable_nodes(4)
}

pub(crate) fn open_client(c: &Common) -> anyhow::Result<Client> {
    let dir = home(c)?;
    let profile = Profile::open(&dir, passphrase(c)?.as_deref())
        .with_context(|| format!("opening the profile in {}", dir.display()))?;
    let network = read_network(&dir.join(NETWORK_FILE))?;
    let pc = path_config(&network);
    Ok(Client::open(profile, network, pc)?)
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")
}

pub(crate) fn resolve(client: &Client, who: &str) -> anyhow::Result<AccountId> {
    if let Ok(id) = who.parse::<AccountId>() {
        if id.x25519().is_none() {
            return Err(InputError(format!(
                "{} is not a standard (05) account ID; 1:1 messages go to 05 accounts",
                id.short()
            ))
            .into());
        }
        return Ok(id);
    }
    let contacts = client.profile().store().contacts()?;
    match contacts.iter().find(|c| c.name == who) {
        Some(c) => Ok(c.id),
        None => Err(InputError(format!(
            "{who:?} is neither an account ID (66 hex characters) nor a contact name"
        ))
        .into()),
    }
}

/// Creates the profile in `dir` for `seed` and saves the network configuration in it.
fn create_profile(
    c: &Common,
    dir: &Path,
    network: &Path,
    seed: &AccountSeed,
    protect: bool,
) -> anyhow::Result<Profile> {
    let net = read_network(network)?;
    let pass = if protect {
        Some(passphrase(c)?.context("--protect needs --passphrase-file or UMBRA_PASSPHRASE")?)
    } else {
        None
    };
    let profile = Profile::create(dir, seed, pass.as_deref())?;
    std::fs::write(dir.join(NETWORK_FILE), net.to_json())
        .context("saving the network configuration")?;
    Ok(profile)
}

/// Runs `umbra account …`.
pub fn account(c: &Common, cmd: AccountCommand) -> anyhow::Result<()> {
    let dir = home(c)?;
    match cmd {
        AccountCommand::Create { network, protect } => {
            let seed = AccountSeed::new_umbra(&umbra_crypto::random_bytes::<32>());
            let profile = create_profile(c, &dir, &network, &seed, protect)?;
            let id = profile.account_id();
            let phrase = profile.phrase();
            if c.json {
                println!(
                    "{}",
                    json!({"account_id": id.to_string(), "mnemonic": phrase.as_str(), "home": dir.display().to_string()})
                );
            } else {
                println!("Account ID:      {id}");
                println!("Recovery phrase: {}", phrase.as_str());
                println!(
                    "Write the phrase down: it is shown only now, and it is the only way to restore this account."
                );
            }
            Ok(())
        }
        AccountCommand::Restore {
            network,
            mnemonic,
            protect,
        } => {
            let phrase = match mnemonic {
                Some(m) => zeroize::Zeroizing::new(m),
                None => crate::keys::read_phrase_from_stdin()?,
            };
            let seed = AccountSeed::from_phrase(&phrase)?;
            let profile = create_profile(c, &dir, &network, &seed, protect)?;
            let id = profile.account_id();
            if c.json {
                println!(
                    "{}",
                    json!({"account_id": id.to_string(), "home": dir.display().to_string()})
                );
            } else {
                println!("Account ID: {id}  (restored; run `umbra sync` to fetch messages)");
            }
            Ok(())
        }
        AccountCommand::Show => {
            let profile = Profile::open(&dir, passphrase(c)?.as_deref())?;
            let k = profile.keys();
            let v = json!({
                "account_id": k.account_id().to_string(),
                "ed25519_pubkey": hex::encode(k.ed25519_public().as_bytes()),
                "x25519_pubkey": hex::encode(k.x25519_public().as_bytes()),
                "home": dir.display().to_string(),
            });
            if c.json {
                println!("{v}");
            } else {
                println!(
                    "Account ID:     {}",
                    v["account_id"].as_str().unwrap_or_default()
                );
                println!(
                    "Ed25519 public: {}",
                    v["ed25519_pubkey"].as_str().unwrap_or_default()
                );
                println!(
                    "X25519 public:  {}",
                    v["x25519_pubkey"].as_str().unwrap_or_default()
                );
                println!("Profile:        {}", dir.display());
            }
            Ok(())
        }
    }
}

fn status_str(s: MessageStatus) -> &'static str {
    match s {
        MessageStatus::Sending => "sending",
        MessageStatus::Sent => "sent",
        MessageStatus::Failed => "failed",
        MessageStatus::Delivered => "delivered",
        MessageStatus::Read => "read",
    }
}

fn print_message(c: &Common, client: &Client, m: &Message) {
    let atts = crate::files::attachments_of(client, m);
    // Link preview (messages.md §16; issue 5 hook).
    let preview = umbra_client::preview::lookup(client.profile().store(), m)
        .ok()
        .flatten();
    let direction = if m.direction == Direction::Out {
        "out"
    } else {
        "in"
    };
    if c.json {
        println!(
            "{}",
            json!({
                "direction": direction,
                "peer": m.peer.to_string(),
                "author": m.author.to_string(),
                "timestamp": m.timestamp_ms,
                "text": m.display_text(),
                "status": status_str(m.status),
                "deleted": m.deleted,
                "expires_at": m.expires_at_ms,
                "attachments": atts.iter().map(crate::files::record_json).collect::<Vec<_>>(),
                "preview": preview.as_ref().map(|p| json!({
                    "url": p.url,
                    "title": p.title,
                    "image": p.image.as_ref().map(|i| json!({"content_type": i.content_type, "width": i.width, "height": i.height, "size": i.size})),
                })),
            })
        );
    } else {
        let arrow = if m.direction == Direction::Out {
            "→"
        } else {
            "←"
        };
        println!(
            "{} {arrow} {} [{}] {}",
            m.timestamp_ms,
            m.peer.short(),
            status_str(m.status),
            m.display_text()
        );
        for a in &atts {
            println!("    [attachment {}] {}", a.index, a.describe());
        }
        if let Some(p) = &preview {
            let image = match &p.image {
                Some(i) => match (i.width, i.height) {
                    (Some(w), Some(h)) => format!(" (thumbnail {w}×{h})"),
                    _ => " (thumbnail)".to_string(),
                },
                None => String::new(),
            };
            println!("    [preview] {} <{}>{image}", p.title, p.url);
        }
    }
}

fn setting_key(key: &str) -> anyhow::Result<&'static str> {
    use umbra_client::store::{
        SETTING_LINK_PREVIEWS, SETTING_READ_RECEIPTS, SETTING_TYPING_INDICATORS,
    };
    Ok(match key {
        "read-receipts" => SETTING_READ_RECEIPTS,
        "typing-indicators" => SETTING_TYPING_INDICATORS,
        "link-previews" => SETTING_LINK_PREVIEWS,
        _ => bail!("unknown setting {key:?} (read-receipts, typing-indicators, link-previews)"),
    })
}

const SETTING_HELP: [(&str, &str); 3] = [
    (
        "read-receipts",
        "tells senders when you read their messages (only if they enable it too)",
    ),
    ("typing-indicators", "shows contacts when you are typing"),
    (
        "link-previews",
        "fetches previews of links you send, through the onion network",
    ),
];

/// Runs `umbra daemon`: the headless client serving the JSON-RPC API on
/// `PROFILE/daemon.sock` until SIGTERM or Ctrl-C (see docs/API.md).
pub fn daemon(c: &Common, sync_interval: f64) -> anyhow::Result<()> {
    let dir = home(c)?;
    let client = std::sync::Arc::new(open_client(c)?);
    let interval = std::time::Duration::try_from_secs_f64(sync_interval)
        .context("--sync-interval must be a positive number of seconds")?;
    let socket = umbra_daemon::socket_path(&dir);
    eprintln!(
        "umbra daemon: {} serving on {}",
        client.account_id().short(),
        socket.display()
    );
    runtime()?.block_on(async {
        let options = umbra_daemon::ServeOptions::default().with_sync_interval(interval);
        umbra_daemon::serve_with_options(
            client,
            &socket,
            options,
            umbra_node::daemon::shutdown_signal(),
        )
        .await
    })?;
    Ok(())
}

/// The daemon method and params a one-shot command maps to.
fn daemon_call(cmd: &MsgCommand) -> Vec<(&'static str, serde_json::Value)> {
    match cmd {
        MsgCommand::Send { to, text } => vec![("send", json!({"to": to, "text": text}))],
        MsgCommand::Sync => vec![("sync", json!({}))],
        MsgCommand::Messages { peer, since } => {
            vec![("messages", json!({"peer": peer, "since": since}))]
        }
        MsgCommand::Contacts { action: None } => vec![("contacts", json!({}))],
        MsgCommand::Contacts {
            action: Some(ContactsAction::SetName { id, name }),
        } => {
            vec![("contacts.set-name", json!({"peer": id, "name": name}))]
        }
        MsgCommand::Requests => vec![("requests", json!({}))],
        MsgCommand::Accept { peer } => vec![("accept", json!({"peer": peer}))],
        MsgCommand::Decline { peer } => vec![("decline", json!({"peer": peer}))],
        MsgCommand::Block { peer } => vec![("block", json!({"peer": peer}))],
        MsgCommand::Unblock { peer } => vec![("unblock", json!({"peer": peer}))],
        MsgCommand::Settings { action: None } => SETTING_HELP
            .iter()
            .map(|(k, _)| ("settings.get", json!({"key": k})))
            .collect(),
        MsgCommand::Settings {
            action: Some(SettingsAction::Get { key }),
        } => {
            vec![("settings.get", json!({"key": key}))]
        }
        MsgCommand::Settings {
            action: Some(SettingsAction::Set { key, value }),
        } => {
            let v = match value.as_str() {
                "yes" | "true" => "on",
                "no" | "false" => "off",
                other => other,
            };
            vec![("settings.set", json!({"key": key, "value": v}))]
        }
        MsgCommand::Disappearing { peer, mode, timer } => {
            vec![(
                "disappearing.set",
                json!({"peer": peer, "mode": mode, "timer": timer}),
            )]
        }
        MsgCommand::Unsend {
            peer,
            timestamp,
            author,
        } => {
            let mut params = json!({"peer": peer, "timestamp": timestamp});
            if let Some(a) = author {
                params["author"] = json!(a);
            }
            vec![("unsend", params)]
        }
    }
}

/// Sends a one-shot command to the running daemon (it holds the profile).
async fn forward(c: &Common, socket: &Path, cmd: MsgCommand) -> anyhow::Result<()> {
    for (method, params) in daemon_call(&cmd) {
        let result = match umbra_daemon::call(socket, method, params).await {
            Ok(v) => v,
            Err(umbra_daemon::CallError::Rpc { message, .. }) => bail!("{message}"),
            Err(e) => return Err(e).context("talking to the running umbra daemon"),
        };
        let items: Vec<serde_json::Value> = match result {
            serde_json::Value::Array(a) => a,
            serde_json::Value::Null => Vec::new(),
            v => vec![v],
        };
        for item in items {
            if c.json {
                println!("{item}");
            } else {
                match method {
                    "messages" => println!(
                        "{} {} {} [{}] {}",
                        item["timestamp"],
                        if item["direction"] == "out" {
                            "→"
                        } else {
                            "←"
                        },
                        item["peer"]
                            .as_str()
                            .map_or(String::new(), |p| p.chars().take(8).collect()),
                        item["status"].as_str().unwrap_or_default(),
                        item["text"].as_str().unwrap_or_default()
                    ),
                    "settings.get" => println!(
                        "{:<18} {}",
                        item["key"].as_str().unwrap_or_default(),
                        if item["value"].as_bool() == Some(true) {
                            "on"
                        } else {
                            "off"
                        }
                    ),
                    _ => println!("{item}"),
                }
            }
        }
    }
    Ok(())
}

/// What link previews cost, said when they are turned on (`messages.md`
/// §16.1 step 1).
pub const LINK_PREVIEW_NOTE: &str = "Link previews on: for the first https link in each message you send, a random node fetches the page (and its image) for you through the onion network. The site sees that node, not you, but learns the link is being shared; the preview's title and thumbnail go to the recipient with your message.";

/// Runs a messaging command (through the daemon when one runs for this profile).
pub fn run(c: &Common, cmd: MsgCommand) -> anyhow::Result<()> {
    if let MsgCommand::Settings {
        action: Some(SettingsAction::Set { key, value }),
    } = &cmd
        && key == "link-previews"
        && matches!(value.as_str(), "on" | "true" | "yes")
    {
        eprintln!("{LINK_PREVIEW_NOTE}");
    }
    let rt = runtime()?;
    if let Some(sock) = rt.block_on(umbra_daemon::running(&home(c)?)) {
        return rt.block_on(forward(c, &sock, cmd));
    }
    drop(rt);
    let client = open_client(c)?;
    let rt = runtime()?;
    let r = rt.block_on(run_async(c, &client, cmd));
    let _ = rt.block_on(client.persist());
    r
}

async fn run_async(c: &Common, client: &Client, cmd: MsgCommand) -> anyhow::Result<()> {
    let store = client.profile().store();
    match cmd {
        MsgCommand::Send { to, text } => {
            // Groups (issue 8): a 03 ID or a group's name.
            if let Some(g) = crate::group::resolve_group(client, &to)? {
                return crate::group::send(c, client, &g, &text).await;
            }
            let to = resolve(client, &to)?;
            let sent = client.send_text(&to, &text).await?;
            if c.json {
                println!(
                    "{}",
                    json!({"direction": "out", "peer": to.to_string(), "timestamp": sent.timestamp_ms, "text": text, "status": "sent", "stored_by": sent.accepted_by})
                );
            } else {
                println!(
                    "sent at {} (stored by {} swarm member(s))",
                    sent.timestamp_ms, sent.accepted_by
                );
            }
        }
        MsgCommand::Sync => {
            let rep = client.sync().await?;
            if c.json {
                println!(
                    "{}",
                    json!({"new_messages": rep.new_messages, "new_requests": rep.new_requests, "receipts": rep.receipts, "unsent": rep.unsent, "undecryptable": rep.undecryptable, "blocked": rep.blocked})
                );
            } else {
                println!(
                    "{} new message(s), {} new request(s), {} receipt(s), {} unsent",
                    rep.new_messages, rep.new_requests, rep.receipts, rep.unsent
                );
            }
        }
        MsgCommand::Messages { peer, since } => match peer {
            Some(p) => {
                let p = match crate::group::resolve_group(client, &p)? {
                    Some(g) => g,
                    None => resolve(client, &p)?,
                };
                for m in client.read_conversation(&p, since).await? {
                    print_message(c, client, &m);
                }
            }
            None => {
                for conv in store.conversations()? {
                    for m in store.messages(&conv.peer, since)? {
                        print_message(c, client, &m);
                    }
                }
            }
        },
        MsgCommand::Contacts { action } => match action {
            Some(ContactsAction::SetName { id, name }) => {
                let id: AccountId = id.parse().context("not an account ID")?;
                store.set_contact_name(&id, &name)?;
                store.set_approved_by_us(&id, true)?;
            }
            None => {
                for ct in store.contacts()? {
                    if c.json {
                        println!(
                            "{}",
                            json!({"account_id": ct.id.to_string(), "name": ct.name})
                        );
                    } else {
                        println!("{}  {}", ct.id, ct.name);
                    }
                }
            }
        },
        MsgCommand::Requests => {
            for conv in store.requests()? {
                if c.json {
                    println!(
                        "{}",
                        json!({"peer": conv.peer.to_string(), "unread": conv.unread, "last_activity": conv.last_activity_ms})
                    );
                } else {
                    println!("{}  ({} unread)", conv.peer, conv.unread);
                }
            }
        }
        MsgCommand::Accept { peer } => match crate::group::resolve_group(client, &peer)? {
            Some(g) => crate::group::accept(c, client, &g).await?,
            None => client.accept(&resolve(client, &peer)?).await?,
        },
        MsgCommand::Decline { peer } => match crate::group::resolve_group(client, &peer)? {
            Some(g) => client.decline_group_invite(&g)?,
            None => client.decline(&resolve(client, &peer)?).await?,
        },
        MsgCommand::Block { peer } => client.block(&resolve(client, &peer)?).await?,
        MsgCommand::Unblock { peer } => client.unblock(&resolve(client, &peer)?)?,
        MsgCommand::Settings { action } => match action {
            None => {
                for (k, what) in SETTING_HELP {
                    let on = store.bool_setting(setting_key(k)?)?;
                    if c.json {
                        println!(
                            "{}",
                            json!({"key": k, "value": if on { "on" } else { "off" }})
                        );
                    } else {
                        println!("{k:<18} {:<3}  {what}", if on { "on" } else { "off" });
                    }
                }
            }
            Some(SettingsAction::Get { key }) => {
                let on = store.bool_setting(setting_key(&key)?)?;
                println!("{}", if on { "on" } else { "off" });
            }
            Some(SettingsAction::Set { key, value }) => {
                let on = match value.as_str() {
                    "on" | "true" | "yes" => true,
                    "off" | "false" | "no" => false,
                    _ => bail!("value must be on or off"),
                };
                store.set_bool_setting(setting_key(&key)?, on)?;
            }
        },
        MsgCommand::Disappearing { peer, mode, timer } => {
            let peer = resolve(client, &peer)?;
            let d = match mode.as_str() {
                "off" => Disappearing {
                    mode: DisappearingMode::Off,
                    timer_s: 0,
                },
                "after-read" => Disappearing {
                    mode: DisappearingMode::AfterRead,
                    timer_s: timer.unwrap_or(43_200),
                },
                "after-send" => Disappearing {
                    mode: DisappearingMode::AfterSend,
                    timer_s: timer.unwrap_or(86_400),
                },
                _ => bail!("mode must be off, after-read or after-send"),
            };
            if d.mode != DisappearingMode::Off && !(10..=1_209_600).contains(&d.timer_s) {
                bail!("the timer must be between 10 s and 14 days");
            }
            client.set_disappearing(&peer, d).await?;
        }
        MsgCommand::Unsend {
            peer,
            timestamp,
            author,
        } => match crate::group::resolve_group(client, &peer)? {
            Some(g) => {
                let author = match author {
                    Some(a) => resolve(client, &a)?,
                    None => client.account_id(),
                };
                client.unsend_group(&g, &author, timestamp).await?
            }
            None if author.is_some() => {
                bail!("--author is only for group messages (an admin unsending a member's)")
            }
            None => client.unsend(&resolve(client, &peer)?, timestamp).await?,
        },
    }
    Ok(())
}
