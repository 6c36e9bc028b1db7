//! The HTTP server (`blockyard server`): Rocket 0.5 serving the registry over `/api/v1`
//! and the routes a stock Prefect client uses under `/prefect/api`. Diesel work runs on
//! Tokio's blocking pool, never on the async executor.

mod api;
mod cache;
mod databases;
mod http;
mod prefect;
mod transfer;
mod ui;

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use rocket::{Build, Rocket, catchers, get, routes};
use serde_json::json;

use crate::audit::{AuditLog, AuditOptions};
use crate::auth::Verifier;
use crate::error::{Error, Result};
use crate::registry::Registry;
use crate::wire::Health;
use http::{ApiError, ApiResult, Json};

pub use http::BODY_LIMIT;

/// What every route shares.
pub struct State {
    pub registry: Registry,
    pub verifier: Arc<Verifier>,
    pub audit: AuditLog,
    pub blocks: Arc<cache::BlockCache>,
    /// The web UI's signed-in browsers and last connection tests.
    pub ui: ui::UiState,
}

/// How to run the server.
#[derive(Clone, Debug)]
pub struct ServerOptions {
    pub address: IpAddr,
    pub port: u16,
    /// How long a verified token is trusted before it is checked again (revocations
    /// reach every server within this time).
    pub token_cache: Duration,
    /// Log one JSON line per request on stderr.
    pub request_log: bool,
    pub workers: Option<usize>,
    /// How long a block read is kept in memory for the next read of it (every hit is
    /// first confirmed current with the store); zero keeps nothing.
    pub block_cache: Duration,
    /// How often scheduled password rotations (`rotation.every`) are looked for.
    pub rotation_check: Duration,
    /// How long audit records are kept (pruned in the background); `None` keeps them.
    pub audit_retention: Option<Duration>,
    /// How the audit log is written (folding of repeated reads, writer threads).
    pub audit: AuditOptions,
}

impl Default for ServerOptions {
    fn default() -> Self {
        ServerOptions {
            address: IpAddr::from([127, 0, 0, 1]),
            port: 4200,
            token_cache: Duration::from_secs(1),
            request_log: true,
            workers: None,
            block_cache: Duration::from_secs(30),
            rotation_check: Duration::from_secs(60),
            audit_retention: Some(DEFAULT_AUDIT_RETENTION),
            audit: AuditOptions::default(),
        }
    }
}

/// How long a request waits for the store: a store that accepts connections but never
/// answers (a hung primary, a partition) gets the client a 503 `STORE_UNAVAILABLE`
/// within this, instead of a wait as long as the outage. (Checking a connection out of
/// the pool has its own, shorter, timeout.)
const STORE_DEADLINE: Duration = Duration::from_secs(5);

/// How long `/ready` waits for the store before it answers "not ready".
const READY_DEADLINE: Duration = Duration::from_millis(900);

/// Runs a store call on the blocking pool; answers `STORE_UNAVAILABLE` if it has not
/// finished within [`STORE_DEADLINE`] (the call itself goes on, and its connection
/// comes back to the pool once the store answers).
pub(crate) async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T> + Send + 'static,
) -> ApiResult<T> {
    within(STORE_DEADLINE, work).await.map_err(ApiError::from)
}

/// [`blocking`] for work that may rightly take long (provisioning a database, an
/// import, an export, testing a block's own connection): no deadline beyond its own.
pub(crate) async fn blocking_long<T: Send + 'static>(
    work: impl FnOnce() -> Result<T> + Send + 'static,
) -> ApiResult<T> {
    within(Duration::from_secs(24 * 3600), work)
        .await
        .map_err(ApiError::from)
}

/// Runs `work` on the blocking pool; `STORE_UNAVAILABLE` if it has not finished
/// within `deadline`.
async fn within<T: Send + 'static>(
    deadline: Duration,
    work: impl FnOnce() -> Result<T> + Send + 'static,
) -> Result<T> {
    let task = rocket::tokio::task::spawn_blocking(work);
    match rocket::tokio::time::timeout(deadline, task).await {
        Err(_) => Err(Error::StoreUnavailable(format!(
            "the store did not answer within {} s",
            deadline.as_secs_f32()
        ))),
        Ok(joined) => joined.map_err(|_| Error::Store("a store call panicked".into()))?,
    }
}

#[get("/health")]
fn health() -> Json {
    Json::ok(&Health {
        status: "ok".into(),
    })
}

#[get("/ready")]
async fn ready(state: &rocket::State<State>) -> ApiResult<Json> {
    let registry = state.registry.clone();
    // Unauthenticated: up or down and a code, never the store's address or error.
    let status = within(READY_DEADLINE, move || registry.migration_status())
        .await
        .map_err(ApiError::from)
        .map_err(|err| ApiError {
            status: rocket::http::Status::ServiceUnavailable,
            message: "the store is not ready; details are in the server's log".into(),
            ..err
        })?;
    if !status.pending.is_empty() {
        return Err(ApiError::new(
            rocket::http::Status::ServiceUnavailable,
            "STORE_NOT_MIGRATED",
            format!("{} pending migration(s)", status.pending.len()),
        ));
    }
    Ok(Json::ok(&Health {
        status: "ready".into(),
    }))
}

/// The Rocket application for a registry. Longer than most functions, for a reason:
/// it holds the one route table, every route of the API in one place.
pub fn app(registry: Registry, options: &ServerOptions) -> Result<Rocket<Build>> {
    let state = State {
        verifier: Arc::new(registry.token_verifier(options.token_cache)?),
        audit: registry.start_audit_log(&options.audit)?,
        blocks: Arc::new(cache::BlockCache::new(options.block_cache)),
        ui: ui::UiState::default(),
        registry,
    };
    let sweeper = cache_sweeper(
        state.blocks.clone(),
        options.block_cache.max(Duration::from_secs(1)),
    );
    let rotations = databases::rotation_scheduler(
        state.registry.clone(),
        options.rotation_check.max(Duration::from_millis(100)),
    );
    let pruner = match options.audit_retention {
        Some(retention) => audit_pruner(state.registry.clone(), retention),
        None => rocket::fairing::AdHoc::on_liftoff("audit kept for ever", |_| Box::pin(async {})),
    };
    Ok(rocket::custom(rocket_config(options))
        .manage(state)
        .attach(sweeper)
        .attach(rotations)
        .attach(pruner)
        .attach(http::RequestLog {
            enabled: options.request_log,
        })
        .mount("/", routes![health, ready])
        .mount(
            "/api/v1",
            routes![
                api::list_blocks,
                api::get_block,
                api::create_block,
                api::update_block,
                api::rename_block,
                api::delete_block,
                api::block_history,
                api::rollback_block,
                api::undelete_block,
                api::purge_block,
                api::list_types,
                api::get_type,
                api::register_type,
                api::list_audit,
                api::export_audit,
                api::openapi,
                transfer::export,
                transfer::import,
                databases::create_database,
                databases::list_databases,
                databases::create_user,
                databases::drop_database,
                databases::apply_schema,
                databases::rotate_password,
            ],
        )
        .mount("/prefect/api", prefect::routes())
        .mount("/ui", ui::routes())
        .attach(ui::SecurityHeaders)
        .register("/ui", ui::catchers())
        .register(
            "/",
            catchers![
                http::bad_request,
                http::unauthorized,
                http::not_found,
                http::unavailable,
                http::payload_too_large,
                http::unprocessable,
                http::default_catcher
            ],
        ))
}

/// Rocket's settings: our address, port and workers; its own logging off (the request
/// log is ours).
fn rocket_config(options: &ServerOptions) -> rocket::Config {
    let mut config = rocket::Config {
        address: options.address,
        port: options.port,
        log_level: rocket::config::LogLevel::Off,
        cli_colors: false,
        ident: rocket::config::Ident::try_new("blockyard").expect("valid ident"),
        ..rocket::Config::default()
    };
    if let Some(workers) = options.workers {
        config.workers = workers;
    }
    config
}

/// How long audit records are kept unless `--audit-retention` says otherwise: long
/// enough for a quarterly review, short enough that the log does not grow for ever.
pub const DEFAULT_AUDIT_RETENTION: Duration = Duration::from_secs(90 * 24 * 3600);

/// How often the server prunes audit records past their retention.
const AUDIT_PRUNE_EVERY: Duration = Duration::from_secs(600);

/// Prunes audit records older than `retention` every [`AUDIT_PRUNE_EVERY`] (and once
/// at start), in small batches that never hold up requests, by one server at a time
/// when several share a PostgreSQL store; each prune is on record as `scheduler`'s.
/// Retention counts from [`Registry::audit_clock_anchor`] on a monotonic clock, so a
/// wall clock that jumps ahead never prunes what was written recently.
fn audit_pruner(registry: Registry, retention: Duration) -> rocket::fairing::AdHoc {
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
                            http::log_line(json!({"scheduler": "prune-audit", "error": err.code()}))
                        }
                        Err(_) => {}
                    }
                }
            });
        })
    })
}

/// Drops expired kept blocks (and the secrets they hold) every `every`.
fn cache_sweeper(blocks: Arc<cache::BlockCache>, every: Duration) -> rocket::fairing::AdHoc {
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

/// How long a stopping server waits for its audit writers to commit what they hold and
/// close their store connections.
const WRITERS_GRACE: Duration = Duration::from_secs(5);

/// Checks the store and master key, then serves until SIGINT/SIGTERM (in-flight
/// requests are finished first, then the audit writers, so store connections close
/// cleanly and SQLite leaves no WAL file behind).
pub fn serve(registry: Registry, options: ServerOptions) -> Result<()> {
    registry.verify_master_key()?;
    let runtime = rocket::tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("blockyard-http")
        .build()
        .map_err(|err| Error::io("starting the server runtime", err))?;
    let writers = runtime.block_on(async move {
        let address = options.address;
        let port = options.port;
        let rocket = app(registry, &options)?
            .attach(rocket::fairing::AdHoc::on_liftoff("listening", move |_| {
                // Logged once the socket is bound, never before.
                Box::pin(async move {
                    http::log_line(json!({"event": "listening",
                        "address": address.to_string(), "port": port}));
                })
            }))
            .ignite()
            .await
            .map_err(|err| Error::Config(format!("cannot start the server: {err}")))?;
        let writers = rocket.state::<State>().map(|state| state.audit.finished());
        rocket.launch().await.map_err(|err| match err.kind() {
            rocket::error::ErrorKind::Bind(source) => Error::AddressUnavailable(format!(
                "cannot listen on {address}:{port}: {source}; choose another port with \
                 --port (or BLOCKYARD_PORT), or stop the program using it"
            )),
            _ => Error::Config(format!("the server stopped: {err}")),
        })?;
        Ok::<_, Error>(writers)
    })?;
    // The runtime's tasks hold the last handles to the store; once they are gone, the
    // writers see their queue close and end.
    drop(runtime);
    if let Some(writers) = writers
        && !writers.wait(WRITERS_GRACE)
    {
        http::log_line(json!({"event": "stopped",
            "warning": "the audit writers did not end in time"}));
    }
    Ok(())
}
