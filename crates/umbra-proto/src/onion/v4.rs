//! v4 lsrpc (spec `onion.md` §8 and §7.2): the bencoded
//! `[meta_json, body?]` list a client encrypts to a server, and the
//! `[meta_json, body]` list the server encrypts back.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::OnionError;
use crate::bencode::{self, Value};

/// Encodes `l <len>:<meta> [<len>:<body>] e`; the body part is omitted
/// when `body` is `None`.
pub fn encode_v4_list(meta: &[u8], body: Option<&[u8]>) -> Vec<u8> {
    let mut items = vec![Value::bytes(meta.to_vec())];
    if let Some(b) = body {
        items.push(Value::bytes(b.to_vec()));
    }
    bencode::encode(&Value::List(items))
}

/// Decodes a bencoded list of one or two byte strings into
/// `(meta, body)`.
pub fn decode_v4_list(encoded: &[u8]) -> Result<(Vec<u8>, Option<Vec<u8>>), OnionError> {
    // The list and its two strings: anything longer is refused unparsed.
    let v = bencode::decode_at_most(encoded, 3).map_err(|e| match e {
        bencode::BencodeError::TooManyValues(_) => OnionError::V4("not a list of one or two items"),
        _ => OnionError::V4("not canonical bencode"),
    })?;
    let mut parts = match v {
        Value::List(items) if (1..=2).contains(&items.len()) => items.into_iter(),
        _ => return Err(OnionError::V4("not a list of one or two items")),
    };
    let mut next_bytes = || match parts.next() {
        Some(Value::Bytes(b)) => Ok(Some(b)),
        None => Ok(None),
        Some(_) => Err(OnionError::V4("list item is not a byte string")),
    };
    let meta = next_bytes()?.ok_or(OnionError::V4("empty list"))?;
    let body = next_bytes()?;
    Ok((meta, body))
}

/// A request from a client to a server (§8.1).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct V4Request {
    /// HTTP method (`GET`, `POST`, …).
    pub method: String,
    /// Path and query; starts with `/`.
    pub endpoint: String,
    /// Request headers.
    pub headers: BTreeMap<String, String>,
    /// Optional body.
    pub body: Option<Vec<u8>>,
}

#[derive(Serialize, Deserialize)]
struct RequestMeta {
    method: String,
    endpoint: String,
    #[serde(default)]
    headers: BTreeMap<String, String>,
}

impl V4Request {
    /// Encodes the request list; `meta_json` is
    /// `{"method","endpoint","headers"}` in that order.
    pub fn encode(&self) -> Result<Vec<u8>, OnionError> {
        if !self.endpoint.starts_with('/') {
            return Err(OnionError::V4("endpoint must start with /"));
        }
        let meta = serde_json::to_vec(&RequestMeta {
            method: self.method.clone(),
            endpoint: self.endpoint.clone(),
            headers: self.headers.clone(),
        })
        .map_err(|_| OnionError::V4("cannot serialise meta_json"))?;
        Ok(encode_v4_list(&meta, self.body.as_deref()))
    }

    /// Decodes a request list (what a server does after decrypting).
    /// `headers` may be absent; unknown meta keys are ignored.
    pub fn decode(encoded: &[u8]) -> Result<Self, OnionError> {
        let (meta, body) = decode_v4_list(encoded)?;
        let m: RequestMeta = serde_json::from_slice(&meta)
            .map_err(|_| OnionError::V4("meta_json is not a request object"))?;
        if !m.endpoint.starts_with('/') {
            return Err(OnionError::V4("endpoint must start with /"));
        }
        Ok(V4Request {
            method: m.method,
            endpoint: m.endpoint,
            headers: m.headers,
            body,
        })
    }
}

/// A server's reply (§7.2).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct V4Response {
    /// The HTTP-like status code.
    pub code: u16,
    /// Response headers, names in lower case.
    pub headers: BTreeMap<String, String>,
    /// The body (empty when the list has no second item).
    pub body: Vec<u8>,
}

#[derive(Serialize)]
struct ResponseMetaOut<'a> {
    code: u16,
    headers: &'a BTreeMap<String, String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pad: Option<String>,
}

#[derive(Deserialize)]
struct ResponseMetaIn {
    code: u16,
    #[serde(default)]
    headers: BTreeMap<String, String>,
}

impl V4Response {
    /// The response list with `meta_json = {"code","headers"[,"pad"]}`;
    /// `pad` is the number of `0` characters, `None` for no `"pad"` key.
    pub fn encode(&self, pad: Option<usize>) -> Result<Vec<u8>, OnionError> {
        Ok(encode_v4_list(&self.meta_json(pad)?, Some(&self.body)))
    }

    /// The `meta_json` text alone (see [`Self::encode`]).
    pub fn meta_json(&self, pad: Option<usize>) -> Result<Vec<u8>, OnionError> {
        serde_json::to_vec(&ResponseMetaOut {
            code: self.code,
            headers: &self.headers,
            pad: pad.map(super::pad::pad_string),
        })
        .map_err(|_| OnionError::V4("cannot serialise meta_json"))
    }

    /// Decodes a response list; `pad` and unknown meta keys are ignored,
    /// and header names are lower-cased.
    pub fn decode(encoded: &[u8]) -> Result<Self, OnionError> {
        let (meta, body) = decode_v4_list(encoded)?;
        let m: ResponseMetaIn = serde_json::from_slice(&meta)
            .map_err(|_| OnionError::V4("meta_json is not a response object"))?;
        Ok(V4Response {
            code: m.code,
            headers: m
                .headers
                .into_iter()
                .map(|(k, v)| (k.to_ascii_lowercase(), v))
                .collect(),
            body: body.unwrap_or_default(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn spec_example() {
        let meta = br#"{"method":"POST","endpoint":"/some/thing","headers":{"Some-Header":"a"}}"#;
        let enc = encode_v4_list(meta, Some(b"post body here"));
        assert_eq!(
            enc,
            br#"l72:{"method":"POST","endpoint":"/some/thing","headers":{"Some-Header":"a"}}14:post body heree"#
        );
        let req = V4Request::decode(&enc).expect("valid");
        assert_eq!(req.method, "POST");
        assert_eq!(req.endpoint, "/some/thing");
        assert_eq!(
            req.headers.get("Some-Header").map(String::as_str),
            Some("a")
        );
        assert_eq!(req.body.as_deref(), Some(&b"post body here"[..]));
        assert_eq!(req.encode().as_deref(), Ok(&enc[..]));
    }

    #[test]
    fn refusals() {
        assert_eq!(
            decode_v4_list(b"le"),
            Err(OnionError::V4("not a list of one or two items"))
        );
        assert_eq!(
            decode_v4_list(b"l1:a1:b1:ce"),
            Err(OnionError::V4("not a list of one or two items"))
        );
        assert_eq!(
            decode_v4_list(b"li1ee"),
            Err(OnionError::V4("list item is not a byte string"))
        );
        assert_eq!(
            decode_v4_list(b"l2:{}"),
            Err(OnionError::V4("not canonical bencode"))
        );
        assert_eq!(
            decode_v4_list(b"3:abc"),
            Err(OnionError::V4("not a list of one or two items"))
        );
        let rel = encode_v4_list(br#"{"method":"GET","endpoint":"x"}"#, None);
        assert_eq!(
            V4Request::decode(&rel),
            Err(OnionError::V4("endpoint must start with /"))
        );
        let bad = V4Request {
            method: "GET".into(),
            endpoint: "x".into(),
            headers: BTreeMap::new(),
            body: None,
        };
        assert_eq!(
            bad.encode(),
            Err(OnionError::V4("endpoint must start with /"))
        );
        assert!(V4Response::decode(&encode_v4_list(br#"{"code":"200"}"#, None)).is_err());
    }

    #[test]
    fn response_lowercases_and_ignores_pad() {
        let enc = encode_v4_list(
            br#"{"code":200,"headers":{"Content-Type":"text/plain"},"pad":"000"}"#,
            Some(b"hi"),
        );
        let r = V4Response::decode(&enc).expect("valid");
        assert_eq!(r.code, 200);
        assert_eq!(
            r.headers.get("content-type").map(String::as_str),
            Some("text/plain")
        );
        assert_eq!(r.body, b"hi");
        let no_body = V4Response::decode(&encode_v4_list(br#"{"code":404}"#, None)).expect("valid");
        assert!(no_body.body.is_empty() && no_body.headers.is_empty());
    }

    proptest! {
        #[test]
        fn list_round_trip(meta in proptest::collection::vec(any::<u8>(), 0..80),
                           body in proptest::option::of(proptest::collection::vec(any::<u8>(), 0..80))) {
            let enc = encode_v4_list(&meta, body.as_deref());
            prop_assert_eq!(decode_v4_list(&enc), Ok((meta, body)));
        }

        #[test]
        fn request_round_trip(method in "[A-Z]{1,7}", endpoint in "/[ -~]{0,30}",
                              headers in proptest::collection::btree_map("[A-Za-z-]{1,10}", "[ -~]{0,10}", 0..4),
                              body in proptest::option::of(proptest::collection::vec(any::<u8>(), 0..50))) {
            let r = V4Request { method, endpoint, headers, body };
            let enc = r.encode().map_err(|e| TestCaseError::fail(e.to_string()))?;
            prop_assert_eq!(V4Request::decode(&enc), Ok(r));
        }

        #[test]
        fn response_round_trip(code in 100u16..600, body in proptest::collection::vec(any::<u8>(), 0..50),
                               headers in proptest::collection::btree_map("[a-z-]{1,10}", "[ -~]{0,10}", 0..4),
                               pad in proptest::option::of(0usize..40)) {
            let r = V4Response { code, headers, body };
            let enc = r.encode(pad).map_err(|e| TestCaseError::fail(e.to_string()))?;
            prop_assert_eq!(V4Response::decode(&enc), Ok(r));
        }

        #[test]
        fn never_panics(b in proptest::collection::vec(any::<u8>(), 0..64)) {
            let _ = V4Request::decode(&b);
            let _ = V4Response::decode(&b);
        }
    }
}
