//! Who is asking: the request guards. [`Ctx`] (every route but `/health` and `/ready`)
//! verifies the caller's token and carries the request id and `If-Match`; [`Admin`]
//! is a [`Ctx`] whose token is an admin's, so a route that needs one says so in its
//! signature. Both refuse by themselves (401, 403, or 503 when the token cannot be
//! checked, 429 when the client's failed authentications are used up), so no handler
//! can forget to.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Instant;

use rocket::request::{FromRequest, Outcome, Request};
use zeroize::Zeroizing;

use super::response::{ApiError, ApiResult};
use super::state::{STORE_DEADLINE, State, within};
use crate::auth::{Actor, Permission, Verifier};
use crate::error::{Error, ErrorKind};

/// The authenticated caller, request id and `If-Match`.
pub struct Ctx {
    pub request_id: String,
    pub if_match: Option<String>,
    actor: Arc<Actor>,
}

/// Checks a token: from the verifier's cache, or against the store on the blocking
/// pool.
pub async fn verify_token(state: &State, token: &str) -> Result<Arc<Actor>, Error> {
    verify_with(&state.verifier, token).await
}

/// [`verify_token`] with the verifier alone (for work that outlives the request, such
/// as a websocket's first message).
pub async fn verify_with(verifier: &Arc<Verifier>, token: &str) -> Result<Arc<Actor>, Error> {
    match verifier.verify_cached(token) {
        Some(result) => result,
        None => {
            let verifier = verifier.clone();
            let token = Zeroizing::new(token.to_owned());
            within(STORE_DEADLINE, move || verifier.verify(&token)).await
        }
    }
}

/// Why a guard rejected a request, for the 401/403/503 catchers.
struct GuardFailure(Option<ApiError>);

impl Ctx {
    /// The context of a request whose caller was verified (by its token, or by the web
    /// UI's session, which holds one).
    pub fn verified(req: &Request<'_>, actor: Arc<Actor>) -> Ctx {
        req.local_cache(|| LoggedActor(actor.name.clone()));
        Ctx {
            request_id: req.local_cache(|| RequestStart::new(req)).id.clone(),
            if_match: None,
            actor,
        }
    }

    /// The verified caller.
    pub fn actor(&self) -> &Actor {
        &self.actor
    }

    fn refusal(err: &Error) -> ApiError {
        match err {
            Error::Unauthorized(_) => ApiError::from(Error::Unauthorized(
                "the token is missing, invalid, expired or revoked".into(),
            )),
            other => ApiError::new(
                ErrorKind::StoreUnavailable,
                format!("cannot check the token: {}", other.code()),
            ),
        }
    }

    /// The version `If-Match` names (`3`, `"3"` or `W/"3"`), or 400 if it is not one.
    pub fn expected_version(&self) -> ApiResult<Option<i64>> {
        let Some(raw) = &self.if_match else {
            return Ok(None);
        };
        let text = raw.trim().trim_start_matches("W/").trim_matches('"');
        text.parse::<i64>().map(Some).map_err(|_| {
            ApiError::new(
                ErrorKind::InvalidInput,
                "If-Match must be the block's version, e.g. If-Match: \"3\"",
            )
        })
    }
}

/// The name the log line shows for the caller.
pub struct LoggedActor(pub String);

/// The token from `Authorization: Bearer T` (Prefect's `PREFECT_API_KEY`) or
/// `Authorization: Basic base64(user:T)` (Prefect's `PREFECT_API_AUTH_STRING`), or
/// `Basic base64(T)` (the token alone, typed into the Prefect UI's password page).
fn token_from(req: &Request<'_>) -> Option<String> {
    let value = req.headers().get_one("Authorization")?.trim();
    let (scheme, rest) = value.split_once(' ')?;
    match scheme.to_ascii_lowercase().as_str() {
        "bearer" => Some(rest.trim().to_owned()),
        "basic" => {
            use base64::Engine;
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(rest.trim())
                .ok()?;
            let text = String::from_utf8(bytes).ok()?;
            match text.split_once(':') {
                Some((_, token)) => Some(token.to_owned()),
                None => Some(text),
            }
        }
        _ => None,
    }
}

/// Refuses the request with `refusal`, which the catcher of its status answers.
fn refuse<T>(req: &Request<'_>, refusal: ApiError) -> Outcome<T, ()> {
    let status = refusal.status;
    req.local_cache(|| GuardFailure(Some(refusal)));
    Outcome::Error((status, ()))
}

#[rocket::async_trait]
impl<'r> FromRequest<'r> for Ctx {
    type Error = ();

    async fn from_request(req: &'r Request<'_>) -> Outcome<Self, Self::Error> {
        let state = req.rocket().state::<State>().expect("server state");
        let caller = match token_from(req) {
            None => {
                state.metrics.auth_failed("missing");
                Err(Ctx::refusal(&Error::Unauthorized("no token".into())))
            }
            Some(token) => authenticate(state, state.limiter.client(req), &token).await,
        };
        match caller {
            Ok(actor) => {
                let mut ctx = Ctx::verified(req, actor);
                ctx.if_match = req.headers().get_one("If-Match").map(str::to_owned);
                Outcome::Success(ctx)
            }
            Err(refusal) => refuse(req, refusal),
        }
    }
}

/// Checks the token of a request from `client`. A token this server verified lately
/// passes at once. A client whose failures are used up is refused (429) unless its
/// token is one this server has seen exist (checked again, one store read per token at
/// most per cache period), so a flood of made-up tokens costs no store work and a good
/// token is not slowed by it. Otherwise a token that does not verify uses one up.
pub async fn authenticate(
    state: &State,
    client: Option<IpAddr>,
    token: &str,
) -> Result<Arc<Actor>, ApiError> {
    if let Some(Ok(actor)) = state.verifier.verify_cached(token) {
        return Ok(actor);
    }
    if let Some(seconds) = state.limiter.refused(client) {
        // Only a token whose id this server knows is checked (a stale row read again);
        // a made-up one is refused here, at the cost of a cache lookup.
        if state.verifier.knows(token)
            && let Ok(actor) = verify_token(state, token).await
        {
            return Ok(actor);
        }
        state.metrics.auth_failed("rate_limited");
        return Err(rate_limited(seconds));
    }
    verify_token(state, token).await.map_err(|err| {
        match &err {
            Error::Unauthorized(_) => {
                state.limiter.failed(client);
                state.metrics.auth_failed("invalid");
            }
            _ => state.metrics.auth_failed("unavailable"),
        }
        Ctx::refusal(&err)
    })
}

/// 429: too many failed authentications from this client; try after `seconds`.
pub fn rate_limited(seconds: u64) -> ApiError {
    ApiError {
        retry_after: Some(seconds),
        ..ApiError::new(
            ErrorKind::RateLimited,
            format!("too many failed authentications from this address; try again in {seconds} s"),
        )
    }
}

/// The client's address (the peer's, or what a trusted proxy forwards).
pub struct Client(pub Option<IpAddr>);

#[rocket::async_trait]
impl<'r> FromRequest<'r> for Client {
    type Error = ();

    async fn from_request(req: &'r Request<'_>) -> Outcome<Self, Self::Error> {
        let state = req.rocket().state::<State>().expect("server state");
        Outcome::Success(Client(state.limiter.client(req)))
    }
}

/// A caller whose token is an admin's (verified as [`Ctx`] is). A refusal here is not
/// audited: routes whose refusals are on record check with `policy::authorize` instead.
pub struct Admin;

#[rocket::async_trait]
impl<'r> FromRequest<'r> for Admin {
    type Error = ();

    async fn from_request(req: &'r Request<'_>) -> Outcome<Self, Self::Error> {
        let ctx = match Ctx::from_request(req).await {
            Outcome::Success(ctx) => ctx,
            Outcome::Error(failed) => return Outcome::Error(failed),
            Outcome::Forward(status) => return Outcome::Forward(status),
        };
        match ctx.actor().may(Permission::Admin, None) {
            true => Outcome::Success(Admin),
            false => refuse(req, forbidden(ctx.actor(), "this route (needs admin)")),
        }
    }
}

/// 403: "token X does not allow {what}".
pub fn forbidden(actor: &Actor, what: &str) -> ApiError {
    ApiError::from(Error::Forbidden(format!(
        "token {:?} does not allow {what}",
        actor.name
    )))
}

/// The answer of the 401, 403 and 503 catchers: why the guard refused, or a generic
/// error.
fn guard_failure(req: &Request<'_>, kind: ErrorKind, fallback: &str) -> ApiError {
    req.local_cache(|| GuardFailure(None))
        .0
        .clone()
        .unwrap_or_else(|| ApiError::new(kind, fallback))
}

#[rocket::catch(401)]
pub fn unauthorized(req: &Request<'_>) -> ApiError {
    guard_failure(
        req,
        ErrorKind::Unauthorized,
        "the token is missing, invalid, expired or revoked",
    )
}

#[rocket::catch(403)]
pub fn refused(req: &Request<'_>) -> ApiError {
    guard_failure(req, ErrorKind::Forbidden, "the token does not allow this")
}

#[rocket::catch(429)]
pub fn limited(req: &Request<'_>) -> ApiError {
    guard_failure(
        req,
        ErrorKind::RateLimited,
        "too many failed authentications",
    )
}

#[rocket::catch(503)]
pub fn unavailable(req: &Request<'_>) -> ApiError {
    guard_failure(req, ErrorKind::StoreUnavailable, "the store is unavailable")
}

/// When a request started and its id.
pub struct RequestStart {
    pub at: Instant,
    pub id: String,
}

impl RequestStart {
    pub fn new(req: &Request<'_>) -> Self {
        let id = req
            .headers()
            .get_one("X-Request-Id")
            .filter(|v| {
                !v.is_empty()
                    && v.len() <= 64
                    && v.bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
            })
            .map(str::to_owned)
            .unwrap_or_else(|| uuid::Uuid::new_v4().simple().to_string());
        RequestStart {
            at: Instant::now(),
            id,
        }
    }
}
