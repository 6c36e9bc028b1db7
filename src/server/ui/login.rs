//! Signing in and out of the UI: a token typed once opens a session (only a random id
//! in an HttpOnly, SameSite=Strict cookie); sign-out ends it.

use rocket::form::{Form, FromForm};
use rocket::http::{Cookie, CookieJar, SameSite, Status};
use rocket::response::Redirect;
use rocket::{get, post};

use super::pages;
use super::viewing::{OverTls, Page, SameOrigin, Viewing, page, refusal};
use crate::server::guard::verify_token;
use crate::server::sessions::{COOKIE, LOGIN_COOKIE, random_token, same_token};
use crate::server::state::State;

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
    form: Form<LoginForm<'_>>,
) -> Result<Redirect, Page> {
    let expected = cookies.get(LOGIN_COOKIE).map(|c| c.value().to_owned());
    if !expected.is_some_and(|e| same_token(&e, form.csrf)) {
        return Err(refusal());
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
pub struct CsrfForm<'r> {
    pub csrf: &'r str,
}

#[post("/logout", data = "<form>")]
pub fn logout(
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
