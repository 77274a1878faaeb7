//! Insert throughput of the storage layer with group commit
//! (`shared/spec/swarms.md` §11): many concurrent tasks each insert 1 KiB
//! messages; prints inserts/s, transactions committed and the mean batch size.
//!
//! `cargo run -p umbra-node --example store_bench -- [tasks] [messages] [full]`
//! (defaults: 64 tasks, 20000 messages, `synchronous=NORMAL`; a third argument
//! `full` uses `synchronous=FULL`). The database lives in a temporary folder.

use std::time::Instant;

use umbra_node::storage::{Store, StoreConfig, StoredMessage, Synchronous};
use umbra_proto::identity::AccountId;

const NOW: u64 = 1_700_000_000_000;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let tasks: u32 = args.first().map_or(Ok(64), |a| a.parse())?;
    let total: u32 = args.get(1).map_or(Ok(20_000), |a| a.parse())?;
    let synchronous = match args.get(2).map(String::as_str) {
        Some("full") => Synchronous::Full,
        _ => Synchronous::Normal,
    };
    let per_task = total / tasks.max(1);
    let dir = tempfile::tempdir()?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    rt.block_on(async move {
        let config = StoreConfig {
            synchronous,
            ..StoreConfig::default()
        };
        let store = Store::open(dir.path().join("bench.sqlite"), config)?;
        let commits_before = store.commit_count();
        let start = Instant::now();
        let handles: Vec<_> = (0..tasks)
            .map(|t| {
                let store = store.clone();
                tokio::spawn(async move {
                    for n in 0..per_task {
                        let mut raw = [0u8; 33];
                        raw[0] = 0x05;
                        raw[1..5].copy_from_slice(&(t % 100).to_be_bytes());
                        let owner = AccountId::from_bytes(&raw).map_err(|e| e.to_string())?;
                        let m = StoredMessage {
                            hash: format!("{:0>43}", format!("{t}x{n}")),
                            owner,
                            namespace: 0,
                            timestamp_ms: NOW,
                            expiry_ms: NOW + 86_400_000,
                            data: vec![(n % 251) as u8; 1024],
                        };
                        store.insert(m, NOW).await.map_err(|e| e.to_string())?;
                    }
                    Ok::<(), String>(())
                })
            })
            .collect();
        for h in handles {
            h.await.map_err(|e| e.to_string())??;
        }
        let secs = start.elapsed().as_secs_f64();
        let n = u64::from(per_task) * u64::from(tasks);
        let commits = store.commit_count() - commits_before;
        println!(
            "{n} inserts of 1 KiB from {tasks} tasks ({synchronous:?}): {secs:.2} s, \
             {:.0} inserts/s, {commits} transactions, {:.1} inserts per transaction",
            n as f64 / secs,
            n as f64 / commits.max(1) as f64
        );
        Ok::<(), Box<dyn std::error::Error>>(())
    })
}
