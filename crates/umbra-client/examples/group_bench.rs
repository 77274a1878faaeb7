//! Rekey of a 100-member group, end to end through an in-process devnet
//! (issue 8): an admin removes one member (generation `G + 1` wrapped for
//! the remaining 99, state `v + 1`, `revoke_subaccount`, removal notice,
//! MEMBERS_REMOVED, every request through a 3-hop onion path), and a member
//! polls the group swarm until it holds the new key.
//!
//! Reported per round (median and max over the rounds):
//! - `compute`: the pure rekey (`GroupState::remove_members`: 99 sealed
//!   boxes, bundle signature, state encryption), no network;
//! - `admin`: `Client::remove_group_members` from call to return (catch-up
//!   poll of the group swarm + compute + stores + revoke + notices);
//! - `deliver`: from the admin's return until the member's poll has the new
//!   generation (fetch namespaces 12/13 through the onion, open its entry);
//! - `total` = admin + deliver.
//!
//! `cargo run --release -p umbra-client --example group_bench [ROUNDS]`
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "benchmark binary")]

use std::path::PathBuf;
use std::time::{Duration, Instant};

use umbra_client::client::Client;
use umbra_client::profile::Profile;
use umbra_proto::group::{ExpandRng, GroupState};
use umbra_proto::identity::{AccountId, AccountKeys};
use umbra_proto::mnemonic::AccountSeed;
use umbra_proto::network::NetworkConfig;
use umbra_proto::path::PathConfig;

fn start_devnet(dir: PathBuf) -> NetworkConfig {
    umbra_devnet::shared::background(8, dir).expect("devnet")
}

fn client(dir: &std::path::Path, name: &str, net: &NetworkConfig) -> Client {
    let seed = AccountSeed::new_umbra(&umbra_crypto::random_bytes::<32>());
    let profile = Profile::create(&dir.join(name), &seed, None).unwrap();
    Client::open(
        profile,
        net.clone(),
        PathConfig::default().with_min_usable_nodes(4),
    )
    .unwrap()
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn stats(name: &str, v: &mut [f64]) {
    v.sort_by(f64::total_cmp);
    println!(
        "{name:<8} median {:>8.1} ms   max {:>8.1} ms",
        v[v.len() / 2],
        v[v.len() - 1]
    );
}

fn main() {
    let rounds: usize = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(5);
    let fakes: Vec<AccountId> = (0..98u8)
        .map(|i| AccountKeys::from_seed(&[i.wrapping_add(100); 32]).account_id())
        .collect();

    // The pure rekey, for comparison.
    let mut compute = Vec::new();
    let me = AccountKeys::from_seed(&[1; 32]).account_id();
    let mut invitees = fakes.clone();
    invitees.push(AccountKeys::from_seed(&[2; 32]).account_id());
    let mut rng = ExpandRng::new([3; 32]);
    let (mut st, _) =
        GroupState::create(&[4; 32], &me, "bench", &invitees, false, 1, &mut rng).unwrap();
    for (i, fake) in fakes.iter().take(rounds.max(5)).enumerate() {
        let t = Instant::now();
        let _ = st.remove_members(&[*fake], 2 + i as u64, &mut rng).unwrap();
        compute.push(ms(t.elapsed()));
    }

    let tmp = tempfile::tempdir().unwrap();
    let net = start_devnet(tmp.path().join("devnet"));
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async move {
        let admin = client(tmp.path(), "admin", &net);
        let member = client(tmp.path(), "member", &net);
        for c in [&admin, &member] {
            c.network()
                .ensure_ready(Duration::from_secs(60))
                .await
                .unwrap();
        }
        let mut all = fakes.clone();
        all.push(member.account_id());
        let setup = Instant::now();
        let g = admin.create_group("bench", &all).await.unwrap();
        loop {
            member.sync().await.unwrap();
            if member.group_invites().unwrap().iter().any(|i| i.group == g) {
                break;
            }
        }
        member.accept_group_invite(&g).await.unwrap();
        let info = admin.group_info(&g).unwrap();
        println!(
            "group of {} members ready in {:.1} s (98 INVITEs through the onion)",
            info.members.len(),
            setup.elapsed().as_secs_f64()
        );

        let (mut adm, mut del, mut tot) = (Vec::new(), Vec::new(), Vec::new());
        for (i, fake) in fakes.iter().take(rounds).enumerate() {
            let before = member.group_info(&g).unwrap().generation.unwrap();
            let remaining = admin.group_info(&g).unwrap().members.len() - 1;
            let t0 = Instant::now();
            admin.remove_group_members(&g, &[*fake]).await.unwrap();
            let t1 = Instant::now();
            loop {
                member.sync_group(&g).await.unwrap();
                if member.group_info(&g).unwrap().generation > Some(before) {
                    break;
                }
            }
            let t2 = Instant::now();
            println!(
                "round {}: {remaining} members, admin {:.1} ms, deliver {:.1} ms",
                i + 1,
                ms(t1 - t0),
                ms(t2 - t1)
            );
            adm.push(ms(t1 - t0));
            del.push(ms(t2 - t1));
            tot.push(ms(t2 - t0));
        }
        stats("compute", &mut compute);
        stats("admin", &mut adm);
        stats("deliver", &mut del);
        stats("total", &mut tot);
    });
}
