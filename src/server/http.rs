//! Reading a request and logging it: block names in paths, query parameters, JSON
//! bodies with a size limit, and the one JSON log line per request (with the
//! `X-Request-Id` every response carries).

use rocket::data::{self, Data, FromData, ToByteUnit};
use rocket::fairing::{Fairing, Info, Kind};
use rocket::http::{ContentType, Header};
use rocket::request::Request;
use rocket::response::Response;
use serde::de::DeserializeOwned;
use serde_json::json;

use super::guard::{LoggedActor, RequestStart};
use super::response::{ApiError, ApiResult, BODY_LIMIT, ErrorCode};
use crate::error::{Error, ErrorKind};
use crate::name::BlockName;

/// How much of an oversized body is read and discarded before answering 413.
const DRAIN_LIMIT: u64 = 16 * 1024 * 1024;

/// The largest page a listing returns.
pub const MAX_PAGE: i64 = 1000;

/// A block name in a route's path, parsed at the edge. A route takes it as
/// `Result<BlockName, Error>` so a bad name is answered 400 `INVALID_BLOCK_NAME` in the
/// API's error shape rather than forwarded to a 404.
impl<'a> rocket::request::FromParam<'a> for BlockName {
    type Error = Error;
    fn from_param(param: &'a str) -> Result<Self, Error> {
        BlockName::parse(param)
    }
}

/// A block name from a body or a query.
pub fn parse_name(raw: &str) -> ApiResult<BlockName> {
    BlockName::parse(raw).map_err(ApiError::from)
}

/// A boolean query parameter: absent, `false` or `0`; `true`, `1` or empty.
pub fn parse_bool(field: &str, raw: Option<&str>) -> ApiResult<bool> {
    match raw {
        None | Some("false") | Some("0") => Ok(false),
        Some("true") | Some("1") | Some("") => Ok(true),
        Some(_) => Err(ApiError::from(Error::InvalidInput(format!(
            "{field} must be true or false"
        )))),
    }
}

/// A whole-number query parameter.
pub fn parse_number(field: &str, raw: Option<&str>) -> ApiResult<Option<i64>> {
    raw.map(|text| {
        text.parse::<i64>().map_err(|_| {
            ApiError::from(Error::InvalidInput(format!(
                "{field} must be a whole number"
            )))
        })
    })
    .transpose()
}

/// `since`: a duration ago (1h, 7d) or a time, as Unix milliseconds.
pub fn parse_since(raw: Option<&str>) -> ApiResult<Option<i64>> {
    raw.map(|text| crate::time::parse_since(text).map_err(ApiError::from))
        .transpose()
}

/// A page size: 100 by default, at most [`MAX_PAGE`].
pub fn parse_limit(raw: Option<&str>) -> ApiResult<i64> {
    let limit = parse_number("limit", raw)?.unwrap_or(100);
    match (1..=MAX_PAGE).contains(&limit) {
        true => Ok(limit),
        false => Err(ApiError::from(Error::InvalidInput(format!(
            "limit must be between 1 and {MAX_PAGE}"
        )))),
    }
}

/// A JSON body, the data guard of every route that takes one: `application/json` (415
/// otherwise), at most [`BODY_LIMIT`] bytes (413), well-formed and of the expected shape
/// (400). Rocket reads it after the request guards, so a request without a good token
/// is refused before its body is read. A route takes it as `Result<Body<T>, ApiError>`,
/// so a bad body is answered in the API's error shape, in the order the route checks.
pub struct Body<T>(pub T);

#[rocket::async_trait]
impl<'r, T: DeserializeOwned + Send> FromData<'r> for Body<T> {
    type Error = ApiError;

    async fn from_data(req: &'r Request<'_>, data: Data<'r>) -> data::Outcome<'r, Self> {
        match json_body_up_to(req.content_type(), data, BODY_LIMIT).await {
            Ok(body) => data::Outcome::Success(Body(body)),
            Err(err) => data::Outcome::Error((err.status, err)),
        }
    }
}

/// A JSON body that may be left out, read whatever its content type, as Prefect's
/// server reads one (the Prefect UI posts filters as `text/plain`, or no body at all; a
/// lease is asked for with an empty POST): an empty body is the default. Limits and
/// errors as [`Body`]'s.
pub struct LenientBody<T>(pub T);

#[rocket::async_trait]
impl<'r, T: DeserializeOwned + Default + Send> FromData<'r> for LenientBody<T> {
    type Error = ApiError;

    async fn from_data(_req: &'r Request<'_>, data: Data<'r>) -> data::Outcome<'r, Self> {
        match read_json(data, BODY_LIMIT, true).await {
            Ok(Some(body)) => data::Outcome::Success(LenientBody(body)),
            Ok(None) => data::Outcome::Success(LenientBody(T::default())),
            Err(err) => data::Outcome::Error((err.status, err)),
        }
    }
}

/// Reads a JSON body as [`Body`] does, with a limit of its own (an import carries many
/// blocks, and is read only once the caller is known to be an admin).
pub async fn json_body_up_to<T: DeserializeOwned>(
    req_type: Option<&ContentType>,
    data: Data<'_>,
    limit: u64,
) -> ApiResult<T> {
    if !req_type.is_some_and(|t| t.is_json()) {
        return Err(ApiError::new(
            ErrorKind::UnsupportedMediaType,
            "send the body as application/json",
        ));
    }
    let body = read_json(data, limit, false).await?;
    Ok(body.expect("a body is read unless empty ones may be"))
}

/// Reads at most `limit` bytes of JSON; an empty body is `None` when `empty_ok`.
async fn read_json<T: DeserializeOwned>(
    data: Data<'_>,
    limit: u64,
    empty_ok: bool,
) -> ApiResult<Option<T>> {
    use rocket::tokio::io::AsyncReadExt;
    // Read at most the limit; drain (up to DRAIN_LIMIT) and drop the rest of an
    // oversized body, so the client reads our 413 instead of a reset connection.
    let mut stream = data.open(DRAIN_LIMIT.max(limit + 1).bytes());
    let mut bytes = Vec::new();
    let read = (&mut stream).take(limit + 1).read_to_end(&mut bytes).await;
    if read.is_err() {
        return Err(ApiError::new(
            ErrorKind::BadRequest,
            "the body could not be read",
        ));
    }
    if bytes.len() as u64 > limit {
        let _ = rocket::tokio::io::copy(&mut stream, &mut rocket::tokio::io::sink()).await;
        return Err(ApiError::too_large(limit));
    }
    if empty_ok && bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(None);
    }
    let text = String::from_utf8(bytes)
        .map_err(|_| ApiError::new(ErrorKind::BadRequest, "the body is not UTF-8"))?;
    serde_json::from_str(&text).map(Some).map_err(|err| {
        ApiError::new(
            ErrorKind::InvalidInput,
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

/// Adds `X-Request-Id` to every response and logs one JSON line per request: method,
/// path (never the query, which could carry anything), status, latency, actor.
pub struct RequestLog {
    pub enabled: bool,
}

/// Writes one line of the server's log on stderr: `fields` (a JSON object) with the
/// time as `ts`. Request lines, the start-up line and the schedulers' errors all take
/// this shape, so one parser reads the whole log.
pub fn log_line(mut fields: serde_json::Value) {
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
        if let Some(state) = req.rocket().state::<super::state::State>() {
            state.metrics.request(
                req.route().map_or("unmatched", |r| r.uri.path()),
                req.method().as_str(),
                res.status().code,
                start.at.elapsed().as_secs_f64(),
            );
        }
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
