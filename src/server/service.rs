//! What the service says about itself: `/health` (the process answers), `/ready` (the
//! store answers and is migrated; for load balancers, unauthenticated, never the
//! store's address or error) and the OpenAPI document.

use std::time::Duration;

use rocket::get;
use rocket::http::Status;

use super::guard::Ctx;
use super::response::{ApiError, ApiResult, Json, RenderedJson};
use super::state::{State, within};
use crate::error::ErrorKind;
use crate::wire::Health;

/// Health and readiness, mounted at the root for load balancers.
pub fn routes() -> Vec<rocket::Route> {
    rocket::routes![health, ready]
}

/// The API's own description, mounted under `/api/v1`.
pub fn api_routes() -> Vec<rocket::Route> {
    rocket::routes![openapi]
}

const OPENAPI: &str = include_str!("openapi.json");

/// How long `/ready` waits for the store before it answers "not ready".
const READY_DEADLINE: Duration = Duration::from_millis(900);

#[get("/health")]
pub fn health() -> Json {
    Json::ok(&Health {
        status: "ok".into(),
        leases_failing: None,
    })
}

#[get("/ready")]
pub async fn ready(state: &rocket::State<State>) -> ApiResult<Json> {
    let registry = state.registry.clone();
    let status = within(READY_DEADLINE, move || {
        let status = registry.migration_status()?;
        let failing = match status.pending.is_empty() {
            true => Some(registry.failing_leases()?),
            false => None,
        };
        Ok((status, failing))
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

#[get("/openapi.json")]
pub async fn openapi(_authenticated: Ctx) -> ApiResult<Json> {
    Ok(Json::rendered(Status::Ok, RenderedJson::raw(OPENAPI)))
}
