//! End-to-end tests of `serve` + `NodeClient` with real TLS on 127.0.0.1.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::routing::{get, post};
use rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, mpsc, oneshot};
use tokio::task::JoinHandle;
use umbra_crypto::Ed25519Keypair;
use umbra_transport::tls;
use umbra_transport::{
    ClientConfig, ClientIdentity, NodeAddr, NodeClient, PeerNode, Request, ServeError, Server,
    TransportError,
};

fn to_hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Events the handlers report, so tests wait on them instead of sleeping.
#[derive(Clone)]
struct Probe {
    entered: mpsc::UnboundedSender<&'static str>,
    release: Arc<Notify>,
}

fn router(probe: Probe) -> Router {
    let wait_probe = probe.clone();
    Router::new()
        .route(
            "/echo",
            post(|headers: HeaderMap, body: axum::body::Bytes| async move {
                let mut out = HeaderMap::new();
                if let Some(v) = headers.get("x-test") {
                    out.insert("x-echo", v.clone());
                }
                (out, body)
            }),
        )
        .route(
            "/whoami",
            get(|peer: Option<axum::Extension<PeerNode>>| async move {
                peer.map_or_else(
                    || "anonymous".to_owned(),
                    |axum::Extension(PeerNode(key))| to_hex(key.as_bytes()),
                )
            }),
        )
        .route(
            "/peer",
            get(|ConnectInfo(peer): ConnectInfo<SocketAddr>| async move { peer.to_string() }),
        )
        .route(
            "/close",
            get(|ConnectInfo(peer): ConnectInfo<SocketAddr>| async move {
                (
                    [(axum::http::header::CONNECTION, "close")],
                    peer.to_string(),
                )
            }),
        )
        .route(
            "/wait",
            post(move || async move {
                let notified = wait_probe.release.notified();
                let _ = wait_probe.entered.send("wait");
                notified.await;
                "done"
            }),
        )
        .route(
            "/stall",
            get(move || async move {
                let _ = probe.entered.send("stall");
                std::future::pending::<()>().await;
            }),
        )
        .route("/big", get(|| async { vec![7u8; 1 << 20] }))
}

struct TestServer {
    node: NodeAddr,
    stop: Option<oneshot::Sender<()>>,
    handle: JoinHandle<Result<(), ServeError>>,
    entered: mpsc::UnboundedReceiver<&'static str>,
    release: Arc<Notify>,
}

impl TestServer {
    async fn start(seed: u8, configure: impl FnOnce(Server) -> Server) -> Self {
        let keypair = Ed25519Keypair::from_seed(&[seed; 32]);
        let tls = tls::server_config(&keypair).expect("server TLS config");
        Self::start_with(keypair.public(), tls, configure).await
    }

    async fn start_with(
        key: umbra_crypto::Ed25519Public,
        tls: Arc<rustls::ServerConfig>,
        configure: impl FnOnce(Server) -> Server,
    ) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind an ephemeral loopback port");
        let addr = listener.local_addr().expect("listener address");
        let (entered_tx, entered) = mpsc::unbounded_channel();
        let release = Arc::new(Notify::new());
        let probe = Probe {
            entered: entered_tx,
            release: release.clone(),
        };
        let (stop, stopped) = oneshot::channel::<()>();
        let server = configure(Server::new(router(probe)));
        let handle = tokio::spawn(server.serve_tls(listener, tls, async move {
            let _ = stopped.await;
        }));
        Self {
            node: NodeAddr::new(addr, key),
            stop: Some(stop),
            handle,
            entered,
            release,
        }
    }

    fn shutdown(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

#[tokio::test]
async fn post_round_trip_with_headers() {
    let server = TestServer::start(1, |s| s).await;
    let client = NodeClient::default();
    let request = Request::post("/echo", &b"{\"method\":\"info\"}"[..])
        .unwrap()
        .header(
            HeaderName::from_static("x-test"),
            HeaderValue::from_static("abc"),
        );
    let response = client.send(&server.node, request).await.unwrap();
    assert_eq!(response.status, StatusCode::OK);
    assert_eq!(&response.body[..], b"{\"method\":\"info\"}");
    assert_eq!(response.headers["x-echo"], "abc");

    let response = client.get(&server.node, "/nope").await.unwrap();
    assert_eq!(response.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn handlers_see_the_peer_address() {
    let server = TestServer::start(2, |s| s).await;
    let response = NodeClient::default()
        .get(&server.node, "/peer")
        .await
        .unwrap();
    let peer: SocketAddr = std::str::from_utf8(&response.body)
        .unwrap()
        .parse()
        .unwrap();
    assert!(peer.ip().is_loopback());
    assert_ne!(peer.port(), server.node.addr.port());
}

#[tokio::test]
async fn calling_nodes_are_known_by_their_certificate() {
    let server = TestServer::start(12, |s| s).await;
    // A client presents nothing: the handler sees no peer node.
    let response = NodeClient::default()
        .get(&server.node, "/whoami")
        .await
        .unwrap();
    assert_eq!(&response.body[..], b"anonymous");
    // A node presenting its certificate is known by its key, on every
    // request of the connection.
    let caller = Ed25519Keypair::from_seed(&[13; 32]);
    let client = NodeClient::new(ClientConfig {
        identity: Some(ClientIdentity::new(&caller).unwrap()),
        ..ClientConfig::default()
    });
    for _ in 0..3 {
        let response = client.get(&server.node, "/whoami").await.unwrap();
        assert_eq!(
            std::str::from_utf8(&response.body).unwrap(),
            to_hex(caller.public().as_bytes())
        );
    }
    assert_eq!(client.idle_connections(&server.node), 1);
}

#[tokio::test]
async fn wrong_pinned_key_is_refused() {
    let server = TestServer::start(3, |s| s).await;
    let wrong = NodeAddr::new(
        server.node.addr,
        Ed25519Keypair::from_seed(&[4; 32]).public(),
    );
    let err = NodeClient::default()
        .get(&wrong, "/peer")
        .await
        .unwrap_err();
    assert!(
        matches!(err, TransportError::PinMismatch { addr } if addr == server.node.addr),
        "{err:?}"
    );
    assert!(!err.is_retryable());
}

/// A certificate resolver that serves the victim's certificate while signing
/// the handshake with another key: what an attacker who copied the public
/// certificate could do.
#[derive(Debug)]
struct Forged(Arc<CertifiedKey>);

impl ResolvesServerCert for Forged {
    fn resolve(&self, _: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.0.clone())
    }
}

#[tokio::test]
async fn copied_certificate_without_the_key_is_refused() {
    let victim = Ed25519Keypair::from_seed(&[5; 32]);
    let attacker = Ed25519Keypair::from_seed(&[6; 32]);
    let cert = tls::node_certificate(&victim).unwrap();
    let attacker_der = umbra_crypto::pkcs8::ed25519_pkcs8_der(&attacker);
    let signing_key = tls::provider()
        .key_provider
        .load_private_key(PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(
            attacker_der.to_vec(),
        )))
        .unwrap();
    let resolver = Forged(Arc::new(CertifiedKey::new(vec![cert], signing_key)));
    let config = rustls::ServerConfig::builder_with_provider(tls::provider())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .unwrap()
        .with_no_client_auth()
        .with_cert_resolver(Arc::new(resolver));
    let server = TestServer::start_with(victim.public(), Arc::new(config), |s| s).await;

    let err = NodeClient::default()
        .get(&server.node, "/peer")
        .await
        .unwrap_err();
    assert!(matches!(err, TransportError::Tls { .. }), "{err:?}");
}

#[tokio::test]
async fn sequential_requests_reuse_one_connection() {
    let server = TestServer::start(7, |s| s).await;
    let client = NodeClient::default();
    let mut peers = HashSet::new();
    for _ in 0..50 {
        let response = client.get(&server.node, "/peer").await.unwrap();
        assert_eq!(response.status, StatusCode::OK);
        peers.insert(response.body);
    }
    assert_eq!(peers.len(), 1, "one TCP connection served all 50 requests");
    assert_eq!(client.idle_connections(&server.node), 1);

    // A clone shares the pool.
    let clone = client.clone();
    let response = clone.get(&server.node, "/peer").await.unwrap();
    assert!(peers.contains(&response.body));
}

#[tokio::test]
async fn pool_is_keyed_by_address_and_key() {
    let server = TestServer::start(8, |s| s).await;
    let client = NodeClient::default();
    client.get(&server.node, "/peer").await.unwrap();
    assert_eq!(client.idle_connections(&server.node), 1);
    // Same address, other key: the pooled connection must not be used.
    let other = NodeAddr::new(
        server.node.addr,
        Ed25519Keypair::from_seed(&[9; 32]).public(),
    );
    assert_eq!(client.idle_connections(&other), 0);
    let err = client.get(&other, "/peer").await.unwrap_err();
    assert!(matches!(err, TransportError::PinMismatch { .. }), "{err:?}");
}

#[tokio::test]
async fn closed_connections_are_replaced() {
    let server = TestServer::start(10, |s| s).await;
    let client = NodeClient::default();
    let mut peers = HashSet::new();
    for _ in 0..5 {
        let response = client.get(&server.node, "/close").await.unwrap();
        assert_eq!(response.status, StatusCode::OK);
        peers.insert(response.body);
    }
    assert_eq!(
        peers.len(),
        5,
        "each `Connection: close` response ends its connection"
    );
}

#[tokio::test]
async fn concurrent_requests_open_parallel_connections() {
    let server = TestServer::start(11, |s| s).await;
    let client = NodeClient::new(ClientConfig {
        max_idle_per_node: 2,
        ..ClientConfig::default()
    });
    let requests = (0..6).map(|_| {
        let client = client.clone();
        let node = server.node;
        tokio::spawn(async move { client.get(&node, "/peer").await })
    });
    for request in requests {
        assert_eq!(request.await.unwrap().unwrap().status, StatusCode::OK);
    }
    assert!(client.idle_connections(&server.node) <= 2);
}

#[tokio::test]
async fn graceful_shutdown_finishes_in_flight_requests() {
    let mut server = TestServer::start(12, |s| s).await;
    // An idle keep-alive connection must not hold the shutdown up.
    let idle_client = NodeClient::default();
    idle_client.get(&server.node, "/peer").await.unwrap();
    assert_eq!(idle_client.idle_connections(&server.node), 1);

    let client = NodeClient::default();
    let node = server.node;
    let in_flight = tokio::spawn(async move { client.post(&node, "/wait", "x").await });
    assert_eq!(server.entered.recv().await, Some("wait"));

    server.shutdown();
    // The listener closes while the request is still being handled.
    let mut refused = false;
    for _ in 0..10_000 {
        if TcpStream::connect(server.node.addr).await.is_err() {
            refused = true;
            break;
        }
        tokio::task::yield_now().await;
    }
    assert!(refused, "the listener was closed on shutdown");
    assert!(!in_flight.is_finished());

    server.release.notify_one();
    let response = in_flight.await.unwrap().unwrap();
    assert_eq!(response.status, StatusCode::OK);
    assert_eq!(&response.body[..], b"done");
    tokio::time::timeout(Duration::from_secs(10), server.handle)
        .await
        .expect("serve returns once connections have drained")
        .unwrap()
        .unwrap();
}

#[tokio::test]
async fn drain_timeout_cuts_stuck_requests() {
    let mut server = TestServer::start(13, |s| s.drain_timeout(Duration::from_millis(200))).await;
    let client = NodeClient::default();
    let node = server.node;
    let stuck = tokio::spawn(async move { client.get(&node, "/stall").await });
    assert_eq!(server.entered.recv().await, Some("stall"));
    server.shutdown();
    tokio::time::timeout(Duration::from_secs(10), server.handle)
        .await
        .expect("serve returns after the drain timeout")
        .unwrap()
        .unwrap();
    let err = stuck.await.unwrap().unwrap_err();
    assert!(matches!(err, TransportError::Http { .. }), "{err:?}");
    assert!(err.is_retryable());
}

#[tokio::test]
async fn stalled_server_times_out() {
    let mut server = TestServer::start(14, |s| s).await;
    let client = NodeClient::default();
    let request = Request::get("/stall")
        .unwrap()
        .timeout(Duration::from_millis(300));
    let node = server.node;
    let pending = tokio::spawn(async move { client.send(&node, request).await });
    assert_eq!(server.entered.recv().await, Some("stall"));
    let err = pending.await.unwrap().unwrap_err();
    assert!(
        matches!(err, TransportError::Timeout { after, .. } if after == Duration::from_millis(300)),
        "{err:?}"
    );
    assert!(err.is_retryable());
}

#[tokio::test]
async fn oversized_response_is_refused() {
    let server = TestServer::start(15, |s| s).await;
    let client = NodeClient::new(ClientConfig {
        max_response_bytes: 1000,
        ..ClientConfig::default()
    });
    let err = client.get(&server.node, "/big").await.unwrap_err();
    assert!(
        matches!(err, TransportError::BodyTooLarge { limit: 1000, .. }),
        "{err:?}"
    );
    // Exactly at the limit is fine.
    let client = NodeClient::new(ClientConfig {
        max_response_bytes: 1 << 20,
        ..ClientConfig::default()
    });
    let response = client.get(&server.node, "/big").await.unwrap();
    assert_eq!(response.body.len(), 1 << 20);
}

#[tokio::test]
async fn silent_tls_client_is_dropped_after_the_handshake_timeout() {
    let server = TestServer::start(16, |s| s.handshake_timeout(Duration::from_millis(200))).await;
    let mut tcp = TcpStream::connect(server.node.addr).await.unwrap();
    let mut buf = [0u8; 16];
    // Send nothing: the server must close the socket by itself.
    let read = tokio::time::timeout(Duration::from_secs(10), tcp.read(&mut buf))
        .await
        .expect("the server closed the connection");
    assert!(matches!(read, Ok(0) | Err(_)), "{read:?}");
}

#[tokio::test]
async fn unreachable_node_is_a_retryable_connect_error() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let node = NodeAddr::new(addr, Ed25519Keypair::from_seed(&[17; 32]).public());
    let err = NodeClient::default().get(&node, "/").await.unwrap_err();
    assert!(matches!(err, TransportError::Connect { .. }), "{err:?}");
    assert!(err.is_retryable());
    assert_eq!(err.addr(), Some(addr));
}

#[tokio::test]
async fn plain_http_serves_on_loopback_only() {
    let (entered, _rx) = mpsc::unbounded_channel();
    let probe = Probe {
        entered,
        release: Arc::new(Notify::new()),
    };
    let public = TcpListener::bind("0.0.0.0:0").await.unwrap();
    let err = Server::new(router(probe.clone()))
        .serve_plain(public, std::future::pending())
        .await
        .unwrap_err();
    assert!(matches!(err, ServeError::NotLoopback(_)), "{err:?}");

    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = oneshot::channel::<()>();
    let handle = tokio::spawn(
        Server::new(router(probe)).serve_plain(listener, async move {
            let _ = stopped.await;
        }),
    );
    let mut tcp = TcpStream::connect(addr).await.unwrap();
    tcp.write_all(b"GET /peer HTTP/1.1\r\nHost: admin\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut response = Vec::new();
    tcp.read_to_end(&mut response).await.unwrap();
    let text = String::from_utf8(response).unwrap();
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    let local = tcp.local_addr().unwrap().to_string();
    assert!(text.ends_with(&local), "{text}");

    let _ = stop.send(());
    handle.await.unwrap().unwrap();
}

#[tokio::test]
async fn expired_idle_connections_are_not_reused() {
    let server = TestServer::start(18, |s| s).await;
    let client = NodeClient::new(ClientConfig {
        idle_timeout: Duration::ZERO,
        ..ClientConfig::default()
    });
    let mut peers = HashSet::new();
    for _ in 0..3 {
        peers.insert(client.get(&server.node, "/peer").await.unwrap().body);
    }
    assert_eq!(peers.len(), 3);
    assert_eq!(client.idle_connections(&server.node), 0);
}

#[tokio::test]
async fn http2_clients_are_served() {
    use http_body_util::{BodyExt, Full};
    use hyper_util::rt::{TokioExecutor, TokioIo};

    let server = TestServer::start(19, |s| s).await;
    let mut config = (*tls::client_config(server.node.key).unwrap()).clone();
    config.alpn_protocols = vec![b"h2".to_vec()];
    let tcp = TcpStream::connect(server.node.addr).await.unwrap();
    let stream = tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(
            rustls::pki_types::ServerName::IpAddress(server.node.addr.ip().into()),
            tcp,
        )
        .await
        .unwrap();
    assert_eq!(stream.get_ref().1.alpn_protocol(), Some(&b"h2"[..]));
    let (mut sender, connection) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(stream))
            .await
            .unwrap();
    tokio::spawn(connection);
    let mut peers = HashSet::new();
    for _ in 0..3 {
        let request = http::Request::get(format!("https://{}/peer", server.node.addr))
            .body(Full::new(bytes::Bytes::new()))
            .unwrap();
        let response = sender.send_request(request).await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        peers.insert(response.into_body().collect().await.unwrap().to_bytes());
    }
    assert_eq!(peers.len(), 1, "all streams share one connection");
}

fn http2_client() -> NodeClient {
    NodeClient::new(ClientConfig {
        http2: true,
        ..ClientConfig::default()
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http2_client_multiplexes_requests_on_one_connection() {
    let server = TestServer::start(20, |s| s).await;
    let client = http2_client();
    // One request opens the connection; then 32 at once share it.
    let first = client.get(&server.node, "/peer").await.unwrap();
    assert_eq!(first.status, StatusCode::OK);
    let requests = (0..32u8).map(|i| {
        let client = client.clone();
        let node = server.node;
        tokio::spawn(async move {
            let req = Request::post("/echo", vec![i; 1000 + usize::from(i)])
                .unwrap()
                .header(
                    HeaderName::from_static("x-test"),
                    HeaderValue::from(u32::from(i)),
                );
            (i, client.send(&node, req).await)
        })
    });
    for request in requests {
        let (i, response) = request.await.unwrap();
        let response = response.unwrap();
        assert_eq!(response.status, StatusCode::OK);
        assert_eq!(response.body.len(), 1000 + usize::from(i));
        assert!(response.body.iter().all(|b| *b == i));
        assert_eq!(response.headers["x-echo"], i.to_string().as_str());
    }
    let peer = client.get(&server.node, "/peer").await.unwrap().body;
    assert_eq!(peer, first.body, "every stream used the first connection");
    assert_eq!(client.connections_opened(), 1);
    assert_eq!(client.idle_connections(&server.node), 1);
}

#[tokio::test]
async fn http2_client_carries_large_bodies_and_presents_its_identity() {
    let server = TestServer::start(21, |s| s).await;
    let caller = Ed25519Keypair::from_seed(&[22; 32]);
    let client = NodeClient::new(ClientConfig {
        http2: true,
        identity: Some(ClientIdentity::new(&caller).unwrap()),
        ..ClientConfig::default()
    });
    // 1 MiB down, and 1.5 MiB up (more than the 64 KiB default window of
    // HTTP/2, so flow control has to work both ways).
    let big = client.get(&server.node, "/big").await.unwrap();
    assert_eq!(big.body.len(), 1 << 20);
    let body: Vec<u8> = (0..1_500_000u32).map(|i| (i % 251) as u8).collect();
    let echoed = client
        .post(&server.node, "/echo", body.clone())
        .await
        .unwrap();
    assert_eq!(&echoed.body[..], &body[..]);
    let who = client.get(&server.node, "/whoami").await.unwrap();
    assert_eq!(
        std::str::from_utf8(&who.body).unwrap(),
        to_hex(caller.public().as_bytes())
    );
    assert_eq!(client.connections_opened(), 1);
}

#[tokio::test]
async fn http2_client_reconnects_after_the_server_restarts() {
    let mut server = TestServer::start(23, |s| s).await;
    let client = http2_client();
    assert_eq!(
        client.get(&server.node, "/peer").await.unwrap().status,
        StatusCode::OK
    );
    // The server goes away (its connections close) and comes back on the
    // same address and key: the next request opens a new connection.
    let node = server.node;
    server.shutdown();
    let _ = (&mut server.handle).await;
    let keypair = Ed25519Keypair::from_seed(&[23; 32]);
    let listener = TcpListener::bind(node.addr).await.unwrap();
    let tls_config = tls::server_config(&keypair).unwrap();
    let (stop_tx, stop_rx) = oneshot::channel::<()>();
    let app = Router::new().route("/peer", get(|| async { "again" }));
    tokio::spawn(async move {
        let _ = Server::new(app)
            .serve_tls(listener, tls_config, async {
                let _ = stop_rx.await;
            })
            .await;
    });
    let mut response = client.get(&node, "/peer").await;
    // The first attempt may still see the old connection end (a retryable
    // error); the pool then drops it and the next request reconnects.
    if let Err(e) = &response {
        assert!(e.is_retryable(), "{e}");
        response = client.get(&node, "/peer").await;
    }
    assert_eq!(&response.unwrap().body[..], b"again");
    assert_eq!(client.connections_opened(), 2);
    let _ = stop_tx.send(());
}

/// A TLS connection to `node` from the local address `src`.
async fn tls_from(
    src: [u8; 4],
    node: &NodeAddr,
) -> std::io::Result<tokio_rustls::client::TlsStream<TcpStream>> {
    let socket = tokio::net::TcpSocket::new_v4()?;
    socket.bind(SocketAddr::from((src, 0)))?;
    let tcp = socket.connect(node.addr).await?;
    let config = tls::client_config(node.key).map_err(std::io::Error::other)?;
    tokio_rustls::TlsConnector::from(config)
        .connect(
            rustls::pki_types::ServerName::IpAddress(node.addr.ip().into()),
            tcp,
        )
        .await
}

#[tokio::test]
async fn connections_beyond_the_per_address_cap_are_closed() {
    let server = TestServer::start(24, |s| s.max_connections_per_ip(2)).await;
    let first = tls_from([127, 0, 0, 1], &server.node).await.unwrap();
    let _second = tls_from([127, 0, 0, 1], &server.node).await.unwrap();
    // A third from the same address is closed at once: its handshake fails.
    assert!(tls_from([127, 0, 0, 1], &server.node).await.is_err());
    // Another address is still served.
    let _other = tls_from([127, 0, 0, 2], &server.node).await.unwrap();
    // Once one of the two closes, the address may connect again.
    drop(first);
    let mut again = None;
    for _ in 0..100 {
        if let Ok(c) = tls_from([127, 0, 0, 1], &server.node).await {
            again = Some(c);
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(again.is_some(), "the freed slot was never given back");
}
