//! The `/api/v1/audit` routes: the audit log, newest first in pages, and its export as
//! JSON lines for a log shipper. Admin only.

use rocket::http::ContentType;
use rocket::{FromForm, get};

use super::guard::Admin;
use super::http::{parse_limit, parse_number, parse_since};
use super::response::{ApiResult, Json};
use super::state::{State, blocking};
use crate::error::Error;
use crate::registry::AuditFilter;
use crate::wire::AuditPage;

/// The audit log routes, mounted under `/api/v1`.
pub fn routes() -> Vec<rocket::Route> {
    rocket::routes![list_audit, export_audit]
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
    _admin: Admin,
    state: &rocket::State<State>,
    q: AuditQuery<'_>,
) -> ApiResult<Json> {
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
    _admin: Admin,
    state: &rocket::State<State>,
    q: AuditExportQuery<'_>,
) -> ApiResult<(ContentType, String)> {
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
