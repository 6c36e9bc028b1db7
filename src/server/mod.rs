//! The HTTP server (`blockyard server`): Rocket 0.5 serving the registry over `/api/v1`,
//! the routes a stock Prefect client uses under `/prefect/api`, and the web UI under
//! `/ui`. This file mounts the floors below it and runs the server; it holds no route.
//!
//! Floors, from the bottom: `response` (errors and JSON answers), `cache`, `sessions`,
//! `slots`, `state` (what routes share; store work on the blocking pool), `guard` (who
//! is asking), `policy` (who may do what, what goes on record, the one change path),
//! `http` (reading requests, the request log), `reads`, `tasks`; then the route files
//! (`blocks`, `types`, `audit`, `databases`, `transfer`, `prefect`, `service`) and the
//! `ui`. A file imports only from floors below it (tests/tidy.rs).

mod audit;
mod blocks;
mod cache;
mod changes;
mod databases;
mod guard;
mod http;
mod leases;
mod limits;
mod metrics;
mod policy;
mod prefect;
mod prefect_cors;
mod prefect_saves;
mod prefect_shapes;
mod prefect_types;
mod reads;
mod response;
mod service;
mod sessions;
mod slots;
mod state;
mod tasks;
mod tokens;
mod transfer;
mod types;
mod ui;
mod upstream;
mod upstream_ws;

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use rocket::{Build, Rocket, catchers};
use serde_json::json;

use crate::audit::AuditOptions;
use crate::config::{Settings, Span, required};
use crate::error::{Error, Result};
use crate::registry::Registry;
use metrics::Metrics;
use state::State;

pub use response::BODY_LIMIT;
pub use upstream::Upstream;

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
    /// How often leases are reconciled.
    pub lease_check: Duration,
    /// How long audit records are kept (pruned in the background); `None` keeps them.
    pub audit_retention: Option<Duration>,
    /// How the audit log is written (folding of repeated reads, writer threads).
    pub audit: AuditOptions,
    /// The Prefect server unowned `/prefect/api` requests go to.
    pub prefect_upstream: Option<Upstream>,
    /// The web origins whose pages may call `/prefect/api` (the Prefect UI's).
    pub prefect_ui_origins: Vec<String>,
    /// Failed authentications per client address: at once, and earned back per minute.
    pub auth_failures: (u32, u32),
    /// Proxies whose `X-Forwarded-For` is believed.
    pub trusted_proxies: Vec<ipnet::IpNet>,
    /// On SIGTERM: how long `/ready` fails while the server still serves, and the most
    /// it takes to exit.
    pub drain_time: Duration,
    pub shutdown_grace: Duration,
}

impl ServerOptions {
    /// The server's settings in effect (flags, environment, config file, defaults: the
    /// one table in `config`).
    pub fn from_settings(s: &Settings) -> Result<ServerOptions> {
        let span = |value: &Option<Span>, name| required(value, name).map(|span| span.0);
        let writers = *required(&s.audit_writers, "audit_writers")?;
        if !(1..=16).contains(&writers) {
            return Err(Error::Config(format!(
                "audit_writers is {writers}; it must be from 1 to 16"
            )));
        }
        Ok(ServerOptions {
            address: *required(&s.address, "address")?,
            port: *required(&s.port, "port")?,
            token_cache: span(&s.token_cache, "token_cache")?,
            request_log: !*required(&s.quiet, "quiet")?,
            workers: s.workers,
            block_cache: span(&s.block_cache, "block_cache")?,
            rotation_check: span(&s.rotation_check, "rotation_check")?,
            lease_check: span(&s.lease_check, "lease_check")?,
            audit_retention: Some(span(&s.audit_retention, "audit_retention")?)
                .filter(|d| !d.is_zero()),
            audit: AuditOptions {
                fold_window: span(&s.audit_window, "audit_window")?,
                writers,
            },
            prefect_upstream: s
                .prefect_upstream
                .clone()
                .map(|url| Upstream::new(url.0, s.prefect_upstream_auth.clone()))
                .transpose()?,
            prefect_ui_origins: match (&s.prefect_ui_origins, &s.prefect_upstream) {
                (Some(origins), _) => origins.0.clone(),
                (None, Some(upstream)) => vec![upstream.0.origin().ascii_serialization()],
                (None, None) => Vec::new(),
            },
            auth_failures: (
                *required(&s.auth_failures_burst, "auth_failures_burst")?,
                *required(&s.auth_failures_per_minute, "auth_failures_per_minute")?,
            ),
            trusted_proxies: s.trusted_proxies.clone().map(|n| n.0).unwrap_or_default(),
            drain_time: span(&s.drain_time, "drain_time")?,
            shutdown_grace: span(&s.shutdown_grace, "shutdown_grace")?,
        })
    }
}

/// What the routes share, built for `registry`: the audit writers started, the UI's
/// sessions and the verifier on the store, metrics fed by both.
fn shared_state(registry: Registry, options: &ServerOptions) -> Result<State> {
    let audit = registry.start_audit_log(&options.audit)?;
    let metrics = Metrics::new(&audit.health().measures, registry.pool_measures()?);
    let (burst, per_minute) = options.auth_failures;
    Ok(State {
        verifier: Arc::new(registry.token_verifier(options.token_cache)?),
        audit,
        blocks: Arc::new(cache::BlockCache::new(options.block_cache)),
        ui: state::UiState {
            sessions: Arc::new(registry.ui_sessions()?),
            tests: Default::default(),
        },
        metrics: Arc::new(metrics),
        limiter: limits::AuthLimiter::new(burst, per_minute, options.trusted_proxies.clone()),
        fleet: Arc::new(state::Fleet::new()),
        registry,
    })
}

/// The Rocket application for a registry: its state, background tasks, every area's
/// routes and the catchers.
pub fn app(registry: Registry, options: &ServerOptions) -> Result<Rocket<Build>> {
    let state = shared_state(registry, options)?;
    tasks::watch_tokens(&state)?;
    let sweeper = tasks::cache_sweeper(
        state.blocks.clone(),
        options.block_cache.max(Duration::from_secs(1)),
    );
    let rotations = tasks::rotation_scheduler(
        state.registry.clone(),
        state.metrics.clone(),
        options.rotation_check.max(Duration::from_millis(100)),
    );
    let reconciler = tasks::lease_reconciler(
        state.registry.clone(),
        state.metrics.clone(),
        options.lease_check.max(Duration::from_millis(100)),
    );
    let pruner = match options.audit_retention {
        Some(retention) => tasks::audit_pruner(state.registry.clone(), retention),
        None => rocket::fairing::AdHoc::on_liftoff("audit kept for ever", |_| Box::pin(async {})),
    };
    let sessions = tasks::session_pruner(state.ui.sessions.clone());
    let app = rocket::custom(rocket_config(options))
        .manage(state)
        .attach(sessions)
        .attach(sweeper)
        .attach(rotations)
        .attach(reconciler)
        .attach(pruner)
        .attach(http::RequestLog {
            enabled: options.request_log,
        })
        .mount("/", service::routes())
        .mount("/api/v1", [blocks::routes(), changes::routes()].concat())
        .mount("/api/v1", types::routes())
        .mount("/api/v1", audit::routes())
        .mount("/api/v1", tokens::routes())
        .mount("/api/v1", service::api_routes())
        .mount("/api/v1", transfer::routes())
        .mount("/api/v1", databases::routes())
        .mount("/api/v1", leases::routes());
    Ok(with_prefect(app, options)
        .mount("/ui", ui::routes())
        .attach(ui::SecurityHeaders)
        .register("/ui", ui::catchers())
        .register(
            "/",
            catchers![
                response::bad_request,
                guard::unauthorized,
                guard::refused,
                response::not_found,
                guard::limited,
                guard::unavailable,
                response::payload_too_large,
                response::unprocessable,
                response::default_catcher
            ],
        ))
}

/// Prefect's routes under `/prefect/api`: CORS for the Prefect UI's pages, the block
/// routes that are ours, and the pass-through (ranked last) for the rest.
fn with_prefect(app: Rocket<Build>, options: &ServerOptions) -> Rocket<Build> {
    let origins = prefect_cors::Origins::new(options.prefect_ui_origins.clone());
    app.attach(prefect_cors::Cors(origins.clone()))
        .mount("/prefect/api", prefect_cors::routes(&origins))
        .mount("/prefect/api", prefect::routes())
        .mount("/prefect/api", prefect_types::routes())
        .mount("/prefect/api", prefect_saves::routes())
        .mount(
            "/prefect/api",
            upstream::routes(options.prefect_upstream.clone()),
        )
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
    // The client's address is the peer's, or what a trusted proxy forwards (see
    // `limits`); never a header anyone may set.
    config.ip_header = None;
    // Stopping is ours (`tasks::drain_on_signal`): drain, then stop taking connections
    // and give what is in flight the rest of the shutdown grace. Rocket may take its
    // grace, then a second of mercy, then a second more; the runtime one more.
    let rest = options.shutdown_grace.saturating_sub(options.drain_time);
    config.shutdown = rocket::config::Shutdown {
        ctrlc: false,
        signals: Default::default(),
        grace: rest.as_secs().saturating_sub(3).max(1) as u32,
        mercy: 1,
        ..Default::default()
    };
    config
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
        let state = rocket.state::<State>().expect("server state");
        let writers = state.audit.finished();
        rocket::tokio::spawn(tasks::drain_on_signal(
            state.fleet.clone(),
            rocket.shutdown(),
            options.drain_time,
        ));
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
    // writers see their queue close and end. Store work still running (a long
    // provisioning) is not waited for beyond a moment: the shutdown grace is spent.
    runtime.shutdown_timeout(Duration::from_secs(1));
    if !writers.wait(WRITERS_GRACE) {
        http::log_line(json!({"event": "stopped",
            "warning": "the audit writers did not end in time"}));
    }
    Ok(())
}
