//! The `umbra` messaging commands as a user runs them (`messages.md` §5–14,
//! identity.md §4): the real binary against a real process devnet
//! (`umbra devnet up --nodes 8`), two profiles in separate `--home`
//! directories.
//!
//! One test walks a whole session in order — account create, send, sync,
//! requests, accept, messages, contacts and send-by-name, a file through
//! the file server named in the devnet's `network.json` (send-file,
//! download), settings and read receipts, block — then checks that nothing in either profile directory
//! (database, WAL, key file) holds a message text, the recovery phrase or
//! the seed, and that `account restore` gives back the same account and
//! refuses a wrong phrase clearly. The devnet is stopped by a drop guard,
//! also when an assertion fails.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "integration test: a panic is a test failure"
)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

const UMBRA: &str = env!("CARGO_BIN_EXE_umbra");
/// How long one network event may take to show up.
const EVENT_TIMEOUT: Duration = Duration::from_secs(40);

/// A running `umbra devnet up`; dropping it stops every node.
struct DevnetProcess {
    child: Child,
    dir: PathBuf,
}

impl DevnetProcess {
    fn up(dir: &Path, nodes: usize) -> DevnetProcess {
        let stderr = std::fs::File::create(dir.with_extension("stderr")).unwrap();
        let mut child = Command::new(UMBRA)
            .args(["devnet", "up", "--nodes", &nodes.to_string(), "--dir"])
            .arg(dir)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let guard = DevnetProcess {
            child,
            dir: dir.to_owned(),
        };
        // Read stdout in a thread (and keep draining it) until `ready:`.
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if line.starts_with("ready:") {
                    let _ = tx.send(line.clone());
                }
            }
        });
        match rx.recv_timeout(Duration::from_secs(90)) {
            Ok(line) => assert!(line.contains("registry epoch"), "{line}"),
            Err(_) => {
                // Every node log's last lines, so that a failure says why.
                let mut logs = String::new();
                for i in 0..nodes {
                    let path = dir.join(format!("node{i}/umbrad.log"));
                    let text = std::fs::read_to_string(&path).unwrap_or_default();
                    let lines: Vec<&str> = text.lines().collect();
                    let tail = lines[lines.len().saturating_sub(15)..].join("\n");
                    logs.push_str(&format!("\n--- {}:\n{tail}", path.display()));
                }
                panic!(
                    "`umbra devnet up` printed no ready: line; stderr: {}{logs}",
                    std::fs::read_to_string(dir.with_extension("stderr")).unwrap_or_default()
                )
            }
        }
        guard
    }
}

impl Drop for DevnetProcess {
    fn drop(&mut self) {
        // Stop the nodes, then the foreground process (SIGTERM: a clean stop).
        let _ = Command::new(UMBRA)
            .args(["devnet", "down", "--dir"])
            .arg(&self.dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(15);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs `umbra --home HOME ARGS…`.
fn umbra(home: &Path, args: &[&str]) -> Output {
    Command::new(UMBRA)
        .arg("--home")
        .arg(home)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

/// Runs a command that must succeed; returns its stdout.
fn ok(home: &Path, args: &[&str]) -> String {
    let out = umbra(home, args);
    assert!(
        out.status.success(),
        "umbra {args:?} failed ({}): {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// Runs a `--json` command that must succeed; returns one value per line.
fn json_lines(home: &Path, args: &[&str]) -> Vec<Value> {
    let mut a = args.to_vec();
    a.push("--json");
    ok(home, &a)
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{args:?}: {l:?}: {e}")))
        .collect()
}

/// Runs `f` every 300 ms until it yields `Some`; fails after `EVENT_TIMEOUT`.
fn wait_until<T>(what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + EVENT_TIMEOUT;
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(300));
    }
}

/// `sync --json` until the conversation with `peer` (as `messages PEER
/// --json` lists it) has a message satisfying `pred`; returns all lines.
fn sync_until(home: &Path, peer: &str, what: &str, pred: impl Fn(&Value) -> bool) -> Vec<Value> {
    wait_until(what, || {
        let rep = json_lines(home, &["sync"]);
        assert_eq!(rep.len(), 1, "one sync report");
        let msgs = json_lines(home, &["messages", peer]);
        msgs.iter().any(&pred).then_some(msgs)
    })
}

/// Checks the shape of a `messages --json` line.
fn check_message_line(m: &Value) {
    for key in ["direction", "peer", "timestamp", "text", "status"] {
        assert!(m.get(key).is_some(), "{key} missing in {m}");
    }
    assert!(matches!(m["direction"].as_str(), Some("in" | "out")), "{m}");
    assert!(m["timestamp"].as_u64().is_some(), "{m}");
    assert!(m["peer"].as_str().is_some_and(|p| p.len() == 66), "{m}");
}

fn text_is(t: &'static str) -> impl Fn(&Value) -> bool {
    move |m| m["text"] == t
}

/// Every file under `dir`, recursively, with its bytes.
fn all_files(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(all_files(&p));
        } else {
            let bytes = std::fs::read(&p).unwrap();
            out.push((p, bytes));
        }
    }
    out
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && hay.windows(needle.len()).any(|w| w == needle)
}

#[test]
fn cli_session_between_two_profiles() {
    let tmp = tempfile::tempdir().unwrap();
    let devnet_dir = tmp.path().join("devnet");
    let _devnet = DevnetProcess::up(&devnet_dir, 8);
    let network = devnet_dir.join("network.json");
    let network = network.to_str().unwrap();
    let (a_home, b_home) = (tmp.path().join("alice"), tmp.path().join("bob"));

    // Accounts.
    let mut ids = Vec::new();
    let mut phrases = Vec::new();
    for home in [&a_home, &b_home] {
        let v = json_lines(home, &["account", "create", "--network", network]);
        assert_eq!(v.len(), 1);
        let id = v[0]["account_id"].as_str().expect("account_id").to_string();
        let phrase = v[0]["mnemonic"].as_str().expect("mnemonic").to_string();
        assert_eq!(id.len(), 66);
        assert!(id.starts_with("05"));
        assert_eq!(phrase.split_whitespace().count(), 25);
        ids.push(id);
        phrases.push(phrase);
    }
    let (alice, bob) = (ids[0].as_str(), ids[1].as_str());
    // A second create over the same profile is refused.
    let out = umbra(&a_home, &["account", "create", "--network", network]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("already exists"));

    // Alice writes first: Bob gets a request.
    const T1: &str = "first words from alice (cli 7f3a)";
    let sent = json_lines(&a_home, &["send", bob, T1]);
    assert_eq!(sent[0]["direction"], "out");
    assert_eq!(sent[0]["peer"], bob);
    assert!(sent[0]["stored_by"].as_u64().unwrap() >= 1);
    let msgs = sync_until(&b_home, alice, "Bob to get Alice's message", text_is(T1));
    let m = msgs.iter().find(|m| m["text"] == T1).unwrap();
    check_message_line(m);
    assert_eq!(m["direction"], "in");
    assert_eq!(m["peer"], alice);
    assert_eq!(m["status"], "delivered");
    let reqs = json_lines(&b_home, &["requests"]);
    assert_eq!(reqs.len(), 1, "{reqs:?}");
    assert_eq!(reqs[0]["peer"], alice);

    // Bob accepts and answers.
    ok(&b_home, &["accept", alice]);
    assert!(json_lines(&b_home, &["requests"]).is_empty());
    const T2: &str = "bob answers (cli 91c2)";
    ok(&b_home, &["send", alice, T2]);
    let msgs = sync_until(&a_home, bob, "Alice to get Bob's answer", text_is(T2));
    for m in &msgs {
        check_message_line(m);
        assert_eq!(m["peer"], bob);
    }
    let mine = msgs
        .iter()
        .find(|m| m["text"] == T1)
        .expect("Alice's own message");
    assert_eq!(mine["direction"], "out");
    assert_eq!(mine["status"], "sent");
    assert_eq!(
        msgs.iter().find(|m| m["text"] == T2).unwrap()["direction"],
        "in"
    );
    assert!(json_lines(&a_home, &["requests"]).is_empty());

    // Contacts: name Bob, then send by name.
    ok(&a_home, &["contacts", "set-name", bob, "bobby"]);
    let contacts = json_lines(&a_home, &["contacts"]);
    assert_eq!(contacts.len(), 1);
    assert_eq!(contacts[0]["account_id"], bob);
    assert_eq!(contacts[0]["name"], "bobby");
    const T3: &str = "sent by contact name (cli 5d0e)";
    let sent = json_lines(&a_home, &["send", "bobby", T3]);
    assert_eq!(sent[0]["peer"], bob);
    let out = umbra(&a_home, &["send", "nobody-by-that-name", "x"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("neither an account ID"));
    sync_until(
        &b_home,
        alice,
        "Bob to get the message sent by name",
        text_is(T3),
    );

    // A file (issue 9): the file server is the `file_server` of the
    // devnet's network.json, which `account create` saved in the profile.
    let dev_net: Value = serde_json::from_str(&std::fs::read_to_string(network).unwrap()).unwrap();
    let fs_entry = &dev_net["file_server"];
    assert_eq!(fs_entry["protocol"], "http", "{dev_net}");
    assert!(fs_entry["port"].as_u64().is_some(), "{dev_net}");
    let saved: Value =
        serde_json::from_str(&std::fs::read_to_string(a_home.join("network.json")).unwrap())
            .unwrap();
    assert_eq!(&saved["file_server"], fs_entry);
    assert!(!devnet_dir.join("fileserver.json").exists());
    assert!(!a_home.join("fileserver.json").exists());
    let file: Vec<u8> = (0..5000u32)
        .map(|i| (i.wrapping_mul(7919) >> 3) as u8)
        .collect();
    let src = tmp.path().join("notes.bin");
    std::fs::write(&src, &file).unwrap();
    let sent = json_lines(&a_home, &["send-file", bob, src.to_str().unwrap()]);
    let ts = sent[0]["timestamp"].as_u64().expect("timestamp");
    assert_eq!(sent[0]["attachment"]["size"], 5000, "{sent:?}");
    sync_until(&b_home, alice, "Bob to get Alice's file", |m| {
        m["timestamp"] == ts && m["attachments"].as_array().is_some_and(|a| a.len() == 1)
    });
    let dst = tmp.path().join("notes-from-alice.bin");
    ok(
        &b_home,
        &["download", &ts.to_string(), dst.to_str().unwrap()],
    );
    assert_eq!(std::fs::read(&dst).unwrap(), file);

    // Settings: all off by default; read receipts on at both ends.
    for home in [&a_home, &b_home] {
        let s = json_lines(home, &["settings"]);
        assert_eq!(s.len(), 3, "{s:?}");
        for line in &s {
            assert_eq!(line["value"], "off", "{line}");
        }
        assert_eq!(
            ok(home, &["settings", "get", "read-receipts"]).trim(),
            "off"
        );
        assert_eq!(
            ok(home, &["settings", "get", "typing-indicators"]).trim(),
            "off"
        );
    }
    let out = umbra(&a_home, &["settings", "set", "read-receipts", "maybe"]);
    assert!(!out.status.success());
    let out = umbra(&a_home, &["settings", "get", "no-such-setting"]);
    assert!(!out.status.success());
    for home in [&a_home, &b_home] {
        ok(home, &["settings", "set", "read-receipts", "on"]);
        assert_eq!(ok(home, &["settings", "get", "read-receipts"]).trim(), "on");
    }
    let s = json_lines(&a_home, &["settings"]);
    assert!(
        s.iter()
            .any(|l| l["key"] == "read-receipts" && l["value"] == "on")
    );
    const T4: &str = "tell me when you read this (cli 2b7c)";
    ok(&a_home, &["send", "bobby", T4]);
    // `messages PEER` marks read and sends the receipt.
    sync_until(
        &b_home,
        alice,
        "Bob to get the message to read",
        text_is(T4),
    );
    wait_until("Alice to see the message read", || {
        json_lines(&a_home, &["sync"]);
        json_lines(&a_home, &["messages", "bobby"])
            .iter()
            .any(|m| m["text"] == T4 && m["status"] == "read")
            .then_some(())
    });

    // Block: Alice's later messages are dropped by Bob.
    ok(&b_home, &["block", alice]);
    assert!(json_lines(&b_home, &["messages", alice]).is_empty());
    const T5: &str = "after the block (cli c4e1)";
    ok(&a_home, &["send", bob, T5]);
    wait_until("Bob to drop the blocked message", || {
        let rep = json_lines(&b_home, &["sync"]);
        (rep[0]["blocked"]
            .as_u64()
            .expect("blocked in the sync report")
            > 0)
        .then_some(())
    });
    assert!(json_lines(&b_home, &["messages", alice]).is_empty());
    assert!(json_lines(&b_home, &["requests"]).is_empty());
    assert!(
        json_lines(&b_home, &["messages"])
            .iter()
            .all(|m| m["text"] != T5)
    );

    // At rest: no message text, phrase or seed in any file of either profile.
    let mut secrets: Vec<(String, Vec<u8>)> = [T1, T2, T3, T4, T5, "bobby"]
        .iter()
        .map(|t| (format!("text {t:?}"), t.as_bytes().to_vec()))
        .collect();
    for (who, phrase) in ["alice", "bob"].iter().zip(&phrases) {
        let seed = umbra_proto::mnemonic::AccountSeed::from_phrase(phrase).unwrap();
        secrets.push((format!("{who}'s phrase"), phrase.as_bytes().to_vec()));
        for w in phrase.split_whitespace().collect::<Vec<_>>().windows(3) {
            secrets.push((format!("{who}'s phrase words"), w.join(" ").into_bytes()));
        }
        secrets.push((format!("{who}'s seed"), seed.ed_seed().to_vec()));
        secrets.push((
            format!("{who}'s seed (hex)"),
            hex::encode(seed.ed_seed()).into_bytes(),
        ));
    }
    let mut checked = 0;
    for home in [&a_home, &b_home] {
        let files = all_files(home);
        assert!(
            files.iter().any(|(p, _)| p.ends_with("store.sqlite")),
            "{files:?}"
        );
        for (path, bytes) in &files {
            checked += 1;
            for (what, needle) in &secrets {
                assert!(
                    !contains(bytes, needle),
                    "{} contains {what}",
                    path.display()
                );
            }
        }
    }
    assert!(checked >= 4, "only {checked} files checked");

    // Restore: the same phrase gives the same account; a wrong one is refused.
    let r_home = tmp.path().join("alice-restored");
    let v = json_lines(
        &r_home,
        &[
            "account",
            "restore",
            "--network",
            network,
            "--mnemonic",
            &phrases[0],
        ],
    );
    assert_eq!(v[0]["account_id"], alice);
    let shown = json_lines(&r_home, &["account", "show"]);
    assert_eq!(shown[0]["account_id"], alice);

    let words: Vec<&str> = phrases[0].split_whitespace().collect();
    let last = words[24];
    let other = umbra_proto::mnemonic::word_list()
        .iter()
        .find(|w| w.get(..3) != last.get(..3))
        .unwrap();
    let wrong = format!("{} {other}", words[..24].join(" "));
    let typo = format!("{} zzzzzz {}", words[..11].join(" "), words[12..].join(" "));
    let short = words[..12].join(" ");
    for (phrase, expect) in [
        (wrong.as_str(), "checksum"),
        (typo.as_str(), "not in the word list"),
        (short.as_str(), "13 words"),
    ] {
        let bad_home = tmp.path().join("bad-restore");
        let out = umbra(
            &bad_home,
            &[
                "account",
                "restore",
                "--network",
                network,
                "--mnemonic",
                phrase,
            ],
        );
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{phrase:?} was accepted");
        assert!(
            stderr.starts_with("umbra: error:") && stderr.contains(expect),
            "{expect:?} not in {stderr:?}"
        );
        assert!(out.stdout.is_empty());
        assert!(
            !bad_home.join("profile.key").exists(),
            "a refused restore leaves no profile"
        );
    }
}
