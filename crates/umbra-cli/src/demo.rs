//! `umbra demo`: the whole network on this machine, step by step.
//!
//! Starts a devnet of 12 nodes in a temporary directory (in this process),
//! creates Alice and Bob, and walks through: both account IDs; Alice's
//! message travelling through a 3-hop onion path into Bob's swarm; Bob's
//! reply; read receipts once both enable them; a disappearing message that
//! is gone after its timer; unsend. It ends with the p50 time of each step
//! and removes everything it created (also on Ctrl-C).

use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use indicatif::{ProgressBar, ProgressStyle};
use umbra_client::client::Client;
use umbra_client::profile::Profile;
use umbra_client::store::{Direction, Disappearing, DisappearingMode, Message, MessageStatus};
use umbra_devnet::{Devnet, DevnetOptions};
use umbra_proto::identity::AccountId;
use umbra_proto::path::PathConfig;

/// Options of `umbra demo`.
#[derive(Debug, clap::Args)]
pub struct DemoArgs {
    /// Number of nodes.
    #[arg(long, default_value_t = 12)]
    nodes: usize,
    /// Disappearing-message timer for the demo, in seconds (at least 10: the
    /// shortest TTL a node accepts).
    #[arg(long, default_value_t = 10)]
    timer: u32,
}

struct Timings(Vec<(&'static str, Vec<Duration>)>);

impl Timings {
    fn record(&mut self, step: &'static str, d: Duration) {
        match self.0.iter_mut().find(|(s, _)| *s == step) {
            Some((_, v)) => v.push(d),
            None => self.0.push((step, vec![d])),
        }
    }

    fn print(&self) {
        println!("\nTimings (p50 per step, this machine):");
        for (step, v) in &self.0 {
            let mut v = v.clone();
            v.sort();
            let p50 = v[v.len() / 2];
            println!(
                "  {step:<34} {:>8.1} ms  (n={})",
                p50.as_secs_f64() * 1000.0,
                v.len()
            );
        }
    }
}

fn short(key: &[u8; 32]) -> String {
    hex::encode(&key[..4])
}

fn step(n: u32, title: &str) {
    println!("\n\x1b[1m{n}. {title}\x1b[0m");
}

/// Runs the demo.
pub fn run(args: DemoArgs) -> anyhow::Result<()> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the runtime")?;
    let tmp = tempfile::Builder::new()
        .prefix("umbra-demo-")
        .tempdir()
        .context("creating a temporary directory")?;
    let result = rt.block_on(async {
        tokio::select! {
            r = demo(&args, tmp.path()) => r,
            _ = tokio::signal::ctrl_c() => {
                eprintln!("\ninterrupted: cleaning up");
                Ok(())
            }
        }
    });
    // Stop every in-process node before the directory goes away.
    rt.shutdown_timeout(Duration::from_secs(5));
    drop(tmp);
    result
}

async fn wait_for<F, Fut, T>(what: &str, timeout: Duration, mut f: F) -> anyhow::Result<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<Option<T>>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = f().await? {
            return Ok(v);
        }
        if Instant::now() > deadline {
            bail!("timed out waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Syncs `client` until its messages with `peer` satisfy `done`.
async fn sync_until(
    client: &Client,
    peer: &AccountId,
    what: &str,
    timeout: Duration,
    done: impl Fn(&[Message]) -> bool,
) -> anyhow::Result<()> {
    wait_for(what, timeout, || async {
        client.sync().await?;
        let msgs = client.profile().store().messages(peer, None)?;
        Ok(done(&msgs).then_some(()))
    })
    .await
}

async fn demo(args: &DemoArgs, dir: &std::path::Path) -> anyhow::Result<()> {
    if args.timer < 10 {
        bail!("--timer must be at least 10 seconds (the shortest TTL a node accepts)");
    }
    let mut timings = Timings(Vec::new());
    println!("Umbra demo: a private messenger network on this machine.");
    println!("Everything below is real: TLS between nodes, onion layers, SQLite, signatures.");

    step(
        1,
        &format!("Start a network of {} service nodes", args.nodes),
    );
    let bar = ProgressBar::new_spinner();
    bar.set_style(
        ProgressStyle::with_template("  {spinner} {msg} [{elapsed}]")
            .unwrap_or_else(|_| ProgressStyle::default_spinner()),
    );
    bar.enable_steady_tick(Duration::from_millis(100));
    bar.set_message("generating node keys, signing the registry, starting nodes");
    let t0 = Instant::now();
    let net = Devnet::up(DevnetOptions::in_process(args.nodes, dir.join("devnet")))
        .await
        .context("starting the devnet")?;
    bar.finish_and_clear();
    timings.record("start network", t0.elapsed());
    let doc = net.registry();
    println!(
        "  {} nodes in {} swarms, registry epoch {}, ready in {:.1} s",
        doc.nodes().len(),
        doc.swarm_ids().len(),
        doc.epoch(),
        t0.elapsed().as_secs_f64()
    );

    step(2, "Create two accounts: no phone number, no e-mail");
    let path_config = PathConfig::default().with_min_usable_nodes(args.nodes.min(8));
    let mut clients = Vec::new();
    for name in ["alice", "bob"] {
        let seed =
            umbra_proto::mnemonic::AccountSeed::new_umbra(&umbra_crypto::random_bytes::<32>());
        let profile = Profile::create(&dir.join(name), &seed, None)
            .with_context(|| format!("creating {name}'s profile"))?;
        let c = Client::open(profile, net.network().clone(), path_config)
            .context("opening the client")?;
        clients.push(c);
    }
    let (alice, bob) = (&clients[0], &clients[1]);
    let (a_id, b_id) = (alice.account_id(), bob.account_id());
    println!("  Alice: {a_id}");
    println!("  Bob:   {b_id}");
    println!("  (an account ID is 05 + a public key; a 25-word phrase restores it)");

    step(3, "Alice sends Bob a message through a 3-hop onion path");
    let t = Instant::now();
    let sent = alice
        .send_text(&b_id, "Hi Bob! This went through three nodes.")
        .await
        .context("Alice's send")?;
    timings.record("send (onion, recipient + sync copy)", t.elapsed());
    let r = &sent.route;
    if r.len() == 4 {
        println!(
            "  Alice → guard {} → hop {} → hop {} → Bob's swarm node {}",
            short(&r[0]),
            short(&r[1]),
            short(&r[2]),
            short(&r[3])
        );
    }
    println!(
        "  stored by {} member(s) of Bob's swarm; no node saw both Alice and Bob",
        sent.accepted_by
    );

    step(4, "Bob syncs: an unknown sender lands in message requests");
    let t = Instant::now();
    sync_until(
        bob,
        &a_id,
        "Bob to receive Alice's message",
        Duration::from_secs(30),
        |msgs| !msgs.is_empty(),
    )
    .await?;
    timings.record("sync (retrieve + decrypt)", t.elapsed());
    let reqs = bob.profile().store().requests()?;
    println!("  Bob's requests inbox: {} conversation(s)", reqs.len());
    for m in bob.profile().store().messages(&a_id, None)? {
        println!("  Bob reads: \"{}\"  (from {})", m.text, m.author.short());
    }

    step(5, "Bob accepts and replies");
    let t = Instant::now();
    bob.accept(&a_id).await?;
    bob.send_text(&a_id, "Hello Alice, request accepted.")
        .await?;
    timings.record("send (onion, recipient + sync copy)", t.elapsed());
    let t = Instant::now();
    sync_until(
        alice,
        &b_id,
        "Alice to get Bob's reply",
        Duration::from_secs(30),
        |msgs| msgs.iter().any(|m| m.direction == Direction::In),
    )
    .await?;
    timings.record("sync (retrieve + decrypt)", t.elapsed());
    for m in alice.profile().store().messages(&b_id, None)? {
        let arrow = if m.direction == Direction::Out {
            "→"
        } else {
            "←"
        };
        println!("  Alice's view {arrow} \"{}\"", m.text);
    }

    step(6, "Read receipts (off by default): both turn them on");
    alice.profile().store().set_read_receipts(true)?;
    bob.profile().store().set_read_receipts(true)?;
    alice
        .send_text(&b_id, "Tell me when you read this.")
        .await?;
    wait_for("Bob to receive", Duration::from_secs(30), || async {
        Ok((bob.sync().await?.new_messages > 0).then_some(()))
    })
    .await?;
    let t = Instant::now();
    bob.read_conversation(&a_id, None).await?;
    sync_until(
        alice,
        &b_id,
        "Alice to see the read receipt",
        Duration::from_secs(30),
        |msgs| {
            msgs.iter()
                .any(|m| m.direction == Direction::Out && m.status == MessageStatus::Read)
        },
    )
    .await?;
    timings.record("read receipt round trip", t.elapsed());
    println!("  Alice sees her message marked read");

    step(
        7,
        &format!("A disappearing message ({} s after send)", args.timer),
    );
    alice
        .set_disappearing(
            &b_id,
            Disappearing {
                mode: DisappearingMode::AfterSend,
                timer_s: args.timer,
            },
        )
        .await?;
    alice
        .send_text(&b_id, "This message will self-destruct.")
        .await?;
    let t = Instant::now();
    sync_until(
        bob,
        &a_id,
        "Bob to receive it",
        Duration::from_secs(30),
        |msgs| msgs.iter().any(|m| m.text.contains("self-destruct")),
    )
    .await?;
    println!("  Bob has it; waiting for the timer …");
    sync_until(
        bob,
        &a_id,
        "the message to disappear",
        Duration::from_secs(u64::from(args.timer) + 30),
        |msgs| !msgs.iter().any(|m| m.text.contains("self-destruct")),
    )
    .await?;
    timings.record("disappearing message lifetime", t.elapsed());
    println!(
        "  gone from Bob's device after {:.1} s (and from the swarm: its TTL was the timer)",
        t.elapsed().as_secs_f64()
    );
    alice
        .set_disappearing(
            &b_id,
            Disappearing {
                mode: DisappearingMode::Off,
                timer_s: 0,
            },
        )
        .await?;

    step(8, "Unsend: Alice deletes a message for everyone");
    let oops = alice.send_text(&b_id, "Oops, wrong chat").await?;
    sync_until(
        bob,
        &a_id,
        "Bob to receive it",
        Duration::from_secs(30),
        |msgs| msgs.iter().any(|m| m.text == "Oops, wrong chat"),
    )
    .await?;
    let t = Instant::now();
    alice.unsend(&b_id, oops.timestamp_ms).await?;
    sync_until(
        bob,
        &a_id,
        "Bob's copy to be deleted",
        Duration::from_secs(30),
        |msgs| msgs.iter().any(|m| m.deleted),
    )
    .await?;
    timings.record("unsend round trip", t.elapsed());
    println!("  Bob now sees \"This message was deleted\"");

    timings.print();
    println!("\nDone. Every node and file of this demo is being removed.");
    drop(clients);
    net.down().await;
    Ok(())
}
