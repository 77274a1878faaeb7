//! Categories of `rpc.json`: `message_hash`, `request_signature` and
//! `node_response_signature` (storage-rpc §2.4, §7, §8.3), run through
//! `umbra_proto::rpc`.

use serde_json::{Map, Value};
use umbra_crypto::{Ed25519Keypair, Ed25519Public};
use umbra_proto::identity::AccountId;
use umbra_proto::rpc::encoding::Signature;
use umbra_proto::rpc::namespace::{Namespace, NamespaceSel};
use umbra_proto::rpc::sign::{self, ExpireMode};
use umbra_proto::rpc::{message_hash, node_sig};

use crate::input::{Input, Malformed, dec_u64, hx};
use crate::{Category, CheckError, Output};

/// The categories of this file.
pub(crate) const CATEGORIES: &[Category] = &[
    Category {
        name: "message_hash",
        inputs: &["pubkey", "namespace", "data"],
        outputs: Some(&["hash"]),
        run: message_hash_run,
    },
    Category {
        name: "request_signature",
        inputs: &["method", "params", "ed25519_seed"],
        outputs: Some(&["signed_message", "signature"]),
        run: request_signature,
    },
    Category {
        name: "node_response_signature",
        inputs: &[
            "method",
            "account_id",
            "node_ed25519_pk",
            "expiry",
            "requested",
            "updated",
            "unchanged",
            "signature",
        ],
        outputs: Some(&["signed_message"]),
        run: node_response_signature,
    },
];

fn account(key: &str, b: &[u8]) -> Result<AccountId, CheckError> {
    if b.len() != 33 {
        return Err(Malformed::new(key, "must be 33 bytes").into());
    }
    AccountId::from_bytes(b).map_err(CheckError::refused)
}

fn namespace(key: &str, v: &Value) -> Result<Namespace, Malformed> {
    v.as_i64()
        .and_then(|n| i16::try_from(n).ok())
        .map(Namespace)
        .ok_or_else(|| Malformed::new(key, "not a namespace number"))
}

fn namespace_sel(key: &str, v: &Value) -> Result<NamespaceSel, Malformed> {
    match v {
        Value::String(s) if s == "all" => Ok(NamespaceSel::All),
        _ => namespace(key, v).map(NamespaceSel::One),
    }
}

fn message_hash_run(input: &Input) -> Result<Output, CheckError> {
    let acc = account("pubkey", &input.bytes("pubkey")?)?;
    let ns = namespace("namespace", input.value("namespace")?)?;
    let data = input.bytes("data")?;
    let h = message_hash(&acc, ns, &data);
    let mut out = Map::new();
    out.insert("hash".into(), Value::String(h.to_string()));
    Ok(out)
}

fn texts(key: &str, v: &Value) -> Result<Vec<String>, Malformed> {
    v.as_array()
        .ok_or_else(|| Malformed::new(key, "not an array"))?
        .iter()
        .map(|h| {
            h.as_str()
                .map(str::to_string)
                .ok_or_else(|| Malformed::new(key, "not a list of strings"))
        })
        .collect()
}

fn u64s(key: &str, v: &Value) -> Result<Vec<u64>, Malformed> {
    v.as_array()
        .ok_or_else(|| Malformed::new(key, "not an array"))?
        .iter()
        .map(|e| {
            e.as_str()
                .ok_or_else(|| Malformed::new(key, "not a u64 string"))
                .and_then(|s| dec_u64(key, s))
        })
        .collect()
}

fn request_signature(input: &Input) -> Result<Output, CheckError> {
    let method = input.str("method")?;
    let p = input.object("params")?;
    let seed: [u8; 32] = input
        .bytes("ed25519_seed")?
        .try_into()
        .map_err(|_| Malformed::new("ed25519_seed", "must be 32 bytes"))?;
    let signed = match method {
        "store" => sign::store_string(
            namespace("namespace", p.value("namespace")?)?,
            p.u64("sig_timestamp")?,
        ),
        "retrieve" => sign::retrieve_string(
            namespace("namespace", p.value("namespace")?)?,
            p.u64("timestamp")?,
        ),
        "delete" => sign::delete_string(&texts("messages", p.value("messages")?)?),
        "delete_all" => sign::delete_all_string(
            namespace_sel("namespace", p.value("namespace")?)?,
            p.u64("timestamp")?,
        ),
        "delete_before" => sign::delete_before_string(
            namespace_sel("namespace", p.value("namespace")?)?,
            p.u64("before")?,
        ),
        "expire_all" => sign::expire_all_string(
            namespace_sel("namespace", p.value("namespace")?)?,
            p.u64("expiry")?,
        ),
        "expire" => {
            let mode = ExpireMode::from_text(p.str("mode")?)
                .ok_or_else(|| Malformed::new("mode", "not \"\", shorten or extend"))?;
            sign::expire_string(
                mode,
                &u64s("expiry", p.value("expiry")?)?,
                &texts("messages", p.value("messages")?)?,
            )
        }
        "get_expiries" => sign::get_expiries_string(
            p.u64("timestamp")?,
            &texts("messages", p.value("messages")?)?,
        ),
        "monitor" => {
            let acc = account("pubkey", &p.bytes("pubkey")?)?;
            let nss = p
                .array("namespaces")?
                .iter()
                .map(|v| namespace("namespaces", v))
                .collect::<Result<Vec<_>, _>>()?;
            sign::monitor_string(&acc, p.u64("timestamp")?, p.bool("want_data")?, &nss)
        }
        other => return Err(Malformed::new("method", format!("unknown method {other:?}")).into()),
    };
    let kp = Ed25519Keypair::from_seed(&seed);
    let sig = node_sig::sign_node(&kp, &signed);
    let mut out = Map::new();
    out.insert("signed_message".into(), hx(&signed));
    out.insert("signature".into(), hx(sig.0));
    Ok(out)
}

fn node_response_signature(input: &Input) -> Result<Output, CheckError> {
    if input.str("method")? != "expire" {
        return Err(Malformed::new("method", "only expire responses are defined").into());
    }
    let acc = account("account_id", &input.bytes("account_id")?)?;
    let pk = Ed25519Public::from_slice(&input.bytes("node_ed25519_pk")?)
        .map_err(|_| Malformed::new("node_ed25519_pk", "must be 32 bytes"))?;
    let expiry = u64s("expiry", input.value("expiry")?)?;
    let requested = texts("requested", input.value("requested")?)?;
    let updated = texts("updated", input.value("updated")?)?;
    let unchanged = input
        .object("unchanged")?
        .map()
        .iter()
        .map(|(h, e)| {
            let e = e
                .as_str()
                .ok_or_else(|| Malformed::new("unchanged", "values are u64 strings"))?;
            Ok((h.clone(), dec_u64("unchanged", e)?))
        })
        .collect::<Result<Vec<(String, u64)>, Malformed>>()?;
    let sig: [u8; 64] = input
        .bytes("signature")?
        .try_into()
        .map_err(|_| Malformed::new("signature", "must be 64 bytes"))?;
    let signed = node_sig::expire_node_string(
        &acc,
        &expiry,
        requested.iter().map(String::as_str),
        updated.iter().map(String::as_str),
        unchanged.iter().map(|(h, e)| (h.as_str(), *e)),
    );
    node_sig::verify_node(&pk, &signed, &Signature(sig), "expire").map_err(CheckError::refused)?;
    let mut out = Map::new();
    out.insert("signed_message".into(), hx(&signed));
    Ok(out)
}
