//! The web UI's admin pages (admin tokens only, checked by the API's `authorize`):
//! tokens (a new one shown once; revoke), the audit log with filters, and the block
//! types. Creating and revoking tokens are themselves in the audit log.

use maud::{Markup, html};
use rocket::http::Status;
use rocket::{get, post};

use super::pages::{self, Viewer, layout};
use super::viewing::{Fields, Page, SameOrigin, Viewing, page};
use crate::auth::TokenInfo;
use crate::registry::{AuditFilter, AuditRow};
use crate::server::policy::{Access, authorize};
use crate::server::response::ApiError;
use crate::server::state::{State, blocking};
use crate::server::tokens::{self as api_tokens, TOKENS};
use crate::time::rfc3339;

const AUDIT_PAGE: i64 = 100;

async fn admin_only(state: &State, viewing: &Viewing, what: &str) -> Result<(), Page> {
    let access = Access::admin(None, what);
    authorize(state, &viewing.ctx, access)
        .await
        .map_err(|err| viewing.problem(err))
}

#[get("/admin/tokens")]
pub async fn tokens(viewing: Viewing, state: &rocket::State<State>) -> Result<Page, Page> {
    admin_only(state, &viewing, TOKENS).await?;
    tokens_page(&viewing, state, Done::Nothing, Status::Ok).await
}

/// What the tokens page tells of the change just made.
enum Done<'a> {
    Nothing,
    /// A new token: its name and, this once, the token.
    Created(&'a str, &'a str),
    Revoked(&'a str),
}

async fn tokens_page(
    viewing: &Viewing,
    state: &State,
    done: Done<'_>,
    status: Status,
) -> Result<Page, Page> {
    let registry = state.registry.clone();
    let tokens = blocking(move || registry.list_tokens())
        .await
        .map_err(|e| viewing.problem(e))?;
    Ok(page(
        status,
        tokens_markup(&viewing.viewer(), &tokens, done),
    ))
}

fn tokens_markup(viewer: &Viewer<'_>, tokens: &[TokenInfo], done: Done<'_>) -> Markup {
    let body = html! {
        h1 { "Tokens" }
        @if let Done::Revoked(name) = done {
            p.notice role="status" { "Token " strong { (name) } " revoked: every request with it is refused from now on." }
        }
        @if let Done::Created(name, secret) = done {
            div.notice role="status" {
                p { "Token " strong { (name) } " created. Copy it now: it is shown only this once." }
                div.snippet {
                    pre { code #new-token { (secret) } }
                    button.quiet type="button" data-copy="new-token" { "Copy" }
                }
            }
        }
        table {
            thead { tr {
                th scope="col" { "Name" } th scope="col" { "Scopes" }
                th scope="col" { "State" } th.optional scope="col" { "Created" } th scope="col" { "" }
            } }
            tbody {
                @for t in tokens {
                    tr {
                        td { (t.name) }
                        td { @for s in &t.scopes { code { (s) } " " } }
                        td { (t.state) }
                        td.optional { (rfc3339(t.created_at)) }
                        td {
                            @if t.state == "active" {
                                form method="post" action="/ui/admin/tokens/revoke"
                                    hx-confirm={ "Revoke token " (t.name) "? Every request with it is refused from then on." } {
                                    input type="hidden" name="csrf" value=(viewer.csrf);
                                    input type="hidden" name="id" value=(t.id);
                                    button.quiet type="submit" aria-label={ "Revoke " (t.name) } { "Revoke" }
                                }
                            }
                        }
                    }
                }
            }
        }
        h2 { "New token" }
        form method="post" action="/ui/admin/tokens" {
            input type="hidden" name="csrf" value=(viewer.csrf);
            label for="token-name" { "Name" }
            input #token-name type="text" name="name" required;
            label for="token-scopes" { "Scopes" }
            input #token-scopes type="text" name="scopes" required aria-describedby="scopes-help";
            p.muted #scopes-help {
                "Separated by spaces, e.g. " code { "blocks:read-secrets:crdb-*" } " or " code { "admin" } "."
            }
            p { button type="submit" { "Create token" } }
        }
    };
    layout("Tokens", Some(viewer), body)
}

#[post("/admin/tokens", data = "<form>")]
pub async fn create_token(
    _origin: SameOrigin,
    viewing: Viewing,
    state: &rocket::State<State>,
    form: Fields,
) -> Result<Page, Page> {
    viewing.csrf(form.get("csrf").map(String::as_str))?;
    admin_only(state, &viewing, TOKENS).await?;
    let name = form
        .get("name")
        .map(|n| n.trim().to_owned())
        .unwrap_or_default();
    let scopes: Vec<String> = form
        .get("scopes")
        .map(|s| s.split_whitespace().map(str::to_owned).collect())
        .unwrap_or_default();
    match api_tokens::create(state, &viewing.ctx, name, scopes, None).await {
        Ok(created) => {
            let shown = Done::Created(&created.info.name, &created.secret);
            tokens_page(&viewing, state, shown, Status::Created).await
        }
        Err(err) => Err(viewing.problem(err)),
    }
}

#[post("/admin/tokens/revoke", data = "<form>")]
pub async fn revoke_token(
    _origin: SameOrigin,
    viewing: Viewing,
    state: &rocket::State<State>,
    form: Fields,
) -> Result<Page, Page> {
    viewing.csrf(form.get("csrf").map(String::as_str))?;
    admin_only(state, &viewing, TOKENS).await?;
    let id = form.get("id").cloned().unwrap_or_default();
    let name = api_tokens::revoke(state, &viewing.ctx, &id)
        .await
        .map_err(|e| viewing.problem(e))?;
    tokens_page(&viewing, state, Done::Revoked(&name), Status::Ok).await
}

#[get("/admin/audit?<block>&<since>&<before>")]
pub async fn audit_log(
    viewing: Viewing,
    state: &rocket::State<State>,
    block: Option<&str>,
    since: Option<&str>,
    before: Option<i64>,
) -> Result<Page, Page> {
    admin_only(state, &viewing, "reading the audit log (needs admin)").await?;
    let block = block.map(str::trim).filter(|b| !b.is_empty());
    let since_text = since.map(str::trim).filter(|s| !s.is_empty());
    let since_ms = match since_text {
        Some(text) => {
            Some(crate::time::parse_since(text).map_err(|e| viewing.problem(ApiError::from(e)))?)
        }
        None => None,
    };
    let filter = AuditFilter {
        block: block.map(str::to_owned),
        since: since_ms,
        before_id: before,
        limit: AUDIT_PAGE,
    };
    let registry = state.registry.clone();
    let rows = blocking(move || registry.audit(&filter))
        .await
        .map_err(|e| viewing.problem(e))?;
    let next = (rows.len() as i64 == AUDIT_PAGE)
        .then(|| rows.last().map(|r| r.id))
        .flatten();
    Ok(page(
        Status::Ok,
        audit_markup(&viewing.viewer(), &rows, block, since_text, next),
    ))
}

fn audit_markup(
    viewer: &Viewer<'_>,
    rows: &[AuditRow],
    block: Option<&str>,
    since: Option<&str>,
    next: Option<i64>,
) -> Markup {
    let next_url = next.map(|before| {
        let before = before.to_string();
        let query = [
            ("before", Some(before.as_str())),
            ("block", block),
            ("since", since),
        ];
        pages::page_url("/ui/admin/audit", &query)
    });
    let body = html! {
        h1 { "Audit log" }
        form.filters method="get" action="/ui/admin/audit" role="search" {
            div {
                label for="audit-block" { "Block" }
                input #audit-block type="search" name="block" value=(block.unwrap_or_default());
            }
            div {
                label for="audit-since" { "Since" }
                input #audit-since type="text" name="since" placeholder="1h, 7d or 2026-11-01"
                    value=(since.unwrap_or_default());
            }
            div { button type="submit" { "Filter" } }
        }
        table {
            thead { tr {
                th scope="col" { "At" } th scope="col" { "Actor" } th scope="col" { "Action" }
                th scope="col" { "Block" } th scope="col" { "Outcome" } th scope="col" { "Count" }
                th.optional scope="col" { "Request" }
            } }
            tbody {
                @for r in rows {
                    tr {
                        td { (rfc3339(r.at)) }
                        td { (r.actor) }
                        td { (r.action) }
                        td { (r.block.as_deref().unwrap_or("")) }
                        td { (r.outcome) }
                        td title=[(r.event_count > 1).then(|| format!("until {}", rfc3339(r.last_at)))] {
                            (r.event_count)
                        }
                        td.optional { code { (r.request_id) } }
                    }
                }
            }
        }
        @if let Some(next) = next_url {
            p.pager { a href=(next) rel="next" { "Older records →" } }
        }
    };
    layout("Audit log", Some(viewer), body)
}

#[get("/admin/types")]
pub async fn block_types(viewing: Viewing, state: &rocket::State<State>) -> Result<Page, Page> {
    admin_only(state, &viewing, "viewing block types (needs admin)").await?;
    let registry = state.registry.clone();
    let types = blocking(move || registry.block_types())
        .await
        .map_err(|e| viewing.problem(e))?;
    let body = html! {
        h1 { "Block types" }
        table {
            thead { tr {
                th scope="col" { "Slug" } th scope="col" { "Name" }
                th scope="col" { "Secret fields" } th scope="col" { "Built in" }
            } }
            tbody {
                @for t in &types {
                    tr {
                        td { code { (t.def.slug) } }
                        td { (t.def.name) br; span.muted { (t.def.description) } }
                        td { @for s in &t.def.secret_fields { code { (s) } " " } }
                        td { @if t.builtin { "yes" } @else { "no" } }
                    }
                }
            }
        }
        p.muted { "Register a type with " code { "blockyard type register FILE" } " or " code { "POST /api/v1/block-types" } "." }
    };
    Ok(page(
        Status::Ok,
        layout("Block types", Some(&viewing.viewer()), body),
    ))
}
