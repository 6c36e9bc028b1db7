//! Prefect's block routes, answered from Blockyard's blocks in Prefect's shapes: read a
//! block document by type and name or by id, list them (`prefect block ls`), delete
//! one, read block types; and `GET /admin/version`, `GET /health`. Prefect's
//! `PREFECT_API_KEY` (Bearer) and `PREFECT_API_AUTH_STRING` (Basic) carry a Blockyard
//! token. Every route checks through `authorize`, as the native ones do; a listing
//! never carries secrets.

use rocket::http::Status;
use rocket::{Route, delete, get, post, routes};
use serde::Deserialize;
use serde_json::Value;

use super::blocks;
use super::cache::View;
use super::guard::Ctx;
use super::http::{Body, MAX_PAGE};
use super::policy::{Access, authorize};
use super::prefect_shapes::{block_document_json, block_type_json};
use super::reads::{read_block, visible_blocks};
use super::response::{ApiError, ApiResult, Json};
use super::state::{State, blocking};
use crate::auth::Permission;
use crate::block::BlockFilter;
use crate::error::{Error, ErrorKind};
use crate::name::BlockName;

/// The Prefect server version we answer as: the newest client these routes are tested
/// with (older servers make clients warn).
const PREFECT_VERSION: &str = "3.8.8";

pub fn routes() -> Vec<Route> {
    routes![
        health,
        version,
        block_document,
        block_document_by_id,
        delete_block_document,
        filter_block_documents,
        documents_of_type,
        block_type_by_slug,
        filter_block_types,
    ]
}

#[get("/health")]
fn health() -> Json {
    Json::ok(&true)
}

#[get("/admin/version")]
fn version(_authenticated: Ctx) -> ApiResult<Json> {
    Ok(Json::ok(PREFECT_VERSION))
}

#[get("/block_types/slug/<slug>/block_documents/name/<name>?<include_secrets>")]
async fn block_document(
    ctx: Ctx,
    state: &rocket::State<State>,
    slug: &str,
    name: Result<BlockName, Error>,
    include_secrets: Option<bool>,
) -> ApiResult<Json> {
    document(
        state,
        &ctx,
        &name?,
        Some(slug),
        include_secrets.unwrap_or(false),
    )
    .await
}

/// A block as Prefect's BlockDocument, through the native route's read path: the same
/// check (a refused secret read is audited), kept blocks confirmed current in the trip
/// that records the read, the rendered document kept with the block.
async fn document(
    state: &State,
    ctx: &Ctx,
    name: &BlockName,
    slug: Option<&str>,
    reveal: bool,
) -> ApiResult<Json> {
    authorize(state, ctx, Access::read(name, &[name], reveal)).await?;
    let kept = read_block(state, ctx, name, reveal).await?;
    if slug.is_some_and(|slug| kept.block.block_type != slug) {
        let slug = slug.unwrap_or_default();
        return Err(Error::BlockNotFound(format!("{slug}/{name}")).into());
    }
    let view = View::Prefect { reveal };
    if let Some(body) = kept.rendered(view) {
        return Ok(Json::rendered(Status::Ok, body));
    }
    let registry = state.registry.clone();
    let slug = kept.block.block_type.clone();
    let def = blocking(move || registry.block_type(&slug)).await?.def;
    let body = kept.render(view, || block_document_json(&kept.block, &def, reveal));
    Ok(Json::rendered(Status::Ok, body))
}

/// The block with a Prefect document id, if the caller may see it at all: an id the
/// token may not read is answered as one that does not exist.
pub async fn named_by_id(state: &State, ctx: &Ctx, id: &str) -> ApiResult<BlockName> {
    let registry = state.registry.clone();
    let id = id.to_owned();
    let name = blocking(move || registry.block_name_by_id(&id)).await;
    let unknown = || {
        ApiError::from(Error::BlockNotFound(
            "no block document with that id".into(),
        ))
    };
    match name {
        Ok(name) if ctx.actor().may(Permission::Read, Some(&name)) => Ok(name),
        Ok(_) => Err(unknown()),
        Err(err) if err.kind == ErrorKind::BlockNotFound => Err(unknown()),
        Err(err) => Err(err),
    }
}

#[get("/block_documents/<id>?<include_secrets>")]
async fn block_document_by_id(
    ctx: Ctx,
    state: &rocket::State<State>,
    id: &str,
    include_secrets: Option<bool>,
) -> ApiResult<Json> {
    let name = named_by_id(state, &ctx, id).await?;
    document(state, &ctx, &name, None, include_secrets.unwrap_or(false)).await
}

#[delete("/block_documents/<id>")]
async fn delete_block_document(
    ctx: Ctx,
    state: &rocket::State<State>,
    id: &str,
) -> ApiResult<Status> {
    let name = named_by_id(state, &ctx, id).await?;
    blocks::delete(state, &ctx, &name, None).await?;
    Ok(Status::NoContent)
}

/// What a Prefect client sends to list block documents; what Blockyard does not filter
/// on is accepted and ignored (a stock client sends `null` for what it leaves unset).
#[derive(Deserialize, Default)]
struct DocumentFilter {
    offset: Option<i64>,
    limit: Option<i64>,
    #[serde(default)]
    block_types: Option<Value>,
}

impl DocumentFilter {
    /// The block type slugs asked for (`block_types.slug.any_`), if any.
    fn slugs(&self) -> Option<Vec<String>> {
        let any = self
            .block_types
            .as_ref()?
            .pointer("/slug/any_")?
            .as_array()?;
        Some(
            any.iter()
                .filter_map(|s| s.as_str().map(str::to_owned))
                .collect(),
        )
    }
}

#[post("/block_documents/filter", data = "<body>")]
async fn filter_block_documents(
    ctx: Ctx,
    state: &rocket::State<State>,
    body: Result<Body<Value>, ApiError>,
) -> ApiResult<Json> {
    let Body(body) = body?;
    let filter: DocumentFilter = serde_json::from_value(body).unwrap_or_default();
    let slugs = filter.slugs();
    let page = (filter.offset.unwrap_or(0).max(0), filter.limit);
    Ok(Json::ok(&documents(state, &ctx, slugs, page).await?))
}

#[get("/block_types/slug/<slug>/block_documents")]
async fn documents_of_type(ctx: Ctx, state: &rocket::State<State>, slug: &str) -> ApiResult<Json> {
    let slugs = Some(vec![slug.to_owned()]);
    Ok(Json::ok(&documents(state, &ctx, slugs, (0, None)).await?))
}

/// The blocks the caller may read (of these types, if given), as masked documents, by
/// name, from `offset`, at most `limit` (and [`MAX_PAGE`]).
async fn documents(
    state: &State,
    ctx: &Ctx,
    slugs: Option<Vec<String>>,
    (offset, limit): (i64, Option<i64>),
) -> ApiResult<Vec<Value>> {
    authorize(state, ctx, Access::list("listing blocks")).await?;
    let wanted = limit.unwrap_or(MAX_PAGE).clamp(0, MAX_PAGE);
    let registry = state.registry.clone();
    let actor = ctx.actor().clone();
    let listed = blocking(move || {
        let filter = BlockFilter {
            block_type: slugs
                .as_ref()
                .filter(|s| s.len() == 1)
                .map(|s| s[0].clone()),
            ..BlockFilter::default()
        };
        let rows = visible_blocks(&registry, filter, offset.saturating_add(wanted), &actor)?;
        let chosen = rows
            .into_iter()
            .filter(|row| slugs.as_ref().is_none_or(|s| s.contains(&row.block_type)))
            .skip(offset as usize)
            .take(wanted as usize);
        let mut documents = Vec::new();
        for row in chosen {
            let block = registry.get_block_masked(&row.name)?;
            let def = registry.block_type(&block.block_type)?.def;
            documents.push(block_document_json(&block, &def, false));
        }
        Ok(documents)
    });
    listed.await
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
    Ok(Json::ok(&block_type_json(
        &ty.def,
        &crate::time::rfc3339(0),
    )))
}

#[post("/block_types/filter", data = "<body>")]
async fn filter_block_types(
    _authenticated: Ctx,
    state: &rocket::State<State>,
    body: Result<Body<Value>, ApiError>,
) -> ApiResult<Json> {
    body?;
    let registry = state.registry.clone();
    let types = blocking(move || registry.block_types()).await?;
    let created = crate::time::rfc3339(0);
    let shown: Vec<Value> = types
        .iter()
        .map(|t| block_type_json(&t.def, &created))
        .collect();
    Ok(Json::ok(&shown))
}
