//! Per-client-IP token buckets (`storage-rpc.md` §1.4): capacity 600,
//! refilled at 300 requests per second by default, keyed by IPv4 address or
//! IPv6 /64. Authenticated peer nodes are exempt (their requests never pass
//! through this limiter).

use std::net::IpAddr;
use std::num::NonZeroU32;

use governor::{DefaultKeyedRateLimiter, Quota};

/// The limiter.
pub struct RateLimiter {
    inner: DefaultKeyedRateLimiter<IpAddr>,
}

impl RateLimiter {
    /// A limiter with `burst` capacity refilled at `per_sec`.
    pub fn new(burst: u32, per_sec: u32) -> Self {
        let per_sec = NonZeroU32::new(per_sec).unwrap_or(NonZeroU32::MIN);
        let burst = NonZeroU32::new(burst).unwrap_or(NonZeroU32::MIN);
        RateLimiter {
            inner: governor::RateLimiter::keyed(Quota::per_second(per_sec).allow_burst(burst)),
        }
    }

    /// Takes one token for `ip`; false when its bucket is empty (`429`).
    pub fn check(&self, ip: IpAddr) -> bool {
        self.inner.check_key(&bucket_key(ip)).is_ok()
    }

    /// Forgets buckets that are full again (call periodically).
    pub fn shrink(&self) {
        self.inner.retain_recent();
        self.inner.shrink_to_fit();
    }
}

/// IPv4 addresses are their own key; IPv6 addresses share a bucket per /64.
fn bucket_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let seg = v6.segments();
                IpAddr::V6(std::net::Ipv6Addr::new(
                    seg[0], seg[1], seg[2], seg[3], 0, 0, 0, 0,
                ))
            }
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn burst_then_refuse_per_ip() {
        let rl = RateLimiter::new(5, 1);
        let a: IpAddr = "127.0.0.2".parse().unwrap();
        let b: IpAddr = "127.0.0.3".parse().unwrap();
        for _ in 0..5 {
            assert!(rl.check(a));
        }
        assert!(!rl.check(a), "sixth request in the same instant is limited");
        assert!(rl.check(b), "another IP has its own bucket");
    }

    #[test]
    fn ipv6_shares_a_bucket_per_64() {
        let rl = RateLimiter::new(1, 1);
        assert!(rl.check("2001:db8::1".parse().unwrap()));
        assert!(!rl.check("2001:db8::2".parse().unwrap()));
        assert!(rl.check("2001:db8:0:1::1".parse().unwrap()));
    }
}
