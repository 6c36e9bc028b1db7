//! Pools of connections to the databases blocks describe: settings read from the block,
//! an r2d2 manager that re-reads the block when authentication fails, and the cache that
//! makes `Registry::pool(name)` cost no registry round trip while it is fresh.

use std::any::{Any, TypeId};
use std::collections::HashMap;
use std::fmt;
use std::marker::PhantomData;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use diesel::r2d2::ManageConnection;
use serde_json::Value;
use zeroize::Zeroizing;

use super::classify;
use super::info::ConnectionInfo;
use crate::block::Block;
use crate::db::{Backend, Connect};
use crate::error::{ConnectFailure, Error, Result};
use crate::name::BlockName;

/// An r2d2 pool of `C` connections to one block's database. It dereferences to the
/// r2d2 pool (`state()`, `max_size()`, ...), but [`BlockPool::get`] answers with
/// Blockyard's classified errors (`AUTHENTICATION_FAILED`, `HOST_UNREACHABLE`, ...),
/// and does not wait out the pool's timeout when the cause is certain.
pub struct BlockPool<C: Connect> {
    pool: r2d2::Pool<BlockManager<C>>,
    target: Arc<Target>,
}

/// A connection checked out of a [`BlockPool`]; returned to the pool when dropped.
pub type BlockConnection<C> = r2d2::PooledConnection<BlockManager<C>>;

impl<C: Connect> Clone for BlockPool<C> {
    fn clone(&self) -> Self {
        BlockPool {
            pool: self.pool.clone(),
            target: self.target.clone(),
        }
    }
}

impl<C: Connect> fmt::Debug for BlockPool<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "BlockPool({:?})", self.target.name)
    }
}

impl<C: Connect> std::ops::Deref for BlockPool<C> {
    type Target = r2d2::Pool<BlockManager<C>>;
    fn deref(&self) -> &Self::Target {
        &self.pool
    }
}

impl<C: Connect> BlockPool<C> {
    /// A connection, within the block's `pool.connection_timeout`. A refused
    /// connection, a failed authentication or a missing database fails at once with
    /// its code; anything else is retried until the timeout.
    ///
    /// When the pool holds no connection yet, it first connects once in this thread,
    /// so a certain failure is reported at once; then it waits on r2d2 as r2d2's own
    /// `get` does, with one connection attempt at a time. (Polling r2d2 instead starts
    /// extra attempts that can still be running in its threads when a flow exits, and
    /// libpq's TLS does not survive the process exiting under it.)
    pub fn get(&self) -> Result<BlockConnection<C>> {
        if let Some(conn) = self.pool.try_get() {
            return Ok(conn);
        }
        let timeout = self.pool.connection_timeout();
        if self.pool.state().connections == 0 {
            let started = Instant::now();
            let probe = BlockManager::<C> {
                target: self.target.clone(),
                _connection: PhantomData,
            };
            // Dropped at once: r2d2 opens the pool's own connection below.
            if probe.connect().is_err()
                && let Some((kind, message)) = self.target.failure_since(started)
                && kind.is_certain()
            {
                return Err(Error::Connect { kind, message });
            }
        }
        let started = Instant::now();
        self.pool
            .get_timeout(timeout)
            .map_err(|_| self.timed_out(self.target.failure_since(started), timeout))
    }

    /// A pool of the block's database (its `pool` settings) that connects with `info`'s
    /// credentials (a leased user's) and never re-reads the block for others.
    pub fn with_credentials(block: &Block, info: ConnectionInfo) -> Result<BlockPool<C>> {
        ensure_supported::<C>(&block.name, block)?;
        let settings = PoolSettings::from_document(&block.document_or_masked())?;
        let keeps_its_user: Loader = Arc::new(|name: &BlockName| {
            Err(Error::Internal(format!(
                "a leased pool of {name} keeps its own user"
            )))
        });
        let target = Arc::new(Target {
            name: block.name.clone(),
            live: RwLock::new(live_from_info(info, block.version)?),
            loader: keeps_its_user,
            stale: false.into(),
            last_reload: Mutex::new(None),
            failure: Mutex::new(None),
        });
        let manager = BlockManager {
            target: target.clone(),
            _connection: PhantomData,
        };
        Ok(BlockPool {
            pool: build_pool(&settings, manager),
            target,
        })
    }

    fn timed_out(&self, failure: Option<(ConnectFailure, String)>, timeout: Duration) -> Error {
        let waited = humantime::format_duration(timeout);
        match failure {
            Some((kind, message)) => Error::Connect {
                kind,
                message: format!("{message} (retried for {waited})"),
            },
            None => Error::Connect {
                kind: ConnectFailure::Timeout,
                message: format!(
                    "no connection to block {:?}'s database within {waited} \
                     (pool.connection_timeout; {} connections at most)",
                    self.target.name,
                    self.pool.max_size()
                ),
            },
        }
    }
}

/// Pool settings, from the block's optional `pool` object.
#[derive(Clone, Debug, PartialEq)]
pub struct PoolSettings {
    pub max_size: u32,
    pub min_idle: Option<u32>,
    pub connection_timeout: Duration,
    pub idle_timeout: Option<Duration>,
    pub max_lifetime: Option<Duration>,
    pub test_on_check_out: bool,
}

impl Default for PoolSettings {
    fn default() -> Self {
        PoolSettings {
            max_size: 10,
            min_idle: Some(0),
            connection_timeout: Duration::from_secs(10),
            idle_timeout: Some(Duration::from_secs(600)),
            max_lifetime: Some(Duration::from_secs(1800)),
            test_on_check_out: true,
        }
    }
}

impl PoolSettings {
    /// Reads `pool.*` from a block document; absent fields keep their defaults.
    /// Durations are seconds (`30`) or human-readable (`"30s"`, `"5m"`).
    pub fn from_document(doc: &Value) -> Result<PoolSettings> {
        let mut s = PoolSettings::default();
        let Some(pool) = doc.get("pool").filter(|p| !p.is_null()) else {
            return Ok(s);
        };
        let count = |field| pool_count(pool, field);
        let duration = |field| pool_duration(pool, field);
        if let Some(n) = count("max_size")? {
            if n == 0 {
                return Err(bad_pool("max_size", "must be at least 1"));
            }
            s.max_size = n;
        }
        if let Some(n) = count("min_idle")? {
            s.min_idle = Some(n.min(s.max_size));
        }
        if let Some(d) = duration("connection_timeout")? {
            s.connection_timeout = d.max(Duration::from_millis(1));
        }
        if pool.get("idle_timeout").is_some() {
            s.idle_timeout = duration("idle_timeout")?;
        }
        if pool.get("max_lifetime").is_some() {
            s.max_lifetime = duration("max_lifetime")?;
        }
        if let Some(v) = pool.get("test_on_check_out").filter(|v| !v.is_null()) {
            s.test_on_check_out = v
                .as_bool()
                .ok_or_else(|| bad_pool("test_on_check_out", "must be true or false"))?;
        }
        Ok(s)
    }
}

fn bad_pool(field: &str, what: &str) -> Error {
    Error::InvalidBlockData(format!("pool.{field}: {what}"))
}

/// `pool.{field}` as a count, if set.
fn pool_count(pool: &Value, field: &str) -> Result<Option<u32>> {
    match pool.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => v
            .as_u64()
            .and_then(|n| u32::try_from(n).ok())
            .map(Some)
            .ok_or_else(|| bad_pool(field, "must be a whole number")),
    }
}

/// `pool.{field}` as a duration, if set. Huge, negative or non-finite values are
/// refused here (and by the schema), so no duration overflows in the pool's arithmetic.
fn pool_duration(pool: &Value, field: &str) -> Result<Option<Duration>> {
    let found = match pool.get(field) {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::String(text)) => humantime::parse_duration(text).ok(),
        Some(v) => v
            .as_f64()
            .filter(|n| n.is_finite() && (0.0..=MAX_DURATION.as_secs_f64()).contains(n))
            .map(Duration::from_secs_f64),
    };
    found
        .filter(|d| *d <= MAX_DURATION)
        .map(Some)
        .ok_or_else(|| {
            bad_pool(
                field,
                "must be seconds or a duration such as \"30s\", at most 30 days",
            )
        })
}

/// The longest duration a pool setting may hold.
const MAX_DURATION: Duration = Duration::from_secs(30 * 24 * 3600);

/// Where a pool connects to, replaced in place when the block changes.
struct Live {
    backend: Backend,
    url: Zeroizing<String>,
    /// To scrub from driver messages.
    password: Zeroizing<String>,
    /// The connection details without the password, to describe failures.
    info: ConnectionInfo,
    version: i64,
}

/// Loads a block by name, secrets included (the registry, local or remote).
pub(crate) type Loader = Arc<dyn Fn(&BlockName) -> Result<Block> + Send + Sync>;

/// State shared by a pool's manager and the cache entry.
struct Target {
    name: BlockName,
    live: RwLock<Live>,
    loader: Loader,
    /// Set when a connection failed authentication: the next `pool(name)` re-reads.
    stale: std::sync::atomic::AtomicBool,
    last_reload: Mutex<Option<Instant>>,
    /// The last connection failure: when, its kind and its (scrubbed) message.
    failure: Mutex<Option<(Instant, ConnectFailure, String)>>,
}

impl Target {
    fn record_failure(&self, err: &diesel::ConnectionError) {
        let kind = classify::connection_error(err);
        let message = {
            let live = self.live.read().unwrap_or_else(|e| e.into_inner());
            super::probe::failure_message(kind, &live.info, &err.to_string(), &live.password)
        };
        *self.failure.lock().unwrap_or_else(|e| e.into_inner()) =
            Some((Instant::now(), kind, message));
    }

    /// The last failure if it happened after `since`.
    fn failure_since(&self, since: Instant) -> Option<(ConnectFailure, String)> {
        let failure = self.failure.lock().unwrap_or_else(|e| e.into_inner());
        failure
            .as_ref()
            .filter(|(at, _, _)| *at >= since)
            .map(|(_, kind, message)| (*kind, message.clone()))
    }

    /// Re-reads the block after an authentication failure (at most once a second);
    /// true if it changed and the connection is worth retrying. Concurrent callers wait
    /// for a re-read in progress, so none of them judges a failure by stale details.
    fn reload_after_auth_failure(&self) -> bool {
        self.stale.store(true, std::sync::atomic::Ordering::Relaxed);
        let mut last = self.last_reload.lock().unwrap_or_else(|e| e.into_inner());
        if last.is_some_and(|t| t.elapsed() < Duration::from_secs(1)) {
            return false;
        }
        *last = Some(Instant::now());
        let Ok(block) = (self.loader)(&self.name) else {
            return false;
        };
        if block.version == self.version() {
            return false;
        }
        match live_from_block(&block) {
            Ok(live) => {
                *self.live.write().unwrap_or_else(|e| e.into_inner()) = live;
                true
            }
            Err(_) => false,
        }
    }

    /// The block version the pool connects with now.
    fn version(&self) -> i64 {
        self.live.read().unwrap_or_else(|e| e.into_inner()).version
    }
}

fn live_from_block(block: &Block) -> Result<Live> {
    live_from_info(connection_info(block)?, block.version)
}

fn live_from_info(mut info: ConnectionInfo, version: i64) -> Result<Live> {
    let url = Zeroizing::new(info.connection_url()?);
    let password = Zeroizing::new(info.password.take().unwrap_or_default());
    Ok(Live {
        backend: info.driver()?.backend(),
        url,
        password,
        info,
        version,
    })
}

/// The connection details of a loaded block.
pub fn connection_info(block: &Block) -> Result<ConnectionInfo> {
    let doc = block.document_or_masked();
    ConnectionInfo::from_document(&block.name, &doc)
}

/// The r2d2 manager of a block pool. Its `Debug` names the block, never the URL.
pub struct BlockManager<C> {
    target: Arc<Target>,
    _connection: PhantomData<fn() -> C>,
}

impl<C> fmt::Debug for BlockManager<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "BlockManager({:?})", self.target.name)
    }
}

impl<C: Connect> BlockManager<C> {
    /// Connects with the current details; also returns the block version they are of.
    fn try_connect(&self) -> (std::result::Result<C, diesel::ConnectionError>, i64) {
        let live = self.target.live.read().unwrap_or_else(|e| e.into_inner());
        (C::connect(live.backend, &live.url), live.version)
    }
}

impl<C: Connect> ManageConnection for BlockManager<C> {
    type Connection = C;
    type Error = diesel::r2d2::Error;

    fn connect(&self) -> std::result::Result<C, Self::Error> {
        let (mut result, mut used) = self.try_connect();
        if let Err(err) = &result
            && classify::connection_error(err) == ConnectFailure::AuthenticationFailed
            && (self.target.reload_after_auth_failure() || self.target.version() != used)
        {
            (result, used) = self.try_connect();
        }
        if let Err(err) = &result
            && self.target.version() == used
        {
            // Failed with the block's current details: `BlockPool::get` may report it.
            self.target.record_failure(err);
        }
        result.map_err(diesel::r2d2::Error::ConnectionError)
    }

    fn is_valid(&self, conn: &mut C) -> std::result::Result<(), Self::Error> {
        conn.ping().map_err(diesel::r2d2::Error::QueryError)
    }

    fn has_broken(&self, conn: &mut C) -> bool {
        std::thread::panicking() || conn.is_broken()
    }
}

struct Entry {
    pool: Box<dyn Any + Send + Sync>,
    target: Arc<Target>,
    settings: PoolSettings,
    url_fingerprint: [u8; 32],
    checked: Instant,
}

/// Pools by (block name, connection type), refreshed from the registry at most every
/// `refresh` (and at once after an authentication failure).
pub(crate) struct PoolCache {
    refresh: Duration,
    /// By block name, then by connection type (looked up by `&str`, no allocation).
    entries: RwLock<HashMap<String, HashMap<TypeId, Entry>>>,
}

impl fmt::Debug for PoolCache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.entries.read().map(|e| e.len()).unwrap_or_default();
        write!(f, "PoolCache({n} pools, refresh {:?})", self.refresh)
    }
}

fn fingerprint(url: &str) -> [u8; 32] {
    use sha2::Digest;
    sha2::Sha256::digest(url.as_bytes()).into()
}

impl PoolCache {
    pub(crate) fn new(refresh: Duration) -> Self {
        PoolCache {
            refresh,
            entries: RwLock::new(HashMap::new()),
        }
    }

    /// The cached pool if it is fresh; otherwise re-reads the block through `loader`
    /// and keeps the pool if nothing that matters changed, or builds a new one.
    pub(crate) fn get<C: Connect>(
        &self,
        name: &BlockName,
        loader: impl FnOnce() -> Loader,
    ) -> Result<BlockPool<C>> {
        let type_id = TypeId::of::<C>();
        if let Some(pool) = self.fresh::<C>(name) {
            return Ok(pool);
        }
        let loader = loader();
        let block = loader(name)?;
        ensure_supported::<C>(name, &block)?;
        let settings = PoolSettings::from_document(&block.document_or_masked())?;
        let live = live_from_block(&block)?;
        let url_fingerprint = fingerprint(&live.url);
        let mut entries = self.entries.write().unwrap_or_else(|e| e.into_inner());
        let by_type = entries.entry(name.to_string()).or_default();
        if let Some(entry) = by_type.get_mut(&type_id)
            && let Some(pool) = entry.refreshed::<C>(&settings, url_fingerprint, &block)?
        {
            return Ok(pool);
        }
        let target = Arc::new(Target {
            name: name.clone(),
            live: RwLock::new(live),
            loader: loader.clone(),
            stale: false.into(),
            last_reload: Mutex::new(None),
            failure: Mutex::new(None),
        });
        let pool = build_pool(
            &settings,
            BlockManager {
                target: target.clone(),
                _connection: PhantomData,
            },
        );
        by_type.insert(
            type_id,
            Entry {
                pool: Box::new(pool.clone()),
                target: target.clone(),
                settings,
                url_fingerprint,
                checked: Instant::now(),
            },
        );
        Ok(BlockPool { pool, target })
    }
}

impl PoolCache {
    /// The cached pool of this connection type, if it was checked within the refresh
    /// time and nothing marked it stale.
    fn fresh<C: Connect>(&self, name: &str) -> Option<BlockPool<C>> {
        let entries = self.entries.read().unwrap_or_else(|e| e.into_inner());
        let entry = entries.get(name)?.get(&TypeId::of::<C>())?;
        let fresh = entry.checked.elapsed() < self.refresh
            && !entry
                .target
                .stale
                .load(std::sync::atomic::Ordering::Relaxed);
        let pool = entry.pool.downcast_ref::<r2d2::Pool<BlockManager<C>>>()?;
        fresh.then(|| BlockPool {
            pool: pool.clone(),
            target: entry.target.clone(),
        })
    }
}

impl Entry {
    /// After a re-read of the block: the same pool if neither its settings nor its
    /// connection URL changed (only the version is updated); otherwise `None`, with
    /// the old pool's holders given the new credentials for their new connections.
    fn refreshed<C: Connect>(
        &mut self,
        settings: &PoolSettings,
        url_fingerprint: [u8; 32],
        block: &Block,
    ) -> Result<Option<BlockPool<C>>> {
        self.target
            .stale
            .store(false, std::sync::atomic::Ordering::Relaxed);
        self.checked = Instant::now();
        let mut live = self.target.live.write().unwrap_or_else(|e| e.into_inner());
        if self.settings == *settings
            && self.url_fingerprint == url_fingerprint
            && let Some(pool) = self.pool.downcast_ref::<r2d2::Pool<BlockManager<C>>>()
        {
            live.version = block.version;
            return Ok(Some(BlockPool {
                pool: pool.clone(),
                target: self.target.clone(),
            }));
        }
        *live = live_from_block(block)?;
        Ok(None)
    }
}

/// Refuses a block whose driver this build lacks or that connection type `C` cannot
/// speak.
fn ensure_supported<C: Connect>(name: &str, block: &Block) -> Result<()> {
    let info = connection_info(block)?;
    let driver = info.driver()?;
    driver.backend().ensure_compiled()?;
    if !C::supports(driver.backend()) {
        return Err(Error::UnsupportedDriver(format!(
            "block {name:?} uses driver {driver} ({} backend); ask for a pool of that \
             connection type, or use any_pool",
            driver.backend().as_str()
        )));
    }
    Ok(())
}

fn build_pool<C: Connect>(
    settings: &PoolSettings,
    manager: BlockManager<C>,
) -> r2d2::Pool<BlockManager<C>> {
    r2d2::Pool::builder()
        .max_size(settings.max_size)
        .min_idle(settings.min_idle)
        .connection_timeout(settings.connection_timeout)
        .idle_timeout(settings.idle_timeout)
        .max_lifetime(settings.max_lifetime)
        .test_on_check_out(settings.test_on_check_out)
        .error_handler(Box::new(r2d2::NopErrorHandler))
        .build_unchecked(manager)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn pool_settings_from_a_block() {
        let s = PoolSettings::from_document(&json!({"pool": {
            "max_size": 4, "min_idle": 9, "connection_timeout": "2s",
            "idle_timeout": null, "max_lifetime": 60, "test_on_check_out": false}}))
        .unwrap();
        assert_eq!(s.max_size, 4);
        assert_eq!(s.min_idle, Some(4));
        assert_eq!(s.connection_timeout, Duration::from_secs(2));
        assert_eq!(s.idle_timeout, None);
        assert_eq!(s.max_lifetime, Some(Duration::from_secs(60)));
        assert!(!s.test_on_check_out);
        assert_eq!(
            PoolSettings::from_document(&json!({})).unwrap(),
            PoolSettings::default()
        );
        for bad in [
            json!({"max_size": 0}),
            json!({"max_size": "x"}),
            json!({"idle_timeout": "soon"}),
            // Huge, negative and non-finite durations are errors, never panics.
            json!({"connection_timeout": 1e300}),
            json!({"connection_timeout": -1}),
            json!({"connection_timeout": f64::MAX}),
            json!({"connection_timeout": "500000000years"}),
            json!({"max_lifetime": "99999999999999999999s"}),
            json!({"idle_timeout": 2_592_001}),
        ] {
            let err = PoolSettings::from_document(&json!({ "pool": bad })).unwrap_err();
            assert_eq!(err.code(), "INVALID_BLOCK_DATA");
        }
    }
}
