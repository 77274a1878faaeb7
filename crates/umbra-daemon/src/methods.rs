//! The API methods (`docs/API.md`, "Methods"): each one validates its
//! by-name parameters, calls the [`Client`] (or its store) and builds the
//! JSON result. Client failures map to the application error codes of
//! [`crate::rpc`].
//!
//! `subscribe` is handled by the connection loop ([`crate::server`]), which
//! owns the socket; here it is only named in [`METHODS`].

use serde_json::{Value, json};
use umbra_client::client::{Client, ClientError, MAX_TIMER_S};
use umbra_client::store::{
    Conversation, Disappearing, DisappearingMode, Message, SETTING_LINK_PREVIEWS,
    SETTING_READ_RECEIPTS, SETTING_TYPING_INDICATORS, StoreError,
};
use umbra_proto::identity::{AccountId, IdPrefix};

use crate::events::{direction_str, status_str};
use crate::rpc::{
    INTERNAL_ERROR, METHOD_NOT_FOUND, NETWORK_ERROR, OPERATION_FAILED, Params, REFUSED, RpcError,
    STORE_ERROR,
};
use crate::server::Shared;

/// Every method the daemon answers.
pub const METHODS: &[&str] = &[
    "send",
    "messages",
    "conversations",
    "requests",
    "contacts",
    "contacts.set-name",
    "accept",
    "decline",
    "block",
    "unblock",
    "settings.get",
    "settings.set",
    "disappearing.set",
    "unsend",
    "account.show",
    "sync",
    "daemon.status",
    "attachment.save",
    "subscribe",
];

/// The API's setting names and their store keys.
const SETTINGS: [(&str, &str); 3] = [
    ("read-receipts", SETTING_READ_RECEIPTS),
    ("typing-indicators", SETTING_TYPING_INDICATORS),
    ("link-previews", SETTING_LINK_PREVIEWS),
];

/// The default disappearing timers (as `umbra disappearing`).
const DEFAULT_AFTER_READ_S: u32 = 43_200;
const DEFAULT_AFTER_SEND_S: u32 = 86_400;
/// The shortest disappearing timer accepted.
const MIN_TIMER_S: u32 = 10;

/// Maps a client failure to an application error.
pub fn client_error(e: &ClientError) -> RpcError {
    let (code, kind) = match e {
        ClientError::Net(_) => (NETWORK_ERROR, "network"),
        ClientError::Refused { .. } => (REFUSED, "refused"),
        ClientError::Invalid(_) => (OPERATION_FAILED, "invalid"),
        ClientError::Store(_) => (STORE_ERROR, "store"),
        _ => (INTERNAL_ERROR, "internal"),
    };
    RpcError::new(code, e.to_string()).with_data(json!({"kind": kind}))
}

/// Maps a store failure to an application error.
pub fn store_error(e: &StoreError) -> RpcError {
    RpcError::new(STORE_ERROR, e.to_string()).with_data(json!({"kind": "store"}))
}

fn message_json(m: &Message) -> Value {
    json!({
        "peer": m.peer.to_string(),
        "author": m.author.to_string(),
        "direction": direction_str(m.direction),
        "timestamp": m.timestamp_ms,
        "received_at": m.received_at_ms,
        "text": m.display_text(),
        "status": status_str(m.status),
        "deleted": m.deleted,
        "read_at": m.read_at_ms,
        "expires_at": m.expires_at_ms,
    })
}

/// A message with its attachments (issue 9): key and URL stay inside.
fn message_with_attachments(client: &Client, m: &Message) -> Value {
    let mut v = message_json(m);
    let atts: Vec<Value> = client
        .attachments(m.id)
        .unwrap_or_default()
        .iter()
        .map(|a| {
            json!({
                "index": a.index,
                "content_type": a.content_type,
                "file_name": a.file_name,
                "size": a.size,
                "voice": a.voice,
                "width": a.width,
                "height": a.height,
                "caption": a.caption,
                "downloaded": a.local.is_some(),
                "error": a.error,
            })
        })
        .collect();
    v["attachments"] = Value::Array(atts);
    v
}

fn mode_str(m: DisappearingMode) -> &'static str {
    match m {
        DisappearingMode::Off => "off",
        DisappearingMode::AfterRead => "after-read",
        DisappearingMode::AfterSend => "after-send",
    }
}

fn conversation_json(c: &Conversation) -> Value {
    json!({
        "peer": c.peer.to_string(),
        "name": c.contact_name,
        "unread": c.unread,
        "last_activity": c.last_activity_ms,
        "is_request": c.is_request,
        "approved_by_us": c.approved_by_us,
        "approved_us": c.approved_us,
        "disappearing": {"mode": mode_str(c.disappearing.mode), "timer": c.disappearing.timer_s},
    })
}

/// A conversation named by parameter `name`: a group (03 ID or group name)
/// or what [`peer`] takes.
fn conversation(client: &Client, p: &Params, name: &str) -> Result<AccountId, RpcError> {
    match client.find_group(p.str(name)?) {
        Ok(Some(g)) => Ok(g),
        Ok(None) => peer(client, p, name),
        Err(e) => Err(client_error(&e)),
    }
}

/// An account ID, or the name of a contact.
fn peer(client: &Client, p: &Params, name: &str) -> Result<AccountId, RpcError> {
    let who = p.str(name)?;
    if let Ok(id) = who.parse::<AccountId>() {
        return Ok(id);
    }
    let contacts = client
        .profile()
        .store()
        .contacts()
        .map_err(|e| store_error(&e))?;
    contacts
        .into_iter()
        .find(|c| c.name == who)
        .map(|c| c.id)
        .ok_or_else(|| {
            RpcError::params(format!(
                "{name:?}: {who:?} is neither an account ID (66 hex characters) nor a contact name"
            ))
        })
}

fn setting_key(p: &Params) -> Result<(&'static str, &'static str), RpcError> {
    let key = p.str("key")?;
    SETTINGS
        .iter()
        .find(|(k, _)| *k == key)
        .copied()
        .ok_or_else(|| {
            RpcError::params(format!(
                "unknown setting {key:?} (read-receipts, typing-indicators, link-previews)"
            ))
        })
}

fn disappearing(p: &Params) -> Result<Disappearing, RpcError> {
    let mode = p.str("mode")?;
    let timer = p.opt_u64("timer")?;
    let timer_s = |default: u32| -> Result<u32, RpcError> {
        let t = timer.unwrap_or(u64::from(default));
        u32::try_from(t)
            .ok()
            .filter(|t| (MIN_TIMER_S..=MAX_TIMER_S).contains(t))
            .ok_or_else(|| {
                RpcError::params(format!(
                    "\"timer\" must be between {MIN_TIMER_S} s and {MAX_TIMER_S} s (14 days)"
                ))
            })
    };
    Ok(match mode {
        "off" => Disappearing::OFF,
        "after-read" => Disappearing {
            mode: DisappearingMode::AfterRead,
            timer_s: timer_s(DEFAULT_AFTER_READ_S)?,
        },
        "after-send" => Disappearing {
            mode: DisappearingMode::AfterSend,
            timer_s: timer_s(DEFAULT_AFTER_SEND_S)?,
        },
        _ => {
            return Err(RpcError::params(
                "\"mode\" must be off, after-read or after-send",
            ));
        }
    })
}

/// Runs one method (all but `subscribe`).
pub async fn call(shared: &Shared, method: &str, p: &Params) -> Result<Value, RpcError> {
    let client = shared.client.as_ref();
    let store = client.profile().store();
    let ce = |e: ClientError| client_error(&e);
    let se = |e: StoreError| store_error(&e);
    match method {
        "send" => {
            p.only(&["to", "text"])?;
            // A group (03 ID or name) or an account (ID or contact name), as
            // `umbra send` takes, so that the CLI can forward it unchanged.
            let to = conversation(client, p, "to")?;
            let text = p.str("text")?;
            if text.is_empty() {
                return Err(RpcError::params("\"text\" must not be empty"));
            }
            let sent = if to.prefix() == IdPrefix::Group {
                client.send_group_text(&to, text).await
            } else {
                client.send_text(&to, text).await
            }
            .map_err(ce);
            // Report our own message to subscribers whether or not it went out.
            shared.publish_local_changes();
            let sent = sent?;
            Ok(json!({
                "peer": to.to_string(),
                "timestamp": sent.timestamp_ms,
                "status": "sent",
                "stored_by": sent.accepted_by,
            }))
        }
        "messages" => {
            p.only(&["peer", "since"])?;
            let since = p.opt_u64("since")?;
            if p.0.get("peer").is_none_or(Value::is_null) {
                // Every conversation, without marking anything read.
                let mut all = Vec::new();
                for conv in store.conversations().map_err(se)? {
                    let list = store.messages(&conv.peer, since).map_err(se)?;
                    all.extend(list.iter().map(|m| message_with_attachments(client, m)));
                }
                return Ok(Value::Array(all));
            }
            let who = conversation(client, p, "peer")?;
            let list = client.read_conversation(&who, since).await.map_err(ce)?;
            Ok(Value::Array(
                list.iter()
                    .map(|m| message_with_attachments(client, m))
                    .collect(),
            ))
        }
        "contacts" => {
            p.only(&[])?;
            let list = store.contacts().map_err(se)?;
            Ok(Value::Array(
                list.iter()
                    .map(|c| json!({"account_id": c.id.to_string(), "name": c.name}))
                    .collect(),
            ))
        }
        "contacts.set-name" => {
            p.only(&["peer", "name"])?;
            let who = p.account("peer")?;
            let name = p.str("name")?;
            if name.is_empty() || name.parse::<AccountId>().is_ok() {
                return Err(RpcError::params(
                    "\"name\" must be non-empty and not itself an account ID",
                ));
            }
            store.set_contact_name(&who, name).map_err(se)?;
            store.set_approved_by_us(&who, true).map_err(se)?;
            shared.watcher.forget_request(&who);
            Ok(json!({"account_id": who.to_string(), "name": name}))
        }
        "conversations" => {
            p.only(&[])?;
            let list = store.conversations().map_err(se)?;
            Ok(Value::Array(list.iter().map(conversation_json).collect()))
        }
        "requests" => {
            p.only(&[])?;
            let list = store.requests().map_err(se)?;
            Ok(Value::Array(list.iter().map(conversation_json).collect()))
        }
        "accept" | "decline" | "block" | "unblock" => {
            p.only(&["peer"])?;
            let who = peer(client, p, "peer")?;
            match method {
                "accept" => client.accept(&who).await,
                "decline" => client.decline(&who).await,
                "block" => client.block(&who).await,
                _ => client.unblock(&who),
            }
            .map_err(ce)?;
            shared.watcher.forget_request(&who);
            Ok(json!({"peer": who.to_string()}))
        }
        "settings.get" => {
            p.only(&["key"])?;
            let (name, key) = setting_key(p)?;
            let on = store.bool_setting(key).map_err(se)?;
            Ok(json!({"key": name, "value": on}))
        }
        "settings.set" => {
            p.only(&["key", "value"])?;
            let (name, key) = setting_key(p)?;
            let on = p.switch("value")?;
            store.set_bool_setting(key, on).map_err(se)?;
            Ok(json!({"key": name, "value": on}))
        }
        "disappearing.set" => {
            p.only(&["peer", "mode", "timer"])?;
            let who = peer(client, p, "peer")?;
            let d = disappearing(p)?;
            client.set_disappearing(&who, d).await.map_err(ce)?;
            Ok(json!({"peer": who.to_string(), "mode": mode_str(d.mode), "timer": d.timer_s}))
        }
        "unsend" => {
            p.only(&["peer", "timestamp", "author"])?;
            let who = conversation(client, p, "peer")?;
            let ts = p.u64("timestamp")?;
            let has_author = p.0.get("author").is_some_and(|a| !a.is_null());
            if who.prefix() == IdPrefix::Group {
                // An admin may name another member's message by its author.
                let author = if has_author {
                    peer(client, p, "author")?
                } else {
                    client.account_id()
                };
                client.unsend_group(&who, &author, ts).await.map_err(ce)?;
            } else if has_author {
                return Err(RpcError::params("\"author\" is only for group messages"));
            } else {
                client.unsend(&who, ts).await.map_err(ce)?;
            }
            shared.publish_local_changes();
            Ok(json!({"peer": who.to_string(), "timestamp": ts}))
        }
        "account.show" => {
            p.only(&[])?;
            let k = client.profile().keys();
            Ok(json!({
                "account_id": k.account_id().to_string(),
                "ed25519_pubkey": hex::encode(k.ed25519_public().as_bytes()),
                "x25519_pubkey": hex::encode(k.x25519_public().as_bytes()),
                "home": client.profile().dir().display().to_string(),
            }))
        }
        "sync" => {
            p.only(&[])?;
            let r = shared.sync_now().await.map_err(ce)?;
            Ok(json!({
                "new_messages": r.new_messages,
                "new_requests": r.new_requests,
                "receipts": r.receipts,
                "unsent": r.unsent,
                "undecryptable": r.undecryptable,
                "blocked": r.blocked,
                "typing": r.typing.iter().map(ToString::to_string).collect::<Vec<_>>(),
            }))
        }
        "attachment.save" => {
            p.only(&["timestamp", "index", "path"])?;
            let ts = p.u64("timestamp")?;
            let index = p.opt_u64("index")?.unwrap_or(0) as usize;
            let path = std::path::PathBuf::from(p.str("path")?);
            if !path.is_absolute() || path.exists() {
                return Err(RpcError::params(
                    "\"path\" must be an absolute path that does not exist",
                ));
            }
            let failed = |e: umbra_client::attachments::AttachError| {
                RpcError::new(OPERATION_FAILED, e.to_string()).with_data(json!({"kind": "invalid"}))
            };
            let m = client
                .message_at(ts)
                .map_err(failed)?
                .ok_or_else(|| RpcError::params(format!("no message sent at {ts}")))?;
            let n = client
                .export_attachment(m.id, index, &path, &|_| {})
                .await
                .map_err(failed)?;
            Ok(
                json!({"timestamp": ts, "index": index, "path": path.display().to_string(), "size": n}),
            )
        }
        "daemon.status" => {
            p.only(&[])?;
            Ok(shared.status_json())
        }
        // Groups (issue 8): `group.*` in crate::groups.
        m if crate::groups::GROUP_METHODS.contains(&m) => crate::groups::call(shared, m, p).await,
        _ => Err(
            RpcError::new(METHOD_NOT_FOUND, format!("method not found: {method:?}"))
                .with_data(json!({"methods": METHODS})),
        ),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]

    use super::*;
    use crate::rpc::INVALID_PARAMS;

    fn params(v: Value) -> Params {
        Params(v.as_object().unwrap().clone())
    }

    #[test]
    fn disappearing_modes_defaults_and_bounds() {
        assert_eq!(
            disappearing(&params(json!({"mode": "off", "timer": 5}))).unwrap(),
            Disappearing::OFF
        );
        assert_eq!(
            disappearing(&params(json!({"mode": "after-read"}))).unwrap(),
            Disappearing {
                mode: DisappearingMode::AfterRead,
                timer_s: 43_200
            }
        );
        assert_eq!(
            disappearing(&params(json!({"mode": "after-send", "timer": 60}))).unwrap(),
            Disappearing {
                mode: DisappearingMode::AfterSend,
                timer_s: 60
            }
        );
        for bad in [
            json!({"mode": "after-send", "timer": 9}),
            json!({"mode": "after-send", "timer": 1_209_601}),
            json!({"mode": "after-send", "timer": u64::MAX}),
            json!({"mode": "sometimes"}),
            json!({}),
        ] {
            assert_eq!(
                disappearing(&params(bad.clone())).unwrap_err().code,
                INVALID_PARAMS,
                "{bad}"
            );
        }
    }

    #[test]
    fn setting_names() {
        assert_eq!(
            setting_key(&params(json!({"key": "read-receipts"}))).unwrap(),
            ("read-receipts", SETTING_READ_RECEIPTS)
        );
        let e = setting_key(&params(json!({"key": "privacy.read_receipts"}))).unwrap_err();
        assert_eq!(e.code, INVALID_PARAMS);
        assert!(e.message.contains("unknown setting"));
    }

    #[test]
    fn client_errors_map_to_application_codes() {
        let e = client_error(&ClientError::Invalid("that account is blocked".into()));
        assert_eq!(e.code, OPERATION_FAILED);
        assert_eq!(e.message, "that account is blocked");
        let e = client_error(&ClientError::Refused {
            status: 421,
            text: "wrong swarm".into(),
        });
        assert_eq!(e.code, REFUSED);
        assert_eq!(e.data, Some(json!({"kind": "refused"})));
    }
}
