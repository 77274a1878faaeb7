//! A registry instance's configuration: a TOML file (for the binary) or a
//! value built in code (tests, the devnet). The network configuration
//! (`network.json`: pinned registry keys, threshold, swarm constants and the
//! publication URLs of all instances) is read separately; an instance finds
//! its peers among those URLs by key.
//!
//! ```toml
//! data_dir = "/var/lib/umbra-registry"
//! listen = "0.0.0.0:22030"
//! network_file = "/etc/umbra/network.json"
//! auto_admit = false          # admit every validly submitted record (test networks)
//! tick_ms = 5000              # agreement round: fetch peers, merge signatures
//! health_interval_ms = 60000  # reachability checks of every candidate
//! failure_limit_ms = 7200000  # spec: 2 hours
//! epoch_interval_ms = 600000  # spec: at most one epoch every 10 minutes
//! ```

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};

use serde::Deserialize;

/// The spec's failure limit (`swarms.md` §3.3): 2 hours.
pub const DEFAULT_FAILURE_LIMIT_MS: u64 = 2 * 60 * 60 * 1000;
/// The spec's epoch interval (`swarms.md` §3.3): 10 minutes.
pub const DEFAULT_EPOCH_INTERVAL_MS: u64 = 10 * 60 * 1000;

/// One registry instance's settings.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct InstanceConfig {
    /// Key, candidate records, admitted keys, the current document and the lock.
    pub data_dir: PathBuf,
    /// HTTPS listener (publication, peer state, record submission).
    pub listen: SocketAddr,
    /// The network configuration file (binary only).
    pub network_file: Option<PathBuf>,
    /// The registry key file; defaults to `DATA_DIR/registry.key`.
    pub key_file: Option<PathBuf>,
    /// Admit every validly submitted record without an operator step.
    pub auto_admit: bool,
    /// Agreement round period.
    pub tick_ms: u64,
    /// Reachability check period.
    pub health_interval_ms: u64,
    /// How long a node may fail every check before this instance stops voting for it.
    pub failure_limit_ms: u64,
    /// Minimum time between two epochs.
    pub epoch_interval_ms: u64,
    /// Timeout of one peer or node request.
    pub request_timeout_ms: u64,
    /// `tracing` filter (binary only).
    pub log_level: String,
}

impl Default for InstanceConfig {
    fn default() -> Self {
        InstanceConfig {
            data_dir: PathBuf::from("umbra-registry-data"),
            listen: SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), 22030),
            network_file: None,
            key_file: None,
            auto_admit: false,
            tick_ms: 5_000,
            health_interval_ms: 60_000,
            failure_limit_ms: DEFAULT_FAILURE_LIMIT_MS,
            epoch_interval_ms: DEFAULT_EPOCH_INTERVAL_MS,
            request_timeout_ms: 5_000,
            log_level: "info".into(),
        }
    }
}

/// A configuration that cannot be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// Not TOML of this schema.
    #[error("invalid registry config {path}: {message}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// What the parser said.
        message: String,
    },
    /// A value is out of range.
    #[error("invalid registry config: {0}")]
    Invalid(&'static str),
}

impl InstanceConfig {
    /// Reads and checks a TOML file.
    pub fn from_file(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        let cfg: InstanceConfig = toml::from_str(&text).map_err(|e| ConfigError::Parse {
            path: path.to_path_buf(),
            message: e.to_string(),
        })?;
        cfg.validate()?;
        Ok(cfg)
    }

    /// Checks the intervals.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.tick_ms == 0
            || self.health_interval_ms == 0
            || self.epoch_interval_ms == 0
            || self.request_timeout_ms == 0
        {
            return Err(ConfigError::Invalid(
                "intervals and timeouts must be positive",
            ));
        }
        Ok(())
    }

    /// The key file path.
    pub fn key_path(&self) -> PathBuf {
        self.key_file
            .clone()
            .unwrap_or_else(|| self.data_dir.join("registry.key"))
    }

    /// A configuration for a test network: every interval given in
    /// milliseconds, records admitted on submission.
    pub fn fast(data_dir: impl Into<PathBuf>, listen: SocketAddr, scale_ms: u64) -> Self {
        InstanceConfig {
            data_dir: data_dir.into(),
            listen,
            auto_admit: true,
            tick_ms: scale_ms.max(1),
            health_interval_ms: scale_ms.max(1),
            failure_limit_ms: scale_ms * 3,
            epoch_interval_ms: scale_ms * 5,
            request_timeout_ms: 2_000,
            ..InstanceConfig::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_documented_example() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("r.toml");
        std::fs::write(
            &p,
            "data_dir = \"/tmp/r\"\nlisten = \"127.0.0.1:22030\"\nauto_admit = true\ntick_ms = 100\n",
        )
        .unwrap();
        let c = InstanceConfig::from_file(&p).unwrap();
        assert_eq!(c.tick_ms, 100);
        assert_eq!(c.failure_limit_ms, DEFAULT_FAILURE_LIMIT_MS);
        assert_eq!(c.key_path(), PathBuf::from("/tmp/r/registry.key"));
        std::fs::write(&p, "tick_ms = 0\n").unwrap();
        assert!(matches!(
            InstanceConfig::from_file(&p),
            Err(ConfigError::Invalid(_))
        ));
        std::fs::write(&p, "tick = 1\n").unwrap();
        assert!(matches!(
            InstanceConfig::from_file(&p),
            Err(ConfigError::Parse { .. })
        ));
    }
}
