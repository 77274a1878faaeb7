//! The devnet's file server (`attachments.md` §4): started next to the
//! nodes, on loopback, with its key in `DIR/fileserver/fileserver.key`, and
//! listed in `DIR/fileserver.json` (host, port, protocol, Ed25519 key) so
//! clients created from the devnet's `network.json` find it. The devnet's
//! nodes exempt loopback from the proxy rule of `onion.md` §4.2 so hop 3
//! can reach it.

use std::net::{Ipv4Addr, SocketAddr};

use serde_json::json;
use umbra_crypto::Ed25519Keypair;
use umbra_fileserver::{FileServerConfig, FileServerHandle};

use crate::{Devnet, DevnetError};

/// The file a devnet writes for clients.
pub const FILE_SERVER_FILE: &str = "fileserver.json";

/// A running devnet file server.
pub struct DevnetFileServer {
    /// The server (stop it with [`FileServerHandle::stop`]).
    pub handle: FileServerHandle,
    /// Its Ed25519 key.
    pub key: Ed25519Keypair,
    /// What `fileserver.json` holds.
    pub json: serde_json::Value,
}

impl Devnet {
    /// Starts the devnet's file server on 127.0.0.1 (a free port) and
    /// writes `fileserver.json`.
    pub async fn start_file_server(&self) -> Result<DevnetFileServer, DevnetError> {
        self.start_file_server_with(|_| {}).await
    }

    /// As [`Devnet::start_file_server`], letting the caller adjust the
    /// configuration (size caps, TTL) first.
    pub async fn start_file_server_with(
        &self,
        adjust: impl FnOnce(&mut FileServerConfig),
    ) -> Result<DevnetFileServer, DevnetError> {
        let dir = self.dir().join("fileserver");
        std::fs::create_dir_all(&dir).map_err(|source| DevnetError::Io {
            what: format!("creating {}", dir.display()),
            source,
        })?;
        let key = umbra_node::keyfile::load_or_create(
            &dir.join("fileserver.key"),
            umbra_crypto::random_bytes::<32>,
        )
        .map_err(|e| DevnetError::Invalid(format!("file server key: {e}")))?;
        let mut cfg =
            FileServerConfig::new(dir.join("data"), SocketAddr::from((Ipv4Addr::LOCALHOST, 0)));
        adjust(&mut cfg);
        let handle = umbra_fileserver::start(&cfg, &key)
            .await
            .map_err(|e| DevnetError::Invalid(format!("file server: {e}")))?;
        let json = json!({
            "host": handle.addr.ip().to_string(),
            "port": handle.addr.port(),
            "protocol": "http",
            "pubkey_ed25519": hex::encode(key.public().as_bytes()),
        });
        std::fs::write(self.dir().join(FILE_SERVER_FILE), json.to_string()).map_err(|source| {
            DevnetError::Io {
                what: "writing fileserver.json".into(),
                source,
            }
        })?;
        Ok(DevnetFileServer { handle, key, json })
    }
}
