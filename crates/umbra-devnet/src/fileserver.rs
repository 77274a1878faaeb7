//! The devnet's file server (`attachments.md` §4): started next to the
//! nodes, on loopback, with its key in `DIR/fileserver/fileserver.key`, and
//! listed as the network's default file server (`file_server`: host, port,
//! protocol, Ed25519 key) in the devnet's `network.json` and
//! [`Devnet::network`], so clients created from that configuration find
//! it. The devnet's nodes exempt loopback from the proxy rule of `onion.md`
//! §4.2 so hop 3 can reach it.

use std::net::{Ipv4Addr, SocketAddr};

use umbra_crypto::Ed25519Keypair;
use umbra_fileserver::{FileServerConfig, FileServerHandle};
use umbra_proto::network::{FileServerProtocol, NetworkFileServer};
use umbra_proto::rpc::encoding::Ed25519Hex;

use crate::{Devnet, DevnetError};

/// A running devnet file server.
pub struct DevnetFileServer {
    /// The server (stop it with [`FileServerHandle::stop`]).
    pub handle: FileServerHandle,
    /// Its Ed25519 key.
    pub key: Ed25519Keypair,
    /// Its entry in the network configuration (`file_server`).
    pub entry: NetworkFileServer,
}

impl Devnet {
    /// Starts the devnet's file server on 127.0.0.1 (a free port) and
    /// lists it as `file_server` in the network configuration (in memory
    /// and in `network.json`).
    pub async fn start_file_server(&mut self) -> Result<DevnetFileServer, DevnetError> {
        self.start_file_server_with(|_| {}).await
    }

    /// As [`Devnet::start_file_server`], letting the caller adjust the
    /// configuration (size caps, TTL) first.
    pub async fn start_file_server_with(
        &mut self,
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
        let entry = NetworkFileServer {
            host: handle.addr.ip().to_string(),
            port: handle.addr.port(),
            protocol: FileServerProtocol::Http,
            pubkey_ed25519: Ed25519Hex(key.public()),
        };
        let mut network = self.network.clone();
        network.file_server = Some(entry.clone());
        let path = self.dir().join("network.json");
        std::fs::write(&path, network.to_json()).map_err(|source| DevnetError::Io {
            what: format!("writing {}", path.display()),
            source,
        })?;
        self.network = network;
        Ok(DevnetFileServer { handle, key, entry })
    }
}
