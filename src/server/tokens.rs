//! The `/api/v1/tokens` routes: list, create and revoke API tokens, as `blockyard token`
//! does on a store. Admin only; creating and revoking are on record, each in its own
//! change's transaction.

use rocket::http::Status;
use rocket::{delete, get, post};

use super::guard::{Admin, Ctx};
use super::http::Body;
use super::policy::Change;
use super::response::{ApiError, ApiResult, Json};
use super::state::{State, blocking};
use crate::error::Error;
use crate::wire::{CreateToken, CreatedToken, RevokedToken, TokenIdentity, Tokens};

/// What a refusal says the token does not allow.
const TOKENS: &str = "managing tokens (needs admin)";

/// The token routes, mounted under `/api/v1`.
pub fn routes() -> Vec<rocket::Route> {
    rocket::routes![list_tokens, create_token, revoke_token, own_token]
}

/// `GET /token`: which token the caller holds and what it allows (any valid token).
#[get("/token")]
pub async fn own_token(ctx: Ctx) -> ApiResult<Json> {
    let actor = ctx.actor();
    Ok(Json::ok(&TokenIdentity {
        name: actor.name.clone(),
        scopes: actor.scopes.iter().map(ToString::to_string).collect(),
    }))
}

#[get("/tokens")]
pub async fn list_tokens(_admin: Admin, state: &rocket::State<State>) -> ApiResult<Json> {
    let registry = state.registry.clone();
    let tokens = blocking(move || registry.list_tokens()).await?;
    Ok(Json::ok(&Tokens { tokens }))
}

/// `POST /tokens`: the token is in the answer, once; only its hash is kept.
#[post("/tokens", data = "<body>")]
pub async fn create_token(
    ctx: Ctx,
    state: &rocket::State<State>,
    body: Result<Body<CreateToken>, ApiError>,
) -> ApiResult<Json> {
    let Body(body) = body?;
    let expires_in = body
        .expires_in
        .as_deref()
        .map(humantime::parse_duration)
        .transpose()
        .map_err(|err| Error::InvalidInput(format!("expires_in: {err} (say 90d or 12h)")))?;
    let label = format!("token:{}", body.name);
    let created = Change::admin("create-token", &label, TOKENS)
        .run(state, &ctx, move |registry| {
            registry.create_token(&body.name, &body.scopes, expires_in)
        })
        .await?;
    let answer = CreatedToken {
        info: created.info.clone(),
        token: created.secret.clone(),
    };
    Ok(Json::new(Status::Created, &answer))
}

/// `DELETE /tokens/<name or id>`: refused from then on by this server at once (its
/// cache of token checks is emptied), by others within their cache's lifetime.
#[delete("/tokens/<name>")]
pub async fn revoke_token(ctx: Ctx, state: &rocket::State<State>, name: &str) -> ApiResult<Json> {
    let label = format!("token:{name}");
    let wanted = name.to_owned();
    Change::admin("revoke-token", &label, TOKENS)
        .run(state, &ctx, move |registry| registry.revoke_token(&wanted))
        .await?;
    state.verifier.forget_all();
    Ok(Json::ok(&RevokedToken {
        revoked: name.to_owned(),
    }))
}
