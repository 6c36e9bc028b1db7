//! What the library measures for the server's `/metrics`: instruments (from the
//! Prometheus project's client) owned by the part that does the work, the store's pool
//! and the audit writers, and read by the server when it is scraped.

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};

/// Buckets for durations in seconds: 0.25 ms to about 8 s.
pub fn seconds_buckets() -> impl Iterator<Item = f64> {
    exponential_buckets(0.000_25, 2.0, 16)
}

/// The store pool's checkouts: how long each waited for a connection, and how many
/// gave up (the pool stayed full for the whole connection timeout).
#[derive(Clone, Debug)]
pub struct PoolMeasures {
    pub wait_seconds: Histogram,
    pub timeouts: Counter,
}

impl Default for PoolMeasures {
    fn default() -> Self {
        PoolMeasures {
            wait_seconds: Histogram::new(seconds_buckets()),
            timeouts: Counter::default(),
        }
    }
}

/// The audit writers' batches: records per commit and how long each commit took.
#[derive(Clone, Debug)]
pub struct AuditMeasures {
    pub batch_size: Histogram,
    pub commit_seconds: Histogram,
}

impl Default for AuditMeasures {
    fn default() -> Self {
        AuditMeasures {
            batch_size: Histogram::new(exponential_buckets(1.0, 2.0, 10)),
            commit_seconds: Histogram::new(seconds_buckets()),
        }
    }
}
