//! Undoing from the web UI, through the API's own functions (`rollback`, `undelete`,
//! `delete`): roll a block back to an earlier version, bring a deleted one back, and
//! delete one after seeing who read it lately.

use std::collections::BTreeMap;

use rocket::http::Status;
use rocket::response::Redirect;
use rocket::{get, post};

use super::block_page;
use super::viewing::{Fields, Page, SameOrigin, Viewing, page};
use crate::auth::Permission;
use crate::error::Error;
use crate::name::BlockName;
use crate::registry::AuditFilter;
use crate::server::blocks;
use crate::server::policy::{Access, authorize};
use crate::server::response::ApiError;
use crate::server::state::{State, blocking};

/// The form's CSRF token, and the block it is about.
fn checked(
    viewing: &Viewing,
    form: &Fields,
    name: Result<BlockName, Error>,
) -> Result<BlockName, Page> {
    viewing.csrf(form.get("csrf").map(String::as_str))?;
    name.map_err(|e| viewing.problem(ApiError::from(e)))
}

fn number(form: &Fields, field: &str) -> Option<i64> {
    form.get(field).and_then(|v| v.parse().ok())
}

#[post("/blocks/<name>/rollback", data = "<form>")]
pub async fn rollback(
    _origin: SameOrigin,
    viewing: Viewing,
    state: &rocket::State<State>,
    name: Result<BlockName, Error>,
    form: Fields,
) -> Result<Redirect, Page> {
    let name = checked(&viewing, &form, name)?;
    let Some(to) = number(&form, "to") else {
        return Err(viewing.problem(ApiError::from(Error::InvalidInput(
            "no version to roll back to".into(),
        ))));
    };
    blocks::rollback(state, &viewing.ctx, &name, to, number(&form, "version"))
        .await
        .map_err(|e| viewing.problem(e))?;
    Ok(Redirect::to(format!(
        "/ui/blocks/{name}?rolled_back_to={to}"
    )))
}

#[post("/blocks/<name>/undelete", data = "<form>")]
pub async fn undelete(
    _origin: SameOrigin,
    viewing: Viewing,
    state: &rocket::State<State>,
    name: Result<BlockName, Error>,
    form: Fields,
) -> Result<Redirect, Page> {
    let name = checked(&viewing, &form, name)?;
    blocks::undelete(state, &viewing.ctx, &name)
        .await
        .map_err(|e| viewing.problem(e))?;
    Ok(Redirect::to(format!("/ui/blocks/{name}")))
}

/// How far back "who read it lately" looks.
const RECENT_MS: i64 = 30 * 24 * 3600 * 1000;

#[get("/blocks/<name>/delete")]
pub async fn confirm_delete(
    viewing: Viewing,
    state: &rocket::State<State>,
    name: Result<BlockName, Error>,
) -> Page {
    let shown = async {
        let name = name?;
        let touched = [name.as_str()];
        let access = Access::write("delete", &touched, "deleting this block");
        authorize(state, &viewing.ctx, access).await?;
        let registry = state.registry.clone();
        let admin = viewing.ctx.actor().may(Permission::Admin, None);
        blocking(move || {
            let block = registry.get_block_masked(&name)?;
            let readers = match admin {
                false => None,
                true => Some(recent_readers(&registry, &name)?),
            };
            Ok((block, readers))
        })
        .await
    };
    match shown.await {
        Ok((block, readers)) => page(
            Status::Ok,
            block_page::confirm_delete(&viewing.viewer(), &block, readers.as_deref()),
        ),
        Err(err) => viewing.problem(err),
    }
}

/// Who read a block's secrets (or had the server use them) in the last 30 days: each
/// token, its number of reads and the last one, most recent first.
fn recent_readers(
    registry: &crate::registry::Registry,
    name: &str,
) -> crate::error::Result<Vec<(String, i64, i64)>> {
    let filter = AuditFilter {
        block: Some(name.to_owned()),
        since: Some(crate::time::now_millis() - RECENT_MS),
        before_id: None,
        limit: 10_000,
    };
    let mut readers: BTreeMap<String, (i64, i64)> = BTreeMap::new();
    for row in registry.audit(&filter)? {
        if row.outcome == "ok" && matches!(row.action.as_str(), "read-secrets" | "use-block-secret")
        {
            let entry = readers.entry(row.actor).or_insert((0, row.at));
            entry.0 += 1;
            entry.1 = entry.1.max(row.at);
        }
    }
    let mut listed: Vec<(String, i64, i64)> = readers
        .into_iter()
        .map(|(actor, (n, last))| (actor, n, last))
        .collect();
    listed.sort_by_key(|(_, _, last)| std::cmp::Reverse(*last));
    Ok(listed)
}

#[post("/blocks/<name>/delete", data = "<form>")]
pub async fn delete(
    _origin: SameOrigin,
    viewing: Viewing,
    state: &rocket::State<State>,
    name: Result<BlockName, Error>,
    form: Fields,
) -> Result<Redirect, Page> {
    let name = checked(&viewing, &form, name)?;
    blocks::delete(state, &viewing.ctx, &name, number(&form, "version"))
        .await
        .map_err(|e| viewing.problem(e))?;
    Ok(Redirect::to("/ui"))
}
