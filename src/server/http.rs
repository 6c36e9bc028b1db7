//! HTTP plumbing shared by every route: JSON errors with stable codes, JSON bodies with
//! a size limit, the request context (request id, caller, `If-Match`), the per-request
//! log line, and catchers that keep even Rocket's own errors in the API's shape.

use std::sync::Arc;
use std::time::Instant;

use rocket::data::{Data, ToByteUnit};
use rocket::fairing::{Fairing, Info, Kind};
use rocket::http::{ContentType, Header, Status};
use rocket::request::{FromRequest, Outcome, Request};
use rocket::response::{self, Responder, Response};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::json;
use zeroize::Zeroizing;

use super::State;
use crate::auth::Actor;
use crate::error::{Error, ProvisionCode};
use crate::name::BlockName;
use crate::wire::{ErrorBody, ErrorDetail};

/// Largest request body accepted, in bytes.
pub const BODY_LIMIT: u64 = 256 * 1024;

/// How much of an oversized body is read and discarded before answering 413.
const DRAIN_LIMIT: u64 = 16 * 1024 * 1024;

/// A block name in a route's path, parsed at the edge. A route takes it as
/// `Result<BlockName, Error>` so a bad name is answered 400 `INVALID_BLOCK_NAME` in the
/// API's error shape rather than forwarded to a 404.
impl<'a> rocket::request::FromParam<'a> for BlockName {
    type Error = Error;
    fn from_param(param: &'a str) -> Result<Self, Error> {
        BlockName::parse(param)
    }
}

/// An error as the API returns it: `{"error": {"code", "message"}}` and a 4xx/5xx status.
#[derive(Clone, Debug)]
pub struct ApiError {
    pub status: Status,
    pub code: &'static str,
    pub message: String,
    /// What went wrong inside (a database error, the store's address), for the
    /// server's log line only; never in a response.
    pub detail: Option<String>,
}

impl ApiError {
    pub fn new(status: Status, code: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            code,
            message: message.into(),
            detail: None,
        }
    }
}

/// The database side's codes: what the caller can fix is 4xx; a full disk 507; a step
/// the database server refused for another reason 422, with the step named.
fn provision_status(code: ProvisionCode) -> Status {
    match code {
        ProvisionCode::InvalidDatabaseName | ProvisionCode::InvalidRoleName => Status::BadRequest,
        ProvisionCode::DatabaseAlreadyExists | ProvisionCode::RoleAlreadyExists => Status::Conflict,
        ProvisionCode::DatabaseNotFound | ProvisionCode::NotFound => Status::NotFound,
        ProvisionCode::DiskSpaceFull => Status::InsufficientStorage,
        ProvisionCode::TemplateNotFound
        | ProvisionCode::InsufficientPermissions
        | ProvisionCode::StepFailed
        | ProvisionCode::SchemaFailed
        | ProvisionCode::NotAnAdminBlock => Status::UnprocessableEntity,
    }
}

impl From<Error> for ApiError {
    fn from(err: Error) -> Self {
        let code = err.code();
        let status = match &err {
            Error::InvalidBlockName { .. } | Error::InvalidInput(_) => Status::BadRequest,
            Error::InvalidBlockData(_)
            | Error::InvalidBlockType(_)
            | Error::UnknownBlockType(_) => Status::UnprocessableEntity,
            Error::BlockNotFound(_) => Status::NotFound,
            Error::BlockAlreadyExists(_) | Error::BlockTypeAlreadyExists(_) => Status::Conflict,
            Error::VersionConflict { .. } => Status::PreconditionFailed,
            Error::Unauthorized(_) => Status::Unauthorized,
            Error::Forbidden(_) => Status::Forbidden,
            Error::StoreUnavailable(_) | Error::AuditUnavailable(_) => Status::ServiceUnavailable,
            Error::Provision { code, .. } => provision_status(*code),
            Error::Connect { .. }
            | Error::RequirementNotMet(_)
            | Error::NotAConnection { .. }
            | Error::WrongExportKey(_) => Status::UnprocessableEntity,
            // Every other variant by name, no wildcard: a new one must be placed here
            // (a wildcard is how `WRONG_EXPORT_KEY` once answered 500).
            Error::InvalidDatabaseUrl(_)
            | Error::MasterKeyMissing(_)
            | Error::InvalidMasterKey(_)
            | Error::WrongMasterKey { .. }
            | Error::DecryptionFailed(_)
            | Error::InsecureKeyFile(_)
            | Error::Keyring(_)
            | Error::StoreNotMigrated(_)
            | Error::Store(_)
            | Error::Config(_)
            | Error::AddressUnavailable(_)
            | Error::UnsupportedDriver(_)
            | Error::HttpStatus { .. }
            | Error::Remote { .. }
            | Error::Exec { .. }
            | Error::Io { .. } => Status::InternalServerError,
        };
        // Internal details (database errors, the store's address) stay in the server's
        // log line; the response says only what failed.
        let (message, detail) = match status {
            Status::InternalServerError => {
                (format!("internal error ({code})"), Some(err.to_string()))
            }
            Status::ServiceUnavailable => (
                match &err {
                    Error::AuditUnavailable(_) => {
                        "the audit log cannot be written, so nothing was done or shown; \
                         details are in the server's log"
                    }
                    _ => "the store is unavailable; details are in the server's log",
                }
                .to_owned(),
                Some(err.to_string()),
            ),
            _ => (err.to_string(), None),
        };
        ApiError {
            status,
            code,
            message,
            detail,
        }
    }
}

impl<'r> Responder<'r, 'static> for ApiError {
    fn respond_to(self, req: &'r Request<'_>) -> response::Result<'static> {
        req.local_cache(|| ErrorCode(Some(self.code), self.detail.clone()));
        let body = ErrorBody {
            error: ErrorDetail {
                code: self.code.to_owned(),
                message: self.message,
            },
        };
        let mut res = Json::new(self.status, &body).respond_to(req)?;
        if self.status == Status::Unauthorized {
            res.set_header(Header::new(
                "WWW-Authenticate",
                "Bearer realm=\"blockyard\"",
            ));
        }
        Ok(res)
    }
}

/// The error code of a failed request, for the log line.
struct ErrorCode(Option<&'static str>, Option<String>);

pub type ApiResult<T> = Result<T, ApiError>;

/// A JSON response with a status and extra headers.
pub struct Json {
    status: Status,
    body: RenderedJson,
    headers: Vec<Header<'static>>,
}

/// JSON text rendered once and sent many times (a kept block's view). It may hold
/// secrets, so the text is wiped when the last copy is dropped.
#[derive(Clone)]
pub struct RenderedJson(Arc<Zeroizing<String>>);

impl RenderedJson {
    pub fn new<T: Serialize + ?Sized>(value: &T) -> Self {
        RenderedJson(Arc::new(Zeroizing::new(
            serde_json::to_string(value).unwrap_or_else(|_| "null".into()),
        )))
    }
}

impl RenderedJson {
    /// JSON text that is already rendered (a document compiled in).
    pub fn raw(text: &str) -> Self {
        RenderedJson(Arc::new(Zeroizing::new(text.to_owned())))
    }
}

impl AsRef<[u8]> for RenderedJson {
    fn as_ref(&self) -> &[u8] {
        self.0.as_bytes()
    }
}

impl Json {
    /// `body` (a [`crate::wire`] shape) rendered as the answer.
    pub fn new<T: Serialize + ?Sized>(status: Status, body: &T) -> Self {
        Json::rendered(status, RenderedJson::new(body))
    }

    pub fn ok<T: Serialize + ?Sized>(body: &T) -> Self {
        Json::new(Status::Ok, body)
    }

    pub fn rendered(status: Status, body: RenderedJson) -> Self {
        Json {
            status,
            body,
            headers: Vec::new(),
        }
    }

    pub fn header(mut self, name: &'static str, value: String) -> Self {
        self.headers.push(Header::new(name, value));
        self
    }

    /// The `ETag` of a block at `version` (what `If-Match` sends back).
    pub fn etag(self, version: i64) -> Self {
        self.header("ETag", format!("\"{version}\""))
    }
}

impl<'r> Responder<'r, 'static> for Json {
    fn respond_to(self, _: &'r Request<'_>) -> response::Result<'static> {
        let mut res = Response::build();
        res.status(self.status).header(ContentType::JSON);
        res.sized_body(self.body.0.len(), std::io::Cursor::new(self.body));
        for h in self.headers {
            res.header(h);
        }
        Ok(res.finalize())
    }
}

/// Reads a JSON body: `application/json` (415 otherwise), at most [`BODY_LIMIT`] bytes
/// (413), well-formed and of the expected shape (400).
pub async fn json_body<T: DeserializeOwned>(
    req_type: Option<&ContentType>,
    data: Data<'_>,
) -> ApiResult<T> {
    json_body_up_to(req_type, data, BODY_LIMIT).await
}

/// [`json_body`] with a limit of its own (an import carries many blocks).
pub async fn json_body_up_to<T: DeserializeOwned>(
    req_type: Option<&ContentType>,
    data: Data<'_>,
    limit: u64,
) -> ApiResult<T> {
    if !req_type.is_some_and(|t| t.is_json()) {
        return Err(ApiError::new(
            Status::UnsupportedMediaType,
            "UNSUPPORTED_MEDIA_TYPE",
            "send the body as application/json",
        ));
    }
    use rocket::tokio::io::AsyncReadExt;
    // Read at most the limit; drain (up to DRAIN_LIMIT) and drop the rest of an
    // oversized body, so the client reads our 413 instead of a reset connection.
    let mut stream = data.open(DRAIN_LIMIT.max(limit + 1).bytes());
    let mut bytes = Vec::new();
    let read = (&mut stream).take(limit + 1).read_to_end(&mut bytes).await;
    if read.is_err() {
        return Err(ApiError::new(
            Status::BadRequest,
            "BAD_REQUEST",
            "the body could not be read",
        ));
    }
    if bytes.len() as u64 > limit {
        let _ = rocket::tokio::io::copy(&mut stream, &mut rocket::tokio::io::sink()).await;
        return Err(too_large(limit));
    }
    let text = String::from_utf8(bytes)
        .map_err(|_| ApiError::new(Status::BadRequest, "BAD_REQUEST", "the body is not UTF-8"))?;
    serde_json::from_str(&text).map_err(|err| {
        ApiError::new(
            Status::BadRequest,
            "INVALID_INPUT",
            format!(
                "the body is not valid JSON of the expected shape (line {}, column {}: {})",
                err.line(),
                err.column(),
                shape_message(&err)
            ),
        )
    })
}

/// serde's message without any quoted input value.
fn shape_message(err: &serde_json::Error) -> String {
    let text = err.to_string();
    let text = text.split(" at line ").next().unwrap_or_default();
    match text.find("invalid type") {
        Some(_) => text.split(':').next().unwrap_or_default().to_owned(),
        None => text.to_owned(),
    }
}

fn too_large(limit: u64) -> ApiError {
    ApiError::new(
        Status::PayloadTooLarge,
        "PAYLOAD_TOO_LARGE",
        format!("the body is larger than {} KiB", limit / 1024),
    )
}

/// The request guard of every route but `/health` and `/ready`: the authenticated
/// caller, request id and `If-Match`. It rejects by itself (401 for a missing, invalid,
/// expired or revoked token, 503 when the token cannot be checked), so no handler can
/// forget to authenticate.
pub struct Ctx {
    pub request_id: String,
    pub if_match: Option<String>,
    actor: Arc<Actor>,
}

/// Checks a token: from the verifier's cache, or against the store on the blocking
/// pool.
pub(super) async fn verify_token(state: &State, token: &str) -> Result<Arc<Actor>, Error> {
    match state.verifier.verify_cached(token) {
        Some(result) => result,
        None => {
            let verifier = state.verifier.clone();
            let token = Zeroizing::new(token.to_owned());
            super::within(super::STORE_DEADLINE, move || verifier.verify(&token)).await
        }
    }
}

/// Why [`Ctx`] rejected a request, for the 401/503 catchers.
struct GuardFailure(Option<ApiError>);

impl Ctx {
    /// The context of a request whose caller was verified (by its token, or by the web
    /// UI's session, which holds one).
    pub(super) fn verified(req: &Request<'_>, actor: Arc<Actor>) -> Ctx {
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
                Status::ServiceUnavailable,
                "STORE_UNAVAILABLE",
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
                Status::BadRequest,
                "INVALID_INPUT",
                "If-Match must be the block's version, e.g. If-Match: \"3\"",
            )
        })
    }
}

/// The name the log line shows for the caller.
struct LoggedActor(String);

/// The token from `Authorization: Bearer T` (Prefect's `PREFECT_API_KEY`) or
/// `Authorization: Basic base64(user:T)` (Prefect's `PREFECT_API_AUTH_STRING`).
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
            text.split_once(':').map(|(_, token)| token.to_owned())
        }
        _ => None,
    }
}

#[rocket::async_trait]
impl<'r> FromRequest<'r> for Ctx {
    type Error = ();

    async fn from_request(req: &'r Request<'_>) -> Outcome<Self, Self::Error> {
        let state = req.rocket().state::<State>().expect("server state");
        let caller = match token_from(req) {
            None => Err(Error::Unauthorized("no token".into())),
            Some(token) => verify_token(state, &token).await,
        };
        match caller {
            Ok(actor) => {
                let mut ctx = Ctx::verified(req, actor);
                ctx.if_match = req.headers().get_one("If-Match").map(str::to_owned);
                Outcome::Success(ctx)
            }
            Err(err) => {
                let refusal = Ctx::refusal(&err);
                let status = refusal.status;
                req.local_cache(|| GuardFailure(Some(refusal)));
                Outcome::Error((status, ()))
            }
        }
    }
}

/// The answer of the 401 and 503 catchers: why the guard refused, or a generic error.
fn guard_failure(req: &Request<'_>, status: Status, fallback: (&'static str, &str)) -> ApiError {
    req.local_cache(|| GuardFailure(None))
        .0
        .clone()
        .unwrap_or_else(|| caught(status, fallback.0, fallback.1))
}

#[rocket::catch(401)]
pub fn unauthorized(req: &Request<'_>) -> ApiError {
    guard_failure(
        req,
        Status::Unauthorized,
        (
            "UNAUTHORIZED",
            "the token is missing, invalid, expired or revoked",
        ),
    )
}

#[rocket::catch(503)]
pub fn unavailable(req: &Request<'_>) -> ApiError {
    guard_failure(
        req,
        Status::ServiceUnavailable,
        ("STORE_UNAVAILABLE", "the store is unavailable"),
    )
}

/// When a request started and its id.
struct RequestStart {
    at: Instant,
    id: String,
}

impl RequestStart {
    fn new(req: &Request<'_>) -> Self {
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

/// Adds `X-Request-Id` to every response and logs one JSON line per request: method,
/// path (never the query, which could carry anything), status, latency, actor.
pub struct RequestLog {
    pub enabled: bool,
}

/// Writes one line of the server's log on stderr: `fields` (a JSON object) with the
/// time as `ts`. Request lines, the start-up line and the schedulers' errors all take
/// this shape, so one parser reads the whole log.
pub(super) fn log_line(mut fields: serde_json::Value) {
    if let Some(object) = fields.as_object_mut() {
        let now = crate::time::rfc3339(crate::time::now_millis());
        object.insert("ts".into(), now.into());
    }
    eprintln!("{fields}");
}

#[rocket::async_trait]
impl Fairing for RequestLog {
    fn info(&self) -> Info {
        Info {
            name: "request log",
            kind: Kind::Request | Kind::Response,
        }
    }

    async fn on_request(&self, req: &mut Request<'_>, _: &mut Data<'_>) {
        req.local_cache(|| RequestStart::new(req));
    }

    async fn on_response<'r>(&self, req: &'r Request<'_>, res: &mut Response<'r>) {
        let start = req.local_cache(|| RequestStart::new(req));
        res.set_header(Header::new("X-Request-Id", start.id.clone()));
        if !self.enabled {
            return;
        }
        let actor = req.local_cache(|| LoggedActor("-".into()));
        let code = req.local_cache(|| ErrorCode(None, None));
        log_line(json!({
            "request_id": start.id,
            "method": req.method().as_str(),
            // Decoded, so grepping the log for `crdb-sage` finds `/blocks/crdb%2Dsage`.
            "path": req.uri().path().percent_decode_lossy(),
            "status": res.status().code,
            "latency_ms": (start.at.elapsed().as_secs_f64() * 1e6).round() / 1e3,
            "actor": actor.0,
            "error": code.0,
            "detail": code.1,
        }));
    }
}

fn caught(status: Status, code: &'static str, message: &str) -> ApiError {
    ApiError::new(status, code, message)
}

#[rocket::catch(400)]
pub fn bad_request() -> ApiError {
    caught(
        Status::BadRequest,
        "BAD_REQUEST",
        "the request is malformed",
    )
}

#[rocket::catch(404)]
pub fn not_found() -> ApiError {
    caught(
        Status::NotFound,
        "NOT_FOUND",
        "no such route; see /api/v1/openapi.json",
    )
}

#[rocket::catch(413)]
pub fn payload_too_large() -> ApiError {
    too_large(BODY_LIMIT)
}

#[rocket::catch(422)]
pub fn unprocessable() -> ApiError {
    caught(
        Status::BadRequest,
        "INVALID_INPUT",
        "a parameter of the request is invalid",
    )
}

#[rocket::catch(default)]
pub fn default_catcher(status: Status, _: &Request<'_>) -> ApiError {
    match status.code {
        500..=599 => caught(status, "INTERNAL_ERROR", "internal error"),
        _ => caught(status, "BAD_REQUEST", status.reason_lossy()),
    }
}
