//! Prometheus metrics, served on the admin port at `/metrics`: requests by
//! method and status, stored messages, database size, replication backlog,
//! ignored tombstones, onion hops relayed and registry fetches from peers.
//! Labels never carry account IDs or keys.

use std::sync::atomic::AtomicU64;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

/// Labels of the request counter.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    /// RPC method name (or endpoint).
    pub method: String,
    /// HTTP status returned.
    pub status: u16,
}

/// The node's metrics.
pub struct Metrics {
    registry: Registry,
    /// Requests by method and status.
    pub requests: Family<RequestLabels, Counter>,
    /// Messages in the database (sampled).
    pub stored_messages: Gauge,
    /// Database file size in bytes (sampled).
    pub db_size_bytes: Gauge,
    /// Peers with a pending catch-up mark (replication lag).
    pub catchup_pending: Gauge,
    /// Messages pushed to peers (hand-over and catch-up).
    pub pushed_messages: Counter,
    /// Messages received by push.
    pub received_pushes: Counter,
    /// Tombstones from peers not applied: the sender does not hold the
    /// account, the proof is missing or invalid, or it does not cover the
    /// message (`swarms.md` §6).
    pub ignored_tombstones: Counter,
    /// Onion layers relayed.
    pub onion_hops: Counter,
    /// The registry epoch in force.
    pub epoch: Gauge,
    /// Expired messages swept.
    pub swept: Counter<u64, AtomicU64>,
    /// `get_registry` fetches from peers (registry catch-up, §8.3 rule 1).
    pub registry_fetches: Counter,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("umbrad");
        let m = Metrics {
            requests: Family::default(),
            stored_messages: Gauge::default(),
            db_size_bytes: Gauge::default(),
            catchup_pending: Gauge::default(),
            pushed_messages: Counter::default(),
            received_pushes: Counter::default(),
            ignored_tombstones: Counter::default(),
            onion_hops: Counter::default(),
            epoch: Gauge::default(),
            swept: Counter::default(),
            registry_fetches: Counter::default(),
            registry: Registry::default(),
        };
        registry.register(
            "requests",
            "Requests by method and status",
            m.requests.clone(),
        );
        registry.register(
            "stored_messages",
            "Messages held",
            m.stored_messages.clone(),
        );
        registry.register("db_size_bytes", "Database size", m.db_size_bytes.clone());
        registry.register(
            "catchup_pending_peers",
            "Peers awaiting catch-up pushes",
            m.catchup_pending.clone(),
        );
        registry.register(
            "pushed_messages",
            "Messages pushed to peers",
            m.pushed_messages.clone(),
        );
        registry.register(
            "received_push_messages",
            "Messages received by push",
            m.received_pushes.clone(),
        );
        registry.register(
            "ignored_tombstones",
            "Tombstones from peers ignored (sender not holding the account, no valid proof, not covered)",
            m.ignored_tombstones.clone(),
        );
        registry.register(
            "onion_hops_relayed",
            "Onion layers relayed",
            m.onion_hops.clone(),
        );
        registry.register("registry_epoch", "Registry epoch in force", m.epoch.clone());
        registry.register("expired_swept", "Expired messages deleted", m.swept.clone());
        registry.register(
            "registry_fetches",
            "Registry fetches from peers claiming a newer epoch",
            m.registry_fetches.clone(),
        );
        Metrics { registry, ..m }
    }
}

impl Metrics {
    /// Counts one request.
    pub fn request(&self, method: &str, status: u16) {
        self.requests
            .get_or_create(&RequestLabels {
                method: method.to_string(),
                status,
            })
            .inc();
    }

    /// The text exposition format.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        // Encoding into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}
