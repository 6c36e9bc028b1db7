//! What a UI request carries, checked before a handler runs: the signed-in viewer (its
//! session's token verified again, as the API's request context), that a form comes
//! from this site, whether it came over TLS, and a posted form's fields. A refusal is
//! shown as a page.

use std::collections::HashMap;
use std::sync::Arc;

use rocket::http::Status;
use rocket::request::{FromRequest, Outcome, Request};
use rocket::response::content::RawHtml;

use super::pages::{self, Viewer};
use crate::auth::{Actor, Permission};
use crate::error::Error;
use crate::server::guard::Ctx;
use crate::server::response::ApiError;
use crate::server::sessions::{COOKIE, same_token};
use crate::server::state::{STORE_DEADLINE, State, within};

/// A page and its status.
pub type Page = (Status, RawHtml<String>);

/// `markup` answered with `status`.
pub fn page(status: Status, markup: maud::Markup) -> Page {
    (status, RawHtml(markup.into_string()))
}

/// The page of a refused form (another origin, a missing or stale CSRF token).
pub fn refusal() -> Page {
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

/// A signed-in viewer: the session's token, verified again on this request, as the
/// API's request context (so the UI's checks and audit records are the API's).
pub struct Viewing {
    pub ctx: Ctx,
    pub session: String,
    csrf: String,
}

impl Viewing {
    pub fn viewer(&self) -> Viewer<'_> {
        Viewer {
            name: &self.ctx.actor().name,
            csrf: &self.csrf,
            admin: self.ctx.actor().may(Permission::Admin, None),
            writer: self.ctx.actor().may_some(Permission::Write),
        }
    }

    /// A form's CSRF token must be this session's: otherwise the refusal page.
    pub fn csrf(&self, sent: Option<&str>) -> Result<(), Page> {
        match sent.is_some_and(|sent| same_token(&self.csrf, sent)) {
            true => Ok(()),
            false => Err(refusal()),
        }
    }

    /// An API error as a page.
    pub fn problem(&self, err: ApiError) -> Page {
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
        let Some(id) = req.cookies().get(COOKIE).map(|c| c.value().to_owned()) else {
            return Outcome::Error((Status::Unauthorized, ()));
        };
        match session_actor(state, &id).await {
            Ok(Some((actor, csrf))) => Outcome::Success(Viewing {
                ctx: Ctx::verified(req, actor),
                session: id,
                csrf,
            }),
            Ok(None) => Outcome::Error((Status::Unauthorized, ())),
            // The store cannot be asked now: the session stays for when it can.
            Err(_) => Outcome::Error((Status::ServiceUnavailable, ())),
        }
    }
}

/// The actor and CSRF token of session `id`, read from the store (any server may have
/// opened it), its token checked again. A session whose token was revoked or expired
/// is ended.
async fn session_actor(state: &State, id: &str) -> Result<Option<(Arc<Actor>, String)>, Error> {
    let sessions = state.ui.sessions.clone();
    let verifier = state.verifier.clone();
    let id = id.to_owned();
    within(STORE_DEADLINE, move || {
        let Some(session) = sessions.get(&id)? else {
            return Ok(None);
        };
        match verifier.verify_id(&session.token_id) {
            Ok(actor) => Ok(Some((actor, session.csrf))),
            Err(Error::Unauthorized(_)) => {
                sessions.close(&id)?;
                Ok(None)
            }
            Err(err) => Err(err),
        }
    })
    .await
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

/// Whether the request came over TLS (directly, or to a proxy that says so).
pub struct OverTls(pub bool);

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

/// A submitted block form: `application/x-www-form-urlencoded`, its keys taken as they
/// are (Rocket's own form parsing would nest keys at their dots), at most
/// [`BODY_LIMIT`](crate::server::response::BODY_LIMIT) bytes.
pub struct Fields(pub HashMap<String, String>);

impl std::ops::Deref for Fields {
    type Target = HashMap<String, String>;
    fn deref(&self) -> &Self::Target {
        &self.0
    }
}

#[rocket::async_trait]
impl<'r> rocket::data::FromData<'r> for Fields {
    type Error = ();

    async fn from_data(
        req: &'r rocket::Request<'_>,
        data: rocket::data::Data<'r>,
    ) -> rocket::data::Outcome<'r, Self> {
        use rocket::data::{Outcome, ToByteUnit};
        if req.content_type() != Some(&rocket::http::ContentType::Form) {
            return Outcome::Error((Status::UnsupportedMediaType, ()));
        }
        let limit = crate::server::response::BODY_LIMIT.bytes();
        match data.open(limit).into_bytes().await {
            Ok(bytes) if bytes.is_complete() => Outcome::Success(Fields(
                url::form_urlencoded::parse(&bytes)
                    .map(|(k, v)| (k.into_owned(), v.into_owned()))
                    .collect(),
            )),
            Ok(_) => Outcome::Error((Status::PayloadTooLarge, ())),
            Err(_) => Outcome::Error((Status::BadRequest, ())),
        }
    }
}
