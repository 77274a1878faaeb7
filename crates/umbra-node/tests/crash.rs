//! Crash safety of the storage layer (`shared/spec/storage-rpc.md` §9.1: a
//! store is acknowledged only once committed).
//!
//! The test re-runs its own binary as a child process that inserts messages
//! from many concurrent tasks and prints `ACK <hash>` after each
//! acknowledgement. The parent SIGKILLs the child mid-stream, reopens the
//! database and checks that every acknowledged message is there.

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use umbra_node::storage::{Store, StoreConfig, StoredMessage};
use umbra_proto::identity::AccountId;

const CHILD_ENV: &str = "UMBRA_NODE_CRASH_CHILD_DB";
const TEST_NAME: &str = "acknowledged_inserts_survive_sigkill";
const NOW: u64 = 1_700_000_000_000;
const ACKS_BEFORE_KILL: usize = 400;

fn owner() -> AccountId {
    let mut raw = [0x42u8; 33];
    raw[0] = 0x05;
    AccountId::from_bytes(&raw).expect("account id")
}

fn hash(task: u32, n: u32) -> String {
    format!("{:0>43}", format!("{task}x{n}"))
}

/// The child: insert forever (bounded at 60 s), acknowledging on stdout.
fn child(db: &str) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let store = Store::open(db, StoreConfig::default()).expect("open store");
        let deadline = Instant::now() + Duration::from_secs(60);
        let tasks: Vec<_> = (0..32u32)
            .map(|task| {
                let store = store.clone();
                tokio::spawn(async move {
                    let mut n = 0u32;
                    while Instant::now() < deadline {
                        let m = StoredMessage {
                            hash: hash(task, n),
                            owner: owner(),
                            namespace: 0,
                            timestamp_ms: NOW,
                            expiry_ms: NOW + 86_400_000,
                            data: vec![0x5a; 1024],
                        };
                        let new = store.insert(m, NOW).await.expect("insert");
                        assert!(new);
                        let line = format!("ACK {}\n", hash(task, n));
                        let mut out = std::io::stdout().lock();
                        out.write_all(line.as_bytes()).expect("stdout");
                        out.flush().expect("flush");
                        n += 1;
                    }
                })
            })
            .collect();
        for t in tasks {
            t.await.expect("task");
        }
    });
}

#[test]
fn acknowledged_inserts_survive_sigkill() {
    if let Ok(db) = std::env::var(CHILD_ENV) {
        child(&db);
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("node.sqlite");
    let exe = std::env::current_exe().expect("current exe");
    let mut proc = Command::new(exe)
        .args([TEST_NAME, "--exact", "--nocapture", "--test-threads=1"])
        .env(CHILD_ENV, &db)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn child");
    let stdout = proc.stdout.take().expect("child stdout");
    let mut reader = BufReader::new(stdout);
    let mut acked = Vec::new();
    let mut line = String::new();
    let mut killed = false;
    loop {
        line.clear();
        match reader.read_line(&mut line) {
            Ok(0) => break,
            Ok(_) => {}
            Err(e) => panic!("reading child output: {e}"),
        }
        // Only complete lines count: the kill may cut the last one.
        if let Some(h) = line.strip_prefix("ACK ").and_then(|l| l.strip_suffix('\n')) {
            acked.push(h.to_owned());
        }
        if !killed && acked.len() >= ACKS_BEFORE_KILL {
            proc.kill().expect("SIGKILL child"); // std sends SIGKILL on Unix
            killed = true;
        }
    }
    let status = proc.wait().expect("wait child");
    assert!(killed, "child ended before being killed: {status:?}");
    assert!(!status.success(), "child was not killed: {status:?}");
    assert!(acked.len() >= ACKS_BEFORE_KILL);

    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let store = Store::open(&db, StoreConfig::default()).expect("reopen");
        let mut missing = 0;
        for chunk in acked.chunks(1000) {
            let found = store
                .get_expiries(&owner(), chunk.to_vec(), NOW)
                .await
                .expect("get_expiries");
            missing += chunk.iter().filter(|h| !found.contains_key(*h)).count();
        }
        let count = store.count().await.expect("count");
        assert_eq!(
            missing,
            0,
            "{missing} of {} acknowledged messages lost",
            acked.len()
        );
        assert!(count >= acked.len() as u64);
        eprintln!(
            "acknowledged {}, present after SIGKILL {count}",
            acked.len()
        );
    });
}
