//! Time tolerances (`storage-rpc.md` §4), limits (§6) and the `retrieve`
//! size budget (§9.2), as constants and pure check functions that return
//! the status code the spec assigns (`400`, `403`, `406`).
//!
//! These functions are the single source of truth for the node; the
//! per-method validators in [`super::validate`] call them.

use super::namespace::Namespace;
use super::status::RpcError;

/// One day in milliseconds.
pub const DAY_MS: u64 = 86_400_000;

/// `store.timestamp` may be at most this far in the future (§4).
pub const STORE_TOLERANCE_MS: u64 = 10_000;
/// A `store` expiry may be at most this far in the past (§4).
pub const STORE_EXPIRY_TOLERANCE_MS: u64 = 10_000;
/// Signature timestamps must be within now ± this (§4).
pub const SIGNATURE_TOLERANCE_MS: u64 = 60_000;
/// Signature timestamps on a copy forwarded by a swarm peer (§4, §8.1).
pub const FORWARDED_SIGNATURE_TOLERANCE_MS: u64 = 70_000;
/// `delete_before.before` may be at most this far in the future (§4).
pub const DELETE_BEFORE_TOLERANCE_MS: u64 = 60_000;
/// Every `expire` expiry may be at most this far in the past (§4).
pub const EXPIRE_TOLERANCE_MS: u64 = 60_000;
/// `expire_all.expiry` may be at most this far in the past (§4).
pub const EXPIRE_ALL_TOLERANCE_MS: u64 = 60_000;
/// The same, on a forwarded copy (§4).
pub const FORWARDED_EXPIRE_ALL_TOLERANCE_MS: u64 = 70_000;

/// Timestamps below this are refused with `400` "timestamp must be in
/// milliseconds" (§3).
pub const MIN_TIMESTAMP_MS: u64 = 1_000_000_000;

/// Maximum decoded `data` size (§6, `400`).
pub const MAX_DATA_BYTES: usize = 76_800;
/// Maximum `data` length in base64 characters.
pub const MAX_DATA_BASE64_LEN: usize = 102_400;
/// Minimum TTL (§6, `403`).
pub const MIN_TTL_MS: u64 = 10_000;
/// Maximum TTL in public-inbox namespaces (§6, `403`).
pub const MAX_TTL_PUBLIC_MS: u64 = 14 * DAY_MS;
/// Maximum TTL in every other namespace (§6, `403`).
pub const MAX_TTL_MS: u64 = 30 * DAY_MS;
/// `expire` clamps expiries to at most now + this (§6, §9.6).
pub const MAX_EXPIRE_AHEAD_MS: u64 = 30 * DAY_MS;
/// Hashes per `delete`, `expire`, `get_expiries` (§6, `400`).
pub const MAX_HASHES: usize = 1_000;
/// Tokens per `revoke_subaccount` / `unrevoke_subaccount` (§6, `400`).
pub const MAX_TOKENS: usize = 50;
/// Subrequests per `batch` / `sequence` (§6, `400`).
pub const MAX_SUBREQUESTS: usize = 20;
/// Revoked tokens a node keeps per account, oldest dropped first (§2.3).
pub const MAX_REVOKED_TOKENS: usize = 256;
/// `RETRIEVE_MAX_SIZE` (§6, §9.2).
pub const RETRIEVE_MAX_SIZE: u64 = 7_800_000;
/// The `retrieve` budget when neither `max_count` nor `max_size` is given
/// (`max_size = −5`).
pub const RETRIEVE_DEFAULT_SIZE: u64 = RETRIEVE_MAX_SIZE / 5;
/// Maximum request body (§1.1, §6, `413`).
pub const MAX_BODY_BYTES: usize = 10 * 1024 * 1024;
/// Per-IP token bucket capacity (§1.4).
pub const RATE_LIMIT_CAPACITY: u32 = 600;
/// Per-IP token bucket refill per second (§1.4).
pub const RATE_LIMIT_PER_SECOND: u32 = 300;
/// Per-peer timeout of the swarm fan-out, in ms (§8.1).
pub const FANOUT_TIMEOUT_MS: u64 = 5_000;

/// `proxy_fetch`: maximum URL length in characters (§9.14).
pub const PROXY_MAX_URL_LEN: usize = 2_048;
/// `proxy_fetch`: HTML bodies are cut off after this many bytes.
pub const PROXY_MAX_HTML_BYTES: usize = 524_288;
/// `proxy_fetch`: larger images → `413`.
pub const PROXY_MAX_IMAGE_BYTES: usize = 1_048_576;
/// `proxy_fetch`: maximum redirects followed.
pub const PROXY_MAX_REDIRECTS: usize = 5;
/// `proxy_fetch`: whole-fetch timeout in ms (`504`).
pub const PROXY_TIMEOUT_MS: u64 = 10_000;
/// `proxy_fetch`: concurrent fetches per node (more → `429`).
pub const PROXY_MAX_CONCURRENT: usize = 8;

/// Where a request came from, which decides some tolerances (§4, §8.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Origin {
    /// A client request (directly or through an onion path).
    #[default]
    Client,
    /// A copy forwarded by a swarm peer (`POST /node/v1/swarm`).
    Forwarded,
    /// The owner's request carried as the proof of a tombstone
    /// (`swarms.md` §6, "Deletions are caught up too"), checked minutes or
    /// hours after it was made: every check applies except the
    /// time-freshness windows of §4 (signature timestamps, `store` times,
    /// `expire` / `expire_all` expiries in the past).
    CatchUp,
}

impl Origin {
    /// The signature-timestamp tolerance for this origin.
    pub const fn signature_tolerance_ms(self) -> u64 {
        match self {
            Origin::Client => SIGNATURE_TOLERANCE_MS,
            Origin::Forwarded => FORWARDED_SIGNATURE_TOLERANCE_MS,
            Origin::CatchUp => u64::MAX,
        }
    }

    /// The `expire_all` tolerance for this origin.
    pub const fn expire_all_tolerance_ms(self) -> u64 {
        match self {
            Origin::Client => EXPIRE_ALL_TOLERANCE_MS,
            Origin::Forwarded => FORWARDED_EXPIRE_ALL_TOLERANCE_MS,
            Origin::CatchUp => u64::MAX,
        }
    }

    /// Whether the §4 time-freshness windows apply (not to a tombstone's
    /// proof, [`Origin::CatchUp`]).
    pub const fn checks_freshness(self) -> bool {
        !matches!(self, Origin::CatchUp)
    }
}

/// The maximum TTL of a namespace: 14 days for public inboxes, else 30.
pub const fn max_ttl_ms(ns: Namespace) -> u64 {
    if ns.is_public_inbox() {
        MAX_TTL_PUBLIC_MS
    } else {
        MAX_TTL_MS
    }
}

/// Checks a `store` TTL (`expiry − timestamp`) against §6 (`403`).
pub fn check_ttl(ns: Namespace, ttl_ms: u64) -> Result<(), RpcError> {
    if ttl_ms < MIN_TTL_MS {
        return Err(RpcError::forbidden(format!(
            "ttl {ttl_ms} ms is below the minimum of {MIN_TTL_MS} ms"
        )));
    }
    let max = max_ttl_ms(ns);
    if ttl_ms > max {
        return Err(RpcError::forbidden(format!(
            "ttl {ttl_ms} ms is above the maximum of {max} ms for namespace {ns}"
        )));
    }
    Ok(())
}

/// Checks the `store` time rules (§4, `406`): `timestamp ≤ now + 10 s` and
/// `expiry ≥ now − 10 s`.
pub fn check_store_times(timestamp: u64, expiry: u64, now_ms: u64) -> Result<(), RpcError> {
    if timestamp > now_ms.saturating_add(STORE_TOLERANCE_MS) {
        return Err(RpcError::not_acceptable(
            "timestamp is too far in the future",
        ));
    }
    if expiry < now_ms.saturating_sub(STORE_EXPIRY_TOLERANCE_MS) {
        return Err(RpcError::not_acceptable("expiry is in the past"));
    }
    Ok(())
}

/// Checks a signature timestamp (`sig_timestamp`, `timestamp`) is within
/// now ± the origin's tolerance (§4, `406`). `what` names the parameter in
/// the error text.
pub fn check_signature_time(
    what: &str,
    ts: u64,
    now_ms: u64,
    origin: Origin,
) -> Result<(), RpcError> {
    let tol = origin.signature_tolerance_ms();
    if ts.abs_diff(now_ms) > tol {
        return Err(RpcError::not_acceptable(format!(
            "{what} is more than {} s from now",
            tol / 1000
        )));
    }
    Ok(())
}

/// Checks `delete_before.before ≤ now + 60 s` (§4, `406`).
pub fn check_delete_before(before: u64, now_ms: u64) -> Result<(), RpcError> {
    if before > now_ms.saturating_add(DELETE_BEFORE_TOLERANCE_MS) {
        return Err(RpcError::not_acceptable("before is too far in the future"));
    }
    Ok(())
}

/// Checks an `expire` expiry `≥ now − 60 s` (§4, `406`).
pub fn check_expire_expiry(expiry: u64, now_ms: u64) -> Result<(), RpcError> {
    if expiry < now_ms.saturating_sub(EXPIRE_TOLERANCE_MS) {
        return Err(RpcError::not_acceptable("expiry is in the past"));
    }
    Ok(())
}

/// Checks `expire_all.expiry ≥ now − 60 s` (70 s forwarded) (§4, `406`).
pub fn check_expire_all_expiry(expiry: u64, now_ms: u64, origin: Origin) -> Result<(), RpcError> {
    if expiry < now_ms.saturating_sub(origin.expire_all_tolerance_ms()) {
        return Err(RpcError::not_acceptable("expiry is in the past"));
    }
    Ok(())
}

/// The expiry `expire` applies: `min(expiry, now + 30 days)` (§9.6).
pub const fn clamp_expire(expiry: u64, now_ms: u64) -> u64 {
    let max = now_ms.saturating_add(MAX_EXPIRE_AHEAD_MS);
    if expiry < max { expiry } else { max }
}

/// Checks a hash-list length: 1 … [`MAX_HASHES`] (`400`).
pub fn check_hash_count(n: usize) -> Result<(), RpcError> {
    if n == 0 || n > MAX_HASHES {
        return Err(RpcError::bad_request(format!(
            "messages must hold 1 to {MAX_HASHES} hashes, got {n}"
        )));
    }
    Ok(())
}

/// Checks a token-list length: 1 … [`MAX_TOKENS`] (`400`).
pub fn check_token_count(n: usize) -> Result<(), RpcError> {
    if n == 0 || n > MAX_TOKENS {
        return Err(RpcError::bad_request(format!(
            "between 1 and {MAX_TOKENS} tokens are allowed, got {n}"
        )));
    }
    Ok(())
}

/// Checks a subrequest count: 1 … [`MAX_SUBREQUESTS`] (`400`).
pub fn check_subrequest_count(n: usize) -> Result<(), RpcError> {
    if n == 0 || n > MAX_SUBREQUESTS {
        return Err(RpcError::bad_request(format!(
            "requests must hold 1 to {MAX_SUBREQUESTS} subrequests, got {n}"
        )));
    }
    Ok(())
}

/// Most JSON values (objects, arrays, strings including object keys,
/// numbers, literals) a request body may hold. A body parsed into a tree
/// costs about 40 times its bytes when it is made of small values (10 MiB of
/// `[0,0,…]` took 400 MB), so bodies are counted before they are parsed.
/// The largest real requests hold about 25,000 (a batch of 20 subrequests
/// naming 1,000 hashes each).
pub const MAX_JSON_VALUES: usize = 100_000;

/// Most JSON values a node's reply may hold, for the clients that parse
/// them: a `retrieve` page of thousands of small messages holds a few
/// hundred thousand.
pub const MAX_REPLY_JSON_VALUES: usize = 1_000_000;

/// The most a recursive request's `params` may take, serialised, since the
/// entry node forwards them to every member of its swarm (§8.1). The
/// largest real ones are a `store` of a 76.8 KB message (about 104 KB) and
/// a `delete` or `expire` of 1,000 hashes (about 50 KB).
pub const MAX_RECURSIVE_PARAMS_BYTES: usize = 256 * 1024;

/// Whether the JSON text `bytes` holds at most `max` values, counted
/// without building them (a lexical scan: malformed JSON is left to the
/// parser, which refuses it).
pub fn json_values_within(bytes: &[u8], max: usize) -> bool {
    let mut n = 0usize;
    let (mut in_string, mut escaped, mut in_scalar) = (false, false, false);
    for &b in bytes {
        if in_string {
            if escaped {
                escaped = false;
            } else if b == b'\\' {
                escaped = true;
            } else if b == b'"' {
                in_string = false;
            }
            continue;
        }
        match b {
            b'"' => {
                in_string = true;
                in_scalar = false;
                n += 1;
            }
            b'[' | b'{' => {
                in_scalar = false;
                n += 1;
            }
            b',' | b':' | b']' | b'}' | b' ' | b'\n' | b'\r' | b'\t' => in_scalar = false,
            _ if !in_scalar => {
                in_scalar = true;
                n += 1;
            }
            _ => {}
        }
        if n > max {
            return false;
        }
    }
    true
}

/// Checks a request body's JSON value count (`400`): see [`MAX_JSON_VALUES`].
pub fn check_json_values(body: &[u8]) -> Result<(), RpcError> {
    if json_values_within(body, MAX_JSON_VALUES) {
        Ok(())
    } else {
        Err(RpcError::bad_request(format!(
            "the request holds more than {MAX_JSON_VALUES} JSON values"
        )))
    }
}

/// Checks a request body size (§1.1, `413`).
pub fn check_body_size(len: usize) -> Result<(), RpcError> {
    if len > MAX_BODY_BYTES {
        return Err(RpcError::new(
            super::status::StatusCode::PayloadTooLarge,
            "request body is over 10 MiB",
        ));
    }
    Ok(())
}

/// The effective `retrieve` limits (§9.2 steps 2, 3, 5).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetrieveLimits {
    /// Maximum number of messages (`None` = unlimited).
    pub max_count: Option<u64>,
    /// Byte budget (`None` = unlimited).
    pub max_size: Option<u64>,
}

impl RetrieveLimits {
    /// Resolves `max_count` and `max_size` as given (absent or 0 = unset;
    /// negative `−k` = `RETRIEVE_MAX_SIZE / k`; positive values capped).
    pub fn new(max_count: Option<u64>, max_size: Option<i64>) -> Self {
        let count = max_count.filter(|&c| c != 0);
        let size = match max_size {
            None | Some(0) => None,
            Some(s) if s < 0 => Some(RETRIEVE_MAX_SIZE / s.unsigned_abs()),
            Some(s) => Some((s as u64).min(RETRIEVE_MAX_SIZE)),
        };
        let size = if count.is_none() && size.is_none() {
            Some(RETRIEVE_DEFAULT_SIZE)
        } else {
            size
        };
        Self {
            max_count: count,
            max_size: size,
        }
    }

    /// How many of the candidate messages (each given as
    /// `(hash length, data length in bytes)`, in order) to return, and
    /// whether more remain (§9.2 steps 4–5). The first message is always
    /// returned, even over budget.
    pub fn take(&self, candidates: impl IntoIterator<Item = (usize, usize)>) -> (usize, bool) {
        let mut total: u64 = 0;
        let mut n: usize = 0;
        for (hash_len, data_len) in candidates {
            let count_full = self.max_count.is_some_and(|c| n as u64 >= c);
            let cost = retrieve_cost(hash_len, data_len);
            let over = self
                .max_size
                .is_some_and(|b| total.saturating_add(cost) > b);
            if count_full || (n > 0 && over) {
                return (n, true);
            }
            total = total.saturating_add(cost);
            n += 1;
        }
        (n, false)
    }
}

/// The size a message counts for in the `retrieve` budget:
/// `100 + len(hash) + ⌊4·len(data) / 3⌋` (§9.2).
pub const fn retrieve_cost(hash_len: usize, data_len: usize) -> u64 {
    100 + hash_len as u64 + (4 * data_len as u64) / 3
}

#[cfg(test)]
mod tests {

    #[test]
    fn json_values_are_counted_without_parsing() {
        let count = |t: &str| (0..50).find(|&m| json_values_within(t.as_bytes(), m));
        assert_eq!(count("{}"), Some(1));
        assert_eq!(count("[0,0,0]"), Some(4));
        assert_eq!(count(r#"{"a":[1,true,null,"x"]}"#), Some(7));
        assert_eq!(count("[-1.5e3, 22 ,\n333]"), Some(4));
        // Brackets, commas and escaped quotes inside strings are not values.
        assert_eq!(count(r#"["[,{]:\",x", "y"]"#), Some(3));
        // Each count agrees with the tree serde_json builds.
        fn tree(v: &serde_json::Value) -> usize {
            match v {
                serde_json::Value::Array(a) => 1 + a.iter().map(tree).sum::<usize>(),
                serde_json::Value::Object(o) => 1 + o.len() + o.values().map(tree).sum::<usize>(),
                _ => 1,
            }
        }
        for t in [
            r#"{"method":"store","params":{"pubkey":"05ab","ttl":60000,"data":"aGk="}}"#,
            r#"[[],[{}],{"k":[1,2,{"z":null}]}]"#,
        ] {
            let v: serde_json::Value = serde_json::from_str(t).expect("valid");
            assert_eq!(count(t), Some(tree(&v)), "{t}");
        }
        // The refusal a body of small values gets.
        let mut junk = b"[0".to_vec();
        junk.extend(b",0".repeat(MAX_JSON_VALUES));
        junk.push(b']');
        assert!(check_json_values(&junk).is_err());
        assert!(check_json_values(&junk[..junk.len() / 2]).is_ok());
    }

    use super::*;
    use crate::rpc::status::StatusCode;

    const NOW: u64 = 1_700_000_000_000;

    #[test]
    fn ttl_edges_per_namespace() {
        assert!(check_ttl(Namespace(0), MIN_TTL_MS).is_ok());
        assert_eq!(
            check_ttl(Namespace(0), MIN_TTL_MS - 1).unwrap_err().status,
            StatusCode::Forbidden
        );
        assert!(check_ttl(Namespace(0), MAX_TTL_PUBLIC_MS).is_ok());
        assert_eq!(
            check_ttl(Namespace(0), MAX_TTL_PUBLIC_MS + 1)
                .unwrap_err()
                .code(),
            403
        );
        assert_eq!(
            check_ttl(Namespace(-30), MAX_TTL_PUBLIC_MS + 1)
                .unwrap_err()
                .code(),
            403
        );
        assert!(check_ttl(Namespace(11), MAX_TTL_PUBLIC_MS + 1).is_ok());
        assert!(check_ttl(Namespace(-1), MAX_TTL_MS).is_ok());
        assert_eq!(
            check_ttl(Namespace(-1), MAX_TTL_MS + 1).unwrap_err().code(),
            403
        );
        assert_eq!(MAX_TTL_PUBLIC_MS, 1_209_600_000);
        assert_eq!(MAX_TTL_MS, 2_592_000_000);
    }

    #[test]
    fn store_time_edges() {
        assert!(check_store_times(NOW + 10_000, NOW + 20_000, NOW).is_ok());
        assert_eq!(
            check_store_times(NOW + 10_001, NOW + 20_000, NOW)
                .unwrap_err()
                .code(),
            406
        );
        assert!(check_store_times(NOW - 50_000, NOW - 10_000, NOW).is_ok());
        assert_eq!(
            check_store_times(NOW - 50_000, NOW - 10_001, NOW)
                .unwrap_err()
                .code(),
            406
        );
    }

    #[test]
    fn signature_time_edges() {
        for origin in [Origin::Client, Origin::Forwarded] {
            let tol = origin.signature_tolerance_ms();
            assert!(check_signature_time("timestamp", NOW + tol, NOW, origin).is_ok());
            assert!(check_signature_time("timestamp", NOW - tol, NOW, origin).is_ok());
            assert_eq!(
                check_signature_time("timestamp", NOW + tol + 1, NOW, origin)
                    .unwrap_err()
                    .code(),
                406
            );
            let e = check_signature_time("sig_timestamp", NOW - tol - 1, NOW, origin).unwrap_err();
            assert_eq!(e.code(), 406);
            assert!(e.message.contains("sig_timestamp"));
        }
        assert!(check_signature_time("t", NOW + 65_000, NOW, Origin::Forwarded).is_ok());
        assert!(check_signature_time("t", NOW + 65_000, NOW, Origin::Client).is_err());
    }

    #[test]
    fn other_tolerances() {
        assert!(check_delete_before(NOW + 60_000, NOW).is_ok());
        assert_eq!(
            check_delete_before(NOW + 60_001, NOW).unwrap_err().code(),
            406
        );
        assert!(check_expire_expiry(NOW - 60_000, NOW).is_ok());
        assert_eq!(
            check_expire_expiry(NOW - 60_001, NOW).unwrap_err().code(),
            406
        );
        assert!(check_expire_all_expiry(NOW - 70_000, NOW, Origin::Forwarded).is_ok());
        assert!(check_expire_all_expiry(NOW - 70_000, NOW, Origin::Client).is_err());
        assert_eq!(clamp_expire(NOW + 31 * DAY_MS, NOW), NOW + 30 * DAY_MS);
        assert_eq!(clamp_expire(NOW + DAY_MS, NOW), NOW + DAY_MS);
        assert_eq!(clamp_expire(u64::MAX, u64::MAX - 1), u64::MAX);
    }

    #[test]
    fn counts() {
        assert_eq!(check_hash_count(0).unwrap_err().code(), 400);
        assert!(check_hash_count(1000).is_ok());
        assert_eq!(check_hash_count(1001).unwrap_err().code(), 400);
        assert!(check_token_count(50).is_ok());
        assert!(check_token_count(51).is_err());
        assert!(check_subrequest_count(20).is_ok());
        assert!(check_subrequest_count(21).is_err());
        assert!(check_subrequest_count(0).is_err());
        assert!(check_body_size(MAX_BODY_BYTES).is_ok());
        assert_eq!(check_body_size(MAX_BODY_BYTES + 1).unwrap_err().code(), 413);
    }

    #[test]
    fn retrieve_limits_resolution() {
        assert_eq!(
            RetrieveLimits::new(None, None),
            RetrieveLimits {
                max_count: None,
                max_size: Some(1_560_000)
            }
        );
        assert_eq!(
            RetrieveLimits::new(Some(0), Some(0)).max_size,
            Some(1_560_000)
        );
        assert_eq!(
            RetrieveLimits::new(Some(5), None),
            RetrieveLimits {
                max_count: Some(5),
                max_size: None
            }
        );
        assert_eq!(RetrieveLimits::new(None, Some(-10)).max_size, Some(780_000));
        assert_eq!(RetrieveLimits::new(None, Some(i64::MIN)).max_size, Some(0));
        assert_eq!(
            RetrieveLimits::new(None, Some(9_000_000)).max_size,
            Some(RETRIEVE_MAX_SIZE)
        );
    }

    #[test]
    fn retrieve_take() {
        // cost of (43, 300) = 100 + 43 + 400 = 543
        assert_eq!(retrieve_cost(43, 300), 543);
        let rows = [(43, 300); 4];
        let lim = RetrieveLimits {
            max_count: None,
            max_size: Some(543 * 2),
        };
        assert_eq!(lim.take(rows), (2, true));
        let lim = RetrieveLimits {
            max_count: None,
            max_size: Some(543 * 4),
        };
        assert_eq!(lim.take(rows), (4, false));
        let lim = RetrieveLimits {
            max_count: None,
            max_size: Some(10),
        };
        assert_eq!(
            lim.take(rows),
            (1, true),
            "the first message is always returned"
        );
        assert_eq!(lim.take([(43, 300)]), (1, false));
        let lim = RetrieveLimits {
            max_count: Some(3),
            max_size: None,
        };
        assert_eq!(lim.take(rows), (3, true));
        assert_eq!(lim.take(rows[..3].iter().copied()), (3, false));
        assert_eq!(lim.take(std::iter::empty()), (0, false));
    }
}
