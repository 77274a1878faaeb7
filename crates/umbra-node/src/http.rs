//! The node's HTTP surface: the routers of the public HTTPS port and of the
//! loopback admin port, the mapping of RPC replies to HTTP responses, and the
//! request-body deadline of the public port.
//!
//! The transport bounds the TLS handshake (10 s) and the request head (30 s)
//! but not the body, so a client announcing a large body and sending it a
//! byte at a time would hold its connection for ever (slowloris). Every
//! public route therefore reads its body ([`TimedBytes`]) under one overall
//! deadline,
//! `body_read_timeout_ms` of the node's configuration ([`BODY_READ_TIMEOUT`]
//! by default), counted from the end of the head;
//! when it passes the request is answered `408` and the connection closed.

use std::net::SocketAddr;
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{ConnectInfo, DefaultBodyLimit, FromRequest, Request, State};
use axum::http::header::CONTENT_TYPE;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use umbra_proto::rpc::limits::MAX_BODY_BYTES;
use umbra_proto::rpc::node_req::{
    MAX_PUSH_BODY, PATH_ONION, PATH_PING, PATH_PUSH, PATH_SINCE, PATH_SWARM,
};
use umbra_proto::rpc::{StatusCode, Via};

use crate::onion;
use crate::peer;
use crate::rpc::{self, Reply};
use crate::state::Node;

/// Default of `NodeConfig::body_read_timeout_ms`.
pub const BODY_READ_TIMEOUT: Duration = Duration::from_secs(60);

/// A request body read within the node's body deadline
/// (`NodeConfig::body_read_timeout_ms`): handlers of the public port take
/// their body as `TimedBytes`. A body not received in time is answered
/// `408` and its connection closed. The deadline costs nothing when the
/// body has already arrived with the head (no timer is armed then).
pub struct TimedBytes(pub Bytes);

impl FromRequest<Node> for TimedBytes {
    type Rejection = Response;

    async fn from_request(request: Request, node: &Node) -> Result<Self, Response> {
        let timeout = Duration::from_millis(node.config.body_read_timeout_ms);
        match tokio::time::timeout(timeout, Bytes::from_request(request, node)).await {
            Ok(Ok(body)) => Ok(TimedBytes(body)),
            Ok(Err(rejection)) => Err(rejection.into_response()),
            Err(_) => Err((
                axum::http::StatusCode::REQUEST_TIMEOUT,
                [
                    (CONTENT_TYPE, "text/plain; charset=utf-8"),
                    (axum::http::header::CONNECTION, "close"),
                ],
                format!("request body not received within {timeout:?}"),
            )
                .into_response()),
        }
    }
}

/// A short `text/plain` response.
pub fn text(status: StatusCode, body: String) -> Response {
    let code = axum::http::StatusCode::from_u16(status.code())
        .unwrap_or(axum::http::StatusCode::INTERNAL_SERVER_ERROR);
    (code, [(CONTENT_TYPE, "text/plain; charset=utf-8")], body).into_response()
}

/// An RPC reply as an HTTP response.
pub fn reply_response(reply: Reply) -> Response {
    match reply {
        Reply::Text(s, t) => text(s, t),
        Reply::Json(s, v) => {
            let code = axum::http::StatusCode::from_u16(s.code())
                .unwrap_or(axum::http::StatusCode::INTERNAL_SERVER_ERROR);
            (code, axum::Json(v)).into_response()
        }
    }
}

/// `POST /storage_rpc/v1`: a direct client request.
async fn storage_rpc(
    State(node): State<Node>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    TimedBytes(body): TimedBytes,
) -> Response {
    if !node.limiter.check(peer.ip()) {
        node.metrics.request("rate_limited", 429);
        return text(StatusCode::TooManyRequests, "rate limit reached".into());
    }
    reply_response(rpc::handle_body(&node, &body, Via::Direct).await)
}

async fn healthz(State(node): State<Node>) -> Response {
    let reg = node.registry();
    let body = serde_json::json!({
        "status": "ok",
        "ready": reg.is_ready(),
        "epoch": reg.epoch(),
        "pubkey_ed25519": hex::encode(node.public().as_bytes()),
    });
    axum::Json(body).into_response()
}

async fn metrics(State(node): State<Node>) -> Response {
    (
        [(CONTENT_TYPE, "text/plain; version=0.0.4")],
        node.metrics.encode(),
    )
        .into_response()
}

/// `POST /admin/registry` (admin port): offer a registry document.
async fn admin_registry(State(node): State<Node>, body: Bytes) -> Response {
    match node.offer_registry(&body) {
        Ok(Some(epoch)) => text(StatusCode::Ok, format!("adopted epoch {epoch}")),
        Ok(None) => text(
            StatusCode::Ok,
            format!("kept epoch {}", node.registry().epoch()),
        ),
        Err(e) => text(StatusCode::BadRequest, format!("registry refused: {e}")),
    }
}

/// The router of the public HTTPS port.
pub fn public_router(node: Node) -> Router {
    Router::new()
        .route(
            "/storage_rpc/v1",
            post(storage_rpc).layer(DefaultBodyLimit::max(MAX_BODY_BYTES)),
        )
        .route(
            PATH_SWARM,
            post(peer::swarm).layer(DefaultBodyLimit::max(MAX_BODY_BYTES)),
        )
        .route(
            PATH_PUSH,
            post(peer::push).layer(DefaultBodyLimit::max(MAX_PUSH_BODY + 1024)),
        )
        .route(
            onion::PATH_ENTRY,
            post(onion::entry).layer(DefaultBodyLimit::max(onion::MAX_ONION_BODY)),
        )
        .route(
            PATH_ONION,
            post(onion::relay).layer(DefaultBodyLimit::max(onion::MAX_ONION_BODY)),
        )
        .route(PATH_SINCE, post(peer::since))
        .route(PATH_PING, post(peer::ping))
        .route("/healthz", get(healthz))
        .with_state(node)
}

/// The router of the loopback admin port.
pub fn admin_router(node: Node) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics))
        .route(
            "/admin/registry",
            post(admin_registry).layer(DefaultBodyLimit::max(16 * 1024 * 1024)),
        )
        .with_state(node)
}
