//! The pass-through to a Prefect server (`--prefect-upstream`): a request under
//! `/prefect/api` that no route of ours answers goes to the upstream as it came (method,
//! path, query, body streamed, headers but the caller's credentials) once the caller's
//! token is checked, and the upstream's answer comes back as it was sent, status and
//! headers included. Block routes are never passed on: Blockyard holds every block.
//! Without an upstream, such a request is answered 404 naming the setting.

use std::sync::Arc;
use std::time::Duration;

use rocket::Request;
use rocket::data::{Data, ToByteUnit};
use rocket::http::{Method, Status};
use rocket::response::Response;
use rocket::route::{Handler, Outcome, Route};
use zeroize::Zeroizing;

use super::guard::Ctx;
use super::response::ApiError;
use super::state::State;
use super::upstream_ws::Relay;
use crate::error::ErrorKind;

/// Paths under `/prefect/api` that hold blocks: never passed on.
const BLOCK_ROUTES: &[&str] = &[
    "block_types",
    "block_schemas",
    "block_documents",
    "block_capabilities",
];

/// Request headers not passed on: the caller's credentials, and what belongs to one
/// connection (hop-by-hop) or is set again for the next one. A declared length stays:
/// the body is passed on at that length (or the request broken off).
const DROPPED_REQUEST: &[&str] = &[
    "authorization",
    "cookie",
    "host",
    "connection",
    "keep-alive",
    "proxy-authorization",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
];

/// Response headers not passed back: hop-by-hop, and the length (the body is streamed).
/// The upstream's CORS headers (`access-control-*`) are not passed back either: which
/// pages may call `/prefect/api` is Blockyard's to say (`prefect_cors`).
const DROPPED_RESPONSE: &[&str] = &[
    "connection",
    "keep-alive",
    "transfer-encoding",
    "trailer",
    "upgrade",
    "content-length",
    "server",
];

/// The largest request body passed on.
const BODY_LIMIT_MIB: u64 = 64;

/// How long the upstream may take to start answering.
const UPSTREAM_TIMEOUT: Duration = Duration::from_secs(60);

/// Where unowned Prefect requests go, and as whom.
#[derive(Clone)]
pub struct Upstream {
    base: url::Url,
    auth: Option<Zeroizing<String>>,
    client: reqwest::Client,
}

impl Upstream {
    /// `base` is the upstream's API URL (`http://127.0.0.1:4200/api`); `auth` its Basic
    /// credentials (`user:password`), if it wants them.
    pub fn new(base: url::Url, auth: Option<String>) -> crate::error::Result<Upstream> {
        let client = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(5))
            .read_timeout(UPSTREAM_TIMEOUT)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|err| crate::error::Error::Internal(format!("the HTTP client: {err}")))?;
        Ok(Upstream {
            base,
            auth: auth.map(Zeroizing::new),
            client,
        })
    }

    /// The upstream's websocket URL for `path` (`ws://`, or `wss://` for `https://`).
    fn ws_url(&self, path: &str, query: Option<&str>) -> url::Url {
        let mut url = self.url(path, query);
        let scheme = if url.scheme() == "https" { "wss" } else { "ws" };
        let _ = url.set_scheme(scheme);
        url
    }

    /// The upstream URL for `path` (below `/prefect/api`) and the caller's query.
    fn url(&self, path: &str, query: Option<&str>) -> url::Url {
        let mut url = self.base.clone();
        let joined = format!("{}/{}", url.path().trim_end_matches('/'), path);
        url.set_path(&joined);
        url.set_query(query);
        url
    }
}

impl std::fmt::Debug for Upstream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Upstream")
            .field("base", &self.base.as_str())
            .field("auth", &self.auth.as_ref().map(|_| "********"))
            .finish()
    }
}

/// The catch-all handler: passes a request on, or says why it is not.
#[derive(Clone, Debug)]
pub struct PassThrough(Option<Arc<Upstream>>);

/// The catch-all routes under `/prefect/api`, ranked below every route of ours.
pub fn routes(upstream: Option<Upstream>) -> Vec<Route> {
    let handler = PassThrough(upstream.map(Arc::new));
    [
        Method::Get,
        Method::Post,
        Method::Put,
        Method::Patch,
        Method::Delete,
        Method::Head,
        Method::Options,
    ]
    .into_iter()
    .map(|method| Route::ranked(100, method, "/<path..>", handler.clone()))
    .collect()
}

#[rocket::async_trait]
impl Handler for PassThrough {
    async fn handle<'r>(&self, req: &'r Request<'_>, data: Data<'r>) -> Outcome<'r> {
        // A websocket carries its token in its first message, not in a header.
        if req
            .headers()
            .get_one("Upgrade")
            .is_some_and(|u| u.eq_ignore_ascii_case("websocket"))
        {
            return self.websocket(req).await;
        }
        // The caller's token first, as on every route of ours.
        if let rocket::outcome::Outcome::Error((status, ())) = req.guard::<Ctx>().await {
            return Outcome::Error(status);
        }
        let answer = match (unowned_path(req), &self.0) {
            (Err(refusal), _) => Err(refusal),
            (Ok(path), None) => Err(not_configured(req.method(), &path)),
            (Ok(path), Some(upstream)) => forward(upstream, req, data, &path).await,
        };
        match answer {
            Ok(response) => Outcome::Success(response),
            Err(err) => Outcome::from(req, err),
        }
    }
}

impl PassThrough {
    /// Upgrades to a websocket relayed to the upstream (see `upstream_ws`).
    async fn websocket<'r>(&self, req: &'r Request<'_>) -> Outcome<'r> {
        let target = match (unowned_path(req), &self.0) {
            (Err(refusal), _) => Err(refusal),
            (Ok(path), None) => Err(not_configured(req.method(), &path)),
            (Ok(path), Some(upstream)) => {
                Ok(upstream.ws_url(&path, req.uri().query().map(|q| q.as_str())))
            }
        };
        let url = match target {
            Ok(url) => url,
            Err(err) => return Outcome::from(req, err),
        };
        let rocket::outcome::Outcome::Success(ws) = req.guard::<rocket_ws::WebSocket>().await
        else {
            let err = ApiError::new(ErrorKind::BadRequest, "not a websocket handshake");
            return Outcome::from(req, err);
        };
        let state = req.rocket().state::<State>().expect("server state");
        let relay = Relay {
            url,
            auth: self.0.as_ref().and_then(|u| u.auth.clone()),
            verifier: state.verifier.clone(),
        };
        Outcome::from(
            req,
            ws.channel(move |stream| Box::pin(super::upstream_ws::relay(stream, relay))),
        )
    }
}

/// The path below `/prefect/api`, unless it is one of the block routes, which are
/// Blockyard's whether or not it serves that one yet.
fn unowned_path(req: &Request<'_>) -> Result<String, ApiError> {
    let path = req
        .uri()
        .path()
        .as_str()
        .strip_prefix("/prefect/api/")
        .unwrap_or_default()
        .to_owned();
    // A dot segment would be resolved on the way (`flows/../block_documents`): refused,
    // so what is checked here is where the request goes.
    if req.uri().path().segments().any(|s| s == "." || s == "..") {
        return Err(ApiError::new(
            ErrorKind::BadRequest,
            "a path with . or .. segments is not passed on",
        ));
    }
    let first = path.split('/').next().unwrap_or_default();
    if BLOCK_ROUTES.contains(&first) {
        return Err(ApiError::new(
            ErrorKind::NotFound,
            format!(
                "Blockyard holds every block, and does not serve {} /prefect/api/{path}; \
                 block routes are never passed to the Prefect server",
                req.method()
            ),
        ));
    }
    Ok(path)
}

fn not_configured(method: Method, path: &str) -> ApiError {
    ApiError::new(
        ErrorKind::NotFound,
        format!(
            "{method} /prefect/api/{path} is Prefect's own: start the server with \
             --prefect-upstream URL (BLOCKYARD_PREFECT_UPSTREAM) to pass such requests to \
             a Prefect server"
        ),
    )
}

/// Sends the request on and streams the answer back.
async fn forward<'r>(
    upstream: &Upstream,
    req: &'r Request<'_>,
    data: Data<'r>,
    path: &str,
) -> Result<Response<'r>, ApiError> {
    let url = upstream.url(path, req.uri().query().map(|q| q.as_str()));
    let method = reqwest::Method::from_bytes(req.method().as_str().as_bytes())
        .map_err(|_| ApiError::new(ErrorKind::BadRequest, "an unknown method"))?;
    let mut outgoing = upstream.client.request(method, url);
    for header in req.headers().iter() {
        if !DROPPED_REQUEST.contains(&header.name().as_str().to_ascii_lowercase().as_str()) {
            outgoing = outgoing.header(header.name().as_str(), header.value());
        }
    }
    if let Some(auth) = &upstream.auth {
        use base64::Engine;
        let encoded = base64::engine::general_purpose::STANDARD.encode(auth.as_bytes());
        outgoing = outgoing.header("Authorization", format!("Basic {encoded}"));
    }
    let declared = req
        .headers()
        .get_one("Content-Length")
        .and_then(|l| l.trim().parse().ok());
    if declared.is_some_and(|length: u64| length > BODY_LIMIT_MIB * 1024 * 1024) {
        return Err(ApiError::too_large(BODY_LIMIT_MIB * 1024 * 1024));
    }
    let answer = match has_body(req) {
        false => outgoing.send().await,
        true => {
            // The body goes on as it arrives: read here, handed over a small channel to
            // the client's body stream (which must own what it streams).
            let (tx, rx) = tokio::sync::mpsc::channel::<std::io::Result<Vec<u8>>>(8);
            let stream = futures_util::stream::unfold(rx, |mut rx| async move {
                rx.recv().await.map(|chunk| (chunk, rx))
            });
            let send = outgoing.body(reqwest::Body::wrap_stream(stream)).send();
            futures_util::future::join(pump(data, tx), send).await.1
        }
    };
    let answer = answer.map_err(|err| unavailable(&upstream.base, &err))?;
    Ok(response(answer))
}

/// Whether the request has a body to pass on.
fn has_body(req: &Request<'_>) -> bool {
    let headers = req.headers();
    headers.contains("Transfer-Encoding")
        || headers
            .get_one("Content-Length")
            .is_some_and(|length| length.trim() != "0")
}

/// Reads the caller's body into `tx`, until it ends, fails, passes the limit (the
/// request to the upstream is then broken off, not sent cut short), or the upstream
/// stops reading.
async fn pump(data: Data<'_>, tx: tokio::sync::mpsc::Sender<std::io::Result<Vec<u8>>>) {
    use rocket::tokio::io::AsyncReadExt;
    let limit = BODY_LIMIT_MIB * 1024 * 1024;
    let mut stream = data.open((limit + 1).bytes());
    let mut buffer = vec![0u8; 64 * 1024];
    let mut total = 0u64;
    loop {
        let chunk = match stream.read(&mut buffer).await {
            Ok(0) => return,
            Ok(n) if total + n as u64 > limit => Err(std::io::Error::other("over the limit")),
            Ok(n) => Ok(buffer[..n].to_vec()),
            Err(err) => Err(err),
        };
        total += chunk.as_ref().map_or(0, |c| c.len() as u64);
        let failed = chunk.is_err();
        if tx.send(chunk).await.is_err() || failed {
            return;
        }
    }
}

/// The upstream's answer as it came: status, headers but hop-by-hop ones, body streamed.
fn response<'r>(answer: reqwest::Response) -> Response<'r> {
    let mut response = Response::build();
    response.status(Status::new(answer.status().as_u16()));
    for (name, value) in answer.headers() {
        let name = name.as_str();
        let dropped = DROPPED_RESPONSE.contains(&name) || name.starts_with("access-control-");
        if let (false, Ok(value)) = (dropped, value.to_str()) {
            response.raw_header_adjoin(name.to_owned(), value.to_owned());
        }
    }
    use futures_util::TryStreamExt;
    let stream = answer.bytes_stream().map_err(std::io::Error::other);
    response.streamed_body(tokio_util::io::StreamReader::new(stream));
    response.finalize()
}

/// 502: the upstream could not be reached or did not answer in time.
fn unavailable(base: &url::Url, err: &reqwest::Error) -> ApiError {
    let why = if err.is_timeout() {
        "did not answer in time"
    } else if err.is_connect() {
        "refused the connection or could not be reached"
    } else {
        "failed to answer"
    };
    let mut shown = base.clone();
    shown.set_query(None);
    ApiError::new(
        ErrorKind::UpstreamUnavailable,
        format!("the Prefect server at {shown} {why}"),
    )
}
