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

/// Contrast of two CSS colours (WCAG relative luminance), computed in the page.
const CONTRAST_JS: &str = r#"
const rgb = (c) => c.match(/[\d.]+/g).slice(0, 3).map(Number);
const lum = (c) => {
  const [r, g, b] = rgb(c).map((v) => { v /= 255; return v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4); });
  return 0.2126 * r + 0.7152 * g + 0.0722 * b;
};
const ratio = (a, b) => { const [x, y] = [lum(a), lum(b)].sort((p, q) => q - p); return (x + 0.05) / (y + 0.05); };
const input = document.querySelector('#q');
input.focus({focusVisible: true});
const style = getComputedStyle(input);
const page = getComputedStyle(document.body).backgroundColor;
return {
  border: ratio(style.borderTopColor, style.backgroundColor),
  focus: ratio(style.outlineColor, page),
  outline: style.outlineStyle,
  text: ratio(getComputedStyle(document.body).color, page),
};
"#;

/// Words of table cells that wrap onto two lines (a word broken mid-word).
const BROKEN_WORDS_JS: &str = r#"
let broken = [];
for (const cell of document.querySelectorAll('td')) {
  const walker = document.createTreeWalker(cell, NodeFilter.SHOW_TEXT);
  for (let node = walker.nextNode(); node; node = walker.nextNode()) {
    const re = /\S+/g; let m;
    while ((m = re.exec(node.textContent))) {
      const range = document.createRange();
      range.setStart(node, m.index); range.setEnd(node, m.index + m[0].length);
      if (range.getClientRects().length > 1) broken.push(m[0]);
    }
  }
}
return broken;
"#;

/// Issue 27 #14–#16: substring search with a count and a clear link, sortable columns,
/// relative times; rollback asks first and says what it did; at 1280 px no cell breaks
/// a word; at 390 px rows are cards and nothing scrolls sideways; input borders and the
/// focus ring keep 3:1 in the light and the dark palette.
#[test]
fn the_list_and_layout_at_every_width() {
    let env = TestEnv::new(Backend::Sqlite);
    env.ok(&["init"]);
    for name in [
        "crdb-sage",
        "analytics-warehouse-eu-west-1-replica",
        "billing-warehouse",
        "zz-json",
    ] {
        env.ok(&[
            "block",
            "create",
            name,
            "--type",
            "json",
            "--set-json",
            "value=1",
        ]);
    }
    env.ok(&["block", "update", "crdb-sage", "--set-json", "value=2"]);
    let owner = token(&env, "dba", &["blocks:write", "blocks:read-secrets"], &[]);
    let server = Server::start(&env, &[]);
    let mut browser = Browser::start();
    browser.sign_in(&server, &owner);
    let script = |browser: &Browser, code: &str| {
        browser.command(
            "POST",
            "/execute/sync",
            Some(json!({"script": code, "args": []})),
        )
    };
    let resize = |browser: &Browser, width: u32| {
        browser.command(
            "POST",
            "/window/rect",
            Some(json!({"width": width, "height": 900})),
        );
    };
    resize(&browser, 1280);
    // Substring search: "warehouse" is in the middle of two names.
    browser.fill("#q", "warehouse");
    browser.click(".filters button[type=submit]");
    browser.wait_for_text("2 blocks match.");
    let names = browser.find_all("table.blocks tbody td[data-label=Name]");
    assert_eq!(names.len(), 2);
    assert!(browser.has(".filters a[href='/ui']"), "a clear link");
    browser.go(&format!("{}/ui", server.base));
    assert!(browser.text().contains("4 blocks."), "{}", browser.text());
    assert!(browser.text().contains("just now") || browser.text().contains(" ago"));
    // Sorting by version puts crdb-sage (version 2) last, then first.
    browser.press(&browser.find("th[data-sort=number] button"));
    let first = script(
        &browser,
        "return document.querySelector('table.blocks tbody tr td').textContent.trim()",
    );
    assert_ne!(first, json!("crdb-sage"));
    browser.press(&browser.find("th[data-sort=number] button"));
    let first = script(
        &browser,
        "return document.querySelector('table.blocks tbody tr td').textContent.trim()",
    );
    assert_eq!(first, json!("crdb-sage"));
    assert_eq!(
        script(&browser, BROKEN_WORDS_JS),
        json!([]),
        "no word broken at 1280 px"
    );
    // Contrast, light and dark.
    let light = script(&browser, CONTRAST_JS);
    for dark in [false, true] {
        if dark {
            browser.command(
                "POST",
                "/goog/cdp/execute",
                Some(json!({"cmd": "Emulation.setEmulatedMedia", "params": {"features": [{"name": "prefers-color-scheme", "value": "dark"}]}})),
            );
        }
        let shown = script(&browser, CONTRAST_JS);
        for key in ["border", "focus"] {
            assert!(
                shown[key].as_f64().unwrap() >= 3.0,
                "dark={dark} {key}: {shown}"
            );
        }
        assert!(
            shown["text"].as_f64().unwrap() >= 4.5,
            "dark={dark}: {shown}"
        );
        assert_ne!(
            shown["outline"],
            json!("none"),
            "a visible focus ring: {shown}"
        );
        if dark {
            assert_ne!(shown, light, "the dark palette applies");
        }
    }
    // A phone: cards, no sideways scroll.
    resize(&browser, 390);
    browser.go(&format!("{}/ui", server.base));
    let overflow = script(
        &browser,
        "return document.documentElement.scrollWidth - window.innerWidth",
    );
    assert!(
        overflow.as_i64().unwrap() <= 0,
        "scrolls sideways by {overflow}"
    );
    assert_eq!(
        script(
            &browser,
            "return getComputedStyle(document.querySelector('thead')).display"
        ),
        json!("none")
    );
    browser.screenshot("blocks-phone");
    // Roll back asks first, then says what it did.
    resize(&browser, 1280);
    browser.go(&format!("{}/ui/blocks/crdb-sage", server.base));
    browser.press(&browser.find("form[hx-confirm] button"));
    let asked = browser.command("GET", "/alert/text", None);
    assert!(
        asked
            .as_str()
            .unwrap()
            .contains("Roll crdb-sage back to version 1"),
        "{asked}"
    );
    browser.command("POST", "/alert/accept", Some(json!({})));
    browser.wait_for_text("Rolled back to version 1. Now version 3.");
    browser.go(&format!("{}/ui", server.base));
    assert!(
        browser.has("a.skip[href='#main']") && browser.has("nav a[aria-current=page][href='/ui']")
    );
    // The form's switch shows only the chosen alternative's fields.
    browser.go(&format!("{}/ui/new?type=sqlalchemy-connector", server.base));
    let hidden = |browser: &Browser, option: &str| {
        script(
            browser,
            &format!("return document.querySelector('.field[data-option=\"{option}\"]').hidden"),
        )
    };
    assert_eq!(hidden(&browser, "URL"), json!(true));
    assert_eq!(hidden(&browser, "ConnectionComponents"), json!(false));
    browser.press(&browser.find("input[type=radio][value=URL]"));
    assert_eq!(hidden(&browser, "URL"), json!(false));
    assert_eq!(hidden(&browser, "ConnectionComponents"), json!(true));
}
