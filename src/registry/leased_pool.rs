//! A pool tied to a lease (`Registry::leased_pool`): it connects as a user leased for
//! it, renews the lease at about two thirds of what is left of it, and before
//! `lease.max_ttl` leases a new user, builds a new pool, swaps it in at once, lets the
//! old pool's checked-out connections finish their work, then revokes the old lease.
//! `get` only ever uses the current pool, so it never hands out a connection of a
//! revoked user. Dropping it revokes its lease.

use std::sync::{Arc, Condvar, Mutex, RwLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::handle::Registry;
use super::leases::Lease;
use crate::connect::{BlockConnection, BlockPool};
use crate::db::Connect;
use crate::error::{Error, Result};
use crate::name::{BlockName, ToBlockName};

/// How long a retired pool's checked-out connections may take to come back before its
/// lease is revoked anyway (which ends their sessions).
const DRAIN_LIMIT: Duration = Duration::from_secs(30);
/// How soon a failed renewal or rollover is tried again.
const RETRY: Duration = Duration::from_secs(1);

/// The pool in use and the lease it connects as.
struct Current<C: Connect> {
    pool: BlockPool<C>,
    lease: Lease,
}

struct Shared<C: Connect> {
    registry: Registry,
    block: BlockName,
    current: RwLock<Current<C>>,
    /// Set when the pool is dropped; the worker wakes at once.
    stopping: Mutex<bool>,
    wake: Condvar,
    last_error: Mutex<Option<String>>,
    rollovers: std::sync::atomic::AtomicU64,
}

/// A pool of connections as a leased user of a block, kept current by a worker
/// thread; see the module's documentation.
pub struct LeasedPool<C: Connect> {
    shared: Arc<Shared<C>>,
    worker: Option<JoinHandle<()>>,
}

impl<C: Connect> std::fmt::Debug for LeasedPool<C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "LeasedPool({:?})", self.shared.block)
    }
}

fn millis(text: &str) -> i64 {
    crate::time::parse_rfc3339(text).unwrap_or_default()
}

impl Registry {
    /// A pool that connects as a user leased for it (the block declares `lease.admin`
    /// and `lease.role`), renewed and rolled over before `lease.max_ttl` by itself.
    pub fn leased_pool<C: Connect>(
        &self,
        name: &(impl ToBlockName + ?Sized),
    ) -> Result<LeasedPool<C>> {
        let block = name.to_block_name()?.into_owned();
        let current = leased::<C>(self, &block)?;
        let shared = Arc::new(Shared {
            registry: self.clone(),
            block,
            current: RwLock::new(current),
            stopping: Mutex::new(false),
            wake: Condvar::new(),
            last_error: Mutex::new(None),
            rollovers: 0.into(),
        });
        let worker = {
            let shared = shared.clone();
            std::thread::Builder::new()
                .name("blockyard-lease".into())
                .spawn(move || keep_current(&shared))
                .map_err(|e| Error::Internal(format!("starting the lease worker: {e}")))?
        };
        Ok(LeasedPool {
            shared,
            worker: Some(worker),
        })
    }
}

/// A new lease and a pool that connects as its user.
fn leased<C: Connect>(registry: &Registry, block: &BlockName) -> Result<Current<C>> {
    let issued = registry.issue_lease(block, None)?;
    let loaded = registry.get_block_masked(block)?;
    match BlockPool::with_credentials(&loaded, issued.connection.clone()) {
        Ok(pool) => Ok(Current {
            pool,
            lease: issued.lease,
        }),
        Err(err) => {
            let _ = registry.revoke_lease(&issued.lease.lease_id);
            Err(err)
        }
    }
}

impl<C: Connect> LeasedPool<C> {
    /// A connection as the current leased user.
    pub fn get(&self) -> Result<BlockConnection<C>> {
        let pool = self.read().pool.clone();
        pool.get()
    }

    /// The lease the pool connects as now.
    pub fn lease(&self) -> Lease {
        self.read().lease.clone()
    }

    /// How many times the pool moved to a new user.
    pub fn rollovers(&self) -> u64 {
        self.shared
            .rollovers
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    /// The last renewal or rollover that failed (it is tried again), if any.
    pub fn last_error(&self) -> Option<String> {
        self.shared
            .last_error
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Current<C>> {
        self.shared
            .current
            .read()
            .unwrap_or_else(|e| e.into_inner())
    }
}

impl<C: Connect> Drop for LeasedPool<C> {
    fn drop(&mut self) {
        *self
            .shared
            .stopping
            .lock()
            .unwrap_or_else(|e| e.into_inner()) = true;
        self.shared.wake.notify_all();
        if let Some(worker) = self.worker.take() {
            let _ = worker.join();
        }
        let id = self.read().lease.lease_id.clone();
        let _ = self.shared.registry.revoke_lease(&id);
    }
}

/// Waits `wait` unless the pool is dropped meanwhile; whether it was.
fn stopped<C: Connect>(shared: &Shared<C>, wait: Duration) -> bool {
    let stopping = shared.stopping.lock().unwrap_or_else(|e| e.into_inner());
    let (stopping, _) = shared
        .wake
        .wait_timeout_while(stopping, wait, |stop| !*stop)
        .unwrap_or_else(|e| e.into_inner());
    *stopping
}

/// The worker: renews at two thirds of what is left, rolls over when a renewal could
/// not give a whole `lease.ttl` before `max_expires_at`.
fn keep_current<C: Connect>(shared: &Shared<C>) {
    loop {
        let lease = shared
            .current
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .lease
            .clone();
        let now = crate::time::now_millis();
        let left = (millis(&lease.expires_at) - now).max(0);
        let wait = Duration::from_millis((left * 2 / 3) as u64);
        if stopped(shared, wait) {
            return;
        }
        let outcome = step(shared, &lease);
        *shared.last_error.lock().unwrap_or_else(|e| e.into_inner()) =
            outcome.as_ref().err().map(ToString::to_string);
        if outcome.is_err() && stopped(shared, RETRY) {
            return;
        }
    }
}

/// Renews the lease, or rolls over to a new one.
fn step<C: Connect>(shared: &Shared<C>, lease: &Lease) -> Result<()> {
    let block = shared.registry.get_block_masked(&shared.block)?;
    let ttl = super::leases::lease_spec(&block)?.ttl;
    let now = crate::time::now_millis();
    let whole_renewal = now + ttl.as_millis() as i64 <= millis(&lease.max_expires_at);
    if whole_renewal && shared.registry.renew_lease(&lease.lease_id, None).is_ok() {
        let renewed = shared.registry.lease(&lease.lease_id)?;
        shared
            .current
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .lease = renewed;
        return Ok(());
    }
    roll_over(shared)
}

/// A new user and pool swapped in; the old pool drained, then its lease revoked.
fn roll_over<C: Connect>(shared: &Shared<C>) -> Result<()> {
    let fresh = leased::<C>(&shared.registry, &shared.block)?;
    let old = std::mem::replace(
        &mut *shared.current.write().unwrap_or_else(|e| e.into_inner()),
        fresh,
    );
    shared
        .rollovers
        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let started = Instant::now();
    while started.elapsed() < DRAIN_LIMIT {
        let state = old.pool.state();
        if state.connections == state.idle_connections {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let Current { pool, lease } = old;
    drop(pool);
    shared.registry.revoke_lease(&lease.lease_id).map(|_| ())
}
