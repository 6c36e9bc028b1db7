//! A headless Chromium driven over WebDriver (Debian's `chromium` and
//! `chromium-driver`, which `scripts/test` installs): the few commands the browser tests
//! use, over `ureq` (a WebDriver crate would bring a second HTTP stack and async runtime
//! into the test build for them). Screenshots go to `target/ui-screenshots/` (with
//! `BLOCKYARD_UPDATE_SCREENSHOTS=1`, also to `tests/it/screenshots/`, which the README
//! shows).

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

/// The key WebDriver names an element by.
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

/// A chromedriver process and one headless Chromium session.
pub struct Browser {
    driver: Child,
    base: String,
    session: String,
    /// The screenshots taken, in order.
    pub shots: Vec<std::path::PathBuf>,
}

impl Browser {
    pub fn start() -> Browser {
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

    pub fn command(&self, method: &str, path: &str, body: Option<Value>) -> Value {
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

    pub fn go(&self, url: &str) {
        self.command("POST", "/url", Some(json!({ "url": url })));
    }

    pub fn find(&self, css: &str) -> String {
        let found = self.command(
            "POST",
            "/element",
            Some(json!({"using": "css selector", "value": css})),
        );
        found[ELEMENT].as_str().unwrap().to_owned()
    }

    pub fn has(&self, css: &str) -> bool {
        let found = self.command(
            "POST",
            "/elements",
            Some(json!({"using": "css selector", "value": css})),
        );
        !found.as_array().unwrap().is_empty()
    }

    pub fn fill(&self, css: &str, text: &str) {
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
    pub fn click(&self, css: &str) {
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
    pub fn check(&self, css: &str) {
        let element = self.find(css);
        self.command(
            "POST",
            &format!("/element/{element}/click"),
            Some(json!({})),
        );
    }

    pub fn source(&self) -> String {
        self.command("GET", "/source", None)
            .as_str()
            .unwrap()
            .to_owned()
    }

    pub fn url(&self) -> String {
        self.command("GET", "/url", None)
            .as_str()
            .unwrap()
            .to_owned()
    }

    /// Scrolls `css` to the middle of the window (for a screenshot of it).
    pub fn scroll_to(&self, css: &str) {
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

    pub fn screenshot(&mut self, name: &str) {
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

    /// Waits (bounded) until `css` matches an element: for pages that render after
    /// they load (the Prefect UI fetches, then draws).
    pub fn wait_for(&self, css: &str) {
        let deadline = Instant::now() + Duration::from_secs(60);
        while !self.has(css) {
            assert!(
                Instant::now() < deadline,
                "{css} never appeared on {}: {}",
                self.url(),
                self.text()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Waits (bounded) until the page's text holds `text`.
    pub fn wait_for_text(&self, text: &str) {
        let deadline = Instant::now() + Duration::from_secs(60);
        while !self.text().contains(text) {
            assert!(
                Instant::now() < deadline,
                "{text:?} never appeared on {}: {}",
                self.url(),
                self.text()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// The page's visible text.
    pub fn text(&self) -> String {
        let script = json!({"script": "return document.body.innerText", "args": []});
        self.command("POST", "/execute/sync", Some(script))
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }

    /// Every element `css` matches.
    pub fn find_all(&self, css: &str) -> Vec<String> {
        let found = self.command(
            "POST",
            "/elements",
            Some(json!({"using": "css selector", "value": css})),
        );
        found
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e[ELEMENT].as_str().unwrap().to_owned())
            .collect()
    }

    /// The first `css` element whose text (a screen reader's too: `textContent`) is
    /// `text`, waited for (bounded): a button, a menu item.
    pub fn find_by_text(&self, css: &str, text: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            for element in self.find_all(css) {
                let path = format!("/element/{element}/property/textContent");
                let shown = self.command("GET", &path, None);
                if shown.as_str().is_some_and(|t| t.trim() == text) {
                    return element;
                }
            }
            assert!(
                Instant::now() < deadline,
                "no {css} reads {text:?}: {}",
                self.text()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// A form field's current value.
    pub fn value(&self, element: &str) -> String {
        let value = self.command("GET", &format!("/element/{element}/property/value"), None);
        value.as_str().unwrap_or_default().to_owned()
    }

    /// Clicks an element found by id (the page may stay).
    pub fn press(&self, element: &str) {
        self.command(
            "POST",
            &format!("/element/{element}/click"),
            Some(json!({})),
        );
    }

    /// Types into an element found by id, after clearing it.
    pub fn type_into(&self, element: &str, text: &str) {
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
}

impl Drop for Browser {
    fn drop(&mut self) {
        let url = format!("{}/session/{}", self.base, self.session);
        let _ = ureq::delete(&url).call();
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}
