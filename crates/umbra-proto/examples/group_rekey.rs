//! Micro benchmark (`groups.md` §3, §7.3): time to rekey a 100-member group,
//! i.e. build and sign the 100-entry bundle and the new state document, and
//! the member-side cost of opening the bundle (worst case: 100 trial
//! unseals). No criterion; run with
//! `cargo run --release -p umbra-proto --example group_rekey`.

use std::time::{Duration, Instant};

use umbra_proto::group::{ExpandRng, GroupState, KeyBundle};
use umbra_proto::identity::{AccountId, AccountKeys};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut rng = ExpandRng::new(umbra_crypto::random_bytes::<32>());
    let admin = AccountKeys::from_seed(&umbra_crypto::random_bytes::<32>());
    let members: Vec<AccountKeys> = (0..99)
        .map(|_| AccountKeys::from_seed(&umbra_crypto::random_bytes::<32>()))
        .collect();
    let ids: Vec<AccountId> = members.iter().map(AccountKeys::account_id).collect();
    let now = 1_700_000_000_000;
    let (mut group, _) = GroupState::create(
        &umbra_crypto::random_bytes::<32>(),
        &admin.account_id(),
        "bench",
        &ids,
        false,
        now,
        &mut rng,
    )?;

    let runs = 50u32;
    let mut total = Duration::ZERO;
    let mut last = None;
    for i in 0..runs {
        let t = Instant::now();
        let p = group.reissue(now + u64::from(i) + 1, &mut rng)?;
        total += t.elapsed();
        last = Some(p);
    }
    let p = last.ok_or("no run")?;
    let bundle = p.bundle.as_ref().ok_or("no bundle")?;
    println!(
        "rekey for 100 members (bundle + state, signed): {:.2} ms mean over {runs} runs; bundle {} bytes, state {} bytes",
        total.as_secs_f64() * 1000.0 / f64::from(runs),
        bundle.to_bytes().len(),
        p.state.to_bytes().len()
    );

    // Member side: parse + verify + trial-open every entry (worst case is
    // the member whose entry is last; an outsider tries all 100).
    let outsider = AccountKeys::from_seed(&umbra_crypto::random_bytes::<32>());
    let t = Instant::now();
    for _ in 0..runs {
        let b = KeyBundle::parse(bundle.to_bytes(), &group.group_id())?;
        let _ = b.open(&group.group_id(), outsider.x25519_secret());
    }
    println!(
        "member side, parse + verify + 100 trial opens: {:.2} ms mean",
        t.elapsed().as_secs_f64() * 1000.0 / f64::from(runs)
    );
    let t = Instant::now();
    let b = KeyBundle::parse(bundle.to_bytes(), &group.group_id())?;
    b.open(&group.group_id(), members[98].x25519_secret())?;
    println!(
        "one member opening its entry: {:.2} ms",
        t.elapsed().as_secs_f64() * 1000.0
    );
    Ok(())
}
