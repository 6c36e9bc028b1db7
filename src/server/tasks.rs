//! The server's background work, each started once the server listens: pruning the
//! audit log past its retention, running scheduled password rotations, and dropping
//! expired kept blocks. Each holds a store lock where several servers share one store.

use std::sync::Arc;
use std::time::Duration;

use serde_json::json;

use super::cache::BlockCache;
use super::http::log_line;
use super::metrics::Metrics;
use crate::block::ChangeRecord;
use crate::registry::{LEASE_LOCK, ROTATION_LOCK, Registry};

/// How often the server prunes audit records past their retention.
const AUDIT_PRUNE_EVERY: Duration = Duration::from_secs(600);

/// Prunes audit records older than `retention` every [`AUDIT_PRUNE_EVERY`] (and once
/// at start), in small batches that never hold up requests, by one server at a time
/// when several share a PostgreSQL store; each prune is on record as `scheduler`'s.
/// Retention counts from [`Registry::audit_clock_anchor`] on a monotonic clock, so a
/// wall clock that jumps ahead never prunes what was written recently.
pub fn audit_pruner(registry: Registry, retention: Duration) -> rocket::fairing::AdHoc {
    rocket::fairing::AdHoc::on_liftoff("audit pruner", move |_| {
        Box::pin(async move {
            rocket::tokio::spawn(async move {
                let mut ticks = rocket::tokio::time::interval(AUDIT_PRUNE_EVERY);
                let mut anchor: Option<(i64, std::time::Instant)> = None;
                loop {
                    ticks.tick().await;
                    let registry = registry.clone();
                    let pruned = rocket::tokio::task::spawn_blocking(move || {
                        let (at, since) = match anchor {
                            Some(anchored) => anchored,
                            None => (registry.audit_clock_anchor()?, std::time::Instant::now()),
                        };
                        let now = at.saturating_add(since.elapsed().as_millis() as i64);
                        let before =
                            now.min(crate::time::now_millis()) - retention.as_millis() as i64;
                        registry
                            .exclusively(crate::registry::AUDIT_PRUNE_LOCK, || {
                                registry.prune_audit(before, "scheduler", |_, _| {})
                            })?
                            .transpose()
                            .map(|_| (at, since))
                    })
                    .await;
                    match pruned {
                        Ok(Ok(anchored)) => anchor = Some(anchored),
                        Ok(Err(err)) => {
                            log_line(json!({"scheduler": "prune-audit", "error": err.code()}))
                        }
                        Err(_) => {}
                    }
                }
            });
        })
    })
}

/// Runs scheduled password rotations (`rotation.every`) every `every`, while this server
/// holds the store's rotation lock (one server at a time when several share
/// PostgreSQL). Each rotation is audited as `rotate-password` by `scheduler`, committed
/// with the block's new version, before the admin block's password is used.
pub fn rotation_scheduler(
    registry: Registry,
    metrics: Arc<Metrics>,
    period: Duration,
) -> rocket::fairing::AdHoc {
    every("rotation scheduler", period, move || {
        run_due(&registry, &metrics)
    })
}

fn run_due(registry: &Registry, metrics: &Metrics) -> crate::error::Result<()> {
    registry
        .exclusively(ROTATION_LOCK, || {
            for (block, schedule) in registry.due_rotations()? {
                let request_id = format!("scheduler-{}", uuid::Uuid::new_v4().simple());
                let rotated = registry.run_scheduled_rotation(&block, &schedule, request_id);
                metrics.change("rotate-password", rotated.is_ok());
                if let Err(err) = rotated {
                    log_line(json!({"scheduler": "rotate-password",
                        "block": block, "error": err.code(), "detail": err.to_string()}));
                }
            }
            Ok(())
        })?
        .unwrap_or(Ok(()))
}

/// Reconciles leases every `every` (one server at a time on a shared store): expired
/// ones and work a crash cut short revoked, unknown managed users dropped; failures are
/// logged and kept on the lease for the next round.
pub fn lease_reconciler(
    registry: Registry,
    metrics: Arc<Metrics>,
    period: Duration,
) -> rocket::fairing::AdHoc {
    every("lease reconciler", period, move || {
        reconcile(&registry, &metrics)
    })
}

fn reconcile(registry: &Registry, metrics: &Metrics) {
    let record = ChangeRecord {
        request_id: format!("reconciler-{}", uuid::Uuid::new_v4().simple()),
        actor: "reconciler".into(),
        action: "lease-revoke",
        subject: String::new(),
        token_id: None,
        admin: false,
    };
    let registry = registry.on_behalf(record);
    let done = registry.exclusively(LEASE_LOCK, || registry.reconcile_leases());
    if let Ok(Some(Ok(report))) = &done {
        for (n, outcome) in [
            (report.revoked.len(), "ok"),
            (report.failed.len(), "failed"),
        ] {
            (0..n).for_each(|_| metrics.lease("reconcile_revoke", outcome));
        }
    }
    match done {
        Ok(Some(Ok(report))) if report.failed.is_empty() => {}
        Ok(Some(Ok(report))) => log_line(json!({"reconciler": "leases",
            "failed": report.failed, "revoked": report.revoked.len()})),
        Ok(None) => {}
        Ok(Some(Err(err))) | Err(err) => log_line(json!({"reconciler": "leases",
            "error": err.code(), "detail": err.to_string()})),
    }
}

/// Drops expired kept blocks (and the secrets they hold) every `every`.
pub fn cache_sweeper(blocks: Arc<BlockCache>, every: Duration) -> rocket::fairing::AdHoc {
    rocket::fairing::AdHoc::on_liftoff("block cache sweeper", move |_| {
        Box::pin(async move {
            rocket::tokio::spawn(async move {
                let mut every = rocket::tokio::time::interval(every);
                loop {
                    every.tick().await;
                    blocks.sweep();
                }
            });
        })
    })
}

/// Keeps the token verifier in step with token changes on other servers (PostgreSQL
/// LISTEN/NOTIFY), and says in the log and in `/metrics` when that stops or starts.
pub fn watch_tokens(state: &super::state::State) -> crate::error::Result<()> {
    let metrics = state.metrics.clone();
    state
        .registry
        .watch_tokens(&state.verifier, move |listening, why| {
            metrics.notifications.set(i64::from(listening));
            match listening {
                true => log_line(json!({"event": "token-notices", "listening": true})),
                false => log_line(json!({"event": "token-notices", "listening": false,
                    "detail": why, "fallback": "token checks are cached for token_cache"})),
            }
        })
}

const SESSION_PRUNE_EVERY: Duration = Duration::from_secs(300);

/// Removes expired UI sessions from the store now and then.
pub fn session_pruner(sessions: Arc<crate::registry::UiSessions>) -> rocket::fairing::AdHoc {
    every("session pruner", SESSION_PRUNE_EVERY, move || {
        sessions.prune()
    })
}

/// Once the server is up, runs `work` (store work, on the blocking pool) every
/// `period`, each run after the last has ended.
fn every<T: Send + 'static>(
    name: &'static str,
    period: Duration,
    work: impl Fn() -> T + Send + Sync + 'static,
) -> rocket::fairing::AdHoc {
    let work = Arc::new(work);
    rocket::fairing::AdHoc::on_liftoff(name, move |_| {
        Box::pin(async move {
            rocket::tokio::spawn(async move {
                let mut ticks = rocket::tokio::time::interval(period);
                loop {
                    ticks.tick().await;
                    let work = work.clone();
                    let _ = rocket::tokio::task::spawn_blocking(move || work()).await;
                }
            });
        })
    })
}

/// On SIGTERM or SIGINT: the server drains (`/ready` answers 503) and, if a load
/// balancer was watching `/ready`, goes on serving for `drain_time` so it stops sending
/// here; then Rocket stops taking connections and finishes what is in flight within
/// the rest of the shutdown grace. A second signal stops it at once.
pub async fn drain_on_signal(
    fleet: Arc<super::state::Fleet>,
    shutdown: rocket::Shutdown,
    drain_time: Duration,
) {
    use rocket::tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        log_line(json!({"event": "signals", "warning": "cannot listen for SIGTERM"}));
        return;
    };
    rocket::tokio::select! {
        _ = term.recv() => {},
        _ = int.recv() => {},
    }
    let watched = fleet.drain();
    let wait = if watched { drain_time } else { Duration::ZERO };
    log_line(json!({"event": "draining", "wait_ms": wait.as_millis() as u64}));
    rocket::tokio::select! {
        _ = rocket::tokio::time::sleep(wait) => {},
        _ = term.recv() => {},
        _ = int.recv() => {},
    }
    shutdown.notify();
}
