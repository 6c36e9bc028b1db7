//! Prefect's block type and block schema reads, answered from Blockyard's types: by
//! slug, by id, by checksum, filtered (what the Prefect UI's catalog and create form
//! send), and the capabilities list. Ids are derived from the type's slug.

use rocket::{Route, get, post, routes};
use serde_json::Value;

use super::guard::Ctx;
use super::http::LenientBody;
use super::prefect_shapes::{block_schema_json, block_type_json, derived_id};
use super::response::{ApiError, ApiResult, Json};
use super::state::{State, blocking};
use crate::error::ErrorKind;
use crate::types::BlockType;

pub fn routes() -> Vec<Route> {
    routes![
        block_type_by_slug,
        block_type_by_id,
        filter_block_types,
        schema_by_checksum,
        block_schema_by_id,
        filter_block_schemas,
        block_capabilities,
    ]
}

/// When a type or schema was made, for Prefect's shapes (ours carry no such time).
pub fn epoch() -> String {
    crate::time::rfc3339(0)
}

/// Every type, as the registry has them.
async fn all_types(state: &State) -> ApiResult<Vec<BlockType>> {
    let registry = state.registry.clone();
    blocking(move || registry.block_types()).await
}

/// The type a Prefect type id (derived from the slug) names.
pub async fn type_with_id(state: &State, id: &str) -> ApiResult<BlockType> {
    all_types(state)
        .await?
        .into_iter()
        .find(|t| derived_id("type", &t.def.slug) == id)
        .ok_or_else(|| ApiError::new(ErrorKind::NotFound, format!("no block type with id {id}")))
}

#[get("/block_types/slug/<slug>")]
async fn block_type_by_slug(
    _authenticated: Ctx,
    state: &rocket::State<State>,
    slug: &str,
) -> ApiResult<Json> {
    let registry = state.registry.clone();
    let slug = slug.to_owned();
    // Prefect's clients take 404 to mean "register it".
    let ty = blocking(move || registry.block_type(&slug))
        .await
        .map_err(|err| match err.kind {
            ErrorKind::UnknownBlockType => ApiError::new(ErrorKind::NotFound, err.message),
            _ => err,
        })?;
    Ok(Json::ok(&block_type_json(&ty.def, &epoch())))
}

#[get("/block_types/<id>", rank = 2)]
async fn block_type_by_id(
    _authenticated: Ctx,
    state: &rocket::State<State>,
    id: &str,
) -> ApiResult<Json> {
    let ty = type_with_id(state, id).await?;
    Ok(Json::ok(&block_type_json(&ty.def, &epoch())))
}

/// Text a filter asks names to hold (`<what>.name.like_`), lower-cased.
fn name_like(body: &Value, what: &str) -> Option<String> {
    body.pointer(&format!("/{what}/name/like_"))
        .and_then(Value::as_str)
        .map(str::to_lowercase)
}

#[post("/block_types/filter", data = "<body>")]
async fn filter_block_types(
    _authenticated: Ctx,
    state: &rocket::State<State>,
    body: Result<LenientBody<Value>, ApiError>,
) -> ApiResult<Json> {
    let LenientBody(body) = body?;
    let like = name_like(&body, "block_types");
    let created = epoch();
    let shown: Vec<Value> = all_types(state)
        .await?
        .iter()
        .filter(|t| {
            like.as_ref()
                .is_none_or(|like| t.def.name.to_lowercase().contains(like))
        })
        .map(|t| block_type_json(&t.def, &created))
        .collect();
    Ok(Json::ok(&shown))
}

#[get("/block_schemas/checksum/<checksum>")]
async fn schema_by_checksum(
    _authenticated: Ctx,
    state: &rocket::State<State>,
    checksum: &str,
) -> ApiResult<Json> {
    let created = epoch();
    all_types(state)
        .await?
        .iter()
        .map(|t| block_schema_json(&t.def, &created))
        .find(|schema| schema["checksum"] == checksum)
        .map(|schema| Json::ok(&schema))
        .ok_or_else(|| ApiError::new(ErrorKind::NotFound, "no block schema with that checksum"))
}

#[get("/block_schemas/<id>", rank = 2)]
async fn block_schema_by_id(
    _authenticated: Ctx,
    state: &rocket::State<State>,
    id: &str,
) -> ApiResult<Json> {
    let created = epoch();
    all_types(state)
        .await?
        .iter()
        .map(|t| block_schema_json(&t.def, &created))
        .find(|schema| schema["id"] == id)
        .map(|schema| Json::ok(&schema))
        .ok_or_else(|| ApiError::new(ErrorKind::NotFound, format!("no block schema with id {id}")))
}

/// Each type has one schema: a filter by type id (`block_schemas.block_type_id.any_`,
/// what the UI's create form sends) gives that type's.
#[post("/block_schemas/filter", data = "<body>")]
async fn filter_block_schemas(
    _authenticated: Ctx,
    state: &rocket::State<State>,
    body: Result<LenientBody<Value>, ApiError>,
) -> ApiResult<Json> {
    let LenientBody(body) = body?;
    let type_ids: Option<Vec<&str>> = body
        .pointer("/block_schemas/block_type_id/any_")
        .and_then(Value::as_array)
        .map(|ids| ids.iter().filter_map(Value::as_str).collect());
    let created = epoch();
    let shown: Vec<Value> = all_types(state)
        .await?
        .iter()
        .map(|t| block_schema_json(&t.def, &created))
        .filter(|schema| {
            type_ids
                .as_ref()
                .is_none_or(|ids| ids.iter().any(|id| schema["block_type_id"] == *id))
        })
        .collect();
    Ok(Json::ok(&shown))
}

/// The capabilities block schemas declare: Blockyard's types declare none.
#[get("/block_capabilities")]
fn block_capabilities(_authenticated: Ctx) -> Json {
    Json::ok(&Vec::<String>::new())
}
