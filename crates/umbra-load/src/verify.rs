//! Direct (non-onion) requests of the end-of-run checks and the disk fault:
//! [`check_swarms`] asks every member of every account's swarm for the
//! account's messages (a signed `retrieve` straight to that node) and
//! compares each member's set with the union of its swarm and with the
//! acknowledged hashes; [`fill_node`] stores filler messages through one
//! node until it answers `507`.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use serde::Serialize;
use serde_json::json;
use umbra_devnet::Devnet;
use umbra_proto::identity::{AccountId, AccountKeys};
use umbra_proto::rpc::Namespace;
use umbra_proto::rpc::encoding::MessageData;
use umbra_proto::rpc::sign::{self, Signer};
use umbra_proto::rpc::types::{RetrieveParams, RetrieveResponse, StoreParams};
use umbra_proto::swarm::RegistryDocument;
use umbra_transport::{Clock, NodeClient, SystemClock};

/// The result of the end-of-run swarm check.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct SwarmCheck {
    /// Accounts checked.
    pub accounts: usize,
    /// Distinct messages expected across all accounts.
    pub messages: usize,
    /// (member, message) pairs checked in the last round.
    pub pairs: usize,
    /// (member, message) pairs still missing at the end.
    pub missing: usize,
    /// Acknowledged messages that no member holds.
    pub acked_held_nowhere: usize,
    /// Member queries that failed in the last round.
    pub unreachable: usize,
    /// Rounds it took (members are re-asked while catch-up runs).
    pub rounds: usize,
    /// Seconds it took.
    pub seconds: f64,
    /// Missing pairs by node index, at the end.
    pub missing_by_node: BTreeMap<usize, usize>,
}

impl std::fmt::Display for SwarmCheck {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} accounts, {} messages, {} member×message pairs: {} missing, {} acknowledged held nowhere, {} members unreachable; {} rounds, {:.1} s",
            self.accounts,
            self.messages,
            self.pairs,
            self.missing,
            self.acked_held_nowhere,
            self.unreachable,
            self.rounds,
            self.seconds
        )?;
        if !self.missing_by_node.is_empty() {
            write!(f, "; missing by node {:?}", self.missing_by_node)?;
        }
        Ok(())
    }
}

fn now_ms() -> u64 {
    SystemClock.now_ms()
}

/// Every unexpired message hash node `i` holds for `keys`' account in
/// namespace 0 (signed `retrieve`, all pages), or `None` if it did not answer.
async fn node_hashes(
    client: &NodeClient,
    devnet: &Devnet,
    i: usize,
    keys: &AccountKeys,
) -> Option<BTreeSet<String>> {
    let mut out = BTreeSet::new();
    let mut last = None;
    for _ in 0..64 {
        let t = now_ms();
        let params = RetrieveParams {
            pubkey: keys.account_id(),
            namespace: Namespace::DEFAULT,
            last_hash: last.take(),
            max_count: None,
            max_size: None,
            timestamp: Some(t),
            auth: Signer::Account(keys).auth(&sign::retrieve_string(Namespace::DEFAULT, t)),
        };
        let body = json!({"method": "retrieve", "params": params}).to_string();
        let resp = client
            .post(&devnet.node_addr(i), "/storage_rpc/v1", body.into_bytes())
            .await
            .ok()?;
        if resp.status != 200 {
            return None;
        }
        let r: RetrieveResponse = serde_json::from_slice(&resp.body).ok()?;
        let more = r.more;
        last = r.messages.last().map(|m| m.hash.clone());
        out.extend(r.messages.into_iter().map(|m| m.hash.as_str().to_string()));
        if !more || last.is_none() {
            return Some(out);
        }
    }
    Some(out)
}

/// Asks every member of every account's swarm for the account's messages,
/// repeating for accounts with gaps until none is left or `deadline`.
pub async fn check_swarms(
    devnet: &Devnet,
    accounts: &[AccountKeys],
    acked: &BTreeMap<u32, Vec<String>>,
    deadline: Instant,
) -> SwarmCheck {
    let started = Instant::now();
    let client = NodeClient::default();
    let reg = devnet.registry();
    let index: BTreeMap<[u8; 32], usize> = (0..devnet.len())
        .map(|i| (devnet.node_addr(i).key.to_bytes(), i))
        .collect();
    let mut todo: Vec<usize> = (0..accounts.len()).collect();
    // Last result per account: (expected count, pairs, missing per node, unreachable, held nowhere).
    type Outcome = (usize, usize, BTreeMap<usize, usize>, usize, usize);
    let mut results: BTreeMap<usize, Outcome> = BTreeMap::new();
    let mut rounds = 0;
    loop {
        rounds += 1;
        let mut next = Vec::new();
        for &a in &todo {
            let keys = &accounts[a];
            let id: AccountId = keys.account_id();
            let members: Vec<usize> = reg
                .members_for(&id)
                .iter()
                .filter_map(|r| index.get(&r.ed25519.to_bytes()).copied())
                .collect();
            let mut held: Vec<(usize, Option<BTreeSet<String>>)> = Vec::new();
            for &m in &members {
                held.push((m, node_hashes(&client, devnet, m, keys).await));
            }
            let mut expected: BTreeSet<String> = BTreeSet::new();
            let acked_here: BTreeSet<String> = acked
                .get(&(a as u32))
                .map(|v| v.iter().cloned().collect())
                .unwrap_or_default();
            expected.extend(acked_here.iter().cloned());
            let mut union: BTreeSet<String> = BTreeSet::new();
            for s in held.iter().filter_map(|(_, s)| s.as_ref()) {
                union.extend(s.iter().cloned());
            }
            let held_nowhere = acked_here.difference(&union).count();
            expected.extend(union);
            let mut missing = BTreeMap::new();
            let mut unreachable = 0;
            for (m, s) in &held {
                match s {
                    Some(s) => {
                        let n = expected.difference(s).count();
                        if n > 0 {
                            missing.insert(*m, n);
                        }
                    }
                    None => unreachable += 1,
                }
            }
            if !missing.is_empty() || unreachable > 0 {
                next.push(a);
            }
            results.insert(
                a,
                (
                    expected.len(),
                    expected.len() * members.len(),
                    missing,
                    unreachable,
                    held_nowhere,
                ),
            );
        }
        todo = next;
        if todo.is_empty() || Instant::now() >= deadline {
            break;
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
    let mut c = SwarmCheck {
        accounts: accounts.len(),
        rounds,
        ..SwarmCheck::default()
    };
    for (expected, pairs, missing, unreachable, nowhere) in results.values() {
        c.messages += expected;
        c.pairs += pairs;
        c.unreachable += unreachable;
        c.acked_held_nowhere += nowhere;
        for (n, k) in missing {
            c.missing += k;
            *c.missing_by_node.entry(*n).or_default() += k;
        }
    }
    c.seconds = started.elapsed().as_secs_f64();
    c
}

/// Stores filler messages (to accounts of node `i`'s swarm, public inbox, no
/// signature) directly through node `i` until it answers `507`, first of
/// 16 KiB, then of 1 KiB, then of 64 bytes, so that even a small message no
/// longer fits; at most `max` stores. Returns the stores made and whether
/// `507` came at the smallest size.
pub async fn fill_node(
    devnet: &Devnet,
    reg: &RegistryDocument,
    i: usize,
    max: u64,
) -> Result<(u64, bool), String> {
    let key = devnet.node_addr(i).key;
    let swarm = reg
        .swarm_of_node(&key)
        .ok_or_else(|| format!("node {i} has no swarm"))?;
    // Filler accounts owned by that swarm.
    let mut fillers = Vec::new();
    for s in 0u64..100_000 {
        if fillers.len() == 8 {
            break;
        }
        let mut seed = [0u8; 32];
        seed[..8].copy_from_slice(&s.to_le_bytes());
        seed[8..14].copy_from_slice(b"filler");
        let id = AccountKeys::from_seed(&seed).account_id();
        if reg.swarm_of(&id) == Some(swarm) {
            fillers.push(id);
        }
    }
    if fillers.is_empty() {
        return Err("no filler account in that swarm".into());
    }
    let client = NodeClient::default();
    let mut n = 0u64;
    let mut saw_507 = false;
    for size in [16_384usize, 1024, 64] {
        saw_507 = false;
        while n < max {
            let mut data = vec![0u8; size];
            for chunk in data.chunks_mut(32) {
                let r = umbra_crypto::random_bytes::<32>();
                chunk.copy_from_slice(&r[..chunk.len()]);
            }
            let params = StoreParams {
                pubkey: fillers[n as usize % fillers.len()],
                timestamp: now_ms(),
                ttl: Some(3_600_000),
                expiry: None,
                data: MessageData(data),
                namespace: Namespace::DEFAULT,
                sig_timestamp: None,
                auth: Default::default(),
            };
            n += 1;
            let body = json!({"method": "store", "params": params}).to_string();
            match client
                .post(&devnet.node_addr(i), "/storage_rpc/v1", body.into_bytes())
                .await
            {
                Ok(r) if r.status == 507 => {
                    saw_507 = true;
                    break;
                }
                Ok(r) if r.status == 200 => {}
                Ok(r) if r.status == 429 => tokio::time::sleep(Duration::from_millis(500)).await,
                Ok(r) => {
                    return Err(format!(
                        "filler store answered {}: {}",
                        r.status,
                        String::from_utf8_lossy(&r.body)
                    ));
                }
                Err(e) => return Err(format!("filler store: {e}")),
            }
        }
    }
    Ok((n, saw_507))
}
