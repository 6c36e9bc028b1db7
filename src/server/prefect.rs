//! Prefect's block routes, answered from Blockyard's blocks in Prefect's shapes: read a
//! block document by type and name or by id, list them (`prefect block ls`), delete
//! one, read block types; and `GET /admin/version`, `GET /health`. Prefect's
//! `PREFECT_API_KEY` (Bearer) and `PREFECT_API_AUTH_STRING` (Basic) carry a Blockyard
//! token. Every route checks through `authorize`, as the native ones do; a listing
//! never carries secrets.

use rocket::http::Status;
use rocket::{Route, delete, get, post, routes};
use serde::Deserialize;
use serde_json::{Value, json};

use super::blocks;
use super::cache::View;
use super::guard::Ctx;
use super::http::{LenientBody, MAX_PAGE};
use super::policy::{Access, authorize};
use super::prefect_shapes::block_document_json;
use super::reads::{read_block, visible_blocks};
use super::response::{ApiError, ApiResult, Json};
use super::state::{State, blocking};
use crate::auth::Actor;
use crate::auth::Permission;
use crate::block::{Block, BlockFilter, BlockSummary};
use crate::error::{Error, ErrorKind};
use crate::name::BlockName;
use crate::registry::Registry;
use crate::types::{BlockTypeDef, references};

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
        count_block_documents,
        documents_of_type,
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
    let def = type_of(state, &kept.block).await?;
    // A block that refers to others is rendered afresh each time: each read of the
    // blocks it names is checked and on record.
    if !references(kept.block.masked_data()).is_empty() {
        let hydrated = with_references(state, ctx, &kept.block, def, reveal, 0).await?;
        return Ok(Json::ok(&hydrated));
    }
    let body = kept.render(view, || block_document_json(&kept.block, &def, reveal));
    Ok(Json::rendered(Status::Ok, body))
}

/// How deep references between blocks may nest (a cycle ends here too).
const REFERENCE_DEPTH: usize = 8;

/// A block's type definition.
async fn type_of(state: &State, block: &Block) -> ApiResult<BlockTypeDef> {
    let registry = state.registry.clone();
    let slug = block.block_type.clone();
    Ok(blocking(move || registry.block_type(&slug)).await?.def)
}

/// A block's document with each field that refers to another block holding that
/// block's data (read as the caller, checked and audited like any read), and the
/// reference in `block_document_references`, as Prefect's server answers.
fn with_references<'a>(
    state: &'a State,
    ctx: &'a Ctx,
    block: &'a Block,
    def: BlockTypeDef,
    reveal: bool,
    depth: usize,
) -> futures_util::future::BoxFuture<'a, ApiResult<Value>> {
    Box::pin(async move {
        let mut doc = block_document_json(block, &def, reveal);
        for (field, id) in references(block.masked_data()) {
            let gone = || {
                Error::BlockNotFound(format!(
                    "{}: field {field} refers to a block that is gone, or that this token \
                     may not read",
                    block.name
                ))
            };
            if depth >= REFERENCE_DEPTH {
                let why = format!("references between blocks nest deeper than {REFERENCE_DEPTH}");
                return Err(Error::InvalidBlockData(why).into());
            }
            let name = named_by_id(state, ctx, &id).await.map_err(|_| gone())?;
            authorize(state, ctx, Access::read(&name, &[&name], reveal)).await?;
            let kept = read_block(state, ctx, &name, reveal).await?;
            let nested_def = type_of(state, &kept.block).await?;
            let mut nested =
                with_references(state, ctx, &kept.block, nested_def, reveal, depth + 1).await?;
            doc["data"][&field] = nested["data"].take();
            if let Some(obj) = nested.as_object_mut() {
                obj.remove("data");
                obj.remove("block_schema");
            }
            doc["block_document_references"][&field] = json!({ "block_document": nested });
        }
        Ok(doc)
    })
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

/// What a Prefect client or the Prefect UI sends to list or count block documents;
/// what Blockyard does not filter on is accepted and ignored (a stock client sends
/// `null` for what it leaves unset). Blockyard keeps no anonymous blocks, so
/// `is_anonymous` needs no filter.
#[derive(Deserialize, Default)]
struct DocumentFilter {
    offset: Option<i64>,
    limit: Option<i64>,
    #[serde(default)]
    block_types: Option<Value>,
    #[serde(default)]
    block_documents: Option<Value>,
}

/// Which blocks a listing wants: of these types (`block_types.slug.any_`), with a name
/// holding this text (`block_documents.name.like_`, the UI's search box).
#[derive(Clone, Default)]
struct Wanted {
    slugs: Option<Vec<String>>,
    name_like: Option<String>,
}

impl Wanted {
    fn of(filter: &DocumentFilter) -> Wanted {
        let slugs = filter
            .block_types
            .as_ref()
            .and_then(|t| t.pointer("/slug/any_"))
            .and_then(Value::as_array)
            .map(|any| {
                any.iter()
                    .filter_map(|s| s.as_str().map(str::to_owned))
                    .collect()
            });
        let name_like = filter
            .block_documents
            .as_ref()
            .and_then(|d| d.pointer("/name/like_"))
            .and_then(Value::as_str)
            .map(str::to_lowercase);
        Wanted { slugs, name_like }
    }

    fn holds(&self, row: &BlockSummary) -> bool {
        self.slugs
            .as_ref()
            .is_none_or(|s| s.contains(&row.block_type))
            && self
                .name_like
                .as_ref()
                .is_none_or(|like| row.name.as_str().to_lowercase().contains(like))
    }
}

/// The body of a listing or count, read leniently.
fn filter_of(body: Result<LenientBody<Value>, ApiError>) -> ApiResult<DocumentFilter> {
    let LenientBody(body) = body?;
    Ok(serde_json::from_value(body).unwrap_or_default())
}

#[post("/block_documents/filter", data = "<body>")]
async fn filter_block_documents(
    ctx: Ctx,
    state: &rocket::State<State>,
    body: Result<LenientBody<Value>, ApiError>,
) -> ApiResult<Json> {
    let filter = filter_of(body)?;
    let page = (filter.offset.unwrap_or(0).max(0), filter.limit);
    let wanted = Wanted::of(&filter);
    Ok(Json::ok(&documents(state, &ctx, wanted, page).await?))
}

/// How many blocks the caller may read match (the Prefect UI's block count).
#[post("/block_documents/count", data = "<body>")]
async fn count_block_documents(
    ctx: Ctx,
    state: &rocket::State<State>,
    body: Result<LenientBody<Value>, ApiError>,
) -> ApiResult<Json> {
    let wanted = Wanted::of(&filter_of(body)?);
    authorize(state, &ctx, Access::list("listing blocks")).await?;
    let registry = state.registry.clone();
    let actor = ctx.actor().clone();
    let count = blocking(move || {
        let rows = matching(&registry, &actor, &wanted, i64::MAX)?;
        Ok(rows.len())
    });
    Ok(Json::ok(&count.await?))
}

#[get("/block_types/slug/<slug>/block_documents")]
async fn documents_of_type(ctx: Ctx, state: &rocket::State<State>, slug: &str) -> ApiResult<Json> {
    let wanted = Wanted {
        slugs: Some(vec![slug.to_owned()]),
        name_like: None,
    };
    Ok(Json::ok(&documents(state, &ctx, wanted, (0, None)).await?))
}

/// The blocks the caller may read that a listing wants, by name, at most `limit`.
fn matching(
    registry: &Registry,
    actor: &Actor,
    wanted: &Wanted,
    limit: i64,
) -> crate::error::Result<Vec<BlockSummary>> {
    let filter = BlockFilter {
        block_type: wanted
            .slugs
            .as_ref()
            .filter(|s| s.len() == 1)
            .map(|s| s[0].clone()),
        ..BlockFilter::default()
    };
    let narrowed = wanted.name_like.is_some() || wanted.slugs.as_ref().is_some_and(|s| s.len() > 1);
    let read = if narrowed { i64::MAX } else { limit };
    let rows = visible_blocks(registry, filter, read, actor)?;
    Ok(rows
        .into_iter()
        .filter(|row| wanted.holds(row))
        .take(limit.try_into().unwrap_or(usize::MAX))
        .collect())
}

/// The blocks the caller may read that a listing wants, as masked documents, by name,
/// from `offset`, at most `limit` (and [`MAX_PAGE`]).
async fn documents(
    state: &State,
    ctx: &Ctx,
    wanted: Wanted,
    (offset, limit): (i64, Option<i64>),
) -> ApiResult<Vec<Value>> {
    authorize(state, ctx, Access::list("listing blocks")).await?;
    let page = limit.unwrap_or(MAX_PAGE).clamp(0, MAX_PAGE);
    let registry = state.registry.clone();
    let actor = ctx.actor().clone();
    let listed = blocking(move || {
        let rows = matching(&registry, &actor, &wanted, offset.saturating_add(page))?;
        let mut documents = Vec::new();
        for row in rows.into_iter().skip(offset as usize) {
            let block = registry.get_block_masked(&row.name)?;
            let def = registry.block_type(&block.block_type)?.def;
            documents.push(block_document_json(&block, &def, false));
        }
        Ok(documents)
    });
    listed.await
}
