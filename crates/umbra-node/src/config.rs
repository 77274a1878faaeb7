//! `umbrad` configuration: a TOML file, overridable by command-line flags.
//!
//! ```toml
//! data_dir = "/var/lib/umbrad"
//! listen = "0.0.0.0:22021"        # storage RPC and node-to-node HTTPS
//! public_ip = "203.0.113.7"       # the address the registry lists
//! admin_listen = "127.0.0.1:22029" # /healthz and /metrics (plain HTTP, loopback only)
//! network_file = "/etc/umbrad/network.json"   # pinned registry keys, threshold, seeds
//! registry_file = "/var/lib/umbrad/registry"  # the signed registry document
//! log_level = "info"
//! db_size_cap_bytes = 3758096384
//! rate_limit_burst = 600
//! rate_limit_per_sec = 300
//! sweep_interval_ms = 10000
//! catchup_interval_ms = 30000
//! registry_poll_ms = 5000
//! publication_poll_ms = 60000
//! registry_submit_ms = 600000     # resubmit this node's record to the registry instances
//! body_read_timeout_ms = 60000
//! ```

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};

use serde::Deserialize;

/// Default size cap of the message database: 3.5 GiB.
pub const DEFAULT_DB_SIZE_CAP: u64 = 3_758_096_384;

/// A node's configuration.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NodeConfig {
    /// Directory holding the key, certificate, database and registry.
    pub data_dir: PathBuf,
    /// Address of the HTTPS listener (client RPC, onion entry, node-to-node).
    pub listen: SocketAddr,
    /// The IPv4 address the registry lists for this node (defaults to the listen IP).
    pub public_ip: Option<Ipv4Addr>,
    /// Address of the plain-HTTP admin listener (`/healthz`, `/metrics`); must be loopback.
    pub admin_listen: Option<SocketAddr>,
    /// The network configuration file (pinned registry keys and threshold).
    pub network_file: Option<PathBuf>,
    /// The signed registry document; defaults to `DATA_DIR/registry`.
    pub registry_file: Option<PathBuf>,
    /// The node key file; defaults to `DATA_DIR/node.key`.
    pub key_file: Option<PathBuf>,
    /// `tracing` filter directive, e.g. `info` or `umbra_node=debug`.
    pub log_level: String,
    /// Database size cap in bytes.
    pub db_size_cap_bytes: u64,
    /// Token-bucket capacity per client IP.
    pub rate_limit_burst: u32,
    /// Token-bucket refill per second per client IP.
    pub rate_limit_per_sec: u32,
    /// Expiry sweep interval (spec: 10 s).
    pub sweep_interval_ms: u64,
    /// Catch-up push interval (spec: 30 s).
    pub catchup_interval_ms: u64,
    /// How often the registry file is checked for a new epoch.
    pub registry_poll_ms: u64,
    /// How often the network's registry publication URLs are polled
    /// (`swarms.md` §3.3: 60 s).
    pub publication_poll_ms: u64,
    /// How often the node resubmits its self-signed record to every
    /// registry instance named by the publication URLs (issue 11); it also
    /// submits at start, and retries failures sooner with backoff.
    pub registry_submit_ms: u64,
    /// Longest time a client may take to send a request body on the public
    /// port, counted from the end of its head (bounds slow-body clients).
    pub body_read_timeout_ms: u64,
    /// Test networks only: addresses an onion proxy hop may reach although
    /// they are private or loopback (`onion.md` §4.2), e.g. a devnet's file server.
    pub onion_proxy_exempt: Vec<std::net::IpAddr>,
}

impl Default for NodeConfig {
    fn default() -> Self {
        NodeConfig {
            data_dir: PathBuf::from("umbrad-data"),
            listen: SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), 22021),
            public_ip: None,
            admin_listen: None,
            network_file: None,
            registry_file: None,
            key_file: None,
            log_level: "info".into(),
            db_size_cap_bytes: DEFAULT_DB_SIZE_CAP,
            rate_limit_burst: 600,
            rate_limit_per_sec: 300,
            sweep_interval_ms: 10_000,
            catchup_interval_ms: 30_000,
            registry_poll_ms: 5_000,
            publication_poll_ms: 60_000,
            registry_submit_ms: 600_000,
            body_read_timeout_ms: 60_000,
            onion_proxy_exempt: Vec::new(),
        }
    }
}

/// A configuration file that could not be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read config file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The file is not valid TOML for this schema.
    #[error("invalid config file {path}: {message}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// What the TOML parser said.
        message: String,
    },
    /// A value is out of range.
    #[error("invalid configuration: {0}")]
    Invalid(String),
}

impl NodeConfig {
    /// Reads a TOML file.
    pub fn from_file(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Self::from_toml(&text).map_err(|e| match e {
            ConfigError::Parse { message, .. } => ConfigError::Parse {
                path: path.to_path_buf(),
                message,
            },
            other => other,
        })
    }

    /// Parses TOML text.
    pub fn from_toml(text: &str) -> Result<Self, ConfigError> {
        let cfg: NodeConfig = toml::from_str(text).map_err(|e| ConfigError::Parse {
            path: PathBuf::new(),
            message: e.to_string(),
        })?;
        cfg.validate()?;
        Ok(cfg)
    }

    /// Checks cross-field rules.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if let Some(admin) = self.admin_listen
            && !admin.ip().is_loopback()
        {
            return Err(ConfigError::Invalid(format!(
                "admin_listen {admin} must be a loopback address: metrics are not for the internet"
            )));
        }
        if self.rate_limit_burst == 0 || self.rate_limit_per_sec == 0 {
            return Err(ConfigError::Invalid("rate limits must be positive".into()));
        }
        if self.sweep_interval_ms == 0
            || self.catchup_interval_ms == 0
            || self.registry_poll_ms == 0
            || self.publication_poll_ms == 0
            || self.registry_submit_ms == 0
            || self.body_read_timeout_ms == 0
        {
            return Err(ConfigError::Invalid("intervals must be positive".into()));
        }
        Ok(())
    }

    /// The node key file path.
    pub fn key_path(&self) -> PathBuf {
        self.key_file
            .clone()
            .unwrap_or_else(|| self.data_dir.join("node.key"))
    }

    /// The registry file path.
    pub fn registry_path(&self) -> PathBuf {
        self.registry_file
            .clone()
            .unwrap_or_else(|| self.data_dir.join("registry"))
    }

    /// The database path.
    pub fn db_path(&self) -> PathBuf {
        self.data_dir.join("messages.sqlite")
    }

    /// The IPv4 address this node announces.
    pub fn announced_ip(&self) -> Option<Ipv4Addr> {
        self.public_ip.or(match self.listen.ip() {
            IpAddr::V4(v4) if !v4.is_unspecified() => Some(v4),
            _ => None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_example_and_defaults() {
        let cfg = NodeConfig::from_toml(
            "data_dir = \"/tmp/x\"\nlisten = \"127.0.0.1:4000\"\nadmin_listen = \"127.0.0.1:4001\"\n",
        )
        .unwrap();
        assert_eq!(cfg.listen.port(), 4000);
        assert_eq!(cfg.db_size_cap_bytes, DEFAULT_DB_SIZE_CAP);
        assert_eq!(cfg.key_path(), PathBuf::from("/tmp/x/node.key"));
        assert_eq!(cfg.announced_ip(), Some(Ipv4Addr::LOCALHOST));
    }

    #[test]
    fn the_shipped_example_parses() {
        let cfg = NodeConfig::from_toml(include_str!("../../../contrib/umbrad.toml")).unwrap();
        assert_eq!(cfg.listen.port(), 22021);
        assert!(cfg.admin_listen.unwrap().ip().is_loopback());
    }

    #[test]
    fn refuses_public_admin_and_unknown_keys() {
        assert!(matches!(
            NodeConfig::from_toml("admin_listen = \"0.0.0.0:1\""),
            Err(ConfigError::Invalid(_))
        ));
        assert!(matches!(
            NodeConfig::from_toml("lisen = \"x\""),
            Err(ConfigError::Parse { .. })
        ));
    }
}
