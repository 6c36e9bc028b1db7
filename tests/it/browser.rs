//! The web UI in a real Chromium (`crate::support::Browser`): sign in, create
//! `crdb-sage` through the form (a port out of range shown next to the port field
//! first), test it against the real PostgreSQL, edit it, see the change in its history,
//! reveal its secret with a token that may and not with one that may not, sign out. The
//! planted secret is searched in the page source after every step. Screenshots of the
//! main pages go to `target/ui-screenshots/` (and with `BLOCKYARD_UPDATE_SCREENSHOTS=1`
//! to `tests/it/screenshots/`, which the README shows).

use crate::support::*;
use serde_json::json;

const PLANTED: &str = "planted-BROWSER-secret";

/// What the tests do on Blockyard's own UI.
trait OurUi {
    fn checked_source(&self, step: &str, revealed: bool) -> String;
    fn sign_in(&self, server: &Server, token: &str);
    fn sign_out(&self);
}

impl OurUi for Browser {
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
