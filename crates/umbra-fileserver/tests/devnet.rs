//! The file server behind a real in-process devnet: a client builds v4
//! onions through 3 hops (`onion.md` §5, §8) to upload, inspect, extend and
//! download blobs; legacy and chunked attachments (`attachments.md` §2, §5)
//! round-trip; the disk holds only ciphertext; a corrupted stored chunk is
//! refused naming the chunk.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};
use std::time::{Duration, Instant};

use umbra_crypto::Ed25519Keypair;
use umbra_devnet::{Devnet, DevnetOptions};
use umbra_fileserver::{FileServerConfig, FileServerHandle};
use umbra_node::onion::{OnionConfig, set_config};
use umbra_proto::attachment::chunked::{
    self, ChunkManifest, ManifestChunk, chunk_range, decrypt_chunk, encrypt_chunk, n_chunks,
};
use umbra_proto::attachment::server::FileUrl;
use umbra_proto::attachment::{AttachmentError, legacy};
use umbra_proto::onion::{
    BUCKETS, EncType, LayerRandom, OnionDestination, PathNode, Protocol, ReplyOutcome,
    ServerTarget, V4Request, V4Response, build_padded_onion, open_server_reply,
};
use umbra_transport::{ClientConfig, NodeClient};

struct Net {
    devnet: Devnet,
    fs: FileServerHandle,
    fs_key: Ed25519Keypair,
    client: NodeClient,
    _dir: tempfile::TempDir,
}

async fn setup() -> Net {
    let dir = tempfile::tempdir().unwrap();
    let devnet = Devnet::up(DevnetOptions::in_process(4, dir.path().join("devnet")))
        .await
        .unwrap();
    devnet.wait_ready(Duration::from_secs(30)).await.unwrap();
    for i in 0..devnet.len() {
        set_config(
            &devnet.handle(i).unwrap().node,
            OnionConfig {
                proxy_exempt: vec![IpAddr::V4(Ipv4Addr::LOCALHOST)],
                ..OnionConfig::default()
            },
        );
    }
    let fs_key = Ed25519Keypair::from_seed(&[0x46; 32]);
    let cfg = FileServerConfig::new(dir.path().join("fs"), "127.0.0.1:0".parse().unwrap());
    let fs = umbra_fileserver::start(&cfg, &fs_key).await.unwrap();
    let client = NodeClient::new(ClientConfig {
        request_timeout: Duration::from_secs(60),
        ..ClientConfig::default()
    });
    Net {
        devnet,
        fs,
        fs_key,
        client,
        _dir: dir,
    }
}

impl Net {
    fn path(&self, first: usize) -> Vec<PathNode> {
        (0..3)
            .map(|k| {
                let key = self.devnet.node_addr((first + k) % self.devnet.len()).key;
                let rec = self.devnet.registry().node(&key).unwrap();
                PathNode {
                    ed25519: rec.ed25519.to_bytes(),
                    x25519: rec.x25519().unwrap(),
                }
            })
            .collect()
    }

    /// One v4 request through a 3-hop path starting at node `first`.
    async fn v4(
        &self,
        first: usize,
        method: &str,
        endpoint: &str,
        headers: &[(&str, &str)],
        body: Option<Vec<u8>>,
    ) -> V4Response {
        let req = V4Request {
            method: method.into(),
            endpoint: endpoint.into(),
            headers: headers
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect::<BTreeMap<_, _>>(),
            body,
        }
        .encode()
        .unwrap();
        let dest = OnionDestination::Server(ServerTarget {
            host: "127.0.0.1".into(),
            target: "/oxen/v4/lsrpc".into(),
            protocol: Protocol::Http,
            port: self.fs.addr.port(),
            x25519: self.fs_key.x25519_public(),
        });
        let random: Vec<LayerRandom> = (0..4)
            .map(|_| {
                LayerRandom::new(
                    umbra_crypto::random_bytes::<32>(),
                    umbra_crypto::random_bytes::<24>(),
                )
            })
            .collect();
        let built = build_padded_onion(EncType::XChaCha20, &req, &self.path(first), &dest, &random)
            .unwrap();
        assert!(BUCKETS.contains(&built.body.len()));
        let guard = self.devnet.node_addr(first % self.devnet.len());
        let resp = self
            .client
            .post(&guard, "/onion_req/v2", built.body)
            .await
            .unwrap();
        assert!(BUCKETS.contains(&resp.body.len()), "padded reply");
        match open_server_reply(&built.reply_key, resp.status.as_u16(), &resp.body) {
            ReplyOutcome::Reply(r) => r,
            other => panic!("{other:?}"),
        }
    }

    async fn upload(&self, first: usize, data: Vec<u8>) -> String {
        let r = self
            .v4(
                first,
                "POST",
                "/file",
                &[
                    ("Content-Type", "application/octet-stream"),
                    ("Content-Disposition", "attachment"),
                ],
                Some(data),
            )
            .await;
        assert_eq!(r.code, 200, "{}", String::from_utf8_lossy(&r.body));
        let j: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
        j["id"].as_str().unwrap().to_string()
    }

    async fn download(&self, first: usize, id: &str) -> V4Response {
        self.v4(first, "GET", &format!("/file/{id}"), &[], None)
            .await
    }

    fn url(&self, id: &str) -> String {
        FileUrl {
            https: false,
            host: "127.0.0.1".into(),
            port: Some(self.fs.addr.port()),
            id: id.into(),
            server_key: Some(self.fs_key.public().to_bytes()),
            deterministic: false,
            manifest: false,
        }
        .to_string()
    }
}

fn random_file(n: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(n + 32);
    while out.len() < n {
        out.extend_from_slice(&umbra_crypto::random_bytes::<32>());
    }
    out.truncate(n);
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn file_server_through_onion_paths() {
    let net = setup().await;

    // API: upload, info, extend with a TTL, download, errors.
    let id = net.upload(0, b"opaque bytes".to_vec()).await;
    assert_eq!(id.len(), 44);
    let info = net
        .v4(1, "GET", &format!("/file/{id}/info"), &[], None)
        .await;
    let j: serde_json::Value = serde_json::from_slice(&info.body).unwrap();
    assert_eq!((info.code, j["size"].as_u64()), (200, Some(12)));
    let ext = net
        .v4(
            2,
            "POST",
            &format!("/file/{id}/extend"),
            &[("X-FS-TTL", "3600")],
            None,
        )
        .await;
    let j: serde_json::Value = serde_json::from_slice(&ext.body).unwrap();
    let now = umbra_fileserver::now_secs();
    assert!((j["expires"].as_f64().unwrap() - (now + 3600.0)).abs() < 60.0);
    assert_eq!(net.download(3, &id).await.body, b"opaque bytes");
    let missing = net.download(0, &"A".repeat(44)).await;
    assert_eq!(missing.code, 404);
    let bad_ttl = net
        .v4(
            0,
            "POST",
            "/file",
            &[("X-FS-TTL", "10")],
            Some(b"x".to_vec()),
        )
        .await;
    assert_eq!(bad_ttl.code, 400);

    // Legacy attachment (§2) of 1 MB.
    let file = random_file(1_000_000);
    let key: [u8; 64] = std::array::from_fn(|i| (i * 7) as u8);
    let blob = legacy::encrypt(&key, &[3; 16], &file).unwrap();
    let id = net.upload(1, blob.blob.clone()).await;
    let got = net.download(2, &id).await;
    assert_eq!(
        legacy::decrypt(&key, &blob.digest, &got.body, Some(file.len() as u64)).unwrap(),
        file
    );

    // Chunked attachment (§5): 12 MB in 6 chunks, manifest via legacy.
    let n = 12_000_000usize;
    let file = random_file(n);
    let k = umbra_crypto::random_bytes::<32>();
    let t0 = Instant::now();
    let mut chunks = Vec::new();
    for i in 0..n_chunks(n as u64) {
        let r = chunk_range(n as u64, i).unwrap();
        let c = encrypt_chunk(&k, n as u64, i, &file[r.start as usize..r.end as usize]).unwrap();
        let id = net.upload(i as usize, c.stored).await;
        chunks.push(ManifestChunk {
            url: net.url(&id),
            digest: c.digest.to_vec(),
        });
    }
    let manifest = ChunkManifest::new(n as u64, &k, chunks).unwrap();
    let mkey: [u8; 64] = std::array::from_fn(|i| (i * 13 + 1) as u8);
    let mblob = legacy::encrypt(&mkey, &[5; 16], &manifest.encode()).unwrap();
    let mid = net.upload(0, mblob.blob).await;
    let up = t0.elapsed();

    let t0 = Instant::now();
    let got = net.download(1, &mid).await;
    let m = legacy::decrypt(&mkey, &mblob.digest, &got.body, None).unwrap();
    let m = ChunkManifest::decode_padded(&m, n as u64).unwrap();
    let mut out = Vec::with_capacity(n);
    for (i, c) in m.chunks.iter().enumerate() {
        let url = FileUrl::parse(&c.url).unwrap();
        let stored = net.download(i, &url.id).await.body;
        out.extend(decrypt_chunk(&m.key, n as u64, i as u64, &stored, &c.digest).unwrap());
    }
    let down = t0.elapsed();
    assert_eq!(out, file);
    eprintln!(
        "12 MB through 3 hops (debug build): upload {:.1} MB/s, download {:.1} MB/s",
        n as f64 / 1e6 / up.as_secs_f64(),
        n as f64 / 1e6 / down.as_secs_f64()
    );

    // Only ciphertext on disk: no stored blob contains the plaintext's first 64 bytes.
    let blob_dir = net.fs.server.store().blob_dir();
    for e in std::fs::read_dir(&blob_dir).unwrap() {
        let data = std::fs::read(e.unwrap().path()).unwrap();
        assert!(!data.windows(64).any(|w| w == &file[..64]));
    }

    // A corrupted chunk on the server: the download names the chunk.
    let url = FileUrl::parse(&m.chunks[2].url).unwrap();
    let path = blob_dir.join(&url.id);
    let mut data = std::fs::read(&path).unwrap();
    data[1000] ^= 0xff;
    std::fs::write(&path, data).unwrap();
    let stored = net.download(3, &url.id).await.body;
    let err = decrypt_chunk(&m.key, n as u64, 2, &stored, &m.chunks[2].digest).unwrap_err();
    assert_eq!(err, AttachmentError::ChunkDigest(2));
    assert!(err.to_string().contains("chunk 2"));
    assert_eq!(chunked::STORED_CHUNK_SIZE, stored.len());

    net.fs.stop().await;
    net.devnet.down().await;
}
