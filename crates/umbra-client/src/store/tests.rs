//! Tests of the local store: round trips of every method, the
//! de-duplication rules, expiry, refusals (wrong key, newer schema,
//! tampered values) and at-rest properties of the file.

use super::*;
use umbra_proto::identity::IdPrefix;

fn id(n: u8) -> AccountId {
    AccountId::new(IdPrefix::Standard, [n; 32])
}

fn store() -> LocalStore {
    LocalStore::open_in_memory(&LocalKey::from_bytes([3; 32])).unwrap()
}

fn msg(
    peer: AccountId,
    direction: Direction,
    author: AccountId,
    ts: u64,
    text: &str,
) -> NewMessage {
    NewMessage {
        peer,
        direction,
        author,
        timestamp_ms: ts,
        received_at_ms: ts.saturating_add(5),
        text: text.into(),
        status: if direction == Direction::In {
            MessageStatus::Delivered
        } else {
            MessageStatus::Sending
        },
        hash: None,
        disappearing: Disappearing::OFF,
        expires_at_ms: None,
    }
}

fn with_hash(mut m: NewMessage, h: &str) -> NewMessage {
    m.hash = Some(h.into());
    m
}

const ME: u8 = 1;

#[test]
fn store_is_send_and_sync() {
    fn check<T: Send + Sync>() {}
    check::<LocalStore>();
}

#[test]
fn conversation_flags_round_trip() {
    let s = store();
    let p = id(2);
    assert_eq!(s.conversation(&p).unwrap(), None);
    s.set_approved_by_us(&p, true).unwrap();
    let c = s.conversation(&p).unwrap().unwrap();
    assert_eq!(c.peer, p);
    assert!(c.approved_by_us && !c.approved_us && !c.blocked && !c.is_request);
    assert_eq!(c.disappearing, Disappearing::OFF);
    assert_eq!((c.last_activity_ms, c.unread), (0, 0));
    assert_eq!(c.contact_name, None);

    s.set_approved_us(&p, true).unwrap();
    s.set_approved_by_us(&p, false).unwrap();
    let c = s.conversation(&p).unwrap().unwrap();
    assert!(!c.approved_by_us && c.approved_us && c.is_request);

    let d = Disappearing {
        mode: DisappearingMode::AfterRead,
        timer_s: 43_200,
    };
    s.set_disappearing(&p, d).unwrap();
    assert_eq!(s.conversation(&p).unwrap().unwrap().disappearing, d);
    let das = Disappearing {
        mode: DisappearingMode::AfterSend,
        timer_s: 86_400,
    };
    s.set_disappearing(&p, das).unwrap();
    assert_eq!(s.conversation(&p).unwrap().unwrap().disappearing, das);
    // Off is stored with timer 0 whatever the caller passed.
    s.set_disappearing(
        &p,
        Disappearing {
            mode: DisappearingMode::Off,
            timer_s: 99,
        },
    )
    .unwrap();
    assert_eq!(
        s.conversation(&p).unwrap().unwrap().disappearing,
        Disappearing::OFF
    );

    s.set_blocked(&p, true).unwrap();
    assert!(s.conversation(&p).unwrap().unwrap().blocked);
    assert_eq!(s.blocked_accounts().unwrap(), vec![p]);
    s.set_blocked(&p, false).unwrap();
    assert!(s.blocked_accounts().unwrap().is_empty());
}

#[test]
fn conversation_lists_requests_and_activity() {
    let s = store();
    let me = id(ME);
    let (a, b, c, blocked) = (id(2), id(3), id(4), id(5));
    // A flag alone does not list a conversation: it has had no message.
    s.set_approved_us(&c, true).unwrap();
    assert!(s.conversations().unwrap().is_empty());

    s.insert_message(&msg(a, Direction::In, a, 100, "hi"))
        .unwrap();
    s.insert_message(&msg(b, Direction::Out, me, 300, "hey"))
        .unwrap();
    s.set_approved_by_us(&b, true).unwrap();
    s.insert_message(&msg(blocked, Direction::In, blocked, 400, "spam"))
        .unwrap();
    s.set_blocked(&blocked, true).unwrap();
    s.insert_message(&msg(a, Direction::In, a, 200, "again"))
        .unwrap();

    let list = s.conversations().unwrap();
    assert_eq!(list.iter().map(|c| c.peer).collect::<Vec<_>>(), vec![b, a]);
    assert_eq!(list[0].last_activity_ms, 300);
    assert_eq!(list[1].last_activity_ms, 200);
    assert_eq!((list[0].unread, list[1].unread), (0, 2));
    assert!(!list[0].is_request && list[1].is_request);
    let req = s.requests().unwrap();
    assert_eq!(req.len(), 1);
    assert_eq!(req[0].peer, a);

    // An older message does not lower the activity time.
    s.insert_message(&msg(a, Direction::In, a, 50, "old"))
        .unwrap();
    assert_eq!(s.conversation(&a).unwrap().unwrap().last_activity_ms, 200);

    // A contact is not a request.
    s.set_contact_name(&a, "Alice").unwrap();
    let ca = s.conversation(&a).unwrap().unwrap();
    assert!(!ca.is_request);
    assert_eq!(ca.contact_name.as_deref(), Some("Alice"));
    assert!(s.requests().unwrap().is_empty());
}

#[test]
fn delete_conversation_removes_messages_and_returns_hashes() {
    let s = store();
    let (a, b) = (id(2), id(3));
    s.insert_message(&with_hash(msg(a, Direction::In, a, 1, "one"), "h1"))
        .unwrap();
    s.insert_message(&with_hash(msg(a, Direction::In, a, 2, "two"), "h2"))
        .unwrap();
    s.insert_message(&msg(a, Direction::In, a, 3, "no hash"))
        .unwrap();
    s.insert_message(&with_hash(msg(b, Direction::In, b, 1, "keep"), "h3"))
        .unwrap();
    s.set_contact_name(&a, "A").unwrap();
    let mut hashes = s.delete_conversation(&a).unwrap();
    hashes.sort();
    assert_eq!(hashes, vec!["h1".to_string(), "h2".to_string()]);
    assert_eq!(s.conversation(&a).unwrap(), None);
    assert!(s.messages(&a, None).unwrap().is_empty());
    assert_eq!(s.messages(&b, None).unwrap().len(), 1);
    // The contact entry stays; the hashes are free again.
    assert_eq!(s.contact_name(&a).unwrap().as_deref(), Some("A"));
    assert!(
        s.insert_message(&with_hash(msg(a, Direction::In, a, 1, "one"), "h1"))
            .unwrap()
            .is_some()
    );
    assert!(s.delete_conversation(&id(9)).unwrap().is_empty());
}

#[test]
fn contacts_round_trip() {
    let s = store();
    assert!(s.contacts().unwrap().is_empty());
    s.set_contact_name(&id(3), "Zed").unwrap();
    s.set_contact_name(&id(2), "Bob").unwrap();
    s.set_contact_name(&id(4), "").unwrap();
    s.set_contact_name(&id(2), "Bobby ✓").unwrap();
    let names: Vec<(AccountId, String)> = s
        .contacts()
        .unwrap()
        .into_iter()
        .map(|c| (c.id, c.name))
        .collect();
    assert_eq!(
        names,
        vec![
            (id(4), String::new()),
            (id(2), "Bobby ✓".to_string()),
            (id(3), "Zed".to_string())
        ]
    );
    assert_eq!(s.contact_name(&id(3)).unwrap().as_deref(), Some("Zed"));
    assert!(s.remove_contact(&id(3)).unwrap());
    assert!(!s.remove_contact(&id(3)).unwrap());
    assert_eq!(s.contact_name(&id(3)).unwrap(), None);
    assert_eq!(s.contacts().unwrap().len(), 2);
}

#[test]
fn message_round_trip_every_field() {
    let s = store();
    let (me, p) = (id(ME), id(2));
    let new = NewMessage {
        peer: p,
        direction: Direction::Out,
        author: me,
        timestamp_ms: 1_700_000_000_000,
        received_at_ms: 1_700_000_000_123,
        text: "hello ünïcode 👋".into(),
        status: MessageStatus::Sent,
        hash: Some("hashAAA".into()),
        disappearing: Disappearing {
            mode: DisappearingMode::AfterSend,
            timer_s: 60,
        },
        expires_at_ms: Some(1_700_000_060_000),
    };
    let mid = s.insert_message(&new).unwrap().unwrap();
    let m = s.message(mid).unwrap().unwrap();
    assert_eq!(
        m,
        Message {
            id: mid,
            peer: p,
            direction: Direction::Out,
            author: me,
            timestamp_ms: 1_700_000_000_000,
            received_at_ms: 1_700_000_000_123,
            text: "hello ünïcode 👋".into(),
            status: MessageStatus::Sent,
            hash: Some("hashAAA".into()),
            disappearing: new.disappearing,
            // Derived: expires_at − timer.
            expiration_start_ms: Some(1_700_000_000_000),
            expires_at_ms: Some(1_700_000_060_000),
            read_at_ms: None,
            deleted: false,
        }
    );
    assert_eq!(m.display_text(), "hello ünïcode 👋");
    assert_eq!(s.messages(&p, None).unwrap(), vec![m.clone()]);
    assert_eq!(
        s.message_by_author_ts(&p, &me, 1_700_000_000_000).unwrap(),
        Some(m.clone())
    );
    assert_eq!(
        s.message_by_author_ts(&p, &p, 1_700_000_000_000).unwrap(),
        None
    );
    assert_eq!(s.message_by_author_ts(&p, &me, 1).unwrap(), None);
    assert_eq!(s.message_by_hash("hashAAA").unwrap(), Some(m));
    assert_eq!(s.message_by_hash("other").unwrap(), None);
    assert_eq!(s.message(MessageId(999)).unwrap(), None);

    // Every status and direction survives.
    for (i, st) in [
        MessageStatus::Sending,
        MessageStatus::Sent,
        MessageStatus::Failed,
        MessageStatus::Delivered,
        MessageStatus::Read,
    ]
    .into_iter()
    .enumerate()
    {
        assert!(s.set_status(mid, st).unwrap());
        assert_eq!(s.message(mid).unwrap().unwrap().status, st, "status {i}");
    }
    assert!(!s.set_status(MessageId(999), MessageStatus::Sent).unwrap());
    let inc = s
        .insert_message(&msg(p, Direction::In, p, 5, ""))
        .unwrap()
        .unwrap();
    let m = s.message(inc).unwrap().unwrap();
    assert_eq!(
        (m.direction, m.author, m.text.as_str()),
        (Direction::In, p, "")
    );
    assert_eq!(m.expiration_start_ms, None);
}

#[test]
fn dedup_by_author_and_timestamp() {
    let s = store();
    let (me, p, q) = (id(ME), id(2), id(3));
    let first = s
        .insert_message(&msg(p, Direction::In, p, 10, "a"))
        .unwrap();
    assert!(first.is_some());
    // Same (peer, author, T): duplicate, even with other text.
    assert_eq!(
        s.insert_message(&msg(p, Direction::In, p, 10, "b"))
            .unwrap(),
        None
    );
    // Another author, another T or another conversation: distinct.
    assert!(
        s.insert_message(&msg(p, Direction::Out, me, 10, "c"))
            .unwrap()
            .is_some()
    );
    assert!(
        s.insert_message(&msg(p, Direction::In, p, 11, "d"))
            .unwrap()
            .is_some()
    );
    assert!(
        s.insert_message(&msg(q, Direction::In, p, 10, "e"))
            .unwrap()
            .is_some()
    );
    let texts: Vec<String> = s
        .messages(&p, None)
        .unwrap()
        .into_iter()
        .map(|m| m.text)
        .collect();
    assert_eq!(texts, vec!["a", "c", "d"]);
}

#[test]
fn dedup_by_swarm_hash_and_hash_fill_in() {
    let s = store();
    let (me, p) = (id(ME), id(2));
    assert!(
        s.insert_message(&with_hash(msg(p, Direction::In, p, 1, "x"), "H"))
            .unwrap()
            .is_some()
    );
    // Same hash, different T: duplicate.
    assert_eq!(
        s.insert_message(&with_hash(msg(p, Direction::In, p, 2, "y"), "H"))
            .unwrap(),
        None
    );
    assert_eq!(s.messages(&p, None).unwrap().len(), 1);

    // Our outgoing message, stored before its sync copy's hash is known,
    // learns the hash when the sync copy comes back.
    let out = s
        .insert_message(&msg(p, Direction::Out, me, 5, "mine"))
        .unwrap()
        .unwrap();
    assert_eq!(
        s.insert_message(&with_hash(msg(p, Direction::Out, me, 5, "mine"), "SYNC"))
            .unwrap(),
        None
    );
    assert_eq!(
        s.message(out).unwrap().unwrap().hash.as_deref(),
        Some("SYNC")
    );
    // A known hash is not replaced by a later duplicate.
    assert_eq!(
        s.insert_message(&with_hash(msg(p, Direction::Out, me, 5, "mine"), "OTHER"))
            .unwrap(),
        None
    );
    assert_eq!(
        s.message(out).unwrap().unwrap().hash.as_deref(),
        Some("SYNC")
    );
    assert_eq!(s.message_by_hash("OTHER").unwrap(), None);
}

#[test]
fn set_hash_and_hash_in_use() {
    let s = store();
    let p = id(2);
    let a = s
        .insert_message(&msg(p, Direction::In, p, 1, "a"))
        .unwrap()
        .unwrap();
    let b = s
        .insert_message(&msg(p, Direction::In, p, 2, "b"))
        .unwrap()
        .unwrap();
    assert!(s.set_hash(a, "ha").unwrap());
    assert!(
        s.set_hash(a, "ha").unwrap(),
        "re-setting the same hash is fine"
    );
    assert!(matches!(s.set_hash(b, "ha"), Err(StoreError::HashInUse)));
    assert!(s.set_hash(a, "ha2").unwrap());
    assert_eq!(s.message_by_hash("ha").unwrap(), None);
    assert_eq!(s.message_by_hash("ha2").unwrap().unwrap().id, a);
    assert!(!s.set_hash(MessageId(999), "zz").unwrap());
}

#[test]
fn messages_since_and_order() {
    let s = store();
    let p = id(2);
    for ts in [30, 10, 20, 40] {
        s.insert_message(&msg(p, Direction::In, p, ts, &ts.to_string()))
            .unwrap();
    }
    let all: Vec<u64> = s
        .messages(&p, None)
        .unwrap()
        .iter()
        .map(|m| m.timestamp_ms)
        .collect();
    assert_eq!(all, vec![10, 20, 30, 40]);
    let since: Vec<u64> = s
        .messages(&p, Some(20))
        .unwrap()
        .iter()
        .map(|m| m.timestamp_ms)
        .collect();
    assert_eq!(since, vec![20, 30, 40]);
    assert!(s.messages(&p, Some(41)).unwrap().is_empty());
    assert!(s.messages(&id(7), None).unwrap().is_empty());
}

#[test]
fn mark_read_starts_delete_after_read_timers() {
    let s = store();
    let (me, p) = (id(ME), id(2));
    let dar = Disappearing {
        mode: DisappearingMode::AfterRead,
        timer_s: 300,
    };
    let mut m1 = msg(p, Direction::In, p, 10, "dar");
    m1.disappearing = dar;
    let a = s.insert_message(&m1).unwrap().unwrap();
    let b = s
        .insert_message(&msg(p, Direction::In, p, 20, "plain"))
        .unwrap()
        .unwrap();
    let del = s
        .insert_message(&msg(p, Direction::In, p, 25, "gone"))
        .unwrap()
        .unwrap();
    s.mark_deleted(del).unwrap();
    s.insert_message(&msg(p, Direction::Out, me, 30, "mine"))
        .unwrap();
    assert_eq!(s.conversation(&p).unwrap().unwrap().unread, 2);

    let read = s.mark_read(&p, 1_000).unwrap();
    assert_eq!(read.iter().map(|m| m.id).collect::<Vec<_>>(), vec![a, b]);
    assert!(read.iter().all(|m| m.read_at_ms == Some(1_000)));
    assert_eq!(read[0].expiration_start_ms, Some(1_000));
    assert_eq!(read[0].expires_at_ms, Some(1_000 + 300_000));
    assert_eq!(read[1].expires_at_ms, None);
    assert_eq!(s.conversation(&p).unwrap().unwrap().unread, 0);
    // Nothing newly read the second time; read_at is kept.
    assert!(s.mark_read(&p, 2_000).unwrap().is_empty());
    assert_eq!(s.message(a).unwrap().unwrap().read_at_ms, Some(1_000));
    // A running timer is not restarted by a later read of a new message.
    s.insert_message(&msg(p, Direction::In, p, 40, "new"))
        .unwrap();
    assert_eq!(s.mark_read(&p, 3_000).unwrap().len(), 1);
    assert_eq!(s.message(a).unwrap().unwrap().expires_at_ms, Some(301_000));
}

#[test]
fn mark_outgoing_read_by_timestamps() {
    let s = store();
    let (me, p) = (id(ME), id(2));
    let o1 = s
        .insert_message(&msg(p, Direction::Out, me, 10, "1"))
        .unwrap()
        .unwrap();
    let o2 = s
        .insert_message(&msg(p, Direction::Out, me, 20, "2"))
        .unwrap()
        .unwrap();
    let i1 = s
        .insert_message(&msg(p, Direction::In, p, 10, "in"))
        .unwrap()
        .unwrap();
    let other = s
        .insert_message(&msg(id(3), Direction::Out, me, 10, "x"))
        .unwrap()
        .unwrap();
    assert_eq!(s.mark_outgoing_read(&p, &[10, 99, u64::MAX]).unwrap(), 1);
    assert_eq!(s.message(o1).unwrap().unwrap().status, MessageStatus::Read);
    assert_eq!(
        s.message(o2).unwrap().unwrap().status,
        MessageStatus::Sending
    );
    assert_eq!(
        s.message(i1).unwrap().unwrap().status,
        MessageStatus::Delivered
    );
    assert_eq!(
        s.message(other).unwrap().unwrap().status,
        MessageStatus::Sending
    );
    // Already read: not counted again.
    assert_eq!(s.mark_outgoing_read(&p, &[10, 20]).unwrap(), 1);
}

#[test]
fn mark_deleted_scrubs_text() {
    let s = store();
    let p = id(2);
    let m = s
        .insert_message(&with_hash(msg(p, Direction::In, p, 10, "secret"), "hh"))
        .unwrap()
        .unwrap();
    assert!(s.mark_deleted(m).unwrap());
    let got = s.message(m).unwrap().unwrap();
    assert!(got.deleted);
    assert_eq!(got.text, "");
    assert_eq!(got.display_text(), "This message was deleted");
    assert_eq!(got.hash.as_deref(), Some("hh"));
    let body: Option<Vec<u8>> = s
        .conn()
        .query_row("SELECT body_enc FROM messages WHERE id = ?1", [m.0], |r| {
            r.get(0)
        })
        .unwrap();
    assert_eq!(body, None);
    assert!(!s.mark_deleted(MessageId(999)).unwrap());
}

#[test]
fn set_expiry_and_expire_due() {
    let s = store();
    let p = id(2);
    let a = s
        .insert_message(&msg(p, Direction::In, p, 10, "a"))
        .unwrap()
        .unwrap();
    let b = s
        .insert_message(&msg(p, Direction::In, p, 20, "b"))
        .unwrap()
        .unwrap();
    let c = s
        .insert_message(&msg(p, Direction::In, p, 30, "c"))
        .unwrap()
        .unwrap();
    assert!(s.set_expiry(a, 100, 1_000).unwrap());
    assert!(s.set_expiry(b, 100, 2_000).unwrap());
    assert!(!s.set_expiry(MessageId(999), 1, 2).unwrap());
    let m = s.message(a).unwrap().unwrap();
    assert_eq!(
        (m.expiration_start_ms, m.expires_at_ms),
        (Some(100), Some(1_000))
    );

    assert_eq!(s.expire_due(999).unwrap(), 0);
    assert_eq!(s.expire_due(1_000).unwrap(), 1);
    assert_eq!(s.message(a).unwrap(), None);
    assert_eq!(s.expire_due(5_000).unwrap(), 1);
    assert_eq!(s.message(b).unwrap(), None);
    assert!(s.message(c).unwrap().is_some());
    assert_eq!(s.expire_due(u64::MAX >> 1).unwrap(), 0);
    // The conversation stays listed.
    assert_eq!(s.conversations().unwrap().len(), 1);
}

#[test]
fn seen_hashes_and_pruning() {
    let s = store();
    assert!(!s.is_seen("abc").unwrap());
    s.mark_seen("abc", 1_000).unwrap();
    s.mark_seen("def", 2_000).unwrap();
    assert!(s.is_seen("abc").unwrap() && s.is_seen("def").unwrap());
    assert!(!s.is_seen("ABC").unwrap());
    // A later mark keeps the later expiry.
    s.mark_seen("abc", 3_000).unwrap();
    s.mark_seen("abc", 500).unwrap();
    assert_eq!(s.prune_seen(2_000).unwrap(), 1);
    assert!(s.is_seen("abc").unwrap() && !s.is_seen("def").unwrap());
    // expire_due prunes too.
    s.expire_due(3_000).unwrap();
    assert!(!s.is_seen("abc").unwrap());
}

#[test]
fn last_hash_per_namespace_and_node() {
    let s = store();
    let node = "aa".repeat(32);
    assert_eq!(s.last_hash(Namespace(0), &node).unwrap(), None);
    s.set_last_hash(Namespace(0), &node, "h0").unwrap();
    s.set_last_hash(Namespace(-10), &node, "h-10").unwrap();
    s.set_last_hash(Namespace(0), &"bb".repeat(32), "hb")
        .unwrap();
    assert_eq!(
        s.last_hash(Namespace(0), &node).unwrap().as_deref(),
        Some("h0")
    );
    // Node keys are case-insensitive hex.
    assert_eq!(
        s.last_hash(Namespace(0), &node.to_uppercase())
            .unwrap()
            .as_deref(),
        Some("h0")
    );
    assert_eq!(
        s.last_hash(Namespace(-10), &node).unwrap().as_deref(),
        Some("h-10")
    );
    s.set_last_hash(Namespace(0), &node, "h0b").unwrap();
    assert_eq!(
        s.last_hash(Namespace(0), &node).unwrap().as_deref(),
        Some("h0b")
    );
    assert!(s.clear_last_hash(Namespace(0), &node).unwrap());
    assert!(!s.clear_last_hash(Namespace(0), &node).unwrap());
    assert_eq!(s.last_hash(Namespace(0), &node).unwrap(), None);
    assert_eq!(
        s.last_hash(Namespace(-10), &node).unwrap().as_deref(),
        Some("h-10")
    );
}

#[test]
fn settings_and_privacy_defaults() {
    let s = store();
    assert!(!s.read_receipts().unwrap());
    assert!(!s.typing_indicators().unwrap());
    assert!(!s.link_previews().unwrap());
    s.set_read_receipts(true).unwrap();
    assert!(s.read_receipts().unwrap());
    assert!(!s.typing_indicators().unwrap() && !s.link_previews().unwrap());
    s.set_typing_indicators(true).unwrap();
    s.set_link_previews(true).unwrap();
    assert!(s.typing_indicators().unwrap() && s.link_previews().unwrap());
    s.set_read_receipts(false).unwrap();
    assert!(!s.read_receipts().unwrap());
    assert_eq!(
        s.setting(SETTING_READ_RECEIPTS).unwrap().as_deref(),
        Some("false")
    );
    // Anything but "true" is off.
    s.set_setting(SETTING_LINK_PREVIEWS, "yes").unwrap();
    assert!(!s.link_previews().unwrap());

    assert_eq!(s.setting("display_name").unwrap(), None);
    s.set_setting("display_name", "Ädä").unwrap();
    assert_eq!(s.setting("display_name").unwrap().as_deref(), Some("Ädä"));
    s.set_setting("display_name", "").unwrap();
    assert_eq!(s.setting("display_name").unwrap().as_deref(), Some(""));
    assert!(s.remove_setting("display_name").unwrap());
    assert!(!s.remove_setting("display_name").unwrap());
    assert_eq!(s.setting("display_name").unwrap(), None);
}

#[test]
fn blobs_round_trip() {
    let s = store();
    assert_eq!(s.blob("guards").unwrap(), None);
    s.put_blob("guards", b"\x00\x01state").unwrap();
    s.put_blob("registry", b"").unwrap();
    assert_eq!(
        s.blob("guards").unwrap().as_deref(),
        Some(&b"\x00\x01state"[..])
    );
    assert_eq!(s.blob("registry").unwrap().as_deref(), Some(&b""[..]));
    s.put_blob("guards", &[7u8; 10_000]).unwrap();
    assert_eq!(s.blob("guards").unwrap().unwrap(), vec![7u8; 10_000]);
    assert!(s.remove_blob("guards").unwrap());
    assert!(!s.remove_blob("guards").unwrap());
    assert_eq!(s.blob("guards").unwrap(), None);
}

#[test]
fn account_seed_round_trip_keeps_the_form() {
    let s = store();
    assert!(s.account_seed().unwrap().is_none());
    let umbra = AccountSeed::new_umbra(&[9; 32]);
    s.set_account_seed(&umbra).unwrap();
    let got = s.account_seed().unwrap().unwrap();
    assert_eq!(got.ed_seed(), umbra.ed_seed());
    assert_eq!(got.form(), SeedForm::Umbra);
    let session = AccountSeed::from_session_seed(&[5; 16]);
    s.set_account_seed(&session).unwrap();
    let got = s.account_seed().unwrap().unwrap();
    assert_eq!(got.form(), SeedForm::Session);
    assert_eq!(got.ed_seed(), session.ed_seed());
    assert_eq!(got.phrase().split_whitespace().count(), 13);
}

#[test]
fn tampered_or_moved_values_are_refused() {
    let s = store();
    let p = id(2);
    let a = s
        .insert_message(&msg(p, Direction::In, p, 1, "a"))
        .unwrap()
        .unwrap();
    // A value moved from another column does not open.
    s.conn()
        .execute(
            "UPDATE messages SET body_enc = author_enc WHERE id = ?1",
            [a.0],
        )
        .unwrap();
    assert!(matches!(
        s.message(a),
        Err(StoreError::Corrupt {
            what: "messages.body"
        })
    ));
    // A replaced setting value.
    s.set_setting("k", "v").unwrap();
    s.conn()
        .execute("UPDATE settings SET value_enc = zeroblob(41)", [])
        .unwrap();
    assert!(matches!(
        s.setting("k"),
        Err(StoreError::Corrupt {
            what: "setting value"
        })
    ));
    // An out-of-range enum code.
    let b = s
        .insert_message(&msg(p, Direction::In, p, 2, "b"))
        .unwrap()
        .unwrap();
    s.conn()
        .execute("UPDATE messages SET status = 42 WHERE id = ?1", [b.0])
        .unwrap();
    assert!(matches!(
        s.message(b),
        Err(StoreError::Corrupt {
            what: "message status"
        })
    ));
}

#[test]
fn out_of_range_numbers_are_refused() {
    let s = store();
    let p = id(2);
    let mut m = msg(p, Direction::In, p, u64::MAX, "x");
    assert!(matches!(
        s.insert_message(&m),
        Err(StoreError::OutOfRange(_))
    ));
    m.timestamp_ms = 1;
    m.expires_at_ms = Some(u64::MAX);
    assert!(matches!(
        s.insert_message(&m),
        Err(StoreError::OutOfRange(_))
    ));
    assert!(matches!(
        s.mark_seen("h", u64::MAX),
        Err(StoreError::OutOfRange(_))
    ));
}

#[test]
fn file_store_reopens_and_refuses_another_key() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store.sqlite");
    let key = LocalKey::from_bytes([1; 32]);
    {
        let s = LocalStore::open(&path, &key).unwrap();
        assert_eq!(s.path(), Some(path.as_path()));
        s.insert_message(&msg(id(2), Direction::In, id(2), 1, "persisted"))
            .unwrap();
        s.close().unwrap();
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    let s = LocalStore::open(&path, &key).unwrap();
    assert_eq!(s.messages(&id(2), None).unwrap()[0].text, "persisted");
    drop(s);
    assert!(matches!(
        LocalStore::open(&path, &LocalKey::from_bytes([2; 32])),
        Err(StoreError::WrongKey)
    ));
}

#[test]
fn newer_schema_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store.sqlite");
    let key = LocalKey::from_bytes([1; 32]);
    LocalStore::open(&path, &key).unwrap().close().unwrap();
    {
        let c = Connection::open(&path).unwrap();
        c.execute_batch("PRAGMA user_version = 99").unwrap();
    }
    assert!(matches!(
        LocalStore::open(&path, &key),
        Err(StoreError::SchemaTooNew {
            found: 99,
            known: 1
        })
    ));
}

/// Every file of `dir`, concatenated.
fn all_bytes(dir: &Path) -> Vec<u8> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_file() {
            out.extend(std::fs::read(&p).unwrap());
        }
    }
    out
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

#[test]
fn expired_and_deleted_values_leave_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store.sqlite");
    let s = LocalStore::open(&path, &LocalKey::from_bytes([1; 32])).unwrap();
    let p = id(2);
    let mut m = msg(p, Direction::In, p, 1, "EXPIRING-TEXT");
    m.expires_at_ms = Some(100);
    let a = s.insert_message(&m).unwrap().unwrap();
    let b = s
        .insert_message(&msg(p, Direction::In, p, 2, "UNSENT-TEXT"))
        .unwrap()
        .unwrap();
    let sealed = |id: MessageId| -> Vec<u8> {
        s.conn()
            .query_row("SELECT body_enc FROM messages WHERE id = ?1", [id.0], |r| {
                r.get(0)
            })
            .unwrap()
    };
    let (ca, cb) = (sealed(a), sealed(b));
    s.checkpoint().unwrap();
    let before = all_bytes(dir.path());
    assert!(contains(&before, &ca) && contains(&before, &cb));
    assert_eq!(s.expire_due(100).unwrap(), 1);
    s.mark_deleted(b).unwrap();
    s.close().unwrap();
    let after = all_bytes(dir.path());
    assert!(
        !contains(&after, &ca),
        "expired ciphertext still in the files"
    );
    assert!(
        !contains(&after, &cb),
        "deleted ciphertext still in the files"
    );
}
