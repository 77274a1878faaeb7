//! The network configuration (`swarms.md` §3): what defines one Umbra
//! network — its pinned registry keys and signature threshold, the swarm
//! constants of §4.1, the registry publication URLs, the seed nodes and the
//! network's default file server (`attachments.md` §4.1).
//!
//! It is a JSON file (`network.json`) that the devnet writes next to its
//! registry and that operators and clients receive with their software:
//!
//! ```json
//! {
//!   "name": "devnet",
//!   "registry_keys": ["<64 hex>"],
//!   "threshold": 1,
//!   "swarm_params": {"min_swarm_size": 3, "excess_base": 3, "ideal_swarm_margin": 1, "new_swarm_size": 3},
//!   "registry_urls": [],
//!   "seed_nodes": [{"ip": "127.0.0.1", "port_https": 22021, "pubkey_ed25519": "<64 hex>"}],
//!   "file_server": {"host": "127.0.0.1", "port": 40123, "protocol": "http", "pubkey_ed25519": "<64 hex>"}
//! }
//! ```
//!
//! `file_server` is optional: a configuration written before it existed
//! still parses, and a network without one leaves clients to configure
//! their file server themselves.
//! ```

use std::net::Ipv4Addr;

use serde::{Deserialize, Serialize};
use umbra_crypto::Ed25519Public;

use crate::rpc::encoding::Ed25519Hex;
use crate::swarm::{RegistryConfig, RegistryError, SwarmParams};

/// The §4.1 swarm constants as they appear in `network.json`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SwarmParamsJson {
    /// `MIN_SWARM_SIZE`.
    pub min_swarm_size: usize,
    /// `EXCESS_BASE`.
    pub excess_base: usize,
    /// `IDEAL_SWARM_MARGIN`.
    pub ideal_swarm_margin: usize,
    /// `NEW_SWARM_SIZE`.
    pub new_swarm_size: usize,
}

impl From<SwarmParamsJson> for SwarmParams {
    fn from(p: SwarmParamsJson) -> Self {
        SwarmParams {
            min_swarm_size: p.min_swarm_size,
            excess_base: p.excess_base,
            ideal_swarm_margin: p.ideal_swarm_margin,
            new_swarm_size: p.new_swarm_size,
        }
    }
}

impl From<SwarmParams> for SwarmParamsJson {
    fn from(p: SwarmParams) -> Self {
        SwarmParamsJson {
            min_swarm_size: p.min_swarm_size,
            excess_base: p.excess_base,
            ideal_swarm_margin: p.ideal_swarm_margin,
            new_swarm_size: p.new_swarm_size,
        }
    }
}

/// A seed node: where a client without a registry asks for one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SeedNode {
    /// IPv4 address.
    pub ip: Ipv4Addr,
    /// HTTPS port.
    pub port_https: u16,
    /// The node's Ed25519 key (pins its TLS certificate).
    pub pubkey_ed25519: Ed25519Hex,
}

/// How a file server is reached through hop 3 (`attachments.md` §4.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FileServerProtocol {
    /// Plain HTTP (a devnet's loopback server).
    Http,
    /// HTTPS.
    Https,
}

impl FileServerProtocol {
    /// `http` or `https`.
    pub fn as_str(self) -> &'static str {
        match self {
            FileServerProtocol::Http => "http",
            FileServerProtocol::Https => "https",
        }
    }
}

/// The network's default file server (`attachments.md` §4.1): host, port,
/// protocol and its Ed25519 key (onion layers are encrypted to the key's
/// X25519 conversion).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NetworkFileServer {
    /// Host name or IPv4 literal.
    pub host: String,
    /// TCP port.
    pub port: u16,
    /// What hop 3 speaks to it.
    pub protocol: FileServerProtocol,
    /// The server's Ed25519 key.
    pub pubkey_ed25519: Ed25519Hex,
}

/// One network's configuration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NetworkConfig {
    /// A human-readable name (`devnet`, `mainnet`).
    pub name: String,
    /// The pinned registry keys.
    pub registry_keys: Vec<Ed25519Hex>,
    /// How many distinct pinned keys must sign an epoch.
    pub threshold: usize,
    /// Swarm constants; absent means the public network's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub swarm_params: Option<SwarmParamsJson>,
    /// Where registry documents are published (polled by nodes).
    #[serde(default)]
    pub registry_urls: Vec<String>,
    /// Seed nodes for client bootstrap.
    #[serde(default)]
    pub seed_nodes: Vec<SeedNode>,
    /// The network's default file server; absent in configurations
    /// written before it existed and in networks without one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file_server: Option<NetworkFileServer>,
}

/// A `network.json` that cannot be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum NetworkConfigError {
    /// Not JSON of this schema.
    #[error("network configuration is not valid: {0}")]
    Json(#[from] serde_json::Error),
    /// Keys, threshold or swarm constants are inconsistent.
    #[error("network configuration is inconsistent: {0}")]
    Registry(#[from] RegistryError),
}

impl NetworkConfig {
    /// Parses `network.json` text and checks it.
    pub fn from_json(text: &str) -> Result<Self, NetworkConfigError> {
        let cfg: NetworkConfig = serde_json::from_str(text)?;
        cfg.registry_config()?;
        Ok(cfg)
    }

    /// Pretty JSON text.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_default()
    }

    /// The swarm constants in force.
    pub fn params(&self) -> SwarmParams {
        self.swarm_params.map(SwarmParams::from).unwrap_or_default()
    }

    /// What a registry reader checks documents against.
    pub fn registry_config(&self) -> Result<RegistryConfig, RegistryError> {
        let keys: Vec<Ed25519Public> = self.registry_keys.iter().map(|k| k.0).collect();
        RegistryConfig::new(keys, self.threshold, self.params())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> NetworkConfig {
        NetworkConfig {
            name: "devnet".into(),
            registry_keys: vec![Ed25519Hex(
                umbra_crypto::Ed25519Keypair::from_seed(&[1; 32]).public(),
            )],
            threshold: 1,
            swarm_params: Some(SwarmParamsJson {
                min_swarm_size: 3,
                excess_base: 3,
                ideal_swarm_margin: 1,
                new_swarm_size: 3,
            }),
            registry_urls: vec![],
            seed_nodes: vec![SeedNode {
                ip: Ipv4Addr::LOCALHOST,
                port_https: 22021,
                pubkey_ed25519: Ed25519Hex(
                    umbra_crypto::Ed25519Keypair::from_seed(&[2; 32]).public(),
                ),
            }],
            file_server: Some(NetworkFileServer {
                host: "127.0.0.1".into(),
                port: 40123,
                protocol: FileServerProtocol::Http,
                pubkey_ed25519: Ed25519Hex(
                    umbra_crypto::Ed25519Keypair::from_seed(&[3; 32]).public(),
                ),
            }),
        }
    }

    #[test]
    fn json_round_trip() {
        let cfg = sample();
        let back = NetworkConfig::from_json(&cfg.to_json()).unwrap();
        assert_eq!(back, cfg);
        assert_eq!(back.params().min_swarm_size, 3);
        assert_eq!(back.registry_config().unwrap().threshold(), 1);
    }

    #[test]
    fn file_server_is_optional_and_checked() {
        let cfg = sample();
        let json = cfg.to_json();
        assert!(json.contains("\"file_server\""), "{json}");
        assert!(json.contains("\"protocol\": \"http\""), "{json}");
        // A configuration written before the field existed still parses.
        let mut old = cfg.clone();
        old.file_server = None;
        let old_json = old.to_json();
        assert!(!old_json.contains("file_server"), "{old_json}");
        assert_eq!(
            NetworkConfig::from_json(&old_json).unwrap().file_server,
            None
        );
        // An unknown protocol or a short key is refused.
        let bad_proto = json.replace("\"http\"", "\"gopher\"");
        assert!(NetworkConfig::from_json(&bad_proto).is_err());
        let key = cfg.file_server.as_ref().unwrap().pubkey_ed25519.to_string();
        let bad_key = json.replace(&key, &key[..62]);
        assert!(NetworkConfig::from_json(&bad_key).is_err());
    }

    #[test]
    fn threshold_above_key_count_is_refused() {
        let mut cfg = sample();
        cfg.threshold = 2;
        assert!(matches!(
            NetworkConfig::from_json(&cfg.to_json()),
            Err(NetworkConfigError::Registry(_))
        ));
        assert!(NetworkConfig::from_json("{\"name\": 1}").is_err());
    }
}
