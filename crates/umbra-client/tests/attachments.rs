//! Attachments end to end (`attachments.md`, issue 9): two [`Client`]s on
//! an in-process devnet with its file server, every upload and download a
//! v4 onion request through 3 hops. Clients are opened from the devnet's
//! `network.json`, whose `file_server` entry names the server.
//!
//! - Alice sends a 25 MB random file (deterministic seed) to Bob: it is
//!   chunked (§5), Bob's export has the same SHA-256, and no blob on the
//!   file server's disk contains the plaintext's first 64 bytes.
//! - A corrupted, missing, truncated or oversized chunk on the server, a
//!   wrong key and an expired ID each make the download fail with an error
//!   naming the piece, leave no output file and no partial file anywhere.
//! - A small PNG is sent as an image (content type, width and height) and
//!   fetched by Bob's sync automatically; a voice note is flagged.
//! - The server refuses an oversized upload (`413`).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "integration test: a panic is a test failure"
)]

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use umbra_client::attachments::transfer::{self, Fetch};
use umbra_client::attachments::{AttachError, FileServer, SendOptions};
use umbra_client::client::Client;
use umbra_client::profile::Profile;
use umbra_client::store::Message;
use umbra_devnet::fileserver::DevnetFileServer;
use umbra_devnet::{Devnet, DevnetOptions};
use umbra_proto::attachment::server::FileUrl;
use umbra_proto::identity::AccountId;
use umbra_proto::mnemonic::AccountSeed;
use umbra_proto::network::NetworkConfig;
use umbra_proto::path::PathConfig;

const EVENT_TIMEOUT: Duration = Duration::from_secs(60);

struct Net {
    devnet: Devnet,
    fs: DevnetFileServer,
    dir: tempfile::TempDir,
}

async fn setup() -> Net {
    let dir = tempfile::tempdir().unwrap();
    let mut devnet = Devnet::up(DevnetOptions::in_process(6, dir.path().join("devnet")))
        .await
        .unwrap();
    let fs = devnet.start_file_server().await.unwrap();
    Net { devnet, fs, dir }
}

impl Net {
    /// A client opened from the devnet's `network.json` on disk (what
    /// `umbra account create` saves), which lists the file server.
    fn client_for(&self, name: &str, seed: &AccountSeed) -> Client {
        let pdir = self.dir.path().join(name);
        let profile = Profile::create(&pdir, seed, None).unwrap();
        let text = std::fs::read_to_string(self.devnet.dir().join("network.json")).unwrap();
        let network = NetworkConfig::from_json(&text).unwrap();
        assert_eq!(network, *self.devnet.network());
        Client::open(
            profile,
            network,
            PathConfig::default().with_min_usable_nodes(4),
        )
        .unwrap()
    }

    fn blob_dir(&self) -> PathBuf {
        self.fs.handle.server.store().blob_dir()
    }

    fn server(&self) -> FileServer {
        FileServer::from(&self.fs.entry)
    }
}

/// `n` pseudo-random bytes from `seed` (splitmix64).
fn random_file(seed: u64, n: usize) -> Vec<u8> {
    let mut s = seed;
    let mut out = Vec::with_capacity(n + 8);
    while out.len() < n {
        s = s.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = s;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        out.extend_from_slice(&(z ^ (z >> 31)).to_le_bytes());
    }
    out.truncate(n);
    out
}

fn sha256(b: &[u8]) -> [u8; 32] {
    umbra_crypto::hash::sha256(b)
}

/// Syncs `c` until a message from `peer` with an attachment arrives.
async fn sync_until_attachment(c: &Client, peer: &AccountId, after_ms: u64) -> Message {
    let deadline = Instant::now() + EVENT_TIMEOUT;
    c.network().ensure_ready(EVENT_TIMEOUT).await.unwrap();
    loop {
        c.sync().await.unwrap();
        let store = c.profile().store();
        for m in store.messages(peer, Some(after_ms)).unwrap() {
            if !c.attachments(m.id).unwrap().is_empty() {
                return m;
            }
        }
        assert!(Instant::now() < deadline, "no attachment message arrived");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Lists every file under `dir` whose name ends in `.part`.
fn part_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let Ok(rd) = std::fs::read_dir(dir) else {
        return out;
    };
    for e in rd.flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(part_files(&p));
        } else if p.to_string_lossy().ends_with(".part") {
            out.push(p);
        }
    }
    out
}

/// The stored blob of the `i`-th chunk of message `m` (as Bob recorded it).
fn chunk_blob_paths(net: &Net, c: &Client, m: &Message) -> Vec<PathBuf> {
    // The manifest lists the chunks; read it the way the client does.
    let rec = &c.attachments(m.id).unwrap()[0];
    let url = FileUrl::parse(&rec.url).unwrap();
    assert!(url.manifest, "a 25 MB file is chunked");
    let blob = std::fs::read(net.blob_dir().join(&url.id)).unwrap();
    let key = hex::decode(&rec.key).unwrap();
    let digest = hex::decode(rec.digest.as_ref().unwrap()).unwrap();
    let plain = umbra_proto::attachment::legacy::decrypt_padded(&key, &digest, &blob).unwrap();
    let manifest =
        umbra_proto::attachment::chunked::ChunkManifest::decode_padded(&plain, rec.size).unwrap();
    manifest
        .chunks
        .iter()
        .map(|c| net.blob_dir().join(FileUrl::parse(&c.url).unwrap().id))
        .collect()
}

/// Bob's second device downloads into `out` and must fail naming `piece`,
/// leaving neither `out` nor any part file.
async fn expect_failure(c: &Client, m: &Message, out: &Path, piece: &str, why: &str) {
    let err = c
        .export_attachment(m.id, 0, out, &|_| {})
        .await
        .expect_err(why);
    let text = err.to_string();
    assert!(text.contains(piece), "{why}: error {text:?} names {piece}");
    assert!(!out.exists(), "{why}: no output file");
    assert!(part_files(out.parent().unwrap()).is_empty(), "{why}");
    assert!(part_files(c.profile().dir()).is_empty(), "{why}");
    let rec = &c.attachments(m.id).unwrap()[0];
    assert!(rec.local.is_none(), "{why}: nothing kept");
    assert!(rec.error.as_deref().unwrap().contains(piece));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_file_round_trip_and_bad_chunks() {
    let net = setup().await;
    let alice = net.client_for("alice", &AccountSeed::new_umbra(&[0xa1; 32]));
    let bob_seed = AccountSeed::new_umbra(&[0xb0; 32]);
    let bob = net.client_for("bob", &bob_seed);
    let (a_id, b_id) = (alice.account_id(), bob.account_id());

    let n = 25_000_000;
    let data = random_file(25, n);
    let src = net.dir.path().join("big.bin");
    std::fs::write(&src, &data).unwrap();

    let t0 = Instant::now();
    let calls = AtomicUsize::new(0);
    let last = AtomicU64::new(0);
    let sent = alice
        .send_attachment(&b_id, &src, &SendOptions::default(), &|p| {
            calls.fetch_add(1, Ordering::Relaxed);
            assert!(p.done >= last.swap(p.done, Ordering::Relaxed));
            assert_eq!(p.total, n as u64);
        })
        .await
        .unwrap();
    let up = t0.elapsed();
    assert_eq!(sent.chunks_uploaded, 13);
    assert!(calls.load(Ordering::Relaxed) >= 13);
    assert_eq!(last.load(Ordering::Relaxed), n as u64);
    assert_eq!(sent.record.content_type, "application/octet-stream");
    assert_eq!(sent.record.file_name.as_deref(), Some("big.bin"));

    // Bob: the message arrives with its pointer; a document is not fetched by sync.
    let m = sync_until_attachment(&bob, &a_id, 0).await;
    let rec = &bob.attachments(m.id).unwrap()[0];
    assert_eq!((rec.size, rec.local.as_ref()), (n as u64, None));
    let out = net.dir.path().join("bob-out").join("big.bin");
    std::fs::create_dir_all(out.parent().unwrap()).unwrap();
    let t0 = Instant::now();
    let got = bob.export_attachment(m.id, 0, &out, &|_| {}).await.unwrap();
    let down = t0.elapsed();
    assert_eq!(got, n as u64);
    assert_eq!(sha256(&std::fs::read(&out).unwrap()), sha256(&data));
    eprintln!(
        "25 MB (debug build): upload {:.1} s, download {:.1} s",
        up.as_secs_f64(),
        down.as_secs_f64()
    );
    // Bob's profile keeps it encrypted: the plaintext is nowhere in it.
    let head = &data[..64];
    for d in [bob.profile().dir(), alice.profile().dir()] {
        let local = umbra_client::attachments::local::dir(d);
        for e in std::fs::read_dir(&local).unwrap().flatten() {
            if e.path().is_file() {
                let b = std::fs::read(e.path()).unwrap();
                assert!(!b.windows(64).any(|w| w == head), "{:?}", e.path());
            }
        }
    }
    // The file server's disk holds only ciphertext.
    let mut blobs = 0;
    for e in std::fs::read_dir(net.blob_dir()).unwrap() {
        let b = std::fs::read(e.unwrap().path()).unwrap();
        assert!(!b.windows(64).any(|w| w == head));
        blobs += 1;
    }
    assert!(blobs >= 14, "13 chunks and a manifest");

    // A second device of Bob's fetches again while the server misbehaves.
    let bob2 = net.client_for("bob2", &bob_seed);
    let m2 = sync_until_attachment(&bob2, &a_id, 0).await;
    let chunks = chunk_blob_paths(&net, &bob2, &m2);
    assert_eq!(chunks.len(), 13);
    let out2 = net.dir.path().join("bob2-out").join("big.bin");
    std::fs::create_dir_all(out2.parent().unwrap()).unwrap();

    // Corrupted chunk 2.
    let original = std::fs::read(&chunks[2]).unwrap();
    let mut bad = original.clone();
    bad[1000] ^= 0xff;
    std::fs::write(&chunks[2], &bad).unwrap();
    expect_failure(&bob2, &m2, &out2, "chunk 2", "corrupted chunk").await;
    std::fs::write(&chunks[2], &original).unwrap();

    // Truncated chunk 5, then an oversized one.
    let original = std::fs::read(&chunks[5]).unwrap();
    std::fs::write(&chunks[5], &original[..original.len() - 1000]).unwrap();
    expect_failure(&bob2, &m2, &out2, "chunk 5", "truncated chunk").await;
    let mut longer = original.clone();
    longer.extend_from_slice(&[0u8; 4096]);
    std::fs::write(&chunks[5], &longer).unwrap();
    expect_failure(&bob2, &m2, &out2, "chunk 5", "oversized chunk").await;
    std::fs::write(&chunks[5], &original).unwrap();

    // Missing chunk 12 (the last).
    let original = std::fs::read(&chunks[12]).unwrap();
    std::fs::remove_file(&chunks[12]).unwrap();
    expect_failure(&bob2, &m2, &out2, "chunk 12", "missing chunk").await;
    std::fs::write(&chunks[12], &original).unwrap();

    // Everything restored: the second device succeeds too.
    bob2.export_attachment(m2.id, 0, &out2, &|_| {})
        .await
        .unwrap();
    assert_eq!(sha256(&std::fs::read(&out2).unwrap()), sha256(&data));
    assert!(part_files(net.dir.path()).is_empty());

    net.fs.handle.stop().await;
    net.devnet.down().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn images_voice_and_server_refusals() {
    let net = setup().await;
    let alice = net.client_for("alice", &AccountSeed::new_umbra(&[0xa2; 32]));
    let bob = net.client_for("bob", &AccountSeed::new_umbra(&[0xb2; 32]));
    let (a_id, b_id) = (alice.account_id(), bob.account_id());
    // The file server comes from the network configuration's `file_server`
    // (no `fileserver.json` anywhere).
    assert_eq!(alice.file_server().unwrap(), net.server());
    assert!(!net.devnet.dir().join("fileserver.json").exists());
    assert!(!alice.profile().dir().join("fileserver.json").exists());
    // Bob accepts Alice first (attachments of requests are never fetched).
    bob.profile()
        .store()
        .set_approved_by_us(&a_id, true)
        .unwrap();

    // A 3×2 PNG: an image, with its size; fetched by Bob's sync.
    let png = [
        0x89, b'P', b'N', b'G', 0x0d, 0x0a, 0x1a, 0x0a, 0, 0, 0, 13, b'I', b'H', b'D', b'R', 0, 0,
        0, 3, 0, 0, 0, 2, 8, 2, 0, 0, 0, 0x12, 0x16, 0xf1, 0x4d,
    ];
    let mut img = png.to_vec();
    img.extend_from_slice(&random_file(7, 5000));
    let src = net.dir.path().join("pic.png");
    std::fs::write(&src, &img).unwrap();
    let opts = SendOptions {
        caption: Some("look".into()),
        ..SendOptions::default()
    };
    let sent = alice
        .send_attachment(&b_id, &src, &opts, &|_| {})
        .await
        .unwrap();
    assert_eq!(sent.record.content_type, "image/png");
    assert_eq!((sent.record.width, sent.record.height), (Some(3), Some(2)));
    assert_eq!(sent.record.file_name, None, "no file name for images");
    let m = sync_until_attachment(&bob, &a_id, 0).await;
    assert_eq!(m.text, "look");
    let rec = &bob.attachments(m.id).unwrap()[0];
    assert_eq!(rec.content_type, "image/png");
    assert_eq!(rec.caption.as_deref(), Some("look"));
    assert!(rec.local.is_some(), "images are fetched during sync");
    let out = net.dir.path().join("pic-out.png");
    bob.export_attachment(m.id, 0, &out, &|_| {}).await.unwrap();
    assert_eq!(std::fs::read(&out).unwrap(), img);

    // A voice note is flagged.
    let voice = net.dir.path().join("note.ogg");
    std::fs::write(&voice, random_file(8, 3000)).unwrap();
    let opts = SendOptions {
        voice: true,
        ..SendOptions::default()
    };
    let t = sent.timestamp_ms + 1;
    alice
        .send_attachment(&b_id, &voice, &opts, &|_| {})
        .await
        .unwrap();
    let m = sync_until_attachment(&bob, &a_id, t).await;
    let rec = &bob.attachments(m.id).unwrap()[0];
    assert!(rec.voice && rec.local.is_some() && rec.file_name.is_none());

    // A request's image waits for the request to be accepted (§1), and is
    // fetched then.
    let carol = net.client_for("carol", &AccountSeed::new_umbra(&[0xc2; 32]));
    let c_id = carol.account_id();
    carol
        .send_attachment(&b_id, &src, &SendOptions::default(), &|_| {})
        .await
        .unwrap();
    let m = sync_until_attachment(&bob, &c_id, 0).await;
    assert!(
        bob.profile()
            .store()
            .requests()
            .unwrap()
            .iter()
            .any(|r| r.peer == c_id)
    );
    assert!(
        bob.attachments(m.id).unwrap()[0].local.is_none(),
        "not while a request"
    );
    bob.accept(&c_id).await.unwrap();
    let rec = &bob.attachments(m.id).unwrap()[0];
    assert!(rec.local.is_some(), "fetched on accepting the request");

    // Wrong key: the pointer's key does not open the blob.
    let server = net.server();
    let file = random_file(9, 100_000);
    let up = transfer::upload_legacy(alice.network(), &server, &file, None, "attachment")
        .await
        .unwrap();
    // Another message's key: the MAC (checked first) fails.
    let wrong = random_file(12, 64);
    assert_ne!(wrong, up.key.to_vec());
    let dir = net.dir.path().join("wrong-key");
    let store = bob.profile().store();
    let f = Fetch {
        url: &up.url,
        key: &wrong,
        digest: Some(&up.digest),
        size: Some(file.len() as u64),
    };
    let err = transfer::fetch(
        bob.network(),
        Some(&server),
        &f,
        |n| umbra_client::attachments::local::LocalWriter::create(&dir, store, n),
        &|_| {},
    )
    .await
    .err()
    .expect("wrong key refused");
    assert!(
        matches!(&err, AttachError::Verify { what, .. } if what == "attachment"),
        "{err}"
    );
    assert!(err.to_string().contains("wrong key"), "{err}");
    assert!(part_files(&dir).is_empty());

    // Expired ID: stored with an expiry in the past, then asked for.
    let past = umbra_fileserver::now_secs() - 7200.0;
    let (id, _) = net
        .fs
        .handle
        .server
        .store()
        .put(&random_file(10, 2000), past, 60)
        .unwrap();
    let err = transfer::download(alice.network(), &server, "attachment", &id)
        .await
        .unwrap_err();
    assert!(
        matches!(err, AttachError::Server { status: 404, .. }),
        "{err}"
    );
    assert!(err.to_string().contains("expired"), "{err}");

    // The server refuses an upload above 10,000,000 bytes.
    let err = transfer::upload_once(
        alice.network(),
        &server,
        "chunk 0",
        &random_file(11, 10_000_001),
        None,
    )
    .await
    .unwrap_err();
    assert!(
        matches!(err, AttachError::Server { status: 413, .. }),
        "{err}"
    );
    assert!(err.to_string().contains("chunk 0"), "{err}");

    net.fs.handle.stop().await;
    net.devnet.down().await;
}
