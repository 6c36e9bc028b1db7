//! The web UI at `/ui`, served by the same server: sign-in with a token, the block list
//! and a block's page, with Reveal. Every page is HTML rendered here and works without
//! JavaScript. It calls the registry through the API's own door (`authorize`,
//! `read_block`, the audit log), never around it; every form carries the session's CSRF
//! token and is refused from another origin; every response carries a strict
//! Content-Security-Policy and is never cached.

mod admin;
mod edit;
mod form;
mod pages;
mod session;
mod slots;
mod undo;

use std::sync::Arc;

use rocket::form::{Form, FromForm};
use rocket::http::{Cookie, CookieJar, SameSite, Status};
use rocket::request::{FromRequest, Outcome, Request};
use rocket::response::Redirect;
use rocket::response::content::{RawCss, RawHtml};
use rocket::{Catcher, Route, catch, catchers, get, post, routes};

pub use session::Sessions;

/// What the UI keeps in the server's memory: sessions, the tests running, and each
/// block's last Test
/// (`(passed, code or "ok", at)`; gone when the server restarts, and per server).
#[derive(Default)]
pub struct UiState {
    pub sessions: Sessions,
    /// The connection tests running now (bounded per token and in all).
    pub tests: slots::TestSlots,
    pub last_tests: std::sync::Mutex<std::collections::HashMap<String, (bool, String, i64)>>,
}

impl UiState {
    fn record_test(&self, name: &str, passed: bool, code: &str) {
        let mut tests = self.last_tests.lock().expect("last tests poisoned");
        if tests.len() >= 100_000 && !tests.contains_key(name) {
            tests.clear();
        }
        tests.insert(
            name.to_owned(),
            (passed, code.to_owned(), crate::time::now_millis()),
        );
    }

    fn last_tests(&self, names: &[&str]) -> Vec<Option<(bool, String, i64)>> {
        let tests = self.last_tests.lock().expect("last tests poisoned");
        names.iter().map(|n| tests.get(*n).cloned()).collect()
    }
}

use super::api::{Access, authorize, read_block, visible_blocks};
use super::http::{ApiError, Ctx, verify_token};
use super::{State, blocking};
use crate::auth::Permission;
use crate::block::BlockFilter;
use crate::error::Error;
use crate::name::BlockName;
use pages::{BlockView, ListView, Viewer};
use session::{COOKIE, LOGIN_COOKIE, random_token, same_token};

const STYLE: &str = include_str!("assets/style.css");
/// htmx 2.0.11 (BSD Zero Clause, `assets/htmx-LICENSE`), as npm ships it: minified, and
/// gzipped for the browsers that take it (all do; 17 KB instead of 52 KB).
const HTMX: &[u8] = include_bytes!("assets/htmx.min.js");
const HTMX_GZ: &[u8] = include_bytes!("assets/htmx.min.js.gz");
/// Blocks per page of the list.
const PAGE: i64 = 50;

pub fn routes() -> Vec<Route> {
    routes![
        style,
        htmx,
        login_page,
        login,
        logout,
        block_list,
        block_page,
        reveal,
        edit::new_block,
        edit::create_block,
        edit::edit_block,
        edit::save_block,
        edit::test_block,
        admin::tokens,
        admin::create_token,
        admin::revoke_token,
        admin::audit_log,
        admin::block_types,
        undo::rollback,
        undo::undelete,
        undo::confirm_delete,
        undo::delete,
    ]
}

pub fn catchers() -> Vec<Catcher> {
    catchers![signed_out, refused, not_found]
}

type Page = (Status, RawHtml<String>);

fn page(status: Status, markup: maud::Markup) -> Page {
    (status, RawHtml(markup.into_string()))
}

/// A signed-in viewer: the session's token, verified again on this request, as the
/// API's request context (so the UI's checks and audit records are the API's).
pub struct Viewing {
    ctx: Ctx,
    session: String,
    csrf: String,
}

impl Viewing {
    fn viewer(&self) -> Viewer<'_> {
        Viewer {
            name: &self.ctx.actor().name,
            csrf: &self.csrf,
            admin: self.ctx.actor().may(Permission::Admin, None),
        }
    }

    /// A form's CSRF token must be this session's: otherwise the refusal page.
    fn csrf(&self, sent: Option<&str>) -> Result<(), Page> {
        match sent.is_some_and(|sent| same_token(&self.csrf, sent)) {
            true => Ok(()),
            false => Err(refused()),
        }
    }

    /// An API error as a page.
    fn problem(&self, err: ApiError) -> Page {
        let title = match err.status.code {
            403 => "Not allowed",
            404 => "Not found",
            _ => "Something went wrong",
        };
        page(
            err.status,
            pages::problem(Some(&self.viewer()), title, &err.message),
        )
    }
}

#[rocket::async_trait]
impl<'r> FromRequest<'r> for Viewing {
    type Error = ();

    async fn from_request(req: &'r Request<'_>) -> Outcome<Self, ()> {
        let state = req.rocket().state::<State>().expect("server state");
        let sessions = &state.ui.sessions;
        let Some(id) = req.cookies().get(COOKIE).map(|c| c.value().to_owned()) else {
            return Outcome::Error((Status::Unauthorized, ()));
        };
        let Some((token, csrf)) = sessions.get(&id) else {
            return Outcome::Error((Status::Unauthorized, ()));
        };
        match verify_token(state, &token).await {
            Ok(actor) => Outcome::Success(Viewing {
                ctx: Ctx::verified(req, actor),
                session: id,
                csrf,
            }),
            Err(Error::Unauthorized(_)) => {
                // A revoked or expired token ends its sessions.
                sessions.close(&id);
                Outcome::Error((Status::Unauthorized, ()))
            }
            // The store cannot be asked now: the session stays for when it can.
            Err(_) => Outcome::Error((Status::ServiceUnavailable, ())),
        }
    }
}

/// A form post from this site: refused when the browser says it comes from another
/// origin (`Origin`, or `Sec-Fetch-Site` other than same-origin). The CSRF token is
/// checked as well, by each handler.
pub struct SameOrigin;

#[rocket::async_trait]
impl<'r> FromRequest<'r> for SameOrigin {
    type Error = ();

    async fn from_request(req: &'r Request<'_>) -> Outcome<Self, ()> {
        let headers = req.headers();
        let cross_site = headers
            .get_one("Sec-Fetch-Site")
            .is_some_and(|site| site != "same-origin" && site != "none");
        // With `Referrer-Policy: no-referrer` browsers send `Origin: null` on their own
        // forms: then `Sec-Fetch-Site` and the CSRF token decide.
        let origin = headers.get_one("Origin").filter(|o| *o != "null");
        let foreign_origin = match (origin, headers.get_one("Host")) {
            (Some(origin), Some(host)) => url::Url::parse(origin).ok().is_none_or(|o| {
                let authority = match o.port() {
                    Some(port) => format!("{}:{port}", o.host_str().unwrap_or_default()),
                    None => o.host_str().unwrap_or_default().to_owned(),
                };
                authority != host
            }),
            (Some(_), None) => true,
            (None, _) => false,
        };
        match cross_site || foreign_origin {
            true => Outcome::Error((Status::Forbidden, ())),
            false => Outcome::Success(SameOrigin),
        }
    }
}

#[catch(401)]
fn signed_out() -> Redirect {
    Redirect::to("/ui/login")
}

#[catch(403)]
fn refused() -> Page {
    page(
        Status::Forbidden,
        pages::problem(
            None,
            "Not allowed",
            "This form was refused: it did not come from this site, or its session token \
             was missing or stale. Go back, reload the page and try again.",
        ),
    )
}

#[catch(404)]
fn not_found() -> Page {
    page(
        Status::NotFound,
        pages::problem(None, "Not found", "There is no such page."),
    )
}

#[get("/style.css")]
fn style() -> RawCss<&'static str> {
    RawCss(STYLE)
}

/// htmx, gzipped when the browser accepts it.
#[get("/htmx.js")]
fn htmx(gzip: AcceptsGzip) -> Asset {
    Asset {
        body: if gzip.0 { HTMX_GZ } else { HTMX },
        gzip: gzip.0,
    }
}

/// Whether the request says `Accept-Encoding: gzip`.
pub struct AcceptsGzip(bool);

#[rocket::async_trait]
impl<'r> FromRequest<'r> for AcceptsGzip {
    type Error = ();

    async fn from_request(req: &'r Request<'_>) -> Outcome<Self, ()> {
        let gzip = req
            .headers()
            .get("Accept-Encoding")
            .any(|v| v.split(',').any(|e| e.trim().starts_with("gzip")));
        Outcome::Success(AcceptsGzip(gzip))
    }
}

/// A script served as it is embedded.
pub struct Asset {
    body: &'static [u8],
    gzip: bool,
}

impl<'r> rocket::response::Responder<'r, 'static> for Asset {
    fn respond_to(self, _: &'r Request<'_>) -> rocket::response::Result<'static> {
        let mut res = rocket::Response::build();
        res.header(rocket::http::ContentType::JavaScript)
            .raw_header("Vary", "Accept-Encoding")
            .sized_body(self.body.len(), std::io::Cursor::new(self.body));
        if self.gzip {
            res.raw_header("Content-Encoding", "gzip");
        }
        res.ok()
    }
}

/// A cookie of the UI's: HttpOnly, SameSite=Strict, for `/ui` only, Secure when the
/// request came over TLS (to a proxy that says so).
fn ui_cookie(name: &'static str, value: String, secure: bool) -> Cookie<'static> {
    Cookie::build((name, value))
        .http_only(true)
        .same_site(SameSite::Strict)
        .path("/ui")
        .secure(secure)
        .build()
}

/// Whether the request came over TLS (directly, or to a proxy that says so).
pub struct OverTls(bool);

#[rocket::async_trait]
impl<'r> FromRequest<'r> for OverTls {
    type Error = ();

    async fn from_request(req: &'r Request<'_>) -> Outcome<Self, ()> {
        let proxied = req
            .headers()
            .get_one("X-Forwarded-Proto")
            .is_some_and(|p| p.eq_ignore_ascii_case("https"));
        Outcome::Success(OverTls(proxied))
    }
}

#[get("/login")]
fn login_page(cookies: &CookieJar<'_>, tls: OverTls) -> Page {
    let csrf = random_token();
    cookies.add(ui_cookie(LOGIN_COOKIE, csrf.clone(), tls.0));
    page(Status::Ok, pages::login(&csrf, None))
}

#[derive(FromForm)]
struct LoginForm<'r> {
    token: &'r str,
    csrf: &'r str,
}

#[post("/login", data = "<form>")]
async fn login(
    _origin: SameOrigin,
    state: &rocket::State<State>,
    cookies: &CookieJar<'_>,
    tls: OverTls,
    form: Form<LoginForm<'_>>,
) -> Result<Redirect, Page> {
    let expected = cookies.get(LOGIN_COOKIE).map(|c| c.value().to_owned());
    if !expected.is_some_and(|e| same_token(&e, form.csrf)) {
        return Err(refused());
    }
    let token = form.token.trim();
    if verify_token(state, token).await.is_err() {
        let csrf = random_token();
        cookies.add(ui_cookie(LOGIN_COOKIE, csrf.clone(), tls.0));
        let message = "That token is not valid: it may be mistyped, expired or revoked.";
        return Err(page(
            Status::Unauthorized,
            pages::login(&csrf, Some(message)),
        ));
    }
    cookies.remove(Cookie::build(LOGIN_COOKIE).path("/ui"));
    let id = state.ui.sessions.open(token);
    cookies.add(ui_cookie(COOKIE, id, tls.0));
    Ok(Redirect::to("/ui"))
}

#[derive(FromForm)]
struct CsrfForm<'r> {
    csrf: &'r str,
}

#[post("/logout", data = "<form>")]
fn logout(
    _origin: SameOrigin,
    viewing: Viewing,
    state: &rocket::State<State>,
    cookies: &CookieJar<'_>,
    form: Form<CsrfForm<'_>>,
) -> Result<Redirect, Page> {
    viewing.csrf(Some(form.csrf))?;
    state.ui.sessions.close(&viewing.session);
    cookies.remove(Cookie::build(COOKIE).path("/ui"));
    Ok(Redirect::to("/ui/login"))
}

#[get("/?<type>&<q>&<cursor>")]
async fn block_list(
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
        name_prefix: prefix.map(str::to_owned),
        after: cursor.map(str::to_owned),
        limit: None,
        name_glob: None,
    };
    let registry = state.registry.clone();
    let reader = actor.clone();
    let listed = blocking(move || {
        let blocks = visible_blocks(&registry, filter, PAGE + 1, &reader)?;
        let types = registry.block_types()?;
        Ok((blocks, types))
    })
    .await;
    let (mut blocks, types) = match listed {
        Ok(listed) => listed,
        Err(err) => return viewing.problem(err),
    };
    let more = blocks.len() as i64 > PAGE;
    blocks.truncate(PAGE as usize);
    let next_cursor = more
        .then(|| blocks.last().map(|b| b.name.clone()))
        .flatten();
    let types: Vec<String> = types.into_iter().map(|t| t.def.slug).collect();
    let names: Vec<&str> = blocks.iter().map(|b| b.name.as_str()).collect();
    let tests = state.ui.last_tests(&names);
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

#[get("/blocks/<name>")]
async fn block_page(
    viewing: Viewing,
    state: &rocket::State<State>,
    name: Result<BlockName, Error>,
) -> Page {
    show_block(&viewing, state, name, false, None).await
}

#[post("/blocks/<name>/reveal", data = "<form>")]
async fn reveal(
    _origin: SameOrigin,
    viewing: Viewing,
    state: &rocket::State<State>,
    name: Result<BlockName, Error>,
    form: Form<CsrfForm<'_>>,
) -> Page {
    if let Err(refusal) = viewing.csrf(Some(form.csrf)) {
        return refusal;
    }
    show_block(&viewing, state, name, true, None).await
}

/// A block's page, through the API's door: the read (or secret read, audited before
/// anything is sent) is authorized as `GET /blocks/{name}` would be.
async fn show_block(
    viewing: &Viewing,
    state: &State,
    name: Result<BlockName, Error>,
    reveal: bool,
    tested: Option<&pages::Tested>,
) -> Page {
    let wanted = name.as_ref().map(|n| n.to_string()).unwrap_or_default();
    let shown = async {
        let name = name?;
        let (ctx, actor) = (&viewing.ctx, viewing.ctx.actor());
        authorize(state, ctx, actor, Access::read(&name, &[&name], reveal)).await?;
        let kept = read_block(state, ctx, actor, &name, reveal).await?;
        let registry = state.registry.clone();
        let history = blocking(move || registry.block_history(&name)).await?;
        Ok::<_, ApiError>((kept, history))
    };
    match shown.await {
        Ok((kept, history)) => {
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
            };
            page(Status::Ok, pages::block_page(&viewing.viewer(), &view))
        }
        Err(err) if err.code == "BLOCK_NOT_FOUND" => {
            let undelete = viewing.ctx.actor().may(Permission::Write, Some(&wanted));
            let markup = pages::missing_block(&viewing.viewer(), &wanted, &err.message, undelete);
            page(Status::NotFound, markup)
        }
        Err(err) => viewing.problem(err),
    }
}

/// The headers of every `/ui` response: a Content-Security-Policy that allows only
/// this site's stylesheet and script (htmx; no inline script or style, no eval, no
/// frames), no framing, no referrer, no sniffing, and no caching of pages.
pub struct SecurityHeaders;

#[rocket::async_trait]
impl rocket::fairing::Fairing for SecurityHeaders {
    fn info(&self) -> rocket::fairing::Info {
        rocket::fairing::Info {
            name: "web UI security headers",
            kind: rocket::fairing::Kind::Response,
        }
    }

    async fn on_response<'r>(&self, req: &'r Request<'_>, res: &mut rocket::Response<'r>) {
        let path = req.uri().path();
        if !path.starts_with("/ui") {
            return;
        }
        // The stylesheet and htmx may be cached; pages never are (a revealed secret
        // must not stay in a cache).
        let asset = path == "/ui/style.css" || path == "/ui/htmx.js";
        use rocket::http::Header;
        res.set_header(Header::new(
            "Content-Security-Policy",
            "default-src 'none'; script-src 'self'; connect-src 'self'; style-src 'self'; \
             img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        ));
        res.set_header(Header::new("X-Frame-Options", "DENY"));
        res.set_header(Header::new("Referrer-Policy", "no-referrer"));
        res.set_header(Header::new("X-Content-Type-Options", "nosniff"));
        res.set_header(Header::new(
            "Cache-Control",
            if asset {
                "public, max-age=3600"
            } else {
                "no-store"
            },
        ));
    }
}
