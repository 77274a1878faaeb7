//! A devnet whose epochs come from registry instances (issue 11,
//! `umbra devnet up --registries 3 --threshold 2`) instead of the built-in
//! signer.
//!
//! [`up_with_registries`] creates one key and data directory per instance
//! (`DIR/registryK/`), binds their listeners, and starts the devnet with a
//! `network.json` that pins the instance keys, the threshold and their
//! publication URLs. Epoch 1 is signed by every instance key at this key
//! ceremony (the devnet holds all of them); the instances then run in this
//! process, each node submits its own self-signed record to each of them
//! (`umbrad` does so because the publication URLs are in its network; the
//! devnet only waits for the records to arrive), and every later epoch is
//! agreed and threshold-signed by the instances: a node that stops drops out
//! after the failure limit; `add-node` starts a node that submits its own
//! record; `remove-node` is the operator removal at every instance.
//! Nodes pick epochs up by polling the publication URLs.

use std::collections::BTreeSet;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use umbra_crypto::Ed25519Keypair;
use umbra_node::registry::PublicationUrl;
use umbra_proto::network::NetworkConfig;
use umbra_proto::rpc::encoding::Ed25519Hex;
use umbra_proto::swarm::{ReaderRole, RegistryDocument};
use umbra_registry::instance::PATH_CURRENT;
use umbra_registry::store::CandidateStore;
use umbra_registry::{InstanceConfig, RegistryHandle};
use umbra_transport::{NodeAddr, Request, SystemClock};

use crate::{Devnet, DevnetError, DevnetOptions, Runner};

/// How many instances, their threshold, and the devnet's time scale.
#[derive(Debug, Clone, Copy)]
pub struct RegistriesOptions {
    /// Number of registry instances.
    pub count: usize,
    /// Signatures needed per epoch.
    pub threshold: usize,
    /// Round and health-check period in ms; the failure limit is 3 of these
    /// and the epoch interval 5 ([`InstanceConfig::fast`]).
    pub scale_ms: u64,
}

impl Default for RegistriesOptions {
    fn default() -> Self {
        RegistriesOptions {
            count: 3,
            threshold: 2,
            scale_ms: 1_000,
        }
    }
}

/// The instances prepared before the devnet starts: keys and bound listeners.
pub struct Plan {
    keys: Vec<Ed25519Keypair>,
    listeners: Vec<std::net::TcpListener>,
    urls: Vec<String>,
    threshold: usize,
}

fn reg_err(e: impl std::fmt::Display) -> DevnetError {
    DevnetError::Registry(e.to_string())
}

fn instance_dir(dir: &Path, k: usize) -> std::path::PathBuf {
    dir.join(format!("registry{k}"))
}

impl Plan {
    fn prepare(dir: &Path, o: &RegistriesOptions) -> Result<Plan, DevnetError> {
        if o.count == 0 || o.threshold * 2 <= o.count || o.threshold > o.count {
            return Err(DevnetError::Invalid(format!(
                "threshold {} of {} registry instances (it must be a majority, at most the count)",
                o.threshold, o.count
            )));
        }
        let mut plan = Plan {
            keys: Vec::new(),
            listeners: Vec::new(),
            urls: Vec::new(),
            threshold: o.threshold,
        };
        for k in 0..o.count {
            let d = instance_dir(dir, k);
            std::fs::create_dir_all(&d).map_err(reg_err)?;
            let key = umbra_node::keyfile::load_or_create(
                &d.join("registry.key"),
                umbra_crypto::random_bytes::<32>,
            )
            .map_err(reg_err)?;
            let l = std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).map_err(reg_err)?;
            let addr = l.local_addr().map_err(reg_err)?;
            plan.urls
                .push(PublicationUrl::format(addr, &key.public(), PATH_CURRENT));
            plan.keys.push(key);
            plan.listeners.push(l);
        }
        Ok(plan)
    }

    /// Hook of [`Devnet::up`]: pins the instances' keys, threshold and URLs.
    pub(crate) fn apply(plan: Option<&Plan>, mut network: NetworkConfig) -> NetworkConfig {
        if let Some(p) = plan {
            network.registry_keys = p.keys.iter().map(|k| Ed25519Hex(k.public())).collect();
            network.threshold = p.threshold;
            network.registry_urls = p.urls.clone();
        }
        network
    }

    /// Hook of [`Devnet::up`]: epoch 1 signed by every instance key.
    pub(crate) fn sign_genesis(plan: Option<&Plan>, mut doc: RegistryDocument) -> RegistryDocument {
        if let Some(p) = plan {
            for k in &p.keys {
                doc.sign(k);
            }
        }
        doc
    }
}

/// The running instances of a devnet.
pub struct Registries {
    /// One handle per instance (`None` once stopped).
    pub handles: Vec<Option<RegistryHandle>>,
}

impl Registries {
    /// Stops instance `k`.
    pub async fn stop(&mut self, k: usize) {
        if let Some(h) = self.handles.get_mut(k).and_then(Option::take) {
            h.shutdown().await;
        }
    }

    /// Stops every instance.
    pub async fn shutdown(mut self) {
        for k in 0..self.handles.len() {
            self.stop(k).await;
        }
    }
}

/// True when the network's epochs come from registry instances.
pub fn enabled(network: &NetworkConfig) -> bool {
    !network.registry_urls.is_empty()
}

/// Starts a devnet whose epochs come from `r.count` registry instances.
pub async fn up_with_registries(
    opts: DevnetOptions,
    r: RegistriesOptions,
) -> Result<(Devnet, Registries), DevnetError> {
    let mut plan = Plan::prepare(&opts.dir, &r)?;
    let listeners = std::mem::take(&mut plan.listeners);
    let net = Devnet::up_inner(opts, Some(&plan)).await?;
    let mut handles = Vec::new();
    for (k, (key, l)) in plan.keys.into_iter().zip(listeners).enumerate() {
        let d = instance_dir(&net.dir, k);
        CandidateStore::open(&d)
            .and_then(|s| s.write_doc("current", &net.doc.encode()))
            .map_err(reg_err)?;
        l.set_nonblocking(true).map_err(reg_err)?;
        let listener = tokio::net::TcpListener::from_std(l).map_err(reg_err)?;
        let mut cfg =
            InstanceConfig::fast(d, SocketAddr::from((Ipv4Addr::LOCALHOST, 0)), r.scale_ms);
        cfg.request_timeout_ms = 2_000;
        let h = umbra_registry::start(
            cfg,
            &net.network,
            Some(key),
            listener,
            Arc::new(SystemClock),
        )
        .await
        .map_err(reg_err)?;
        handles.push(Some(h));
    }
    submissions_done(&net).await?;
    Ok((net, Registries { handles }))
}

fn urls(net: &Devnet) -> Vec<PublicationUrl> {
    net.network
        .registry_urls
        .iter()
        .filter_map(|u| PublicationUrl::parse(u))
        .collect()
}

/// How long [`submissions_done`] waits for the nodes' own submissions.
const SUBMISSION_TIMEOUT: Duration = Duration::from_secs(60);

/// The nodes submit their own records (`umbrad` does it at start, see
/// `umbra_node::registry::submit_own_record`); this waits until every listed
/// node's record is a candidate at `threshold` instances or more (read from
/// their data directories). Unlisted nodes are removed by the operator at
/// every instance.
async fn submissions_done(net: &Devnet) -> Result<(), DevnetError> {
    let n_instances = urls(net).len();
    for i in 0..net.keys.len() {
        if !net.listed[i] {
            for k in 0..n_instances {
                CandidateStore::open(&instance_dir(&net.dir, k))
                    .and_then(|s| s.remove(&net.keys[i].public()))
                    .map_err(reg_err)?;
            }
        }
    }
    let deadline = tokio::time::Instant::now() + SUBMISSION_TIMEOUT;
    loop {
        let mut missing = None;
        for i in (0..net.keys.len()).filter(|&i| net.listed[i]) {
            let key = net.keys[i].public();
            let holding = (0..n_instances)
                .filter(|&k| {
                    CandidateStore::open(&instance_dir(&net.dir, k))
                        .is_ok_and(|s| s.records().contains_key(&key))
                })
                .count();
            if holding < net.network.threshold {
                missing = Some((i, holding));
                break;
            }
        }
        let Some((i, holding)) = missing else {
            return Ok(());
        };
        if tokio::time::Instant::now() > deadline {
            return Err(DevnetError::Registry(format!(
                "node {i}'s own record reached {holding} registry instances in {} s, {} needed",
                SUBMISSION_TIMEOUT.as_secs(),
                net.network.threshold
            )));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The newest valid document any instance publishes.
pub async fn fetch_published(net: &Devnet) -> Option<RegistryDocument> {
    let cfg = net.network.registry_config().ok()?;
    let mut best: Option<RegistryDocument> = None;
    for u in urls(net) {
        let Ok(req) = Request::get(&u.path) else {
            continue;
        };
        let Ok(resp) = net
            .client
            .send(
                &NodeAddr::new(u.addr, u.key),
                req.timeout(Duration::from_secs(2)),
            )
            .await
        else {
            continue;
        };
        if resp.status != 200 {
            continue;
        }
        if let Ok(d) = RegistryDocument::verify(&resp.body, &cfg, None, ReaderRole::Client)
            && best.as_ref().is_none_or(|b| d.epoch() > b.epoch())
        {
            best = Some(d);
        }
    }
    best
}

/// Waits (up to `timeout`) until the instances publish an epoch for which
/// `want` holds, then makes it the devnet's document: the registry file,
/// `nodes.json`, `devnet.json` and in-process nodes are updated.
pub async fn wait_for_epoch(
    net: &mut Devnet,
    timeout: Duration,
    want: impl Fn(&RegistryDocument) -> bool,
) -> Result<RegistryDocument, DevnetError> {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if let Some(d) = fetch_published(net).await
            && want(&d)
        {
            if d.epoch() > net.doc.epoch() {
                net.doc = d.clone();
                net.write_registry()?;
                for r in &net.runners {
                    if let Runner::InProcess(h) = r {
                        let _ = h.node.offer_registry(&net.doc.encode());
                    }
                }
            }
            for i in 0..net.keys.len() {
                net.listed[i] = d.node(&net.keys[i].public()).is_some();
            }
            net.write_state()?;
            return Ok(d);
        }
        if tokio::time::Instant::now() > deadline {
            return Err(DevnetError::Registry(format!(
                "the registry instances published no matching epoch in {} s",
                timeout.as_secs()
            )));
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The registry-mode `publish` of [`Devnet`]: the nodes' own submissions
/// and operator removals, then the epoch whose node set is exactly the
/// listed nodes.
pub(crate) async fn publish(net: &mut Devnet) -> Result<(), DevnetError> {
    submissions_done(net).await?;
    let want: BTreeSet<_> = (0..net.keys.len())
        .filter(|&i| net.listed[i])
        .map(|i| net.keys[i].public())
        .collect();
    wait_for_epoch(net, Duration::from_secs(120), move |d| {
        d.nodes().iter().map(|r| r.ed25519).collect::<BTreeSet<_>>() == want
    })
    .await?;
    Ok(())
}

/// Stops node `i` and waits for the instances to drop it from an epoch
/// (after their failure limit). Returns the old and the new document.
pub async fn stop_node_and_wait(
    net: &mut Devnet,
    i: usize,
    timeout: Duration,
) -> Result<(RegistryDocument, RegistryDocument), DevnetError> {
    if i >= net.keys.len() {
        return Err(DevnetError::Invalid(format!("there is no node {i}")));
    }
    let before = net.doc.clone();
    net.stop_node(i).await;
    net.write_state()?;
    let key = net.keys[i].public();
    let after = wait_for_epoch(net, timeout, |d| d.node(&key).is_none()).await?;
    Ok((before, after))
}
