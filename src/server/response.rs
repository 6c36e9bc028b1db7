//! What the API answers: errors in one JSON shape with a stable code and the status
//! [`ErrorKind`]'s table gives it, JSON bodies rendered once, and the catchers that keep
//! even Rocket's own errors in that shape.

use std::sync::Arc;

use rocket::http::{ContentType, Header, Status};
use rocket::request::Request;
use rocket::response::{self, Responder, Response};
use serde::Serialize;
use zeroize::Zeroizing;

use crate::error::{Error, ErrorKind};
use crate::wire::{ErrorBody, ErrorDetail};

/// Largest request body accepted, in bytes.
pub const BODY_LIMIT: u64 = 256 * 1024;

/// An error as the API returns it: `{"error": {"code", "message"}}` and a 4xx/5xx status.
#[derive(Clone, Debug)]
pub struct ApiError {
    pub status: Status,
    pub kind: ErrorKind,
    pub message: String,
    /// What went wrong inside (a database error, the store's address), for the
    /// server's log line only; never in a response.
    pub detail: Option<String>,
    /// Seconds a refused client should wait (`Retry-After`), for a 429.
    pub retry_after: Option<u64>,
}

impl ApiError {
    /// An error of `kind`, with the status its row of the table gives.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        ApiError {
            status: status_of(kind),
            kind,
            message: message.into(),
            detail: None,
            retry_after: None,
        }
    }

    /// The same error answered with another status (a catcher's, `/ready`'s 503).
    pub fn with_status(self, status: Status) -> Self {
        ApiError { status, ..self }
    }

    /// Its stable code.
    pub fn code(&self) -> &'static str {
        self.kind.code()
    }

    /// 413 for a body over `limit` bytes.
    pub fn too_large(limit: u64) -> Self {
        ApiError::new(
            ErrorKind::PayloadTooLarge,
            format!("the body is larger than {} KiB", limit / 1024),
        )
    }
}

fn status_of(kind: ErrorKind) -> Status {
    Status::from_code(kind.http_status()).unwrap_or(Status::InternalServerError)
}

impl From<Error> for ApiError {
    fn from(err: Error) -> Self {
        let kind = err.kind();
        let status = status_of(kind);
        // Internal details (database errors, the store's address) stay in the server's
        // log line; the response says only what failed.
        let (message, detail) = match status {
            Status::InternalServerError => (
                format!("internal error ({})", kind.code()),
                Some(err.to_string()),
            ),
            Status::ServiceUnavailable => (
                match kind {
                    ErrorKind::AuditUnavailable => {
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
            kind,
            message,
            detail,
            retry_after: None,
        }
    }
}

impl<'r> Responder<'r, 'static> for ApiError {
    fn respond_to(self, req: &'r Request<'_>) -> response::Result<'static> {
        req.local_cache(|| ErrorCode(Some(self.code()), self.detail.clone()));
        let prefect = req.uri().path().as_str().starts_with("/prefect/api/");
        let body = ErrorBody {
            detail: prefect.then(|| format!("{}: {}", self.code(), self.message)),
            error: ErrorDetail {
                code: self.code().to_owned(),
                message: self.message,
            },
        };
        let mut res = Json::new(self.status, &body).respond_to(req)?;
        if let Some(seconds) = self.retry_after {
            res.set_header(Header::new("Retry-After", seconds.to_string()));
        }
        if self.status == Status::Unauthorized {
            res.set_header(Header::new(
                "WWW-Authenticate",
                "Bearer realm=\"blockyard\"",
            ));
        }
        Ok(res)
    }
}

/// The error code and inside detail of a failed request, for its log line.
pub struct ErrorCode(pub Option<&'static str>, pub Option<String>);

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

#[rocket::catch(400)]
pub fn bad_request() -> ApiError {
    ApiError::new(ErrorKind::BadRequest, "the request is malformed")
}

#[rocket::catch(404)]
pub fn not_found() -> ApiError {
    ApiError::new(
        ErrorKind::NotFound,
        "no such route; see /api/v1/openapi.json",
    )
}

#[rocket::catch(413)]
pub fn payload_too_large() -> ApiError {
    ApiError::too_large(BODY_LIMIT)
}

#[rocket::catch(422)]
pub fn unprocessable() -> ApiError {
    ApiError::new(
        ErrorKind::InvalidInput,
        "a parameter of the request is invalid",
    )
}

#[rocket::catch(default)]
pub fn default_catcher(status: Status, _: &Request<'_>) -> ApiError {
    match status.code {
        500..=599 => ApiError::new(ErrorKind::Internal, "internal error"),
        _ => ApiError::new(ErrorKind::BadRequest, status.reason_lossy()),
    }
    .with_status(status)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every code a server may send is listed in the OpenAPI document's error shape, and
    /// nothing else is.
    #[test]
    fn every_sent_code_is_in_openapi_json() {
        let doc: serde_json::Value =
            serde_json::from_str(include_str!("openapi.json")).expect("openapi.json");
        let listed = &doc["components"]["schemas"]["Error"]["properties"]["error"]["properties"]["code"]
            ["enum"];
        let listed: Vec<&str> = listed
            .as_array()
            .expect("the Error schema lists its codes")
            .iter()
            .filter_map(|c| c.as_str())
            .collect();
        let sent: Vec<&str> = ErrorKind::ALL
            .iter()
            .filter(|k| k.is_sent())
            .map(|k| k.code())
            .collect();
        assert_eq!(listed, sent);
    }

    #[test]
    fn every_error_is_answered_with_its_tables_status() {
        for kind in ErrorKind::ALL {
            let answered = ApiError::new(*kind, "x");
            assert_eq!(answered.status.code, kind.http_status(), "{kind:?}");
        }
        let err = ApiError::from(Error::WrongExportKey("no".into()));
        assert_eq!(err.status, Status::UnprocessableEntity);
    }
}
