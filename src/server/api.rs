//! The `/api/v1` routes: blocks, block types, the audit log and the OpenAPI document.
//! Each route checks the caller's scope before touching the store (so a 403 never says
//! whether a block exists), runs diesel work on the blocking pool, and records secret
//! reads and changes in the audit log before it answers.

use std::sync::Arc;

use rocket::data::Data;
use rocket::http::{ContentType, Status};
use rocket::{FromForm, delete, get, post, put};

use super::cache::Kept;
use super::http::{ApiError, ApiResult, Ctx, Json, RenderedJson, json_body};
use super::{State, blocking};
use crate::audit::{AuditEvent, Expected};
use crate::auth::{Actor, Permission};
use crate::block::{Block, BlockFilter, ChangeRecord, NewBlock};
use crate::error::Error;
use crate::name::BlockName;
use crate::registry::AuditFilter;
use crate::types::BlockTypeDef;
use crate::wire::{
    AuditPage, BlockBody, BlockPage, BlockTypes, CreateBlock, Deleted, History, Purged,
    RenameBlock, Rollback, UpdateBlock,
};

const OPENAPI: &str = include_str!("openapi.json");
const MAX_PAGE: i64 = 1000;

fn forbidden(actor: &Actor, what: &str) -> ApiError {
    ApiError::from(Error::Forbidden(format!(
        "token {:?} does not allow {what}",
        actor.name
    )))
}

/// What a route is about to do, for [`authorize`].
pub(super) struct Access<'a> {
    pub wanted: Permission,
    /// The blocks it touches; none for admin routes.
    pub blocks: &'a [&'a str],
    /// How a refusal is recorded in the audit log (action, subject); `None` for plain
    /// reads, which are not audited.
    pub audited: Option<(&'static str, &'a str)>,
    /// For the 403 message: "token X does not allow {what}".
    pub what: &'a str,
}

impl<'a> Access<'a> {
    /// Changing `blocks` (the first is the one the change is about, as the audit log
    /// names it); a refusal is audited as `action`.
    pub fn change(action: &'static str, blocks: &'a [&'a str], what: &'a str) -> Access<'a> {
        Access {
            wanted: Permission::Write,
            blocks,
            audited: blocks.first().map(|subject| (action, *subject)),
            what,
        }
    }

    /// An admin route; a refusal is audited as `audited` (action, subject) if given.
    pub fn admin(audited: Option<(&'static str, &'a str)>, what: &'a str) -> Access<'a> {
        Access {
            wanted: Permission::Admin,
            blocks: &[],
            audited,
            what,
        }
    }

    /// Reading one block, with its secrets if `reveal` (a refused secret read is
    /// audited as `read-secrets`).
    pub fn read(name: &'a str, blocks: &'a [&'a str], reveal: bool) -> Access<'a> {
        match reveal {
            true => Access {
                wanted: Permission::ReadSecrets,
                blocks,
                audited: Some(("read-secrets", name)),
                what: "reading this block's secrets",
            },
            false => Access {
                wanted: Permission::Read,
                blocks,
                audited: None,
                what: "reading this block",
            },
        }
    }
}

/// The one scope check of every route: `Ok` when the token allows `access`; otherwise
/// 403, and a refused secret read or change is on record before the 403 leaves. It runs
/// before any lookup, so a refusal never says whether a block exists.
pub(super) async fn authorize(
    state: &State,
    ctx: &Ctx,
    actor: &Actor,
    access: Access<'_>,
) -> ApiResult<()> {
    let allowed = match access.blocks {
        [] => actor.may(access.wanted, None),
        blocks => blocks.iter().all(|b| actor.may(access.wanted, Some(b))),
    };
    if allowed {
        return Ok(());
    }
    if let Some((action, subject)) = access.audited {
        audit(state, ctx, actor, action, Some(subject), "FORBIDDEN").await?;
    }
    Err(forbidden(actor, access.what))
}

fn parse_name(raw: &str) -> ApiResult<BlockName> {
    BlockName::parse(raw).map_err(ApiError::from)
}

pub(super) fn parse_bool(field: &str, raw: Option<&str>) -> ApiResult<bool> {
    match raw {
        None | Some("false") | Some("0") => Ok(false),
        Some("true") | Some("1") | Some("") => Ok(true),
        Some(_) => Err(ApiError::from(Error::InvalidInput(format!(
            "{field} must be true or false"
        )))),
    }
}

fn parse_number(field: &str, raw: Option<&str>) -> ApiResult<Option<i64>> {
    raw.map(|text| {
        text.parse::<i64>().map_err(|_| {
            ApiError::from(Error::InvalidInput(format!(
                "{field} must be a whole number"
            )))
        })
    })
    .transpose()
}

/// `since`: a duration ago (1h, 7d) or a time, as Unix milliseconds.
fn parse_since(raw: Option<&str>) -> ApiResult<Option<i64>> {
    raw.map(|text| crate::time::parse_since(text).map_err(ApiError::from))
        .transpose()
}

/// A page size: 100 by default, at most [`MAX_PAGE`].
fn parse_limit(raw: Option<&str>) -> ApiResult<i64> {
    let limit = parse_number("limit", raw)?.unwrap_or(100);
    match (1..=MAX_PAGE).contains(&limit) {
        true => Ok(limit),
        false => Err(ApiError::from(Error::InvalidInput(format!(
            "limit must be between 1 and {MAX_PAGE}"
        )))),
    }
}

/// Records an audit event; if it cannot be written, the request fails with 503.
pub(super) async fn audit(
    state: &State,
    ctx: &Ctx,
    actor: &Actor,
    action: &'static str,
    block: Option<&str>,
    outcome: &str,
) -> ApiResult<()> {
    state
        .audit
        .record(event(ctx, actor, action, block, outcome))
        .await
        .map_err(ApiError::from)
}

fn event(
    ctx: &Ctx,
    actor: &Actor,
    action: &'static str,
    block: Option<&str>,
    outcome: &str,
) -> AuditEvent {
    AuditEvent {
        request_id: ctx.request_id.clone(),
        actor: actor.name.clone(),
        action,
        block: block.map(str::to_owned),
        outcome: outcome.to_owned(),
    }
}

/// Records a secret read's outcome (success or error code) before answering.
pub(super) async fn audited<T>(
    state: &State,
    ctx: &Ctx,
    actor: &Actor,
    action: &'static str,
    block: &str,
    result: ApiResult<T>,
) -> ApiResult<T> {
    let outcome = match &result {
        Ok(_) => "ok",
        Err(err) if unrecordable(err) => return result,
        Err(err) => err.code,
    };
    audit(state, ctx, actor, action, Some(block), outcome).await?;
    result
}

/// A failure because the store does not answer: nothing was done or released, and the
/// store that would hold its record is the one not answering (the request log has it),
/// so the client is answered at once instead of after another wait.
fn unrecordable(err: &ApiError) -> bool {
    err.code == "STORE_UNAVAILABLE"
}

/// The registry for one change by `actor`: the change's audit record commits with it.
pub(super) fn for_change(
    state: &State,
    ctx: &Ctx,
    actor: &Actor,
    action: &'static str,
    subject: &str,
) -> crate::registry::Registry {
    state.registry.on_behalf(ChangeRecord {
        request_id: ctx.request_id.clone(),
        actor: actor.name.clone(),
        action,
        subject: subject.to_owned(),
        token_id: Some(actor.token_id.clone()),
        admin: actor.may(crate::auth::Permission::Admin, None),
    })
}

/// A change's answer. A change that took effect committed its audit record with it; a
/// refused or failed one is recorded here, before the error leaves.
pub(super) async fn changed<T>(
    state: &State,
    ctx: &Ctx,
    actor: &Actor,
    action: &'static str,
    subject: &str,
    result: ApiResult<T>,
) -> ApiResult<T> {
    if let Err(err) = &result
        && !unrecordable(err)
    {
        audit(state, ctx, actor, action, Some(subject), err.code).await?;
    }
    result
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
    let actor = ctx.actor().clone();
    if !actor.may_some(Permission::Read) {
        return Err(forbidden(&actor, "reading blocks"));
    }
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
    };
    let registry = state.registry.clone();
    let mut rows = blocking(move || visible_blocks(&registry, filter, limit + 1, &actor)).await?;
    let more = rows.len() as i64 > limit;
    rows.truncate(limit as usize);
    let next_cursor = more.then(|| rows.last().map(|b| b.name.clone())).flatten();
    Ok(Json::ok(&BlockPage {
        blocks: rows,
        next_cursor,
    }))
}

/// Up to `wanted` blocks matching `filter` that the caller may read, in name order.
/// Blocks it may not read are skipped before anything is counted or used as a
/// cursor, so a page never says anything about them.
///
/// A caller limited to name patterns has each pattern filtered by the store, so the
/// work is bounded by the blocks it may see, not by every name in the registry.
pub(super) fn visible_blocks(
    registry: &crate::registry::Registry,
    filter: BlockFilter,
    wanted: i64,
    actor: &Actor,
) -> crate::error::Result<Vec<crate::block::BlockSummary>> {
    let may_read = |name: &str| actor.may(Permission::Read, Some(name));
    let Some(globs) = actor.patterns_for(Permission::Read) else {
        return visible_in(registry, filter, wanted, may_read);
    };
    let mut merged = Vec::new();
    for glob in globs {
        let one = BlockFilter {
            name_glob: Some(glob),
            ..filter.clone()
        };
        merged.extend(visible_in(registry, one, wanted, may_read)?);
    }
    merged.sort_by(|a, b| a.name.cmp(&b.name));
    merged.dedup_by(|a, b| a.name == b.name);
    merged.truncate(wanted.max(0) as usize);
    Ok(merged)
}

/// [`visible_blocks`] within one filter.
fn visible_in(
    registry: &crate::registry::Registry,
    mut filter: BlockFilter,
    wanted: i64,
    may_read: impl Fn(&str) -> bool,
) -> crate::error::Result<Vec<crate::block::BlockSummary>> {
    let mut visible = Vec::new();
    // A token that sees everything needs one page of `wanted`; one that sees a few
    // blocks among many reads on in growing pages.
    let mut batch = wanted.clamp(1, MAX_PAGE);
    loop {
        filter.limit = Some(batch);
        let rows = registry.list_blocks(&filter)?;
        let exhausted = (rows.len() as i64) < batch;
        batch = (batch * 4).min(MAX_PAGE);
        filter.after = rows.last().map(|b| b.name.clone());
        visible.extend(rows.into_iter().filter(|b| may_read(&b.name)));
        if exhausted || visible.len() as i64 >= wanted {
            visible.truncate(wanted as usize);
            return Ok(visible);
        }
    }
}

#[get("/blocks/<name>?<include_secrets>")]
pub async fn get_block(
    ctx: Ctx,
    state: &rocket::State<State>,
    name: Result<BlockName, Error>,
    include_secrets: Option<&str>,
) -> ApiResult<Json> {
    let actor = ctx.actor();
    let reveal = parse_bool("include_secrets", include_secrets)?;
    let name = name?;
    authorize(state, &ctx, actor, Access::read(&name, &[&name], reveal)).await?;
    let kept = read_block(state, &ctx, actor, &name, reveal).await?;
    Ok(Json::rendered(Status::Ok, kept.view(reveal)).etag(kept.block.version))
}

/// Reads a block for a caller already allowed to (with its secrets if `reveal`; that
/// read is on record before any secret leaves the server). A block kept from an earlier
/// read is served only once the store confirms it is unchanged, in the same trip that
/// records the read; otherwise the block is read from the store and kept.
pub(super) async fn read_block(
    state: &State,
    ctx: &Ctx,
    actor: &Actor,
    name: &str,
    reveal: bool,
) -> ApiResult<Arc<Kept>> {
    if let Some(kept) = state.blocks.get(name, reveal) {
        let event = reveal.then(|| event(ctx, actor, "read-secrets", Some(name), "ok"));
        let expected = Expected {
            name: name.to_owned(),
            stamp: kept.block.stamp(),
        };
        match state.audit.record_if_current(event, expected).await? {
            true => return Ok(kept),
            false => state.blocks.forget(name),
        }
    }
    let registry = state.registry.clone();
    let lookup = name.to_owned();
    let block = match reveal {
        true => {
            let result = blocking(move || registry.load_block(&lookup)).await;
            audited(state, ctx, actor, "read-secrets", name, result).await?
        }
        false => blocking(move || registry.get_block_masked(&lookup)).await?,
    };
    let kept = Arc::new(Kept::new(block));
    state.blocks.put(kept.clone());
    Ok(kept)
}

#[post("/blocks", data = "<data>")]
pub async fn create_block(
    ctx: Ctx,
    state: &rocket::State<State>,
    content_type: Option<&ContentType>,
    data: Data<'_>,
) -> ApiResult<Json> {
    let actor = ctx.actor();
    let body: CreateBlock = json_body(content_type, data).await?;
    let name = parse_name(&body.name)?;
    let blocks = [name.as_str()];
    let access = Access::change("create", &blocks, "creating this block");
    authorize(state, &ctx, actor, access).await?;
    if body.id.is_some() {
        // An id names a block whatever its name: only a token that may write every
        // block may choose one, so a conflict never tells of a block it cannot see.
        let access = Access {
            wanted: Permission::Write,
            blocks: &[],
            audited: Some(("create", name.as_str())),
            what: "choosing a block's id (needs blocks:write without a pattern, or admin)",
        };
        authorize(state, &ctx, actor, access).await?;
    }
    let registry = for_change(state, &ctx, actor, "create", name.as_str());
    let new = NewBlock {
        name: name.clone(),
        block_type: body.block_type,
        document: body.data,
        id: body.id,
        replace_deleted: body.replace_deleted,
    };
    let result = blocking(move || registry.create_block(new)).await;
    let block = changed(state, &ctx, actor, "create", name.as_str(), result).await?;
    Ok(block_response(&block, Status::Created))
}

#[put("/blocks/<name>", data = "<data>")]
pub async fn update_block(
    ctx: Ctx,
    state: &rocket::State<State>,
    name: Result<BlockName, Error>,
    content_type: Option<&ContentType>,
    data: Data<'_>,
) -> ApiResult<Json> {
    let actor = ctx.actor();
    let name = name?;
    let expected = ctx.expected_version()?;
    let body: UpdateBlock = json_body(content_type, data).await?;
    authorize(
        state,
        &ctx,
        actor,
        Access::change("update", &[&name], "changing this block"),
    )
    .await?;
    let registry = for_change(state, &ctx, actor, "update", &name);
    let may_read_secrets = actor.may(Permission::ReadSecrets, Some(&name));
    let target = name.clone();
    let result = blocking(move || {
        registry.update_block_from_masked(&target, body.data, expected, may_read_secrets)
    })
    .await;
    let block = changed(state, &ctx, actor, "update", &name, result).await?;
    Ok(block_response(&block, Status::Ok))
}

#[post("/blocks/<name>/rename", data = "<data>")]
pub async fn rename_block(
    ctx: Ctx,
    state: &rocket::State<State>,
    name: Result<BlockName, Error>,
    content_type: Option<&ContentType>,
    data: Data<'_>,
) -> ApiResult<Json> {
    let actor = ctx.actor();
    let name = name?;
    let expected = ctx.expected_version()?;
    let body: RenameBlock = json_body(content_type, data).await?;
    let new_name = parse_name(&body.new_name)?;
    authorize(
        state,
        &ctx,
        actor,
        Access::change(
            "rename",
            &[&name, new_name.as_str()],
            "renaming this block to that name",
        ),
    )
    .await?;
    let registry = for_change(state, &ctx, actor, "rename", &name);
    let target = name.clone();
    let result = blocking(move || registry.rename_block(&target, &new_name, expected)).await;
    let block = changed(state, &ctx, actor, "rename", &name, result).await?;
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
        deleted: block.name,
        id: block.id,
        version: block.version,
    }))
}

/// Deletes `name` (soft: history kept), for the API and the web UI alike.
pub(super) async fn delete(
    state: &State,
    ctx: &Ctx,
    name: &BlockName,
    expected: Option<i64>,
) -> ApiResult<Block> {
    let actor = ctx.actor();
    let blocks = [name.as_str()];
    authorize(
        state,
        ctx,
        actor,
        Access::change("delete", &blocks, "deleting this block"),
    )
    .await?;
    let registry = for_change(state, ctx, actor, "delete", name);
    let target = name.clone();
    let result = blocking(move || registry.delete_block(&target, expected)).await;
    changed(state, ctx, actor, "delete", name, result).await
}

#[post("/blocks/<name>/rollback", data = "<data>")]
pub async fn rollback_block(
    ctx: Ctx,
    state: &rocket::State<State>,
    name: Result<BlockName, Error>,
    content_type: Option<&ContentType>,
    data: Data<'_>,
) -> ApiResult<Json> {
    let name = name?;
    let expected = ctx.expected_version()?;
    let body: Rollback = json_body(content_type, data).await?;
    let block = rollback(state, &ctx, &name, body.to_version, expected).await?;
    Ok(block_response(&block, Status::Ok))
}

/// Rolls `name` back to version `to`, for the API and the web UI alike. A rollback may
/// bring back an old destination with the stored secret, so it needs the right to read
/// the secrets as well as to write.
pub(super) async fn rollback(
    state: &State,
    ctx: &Ctx,
    name: &BlockName,
    to: i64,
    expected: Option<i64>,
) -> ApiResult<Block> {
    let actor = ctx.actor();
    let blocks = [name.as_str()];
    authorize(
        state,
        ctx,
        actor,
        Access::change("rollback", &blocks, "rolling this block back"),
    )
    .await?;
    let access = Access {
        wanted: Permission::ReadSecrets,
        blocks: &blocks,
        audited: Some(("rollback", name)),
        what: "rolling this block back (needs blocks:read-secrets too)",
    };
    authorize(state, ctx, actor, access).await?;
    let registry = for_change(state, ctx, actor, "rollback", name);
    let target = name.clone();
    let result = blocking(move || registry.rollback_block(&target, to, expected)).await;
    changed(state, ctx, actor, "rollback", name, result).await
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
pub(super) async fn undelete(state: &State, ctx: &Ctx, name: &BlockName) -> ApiResult<Block> {
    let actor = ctx.actor();
    let blocks = [name.as_str()];
    authorize(
        state,
        ctx,
        actor,
        Access::change("undelete", &blocks, "bringing this block back"),
    )
    .await?;
    let registry = for_change(state, ctx, actor, "undelete", name);
    let target = name.clone();
    let result = blocking(move || registry.undelete_block(&target)).await;
    changed(state, ctx, actor, "undelete", name, result).await
}

#[post("/blocks/<name>/purge")]
pub async fn purge_block(
    ctx: Ctx,
    state: &rocket::State<State>,
    name: Result<BlockName, Error>,
) -> ApiResult<Json> {
    let actor = ctx.actor();
    let name = name?;
    let access = Access::admin(Some(("purge", &name)), "purging blocks (needs admin)");
    authorize(state, &ctx, actor, access).await?;
    let registry = for_change(state, &ctx, actor, "purge", &name);
    let target = name.clone();
    let result = blocking(move || registry.purge_block(&target)).await;
    let id = changed(state, &ctx, actor, "purge", &name, result).await?;
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
    let actor = ctx.actor();
    let name = name?;
    authorize(state, &ctx, actor, Access::read(&name, &[&name], false)).await?;
    let registry = state.registry.clone();
    let versions = blocking(move || registry.block_history(&name)).await?;
    Ok(Json::ok(&History { versions }))
}

#[get("/block-types")]
pub async fn list_types(_authenticated: Ctx, state: &rocket::State<State>) -> ApiResult<Json> {
    let registry = state.registry.clone();
    let types = blocking(move || registry.block_types()).await?;
    let block_types = types.into_iter().map(|t| t.def).collect();
    Ok(Json::ok(&BlockTypes { block_types }))
}

#[get("/block-types/<slug>")]
pub async fn get_type(
    _authenticated: Ctx,
    state: &rocket::State<State>,
    slug: &str,
) -> ApiResult<Json> {
    let registry = state.registry.clone();
    let slug = slug.to_owned();
    match blocking(move || registry.block_type(&slug)).await {
        Ok(ty) => Ok(Json::ok(&ty.def)),
        Err(err) if err.code == "UNKNOWN_BLOCK_TYPE" => {
            Err(ApiError::new(Status::NotFound, err.code, err.message))
        }
        Err(err) => Err(err),
    }
}

#[post("/block-types?<replace>", data = "<data>")]
pub async fn register_type(
    ctx: Ctx,
    state: &rocket::State<State>,
    replace: Option<&str>,
    content_type: Option<&ContentType>,
    data: Data<'_>,
) -> ApiResult<Json> {
    let actor = ctx.actor();
    let replace = parse_bool("replace", replace)?;
    let def: BlockTypeDef = json_body(content_type, data).await?;
    let label = format!("type:{}", def.slug);
    let access = Access::admin(
        Some(("register-type", &label)),
        "registering block types (needs admin)",
    );
    authorize(state, &ctx, actor, access).await?;
    let registry = for_change(state, &ctx, actor, "register-type", &label);
    let result = blocking(move || registry.register_type(def, replace)).await;
    let ty = changed(state, &ctx, actor, "register-type", &label, result).await?;
    Ok(Json::new(Status::Created, &ty.def))
}

#[derive(FromForm)]
pub struct AuditQuery<'r> {
    block: Option<&'r str>,
    since: Option<&'r str>,
    limit: Option<&'r str>,
    before: Option<&'r str>,
}

#[get("/audit?<q..>")]
pub async fn list_audit(
    ctx: Ctx,
    state: &rocket::State<State>,
    q: AuditQuery<'_>,
) -> ApiResult<Json> {
    let actor = ctx.actor();
    let access = Access::admin(None, "reading the audit log (needs admin)");
    authorize(state, &ctx, actor, access).await?;
    let limit = parse_limit(q.limit)?;
    let since = parse_since(q.since)?;
    if q.block.is_some_and(|b| b.contains('\0')) {
        return Err(Error::InvalidInput("block: a NUL character is not allowed".into()).into());
    }
    let filter = AuditFilter {
        block: q.block.map(str::to_owned),
        since,
        before_id: parse_number("before", q.before)?,
        limit,
    };
    let registry = state.registry.clone();
    let rows = blocking(move || registry.audit(&filter)).await?;
    let next = (rows.len() as i64 == limit)
        .then(|| rows.last().map(|r| r.id))
        .flatten();
    Ok(Json::ok(&AuditPage {
        records: rows,
        next_before: next,
    }))
}

#[derive(FromForm)]
pub struct AuditExportQuery<'r> {
    after: Option<&'r str>,
    since: Option<&'r str>,
    limit: Option<&'r str>,
}

/// `GET /audit/export`: audit records as JSON lines, oldest first, after the id
/// `after` (the last one the caller stored): a log shipper pages with it until a page
/// comes back shorter than `limit`.
#[get("/audit/export?<q..>")]
pub async fn export_audit(
    ctx: Ctx,
    state: &rocket::State<State>,
    q: AuditExportQuery<'_>,
) -> ApiResult<(ContentType, String)> {
    let actor = ctx.actor();
    let access = Access::admin(None, "exporting the audit log (needs admin)");
    authorize(state, &ctx, actor, access).await?;
    let after = parse_number("after", q.after)?.unwrap_or(0);
    let limit = parse_limit(q.limit)?;
    let since = parse_since(q.since)?;
    let registry = state.registry.clone();
    let rows = blocking(move || registry.audit_after(after, since, limit)).await?;
    let mut lines = String::new();
    for row in &rows {
        lines.push_str(&serde_json::to_string(row).unwrap_or_default());
        lines.push('\n');
    }
    Ok((ContentType::new("application", "x-ndjson"), lines))
}

#[get("/openapi.json")]
pub async fn openapi(_authenticated: Ctx) -> ApiResult<Json> {
    Ok(Json::rendered(Status::Ok, RenderedJson::raw(OPENAPI)))
}
