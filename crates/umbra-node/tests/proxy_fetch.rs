//! `proxy_fetch` node rules (`storage-rpc.md` §9.14) against real local
//! HTTP and HTTPS servers on 127.0.0.x: the address filter and its
//! test-network exemptions, redirects re-checked hop by hop, status, type
//! and size rules, the deadline, and the result through the RPC entry.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpListener;
use umbra_node::fetch::{self, FetchError, FetchPolicy, MAX_HTML_BYTES, USER_AGENT};
use umbra_proto::rpc::StatusCode;
use umbra_proto::rpc::types::ProxyAccept;

/// One request a test server saw.
#[derive(Clone, Debug)]
struct Seen {
    path: String,
    headers: Vec<(String, String)>,
}

impl Seen {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

type Route = Arc<dyn Fn(&str) -> Vec<u8> + Send + Sync>;

/// A tiny HTTP/1.1 server (optionally TLS) answering each request with
/// `route(path)` and recording what it saw.
struct Server {
    addr: SocketAddr,
    seen: Arc<Mutex<Vec<Seen>>>,
}

fn response(status: &str, headers: &[(&str, &str)], body: &[u8]) -> Vec<u8> {
    let mut r = format!("HTTP/1.1 {status}\r\nContent-Length: {}\r\n", body.len());
    for (k, v) in headers {
        r.push_str(&format!("{k}: {v}\r\n"));
    }
    r.push_str("Connection: close\r\n\r\n");
    let mut r = r.into_bytes();
    r.extend_from_slice(body);
    r
}

async fn serve_one<S: AsyncRead + AsyncWrite + Unpin>(
    mut s: S,
    route: Route,
    seen: Arc<Mutex<Vec<Seen>>>,
) {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
        match s.read(&mut chunk).await {
            Ok(0) | Err(_) => return,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
    let text = String::from_utf8_lossy(&buf).to_string();
    let mut lines = text.split("\r\n");
    let path = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .unwrap_or("/")
        .to_string();
    let headers = lines
        .take_while(|l| !l.is_empty())
        .filter_map(|l| l.split_once(": "))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    seen.lock().unwrap().push(Seen {
        path: path.clone(),
        headers,
    });
    let _ = s.write_all(&route(&path)).await;
    let _ = s.shutdown().await;
}

async fn start(ip: Ipv4Addr, tls: Option<Arc<rustls::ServerConfig>>, route: Route) -> Server {
    let listener = TcpListener::bind((ip, 0)).await.unwrap();
    let addr = listener.local_addr().unwrap();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let seen2 = seen.clone();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let (route, seen) = (route.clone(), seen2.clone());
            let tls = tls.clone();
            tokio::spawn(async move {
                match tls {
                    Some(cfg) => {
                        if let Ok(s) = tokio_rustls::TlsAcceptor::from(cfg).accept(tcp).await {
                            serve_one(s, route, seen).await;
                        }
                    }
                    None => serve_one(tcp, route, seen).await,
                }
            });
        }
    });
    Server { addr, seen }
}

fn html(title: &str) -> Vec<u8> {
    response(
        "200 OK",
        &[("Content-Type", "text/html; charset=utf-8")],
        format!("<html><head><title>{title}</title></head></html>").as_bytes(),
    )
}

fn exempt(ips: &[Ipv4Addr]) -> FetchPolicy {
    FetchPolicy {
        exempt: ips.iter().map(|i| IpAddr::V4(*i)).collect(),
        timeout: Duration::from_secs(5),
        ..FetchPolicy::default()
    }
}

const A: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 61);
const B: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 62);

fn status(r: Result<fetch::Fetched, FetchError>) -> StatusCode {
    match r {
        Ok(_) => StatusCode::Ok,
        Err(e) => e.status(),
    }
}

#[tokio::test]
async fn exempt_http_server_is_fetched_with_the_node_user_agent() {
    let s = start(A, None, Arc::new(|_: &str| html("Hello"))).await;
    let url = format!("http://{}/page?x=1", s.addr);
    let f = fetch::fetch(&url, ProxyAccept::Html, &exempt(&[A]))
        .await
        .unwrap();
    assert_eq!(f.url, url);
    assert!(f.content_type.starts_with("text/html"));
    assert!(!f.truncated);
    assert!(String::from_utf8_lossy(&f.body).contains("<title>Hello</title>"));
    let seen = s.seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].path, "/page?x=1");
    assert_eq!(seen[0].header("user-agent"), Some(USER_AGENT));
    assert_eq!(seen[0].header("cookie"), None);
    assert_eq!(seen[0].header("referer"), None);
}

#[tokio::test]
async fn non_public_targets_are_refused_before_any_connection() {
    let s = start(A, None, Arc::new(|_: &str| html("x"))).await;
    let port = s.addr.port();
    let none = FetchPolicy::default();
    for url in [
        // IP literal, loopback, http and a port: refused without exemption.
        format!("http://{A}:{port}/"),
        format!("https://{A}:{port}/"),
        format!("https://{A}/"),
        "https://[::1]/".to_string(),
        // A DNS name resolving to loopback (rule 2).
        "https://localhost/".to_string(),
        // Not http(s) at all; user info.
        "ftp://example.org/".to_string(),
        "https://user@localhost/".to_string(),
    ] {
        let r = fetch::fetch(&url, ProxyAccept::Html, &none).await;
        assert_eq!(status(r), StatusCode::BadRequest, "{url}");
    }
    // An exemption covers only the listed address.
    let r = fetch::fetch(
        &format!("http://{A}:{port}/"),
        ProxyAccept::Html,
        &exempt(&[B]),
    )
    .await;
    assert_eq!(status(r), StatusCode::BadRequest);
    let long = format!("https://example.org/{}", "a".repeat(2100));
    assert!(matches!(
        fetch::fetch(&long, ProxyAccept::Html, &none).await,
        Err(FetchError::BadUrl(_))
    ));
    assert!(
        s.seen.lock().unwrap().is_empty(),
        "nothing may reach the server"
    );
}

#[tokio::test]
async fn every_redirect_hop_is_checked() {
    // B is not exempt: a redirect from A to B must be refused without
    // contacting B.
    let b = start(B, None, Arc::new(|_: &str| html("B"))).await;
    let b_url = format!("http://{}/b", b.addr);
    let a = start(
        A,
        None,
        Arc::new(move |path: &str| match path {
            "/to-b" => response("302 Found", &[("Location", &b_url)], b""),
            "/loop" => response("301 Moved", &[("Location", "/loop")], b""),
            p if p.starts_with("/hop") => {
                let n: u32 = p[4..].parse().unwrap_or(0);
                if n == 0 {
                    html("arrived")
                } else {
                    let next = format!("/hop{}", n - 1);
                    response("307 Temporary Redirect", &[("Location", &next)], b"")
                }
            }
            _ => response("404 Not Found", &[("Content-Type", "text/html")], b"no"),
        }),
    )
    .await;
    let policy = exempt(&[A]);
    let r = fetch::fetch(
        &format!("http://{}/to-b", a.addr),
        ProxyAccept::Html,
        &policy,
    )
    .await;
    assert_eq!(status(r), StatusCode::BadRequest);
    assert!(b.seen.lock().unwrap().is_empty());

    // Five redirects are followed; the final URL is reported.
    let f = fetch::fetch(
        &format!("http://{}/hop5", a.addr),
        ProxyAccept::Html,
        &policy,
    )
    .await
    .unwrap();
    assert_eq!(f.url, format!("http://{}/hop0", a.addr));
    // A sixth is not.
    let r = fetch::fetch(
        &format!("http://{}/hop6", a.addr),
        ProxyAccept::Html,
        &policy,
    )
    .await;
    assert!(matches!(r, Err(FetchError::Redirect(_))), "{r:?}");
    let r = fetch::fetch(
        &format!("http://{}/loop", a.addr),
        ProxyAccept::Html,
        &policy,
    )
    .await;
    assert_eq!(status(r), StatusCode::BadGateway);
    // Rule 4: a non-200 final status is a 502 naming the upstream status.
    let r = fetch::fetch(
        &format!("http://{}/gone", a.addr),
        ProxyAccept::Html,
        &policy,
    )
    .await;
    match r {
        Err(e @ FetchError::UpstreamStatus(404)) => {
            assert_eq!(e.status(), StatusCode::BadGateway);
            assert!(e.to_string().contains("404"));
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn content_type_and_size_rules() {
    let big_html = {
        let mut body = b"<html><title>big</title>".to_vec();
        body.resize(MAX_HTML_BYTES + 1000, b' ');
        response("200 OK", &[("Content-Type", "text/html")], &body)
    };
    let big_png = response(
        "200 OK",
        &[("Content-Type", "image/png")],
        &vec![0u8; 1_048_577],
    );
    let small_png = response("200 OK", &[("Content-Type", "image/png")], &[1, 2, 3]);
    let s = start(
        A,
        None,
        Arc::new(move |path: &str| match path {
            "/big.html" => big_html.clone(),
            "/big.png" => big_png.clone(),
            "/small.png" => small_png.clone(),
            "/json" => response("200 OK", &[("Content-Type", "application/json")], b"{}"),
            _ => html("t"),
        }),
    )
    .await;
    let p = exempt(&[A]);
    let u = |path: &str| format!("http://{}{path}", s.addr);
    let f = fetch::fetch(&u("/big.html"), ProxyAccept::Html, &p)
        .await
        .unwrap();
    assert!(f.truncated);
    assert_eq!(f.body.len(), MAX_HTML_BYTES);
    let r = fetch::fetch(&u("/big.png"), ProxyAccept::Image, &p).await;
    assert_eq!(status(r), StatusCode::PayloadTooLarge);
    let f = fetch::fetch(&u("/small.png"), ProxyAccept::Image, &p)
        .await
        .unwrap();
    assert_eq!(f.body, vec![1, 2, 3]);
    // Wrong type for what was asked: 415.
    let r = fetch::fetch(&u("/json"), ProxyAccept::Html, &p).await;
    assert_eq!(status(r), StatusCode::UnsupportedMediaType);
    let r = fetch::fetch(&u("/page"), ProxyAccept::Image, &p).await;
    assert_eq!(status(r), StatusCode::UnsupportedMediaType);
}

#[tokio::test]
async fn deadline_and_refused_connections() {
    // Accepts and never answers.
    let listener = TcpListener::bind((A, 0)).await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((s, _)) = listener.accept().await {
            held.push(s);
        }
    });
    let p = FetchPolicy {
        timeout: Duration::from_millis(300),
        ..exempt(&[A])
    };
    let started = std::time::Instant::now();
    let r = fetch::fetch(&format!("http://{addr}/"), ProxyAccept::Html, &p).await;
    assert_eq!(status(r), StatusCode::GatewayTimeout);
    assert!(started.elapsed() < Duration::from_secs(3));
    // A closed port: a connection failure is a 502.
    let closed = {
        let l = TcpListener::bind((A, 0)).await.unwrap();
        l.local_addr().unwrap()
    };
    let r = fetch::fetch(
        &format!("http://{closed}/"),
        ProxyAccept::Html,
        &exempt(&[A]),
    )
    .await;
    assert_eq!(status(r), StatusCode::BadGateway);
}

fn tls_server_config() -> (Arc<rustls::ServerConfig>, CertificateDer<'static>) {
    let ck = rcgen::generate_simple_self_signed(vec![A.to_string()]).unwrap();
    let der = ck.cert.der().clone();
    let key = PrivateKeyDer::Pkcs8(ck.signing_key.serialize_der().into());
    let cfg = rustls::ServerConfig::builder_with_provider(umbra_transport::tls::provider())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![der.clone()], key)
        .unwrap();
    (Arc::new(cfg), der)
}

#[tokio::test]
async fn https_needs_a_trusted_certificate() {
    let (cfg, der) = tls_server_config();
    let s = start(A, Some(cfg), Arc::new(|_: &str| html("Secure page"))).await;
    let url = format!("https://{}/", s.addr);
    // Not trusted by the web roots: a TLS failure is a 502.
    let r = fetch::fetch(&url, ProxyAccept::Html, &exempt(&[A])).await;
    assert_eq!(status(r), StatusCode::BadGateway);
    let p = FetchPolicy {
        extra_roots: vec![der],
        ..exempt(&[A])
    };
    let f = fetch::fetch(&url, ProxyAccept::Html, &p).await.unwrap();
    assert!(String::from_utf8_lossy(&f.body).contains("Secure page"));
    assert_eq!(
        s.seen.lock().unwrap().last().unwrap().header("user-agent"),
        Some(USER_AGENT)
    );
}
