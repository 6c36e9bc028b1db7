//! The `/api/v1/block-types` routes: list, read and register block types.

use rocket::http::Status;
use rocket::{get, post};

use super::guard::Ctx;
use super::http::{Body, parse_bool};
use super::policy::{Access, Change, authorize};
use super::response::{ApiError, ApiResult, Json};
use super::state::{State, blocking};
use crate::error::ErrorKind;
use crate::types::BlockTypeDef;
use crate::wire::BlockTypes;

/// The block type routes, mounted under `/api/v1`.
pub fn routes() -> Vec<rocket::Route> {
    rocket::routes![list_types, get_type, register_type]
}

#[get("/block-types")]
pub async fn list_types(ctx: Ctx, state: &rocket::State<State>) -> ApiResult<Json> {
    authorize(state, &ctx, Access::list("reading block types")).await?;
    let registry = state.registry.clone();
    let types = blocking(move || registry.block_types()).await?;
    let block_types = types.into_iter().map(|t| t.def).collect();
    Ok(Json::ok(&BlockTypes { block_types }))
}

#[get("/block-types/<slug>")]
pub async fn get_type(ctx: Ctx, state: &rocket::State<State>, slug: &str) -> ApiResult<Json> {
    authorize(state, &ctx, Access::list("reading block types")).await?;
    let registry = state.registry.clone();
    let slug = slug.to_owned();
    match blocking(move || registry.block_type(&slug)).await {
        Ok(ty) => Ok(Json::ok(&ty.def)),
        // The type is what the path names: not found, not unprocessable.
        Err(err) if err.kind == ErrorKind::UnknownBlockType => {
            Err(err.with_status(Status::NotFound))
        }
        Err(err) => Err(err),
    }
}

#[post("/block-types?<replace>", data = "<body>")]
pub async fn register_type(
    ctx: Ctx,
    state: &rocket::State<State>,
    replace: Option<&str>,
    body: Result<Body<BlockTypeDef>, ApiError>,
) -> ApiResult<Json> {
    let replace = parse_bool("replace", replace)?;
    let Body(def) = body?;
    let label = format!("type:{}", def.slug);
    let what = "registering block types (needs admin)";
    let ty = Change::admin("register-type", &label, what)
        .run(state, &ctx, move |registry| {
            registry.register_type(def, replace)
        })
        .await?;
    Ok(Json::new(Status::Created, &ty.def))
}
