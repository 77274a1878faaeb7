//! Helpers shared by the client's end-to-end test binaries (each includes
//! this file with `mod common;`): the devnet kept alive for a whole binary
//! ([`devnet`]), fresh accounts in a temporary directory ([`Accounts`]) and
//! polling with a deadline ([`wait_until`]) instead of fixed sleeps.
#![allow(
    dead_code,
    reason = "each test binary uses a different subset of these helpers"
)]

use std::future::Future;
use std::path::PathBuf;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use umbra_client::client::Client;
use umbra_client::profile::Profile;
use umbra_proto::mnemonic::AccountSeed;
use umbra_proto::network::NetworkConfig;
use umbra_proto::path::PathConfig;

/// The network of this test binary's `n`-node in-process devnet, started on
/// the first call (in `CARGO_TARGET_TMPDIR/name`, wiped first) on its own
/// runtime in a background thread and kept running until the process exits.
/// Later calls return the same network whatever their arguments.
pub fn devnet(name: &str, n: usize) -> &'static NetworkConfig {
    static NET: OnceLock<NetworkConfig> = OnceLock::new();
    NET.get_or_init(|| {
        let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(name);
        let _ = std::fs::remove_dir_all(&dir);
        umbra_devnet::shared::background(n, dir)
            .unwrap_or_else(|e| panic!("devnet failed to start: {e}"))
    })
}

/// Fresh accounts of one test on `network`: their profile directories live
/// as long as this.
pub struct Accounts {
    pub dir: tempfile::TempDir,
    network: NetworkConfig,
}

impl Accounts {
    pub fn new(network: &NetworkConfig) -> Self {
        Accounts {
            dir: tempfile::tempdir().unwrap(),
            network: network.clone(),
        }
    }

    /// A client for `seed` in profile directory `name`.
    pub fn client_for(&self, name: &str, seed: &AccountSeed) -> Client {
        let profile = Profile::create(&self.dir.path().join(name), seed, None).unwrap();
        Client::open(
            profile,
            self.network.clone(),
            PathConfig::default().with_min_usable_nodes(4),
        )
        .unwrap()
    }

    /// A client of a new random account.
    pub fn client(&self, name: &str) -> Client {
        let seed = AccountSeed::new_umbra(&umbra_crypto::random_bytes::<32>());
        self.client_for(name, &seed)
    }
}

/// Polls `f` every 200 ms until it yields `Some`, failing the test after `timeout`.
pub async fn wait_until<T, F, Fut>(what: &str, timeout: Duration, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {timeout:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
