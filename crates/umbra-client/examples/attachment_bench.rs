//! Attachment throughput (issue 9): a 100 MB file sent from Alice to Bob
//! through 3-hop onion paths to the file server of an in-process loopback
//! devnet, then downloaded by Bob.
//!
//! ```text
//! cargo run --release -p umbra-client --example attachment_bench [-- SIZE_MB [NODES [nosync]]]
//! ```
//!
//! Prints, in MB/s of plaintext: the upload (`send_attachment`: read,
//! chunk encryption, the local encrypted copy, 3 chunks in flight, the
//! manifest and the message), the download into Bob's profile
//! (`download_attachment`: chunks fetched 3 at a time, each verified, then
//! sealed locally) and the export of the decrypted file. Everything —
//! nodes, file server, both clients — shares this machine's cores.
//! `nosync` makes the file server skip its per-upload `fdatasync` (to
//! show how much of the upload time is the disk's).
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "benchmark binary")]

use std::time::Instant;

use umbra_client::attachments::SendOptions;
use umbra_client::client::Client;
use umbra_client::profile::Profile;
use umbra_devnet::{Devnet, DevnetOptions};
use umbra_proto::mnemonic::AccountSeed;
use umbra_proto::path::PathConfig;

fn random_file(seed: u64, n: usize) -> Vec<u8> {
    let mut s = seed;
    let mut out = Vec::with_capacity(n + 8);
    while out.len() < n {
        s = s.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = s;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        out.extend_from_slice(&(z ^ (z >> 31)).to_le_bytes());
    }
    out.truncate(n);
    out
}

fn client(devnet: &Devnet, dir: &std::path::Path, name: &str, seed: u8) -> Client {
    let pdir = dir.join(name);
    let profile = Profile::create(&pdir, &AccountSeed::new_umbra(&[seed; 32]), None).unwrap();
    Client::open(
        profile,
        devnet.network().clone(),
        PathConfig::default().with_min_usable_nodes(4),
    )
    .unwrap()
}

/// CPU seconds (user + system) this process used so far, from
/// `/proc/self/stat` (0 where unavailable): the figure that does not depend
/// on what else the machine is running.
fn cpu_secs() -> f64 {
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else {
        return 0.0;
    };
    let Some(rest) = stat.rsplit_once(')').map(|(_, r)| r) else {
        return 0.0;
    };
    let f: Vec<&str> = rest.split_whitespace().collect();
    // Fields 14 and 15 of the line are the 12th and 13th after the name.
    let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    (ticks(11) + ticks(12)) / 100.0
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let mut args = std::env::args().skip(1);
    let mb: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(100);
    let nodes: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(6);
    let durable = args.next().as_deref() != Some("nosync");
    let n = mb * 1_000_000;
    let dir = tempfile::tempdir().unwrap();
    let mut devnet = Devnet::up(DevnetOptions::in_process(nodes, dir.path().join("devnet")))
        .await
        .unwrap();
    let fs = devnet
        .start_file_server_with(|c| c.durable_writes = durable)
        .await
        .unwrap();
    let alice = client(&devnet, dir.path(), "alice", 0xa1);
    let bob = client(&devnet, dir.path(), "bob", 0xb0);
    let timeout = std::time::Duration::from_secs(60);
    alice.network().ensure_ready(timeout).await.unwrap();
    bob.network().ensure_ready(timeout).await.unwrap();
    bob.profile()
        .store()
        .set_approved_by_us(&alice.account_id(), true)
        .unwrap();

    let data = random_file(100, n);
    let src = dir.path().join("file.bin");
    std::fs::write(&src, &data).unwrap();
    let digest = umbra_crypto::hash::sha256(&data);
    drop(data);

    let (t0, c0) = (Instant::now(), cpu_secs());
    let sent = alice
        .send_attachment(&bob.account_id(), &src, &SendOptions::default(), &|_| {})
        .await
        .unwrap();
    let up = t0.elapsed().as_secs_f64();
    let up_cpu = cpu_secs() - c0;

    // Bob receives the message (the file is not fetched during sync).
    let m = loop {
        bob.sync().await.unwrap();
        if let Some(m) = bob.message_at(sent.timestamp_ms).unwrap() {
            break m;
        }
    };
    let (t0, c0) = (Instant::now(), cpu_secs());
    bob.download_attachment(m.id, 0, &|_| {}).await.unwrap();
    let down = t0.elapsed().as_secs_f64();
    let down_cpu = cpu_secs() - c0;
    let out = dir.path().join("out.bin");
    let t0 = Instant::now();
    bob.export_attachment(m.id, 0, &out, &|_| {}).await.unwrap();
    let export = t0.elapsed().as_secs_f64();
    assert_eq!(
        umbra_crypto::hash::sha256(&std::fs::read(&out).unwrap()),
        digest
    );
    let mbs = |s: f64| n as f64 / 1e6 / s;
    println!(
        "{mb} MB, {} chunks, {nodes} nodes, 3-hop onion paths, loopback, {} cores, file server {}",
        sent.chunks_uploaded,
        std::thread::available_parallelism().map_or(0, |p| p.get()),
        if durable {
            "fdatasync per upload"
        } else {
            "without fdatasync"
        }
    );
    println!(
        "upload   {up:7.2} s  {:7.1} MB/s   cpu {up_cpu:6.2} s ({:.1} MB per cpu-second)",
        mbs(up),
        mbs(up_cpu)
    );
    println!(
        "download {down:7.2} s  {:7.1} MB/s   cpu {down_cpu:6.2} s ({:.1} MB per cpu-second)",
        mbs(down),
        mbs(down_cpu)
    );
    println!("export   {export:7.2} s  {:7.1} MB/s", mbs(export));
    fs.handle.stop().await;
    devnet.down().await;
}
