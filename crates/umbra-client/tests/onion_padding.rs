//! Issue 4 acceptance: size hiding (`onion.md` §9.2). 200 `store` requests
//! with payloads of random sizes from 1 B to 60 KiB, sent through the typed
//! API over real onion paths, leave the client in at most as many distinct
//! HTTP body sizes as there are size buckets up to the largest request, and
//! every body is exactly one of the spec's bucket sizes.
//!
//! The sizes are what the client's transport was handed for the guard
//! (the request log of [`Network::record_requests`]), i.e. the exact
//! bytes of every `POST /onion_req/v2` body, retries and path tests
//! included.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use umbra_client::api::Api;
use umbra_client::net::Network;
use umbra_devnet::{Devnet, DevnetOptions};
use umbra_proto::identity::AccountKeys;
use umbra_proto::path::PathConfig;
use umbra_proto::rpc::Namespace;
use umbra_transport::SystemClock;

/// §9.1, from the spec's table (not from the implementation).
const SPEC_BUCKETS: [usize; 7] = [
    2_048, 8_192, 32_768, 131_072, 524_288, 2_097_152, 10_485_760,
];

/// A small deterministic generator, so a failure can be replayed.
struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_bodies_take_only_bucket_sizes() {
    let dir = tempfile::tempdir().unwrap();
    let devnet = Devnet::up(DevnetOptions {
        distinct_ips: true,
        ..DevnetOptions::in_process(8, dir.path())
    })
    .await
    .unwrap();
    let net = Network::new(
        devnet.network().clone(),
        PathConfig::default().with_min_usable_nodes(4),
        None,
        None,
        Arc::new(SystemClock),
    )
    .unwrap();
    net.record_requests(true);
    let api = Api::new(&net).with_timeout(Duration::from_secs(30));
    let a = AccountKeys::from_seed(&[0x5A; 32]).account_id();

    let mut rng = XorShift(0x9E37_79B9_7F4A_7C15);
    let sizes: Vec<usize> = (0..200)
        .map(|_| 1 + (rng.next() % (60 * 1024)) as usize)
        .collect();
    let largest = *sizes.iter().max().unwrap();
    let results: Vec<_> = futures::stream::iter(sizes.iter().enumerate())
        .map(|(i, &n)| {
            let api = &api;
            let mut data = vec![(i % 251) as u8; n];
            data[0] = i as u8;
            data[n - 1] = (i >> 8) as u8;
            async move {
                api.send_to_swarm(&a, None, Namespace(0), &data, 60_000)
                    .await
            }
        })
        .buffer_unordered(4)
        .collect()
        .await;
    let failed: Vec<String> = results
        .iter()
        .filter_map(|r| r.as_ref().err().map(|e| e.to_string()))
        .collect();
    assert!(
        failed.is_empty(),
        "{} stores failed: {failed:?}",
        failed.len()
    );

    let mut by_size: BTreeMap<usize, usize> = BTreeMap::new();
    for r in net.sent_requests().iter().filter(|r| r.method.is_none()) {
        *by_size.entry(r.body_len).or_default() += 1;
    }
    // The largest request: `largest` bytes of data, base64 in the JSON.
    let biggest_unpadded = largest.div_ceil(3) * 4;
    let allowed: Vec<usize> = SPEC_BUCKETS
        .iter()
        .copied()
        .take_while(|&b| b < biggest_unpadded)
        .chain(
            SPEC_BUCKETS
                .iter()
                .copied()
                .find(|&b| b >= biggest_unpadded + 1000),
        )
        .collect();
    eprintln!(
        "largest payload {largest} B; onion body sizes (size: count): {by_size:?}; buckets allowed {allowed:?}"
    );
    assert!(by_size.values().sum::<usize>() >= 200);
    for size in by_size.keys() {
        assert!(
            allowed.contains(size),
            "body of {size} bytes is not a bucket up to the largest request"
        );
    }
    assert!(by_size.len() <= allowed.len());
    assert!(by_size.len() >= 3, "payloads of 1 B to 60 KiB span buckets");
    devnet.down().await;
}
