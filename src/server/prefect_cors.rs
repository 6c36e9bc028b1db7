//! Cross-origin calls to `/prefect/api` from the Prefect UI's pages (served by the
//! upstream Prefect server, pointed at Blockyard with `PREFECT_UI_API_URL`): a browser's
//! preflight is answered without a token, and every answer under `/prefect/api`, ours or
//! the upstream's, carries Blockyard's CORS headers for an allowed origin and none for
//! any other (the upstream's own, `*` by default, are dropped by the pass-through).

use rocket::fairing::{Fairing, Info, Kind};
use rocket::http::{Header, Method, Status};
use rocket::route::{Handler, Outcome, Route};
use rocket::{Data, Request, Response};

/// The pages allowed to call `/prefect/api` from a browser.
#[derive(Clone, Debug, Default)]
pub struct Origins(std::sync::Arc<Vec<String>>);

impl Origins {
    pub fn new(origins: Vec<String>) -> Origins {
        Origins(std::sync::Arc::new(origins))
    }

    /// The request's `Origin`, when it is one of ours.
    fn allowed<'r>(&self, req: &'r Request<'_>) -> Option<&'r str> {
        let origin = req.headers().get_one("Origin")?;
        self.0.iter().any(|o| o == origin).then_some(origin)
    }
}

/// Methods a page may use.
const METHODS: &str = "GET, POST, PUT, PATCH, DELETE, HEAD, OPTIONS";
/// How long a browser may keep a preflight's answer.
const MAX_AGE: &str = "600";

/// Answers preflights (an `OPTIONS` with `Access-Control-Request-Method`) under
/// `/prefect/api`, ranked before the pass-through; any other `OPTIONS` goes on to it.
#[derive(Clone)]
struct Preflight(Origins);

#[rocket::async_trait]
impl Handler for Preflight {
    async fn handle<'r>(&self, req: &'r Request<'_>, data: Data<'r>) -> Outcome<'r> {
        let asked = req.headers().get_one("Access-Control-Request-Method");
        if asked.is_none() || req.headers().get_one("Origin").is_none() {
            return Outcome::forward(data, Status::NotFound);
        }
        let mut answer = Response::build();
        answer.status(Status::NoContent);
        if self.0.allowed(req).is_some() {
            answer.raw_header("Access-Control-Allow-Methods", METHODS);
            answer.raw_header("Access-Control-Max-Age", MAX_AGE);
            if let Some(headers) = req.headers().get_one("Access-Control-Request-Headers") {
                answer.raw_header("Access-Control-Allow-Headers", headers.to_owned());
            }
        }
        Outcome::Success(answer.finalize())
    }
}

/// The preflight route under `/prefect/api`.
pub fn routes(origins: &Origins) -> Vec<Route> {
    let handler = Preflight(origins.clone());
    vec![Route::ranked(50, Method::Options, "/<path..>", handler)]
}

/// Sets the CORS headers of every answer under `/prefect/api`.
pub struct Cors(pub Origins);

#[rocket::async_trait]
impl Fairing for Cors {
    fn info(&self) -> Info {
        Info {
            name: "CORS for /prefect/api",
            kind: Kind::Response,
        }
    }

    async fn on_response<'r>(&self, req: &'r Request<'_>, res: &mut Response<'r>) {
        if !req.uri().path().as_str().starts_with("/prefect/api/") {
            return;
        }
        if let Some(origin) = self.0.allowed(req) {
            res.set_header(Header::new(
                "Access-Control-Allow-Origin",
                origin.to_owned(),
            ));
        }
        res.adjoin_header(Header::new("Vary", "Origin"));
    }
}
