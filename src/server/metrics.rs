//! What the server counts for `/metrics`, in the Prometheus project's client (OpenMetrics
//! text): requests by route, method and status with latency histograms, secret reads,
//! block cache lookups, authentication failures by reason, password rotations, lease
//! operations, the audit writers' batches and commits and the store pool (both
//! measured where the work is, see `crate::metrics`), and build info. Labels come from
//! fixed sets (a route's template, never its path), so the series are bounded.

use std::collections::HashMap;
use std::sync::RwLock;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry as Instruments;

use crate::metrics::{AuditMeasures, PoolMeasures, seconds_buckets};

/// A request's route (its template, `unmatched` for none), method and status.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    route: &'static str,
    method: &'static str,
    status: u16,
}

/// A route and method.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabels {
    route: &'static str,
    method: &'static str,
}

/// One label from a fixed set of words.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct Outcome {
    pub outcome: &'static str,
}

/// Why a request's caller was not accepted.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct Reason {
    pub reason: &'static str,
}

/// A lease operation and how it ended.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct LeaseOp {
    pub operation: &'static str,
    pub outcome: &'static str,
}

/// A lease state's count.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct LeaseState {
    state: String,
}

/// A connection state of the store pool.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PoolState {
    state: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct BuildLabels {
    version: &'static str,
}

type Histograms<L> = Family<L, Histogram, fn() -> Histogram>;

/// Route templates kept as labels at most (the server mounts about a hundred).
const MAX_ROUTES: usize = 512;

fn latency() -> Histogram {
    Histogram::new(seconds_buckets())
}

/// Every instrument the server feeds, and the registry that exposes them.
pub struct Metrics {
    instruments: Instruments,
    requests: Family<RequestLabels, Counter>,
    durations: Histograms<RouteLabels>,
    /// Route templates as `'static` labels, each kept once (the routes are fixed at
    /// launch), so counting a request allocates nothing.
    routes: RwLock<HashMap<String, &'static str>>,
    pub secret_reads: Family<Outcome, Counter>,
    pub cache_lookups: Family<Outcome, Counter>,
    pub auth_failures: Family<Reason, Counter>,
    pub rotations: Family<Outcome, Counter>,
    pub lease_operations: Family<LeaseOp, Counter>,
    leases: Family<LeaseState, Gauge>,
    pub leases_failing: Gauge,
    pool: Family<PoolState, Gauge>,
    pub notifications: Gauge,
}

impl Metrics {
    /// The instruments, with the audit writers' and the store pool's measures.
    pub fn new(audit: &AuditMeasures, pool: &PoolMeasures) -> Metrics {
        let mut m = Metrics {
            instruments: Instruments::with_prefix("blockyard"),
            requests: Family::default(),
            durations: Family::new_with_constructor(latency as fn() -> Histogram),
            routes: RwLock::default(),
            secret_reads: Family::default(),
            cache_lookups: Family::default(),
            auth_failures: Family::default(),
            rotations: Family::default(),
            lease_operations: Family::default(),
            leases: Family::default(),
            leases_failing: Gauge::default(),
            pool: Family::default(),
            notifications: Gauge::default(),
        };
        m.register_requests();
        m.zeroes();
        m.register_work(audit, pool);
        let build: Family<BuildLabels, Gauge> = Family::default();
        build
            .get_or_create(&BuildLabels {
                version: env!("CARGO_PKG_VERSION"),
            })
            .set(1);
        m.instruments
            .register("build_info", "The running version (always 1)", build);
        m
    }

    fn register_requests(&mut self) {
        let r = &mut self.instruments;
        r.register(
            "http_requests",
            "Requests answered, by route template, method and status",
            self.requests.clone(),
        );
        r.register(
            "http_request_duration_seconds",
            "Time from a request's arrival to its answer, by route template and method",
            self.durations.clone(),
        );
        r.register(
            "auth_failures",
            "Requests whose caller was not accepted, by reason (missing, invalid, \
             rate_limited, unavailable)",
            self.auth_failures.clone(),
        );
        r.register(
            "secret_reads",
            "Reads of a block's secrets, by outcome (ok, refused)",
            self.secret_reads.clone(),
        );
        r.register(
            "block_cache_lookups",
            "Block reads looked up among the kept reads, by outcome (hit, miss)",
            self.cache_lookups.clone(),
        );
    }

    fn register_work(&mut self, audit: &AuditMeasures, pool: &PoolMeasures) {
        let r = &mut self.instruments;
        r.register(
            "password_rotations",
            "Password rotations (asked for or scheduled), by outcome (ok, failed)",
            self.rotations.clone(),
        );
        r.register(
            "lease_operations",
            "Lease operations (issue, renew, revoke, reconcile_revoke), by outcome",
            self.lease_operations.clone(),
        );
        r.register(
            "leases",
            "Leases in the store, by state",
            self.leases.clone(),
        );
        r.register(
            "lease_revocations_failing",
            "Leases whose revocation keeps failing (retried)",
            self.leases_failing.clone(),
        );
        r.register(
            "audit_batch_size",
            "Audit records committed per batch",
            audit.batch_size.clone(),
        );
        r.register(
            "audit_commit_duration_seconds",
            "Time an audit batch took to commit",
            audit.commit_seconds.clone(),
        );
        r.register(
            "store_connections",
            "Store pool connections, by state (in_use, idle)",
            self.pool.clone(),
        );
        r.register(
            "store_pool_wait_seconds",
            "Time a request waited for a store connection",
            pool.wait_seconds.clone(),
        );
        r.register(
            "store_pool_timeouts",
            "Waits for a store connection that gave up",
            pool.timeouts.clone(),
        );
        r.register(
            "token_notifications_listening",
            "1 while token changes on other servers are heard as they happen",
            self.notifications.clone(),
        );
    }

    /// Every fixed label value's series from the start, at zero, so a scraper sees
    /// the family before the first event of each kind.
    fn zeroes(&self) {
        for outcome in ["ok", "refused"] {
            let _ = self.secret_reads.get_or_create(&Outcome { outcome });
        }
        for outcome in ["hit", "miss"] {
            let _ = self.cache_lookups.get_or_create(&Outcome { outcome });
        }
        for reason in [
            "missing",
            "invalid",
            "rate_limited",
            "unavailable",
            "forbidden",
        ] {
            let _ = self.auth_failures.get_or_create(&Reason { reason });
        }
        for outcome in ["ok", "failed"] {
            let _ = self.rotations.get_or_create(&Outcome { outcome });
            for operation in ["issue", "renew", "revoke", "reconcile_revoke"] {
                let _ = self
                    .lease_operations
                    .get_or_create(&LeaseOp { operation, outcome });
            }
        }
    }

    /// Sets the leases gauge to the store's counts (every state shown, zero or not).
    pub fn set_leases(&self, counts: &[(String, i64)]) {
        for state in ["issuing", "live", "revoking"] {
            let n = counts
                .iter()
                .find(|(s, _)| s == state)
                .map_or(0, |(_, n)| *n);
            let labels = LeaseState {
                state: state.to_owned(),
            };
            self.leases.get_or_create(&labels).set(n);
        }
    }

    /// Counts a finished request.
    pub fn request(&self, route: &str, method: &'static str, status: u16, seconds: f64) {
        let route = self.route(route);
        self.durations
            .get_or_create(&RouteLabels { route, method })
            .observe(seconds);
        self.requests
            .get_or_create(&RequestLabels {
                route,
                method,
                status,
            })
            .inc();
    }

    /// `route` as a label: the template kept once.
    fn route(&self, route: &str) -> &'static str {
        if let Some(kept) = self
            .routes
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(route)
        {
            return kept;
        }
        let mut routes = self.routes.write().unwrap_or_else(|e| e.into_inner());
        if routes.len() >= MAX_ROUTES {
            return "other";
        }
        routes
            .entry(route.to_owned())
            .or_insert_with(|| Box::leak(route.to_owned().into_boxed_str()))
    }

    /// Counts one of `family`'s outcomes.
    pub fn count(family: &Family<Outcome, Counter>, outcome: &'static str) {
        family.get_or_create(&Outcome { outcome }).inc();
    }

    /// Counts an authentication failure.
    pub fn auth_failed(&self, reason: &'static str) {
        self.auth_failures.get_or_create(&Reason { reason }).inc();
    }

    /// Counts a lease operation.
    pub fn lease(&self, operation: &'static str, outcome: &'static str) {
        self.lease_operations
            .get_or_create(&LeaseOp { operation, outcome })
            .inc();
    }

    /// Counts a change that ran (password rotations and lease operations; other
    /// changes are counted as requests).
    pub fn change(&self, action: &str, ok: bool) {
        let outcome = if ok { "ok" } else { "failed" };
        match action {
            "rotate-password" => Metrics::count(&self.rotations, outcome),
            "lease-issue" => self.lease("issue", outcome),
            "lease-renew" => self.lease("renew", outcome),
            "lease-revoke" => self.lease("revoke", outcome),
            _ => {}
        }
    }

    /// The exposition, with the store pool's connections as they are now.
    pub fn render(&self, pool: (u32, u32)) -> String {
        let (in_use, idle) = pool;
        let set = |state, n: u32| self.pool.get_or_create(&PoolState { state }).set(n.into());
        set("in_use", in_use);
        set("idle", idle);
        let mut text = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut text, &self.instruments);
        text
    }
}
