//! The daemon test (issue 7 acceptance): Bob's daemon on an 8-node
//! in-process devnet; a test client connects to its socket and subscribes;
//! Alice (a plain `Client`) sends a message and the subscriber receives the
//! `message` event; the echo bot example (its very code, included below)
//! replies and Alice receives the echo. Also: the framing errors (-32700,
//! -32600, -32601, -32602), notifications, batches, settings, the socket's
//! mode 0600 and its removal on exit, the profile lock and a second daemon
//! on the same socket.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "integration test: a panic is a test failure"
)]

#[path = "../examples/echo_bot.rs"]
#[allow(dead_code, reason = "only the bot's function is used here, not main")]
mod echo_bot;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use umbra_client::client::Client;
use umbra_client::profile::{Profile, ProfileError};
use umbra_client::store::Direction;
use umbra_daemon::rpc::{
    INVALID_PARAMS, INVALID_REQUEST, METHOD_NOT_FOUND, OPERATION_FAILED, PARSE_ERROR,
};
use umbra_daemon::{CallError, Connection, DaemonError, ServeOptions, serve_with_options};
use umbra_proto::mnemonic::AccountSeed;
use umbra_proto::network::NetworkConfig;
use umbra_proto::path::PathConfig;

/// How long any one network event may take to show up.
const EVENT_TIMEOUT: Duration = Duration::from_secs(40);

/// The devnet shared by the tests of this file, on its own runtime.
fn network() -> &'static NetworkConfig {
    static NET: OnceLock<NetworkConfig> = OnceLock::new();
    NET.get_or_init(|| {
        let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("umbra-daemon-devnet");
        let _ = std::fs::remove_dir_all(&dir);
        umbra_devnet::shared::background(8, dir)
            .unwrap_or_else(|e| panic!("devnet failed to start: {e}"))
    })
}

fn client(dir: &Path) -> Client {
    let seed = AccountSeed::new_umbra(&umbra_crypto::random_bytes::<32>());
    let profile = Profile::create(dir, &seed, None).unwrap();
    Client::open(
        profile,
        network().clone(),
        PathConfig::default().with_min_usable_nodes(4),
    )
    .unwrap()
}

/// Reads events until one satisfies `pred`.
async fn event_where(conn: &mut Connection, what: &str, pred: impl Fn(&Value) -> bool) -> Value {
    tokio::time::timeout(EVENT_TIMEOUT, async {
        loop {
            let e = conn.next_event().await.unwrap().expect("daemon closed");
            if pred(&e) {
                return e;
            }
        }
    })
    .await
    .unwrap_or_else(|_| panic!("timed out waiting for {what}"))
}

fn rpc_code(r: Result<Value, CallError>) -> i64 {
    match r {
        Err(CallError::Rpc { code, .. }) => code,
        other => panic!("expected an RPC error, got {other:?}"),
    }
}

/// Serves `client` on `socket` syncing every `sync_interval`; stops when
/// the returned sender is used (or dropped).
fn start_daemon(
    client: &Arc<Client>,
    socket: &Path,
    sync_interval: Duration,
) -> (
    tokio::sync::oneshot::Sender<()>,
    tokio::task::JoinHandle<Result<(), DaemonError>>,
) {
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let (client, socket) = (client.clone(), socket.to_path_buf());
    let daemon = tokio::spawn(async move {
        serve_with_options(
            client,
            &socket,
            ServeOptions::default().with_sync_interval(sync_interval),
            async {
                let _ = stop_rx.await;
            },
        )
        .await
    });
    (stop_tx, daemon)
}

/// Waits for the daemon's socket to accept connections.
async fn connect(socket: &Path) -> Connection {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match Connection::connect(socket).await {
            Ok(c) => return c,
            Err(e) => {
                assert!(Instant::now() < deadline, "daemon did not start: {e}");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn daemon_subscribe_echo_bot_and_framing() {
    let tmp = tempfile::tempdir().unwrap();
    let alice = client(&tmp.path().join("alice"));
    let bob_dir = tmp.path().join("bob");
    let bob = Arc::new(client(&bob_dir));
    let bob_id = bob.account_id();
    let alice_id = alice.account_id();
    let socket = tmp.path().join("run").join("daemon.sock");
    std::fs::create_dir_all(socket.parent().unwrap()).unwrap();

    let (stop_tx, daemon) = start_daemon(&bob, &socket, Duration::from_millis(500));
    let mut sub = connect(&socket).await;

    // The socket is private to its owner.
    let mode = std::fs::metadata(&socket).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "socket mode {mode:o}");

    // The profile stays locked while the daemon runs.
    assert!(matches!(
        Profile::open(&bob_dir, None),
        Err(ProfileError::InUse { .. })
    ));
    // A second daemon on the same socket refuses to start.
    let second = serve_with_options(
        bob.clone(),
        &socket,
        ServeOptions::default(),
        std::future::ready(()),
    )
    .await;
    assert!(
        matches!(second, Err(DaemonError::AlreadyRunning { .. })),
        "{second:?}"
    );
    assert!(socket.exists(), "the refused daemon left the socket alone");

    // Framing errors, on a raw connection.
    let mut raw = connect(&socket).await;
    raw.send_line("{this is not json").await.unwrap();
    let v = raw.read_value().await.unwrap().unwrap();
    assert_eq!(v["error"]["code"], PARSE_ERROR, "{v}");
    assert_eq!(v["id"], Value::Null);
    raw.send_line(r#"{"jsonrpc":"2.0","id":"u1","method":"no.such.method"}"#)
        .await
        .unwrap();
    let v = raw.read_value().await.unwrap().unwrap();
    assert_eq!(v["error"]["code"], METHOD_NOT_FOUND, "{v}");
    assert_eq!(v["id"], "u1");
    raw.send_line(r#"{"id":5,"method":"conversations"}"#)
        .await
        .unwrap();
    let v = raw.read_value().await.unwrap().unwrap();
    assert_eq!(v["error"]["code"], INVALID_REQUEST, "{v}");
    assert_eq!(v["id"], 5);
    // A notification gets no response; the next call's does come.
    raw.send_line(r#"{"jsonrpc":"2.0","method":"conversations"}"#)
        .await
        .unwrap();
    raw.send_line(r#"[{"jsonrpc":"2.0","id":1,"method":"account.show"},{"jsonrpc":"2.0","id":2,"method":"settings.get","params":{"key":"read-receipts"}}]"#)
        .await
        .unwrap();
    let v = raw.read_value().await.unwrap().unwrap();
    assert_eq!(v[0]["id"], 1, "{v}");
    assert_eq!(v[0]["result"]["account_id"], bob_id.to_string());
    assert_eq!(
        v[1]["result"],
        json!({"key": "read-receipts", "value": false})
    );

    // Methods through the helper.
    assert_eq!(
        rpc_code(raw.call("send", json!({"to": "nobody", "text": "x"})).await),
        INVALID_PARAMS
    );
    assert_eq!(
        rpc_code(raw.call("send", json!({"to": alice_id.to_string()})).await),
        INVALID_PARAMS
    );
    assert_eq!(
        rpc_code(
            raw.call("settings.set", json!({"key": "colour", "value": true}))
                .await
        ),
        INVALID_PARAMS
    );
    assert_eq!(
        rpc_code(
            raw.call(
                "unsend",
                json!({"peer": alice_id.to_string(), "timestamp": 1})
            )
            .await
        ),
        OPERATION_FAILED
    );
    let v = raw
        .call(
            "settings.set",
            json!({"key": "typing-indicators", "value": "on"}),
        )
        .await
        .unwrap();
    assert_eq!(v, json!({"key": "typing-indicators", "value": true}));
    assert!(bob.profile().store().typing_indicators().unwrap());
    let v = raw.call("daemon.status", json!({})).await.unwrap();
    assert_eq!(v["sync_interval_ms"], 500);

    // Subscribe; Alice's message arrives as an event.
    sub.subscribe().await.unwrap();
    alice.send_text(&bob_id, "hello bob").await.unwrap();
    let e = event_where(&mut sub, "Alice's message", |e| {
        e["type"] == "message" && e["text"] == "hello bob"
    })
    .await;
    assert_eq!(e["peer"], alice_id.to_string());
    assert_eq!(e["author"], alice_id.to_string());
    assert_eq!(e["direction"], "in");
    assert_eq!(e["request"], true, "Alice is unknown to Bob: a request");
    assert!(e["timestamp"].as_u64().unwrap() > 0);
    let reqs = raw.call("requests", json!({})).await.unwrap();
    assert_eq!(reqs[0]["peer"], alice_id.to_string(), "{reqs}");

    // The echo bot replies (replying accepts the request); Alice gets the echo.
    let bot = tokio::spawn({
        let socket = socket.clone();
        async move { echo_bot::echo_bot(&socket).await }
    });
    // Wait until the bot is subscribed (2 subscribers), then send.
    let deadline = Instant::now() + Duration::from_secs(10);
    while raw.call("daemon.status", json!({})).await.unwrap()["subscribers"] != 2 {
        assert!(Instant::now() < deadline, "the bot did not subscribe");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Read receipts on both sides, so Alice's read of the echo reaches Bob.
    let v = raw
        .call(
            "settings.set",
            json!({"key": "read-receipts", "value": true}),
        )
        .await
        .unwrap();
    assert_eq!(v["value"], true);
    alice.profile().store().set_read_receipts(true).unwrap();
    alice.send_text(&bob_id, "ping").await.unwrap();
    let echo = tokio::time::timeout(EVENT_TIMEOUT, async {
        loop {
            alice.sync().await.unwrap();
            let msgs = alice.profile().store().messages(&bob_id, None).unwrap();
            if let Some(m) = msgs
                .into_iter()
                .find(|m| m.direction == Direction::In && m.text == "echo: ping")
            {
                return m;
            }
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
    })
    .await
    .expect("Alice did not receive the echo");
    assert_eq!(echo.author, bob_id);
    // Our subscriber sees the bot's reply as an outgoing message.
    let e = event_where(&mut sub, "the echo as an outgoing message", |e| {
        e["type"] == "message" && e["text"] == "echo: ping"
    })
    .await;
    assert_eq!(e["direction"], "out");
    assert_eq!(e["peer"], alice_id.to_string());
    assert_eq!(e["author"], bob_id.to_string());
    // Alice reads the echo: Bob's subscriber gets the receipt.
    alice.read_conversation(&bob_id, None).await.unwrap();
    let e = event_where(&mut sub, "the read receipt", |e| e["type"] == "receipt").await;
    assert_eq!(e["peer"], alice_id.to_string());
    assert_eq!(e["timestamp"], echo.timestamp_ms);
    // A contact name works wherever a peer is expected.
    let v = raw
        .call(
            "contacts.set-name",
            json!({"peer": alice_id.to_string(), "name": "alice"}),
        )
        .await
        .unwrap();
    assert_eq!(v["name"], "alice");
    let contacts = raw.call("contacts", json!({})).await.unwrap();
    assert_eq!(
        contacts,
        json!([{"account_id": alice_id.to_string(), "name": "alice"}])
    );
    // `messages` without a peer lists everything and marks nothing read.
    let all = raw.call("messages", json!({})).await.unwrap();
    assert_eq!(all.as_array().unwrap().len(), 3, "{all}");
    let convs = raw.call("conversations", json!({})).await.unwrap();
    assert_eq!(convs[0]["unread"], 2, "{convs}");
    // `messages` lists the conversation (and marks it read).
    let msgs = raw
        .call("messages", json!({"peer": "alice"}))
        .await
        .unwrap();
    let texts: Vec<&str> = msgs
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["text"].as_str().unwrap())
        .collect();
    assert!(
        texts.contains(&"hello bob") && texts.contains(&"ping") && texts.contains(&"echo: ping"),
        "{texts:?}"
    );
    let convs = raw.call("conversations", json!({})).await.unwrap();
    assert_eq!(convs[0]["unread"], 0, "{convs}");
    assert_eq!(convs[0]["is_request"], false, "the reply accepted it");

    // Shutdown: the daemon stops, the bot sees the end, the socket is gone.
    stop_tx.send(()).unwrap();
    daemon.await.unwrap().unwrap();
    let bot_end = tokio::time::timeout(Duration::from_secs(10), bot)
        .await
        .expect("bot did not stop");
    assert!(bot_end.unwrap().is_ok());
    assert!(!socket.exists(), "socket removed on exit");
    assert!(Connection::connect(&socket).await.is_err());
}

/// Polls `f` every 200 ms until it yields `Some`, failing after [`EVENT_TIMEOUT`].
async fn poll<T, Fut: std::future::Future<Output = Option<T>>>(
    what: &str,
    mut f: impl FnMut() -> Fut,
) -> T {
    let deadline = Instant::now() + EVENT_TIMEOUT;
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Syncs `c` until its conversation with `peer` holds the message sent at `t`.
async fn sync_until_ts(c: &Client, peer: &umbra_proto::identity::AccountId, t: u64) {
    poll("a message", || async {
        c.sync().await.unwrap();
        let list = c.profile().store().messages(peer, None).unwrap();
        list.iter().any(|m| m.timestamp_ms == t).then_some(())
    })
    .await;
}

/// A batched read receipt (`messages.md` §12) goes out on the daemon's
/// timer, with no sync, read or other request to carry it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn daemon_sends_batched_receipts_on_its_timer() {
    let tmp = tempfile::tempdir().unwrap();
    let alice = client(&tmp.path().join("alice"));
    let bob = Arc::new(client(&tmp.path().join("bob")));
    let (a_id, b_id) = (alice.account_id(), bob.account_id());
    alice.profile().store().set_read_receipts(true).unwrap();
    bob.profile().store().set_read_receipts(true).unwrap();
    // Approved both ways (receipts go only then).
    let hello = alice.send_text(&b_id, "hello").await.unwrap();
    sync_until_ts(&bob, &a_id, hello.timestamp_ms).await;
    bob.accept(&a_id).await.unwrap();
    poll("the accept", || async {
        alice.sync().await.unwrap();
        let conv = alice.profile().store().conversation(&b_id).unwrap();
        conv.filter(|c| c.approved_us).map(|_| ())
    })
    .await;
    // A long window: the first read goes out at once, the second is queued.
    bob.set_receipt_window(Duration::from_secs(600));
    bob.read_conversation(&a_id, None).await.unwrap();
    let m2 = alice.send_text(&b_id, "two").await.unwrap();
    sync_until_ts(&bob, &a_id, m2.timestamp_ms).await;
    bob.read_conversation(&a_id, None).await.unwrap();
    assert_eq!(
        umbra_client::receipts::pending(bob.profile().store(), &a_id).unwrap(),
        vec![m2.timestamp_ms]
    );

    // The daemon syncs once at start, then not for an hour.
    let socket = tmp.path().join("daemon.sock");
    let (stop_tx, daemon) = start_daemon(&bob, &socket, Duration::from_secs(3600));
    let mut conn = connect(&socket).await;
    let deadline = Instant::now() + EVENT_TIMEOUT;
    while conn.call("daemon.status", json!({})).await.unwrap()["syncs"].as_u64() < Some(1) {
        assert!(Instant::now() < deadline, "the daemon's first sync");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        umbra_client::receipts::pending(bob.profile().store(), &a_id).unwrap(),
        vec![m2.timestamp_ms],
        "still queued: the window has not passed"
    );

    // The window passes; only the daemon's timer can send the receipt now.
    bob.set_receipt_window(Duration::ZERO);
    poll("m2 read", || async {
        alice.sync().await.unwrap();
        let list = alice.profile().store().messages(&b_id, None).unwrap();
        list.iter()
            .any(|m| {
                m.timestamp_ms == m2.timestamp_ms
                    && m.status == umbra_client::store::MessageStatus::Read
            })
            .then_some(())
    })
    .await;
    assert!(
        umbra_client::receipts::pending(bob.profile().store(), &a_id)
            .unwrap()
            .is_empty()
    );
    stop_tx.send(()).unwrap();
    daemon.await.unwrap().unwrap();
}

/// `send` and `messages` take a group (its name or 03 ID) as `umbra send`
/// does, so a one-shot `umbra send GROUP TEXT` forwarded to a running
/// daemon reaches the group, not a 1:1 conversation.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn daemon_send_and_messages_take_a_group() {
    let tmp = tempfile::tempdir().unwrap();
    let alice = client(&tmp.path().join("alice"));
    let bob = Arc::new(client(&tmp.path().join("bob")));
    let socket = tmp.path().join("daemon.sock");
    let (stop_tx, daemon) = start_daemon(&bob, &socket, Duration::from_secs(3600));
    let mut conn = connect(&socket).await;
    let created = conn
        .call(
            "group.create",
            json!({"name": "club", "members": [alice.account_id().to_string()]}),
        )
        .await
        .unwrap();
    let group = created["group_id"].as_str().unwrap().to_string();
    assert!(group.starts_with("03"), "{created}");

    // By name and by ID.
    let by_name = conn
        .call("send", json!({"to": "club", "text": "hello club"}))
        .await
        .unwrap();
    assert_eq!(by_name["peer"], json!(group), "{by_name}");
    assert!(by_name["stored_by"].as_u64() > Some(0), "{by_name}");
    let by_id = conn
        .call("send", json!({"to": group, "text": "again"}))
        .await
        .unwrap();
    assert_eq!(by_id["peer"], json!(group));

    let listed = conn
        .call("messages", json!({"peer": "club"}))
        .await
        .unwrap();
    let texts: Vec<&str> = listed
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|m| m["text"].as_str())
        .collect();
    assert!(
        texts.contains(&"hello club") && texts.contains(&"again"),
        "{listed}"
    );
    // Nothing went to a 1:1 conversation.
    let convs = bob.profile().store().conversations().unwrap();
    assert!(
        convs.iter().all(|c| c.peer.to_string().starts_with("03")),
        "a 1:1 conversation appeared"
    );

    // `unsend` takes the group too.
    let ts = by_name["timestamp"].as_u64().unwrap();
    conn.call("unsend", json!({"peer": "club", "timestamp": ts}))
        .await
        .unwrap();
    let row = bob
        .profile()
        .store()
        .message_by_author_ts(&group.parse().unwrap(), &bob.account_id(), ts)
        .unwrap()
        .unwrap();
    assert!(row.deleted);
    // "author" belongs to groups only.
    let stray = conn
        .call(
            "unsend",
            json!({"peer": alice.account_id().to_string(), "timestamp": ts, "author": alice.account_id().to_string()}),
        )
        .await;
    assert_eq!(rpc_code(stray), INVALID_PARAMS);

    // An unknown name is still a clear error.
    let unknown = conn
        .call("send", json!({"to": "nobody", "text": "x"}))
        .await;
    assert_eq!(rpc_code(unknown), INVALID_PARAMS);
    stop_tx.send(()).unwrap();
    daemon.await.unwrap().unwrap();
}
