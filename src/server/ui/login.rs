//! Signing in and out of the UI: a token typed once opens a session (only a random id
//! in an HttpOnly, SameSite=Strict cookie); sign-out ends it.

use rocket::form::{Form, FromForm};
use rocket::http::{Cookie, CookieJar, SameSite, Status};
use rocket::response::Redirect;
use rocket::{get, post};

use super::pages;
use super::viewing::{OverTls, Page, SameOrigin, Viewing, page, refusal};
use crate::server::guard::{Client, authenticate};
use crate::server::sessions::{COOKIE, LOGIN_COOKIE, random_token, same_token};
use crate::server::state::{STORE_DEADLINE, State, within};

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

#[get("/login")]
pub fn login_page(cookies: &CookieJar<'_>, tls: OverTls) -> Page {
    let csrf = random_token();
    cookies.add(ui_cookie(LOGIN_COOKIE, csrf.clone(), tls.0));
    page(Status::Ok, pages::login(&csrf, None))
}

#[derive(FromForm)]
pub struct LoginForm<'r> {
    token: &'r str,
    pub csrf: &'r str,
}

#[post("/login", data = "<form>")]
pub async fn login(
    _origin: SameOrigin,
    state: &rocket::State<State>,
    cookies: &CookieJar<'_>,
    tls: OverTls,
    client: Client,
    form: Form<LoginForm<'_>>,
) -> Result<Redirect, Page> {
    let expected = cookies.get(LOGIN_COOKIE).map(|c| c.value().to_owned());
    if !expected.is_some_and(|e| same_token(&e, form.csrf)) {
        return Err(refusal());
    }
    let token = form.token.trim();
    let refused = |csrf: String, status: Status, message: &str| {
        cookies.add(ui_cookie(LOGIN_COOKIE, csrf.clone(), tls.0));
        page(status, pages::login(&csrf, Some(message)))
    };
    let actor = match authenticate(state, client.0, token).await {
        Ok(actor) => actor,
        Err(refusal) => {
            let message = match refusal.status.code {
                401 => "That token is not valid: it may be mistyped, expired or revoked.",
                _ => refusal.message.as_str(),
            };
            return Err(refused(random_token(), refusal.status, message));
        }
    };
    let sessions = state.ui.sessions.clone();
    let opened = within(STORE_DEADLINE, move || sessions.open(&actor.token_id)).await;
    let Ok(id) = opened else {
        let message = "The store cannot be reached now; try again in a moment.";
        return Err(refused(random_token(), Status::ServiceUnavailable, message));
    };
    cookies.remove(Cookie::build(LOGIN_COOKIE).path("/ui"));
    cookies.add(ui_cookie(COOKIE, id, tls.0));
    Ok(Redirect::to("/ui"))
}

#[derive(FromForm)]
pub struct CsrfForm<'r> {
    pub csrf: &'r str,
}

#[post("/logout", data = "<form>")]
pub async fn logout(
    _origin: SameOrigin,
    viewing: Viewing,
    state: &rocket::State<State>,
    cookies: &CookieJar<'_>,
    form: Form<CsrfForm<'_>>,
) -> Result<Redirect, Page> {
    viewing.csrf(Some(form.csrf))?;
    let (sessions, id) = (state.ui.sessions.clone(), viewing.session.clone());
    if let Err(err) = within(STORE_DEADLINE, move || sessions.close(&id)).await {
        return Err(viewing.problem(err.into()));
    }
    cookies.remove(Cookie::build(COOKIE).path("/ui"));
    Ok(Redirect::to("/ui/login"))
}
