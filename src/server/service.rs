//! What the service says about itself: `/health` (the process answers), `/ready` (for
//! load balancers, unauthenticated, never the store's address or error: the store
//! takes a write and is migrated, the audit writers commit, and the server is not
//! draining), `/metrics` (a token with the `metrics` scope) and the OpenAPI document.

use std::time::Duration;

use rocket::get;
use rocket::http::{ContentType, Status};

use super::guard::{Ctx, forbidden};
use super::response::{ApiError, ApiResult, Json, RenderedJson};
use super::state::{State, within};
use crate::auth::Permission;
use crate::error::ErrorKind;
use crate::wire::Health;

/// Health, readiness and metrics, mounted at the root for load balancers and scrapers.
pub fn routes() -> Vec<rocket::Route> {
    rocket::routes![health, ready, metrics]
}

/// The API's own description, mounted under `/api/v1`.
pub fn api_routes() -> Vec<rocket::Route> {
    rocket::routes![openapi]
}

const OPENAPI: &str = include_str!("openapi.json");

/// How long `/ready` waits for the store's write before it answers "not ready".
const READY_DEADLINE: Duration = Duration::from_secs(2);

/// An audit commit waiting on the store longer than this makes the server not ready.
const AUDIT_STUCK: Duration = Duration::from_secs(3);

#[get("/health")]
pub fn health() -> Json {
    Json::ok(&Health {
        status: "ok".into(),
        leases_failing: None,
    })
}

/// 503 with `kind` and `message`.
fn not_ready(kind: ErrorKind, message: &str) -> ApiError {
    ApiError::new(kind, message).with_status(Status::ServiceUnavailable)
}

#[get("/ready")]
pub async fn ready(state: &rocket::State<State>) -> ApiResult<Json> {
    state.fleet.asked();
    if state.fleet.is_draining() {
        return Err(not_ready(ErrorKind::Draining, "the server is stopping"));
    }
    if let Some(problem) = state.audit.health().problem(AUDIT_STUCK) {
        return Err(not_ready(ErrorKind::AuditUnavailable, problem));
    }
    let (registry, server) = (state.registry.clone(), state.fleet.server_id.clone());
    let status = within(READY_DEADLINE, move || {
        let status = registry.migration_status()?;
        if !status.pending.is_empty() {
            return Ok((status, None));
        }
        registry.heartbeat(&server)?;
        Ok((status, Some(registry.failing_leases()?)))
    })
    .await
    .map_err(|err| ApiError {
        message: "the store is not ready; details are in the server's log".into(),
        ..ApiError::from(err).with_status(Status::ServiceUnavailable)
    })?;
    let (status, leases_failing) = status;
    if !status.pending.is_empty() {
        return Err(ApiError::new(
            ErrorKind::StoreNotMigrated,
            format!("{} pending migration(s)", status.pending.len()),
        ));
    }
    Ok(Json::ok(&Health {
        status: "ready".into(),
        leases_failing,
    }))
}

/// The server's metrics in the OpenMetrics text format Prometheus scrapes (a token
/// with the `metrics` scope, or an admin's). Lease counts come from the store; if it
/// does not answer, the rest is still given.
#[get("/metrics")]
pub async fn metrics(ctx: Ctx, state: &rocket::State<State>) -> ApiResult<(ContentType, String)> {
    if !ctx.actor().may(Permission::Metrics, None) {
        state.metrics.auth_failed("forbidden");
        return Err(forbidden(ctx.actor(), "reading metrics (needs metrics)"));
    }
    let registry = state.registry.clone();
    let counted = within(READY_DEADLINE, move || {
        Ok((registry.lease_counts()?, registry.failing_leases()?))
    });
    if let Ok((counts, failing)) = &counted.await {
        state.metrics.set_leases(counts);
        state.metrics.leases_failing.set(*failing);
    }
    let pool = state.registry.pool_state().unwrap_or_default();
    let text = state.metrics.render(pool);
    let open_metrics = ContentType::new("application", "openmetrics-text")
        .with_params([("version", "1.0.0"), ("charset", "utf-8")]);
    Ok((open_metrics, text))
}

#[get("/openapi.json")]
pub async fn openapi(_authenticated: Ctx) -> ApiResult<Json> {
    Ok(Json::rendered(Status::Ok, RenderedJson::raw(OPENAPI)))
}
