//! Storage RPC status codes (`storage-rpc.md` §10) and [`RpcError`], the
//! error every parsing and validation function of [`crate::rpc`] returns.
//!
//! An [`RpcError`] carries the HTTP status the node answers with and a short
//! text body. The text never contains secrets; it names the parameter or the
//! rule that failed so that clients can tell, e.g., which timestamp was off.

use std::fmt;

/// An HTTP status used by the storage RPC (§10).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum StatusCode {
    /// `200`: success (recursive methods: at least one member succeeded).
    Ok,
    /// `400`: malformed request (bad JSON, unknown method, wrong type, bad
    /// encoding, data over 76,800 bytes, unsupported prefix, …).
    BadRequest,
    /// `401`: signature missing or invalid, any subaccount failure, or a
    /// `pubkey_ed25519` that does not match the account.
    Unauthorized,
    /// `403`: TTL out of range.
    Forbidden,
    /// `404`: `delete` with `required: true` and nothing deleted.
    NotFound,
    /// `406`: clock problem (any tolerance of §4).
    NotAcceptable,
    /// `413`: request body over 10 MiB; `proxy_fetch` image too large.
    PayloadTooLarge,
    /// `415`: `proxy_fetch` content type not allowed.
    UnsupportedMediaType,
    /// `421`: the account is not in this node's swarm.
    MisdirectedRequest,
    /// `425`: never produced by storage nodes; clients treat it like `406`.
    TooEarly,
    /// `429`: rate limit reached.
    TooManyRequests,
    /// `500`: every swarm member failed, or a database error.
    InternalServerError,
    /// `502`: `proxy_fetch` upstream failure; onion next hop unknown.
    BadGateway,
    /// `503`: node not ready (no valid registry yet, or starting up).
    ServiceUnavailable,
    /// `504`: `proxy_fetch` or onion relay timeout.
    GatewayTimeout,
    /// `507`: the node's database is full.
    InsufficientStorage,
}

impl StatusCode {
    /// Every status of §10, in numeric order.
    pub const ALL: [StatusCode; 16] = [
        StatusCode::Ok,
        StatusCode::BadRequest,
        StatusCode::Unauthorized,
        StatusCode::Forbidden,
        StatusCode::NotFound,
        StatusCode::NotAcceptable,
        StatusCode::PayloadTooLarge,
        StatusCode::UnsupportedMediaType,
        StatusCode::MisdirectedRequest,
        StatusCode::TooEarly,
        StatusCode::TooManyRequests,
        StatusCode::InternalServerError,
        StatusCode::BadGateway,
        StatusCode::ServiceUnavailable,
        StatusCode::GatewayTimeout,
        StatusCode::InsufficientStorage,
    ];

    /// The numeric HTTP status.
    pub const fn code(self) -> u16 {
        match self {
            StatusCode::Ok => 200,
            StatusCode::BadRequest => 400,
            StatusCode::Unauthorized => 401,
            StatusCode::Forbidden => 403,
            StatusCode::NotFound => 404,
            StatusCode::NotAcceptable => 406,
            StatusCode::PayloadTooLarge => 413,
            StatusCode::UnsupportedMediaType => 415,
            StatusCode::MisdirectedRequest => 421,
            StatusCode::TooEarly => 425,
            StatusCode::TooManyRequests => 429,
            StatusCode::InternalServerError => 500,
            StatusCode::BadGateway => 502,
            StatusCode::ServiceUnavailable => 503,
            StatusCode::GatewayTimeout => 504,
            StatusCode::InsufficientStorage => 507,
        }
    }

    /// The status of a numeric code, if §10 defines it.
    pub fn from_code(code: u16) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.code() == code)
    }

    /// True for `200`.
    pub const fn is_success(self) -> bool {
        matches!(self, StatusCode::Ok)
    }

    /// True for the clock errors a client answers by resynchronising its
    /// network time (`406`, and `425` from other servers).
    pub const fn is_clock_error(self) -> bool {
        matches!(self, StatusCode::NotAcceptable | StatusCode::TooEarly)
    }

    /// The standard HTTP reason phrase.
    pub const fn reason(self) -> &'static str {
        match self {
            StatusCode::Ok => "OK",
            StatusCode::BadRequest => "Bad Request",
            StatusCode::Unauthorized => "Unauthorized",
            StatusCode::Forbidden => "Forbidden",
            StatusCode::NotFound => "Not Found",
            StatusCode::NotAcceptable => "Not Acceptable",
            StatusCode::PayloadTooLarge => "Payload Too Large",
            StatusCode::UnsupportedMediaType => "Unsupported Media Type",
            StatusCode::MisdirectedRequest => "Misdirected Request",
            StatusCode::TooEarly => "Too Early",
            StatusCode::TooManyRequests => "Too Many Requests",
            StatusCode::InternalServerError => "Internal Server Error",
            StatusCode::BadGateway => "Bad Gateway",
            StatusCode::ServiceUnavailable => "Service Unavailable",
            StatusCode::GatewayTimeout => "Gateway Timeout",
            StatusCode::InsufficientStorage => "Insufficient Storage",
        }
    }
}

impl fmt::Display for StatusCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.code(), self.reason())
    }
}

/// A refused request: the status the node answers with and its text body.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{status}: {message}")]
pub struct RpcError {
    /// The HTTP status.
    pub status: StatusCode,
    /// The short `text/plain` body: what failed. Never contains secrets.
    pub message: String,
}

impl RpcError {
    /// Builds an error.
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Self {
            status,
            message: message.into(),
        }
    }

    /// `400`: malformed request.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BadRequest, message)
    }

    /// `401`: authentication failed.
    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self::new(StatusCode::Unauthorized, message)
    }

    /// `403`: TTL out of range.
    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(StatusCode::Forbidden, message)
    }

    /// `406`: clock problem.
    pub fn not_acceptable(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NotAcceptable, message)
    }

    /// The numeric status.
    pub const fn code(&self) -> u16 {
        self.status.code()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_round_trip_and_are_distinct() {
        let mut seen = std::collections::HashSet::new();
        for s in StatusCode::ALL {
            assert!(seen.insert(s.code()), "duplicate code {}", s.code());
            assert_eq!(StatusCode::from_code(s.code()), Some(s));
        }
        assert_eq!(StatusCode::from_code(418), None);
        assert_eq!(StatusCode::from_code(0), None);
    }

    #[test]
    fn numeric_values_match_the_spec() {
        assert_eq!(StatusCode::BadRequest.code(), 400);
        assert_eq!(StatusCode::Unauthorized.code(), 401);
        assert_eq!(StatusCode::Forbidden.code(), 403);
        assert_eq!(StatusCode::NotAcceptable.code(), 406);
        assert_eq!(StatusCode::MisdirectedRequest.code(), 421);
        assert_eq!(StatusCode::InsufficientStorage.code(), 507);
        assert!(StatusCode::Ok.is_success());
        assert!(!StatusCode::NotFound.is_success());
        assert!(StatusCode::TooEarly.is_clock_error());
        assert!(StatusCode::NotAcceptable.is_clock_error());
        assert!(!StatusCode::Unauthorized.is_clock_error());
    }

    #[test]
    fn error_display_names_status_and_text() {
        let e = RpcError::not_acceptable("sig_timestamp too far from now");
        assert_eq!(e.code(), 406);
        assert_eq!(
            e.to_string(),
            "406 Not Acceptable: sig_timestamp too far from now"
        );
    }
}
