//! The `/api/v1/blocks` routes: list, read, create, update, rename, delete, roll back,
//! bring back, purge and history. The changes the web UI also makes (create, update,
//! delete, rollback, undelete) are functions here that both call.

use rocket::http::Status;
use rocket::{FromForm, delete, get, post, put};
use serde_json::Value;

use super::guard::Ctx;
use super::http::{Body, parse_bool, parse_limit, parse_name};
use super::policy::{Access, Change, authorize};
use super::reads::{read_block, visible_blocks};
use super::response::{ApiError, ApiResult, Json};
use super::state::{State, blocking};
use crate::auth::Permission;
use crate::block::{Block, BlockFilter, NewBlock};
use crate::error::Error;
use crate::name::BlockName;
use crate::wire::{
    BlockBody, BlockPage, CreateBlock, Deleted, DeletedBlocks, History, Purged, RenameBlock,
    Rollback, UpdateBlock,
};

/// The block routes, mounted under `/api/v1`.
pub fn routes() -> Vec<rocket::Route> {
    rocket::routes![
        list_blocks,
        get_block,
        create_block,
        update_block,
        rename_block,
        delete_block,
        block_history,
        rollback_block,
        undelete_block,
        purge_block,
        deleted_blocks,
    ]
}

/// `GET /deleted-blocks`: what `undelete` can bring back, limited to the names the
/// token may read (a name it may not read is never listed).
#[get("/deleted-blocks?<q..>")]
pub async fn deleted_blocks(
    ctx: Ctx,
    state: &rocket::State<State>,
    q: ListQuery<'_>,
) -> ApiResult<Json> {
    authorize(state, &ctx, Access::list("reading blocks")).await?;
    let filter = BlockFilter {
        block_type: q.block_type.map(str::to_owned),
        name_prefix: q.prefix.map(str::to_owned),
        ..BlockFilter::default()
    };
    let registry = state.registry.clone();
    let actor = ctx.actor().clone();
    let deleted = blocking(move || {
        let all = registry.list_deleted(&filter)?;
        Ok(all
            .into_iter()
            .filter(|b| actor.may(Permission::Read, Some(&b.name)))
            .collect())
    })
    .await?;
    Ok(Json::ok(&DeletedBlocks { deleted }))
}

/// A block just written: its masked view, with its version as the ETag.
fn block_response(block: &Block, status: Status) -> Json {
    Json::new(status, &BlockBody::of(block, false)).etag(block.version)
}

#[derive(FromForm)]
pub struct ListQuery<'r> {
    #[field(name = "type")]
    block_type: Option<&'r str>,
    prefix: Option<&'r str>,
    limit: Option<&'r str>,
    cursor: Option<&'r str>,
}

#[get("/blocks?<q..>")]
pub async fn list_blocks(
    ctx: Ctx,
    state: &rocket::State<State>,
    q: ListQuery<'_>,
) -> ApiResult<Json> {
    authorize(state, &ctx, Access::list("reading blocks")).await?;
    let limit = parse_limit(q.limit)?;
    if let Some(cursor) = q.cursor {
        parse_name(cursor)?;
    }
    let filter = BlockFilter {
        block_type: q.block_type.map(str::to_owned),
        name_prefix: q.prefix.map(str::to_owned),
        after: q.cursor.map(str::to_owned),
        limit: None,
        name_glob: None,
        name_contains: None,
    };
    let registry = state.registry.clone();
    let actor = ctx.actor().clone();
    let mut rows = blocking(move || visible_blocks(&registry, filter, limit + 1, &actor)).await?;
    let more = rows.len() as i64 > limit;
    rows.truncate(limit as usize);
    let next_cursor = more
        .then(|| rows.last().map(|b| b.name.to_string()))
        .flatten();
    Ok(Json::ok(&BlockPage {
        blocks: rows,
        next_cursor,
    }))
}

#[get("/blocks/<name>?<include_secrets>")]
pub async fn get_block(
    ctx: Ctx,
    state: &rocket::State<State>,
    name: Result<BlockName, Error>,
    include_secrets: Option<&str>,
) -> ApiResult<Json> {
    let reveal = parse_bool("include_secrets", include_secrets)?;
    let name = name?;
    authorize(state, &ctx, Access::read(&name, &[&name], reveal)).await?;
    let kept = read_block(state, &ctx, &name, reveal).await?;
    Ok(Json::rendered(Status::Ok, kept.view(reveal)).etag(kept.block.version))
}

#[post("/blocks", data = "<body>")]
pub async fn create_block(
    ctx: Ctx,
    state: &rocket::State<State>,
    body: Result<Body<CreateBlock>, ApiError>,
) -> ApiResult<Json> {
    let Body(body) = body?;
    let new = NewBlock {
        name: parse_name(&body.name)?,
        block_type: body.block_type,
        document: body.data,
        id: body.id,
        replace_deleted: body.replace_deleted,
    };
    let block = create(state, &ctx, new).await?;
    Ok(block_response(&block, Status::Created))
}

/// Creates a block, for the API and the web UI alike. An id names a block whatever its
/// name: only a token that may write every block may choose one, so a conflict never
/// tells of a block it cannot see.
pub async fn create(state: &State, ctx: &Ctx, new: NewBlock) -> ApiResult<Block> {
    let name = new.name.clone();
    let blocks = [name.as_str()];
    let mut change = Change::write("create", &blocks, "creating this block");
    if new.id.is_some() {
        let what = "choosing a block's id (needs blocks:write without a pattern, or admin)";
        change = change.also(Permission::Write, &[], what);
    }
    change
        .run(state, ctx, move |registry| registry.create_block(new))
        .await
}

#[put("/blocks/<name>", data = "<body>")]
pub async fn update_block(
    ctx: Ctx,
    state: &rocket::State<State>,
    name: Result<BlockName, Error>,
    body: Result<Body<UpdateBlock>, ApiError>,
) -> ApiResult<Json> {
    let name = name?;
    let expected = ctx.expected_version()?;
    let Body(body) = body?;
    let what = "changing this block";
    let block = update(state, &ctx, &name, body.data, expected, what).await?;
    Ok(block_response(&block, Status::Ok))
}

/// Replaces `name`'s document with `document` (masked secrets keep their stored
/// values), for the API and the web UI alike.
pub async fn update(
    state: &State,
    ctx: &Ctx,
    name: &BlockName,
    document: Value,
    expected: Option<i64>,
    what: &str,
) -> ApiResult<Block> {
    let may_read_secrets = ctx.actor().may(Permission::ReadSecrets, Some(name));
    let target = name.clone();
    Change::write("update", &[name], what)
        .run(state, ctx, move |registry| {
            registry.update_block_from_masked(&target, document, expected, may_read_secrets)
        })
        .await
}

#[post("/blocks/<name>/rename", data = "<body>")]
pub async fn rename_block(
    ctx: Ctx,
    state: &rocket::State<State>,
    name: Result<BlockName, Error>,
    body: Result<Body<RenameBlock>, ApiError>,
) -> ApiResult<Json> {
    let name = name?;
    let expected = ctx.expected_version()?;
    let Body(body) = body?;
    let new_name = parse_name(&body.new_name)?;
    let blocks = [name.as_str(), new_name.as_str()];
    let (target, to) = (name.clone(), new_name.clone());
    let block = Change::write("rename", &blocks, "renaming this block to that name")
        .run(state, &ctx, move |registry| {
            registry.rename_block(&target, &to, expected)
        })
        .await?;
    Ok(block_response(&block, Status::Ok))
}

#[delete("/blocks/<name>")]
pub async fn delete_block(
    ctx: Ctx,
    state: &rocket::State<State>,
    name: Result<BlockName, Error>,
) -> ApiResult<Json> {
    let name = name?;
    let expected = ctx.expected_version()?;
    let block = delete(state, &ctx, &name, expected).await?;
    Ok(Json::ok(&Deleted {
        deleted: block.name.into(),
        id: block.id,
        version: block.version,
    }))
}

/// Deletes `name` (soft: history kept), for the API and the web UI alike.
pub async fn delete(
    state: &State,
    ctx: &Ctx,
    name: &BlockName,
    expected: Option<i64>,
) -> ApiResult<Block> {
    let target = name.clone();
    Change::write("delete", &[name], "deleting this block")
        .run(state, ctx, move |registry| {
            registry.delete_block(&target, expected)
        })
        .await
}

#[post("/blocks/<name>/rollback", data = "<body>")]
pub async fn rollback_block(
    ctx: Ctx,
    state: &rocket::State<State>,
    name: Result<BlockName, Error>,
    body: Result<Body<Rollback>, ApiError>,
) -> ApiResult<Json> {
    let name = name?;
    let expected = ctx.expected_version()?;
    let Body(body) = body?;
    let block = rollback(state, &ctx, &name, body.to_version, expected).await?;
    Ok(block_response(&block, Status::Ok))
}

/// Rolls `name` back to version `to`, for the API and the web UI alike. A rollback may
/// bring back an old destination with the stored secret, so it needs the right to read
/// the secrets as well as to write.
pub async fn rollback(
    state: &State,
    ctx: &Ctx,
    name: &BlockName,
    to: i64,
    expected: Option<i64>,
) -> ApiResult<Block> {
    let blocks = [name.as_str()];
    let target = name.clone();
    let also = "rolling this block back (needs blocks:read-secrets too)";
    Change::write("rollback", &blocks, "rolling this block back")
        .also(Permission::ReadSecrets, &blocks, also)
        .run(state, ctx, move |registry| {
            registry.rollback_block(&target, to, expected)
        })
        .await
}

#[post("/blocks/<name>/undelete")]
pub async fn undelete_block(
    ctx: Ctx,
    state: &rocket::State<State>,
    name: Result<BlockName, Error>,
) -> ApiResult<Json> {
    let block = undelete(state, &ctx, &name?).await?;
    Ok(block_response(&block, Status::Ok))
}

/// Brings back the block last deleted under `name`, for the API and the web UI alike.
pub async fn undelete(state: &State, ctx: &Ctx, name: &BlockName) -> ApiResult<Block> {
    let target = name.clone();
    Change::write("undelete", &[name], "bringing this block back")
        .run(state, ctx, move |registry| registry.undelete_block(&target))
        .await
}

#[post("/blocks/<name>/purge")]
pub async fn purge_block(
    ctx: Ctx,
    state: &rocket::State<State>,
    name: Result<BlockName, Error>,
) -> ApiResult<Json> {
    let name = name?;
    let target = name.clone();
    let id = Change::admin("purge", &name, "purging blocks (needs admin)")
        .run(state, &ctx, move |registry| registry.purge_block(&target))
        .await?;
    Ok(Json::ok(&Purged {
        purged: name.to_string(),
        id,
    }))
}

#[get("/blocks/<name>/history")]
pub async fn block_history(
    ctx: Ctx,
    state: &rocket::State<State>,
    name: Result<BlockName, Error>,
) -> ApiResult<Json> {
    let name = name?;
    authorize(state, &ctx, Access::read(&name, &[&name], false)).await?;
    let registry = state.registry.clone();
    let versions = blocking(move || registry.block_history(&name)).await?;
    Ok(Json::ok(&History { versions }))
}
