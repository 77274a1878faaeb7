//! Routing JSON (spec `onion.md` §4): what a node does with a decrypted
//! layer. `"headers"` present → final destination (§4.1); else `"host"`
//! present → proxy to a server (§4.2); else relay to the next node (§4.3).
//!
//! [`parse_layer`] only checks types (it is the `onion_layer_parse`
//! operation); [`peel`](super::peel()) additionally validates proxy URLs.

use serde_json::{Map, Value};
use umbra_crypto::X25519Public;

use super::{EncType, OnionError, unframe};

/// Options of a final-destination layer (§4.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct DeliverOptions {
    /// `true`: the reply embeds the result as a JSON value (default `false`).
    pub json: bool,
    /// `false`: the reply body is raw ciphertext (default `true`).
    pub base64: bool,
}

impl Default for DeliverOptions {
    /// The protocol defaults: `json: false`, `base64: true`.
    fn default() -> Self {
        DeliverOptions {
            json: false,
            base64: true,
        }
    }
}

/// Proxy-to-server fields as sent (§4.2), types checked but not yet the
/// URL rules (see [`ProxyRequest::new`](super::ProxyRequest::new)).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProxyRoute {
    /// `host` (text).
    pub host: String,
    /// `target` (text, required).
    pub target: String,
    /// `protocol` (text, default `"https"`).
    pub protocol: String,
    /// `port` (default 443).
    pub port: u16,
}

/// Relay-to-node fields (§4.3).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RelayRoute {
    /// The next node's Ed25519 key (not validated here: the registry lookup
    /// decides whether it names a node).
    pub destination: [u8; 32],
    /// The client's ephemeral X25519 key for the next layer.
    pub ephemeral_key: X25519Public,
    /// The next layer's cipher (default `aes-gcm`).
    pub enc_type: EncType,
}

/// The role a decrypted layer gives the node.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Route {
    /// Final destination: the blob is a storage RPC request.
    Deliver(DeliverOptions),
    /// Forward the whole decrypted container to a server.
    Proxy(ProxyRoute),
    /// Forward the blob to the next node.
    Relay(RelayRoute),
}

/// A decrypted layer: its container blob and its route.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Layer<'a> {
    /// The container's blob: the RPC request (deliver), the server's
    /// ciphertext (proxy) or the next node's ciphertext (relay).
    pub blob: &'a [u8],
    /// What to do with it.
    pub route: Route,
}

/// Parses a decrypted layer `u32_le(N) ‖ blob ‖ json` and its routing JSON.
pub fn parse_layer(plaintext: &[u8]) -> Result<Layer<'_>, OnionError> {
    let c = unframe(plaintext)?;
    let j = &c.json;
    let route = if j.contains_key("headers") {
        Route::Deliver(DeliverOptions {
            json: opt_bool(j, "json")?.unwrap_or(false),
            base64: opt_bool(j, "base64")?.unwrap_or(true),
        })
    } else if j.contains_key("host") {
        let host = opt_str(j, "host")?.unwrap_or_default().to_owned();
        let target = opt_str(j, "target")?
            .ok_or(OnionError::MissingField("target"))?
            .to_owned();
        let protocol = opt_str(j, "protocol")?.unwrap_or("https").to_owned();
        let port = match j.get("port") {
            None => 443,
            Some(v) => {
                v.as_u64()
                    .and_then(|p| u16::try_from(p).ok())
                    .ok_or(OnionError::BadField {
                        field: "port",
                        why: "not an integer 0..65535",
                    })?
            }
        };
        Route::Proxy(ProxyRoute {
            host,
            target,
            protocol,
            port,
        })
    } else {
        let destination = hex32(j, "destination")?;
        let ephemeral_key = X25519Public::from_bytes(hex32(j, "ephemeral_key")?);
        let enc_type = EncType::from_json(j)?;
        Route::Relay(RelayRoute {
            destination,
            ephemeral_key,
            enc_type,
        })
    };
    Ok(Layer {
        blob: c.blob,
        route,
    })
}

fn opt_bool(j: &Map<String, Value>, field: &'static str) -> Result<Option<bool>, OnionError> {
    match j.get(field) {
        None => Ok(None),
        Some(Value::Bool(b)) => Ok(Some(*b)),
        Some(_) => Err(OnionError::BadField {
            field,
            why: "not a boolean",
        }),
    }
}

fn opt_str<'a>(
    j: &'a Map<String, Value>,
    field: &'static str,
) -> Result<Option<&'a str>, OnionError> {
    match j.get(field) {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(OnionError::BadField {
            field,
            why: "not a string",
        }),
    }
}

/// A required field holding 64 hex digits (either case).
pub(crate) fn hex32(j: &Map<String, Value>, field: &'static str) -> Result<[u8; 32], OnionError> {
    let s = opt_str(j, field)?.ok_or(OnionError::MissingField(field))?;
    let bad = OnionError::BadField {
        field,
        why: "not 64 hex digits",
    };
    if s.len() != 64 {
        return Err(bad);
    }
    let mut out = [0u8; 32];
    hex::decode_to_slice(s, &mut out).map_err(|_| bad)?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::onion::frame;

    fn layer(json: &str) -> Result<Route, OnionError> {
        let buf = frame(b"inner", json.as_bytes())?;
        let l = parse_layer(&buf)?;
        assert_eq!(l.blob, b"inner");
        Ok(l.route)
    }

    const K1: &str = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";
    const K2: &str = "0101010101010101010101010101010101010101010101010101010101010101";

    #[test]
    fn deliver() {
        assert_eq!(
            layer(r#"{"headers":""}"#),
            Ok(Route::Deliver(DeliverOptions::default()))
        );
        assert_eq!(
            layer(r#"{"headers":{},"json":true,"base64":false,"pad":"000"}"#),
            Ok(Route::Deliver(DeliverOptions {
                json: true,
                base64: false
            }))
        );
        assert_eq!(
            layer(r#"{"headers":"","json":1}"#),
            Err(OnionError::BadField {
                field: "json",
                why: "not a boolean"
            })
        );
    }

    #[test]
    fn proxy() {
        assert_eq!(
            layer(r#"{"host":"h","target":"/t","port":8080,"protocol":"http"}"#),
            Ok(Route::Proxy(ProxyRoute {
                host: "h".into(),
                target: "/t".into(),
                protocol: "http".into(),
                port: 8080
            }))
        );
        assert_eq!(
            layer(r#"{"host":"h"}"#),
            Err(OnionError::MissingField("target"))
        );
        for bad in [
            r#"{"host":"h","target":"/t","port":65536}"#,
            r#"{"host":"h","target":"/t","port":-1}"#,
            r#"{"host":"h","target":"/t","port":"443"}"#,
            r#"{"host":"h","target":"/t","port":1.5}"#,
        ] {
            assert!(
                matches!(layer(bad), Err(OnionError::BadField { field: "port", .. })),
                "{bad}"
            );
        }
        assert!(matches!(
            layer(r#"{"host":1,"target":"/t"}"#),
            Err(OnionError::BadField { field: "host", .. })
        ));
    }

    #[test]
    fn relay() {
        let r = layer(&format!(
            r#"{{"destination":"{K1}","ephemeral_key":"{K2}","enc_type":"xchacha20"}}"#
        ));
        assert_eq!(
            r,
            Ok(Route::Relay(RelayRoute {
                destination: [0xaa; 32],
                ephemeral_key: X25519Public::from_bytes([1; 32]),
                enc_type: EncType::XChaCha20
            }))
        );
        let r = layer(&format!(
            r#"{{"destination":"{K1}","ephemeral_key":"{K2}"}}"#
        ));
        assert!(matches!(
            r,
            Ok(Route::Relay(RelayRoute {
                enc_type: EncType::AesGcm,
                ..
            }))
        ));
        assert_eq!(
            layer(&format!(r#"{{"destination":"{K1}"}}"#)),
            Err(OnionError::MissingField("ephemeral_key"))
        );
        assert_eq!(
            layer(&format!(r#"{{"ephemeral_key":"{K2}"}}"#)),
            Err(OnionError::MissingField("destination"))
        );
        assert!(matches!(
            layer(&format!(
                r#"{{"destination":"{K1}","ephemeral_key":"{K2}0"}}"#
            )),
            Err(OnionError::BadField {
                field: "ephemeral_key",
                ..
            })
        ));
        assert!(matches!(
            layer(&format!(
                r#"{{"destination":"{K1}","ephemeral_key":"{}"}}"#,
                "zz".repeat(32)
            )),
            Err(OnionError::BadField {
                field: "ephemeral_key",
                ..
            })
        ));
        assert_eq!(
            layer(&format!(
                r#"{{"destination":"{K1}","ephemeral_key":"{K2}","enc_type":"aes-cbc"}}"#
            )),
            Err(OnionError::UnsupportedEncType("aes-cbc".into()))
        );
    }
}
