//! The `e2e` row: end-to-end delivery latency on a 12-node in-process devnet
//! ([`umbra_devnet::Devnet`], real TLS and SQLite, swarms of 3): Alice's
//! `send_text` (encrypt, then two padded 3-hop onion `store`s — Bob's copy
//! and Alice's own sync copy, each fanned out to the swarm) until the end of
//! the first `sync` of Bob's (onion `retrieve`, decrypt, verify) that shows
//! the message. Messages go one at a time; Bob syncs back to back, so the
//! figure is the protocol's latency without any polling interval.
//!
//! What bounds it: one send is two onion round trips and one sync at least
//! one, so `e2e ≥ 3 × the 3-hop round trip` of the `onion` row (`all` prints
//! that ratio).

use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use umbra_client::client::Client;
use umbra_client::profile::Profile;
use umbra_devnet::{Devnet, DevnetOptions};
use umbra_proto::identity::AccountId;
use umbra_proto::mnemonic::AccountSeed;
use umbra_proto::path::PathConfig;

use crate::measure::Latencies;
use crate::table::{Row, num, p50_p99};

/// How long one message may take before the run fails.
const DEADLINE: Duration = Duration::from_secs(30);

/// How many nodes and messages.
#[derive(Debug, Clone, Copy)]
pub struct E2eOpts {
    /// Devnet size.
    pub nodes: usize,
    /// Messages measured (after a warm-up exchange).
    pub messages: usize,
}

impl E2eOpts {
    /// 12 nodes; 100 messages (quick: 20).
    pub fn new(quick: bool) -> Self {
        E2eOpts {
            nodes: 12,
            messages: if quick { 20 } else { 100 },
        }
    }
}

/// The row's figures.
#[derive(Debug, Clone)]
pub struct E2eFigures {
    /// Nodes in the devnet.
    pub nodes: usize,
    /// Send start → end of the first sync of Bob's that shows it.
    pub delivery: Latencies,
    /// Alice's `send_text` alone.
    pub send: Latencies,
    /// Each of Bob's syncs.
    pub sync: Latencies,
    /// Messages that needed more than one sync after the send returned.
    pub extra_syncs: usize,
}

fn client(dir: &std::path::Path, name: &str, seed: u8, devnet: &Devnet) -> Result<Client> {
    let seed = AccountSeed::new_umbra(&[seed; 32]);
    let profile = Profile::create(&dir.join(name), &seed, None)
        .with_context(|| format!("creating {name}'s profile"))?;
    Ok(Client::open(
        profile,
        devnet.network().clone(),
        PathConfig::default(),
    )?)
}

/// Syncs `c` until its conversation with `peer` holds `text` (sent at or
/// after `since`); returns the syncs made.
async fn sync_until(
    c: &Client,
    peer: &AccountId,
    since: u64,
    text: &str,
    sync: &mut Latencies,
) -> Result<usize> {
    let deadline = Instant::now() + DEADLINE;
    let mut n = 0;
    loop {
        let t = Instant::now();
        c.sync().await?;
        sync.push(t.elapsed());
        n += 1;
        let seen = c
            .profile()
            .store()
            .messages(peer, Some(since))?
            .iter()
            .any(|m| m.text == text);
        if seen {
            return Ok(n);
        }
        if Instant::now() > deadline {
            bail!("{text:?} not delivered within {DEADLINE:?}");
        }
    }
}

/// Runs the row.
pub async fn measure(opts: E2eOpts) -> Result<E2eFigures> {
    let dir = tempfile::tempdir().context("creating a temporary directory")?;
    let devnet = Devnet::up(DevnetOptions::in_process(
        opts.nodes,
        dir.path().join("devnet"),
    ))
    .await
    .context("starting the devnet")?;
    let result = async {
        let alice = client(dir.path(), "alice", 0xA1, &devnet)?;
        let bob = client(dir.path(), "bob", 0xB0, &devnet)?;
        let (a_id, b_id) = (alice.account_id(), bob.account_id());
        // Warm-up: paths built, the request accepted by replying.
        let mut ignore = Latencies::new();
        let s = alice.send_text(&b_id, "hello Bob").await?;
        sync_until(&bob, &a_id, s.timestamp_ms, "hello Bob", &mut ignore).await?;
        let s = bob.send_text(&a_id, "hello Alice").await?;
        sync_until(&alice, &b_id, s.timestamp_ms, "hello Alice", &mut ignore).await?;

        let mut f = E2eFigures {
            nodes: opts.nodes,
            delivery: Latencies::new(),
            send: Latencies::new(),
            sync: Latencies::new(),
            extra_syncs: 0,
        };
        for k in 0..opts.messages {
            let text = format!("bench message {k}");
            let t0 = Instant::now();
            let sent = alice.send_text(&b_id, &text).await?;
            f.send.push(t0.elapsed());
            let syncs = sync_until(&bob, &a_id, sent.timestamp_ms, &text, &mut f.sync).await?;
            f.delivery.push(t0.elapsed());
            if syncs > 1 {
                f.extra_syncs += 1;
            }
        }
        Ok(f)
    }
    .await;
    devnet.down().await;
    result
}

/// The table rows of `f`; `onion_rtt_p50_ms` is the onion row's 3-hop round
/// trip when it ran in the same invocation.
pub fn rows(f: &mut E2eFigures, onion_rtt_p50_ms: Option<f64>) -> Vec<Row> {
    let n = f.delivery.len();
    let (e50, e99) = (f.delivery.pct_ms(0.5), f.delivery.pct_ms(0.99));
    let bound = match onion_rtt_p50_ms {
        Some(rtt) if rtt > 0.0 => format!(
            "{:.1}× 3 onion round trips (2 stores + 1 retrieve = {} ms)",
            e50 / (3.0 * rtt),
            num(3.0 * rtt, 2)
        ),
        _ => "≥ 3 onion round trips (2 stores + 1 retrieve)".into(),
    };
    vec![
        Row::new(
            "e2e",
            format!(
                "Alice send → Bob's sync sees it, {}-node devnet, n = {n}",
                f.nodes
            ),
            format!("p50 {} ms, p99 {} ms", num(e50, 1), num(e99, 1)),
            bound,
        ),
        Row::new(
            "e2e",
            "  of which Alice's send_text (2 onion stores)",
            p50_p99(&mut f.send, 1),
            String::new(),
        ),
        Row::new(
            "e2e",
            "  one sync of Bob's (onion retrieve + decrypt)",
            p50_p99(&mut f.sync, 1),
            format!("{} of {n} messages needed a 2nd sync", f.extra_syncs),
        ),
    ]
}
