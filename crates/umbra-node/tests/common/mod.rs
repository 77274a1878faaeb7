//! A network of real `umbrad` nodes in this process, on 127.0.0.1 with real
//! TLS, SQLite and a signed registry, plus a spec-level client that writes
//! storage-RPC JSON by hand (as a non-Umbra Session client would).
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Value, json};
use umbra_crypto::Ed25519Keypair;
use umbra_node::{NodeConfig, NodeHandle};
use umbra_proto::identity::{AccountId, AccountKeys};
use umbra_proto::network::{NetworkConfig, SwarmParamsJson};
use umbra_proto::rpc::encoding::Ed25519Hex;
use umbra_proto::swarm::{NodeRecord, RegistryDocument, SwarmParams};
use umbra_transport::{NodeAddr, NodeClient, SystemClock};

/// Small swarms so that a handful of nodes forms several of them.
pub const PARAMS: SwarmParams = SwarmParams {
    min_swarm_size: 2,
    excess_base: 2,
    ideal_swarm_margin: 1,
    new_swarm_size: 2,
};

pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

pub struct TestNet {
    pub dir: tempfile::TempDir,
    pub registry_key: Ed25519Keypair,
    pub network: NetworkConfig,
    pub nodes: Vec<Option<NodeHandle>>,
    pub addrs: Vec<SocketAddr>,
    pub keys: Vec<Ed25519Keypair>,
    pub doc: Option<RegistryDocument>,
    pub client: NodeClient,
    /// Applied to every node's configuration (start and restart).
    pub tweak: fn(&mut NodeConfig),
}

fn node_seed(i: usize) -> [u8; 32] {
    let mut s = [0x42u8; 32];
    s[0] = i as u8;
    s[1] = (i >> 8) as u8;
    s
}

impl TestNet {
    /// Starts `n` nodes and publishes epoch 1 listing all of them.
    pub async fn start(n: usize) -> TestNet {
        Self::start_with(n, |_| {}).await
    }

    /// Like [`TestNet::start`], with `tweak` applied to every node's config.
    pub async fn start_with(n: usize, tweak: fn(&mut NodeConfig)) -> TestNet {
        let registry_key = Ed25519Keypair::from_seed(&[0xEE; 32]);
        let network = NetworkConfig {
            name: "test".into(),
            registry_keys: vec![Ed25519Hex(registry_key.public())],
            threshold: 1,
            swarm_params: Some(SwarmParamsJson::from(PARAMS)),
            registry_urls: vec![],
            seed_nodes: vec![],
            file_server: None,
        };
        let mut net = TestNet {
            dir: tempfile::tempdir().unwrap(),
            registry_key,
            network,
            nodes: Vec::new(),
            addrs: Vec::new(),
            keys: Vec::new(),
            doc: None,
            client: NodeClient::default(),
            tweak,
        };
        for _ in 0..n {
            net.add_node().await;
        }
        net.publish(&(0..n).collect::<Vec<_>>()).await;
        net
    }

    pub fn data_dir(&self, i: usize) -> PathBuf {
        self.dir.path().join(format!("node{i}"))
    }

    pub fn config(&self, i: usize, listen: SocketAddr) -> NodeConfig {
        let mut cfg = NodeConfig {
            data_dir: self.data_dir(i),
            listen,
            sweep_interval_ms: 200,
            catchup_interval_ms: 300,
            registry_poll_ms: 100,
            ..NodeConfig::default()
        };
        (self.tweak)(&mut cfg);
        cfg
    }

    /// Starts one more node (not yet in the registry); returns its index.
    pub async fn add_node(&mut self) -> usize {
        let i = self.nodes.len();
        std::fs::create_dir_all(self.data_dir(i)).unwrap();
        let kp = umbra_node::keyfile::load_or_create(&self.data_dir(i).join("node.key"), || {
            node_seed(i)
        })
        .unwrap();
        let cfg = self.config(i, "127.0.0.1:0".parse().unwrap());
        let h = umbra_node::start(cfg, &self.network, Arc::new(SystemClock))
            .await
            .unwrap();
        self.addrs.push(h.addr);
        self.keys.push(kp);
        self.nodes.push(Some(h));
        i
    }

    /// Restarts a stopped node on its old address.
    pub async fn restart(&mut self, i: usize) {
        assert!(self.nodes[i].is_none(), "node {i} is running");
        let cfg = self.config(i, self.addrs[i]);
        let mut last = None;
        for _ in 0..50 {
            match umbra_node::start(cfg.clone(), &self.network, Arc::new(SystemClock)).await {
                Ok(h) => {
                    self.nodes[i] = Some(h);
                    return;
                }
                Err(e) => {
                    last = Some(e);
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        }
        panic!("node {i} did not restart: {last:?}");
    }

    /// Stops a node gracefully.
    pub async fn stop(&mut self, i: usize) {
        if let Some(h) = self.nodes[i].take() {
            h.shutdown().await;
        }
    }

    /// Publishes the next epoch listing `members`: written to every node's
    /// registry file and offered to every running node.
    pub async fn publish(&mut self, members: &[usize]) -> RegistryDocument {
        let doc = self.build_doc(members, now_ms());
        self.publish_doc(doc).await
    }

    /// The next epoch listing `members`, issued at `at`, signed but not
    /// published. The assignment depends on `at` (through the epoch hash).
    pub fn build_doc(&self, members: &[usize], at: u64) -> RegistryDocument {
        let records = members.iter().map(|&i| {
            NodeRecord::sign(
                &self.keys[i],
                Ipv4Addr::LOCALHOST,
                self.addrs[i].port(),
                [0, 1, 0],
            )
            .unwrap()
        });
        let b = match &self.doc {
            Some(prev) => prev.next_builder(at),
            None => RegistryDocument::builder(1, at),
        };
        b.params(PARAMS)
            .nodes(records)
            .build()
            .unwrap()
            .signed(&self.registry_key)
    }

    /// Publishes the next epoch listing `members`, choosing among candidate
    /// issue times one whose assignment satisfies `wanted` (which gets the
    /// candidate and the document in force). Panics if none does.
    pub async fn publish_where(
        &mut self,
        members: &[usize],
        wanted: impl Fn(&RegistryDocument, &RegistryDocument) -> bool,
    ) -> RegistryDocument {
        let doc = self.choose_doc(members, wanted);
        self.publish_doc(doc).await
    }

    /// The next epoch listing `members` whose assignment satisfies `wanted`
    /// (see [`TestNet::publish_where`]), not yet published.
    pub fn choose_doc(
        &self,
        members: &[usize],
        wanted: impl Fn(&RegistryDocument, &RegistryDocument) -> bool,
    ) -> RegistryDocument {
        let at = now_ms();
        (0..500)
            .map(|k| self.build_doc(members, at + k))
            .find(|doc| wanted(doc, self.doc()))
            .unwrap_or_else(|| {
                panic!("no assignment of {members:?} satisfies the test's condition")
            })
    }

    /// Writes `doc` to every node's registry file and offers it to every
    /// running node.
    pub async fn publish_doc(&mut self, doc: RegistryDocument) -> RegistryDocument {
        let bytes = doc.encode();
        for i in 0..self.nodes.len() {
            std::fs::write(self.data_dir(i).join("registry"), &bytes).unwrap();
            if let Some(h) = &self.nodes[i] {
                h.node.offer_registry(&bytes).unwrap();
            }
        }
        self.doc = Some(doc.clone());
        doc
    }

    pub fn node_addr(&self, i: usize) -> NodeAddr {
        NodeAddr::new(self.addrs[i], self.keys[i].public())
    }

    pub fn doc(&self) -> &RegistryDocument {
        self.doc.as_ref().unwrap()
    }

    /// Indices of the nodes of the swarm owning `account`.
    pub fn owners(&self, account: &AccountId) -> Vec<usize> {
        let members: Vec<_> = self
            .doc()
            .members_for(account)
            .into_iter()
            .map(|r| r.ed25519)
            .collect();
        (0..self.keys.len())
            .filter(|&i| members.contains(&self.keys[i].public()))
            .collect()
    }

    /// Indices of listed nodes outside the swarm owning `account`.
    pub fn non_owners(&self, account: &AccountId) -> Vec<usize> {
        let owners = self.owners(account);
        let listed: Vec<_> = self.doc().nodes().iter().map(|r| r.ed25519).collect();
        (0..self.keys.len())
            .filter(|i| !owners.contains(i) && listed.contains(&self.keys[*i].public()))
            .collect()
    }

    /// POSTs a JSON request to `/storage_rpc/v1` of node `i`.
    pub async fn rpc(&self, i: usize, body: &Value) -> (u16, Value) {
        rpc_to(&self.client, &self.node_addr(i), body).await
    }

    pub fn node(&self, i: usize) -> &NodeHandle {
        self.nodes[i].as_ref().unwrap()
    }

    /// Indices of the members of the swarm owning `account` under `doc`.
    pub fn owners_in(&self, doc: &RegistryDocument, account: &AccountId) -> Vec<usize> {
        let members: Vec<_> = doc
            .members_for(account)
            .into_iter()
            .map(|r| r.ed25519)
            .collect();
        (0..self.keys.len())
            .filter(|&i| members.contains(&self.keys[i].public()))
            .collect()
    }

    /// The `data` of every unexpired message node `i` holds for `account`,
    /// in every namespace, read from its database (works for accounts the
    /// node no longer owns, which `retrieve` would answer with `421`).
    pub async fn held(&self, i: usize, account: &AccountId) -> Vec<Vec<u8>> {
        self.node(i)
            .node
            .store
            .messages_for_push(account, now_ms())
            .await
            .unwrap()
            .into_iter()
            .map(|m| m.data)
            .collect()
    }

    /// The node index whose Ed25519 key is `hex_key`.
    pub fn index_of(&self, hex_key: &str) -> usize {
        (0..self.keys.len())
            .find(|&i| hex::encode(self.keys[i].public().as_bytes()) == hex_key)
            .unwrap_or_else(|| panic!("{hex_key} is not a test node"))
    }

    /// Every message of namespace 0 of `keys`' account that node `i` returns,
    /// following `more`/`last_hash` pages.
    pub async fn retrieve_all(&self, i: usize, keys: &AccountKeys) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        let mut last: Option<String> = None;
        loop {
            let mut req = retrieve_req(keys, now_ms());
            if let Some(h) = &last {
                req["params"]["last_hash"] = json!(h);
            }
            let (status, body) = self.rpc(i, &req).await;
            assert_eq!(status, 200, "retrieve from node {i}: {body}");
            out.extend(retrieved_data(&body));
            let msgs = body["messages"].as_array().unwrap();
            if body["more"] != json!(true) || msgs.is_empty() {
                return out;
            }
            last = Some(msgs.last().unwrap()["hash"].as_str().unwrap().to_string());
        }
    }
}

pub async fn rpc_to(client: &NodeClient, addr: &NodeAddr, body: &Value) -> (u16, Value) {
    let resp = client
        .post(addr, "/storage_rpc/v1", serde_json::to_vec(body).unwrap())
        .await
        .unwrap();
    let v = serde_json::from_slice(&resp.body)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&resp.body).into_owned()));
    (resp.status.as_u16(), v)
}

/// An account for tests, from a one-byte seed.
pub fn account(n: u8) -> AccountKeys {
    AccountKeys::from_seed(&[n; 32])
}

/// An account whose swarm is not the one owning `other` (searches seeds).
pub fn account_elsewhere(net: &TestNet, other: &AccountId) -> AccountKeys {
    let swarm = net.doc().swarm_of(other);
    (1..=255u8)
        .map(account)
        .find(|a| net.doc().swarm_of(&a.account_id()) != swarm)
        .expect("a second swarm")
}

pub fn b64(b: &[u8]) -> String {
    STANDARD.encode(b)
}

/// Spec §2.4 signature over `text`, base64.
pub fn sig(keys: &AccountKeys, text: &[u8]) -> String {
    b64(&keys.ed25519().sign(text))
}

/// A `store` to namespace 0 (public inbox: unsigned), written from the spec.
pub fn store_req(to: &AccountId, data: &[u8], timestamp: u64, ttl: u64) -> Value {
    json!({"method": "store", "params": {
        "pubkey": to.to_string(), "timestamp": timestamp, "ttl": ttl, "data": b64(data)
    }})
}

/// A signed `retrieve` of namespace 0, written from the spec.
pub fn retrieve_req(keys: &AccountKeys, timestamp: u64) -> Value {
    let signed = format!("retrieve{timestamp}");
    json!({"method": "retrieve", "params": {
        "pubkey": keys.account_id().to_string(),
        "pubkey_ed25519": hex::encode(keys.ed25519_public().as_bytes()),
        "timestamp": timestamp,
        "signature": sig(keys, signed.as_bytes()),
    }})
}

/// The `data` of every message a `retrieve` returned.
pub fn retrieved_data(v: &Value) -> Vec<Vec<u8>> {
    v["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| STANDARD.decode(m["data"].as_str().unwrap()).unwrap())
        .collect()
}

/// Polls `f` until it returns true or `timeout` passes.
pub async fn eventually<F, Fut>(timeout: Duration, mut f: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if f().await {
            return true;
        }
        if tokio::time::Instant::now() > deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The per-node entries of a recursive method's `swarm` map (§8.2), each
/// parsed as `T` and paired with the index of the node whose key it is
/// under. Panics on a failed entry.
pub fn swarm_entries<T: serde::de::DeserializeOwned>(
    net: &TestNet,
    body: &Value,
) -> Vec<(usize, T)> {
    body["swarm"]
        .as_object()
        .unwrap_or_else(|| panic!("no swarm map in {body}"))
        .iter()
        .map(|(k, v)| {
            assert!(v.get("failed").is_none(), "member {k} failed: {v}");
            let t = serde_json::from_value(v.clone())
                .unwrap_or_else(|e| panic!("entry of {k} ({v}) does not parse: {e}"));
            (net.index_of(k), t)
        })
        .collect()
}

/// Owner-signed deletion requests, built and signed with the protocol's
/// own types (`umbra_proto::rpc`), as `{"method", "params"}` JSON: the
/// requests a tombstone's proof carries.
pub mod owner {
    use serde_json::Value;
    use umbra_proto::identity::AccountKeys;
    use umbra_proto::rpc::sign::{AuthParams, Signer};
    use umbra_proto::rpc::types::{DeleteAllParams, DeleteParams, ExpireParams, Expiries};
    use umbra_proto::rpc::{MessageHash, NamespaceSel, Request};

    /// `delete` of `hashes`, signed by `keys` for `account` (normally
    /// `keys`' own account; another one makes a forgery).
    pub fn delete_as(
        keys: &AccountKeys,
        account: &umbra_proto::identity::AccountId,
        hashes: &[MessageHash],
    ) -> Value {
        let mut p = DeleteParams {
            pubkey: *account,
            messages: hashes.to_vec(),
            required: false,
            auth: AuthParams::default(),
        };
        p.auth = Signer::Account(keys).auth(&p.signed_string());
        Request::Delete(p).to_json()
    }

    /// `delete` of `hashes`, signed by the account's owner.
    pub fn delete(keys: &AccountKeys, hashes: &[MessageHash]) -> Value {
        delete_as(keys, &keys.account_id(), hashes)
    }

    /// A `store` to the account's public outbox (namespace −1, which a
    /// store replaces: the earlier messages there are deleted), signed by
    /// the owner.
    pub fn store_outbox(keys: &AccountKeys, data: &[u8], timestamp: u64, ttl: u64) -> Value {
        use umbra_proto::rpc::encoding::MessageData;
        use umbra_proto::rpc::types::StoreParams;
        let mut p = StoreParams {
            pubkey: keys.account_id(),
            timestamp,
            ttl: Some(ttl),
            expiry: None,
            data: MessageData(data.to_vec()),
            namespace: umbra_proto::rpc::Namespace(-1),
            sig_timestamp: None,
            auth: AuthParams::default(),
        };
        p.auth = Signer::Account(keys).auth(&p.signed_string());
        Request::Store(p).to_json()
    }

    /// `delete_all` of `namespace` signed at `timestamp`.
    pub fn delete_all(keys: &AccountKeys, namespace: NamespaceSel, timestamp: u64) -> Value {
        let mut p = DeleteAllParams {
            pubkey: keys.account_id(),
            namespace,
            timestamp,
            auth: AuthParams::default(),
        };
        p.auth = Signer::Account(keys).auth(&p.signed_string());
        Request::DeleteAll(p).to_json()
    }

    /// `expire` of `hashes` to `expiry`, `shorten` only when set.
    pub fn expire(keys: &AccountKeys, hashes: &[MessageHash], expiry: u64, shorten: bool) -> Value {
        let mut p = ExpireParams {
            pubkey: keys.account_id(),
            messages: hashes.to_vec(),
            expiry: Expiries::Single(expiry),
            shorten,
            extend: false,
            auth: AuthParams::default(),
        };
        p.auth = Signer::Account(keys).auth(&p.signed_string());
        Request::Expire(p).to_json()
    }
}
