//! The `/api/v1/tokens` routes: list, create and revoke API tokens, as `blockyard token`
//! does on a store. Admin only; creating and revoking are on record, each in its own
//! change's transaction. The web UI's token forms call the same `create` and `revoke`.

use rocket::http::Status;
use rocket::{delete, get, post};

use super::guard::{Admin, Ctx};
use super::http::Body;
use super::policy::Change;
use super::response::{ApiError, ApiResult, Json};
use super::state::{State, blocking};
use crate::auth::NewToken;
use crate::error::Error;
use crate::wire::{CreateToken, CreatedToken, RevokedToken, TokenIdentity, Tokens};

/// What a refusal says the token does not allow.
pub const TOKENS: &str = "managing tokens (needs admin)";

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
    let created = create(state, &ctx, body.name, body.scopes, expires_in).await?;
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
    let revoked = revoke(state, &ctx, name).await?;
    Ok(Json::ok(&RevokedToken { revoked }))
}

/// Creates a token, on record as `create-token` in the same transaction (with the audit
/// log down, nothing is done).
pub async fn create(
    state: &State,
    ctx: &Ctx,
    name: String,
    scopes: Vec<String>,
    expires_in: Option<std::time::Duration>,
) -> ApiResult<NewToken> {
    let label = format!("token:{name}");
    Change::admin("create-token", &label, TOKENS)
        .run(state, ctx, move |registry| {
            registry.create_token(&name, &scopes, expires_in)
        })
        .await
}

/// Revokes a token by name or id, on record by its name in the revocation's own
/// transaction; this server's cache of token checks is emptied, so it refuses the token
/// at once. Answers the token's name.
pub async fn revoke(state: &State, ctx: &Ctx, name_or_id: &str) -> ApiResult<String> {
    let registry = state.registry.clone();
    let lookup = name_or_id.to_owned();
    let name = blocking(move || {
        let tokens = registry.list_tokens()?;
        Ok(tokens.into_iter().find(|t| t.id == lookup).map(|t| t.name))
    })
    .await?
    .unwrap_or_else(|| name_or_id.to_owned());
    let label = format!("token:{name}");
    let wanted = name_or_id.to_owned();
    Change::admin("revoke-token", &label, TOKENS)
        .run(state, ctx, move |registry| registry.revoke_token(&wanted))
        .await?;
    state.verifier.forget_all();
    Ok(name)
}
