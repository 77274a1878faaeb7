//! Untrusted group bytes (spec `groups.md`) a member fetches from the
//! group's swarm or receives in a message: key bundles, signed state
//! documents, member auth from an INVITE, group messages, removal notices,
//! shared history keys, the local key ring, and the control messages
//! carried in a `Content`.
#![no_main]

use std::sync::LazyLock;

use libfuzzer_sys::fuzz_target;
use umbra_proto::group::control::{
    Notice, open_history_keys, open_removal_notice, verify_invite, verify_promote,
};
use umbra_proto::group::{
    GenerationKey, GroupKeys, KeyBundle, KeyRing, MemberAuth, StateDocument, open_group_message,
};
use umbra_proto::identity::{AccountId, AccountKeys};
use umbra_proto::message::decode_content;

/// Keys derived once: deriving them per input would dominate the run.
static KEYS: LazyLock<(AccountId, AccountKeys, GenerationKey)> = LazyLock::new(|| {
    (
        GroupKeys::from_seed(&[4; 32]).id(),
        AccountKeys::from_seed(&[9; 32]),
        GenerationKey::from_bytes([6; 32]),
    )
});

fuzz_target!(|data: &[u8]| {
    let (gid, me, key) = &*KEYS;
    let _ = KeyBundle::parse(data, gid);
    let _ = StateDocument::parse(data, gid);
    let _ = MemberAuth::from_bytes(data, gid);
    let _ = KeyRing::from_bytes(data);
    let _ = open_group_message(data, gid, [(0u64, key)]);
    let _ = open_removal_notice(data, me, gid);
    let _ = open_history_keys(data, me, gid);
    if let Ok(content) = decode_content(data)
        && let Some(ctrl) = content
            .data_message
            .as_ref()
            .and_then(|d| d.umbra_group_control.as_ref())
    {
        let _ = verify_invite(ctrl, &me.account_id(), 0);
        let _ = verify_promote(ctrl);
        let _ = Notice::from_control(ctrl);
    }
});
