//! The group methods of the API (`docs/API.md`, "Groups"; issue 8):
//! `group.create`, `group.list`, `group.info`, `group.send`, `group.add`,
//! `group.remove`, `group.leave`, `group.promote`, `group.rename`,
//! `group.accept`, `group.decline`. Each validates its by-name parameters
//! and calls the client's group API ([`umbra_client::groups`]). Group
//! messages are read with `messages {peer: GROUP_ID}`.

use serde_json::{Value, json};
use umbra_client::client::Client;
use umbra_client::groups::GroupView;
use umbra_proto::identity::{AccountId, IdPrefix};

use crate::methods::client_error;
use crate::rpc::{Params, RpcError};
use crate::server::Shared;

/// The group methods, for [`crate::methods::METHODS`].
pub const GROUP_METHODS: &[&str] = &[
    "group.create",
    "group.list",
    "group.info",
    "group.send",
    "group.add",
    "group.remove",
    "group.leave",
    "group.promote",
    "group.rename",
    "group.accept",
    "group.decline",
];

/// `group`: a `03` ID or a group name (of a group, or of a pending invite).
fn group(client: &Client, p: &Params) -> Result<AccountId, RpcError> {
    let g = p.str("group")?;
    if let Some(id) = client.find_group(g).map_err(|e| client_error(&e))? {
        return Ok(id);
    }
    client
        .group_invites()
        .map_err(|e| client_error(&e))?
        .into_iter()
        .find(|i| i.name == g)
        .map(|i| i.group)
        .ok_or_else(|| {
            RpcError::params(format!(
                "\"group\": {g:?} is neither a 03 ID nor a group name"
            ))
        })
}

/// A `05` account from an ID or a contact name.
fn account(client: &Client, who: &str) -> Result<AccountId, RpcError> {
    if let Ok(id) = who.parse::<AccountId>() {
        if id.prefix() != IdPrefix::Standard {
            return Err(RpcError::params(format!("{who:?} is not a 05 account ID")));
        }
        return Ok(id);
    }
    client
        .profile()
        .store()
        .contacts()
        .map_err(|e| crate::methods::store_error(&e))?
        .into_iter()
        .find(|c| c.name == who)
        .map(|c| c.id)
        .ok_or_else(|| {
            RpcError::params(format!(
                "{who:?} is neither an account ID nor a contact name"
            ))
        })
}

/// `members`: an array of account IDs or contact names.
fn members(client: &Client, p: &Params, required: bool) -> Result<Vec<AccountId>, RpcError> {
    let list = match p.0.get("members") {
        None | Some(Value::Null) if !required => return Ok(Vec::new()),
        Some(Value::Array(a)) if !a.is_empty() || !required => a,
        _ => {
            return Err(RpcError::params(
                "\"members\" must be a non-empty array of account IDs or contact names",
            ));
        }
    };
    list.iter()
        .map(|v| {
            v.as_str()
                .ok_or_else(|| RpcError::params("\"members\" entries must be strings"))
                .and_then(|s| account(client, s))
        })
        .collect()
}

/// Runs one `group.*` method.
pub async fn call(shared: &Shared, method: &str, p: &Params) -> Result<Value, RpcError> {
    let client = shared.client.as_ref();
    let ce = |e: umbra_client::client::ClientError| client_error(&e);
    let ok = |g: &AccountId| json!({"group_id": g.to_string()});
    match method {
        "group.create" => {
            p.only(&["name", "members", "share_history"])?;
            let name = p.str("name")?;
            let ids = members(client, p, false)?;
            let share =
                p.0.get("share_history")
                    .and_then(Value::as_bool)
                    .unwrap_or(false);
            let g = client
                .create_group_with(name, &ids, share)
                .await
                .map_err(ce)?;
            shared.publish_local_changes();
            Ok(ok(&g))
        }
        "group.list" => {
            p.only(&[])?;
            let mut out: Vec<Value> = client
                .groups()
                .map_err(ce)?
                .iter()
                .map(GroupView::to_json)
                .collect();
            for i in client.group_invites().map_err(ce)? {
                out.push(json!({"group_id": i.group.to_string(), "name": i.name, "invited_by": i.inviter.to_string(), "pending": true}));
            }
            Ok(Value::Array(out))
        }
        "group.info" => {
            p.only(&["group"])?;
            let g = group(client, p)?;
            let _ = client.refresh_group(&g).await;
            Ok(client.group_info(&g).map_err(ce)?.to_json())
        }
        "group.send" => {
            p.only(&["group", "text"])?;
            let g = group(client, p)?;
            let text = p.str("text")?;
            if text.is_empty() {
                return Err(RpcError::params("\"text\" must not be empty"));
            }
            let sent = client.send_group_text(&g, text).await.map_err(ce);
            shared.publish_local_changes();
            let sent = sent?;
            Ok(
                json!({"group_id": g.to_string(), "timestamp": sent.timestamp_ms, "status": "sent", "stored_by": sent.accepted_by}),
            )
        }
        "group.add" | "group.remove" => {
            p.only(&["group", "members"])?;
            let g = group(client, p)?;
            let ids = members(client, p, true)?;
            if method == "group.add" {
                client.add_group_members(&g, &ids).await
            } else {
                client.remove_group_members(&g, &ids).await
            }
            .map_err(ce)?;
            Ok(ok(&g))
        }
        "group.leave" => {
            p.only(&["group"])?;
            let g = group(client, p)?;
            client.leave_group(&g).await.map_err(ce)?;
            Ok(ok(&g))
        }
        "group.promote" => {
            p.only(&["group", "member"])?;
            let g = group(client, p)?;
            let m = account(client, p.str("member")?)?;
            client.promote_group_member(&g, &m).await.map_err(ce)?;
            Ok(ok(&g))
        }
        "group.rename" => {
            p.only(&["group", "name"])?;
            let g = group(client, p)?;
            client.rename_group(&g, p.str("name")?).await.map_err(ce)?;
            Ok(ok(&g))
        }
        "group.accept" => {
            p.only(&["group"])?;
            let g = group(client, p)?;
            client.accept_group_invite(&g).await.map_err(ce)?;
            shared.watcher.forget_request(&g);
            Ok(ok(&g))
        }
        "group.decline" => {
            p.only(&["group"])?;
            let g = group(client, p)?;
            client.decline_group_invite(&g).map_err(ce)?;
            shared.watcher.forget_request(&g);
            Ok(ok(&g))
        }
        _ => Err(RpcError::params(format!("unknown group method {method:?}"))),
    }
}
