//! The web UI in a real Chromium, driven over WebDriver (Debian's `chromium` and
//! `chromium-driver`, which `scripts/test` installs): sign in, create `crdb-sage`
//! through the form (a port out of range shown next to the port field first), test it
//! against the real PostgreSQL, edit it, see the change in its history, reveal its
//! secret with a token that may and not with one that may not, sign out. The planted
//! secret is searched in the page source after every step. Screenshots of the main
//! pages go to `target/ui-screenshots/` (with `BLOCKYARD_UPDATE_SCREENSHOTS=1`, also
//! to `tests/it/screenshots/`, which the README shows).
//!
//! The WebDriver client is the few commands these tests use, over `ureq`: a WebDriver
//! crate would bring a second HTTP stack and async runtime into the test build for
//! them.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::*;
use serde_json::{Value, json};

const PLANTED: &str = "planted-BROWSER-secret";
/// The key WebDriver names an element by.
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

/// A chromedriver process and one headless Chromium session.
struct Browser {
    driver: Child,
    base: String,
    session: String,
    shots: Vec<std::path::PathBuf>,
}

impl Browser {
    fn start() -> Browser {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let driver = Command::new("chromedriver")
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver must be installed (Debian: chromium-driver; see scripts/test)");
        let base = format!("http://127.0.0.1:{port}");
        // Bounded: chromedriver answers /status within a second or two.
        let deadline = Instant::now() + Duration::from_secs(30);
        while ureq::get(&format!("{base}/status")).call().is_err() {
            assert!(Instant::now() < deadline, "chromedriver did not start");
            std::thread::yield_now();
        }
        let caps = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": "/usr/bin/chromium",
                "args": ["--headless=new", "--no-sandbox", "--disable-gpu",
                         "--disable-dev-shm-usage", "--window-size=1100,900"]
            }
        }}});
        let reply: Value = ureq::post(&format!("{base}/session"))
            .send_json(caps)
            .expect("a Chromium session")
            .into_json()
            .unwrap();
        let session = reply["value"]["sessionId"].as_str().unwrap().to_owned();
        Browser {
            driver,
            base,
            session,
            shots: Vec::new(),
        }
    }

    fn command(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        let url = format!("{}/session/{}{path}", self.base, self.session);
        let req = ureq::request(method, &url);
        let reply = match body {
            Some(body) => req.send_json(body),
            None => req.call(),
        };
        match reply {
            Ok(res) => res.into_json::<Value>().unwrap()["value"].take(),
            Err(ureq::Error::Status(code, res)) => {
                panic!(
                    "{method} {path}: {code} {}",
                    res.into_string().unwrap_or_default()
                )
            }
            Err(err) => panic!("{method} {path}: {err}"),
        }
    }

    fn go(&self, url: &str) {
        self.command("POST", "/url", Some(json!({ "url": url })));
    }

    fn find(&self, css: &str) -> String {
        let found = self.command(
            "POST",
            "/element",
            Some(json!({"using": "css selector", "value": css})),
        );
        found[ELEMENT].as_str().unwrap().to_owned()
    }

    fn has(&self, css: &str) -> bool {
        let found = self.command(
            "POST",
            "/elements",
            Some(json!({"using": "css selector", "value": css})),
        );
        !found.as_array().unwrap().is_empty()
    }

    fn fill(&self, css: &str, text: &str) {
        let element = self.find(css);
        self.command(
            "POST",
            &format!("/element/{element}/clear"),
            Some(json!({})),
        );
        self.command(
            "POST",
            &format!("/element/{element}/value"),
            Some(json!({ "text": text })),
        );
    }

    /// Clicks a link or a form's button, and waits (bounded) until the page it was on
    /// is gone, so what is read next is the new page.
    fn click(&self, css: &str) {
        let element = self.find(css);
        self.command(
            "POST",
            &format!("/element/{element}/click"),
            Some(json!({})),
        );
        let url = format!(
            "{}/session/{}/element/{element}/name",
            self.base, self.session
        );
        let deadline = Instant::now() + Duration::from_secs(30);
        while ureq::get(&url).call().is_ok() {
            assert!(
                Instant::now() < deadline,
                "clicking {css} loaded no new page"
            );
            std::thread::yield_now();
        }
    }

    /// Clicks a radio button or checkbox (the page stays).
    fn check(&self, css: &str) {
        let element = self.find(css);
        self.command(
            "POST",
            &format!("/element/{element}/click"),
            Some(json!({})),
        );
    }

    fn source(&self) -> String {
        self.command("GET", "/source", None)
            .as_str()
            .unwrap()
            .to_owned()
    }

    fn url(&self) -> String {
        self.command("GET", "/url", None)
            .as_str()
            .unwrap()
            .to_owned()
    }

    /// The page source, checked to hold no secret (unless `revealed`).
    fn checked_source(&self, step: &str, revealed: bool) -> String {
        let source = self.source();
        assert_eq!(
            source.contains(PLANTED),
            revealed,
            "after {step}: the secret is {} the page",
            if revealed { "missing from" } else { "in" }
        );
        source
    }

    /// Scrolls `css` to the middle of the window (for a screenshot of it).
    fn scroll_to(&self, css: &str) {
        let script = format!(
            "document.querySelector({}).scrollIntoView({{block: 'center'}})",
            json!(css)
        );
        self.command(
            "POST",
            "/execute/sync",
            Some(json!({"script": script, "args": []})),
        );
    }

    fn screenshot(&mut self, name: &str) {
        use base64::Engine;
        let png = self.command("GET", "/screenshot", None);
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(png.as_str().unwrap())
            .unwrap();
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target/ui-screenshots");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(format!("{name}.png")), &bytes).unwrap();
        if std::env::var("BLOCKYARD_UPDATE_SCREENSHOTS").is_ok_and(|v| v == "1") {
            let kept =
                std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/it/screenshots");
            std::fs::create_dir_all(&kept).unwrap();
            std::fs::write(kept.join(format!("{name}.png")), &bytes).unwrap();
        }
        self.shots.push(dir.join(format!("{name}.png")));
    }

    fn sign_in(&self, server: &Server, token: &str) {
        self.go(&format!("{}/ui/login", server.base));
        self.fill("#token", token);
        self.click("button[type=submit]");
        assert!(
            self.url().ends_with("/ui"),
            "signed in: {} {}",
            self.url(),
            self.source()
        );
    }

    fn sign_out(&self) {
        self.click("header form button");
        assert!(
            self.url().ends_with("/ui/login"),
            "signed out: {}",
            self.url()
        );
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let url = format!("{}/session/{}", self.base, self.session);
        let _ = ureq::delete(&url).call();
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

#[test]
fn the_web_ui_in_chromium() {
    let env = TestEnv::new(Backend::Postgres);
    env.ok(&["init"]);
    let role = format!("ui_browser_{}", uuid::Uuid::new_v4().simple());
    env.sql(&format!(
        "CREATE ROLE {role} LOGIN IN ROLE blockyard_password_auth PASSWORD '{PLANTED}'"
    ));
    let owner = token(&env, "dba", &["blocks:write", "blocks:read-secrets"], &[]);
    let reader = token(&env, "analyst", &["blocks:read"], &[]);
    let server = Server::start(&env, &[]);
    let mut browser = Browser::start();

    // Sign in, and the (empty) list.
    browser.go(&format!("{}/ui", server.base));
    assert!(browser.url().ends_with("/ui/login"));
    browser.screenshot("sign-in");
    browser.sign_in(&server, &owner);

    // htmx is loaded (the CSP lets this site's script run) and loads the next page into
    // this one: what a script left on the window survives a click.
    let script = |code: &str| {
        browser.command(
            "POST",
            "/execute/sync",
            Some(json!({"script": code, "args": []})),
        )
    };
    assert_eq!(script("return typeof window.htmx"), json!("object"));
    script("window.blockyardMarker = 1");
    // Create crdb-sage through the form: a port out of range first.
    browser.click("a[href='/ui/new']");
    assert_eq!(
        script("return window.blockyardMarker"),
        json!(1),
        "htmx did not boost the link"
    );
    browser.click("a[href='/ui/new?type=sqlalchemy-connector']");
    let db = url::Url::parse(&pg_admin_url()).unwrap();
    browser.fill("#name", "crdb-sage");
    browser.check("input[value=ConnectionComponents]");
    browser.fill("#field-connection_info-driver", "postgresql");
    browser.fill("#field-connection_info-database", "postgres");
    browser.fill("#field-connection_info-username", &role);
    browser.fill("#field-connection_info-password", PLANTED);
    browser.fill("#field-connection_info-host", "127.0.0.1");
    browser.fill("#field-connection_info-port", "70000");
    browser.click("form[novalidate] button[type=submit]");
    let refused = browser.checked_source("a refused create", false);
    assert!(browser.has("#field-connection_info-port[aria-invalid=true]"));
    assert!(refused.contains("connection_info.port: value is greater than the maximum of 65535"));
    browser.scroll_to("#field-connection_info-port");
    browser.screenshot("create-with-an-error");
    // The password must be typed again: it never comes back to the page.
    browser.fill("#field-connection_info-password", PLANTED);
    browser.fill(
        "#field-connection_info-port",
        &db.port().unwrap_or(5432).to_string(),
    );
    browser.click("form[novalidate] button[type=submit]");
    assert!(
        browser.url().ends_with("/ui/blocks/crdb-sage"),
        "{}",
        browser.url()
    );
    browser.checked_source("create", false);

    // Test it against the real PostgreSQL, with the stored secret.
    browser.click("form[action$='/test'] button");
    let tested = browser.checked_source("test", false);
    assert!(tested.contains("Connected."), "{tested}");
    browser.screenshot("block");

    // Edit it, and see the change in its history.
    browser.click("a[href='/ui/blocks/crdb-sage/edit']");
    browser.checked_source("the edit form", false);
    browser.fill("#field-connection_info-host", "localhost");
    browser.click("form[novalidate] button[type=submit]");
    let edited = browser.checked_source("edit", false);
    assert!(edited.contains("127.0.0.1 → localhost"), "{edited}");

    // Reveal with a token that may.
    browser.click("form[action$='/reveal'] button");
    browser.checked_source("reveal", true);
    browser.sign_out();
    browser.checked_source("sign-out", false);

    // A token that may not sees no Reveal.
    browser.sign_in(&server, &reader);
    let list = browser.checked_source("the reader's list", false);
    assert!(list.contains("crdb-sage"));
    browser.screenshot("blocks");
    browser.click("a[href='/ui/blocks/crdb-sage']");
    browser.checked_source("the reader's block page", false);
    assert!(!browser.has("form[action$='/reveal']"));
    browser.sign_out();
    assert_eq!(browser.shots.len(), 4);
    env.sql(&format!("DROP ROLE IF EXISTS {role}"));
}
