//! Limits on failed authentication: each client address has a token bucket that every
//! failed sign-in or bad token empties by one; an address whose bucket is empty is
//! answered 429 with `Retry-After` before any store work, unless its token is one this
//! server has seen exist (a good token is never slowed by someone else's flood).
//! Memory is bounded whatever the number of addresses: buckets live in a fixed table,
//! indexed by a keyed hash of the address (IPv6 by its /64), and an address that finds
//! its slot held by another takes it over once that one has refilled. The client's
//! address is the peer's, or, when the peer is a trusted proxy, the last address in
//! `X-Forwarded-For` that is not one.

use std::hash::BuildHasher;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::Instant;

use ipnet::IpNet;
use rocket::request::Request;

/// Buckets kept: 64 shards of 256 (about 10 KiB each, 640 KiB in all).
const SHARDS: usize = 64;
const PER_SHARD: usize = 256;

/// One address's bucket.
#[derive(Clone, Copy)]
struct Bucket {
    key: u128,
    tokens: f64,
    at: Instant,
}

/// The failed-authentication limit per client address.
pub struct AuthLimiter {
    /// Failures an address may make at once.
    burst: f64,
    /// Failures per second an address earns back.
    rate: f64,
    shards: Vec<Mutex<Vec<Option<Bucket>>>>,
    hasher: std::collections::hash_map::RandomState,
    trusted: Vec<IpNet>,
}

impl AuthLimiter {
    /// `burst` failures at once, then `per_minute`; zero for either turns the limit
    /// off. `trusted` are the proxies whose `X-Forwarded-For` is believed.
    pub fn new(burst: u32, per_minute: u32, trusted: Vec<IpNet>) -> Self {
        AuthLimiter {
            burst: f64::from(burst),
            rate: f64::from(per_minute) / 60.0,
            shards: (0..SHARDS)
                .map(|_| Mutex::new(vec![None; PER_SHARD]))
                .collect(),
            hasher: Default::default(),
            trusted,
        }
    }

    fn enabled(&self) -> bool {
        self.burst > 0.0 && self.rate > 0.0
    }

    /// The client's address: the peer's, or what a trusted proxy says it is.
    pub fn client(&self, req: &Request<'_>) -> Option<IpAddr> {
        let peer = req.remote()?.ip();
        if !self.is_trusted(peer) {
            return Some(peer);
        }
        let forwarded: Vec<IpAddr> = req
            .headers()
            .get("X-Forwarded-For")
            .flat_map(|v| v.split(','))
            .filter_map(|a| a.trim().parse().ok())
            .collect();
        Some(
            forwarded
                .iter()
                .rev()
                .find(|a| !self.is_trusted(**a))
                .copied()
                .unwrap_or(peer),
        )
    }

    fn is_trusted(&self, address: IpAddr) -> bool {
        let address = canonical(address);
        self.trusted.iter().any(|net| net.contains(&address))
    }

    /// `Some(seconds to wait)` when `client` has no failures left.
    pub fn refused(&self, client: Option<IpAddr>) -> Option<u64> {
        let client = client.filter(|_| self.enabled())?;
        let (key, shard, slot) = self.place(client);
        let buckets = self.shards[shard].lock().unwrap_or_else(|e| e.into_inner());
        let bucket = buckets[slot].filter(|b| b.key == key)?;
        let tokens = self.refilled(&bucket, Instant::now());
        (tokens < 1.0).then(|| ((1.0 - tokens) / self.rate).ceil().max(1.0) as u64)
    }

    /// Takes one failure from `client`'s bucket.
    pub fn failed(&self, client: Option<IpAddr>) {
        let Some(client) = client.filter(|_| self.enabled()) else {
            return;
        };
        let (key, shard, slot) = self.place(client);
        let now = Instant::now();
        let mut buckets = self.shards[shard].lock().unwrap_or_else(|e| e.into_inner());
        let tokens = match buckets[slot] {
            Some(b) if b.key == key => self.refilled(&b, now),
            // Another address's bucket, not yet refilled: shared (stricter) until it is.
            Some(b) if self.refilled(&b, now) < self.burst => self.refilled(&b, now),
            _ => self.burst,
        };
        buckets[slot] = Some(Bucket {
            key,
            tokens: (tokens - 1.0).max(0.0),
            at: now,
        });
    }

    fn refilled(&self, bucket: &Bucket, now: Instant) -> f64 {
        let earned = now.saturating_duration_since(bucket.at).as_secs_f64() * self.rate;
        (bucket.tokens + earned).min(self.burst)
    }

    /// The address's key (IPv6 by its /64, as one host holds a whole /64) and slot.
    fn place(&self, client: IpAddr) -> (u128, usize, usize) {
        let key = match canonical(client) {
            IpAddr::V4(v4) => u128::from(u32::from(v4)),
            IpAddr::V6(v6) => (u128::from(v6) >> 64) << 64 | 1,
        };
        let hash = self.hasher.hash_one(key) as usize;
        (key, hash % SHARDS, (hash / SHARDS) % PER_SHARD)
    }
}

/// An IPv4 address carried in IPv6 (`::ffff:a.b.c.d`) as IPv4.
fn canonical(address: IpAddr) -> IpAddr {
    match address {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(address, IpAddr::V4),
        v4 => v4,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_address_is_refused_after_its_burst_and_others_are_not() {
        let limiter = AuthLimiter::new(5, 60, Vec::new());
        let flood: IpAddr = "192.0.2.7".parse().unwrap();
        let other: IpAddr = "192.0.2.8".parse().unwrap();
        for _ in 0..5 {
            assert_eq!(limiter.refused(Some(flood)), None);
            limiter.failed(Some(flood));
        }
        assert_eq!(limiter.refused(Some(flood)), Some(1));
        assert_eq!(limiter.refused(Some(other)), None);
    }

    #[test]
    fn a_million_addresses_use_the_same_memory() {
        let limiter = AuthLimiter::new(5, 60, Vec::new());
        for i in 0..1_000_000u32 {
            limiter.failed(Some(IpAddr::V4(i.into())));
        }
        let kept: usize = limiter.shards.iter().map(|s| s.lock().unwrap().len()).sum();
        assert_eq!(kept, SHARDS * PER_SHARD);
        // An IPv6 host is one client whatever its address in its /64.
        let a: IpAddr = "2001:db8::1".parse().unwrap();
        let b: IpAddr = "2001:db8::ffff:2".parse().unwrap();
        for _ in 0..5 {
            limiter.failed(Some(a));
        }
        assert!(limiter.refused(Some(b)).is_some());
    }
}
