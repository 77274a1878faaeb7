//! The node's view of the network registry (`swarms.md` §3, §5): the epoch
//! in force, the epochs it superseded in the last hour (so a departing node
//! can finish its hand-over), and what follows from them — this node's swarm,
//! its members and the owner of any account.
//!
//! Adopting a new epoch returns a [`Transition`] that the replication task
//! turns into hand-over pushes (§7).
//!
//! It also owns the registry publication URLs (issue 11): their format
//! ([`PublicationUrl`]) and the task that polls them ([`poll_publications`]).
//! A publication URL is `https://IPv4:PORT/PATH#KEY`, where `KEY` (64 hex) is
//! the registry instance's Ed25519 key that pins its TLS certificate; the
//! fragment is never sent. The document fetched there is verified like any
//! other (§3.2: threshold signatures against the pinned key set, chain,
//! epoch), so the URL only has to reach an instance, not be trusted.
//!
//! Self-registration (issue 11): [`submit_record`] sends a node's
//! self-signed record to an instance (`POST /registry/v1/node`, §8.2
//! headers signed by the record's own key), and [`submit_own_record`] is the
//! task by which a node keeps its record at every instance of its network.

use std::sync::Arc;

use umbra_crypto::Ed25519Public;
use umbra_proto::identity::AccountId;
use umbra_proto::rpc::node_req::SUPERSEDED_GRACE_MS;
use umbra_proto::swarm::{
    NodeRecord, ReaderRole, RegistryConfig, RegistryDocument, RegistryError, SwarmId,
};

/// A parsed registry publication URL: where to fetch the document and the
/// key pinning the instance's TLS certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublicationUrl {
    /// The instance's address.
    pub addr: std::net::SocketAddr,
    /// The instance's Ed25519 key (its TLS certificate key).
    pub key: Ed25519Public,
    /// The request path (`/registry/v1/current`).
    pub path: String,
}

impl PublicationUrl {
    /// Parses `https://IPv4:PORT/PATH#KEY`; `None` when it is not of that form.
    pub fn parse(url: &str) -> Option<Self> {
        let rest = url.strip_prefix("https://")?;
        let (rest, key_hex) = rest.split_once('#')?;
        let mut key = [0u8; 32];
        hex::decode_to_slice(key_hex, &mut key).ok()?;
        let (host, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, "/"),
        };
        let addr: std::net::SocketAddrV4 = host.parse().ok()?;
        Some(PublicationUrl {
            addr: addr.into(),
            key: Ed25519Public::from_bytes(key),
            path: path.to_string(),
        })
    }

    /// The URL text for an instance at `addr` with key `key` serving `path`.
    pub fn format(addr: std::net::SocketAddr, key: &Ed25519Public, path: &str) -> String {
        format!("https://{addr}{path}#{}", hex::encode(key.as_bytes()))
    }
}

/// Polls the registry publication URLs every `every` (`swarms.md` §3.3:
/// 60 s) and offers each document fetched to the node. Unparsable URLs are
/// reported once and skipped; refused documents are logged.
pub async fn poll_publications(
    node: crate::state::Node,
    urls: Vec<String>,
    every: std::time::Duration,
) {
    let parsed: Vec<PublicationUrl> = urls
        .iter()
        .filter_map(|u| {
            let p = PublicationUrl::parse(u);
            if p.is_none() {
                tracing::warn!(url = %u, "registry publication URL is not https://IPv4:PORT/PATH#KEY");
            }
            p
        })
        .collect();
    if parsed.is_empty() {
        return;
    }
    loop {
        for u in &parsed {
            let addr = umbra_transport::NodeAddr::new(u.addr, u.key);
            let req = match umbra_transport::Request::get(&u.path) {
                Ok(r) => r.timeout(std::time::Duration::from_secs(10)),
                Err(_) => continue,
            };
            match node.peers.send(&addr, req).await {
                Ok(r) if r.status == 200 => match node.offer_registry(&r.body) {
                    Ok(_) => {}
                    Err(e) => {
                        tracing::warn!(error = %e, instance = %u.addr, "published registry refused")
                    }
                },
                Ok(r) => {
                    tracing::debug!(status = r.status.as_u16(), instance = %u.addr, "no published registry")
                }
                Err(e) => {
                    tracing::debug!(error = %e, instance = %u.addr, "registry instance unreachable")
                }
            }
        }
        tokio::time::sleep(every).await;
    }
}

/// The record submission path of a registry instance.
pub const PATH_SUBMIT: &str = "/registry/v1/node";

/// Why a submission failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SubmitError {
    /// The instance could not be reached.
    #[error(transparent)]
    Transport(#[from] umbra_transport::TransportError),
    /// The instance refused the record.
    #[error("the registry instance answered {status}: {text}")]
    Refused {
        /// HTTP status.
        status: u16,
        /// Its text.
        text: String,
    },
}

/// Submits `record` to the instance at `url`, signed by the node's key
/// (`swarms.md` §8.2 headers over `POST /registry/v1/node`). Returns the
/// instance's answer text.
pub async fn submit_record(
    client: &umbra_transport::NodeClient,
    url: &PublicationUrl,
    node_key: &umbra_crypto::Ed25519Keypair,
    record: &NodeRecord,
    now_ms: u64,
) -> Result<String, SubmitError> {
    use umbra_proto::rpc::node_req::NodeRequestAuth;
    let body = record.encode();
    let auth = NodeRequestAuth::sign(node_key, "POST", PATH_SUBMIT, 0, now_ms, &body);
    let mut req = umbra_transport::Request::post(PATH_SUBMIT, bytes::Bytes::from(body))?
        .timeout(std::time::Duration::from_secs(10));
    for (name, value) in auth.headers() {
        if let (Ok(n), Ok(v)) = (
            http::HeaderName::try_from(name),
            http::HeaderValue::try_from(value),
        ) {
            req = req.header(n, v);
        }
    }
    let resp = client
        .send(&umbra_transport::NodeAddr::new(url.addr, url.key), req)
        .await?;
    let text = String::from_utf8_lossy(&resp.body).into_owned();
    if resp.status == 200 {
        Ok(text)
    } else {
        Err(SubmitError::Refused {
            status: resp.status.as_u16(),
            text,
        })
    }
}

/// First retry delay after a failed submission; it doubles up to the
/// refresh period (at most [`SUBMIT_BACKOFF_MAX`]).
pub const SUBMIT_BACKOFF_MIN: std::time::Duration = std::time::Duration::from_millis(500);
/// Longest retry delay after failed submissions.
pub const SUBMIT_BACKOFF_MAX: std::time::Duration = std::time::Duration::from_secs(60);

/// The node's self-registration task: signs its record (`ipv4`, the bound
/// HTTPS `port`, this build's version) and submits it to every registry
/// instance named by `urls`, at once, then again every `refresh`. A failed
/// submission is retried after a delay doubling from
/// [`SUBMIT_BACKOFF_MIN`] (capped by `refresh` and [`SUBMIT_BACKOFF_MAX`]).
/// The address is fixed for the life of the process; a node restarted with
/// a new address or port submits its new record at start. Does nothing when
/// `urls` is empty; logs a warning and stops when no IPv4 is announced.
pub async fn submit_own_record(
    node: crate::state::Node,
    urls: Vec<String>,
    ipv4: Option<std::net::Ipv4Addr>,
    port: u16,
    refresh: std::time::Duration,
) {
    let parsed: Vec<PublicationUrl> = urls
        .iter()
        .filter_map(|u| PublicationUrl::parse(u))
        .collect();
    if parsed.is_empty() {
        return;
    }
    let Some(ip) = ipv4 else {
        tracing::warn!(
            "not submitting a registry record: set public_ip (the listen address is unspecified)"
        );
        return;
    };
    let v = crate::rpc::VERSION;
    let record = match NodeRecord::sign(
        &node.keys,
        ip,
        port,
        [v[0].into(), v[1].into(), v[2].into()],
    ) {
        Ok(r) => r,
        Err(e) => {
            tracing::warn!(error = %e, "cannot sign this node's registry record");
            return;
        }
    };
    let backoff_max = refresh.min(SUBMIT_BACKOFF_MAX).max(SUBMIT_BACKOFF_MIN);
    futures::future::join_all(parsed.into_iter().map(|u| {
        let node = node.clone();
        let record = record.clone();
        async move {
            let mut delay = SUBMIT_BACKOFF_MIN;
            let mut failures = 0u32;
            loop {
                match submit_record(&node.peers, &u, &node.keys, &record, node.now_ms()).await {
                    Ok(answer) => {
                        if failures > 0 {
                            tracing::info!(instance = %u.addr, failures, "registry record submitted after retries");
                        }
                        tracing::debug!(instance = %u.addr, %ip, port, answer = %answer, "registry record submitted");
                        failures = 0;
                        delay = SUBMIT_BACKOFF_MIN;
                        tokio::time::sleep(refresh).await;
                    }
                    Err(e) => {
                        failures += 1;
                        if failures == 1 || failures.is_power_of_two() {
                            tracing::warn!(instance = %u.addr, error = %e, failures, "registry record submission failed; retrying");
                        } else {
                            tracing::debug!(instance = %u.addr, error = %e, failures, "registry record submission failed");
                        }
                        tokio::time::sleep(delay).await;
                        delay = (delay * 2).min(backoff_max);
                    }
                }
            }
        }
    }))
    .await;
}

/// An epoch change: what the node held before and what it holds now.
#[derive(Debug, Clone)]
pub struct Transition {
    /// The document held before, if any.
    pub old: Option<Arc<RegistryDocument>>,
    /// The document now in force.
    pub new: Arc<RegistryDocument>,
}

/// The registry as one node sees it.
#[derive(Debug)]
pub struct RegistryState {
    config: RegistryConfig,
    me: Ed25519Public,
    current: Option<Arc<RegistryDocument>>,
    current_bytes: Option<Arc<Vec<u8>>>,
    superseded: Vec<(Arc<RegistryDocument>, u64)>,
}

impl RegistryState {
    /// An empty view for node `me` checking documents against `config`.
    pub fn new(config: RegistryConfig, me: Ed25519Public) -> Self {
        RegistryState {
            config,
            me,
            current: None,
            current_bytes: None,
            superseded: Vec::new(),
        }
    }

    /// Verifies `bytes` (§3.2) and adopts the document if its epoch is newer.
    /// Returns `Ok(None)` when the document is not newer than the one held.
    pub fn offer(
        &mut self,
        bytes: &[u8],
        now_ms: u64,
    ) -> Result<Option<Transition>, RegistryError> {
        if let Some(cur) = &self.current
            && self
                .current_bytes
                .as_deref()
                .is_some_and(|b| b.as_slice() == bytes)
        {
            let _ = cur;
            return Ok(None);
        }
        let held = self.current.as_deref();
        let doc = match RegistryDocument::verify(bytes, &self.config, held, ReaderRole::Node) {
            Ok(doc) => doc,
            Err(RegistryError::StaleEpoch { .. }) => return Ok(None),
            Err(e) => return Err(e),
        };
        let new = Arc::new(doc);
        let old = self.current.replace(new.clone());
        self.current_bytes = Some(Arc::new(bytes.to_vec()));
        if let Some(o) = &old {
            self.superseded.push((o.clone(), now_ms));
        }
        self.superseded
            .retain(|(_, at)| now_ms.saturating_sub(*at) < SUPERSEDED_GRACE_MS);
        Ok(Some(Transition { old, new }))
    }

    /// The document in force.
    pub fn current(&self) -> Option<&Arc<RegistryDocument>> {
        self.current.as_ref()
    }

    /// The encoded document in force (for `get_registry`).
    pub fn current_bytes(&self) -> Option<&Arc<Vec<u8>>> {
        self.current_bytes.as_ref()
    }

    /// The epoch in force (0 when none).
    pub fn epoch(&self) -> u64 {
        self.current.as_ref().map_or(0, |d| d.epoch())
    }

    /// This node's swarm under the epoch in force (`None` when not listed).
    pub fn own_swarm(&self) -> Option<SwarmId> {
        self.current.as_ref()?.swarm_of_node(&self.me)
    }

    /// True when the node holds a registry that lists it: it serves clients.
    pub fn is_ready(&self) -> bool {
        self.own_swarm().is_some()
    }

    /// True when `account` belongs to this node's swarm.
    pub fn owns(&self, account: &AccountId) -> bool {
        match (&self.current, self.own_swarm()) {
            (Some(doc), Some(mine)) => doc.swarm_of(account) == Some(mine),
            _ => false,
        }
    }

    /// The other members of this node's swarm.
    pub fn peers(&self) -> Vec<NodeRecord> {
        match (&self.current, self.own_swarm()) {
            (Some(doc), Some(mine)) => doc
                .members(mine)
                .into_iter()
                .filter(|r| r.ed25519 != self.me)
                .cloned()
                .collect(),
            _ => Vec::new(),
        }
    }

    /// The record of any node listed now or in an epoch superseded less
    /// than an hour ago (node-request authentication, `swarms.md` §8.3).
    pub fn known_node(&self, key: &Ed25519Public) -> Option<NodeRecord> {
        if let Some(r) = self.current.as_ref().and_then(|d| d.node(key)) {
            return Some(r.clone());
        }
        self.superseded
            .iter()
            .rev()
            .find_map(|(d, _)| d.node(key).cloned())
    }

    /// True when `node` is in `account`'s swarm under the epoch in force or
    /// one superseded less than an hour ago (whose members may still hand
    /// the account's messages and deletions over).
    pub fn held_account(&self, node: &Ed25519Public, account: &AccountId) -> bool {
        self.current
            .iter()
            .chain(self.superseded.iter().map(|(d, _)| d))
            .any(|d| match (d.swarm_of(account), d.swarm_of_node(node)) {
                (Some(a), Some(n)) => a == n,
                _ => false,
            })
    }

    /// The node's own Ed25519 key.
    pub fn me(&self) -> Ed25519Public {
        self.me
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;
    use umbra_crypto::Ed25519Keypair;
    use umbra_proto::swarm::SwarmParams;

    fn params() -> SwarmParams {
        SwarmParams {
            min_swarm_size: 2,
            excess_base: 2,
            ideal_swarm_margin: 1,
            new_swarm_size: 2,
        }
    }

    fn doc(
        registry: &Ed25519Keypair,
        n: u8,
        prev: Option<&RegistryDocument>,
        at: u64,
    ) -> RegistryDocument {
        let nodes = (1..=n).map(|i| {
            NodeRecord::sign(
                &Ed25519Keypair::from_seed(&[i; 32]),
                Ipv4Addr::LOCALHOST,
                20000 + u16::from(i),
                [0, 1, 0],
            )
            .unwrap()
        });
        let b = match prev {
            Some(p) => p.next_builder(at),
            None => RegistryDocument::builder(1, at),
        };
        b.params(params())
            .nodes(nodes)
            .build()
            .unwrap()
            .signed(registry)
    }

    #[test]
    fn adopts_newer_epochs_only_and_keeps_superseded_for_an_hour() {
        let reg = Ed25519Keypair::from_seed(&[99; 32]);
        let cfg = RegistryConfig::single_key(reg.public(), params()).unwrap();
        let me = Ed25519Keypair::from_seed(&[1; 32]).public();
        let mut st = RegistryState::new(cfg, me);
        assert!(!st.is_ready());
        let d1 = doc(&reg, 4, None, 1_000);
        let t = st.offer(&d1.encode(), 1_000).unwrap().unwrap();
        assert!(t.old.is_none());
        assert!(st.is_ready());
        assert_eq!(st.epoch(), 1);
        assert!(
            st.offer(&d1.encode(), 2_000).unwrap().is_none(),
            "same epoch again is not adopted"
        );
        let d2 = doc(&reg, 2, Some(&d1), 5_000);
        let t = st.offer(&d2.encode(), 5_000).unwrap().unwrap();
        assert_eq!(t.old.unwrap().epoch(), 1);
        let gone = Ed25519Keypair::from_seed(&[4; 32]).public();
        assert!(
            st.known_node(&gone).is_some(),
            "node of the superseded epoch is still known"
        );
        let d3 = doc(&reg, 2, Some(&d2), 5_000 + SUPERSEDED_GRACE_MS + 1);
        st.offer(&d3.encode(), 5_000 + SUPERSEDED_GRACE_MS + 1)
            .unwrap()
            .unwrap();
        assert!(
            st.known_node(&gone).is_none(),
            "an hour later it is forgotten"
        );
    }

    #[test]
    fn publication_urls_round_trip_and_bad_ones_are_refused() {
        let key = Ed25519Keypair::from_seed(&[7; 32]).public();
        let addr: std::net::SocketAddr = "127.0.0.1:4433".parse().unwrap();
        let text = PublicationUrl::format(addr, &key, "/registry/v1/current");
        let u = PublicationUrl::parse(&text).unwrap();
        assert_eq!(
            (u.addr, u.key, u.path.as_str()),
            (addr, key, "/registry/v1/current")
        );
        let hex_key = hex::encode(key.as_bytes());
        for bad in [
            format!("http://127.0.0.1:4433/x#{hex_key}"),
            "https://127.0.0.1:4433/x".to_string(),
            "https://127.0.0.1:4433/x#abcd".to_string(),
            format!("https://example.org:4433/x#{hex_key}"),
            format!("https://127.0.0.1/x#{hex_key}"),
        ] {
            assert!(PublicationUrl::parse(&bad).is_none(), "{bad}");
        }
        let bare = PublicationUrl::parse(&format!("https://127.0.0.1:1#{hex_key}")).unwrap();
        assert_eq!(bare.path, "/");
    }

    #[test]
    fn refuses_unsigned_documents() {
        let reg = Ed25519Keypair::from_seed(&[99; 32]);
        let other = Ed25519Keypair::from_seed(&[98; 32]);
        let cfg = RegistryConfig::single_key(reg.public(), params()).unwrap();
        let mut st = RegistryState::new(cfg, Ed25519Keypair::from_seed(&[1; 32]).public());
        assert!(st.offer(&doc(&other, 3, None, 1).encode(), 1).is_err());
        assert!(!st.is_ready());
    }
}
