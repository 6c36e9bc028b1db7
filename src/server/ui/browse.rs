//! Browsing in the UI: the block list (only what the token may see, with each block's
//! last Test) and a block's page, through the API's door: the read (or secret read,
//! audited before anything is sent) is authorized as `GET /blocks/{name}` would be.

use std::sync::Arc;

use rocket::form::Form;
use rocket::http::Status;
use rocket::{get, post};

use super::block_page::{self, BlockView, Tested};
use super::login::CsrfForm;
use super::pages::{self, ListView};
use super::viewing::{Fields, Page, SameOrigin, Viewing, page};
use crate::auth::Permission;
use crate::block::BlockFilter;
use crate::error::{Error, ErrorKind};
use crate::name::BlockName;
use crate::server::policy::{Access, Change, authorize};
use crate::server::reads::{read_block, visible_blocks};
use crate::server::response::ApiError;
use crate::server::state::{State, blocking};

/// Blocks per page of the list.
const PAGE: i64 = 50;

#[get("/?<type>&<q>&<cursor>")]
pub async fn block_list(
    viewing: Viewing,
    state: &rocket::State<State>,
    r#type: Option<&str>,
    q: Option<&str>,
    cursor: Option<&str>,
) -> Page {
    let actor = Arc::new(viewing.ctx.actor().clone());
    let (block_type, prefix) = (
        r#type.filter(|t| !t.is_empty()),
        q.map(str::trim).filter(|p| !p.is_empty()),
    );
    if let Some(cursor) = cursor
        && let Err(err) = BlockName::parse(cursor)
    {
        return viewing.problem(ApiError::from(err));
    }
    let filter = BlockFilter {
        block_type: block_type.map(str::to_owned),
        after: cursor.map(str::to_owned),
        name_contains: prefix.map(str::to_ascii_lowercase),
        ..BlockFilter::default()
    };
    let registry = state.registry.clone();
    let reader = actor.clone();
    let listed = blocking(move || {
        let mut blocks = visible_blocks(&registry, filter, PAGE + 1, &reader)?;
        let more = blocks.len() as i64 > PAGE;
        blocks.truncate(PAGE as usize);
        let names: Vec<&str> = blocks.iter().map(|b| b.name.as_str()).collect();
        let tests = registry.last_tests(&names)?;
        Ok((blocks, more, tests, registry.block_types()?))
    })
    .await;
    let (blocks, more, tests, types) = match listed {
        Ok(listed) => listed,
        Err(err) => return viewing.problem(err),
    };
    let next_cursor = more
        .then(|| blocks.last().map(|b| b.name.clone()))
        .flatten();
    let types: Vec<String> = types.into_iter().map(|t| t.def.slug).collect();
    let view = ListView {
        tests: &tests,
        blocks: &blocks,
        types: &types,
        block_type,
        prefix,
        next_cursor: next_cursor.as_deref(),
    };
    page(Status::Ok, pages::block_list(&viewing.viewer(), &view))
}

/// A block's page; `rolled_back_to` (after a roll back) says what happened.
#[get("/blocks/<name>?<rolled_back_to>")]
pub async fn show_page(
    viewing: Viewing,
    state: &rocket::State<State>,
    name: Result<BlockName, Error>,
    rolled_back_to: Option<i64>,
) -> Page {
    let done = rolled_back_to.map(|to| format!("Rolled back to version {to}."));
    show_block(&viewing, state, name, false, None, done).await
}

#[post("/blocks/<name>/reveal", data = "<form>")]
pub async fn reveal(
    _origin: SameOrigin,
    viewing: Viewing,
    state: &rocket::State<State>,
    name: Result<BlockName, Error>,
    form: Form<CsrfForm<'_>>,
) -> Page {
    if let Err(refusal) = viewing.csrf(Some(form.csrf)) {
        return refusal;
    }
    show_block(&viewing, state, name, true, None, None).await
}

/// A block's page, through the API's door: the read (or secret read, audited before
/// anything is sent) is authorized as `GET /blocks/{name}` would be.
pub async fn show_block(
    viewing: &Viewing,
    state: &State,
    name: Result<BlockName, Error>,
    reveal: bool,
    tested: Option<&Tested>,
    done: Option<String>,
) -> Page {
    let wanted = name.as_ref().map(|n| n.to_string()).unwrap_or_default();
    let shown = async {
        let name = name?;
        let ctx = &viewing.ctx;
        authorize(state, ctx, Access::read(&name, &[&name], reveal)).await?;
        let kept = read_block(state, ctx, &name, reveal).await?;
        let registry = state.registry.clone();
        let admin = ctx.actor().may(Permission::Admin, None);
        let listed = blocking(move || {
            let leases = match admin {
                true => Some(registry.leases(Some(&name), false)?),
                false => None,
            };
            Ok((registry.block_history(&name)?, leases))
        });
        let (history, leases) = listed.await?;
        Ok::<_, ApiError>((kept, history, leases))
    };
    match shown.await {
        Ok((kept, history, leases)) => {
            let actor = viewing.ctx.actor();
            let view = BlockView {
                block: &kept.block,
                revealed: reveal,
                may_reveal: actor.may(Permission::ReadSecrets, Some(&kept.block.name)),
                may_edit: actor.may(Permission::Write, Some(&kept.block.name)),
                may_undo: actor.may(Permission::Write, Some(&kept.block.name))
                    && actor.may(Permission::ReadSecrets, Some(&kept.block.name)),
                history: &history,
                tested,
                done: done.as_deref(),
                leases: leases.as_deref(),
            };
            page(Status::Ok, block_page::block_page(&viewing.viewer(), &view))
        }
        Err(err) if err.kind == ErrorKind::BlockNotFound => {
            let undelete = viewing.ctx.actor().may(Permission::Write, Some(&wanted));
            let markup =
                block_page::missing_block(&viewing.viewer(), &wanted, &err.message, undelete);
            page(Status::NotFound, markup)
        }
        Err(err) => viewing.problem(err),
    }
}

/// Revokes one of a block's leases from its page (admin), then shows the page again.
#[post("/blocks/<name>/leases/revoke", data = "<form>")]
pub async fn revoke_lease(
    _origin: SameOrigin,
    viewing: Viewing,
    state: &rocket::State<State>,
    name: Result<BlockName, Error>,
    form: Fields,
) -> Result<Page, Page> {
    viewing.csrf(form.get("csrf").map(String::as_str))?;
    let access = Access::admin(None, "revoking leases from the UI (needs admin)");
    authorize(state, &viewing.ctx, access)
        .await
        .map_err(|err| viewing.problem(err))?;
    let block = name.map_err(|e| viewing.problem(e.into()))?;
    let id = form.get("id").cloned().unwrap_or_default();
    let label = block.to_string();
    Change::lease("lease-revoke", &[&label], "revoking leases")
        .run(state, &viewing.ctx, move |registry| {
            registry.revoke_lease(&id)
        })
        .await
        .map_err(|e| viewing.problem(e))?;
    Ok(show_block(&viewing, state, Ok(block), false, None, None).await)
}
