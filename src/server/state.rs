//! What every route shares ([`State`]: the registry, the token verifier, the audit log,
//! the block cache, the web UI's sessions) and how a route runs store work: on Tokio's
//! blocking pool, never on the async executor, within a deadline.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::cache::BlockCache;
use super::response::{ApiError, ApiResult};
use super::sessions::Sessions;
use super::slots::TestSlots;
use crate::audit::AuditLog;
use crate::auth::Verifier;
use crate::error::{Error, Result};
use crate::registry::Registry;

/// What every route shares.
pub struct State {
    pub registry: Registry,
    pub verifier: Arc<Verifier>,
    pub audit: AuditLog,
    pub blocks: Arc<BlockCache>,
    /// The web UI's signed-in browsers and last connection tests.
    pub ui: UiState,
}

/// A block's last Test in the web UI: passed, its code (`ok` when it passed), when.
pub type LastTest = (bool, String, i64);

/// What the UI keeps in the server's memory: sessions, the tests running, and each
/// block's last Test (gone when the server restarts, and per server).
#[derive(Default)]
pub struct UiState {
    pub sessions: Sessions,
    /// The connection tests running now (bounded per token and in all).
    pub tests: TestSlots,
    last_tests: Mutex<HashMap<String, LastTest>>,
}

impl UiState {
    /// Keeps the outcome of a Test of `name` (at most 100,000 blocks' outcomes).
    pub fn record_test(&self, name: &str, passed: bool, code: &str) {
        let mut tests = self.last_tests.lock().expect("last tests poisoned");
        if tests.len() >= 100_000 && !tests.contains_key(name) {
            tests.clear();
        }
        tests.insert(
            name.to_owned(),
            (passed, code.to_owned(), crate::time::now_millis()),
        );
    }

    /// The last Test of each of `names`, if one ran on this server.
    pub fn last_tests(&self, names: &[&str]) -> Vec<Option<LastTest>> {
        let tests = self.last_tests.lock().expect("last tests poisoned");
        names.iter().map(|n| tests.get(*n).cloned()).collect()
    }
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
