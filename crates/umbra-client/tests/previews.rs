//! Link previews end to end (`messages.md` §16, `storage-rpc.md` §9.14):
//! a local HTTPS site on 127.0.0.71, a 6-node in-process devnet whose
//! nodes trust the site's certificate and exempt its address (the
//! test-network rule), and two clients.
//!
//! - previews on: the page and its `og:image` are fetched exactly once
//!   each, by a node (the node's `User-Agent`, while the client only ever
//!   sent onion requests to its guards); Bob's copy of the message carries
//!   the page's title and the thumbnail's pointer, and the thumbnail
//!   (uploaded to the devnet's file server) decodes as a 600×315 JPEG;
//! - previews off: the site sees no request at all and no preview goes out;
//! - a failing page: the message still goes out, without a preview.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "integration test: a panic is a test failure"
)]

use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use umbra_client::client::Client;
use umbra_client::preview;
use umbra_client::store::Message;
use umbra_node::fetch::{FetchPolicy, USER_AGENT};
use umbra_proto::identity::AccountId;
use umbra_proto::network::NetworkConfig;

const EVENT_TIMEOUT: Duration = Duration::from_secs(30);
/// The site's address: exempted by every node of this devnet only.
const SITE_IP: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 71);

struct Shared {
    network: NetworkConfig,
    tls: Arc<rustls::ServerConfig>,
}

/// The devnet (on its own runtime: `umbra_devnet::shared`) and the site's
/// TLS configuration, whose certificate every node trusts.
fn shared() -> &'static Shared {
    static S: OnceLock<Shared> = OnceLock::new();
    S.get_or_init(|| {
        let ck = rcgen::generate_simple_self_signed(vec![SITE_IP.to_string()]).unwrap();
        let der: CertificateDer<'static> = ck.cert.der().clone();
        let key = PrivateKeyDer::Pkcs8(ck.signing_key.serialize_der().into());
        let tls = rustls::ServerConfig::builder_with_provider(umbra_transport::tls::provider())
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(vec![der.clone()], key)
            .unwrap();
        let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("umbra-client-previews-devnet");
        let _ = std::fs::remove_dir_all(&dir);
        let network = umbra_devnet::shared::background_with_file_server(6, dir, move |net| {
            for i in 0..net.len() {
                let node = &net.handle(i).expect("in-process node").node;
                umbra_node::fetch::set_policy(
                    node,
                    FetchPolicy {
                        exempt: vec![SITE_IP.into()],
                        extra_roots: vec![der.clone()],
                        ..FetchPolicy::default()
                    },
                );
            }
        })
        .unwrap_or_else(|e| panic!("devnet failed to start: {e}"));
        Shared {
            network,
            tls: Arc::new(tls),
        }
    })
}

mod common;

use common::{Accounts, wait_until};

/// One request the site saw: path and `User-Agent`.
type Seen = Arc<Mutex<Vec<(String, Option<String>)>>>;

/// An HTTPS site on [`SITE_IP`] answering every path with `page(path)`.
/// What the site answers for a path: status line, content type, body.
type Page = (&'static str, &'static str, Vec<u8>);

async fn site(page: fn(&str, SocketAddr) -> Page) -> (SocketAddr, Seen) {
    let listener = TcpListener::bind((SITE_IP, 0)).await.unwrap();
    let addr = listener.local_addr().unwrap();
    let seen: Seen = Arc::default();
    let acceptor = tokio_rustls::TlsAcceptor::from(shared().tls.clone());
    let log = seen.clone();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let (acceptor, log) = (acceptor.clone(), log.clone());
            tokio::spawn(async move {
                let Ok(mut s) = acceptor.accept(tcp).await else {
                    return;
                };
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
                    match s.read(&mut chunk).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => buf.extend_from_slice(&chunk[..n]),
                    }
                }
                let head = String::from_utf8_lossy(&buf).to_string();
                let path = head.split(' ').nth(1).unwrap_or("/").to_string();
                let ua = head
                    .lines()
                    .find_map(|l| {
                        l.strip_prefix("user-agent: ")
                            .or(l.strip_prefix("User-Agent: "))
                    })
                    .map(str::to_string);
                log.lock().unwrap().push((path.clone(), ua));
                let (status, content_type, body) = page(&path, addr);
                let head = format!(
                    "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                    body.len()
                );
                let _ = s.write_all(head.as_bytes()).await;
                let _ = s.write_all(&body).await;
                let _ = s.shutdown().await;
            });
        }
    });
    (addr, seen)
}

const HTML: &str = "text/html; charset=utf-8";

/// A 1200×630 PNG (a typical `og:image`), with a text chunk that must not
/// survive re-encoding.
fn og_png() -> Vec<u8> {
    let img = image::RgbImage::from_fn(1200, 630, |x, y| {
        image::Rgb([(x % 251) as u8, (y % 241) as u8, 120])
    });
    let mut out = Vec::new();
    image::DynamicImage::ImageRgb8(img)
        .write_to(&mut std::io::Cursor::new(&mut out), image::ImageFormat::Png)
        .unwrap();
    out
}

fn article(path: &str, addr: SocketAddr) -> Page {
    match path {
        "/article" => (
            "200 OK",
            HTML,
            format!(
                "<html><head><title>Plain title</title>\
                 <meta property=\"og:title\" content=\"Umbra &amp; friends\">\
                 <meta property=\"og:image\" content=\"https://{addr}/og.png\"></head>\
                 <body>text</body></html>"
            )
            .into_bytes(),
        ),
        "/og.png" => ("200 OK", "image/png", og_png()),
        _ => (
            "404 Not Found",
            HTML,
            b"<html><title>missing</title></html>".to_vec(),
        ),
    }
}

/// Syncs `c` until its conversation with `peer` has a message with `text`.
async fn received(c: &Client, peer: &AccountId, text: &str) -> Message {
    wait_until(text, EVENT_TIMEOUT, || async {
        c.sync().await.ok()?;
        c.profile()
            .store()
            .messages(peer, None)
            .ok()?
            .into_iter()
            .find(|m| m.text == text)
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn preview_is_fetched_by_a_node_and_reaches_the_recipient() {
    let accts = Accounts::new(&shared().network);
    let (alice, bob) = (accts.client("alice"), accts.client("bob"));
    let (addr, seen) = site(article).await;
    alice.profile().store().set_link_previews(true).unwrap();
    alice.network().ensure_ready(EVENT_TIMEOUT).await.unwrap();
    let url = format!("https://{addr}/article");
    let text = format!("read this: {url}.");
    alice.network().record_requests(true);
    alice.send_text(&bob.account_id(), &text).await.unwrap();

    // Page and image fetched once each, by a node: the node's fetch agent,
    // while Alice's client only sent onion requests to guards (never to the
    // site's address).
    let requests = seen.lock().unwrap().clone();
    assert_eq!(
        requests,
        vec![
            ("/article".to_string(), Some(USER_AGENT.to_string())),
            ("/og.png".to_string(), Some(USER_AGENT.to_string()))
        ]
    );
    let sent = alice.network().sent_requests();
    assert!(!sent.is_empty());
    assert!(
        sent.iter().all(|r| r.endpoint == "/onion_req/v2"),
        "{sent:?}"
    );
    let guards: Vec<[u8; 32]> = alice
        .network()
        .paths()
        .await
        .iter()
        .map(|p| p[0].ed25519.to_bytes())
        .collect();
    assert!(sent.iter().all(|r| guards.contains(&r.to)));

    // Alice's own copy shows it: title, and the thumbnail uploaded as an
    // attachment (1200×630 scaled to fit 600×600, re-encoded as JPEG).
    let mine = alice
        .profile()
        .store()
        .messages(&bob.account_id(), None)
        .unwrap()
        .into_iter()
        .find(|m| m.text == text)
        .unwrap();
    let expected = preview::lookup(alice.profile().store(), &mine)
        .unwrap()
        .unwrap();
    assert_eq!(
        (expected.url.as_str(), expected.title.as_str()),
        (url.as_str(), "Umbra & friends")
    );
    let image = expected.image.clone().expect("a thumbnail");
    assert_eq!(
        (image.content_type.as_str(), image.width, image.height),
        ("image/jpeg", Some(600), Some(315))
    );
    // Bob's does, without Bob fetching anything from the site; the
    // thumbnail comes from the file server.
    let theirs = received(&bob, &alice.account_id(), &text).await;
    assert_eq!(
        preview::lookup(bob.profile().store(), &theirs).unwrap(),
        Some(expected)
    );
    let jpeg = bob.preview_image(&theirs).await.unwrap().unwrap();
    assert_eq!(jpeg.len(), image.size as usize);
    let decoded = image::load_from_memory_with_format(&jpeg, image::ImageFormat::Jpeg).unwrap();
    assert_eq!((decoded.width(), decoded.height()), (600, 315));
    assert_eq!(seen.lock().unwrap().len(), 2, "the recipient never fetches");

    // A page that fails: the message goes out without a preview.
    let broken = format!("and https://{addr}/gone");
    alice.send_text(&bob.account_id(), &broken).await.unwrap();
    assert_eq!(seen.lock().unwrap().len(), 3);
    let m = received(&bob, &alice.account_id(), &broken).await;
    assert_eq!(preview::lookup(bob.profile().store(), &m).unwrap(), None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn previews_off_fetch_nothing() {
    let accts = Accounts::new(&shared().network);
    let (alice, bob) = (accts.client("alice"), accts.client("bob"));
    let (addr, seen) = site(article).await;
    assert!(
        !alice.profile().store().link_previews().unwrap(),
        "default off"
    );
    let text = format!("https://{addr}/article");
    alice.send_text(&bob.account_id(), &text).await.unwrap();
    let m = received(&bob, &alice.account_id(), &text).await;
    assert_eq!(preview::lookup(bob.profile().store(), &m).unwrap(), None);
    assert!(
        seen.lock().unwrap().is_empty(),
        "with previews off the site must see no request"
    );
}
