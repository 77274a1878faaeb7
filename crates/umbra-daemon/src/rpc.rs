//! JSON-RPC 2.0 framing of the daemon API (`docs/API.md`, "Framing"):
//! parsing one request line (a single request or a batch), the standard and
//! application error codes, typed access to by-name parameters, and the
//! response and notification objects.
//!
//! Pure: no I/O. The server ([`crate::server`]) reads lines and writes what
//! this module builds.

use serde_json::{Map, Value, json};
use umbra_proto::identity::AccountId;

/// Invalid JSON was received.
pub const PARSE_ERROR: i64 = -32700;
/// The JSON is not a valid request object.
pub const INVALID_REQUEST: i64 = -32600;
/// The method does not exist.
pub const METHOD_NOT_FOUND: i64 = -32601;
/// Invalid method parameters.
pub const INVALID_PARAMS: i64 = -32602;
/// An internal error of the daemon.
pub const INTERNAL_ERROR: i64 = -32603;
/// Application error: the network could not carry the request (retry later).
pub const NETWORK_ERROR: i64 = -32000;
/// Application error: the swarm refused the request.
pub const REFUSED: i64 = -32001;
/// Application error: the operation is not possible (blocked peer, unknown
/// message, …); the message says why.
pub const OPERATION_FAILED: i64 = -32002;
/// Application error: the local store failed.
pub const STORE_ERROR: i64 = -32003;

/// The longest request line accepted, in bytes (newline excluded).
pub const MAX_LINE: usize = 1 << 20;

/// A JSON-RPC error object.
#[derive(Debug, Clone, PartialEq)]
pub struct RpcError {
    /// The error code (see the constants of this module).
    pub code: i64,
    /// A human-readable message.
    pub message: String,
    /// Optional structured details.
    pub data: Option<Value>,
}

impl RpcError {
    /// An error without data.
    pub fn new(code: i64, message: impl Into<String>) -> Self {
        RpcError {
            code,
            message: message.into(),
            data: None,
        }
    }

    /// An invalid-params error.
    pub fn params(message: impl Into<String>) -> Self {
        Self::new(INVALID_PARAMS, message)
    }

    /// Adds structured details.
    pub fn with_data(mut self, data: Value) -> Self {
        self.data = Some(data);
        self
    }

    /// The JSON error object.
    pub fn to_json(&self) -> Value {
        let mut v = json!({"code": self.code, "message": self.message});
        if let Some(d) = &self.data {
            v["data"] = d.clone();
        }
        v
    }
}

/// One parsed request.
#[derive(Debug, Clone, PartialEq)]
pub struct Request {
    /// The id to echo; `None` for a notification (no response is sent).
    pub id: Option<Value>,
    /// The method name.
    pub method: String,
    /// The by-name parameters (empty when absent).
    pub params: Params,
}

/// One element of a request line: a request, or an invalid one to answer
/// with an error.
#[derive(Debug, Clone, PartialEq)]
pub enum Entry {
    /// A well-formed request.
    Call(Request),
    /// An invalid request: the id to answer with (`null` when unknown) and why.
    Invalid {
        /// The id to echo.
        id: Value,
        /// The error.
        error: RpcError,
    },
}

/// A parsed request line.
#[derive(Debug, Clone, PartialEq)]
pub enum Parsed {
    /// One request object.
    Single(Entry),
    /// A batch (a non-empty array): answered with an array.
    Batch(Vec<Entry>),
}

/// Parses one request line. `Err` is a whole-line error, answered with one
/// response whose id is `null`: [`PARSE_ERROR`] for invalid JSON,
/// [`INVALID_REQUEST`] for an empty batch.
pub fn parse(line: &[u8]) -> Result<Parsed, RpcError> {
    let v: Value = serde_json::from_slice(line)
        .map_err(|e| RpcError::new(PARSE_ERROR, format!("parse error: {e}")))?;
    match v {
        Value::Array(items) if items.is_empty() => Err(RpcError::new(
            INVALID_REQUEST,
            "invalid request: empty batch",
        )),
        Value::Array(items) => Ok(Parsed::Batch(items.into_iter().map(entry).collect())),
        other => Ok(Parsed::Single(entry(other))),
    }
}

fn invalid(id: Value, why: &str) -> Entry {
    Entry::Invalid {
        id,
        error: RpcError::new(INVALID_REQUEST, format!("invalid request: {why}")),
    }
}

fn entry(v: Value) -> Entry {
    let Value::Object(mut obj) = v else {
        return invalid(Value::Null, "a request must be a JSON object");
    };
    let id = match obj.remove("id") {
        None => None,
        Some(id @ (Value::Null | Value::String(_) | Value::Number(_))) => Some(id),
        Some(_) => return invalid(Value::Null, "\"id\" must be a string, a number or null"),
    };
    let echo = id.clone().unwrap_or(Value::Null);
    if obj.get("jsonrpc").and_then(Value::as_str) != Some("2.0") {
        return invalid(echo, "\"jsonrpc\" must be \"2.0\"");
    }
    let method = match obj.remove("method") {
        Some(Value::String(m)) => m,
        _ => return invalid(echo, "\"method\" must be a string"),
    };
    let params = match obj.remove("params") {
        None | Some(Value::Null) => Map::new(),
        Some(Value::Object(m)) => m,
        Some(Value::Array(a)) if a.is_empty() => Map::new(),
        Some(Value::Array(_)) => {
            return Entry::Invalid {
                id: echo,
                error: RpcError::params("params must be an object (by-name parameters)"),
            };
        }
        Some(_) => return invalid(echo, "\"params\" must be an object or an array"),
    };
    if let Some(k) = obj.keys().find(|k| k.as_str() != "jsonrpc") {
        return invalid(echo, &format!("unknown member {k:?}"));
    }
    Entry::Call(Request {
        id,
        method,
        params: Params(params),
    })
}

/// A success response.
pub fn response(id: Value, result: Value) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "result": result})
}

/// An error response.
pub fn error_response(id: Value, error: &RpcError) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "error": error.to_json()})
}

/// A notification (server → client, no id).
pub fn notification(method: &str, params: Value) -> Value {
    json!({"jsonrpc": "2.0", "method": method, "params": params})
}

/// By-name parameters with typed getters; every getter fails with
/// [`INVALID_PARAMS`] naming the parameter.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Params(pub Map<String, Value>);

impl Params {
    /// Refuses parameters outside `known` (catches typos).
    pub fn only(&self, known: &[&str]) -> Result<(), RpcError> {
        match self.0.keys().find(|k| !known.contains(&k.as_str())) {
            Some(k) if known.is_empty() => Err(RpcError::params(format!(
                "unknown parameter {k:?} (this method takes none)"
            ))),
            Some(k) => Err(RpcError::params(format!(
                "unknown parameter {k:?} (expected: {})",
                known.join(", ")
            ))),
            None => Ok(()),
        }
    }

    fn get(&self, name: &str) -> Option<&Value> {
        self.0.get(name).filter(|v| !v.is_null())
    }

    /// A required string.
    pub fn str(&self, name: &str) -> Result<&str, RpcError> {
        match self.get(name) {
            Some(Value::String(s)) => Ok(s),
            Some(_) => Err(RpcError::params(format!("{name:?} must be a string"))),
            None => Err(RpcError::params(format!("missing parameter {name:?}"))),
        }
    }

    /// An optional unsigned integer.
    pub fn opt_u64(&self, name: &str) -> Result<Option<u64>, RpcError> {
        match self.get(name) {
            None => Ok(None),
            Some(v) => v.as_u64().map(Some).ok_or_else(|| {
                RpcError::params(format!("{name:?} must be a non-negative integer"))
            }),
        }
    }

    /// A required unsigned integer.
    pub fn u64(&self, name: &str) -> Result<u64, RpcError> {
        self.opt_u64(name)?
            .ok_or_else(|| RpcError::params(format!("missing parameter {name:?}")))
    }

    /// A required on/off value: a boolean, or "on"/"off"/"true"/"false".
    pub fn switch(&self, name: &str) -> Result<bool, RpcError> {
        match self.get(name) {
            Some(Value::Bool(b)) => Ok(*b),
            Some(Value::String(s)) if matches!(s.as_str(), "on" | "true") => Ok(true),
            Some(Value::String(s)) if matches!(s.as_str(), "off" | "false") => Ok(false),
            Some(_) => Err(RpcError::params(format!(
                "{name:?} must be true/false or \"on\"/\"off\""
            ))),
            None => Err(RpcError::params(format!("missing parameter {name:?}"))),
        }
    }

    /// A required account ID (66 hex characters).
    pub fn account(&self, name: &str) -> Result<AccountId, RpcError> {
        let s = self.str(name)?;
        s.parse().map_err(|_| {
            RpcError::params(format!(
                "{name:?} is not an account ID (66 hex characters starting 05)"
            ))
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]

    use super::*;
    use proptest::prelude::*;

    fn single(line: &str) -> Entry {
        match parse(line.as_bytes()).unwrap() {
            Parsed::Single(e) => e,
            Parsed::Batch(_) => panic!("batch"),
        }
    }

    fn invalid_code(line: &str) -> (Value, i64) {
        match single(line) {
            Entry::Invalid { id, error } => (id, error.code),
            Entry::Call(r) => panic!("accepted {r:?}"),
        }
    }

    #[test]
    fn parses_a_request() {
        let e = single(r#"{"jsonrpc":"2.0","id":7,"method":"send","params":{"to":"x"}}"#);
        let Entry::Call(r) = e else { panic!() };
        assert_eq!(r.id, Some(json!(7)));
        assert_eq!(r.method, "send");
        assert_eq!(r.params.str("to").unwrap(), "x");
    }

    #[test]
    fn notification_has_no_id_and_null_id_is_kept() {
        let Entry::Call(r) = single(r#"{"jsonrpc":"2.0","method":"conversations"}"#) else {
            panic!()
        };
        assert_eq!(r.id, None);
        assert!(r.params.0.is_empty());
        let Entry::Call(r) = single(r#"{"jsonrpc":"2.0","id":null,"method":"m","params":[]}"#)
        else {
            panic!()
        };
        assert_eq!(r.id, Some(Value::Null));
    }

    #[test]
    fn malformed_json_is_a_parse_error() {
        for bad in ["{", "not json", "", "{\"jsonrpc\":\"2.0\",}"] {
            assert_eq!(
                parse(bad.as_bytes()).unwrap_err().code,
                PARSE_ERROR,
                "{bad}"
            );
        }
    }

    #[test]
    fn invalid_requests_are_refused_with_their_id() {
        assert_eq!(
            invalid_code(r#"{"id":1,"method":"m"}"#),
            (json!(1), INVALID_REQUEST)
        );
        assert_eq!(
            invalid_code(r#"{"jsonrpc":"1.0","id":"a","method":"m"}"#),
            (json!("a"), INVALID_REQUEST)
        );
        assert_eq!(
            invalid_code(r#"{"jsonrpc":"2.0","id":2,"method":5}"#),
            (json!(2), INVALID_REQUEST)
        );
        assert_eq!(
            invalid_code(r#"{"jsonrpc":"2.0","id":{},"method":"m"}"#),
            (Value::Null, INVALID_REQUEST)
        );
        assert_eq!(invalid_code("42"), (Value::Null, INVALID_REQUEST));
        assert_eq!(
            invalid_code(r#"{"jsonrpc":"2.0","id":3,"method":"m","params":"x"}"#),
            (json!(3), INVALID_REQUEST)
        );
        assert_eq!(
            invalid_code(r#"{"jsonrpc":"2.0","id":3,"method":"m","extra":1}"#),
            (json!(3), INVALID_REQUEST)
        );
        assert_eq!(
            invalid_code(r#"{"jsonrpc":"2.0","id":4,"method":"m","params":[1]}"#),
            (json!(4), INVALID_PARAMS)
        );
    }

    #[test]
    fn batches() {
        assert_eq!(parse(b"[]").unwrap_err().code, INVALID_REQUEST);
        let Parsed::Batch(v) = parse(br#"[{"jsonrpc":"2.0","id":1,"method":"a"}, 5]"#).unwrap()
        else {
            panic!()
        };
        assert!(matches!(v[0], Entry::Call(_)));
        assert!(matches!(v[1], Entry::Invalid { .. }));
    }

    #[test]
    fn params_getters_name_the_parameter() {
        let p = Params(
            json!({"s": "x", "n": 5, "neg": -1, "b": true, "on": "off", "bad": "maybe"})
                .as_object()
                .unwrap()
                .clone(),
        );
        assert_eq!(p.u64("n").unwrap(), 5);
        assert!(p.u64("neg").unwrap_err().message.contains("\"neg\""));
        assert!(p.u64("missing").unwrap_err().message.contains("missing"));
        assert!(p.switch("b").unwrap());
        assert!(!p.switch("on").unwrap());
        assert_eq!(p.switch("bad").unwrap_err().code, INVALID_PARAMS);
        assert!(p.str("n").unwrap_err().message.contains("string"));
        assert_eq!(p.account("s").unwrap_err().code, INVALID_PARAMS);
        assert!(
            p.only(&["s"])
                .unwrap_err()
                .message
                .contains("unknown parameter")
        );
        assert!(p.only(&["s", "n", "neg", "b", "on", "bad"]).is_ok());
    }

    #[test]
    fn responses_echo_the_id() {
        assert_eq!(
            response(json!("x"), json!(1)),
            json!({"jsonrpc":"2.0","id":"x","result":1})
        );
        let e = RpcError::new(METHOD_NOT_FOUND, "nope").with_data(json!({"k": 1}));
        assert_eq!(
            error_response(json!(2), &e),
            json!({"jsonrpc":"2.0","id":2,"error":{"code":-32601,"message":"nope","data":{"k":1}}})
        );
    }

    proptest! {
        /// Any line parses or is refused; never a panic.
        #[test]
        fn never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = parse(&bytes);
        }

        /// A request built from an id and method round-trips.
        #[test]
        fn request_round_trip(id in any::<i64>(), method in "[a-z.]{1,20}", text in ".*") {
            let line = json!({"jsonrpc":"2.0","id":id,"method":method,"params":{"text":text}}).to_string();
            let Parsed::Single(Entry::Call(r)) = parse(line.as_bytes()).unwrap() else {
                panic!("refused")
            };
            prop_assert_eq!(r.id, Some(json!(id)));
            prop_assert_eq!(r.method, method);
            prop_assert_eq!(r.params.str("text").unwrap(), text.as_str());
        }
    }
}
