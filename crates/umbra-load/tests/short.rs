//! Issue 10 items 2–3, short version: 6 node processes, 40 accounts
//! sending and syncing through onion requests for 20 s while one node is
//! killed with SIGKILL and restarted, one is paused (SIGSTOP) for 4 s, and
//! one is restarted with a tiny database cap and filled until it answers
//! `507`. Every acknowledged message must be delivered exactly once with
//! the plaintext that was sent, and every swarm member must end up holding
//! every message of its swarm.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;
use std::time::Duration;

use umbra_load::LoadConfig;
use umbra_load::faults::FaultPlan;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn load_with_kill_pause_and_full_disk_loses_and_duplicates_nothing() {
    let exe = PathBuf::from(env!("CARGO_BIN_EXE_umbra-load"));
    let duration = Duration::from_secs(20);
    let mut cfg = LoadConfig::new(40, duration, 6, exe);
    cfg.devices = 6;
    cfg.send_interval = Duration::from_secs(3);
    cfg.sync_interval = Duration::from_secs(2);
    cfg.settle = Duration::from_secs(20);
    cfg.send_give_up = Duration::from_secs(20);
    cfg.seed = 10;
    cfg.faults = Some(FaultPlan {
        kills: 1,
        down_for: Duration::from_secs(3),
        pauses: 1,
        pause_for: Duration::from_secs(4),
        disk_fill: true,
        disk_full_for: Duration::from_secs(6),
        disk_cap_margin: 64 * 1024,
    });
    let report = umbra_load::run(cfg).await.expect("load run");
    eprintln!("{report}");
    let f = report.faults.clone().expect("fault counts");
    assert_eq!((f.kills, f.restarts, f.pauses), (1, 1, 1), "{f}");
    assert_eq!(f.disk_fills, 1, "{f}");
    assert!(f.filled_node_answered_507, "{f}");
    // The rest of the swarm took stores the full node could not.
    assert!(f.acked_in_full_swarm > f.full_node_confirmed, "{f}");
    assert!(f.max_down_in_a_swarm <= 2, "{f}");
    assert!(f.errors.is_empty(), "{f}");
    let v = &report.verdict;
    assert!(v.acked >= 40, "too little load to prove anything: {v:?}");
    assert_eq!(v.lost, 0, "{v:?}");
    assert_eq!(v.duplicated, 0, "{v:?}");
    assert_eq!(v.mismatched, 0, "{v:?}");
    assert_eq!(v.wrong_storage_hash, 0, "{v:?}");
    assert_eq!(v.delivered_once, v.acked, "{v:?}");
    let s = &report.swarm_check;
    assert_eq!(s.missing, 0, "{s}");
    assert_eq!(s.unreachable, 0, "{s}");
    assert_eq!(s.acked_held_nowhere, 0, "{s}");
    assert!(report.ok());
}
