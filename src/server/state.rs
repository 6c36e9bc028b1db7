//! What every route shares ([`State`]: the registry, the token verifier, the audit log,
//! the block cache, the web UI's sessions, the metrics, the failed-authentication
//! limit, whether the server drains) and how a route runs store work: on Tokio's
//! blocking pool, never on the async executor, within a deadline.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::time::Duration;

use super::cache::BlockCache;
use super::limits::AuthLimiter;
use super::metrics::Metrics;
use super::response::{ApiError, ApiResult};
use super::slots::TestSlots;
use crate::audit::AuditLog;
use crate::auth::Verifier;
use crate::error::{Error, Result};
use crate::registry::{Registry, UiSessions};
use crate::time::now_millis;

/// What every route shares.
pub struct State {
    pub registry: Registry,
    pub verifier: Arc<Verifier>,
    pub audit: AuditLog,
    pub blocks: Arc<BlockCache>,
    /// The web UI's signed-in browsers (in the store) and the tests running here.
    pub ui: UiState,
    pub metrics: Arc<Metrics>,
    pub limiter: AuthLimiter,
    pub fleet: Arc<Fleet>,
}

/// This server among those sharing the store: its id (its heartbeat's row), whether
/// it is draining (stopping: `/ready` fails while it still serves), and when a load
/// balancer last asked `/ready`.
pub struct Fleet {
    pub server_id: String,
    draining: AtomicBool,
    ready_asked: AtomicI64,
}

/// A balancer that asked `/ready` this lately is taken to be watching.
const WATCHED: i64 = 30_000;

impl Fleet {
    pub fn new() -> Fleet {
        Fleet {
            server_id: uuid::Uuid::new_v4().simple().to_string(),
            draining: AtomicBool::new(false),
            ready_asked: AtomicI64::new(0),
        }
    }

    /// Starts draining; whether a balancer is watching (asked `/ready` lately), so
    /// that waiting for it to notice is worth it.
    pub fn drain(&self) -> bool {
        self.draining.store(true, Ordering::SeqCst);
        now_millis() - self.ready_asked.load(Ordering::SeqCst) < WATCHED
    }

    pub fn is_draining(&self) -> bool {
        self.draining.load(Ordering::SeqCst)
    }

    /// Notes that `/ready` was asked.
    pub fn asked(&self) {
        self.ready_asked.store(now_millis(), Ordering::SeqCst);
    }
}

/// What the UI shares: its sessions (in the store, so any server answers any
/// request) and the connection tests running on this server.
pub struct UiState {
    pub sessions: Arc<UiSessions>,
    /// The connection tests running now (bounded per token and in all).
    pub tests: TestSlots,
}

/// How long a request waits for the store: a store that accepts connections but never
/// answers (a hung primary, a partition) gets the client a 503 `STORE_UNAVAILABLE`
/// within this, instead of a wait as long as the outage. (Checking a connection out of
/// the pool has its own, shorter, timeout.)
pub const STORE_DEADLINE: Duration = Duration::from_secs(5);

/// Runs a store call on the blocking pool; answers `STORE_UNAVAILABLE` if it has not
/// finished within [`STORE_DEADLINE`] (the call itself goes on, and its connection
/// comes back to the pool once the store answers).
pub async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T> + Send + 'static,
) -> ApiResult<T> {
    within(STORE_DEADLINE, work).await.map_err(ApiError::from)
}

/// [`blocking`] for work that may rightly take long (provisioning a database, an
/// import, an export, testing a block's own connection): no deadline beyond its own.
pub async fn blocking_long<T: Send + 'static>(
    work: impl FnOnce() -> Result<T> + Send + 'static,
) -> ApiResult<T> {
    within(Duration::from_secs(24 * 3600), work)
        .await
        .map_err(ApiError::from)
}

/// Runs `work` on the blocking pool; `STORE_UNAVAILABLE` if it has not finished
/// within `deadline`.
pub async fn within<T: Send + 'static>(
    deadline: Duration,
    work: impl FnOnce() -> Result<T> + Send + 'static,
) -> Result<T> {
    let task = rocket::tokio::task::spawn_blocking(work);
    match rocket::tokio::time::timeout(deadline, task).await {
        Err(_) => Err(Error::StoreUnavailable(format!(
            "the store did not answer within {} s",
            deadline.as_secs_f32()
        ))),
        Ok(joined) => joined.map_err(|_| Error::Internal("a store call panicked".into()))?,
    }
}
