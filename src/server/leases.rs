//! Leases over HTTP (`blocks:lease`, distinct from `blocks:read-secrets`):
//! `POST /blocks/{name}/leases` issues one (the answer is the only time its password is
//! shown), `GET /leases` lists them, `POST /leases/{id}/renew` extends one, `DELETE
//! /leases/{id}` and `DELETE /blocks/{name}/leases` revoke. Each goes through the one
//! change path: checked, and on record (issue, renewal and revocation with the user
//! name, never the password).

use rocket::http::Status;
use rocket::{delete, get, post};
use serde::Deserialize;

use super::guard::Ctx;
use super::http::LenientBody;
use super::policy::{Access, Change, authorize};
use super::response::{ApiError, ApiResult, Json};
use super::state::{State, blocking};
use crate::auth::Permission;
use crate::error::{Error, Result};
use crate::name::BlockName;

pub fn routes() -> Vec<rocket::Route> {
    rocket::routes![issue, list, renew, revoke, revoke_block]
}

const LEASING: &str = "leasing database users of this block (blocks:lease)";

/// How long a lease is asked for (the block's `lease.ttl` when left out).
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct LeaseRequest {
    ttl: Option<String>,
}

impl LeaseRequest {
    fn ttl(&self) -> Result<Option<std::time::Duration>> {
        self.ttl
            .as_deref()
            .map(|t| {
                humantime::parse_duration(t.trim()).map_err(|_| {
                    Error::InvalidInput("ttl: not a duration such as 15m or 1h".into())
                })
            })
            .transpose()
    }
}

#[post("/blocks/<name>/leases", data = "<body>")]
async fn issue(
    ctx: Ctx,
    state: &rocket::State<State>,
    name: Result<BlockName, Error>,
    body: Result<LenientBody<LeaseRequest>, ApiError>,
) -> ApiResult<Json> {
    let name = name?;
    let LenientBody(body) = body?;
    let ttl = body.ttl()?;
    let target = name.clone();
    let issued = Change::lease("lease-issue", &[&name], LEASING)
        .run(state, &ctx, move |registry| {
            registry.issue_lease(&target, ttl)
        })
        .await?;
    Ok(Json::new(Status::Created, &issued))
}

#[get("/leases?<block>&<all>")]
async fn list(
    ctx: Ctx,
    state: &rocket::State<State>,
    block: Option<&str>,
    all: Option<bool>,
) -> ApiResult<Json> {
    let block = block.map(BlockName::parse).transpose()?;
    let access = Access {
        wanted: Permission::Lease,
        blocks: &[],
        audited: None,
        what: LEASING,
        listing: true,
    };
    authorize(state, &ctx, access).await?;
    let registry = state.registry.clone();
    let leases = blocking(move || registry.leases(block.as_ref(), all.unwrap_or(false))).await?;
    let actor = ctx.actor();
    let shown: Vec<_> = leases
        .into_iter()
        .filter(|l| actor.may(Permission::Lease, Some(&l.block)))
        .collect();
    Ok(Json::ok(&shown))
}

/// The block a lease is of, if the caller may lease its users (an id it may not is
/// answered as unknown).
async fn block_of(state: &State, ctx: &Ctx, id: &str) -> ApiResult<String> {
    let registry = state.registry.clone();
    let owned = id.to_owned();
    let lease = blocking(move || registry.lease(&owned)).await?;
    match ctx.actor().may(Permission::Lease, Some(&lease.block)) {
        true => Ok(lease.block),
        false => Err(Error::LeaseNotFound(format!("no lease with id {id}")).into()),
    }
}

#[post("/leases/<id>/renew", data = "<body>")]
async fn renew(
    ctx: Ctx,
    state: &rocket::State<State>,
    id: &str,
    body: Result<LenientBody<LeaseRequest>, ApiError>,
) -> ApiResult<Json> {
    let LenientBody(body) = body?;
    let ttl = body.ttl()?;
    let block = block_of(state, &ctx, id).await?;
    let id = id.to_owned();
    let renewed = Change::lease("lease-renew", &[&block], LEASING)
        .run(state, &ctx, move |registry| registry.renew_lease(&id, ttl))
        .await?;
    Ok(Json::ok(&renewed))
}

#[delete("/leases/<id>")]
async fn revoke(ctx: Ctx, state: &rocket::State<State>, id: &str) -> ApiResult<Json> {
    let block = block_of(state, &ctx, id).await?;
    let id = id.to_owned();
    let revoked = Change::lease("lease-revoke", &[&block], LEASING)
        .run(state, &ctx, move |registry| registry.revoke_lease(&id))
        .await?;
    Ok(Json::ok(&revoked))
}

#[delete("/blocks/<name>/leases")]
async fn revoke_block(
    ctx: Ctx,
    state: &rocket::State<State>,
    name: Result<BlockName, Error>,
) -> ApiResult<Json> {
    let name = name?;
    let target = name.clone();
    let revoked = Change::lease("lease-revoke", &[&name], LEASING)
        .run(state, &ctx, move |registry| {
            registry.revoke_block_leases(&target)
        })
        .await?;
    Ok(Json::ok(&revoked))
}
