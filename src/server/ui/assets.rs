//! The UI's stylesheet and script (htmx, gzipped for the browsers that take it) as they
//! are compiled in, and the security headers of every `/ui` response.

use rocket::get;
use rocket::request::{FromRequest, Outcome, Request};
use rocket::response::content::RawCss;

const STYLE: &str = include_str!("assets/style.css");

/// Blockyard's own script: sortable tables and copy buttons (pages work without it).
const SCRIPT: &[u8] = include_bytes!("assets/ui.js");
/// htmx 2.0.11 (BSD Zero Clause, `assets/htmx-LICENSE`), as npm ships it: minified, and
/// gzipped for the browsers that take it (all do; 17 KB instead of 52 KB).
const HTMX: &[u8] = include_bytes!("assets/htmx.min.js");
const HTMX_GZ: &[u8] = include_bytes!("assets/htmx.min.js.gz");

#[get("/style.css")]
pub fn style() -> RawCss<&'static str> {
    RawCss(STYLE)
}

/// htmx, gzipped when the browser accepts it.
#[get("/htmx.js")]
pub fn htmx(gzip: AcceptsGzip) -> Asset {
    Asset {
        body: if gzip.0 { HTMX_GZ } else { HTMX },
        gzip: gzip.0,
    }
}

/// Blockyard's own script, as it is (2 KB).
#[get("/ui.js")]
pub fn script() -> Asset {
    Asset {
        body: SCRIPT,
        gzip: false,
    }
}

/// Whether the request says `Accept-Encoding: gzip`.
pub struct AcceptsGzip(bool);

#[rocket::async_trait]
impl<'r> FromRequest<'r> for AcceptsGzip {
    type Error = ();

    async fn from_request(req: &'r Request<'_>) -> Outcome<Self, ()> {
        let gzip = req
            .headers()
            .get("Accept-Encoding")
            .any(|v| v.split(',').any(|e| e.trim().starts_with("gzip")));
        Outcome::Success(AcceptsGzip(gzip))
    }
}

/// A script served as it is embedded.
pub struct Asset {
    body: &'static [u8],
    gzip: bool,
}

impl<'r> rocket::response::Responder<'r, 'static> for Asset {
    fn respond_to(self, _: &'r Request<'_>) -> rocket::response::Result<'static> {
        let mut res = rocket::Response::build();
        res.header(rocket::http::ContentType::JavaScript)
            .raw_header("Vary", "Accept-Encoding")
            .sized_body(self.body.len(), std::io::Cursor::new(self.body));
        if self.gzip {
            res.raw_header("Content-Encoding", "gzip");
        }
        res.ok()
    }
}

/// The headers of every `/ui` response: a Content-Security-Policy that allows only
/// this site's stylesheet and script (htmx; no inline script or style, no eval, no
/// frames), no framing, no referrer, no sniffing, and no caching of pages.
pub struct SecurityHeaders;

#[rocket::async_trait]
impl rocket::fairing::Fairing for SecurityHeaders {
    fn info(&self) -> rocket::fairing::Info {
        rocket::fairing::Info {
            name: "web UI security headers",
            kind: rocket::fairing::Kind::Response,
        }
    }

    async fn on_response<'r>(&self, req: &'r Request<'_>, res: &mut rocket::Response<'r>) {
        let path = req.uri().path();
        if !path.starts_with("/ui") {
            return;
        }
        // The stylesheet and htmx may be cached; pages never are (a revealed secret
        // must not stay in a cache).
        let asset = matches!(path.as_str(), "/ui/style.css" | "/ui/htmx.js" | "/ui/ui.js");
        use rocket::http::Header;
        res.set_header(Header::new(
            "Content-Security-Policy",
            "default-src 'none'; script-src 'self'; connect-src 'self'; style-src 'self'; \
             img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        ));
        res.set_header(Header::new("X-Frame-Options", "DENY"));
        res.set_header(Header::new("Referrer-Policy", "no-referrer"));
        res.set_header(Header::new("X-Content-Type-Options", "nosniff"));
        res.set_header(Header::new(
            "Cache-Control",
            if asset {
                "public, max-age=3600"
            } else {
                "no-store"
            },
        ));
    }
}
