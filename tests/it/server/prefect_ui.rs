//! The Prefect UI (served by a real Prefect 3.8.8 server, its default UI) pointed at
//! Blockyard with `PREFECT_UI_API_URL`, in headless Chromium: sign in at Prefect's
//! login page with a Blockyard token, list Blockyard's blocks, create a Secret through
//! Prefect's form, see a token that may not read `crdb-sage`'s password refused (and
//! the refusal on record) when it changes where the block connects, edit it
//! with one that may, delete the Secret. Every change is Blockyard's (a version, a
//! history entry by the token's name), the planted secrets are on no page, and a page
//! of another origin gets no CORS grant.

use super::PLANTED;
use crate::support::*;

/// The Secret created through Prefect's form.
const FORM_SECRET: &str = "planted-FORM-secret";

/// A Blockyard server in front of a Prefect server whose UI calls Blockyard: both told
/// of each other before either starts; Prefect's API wants its own auth string, which
/// only Blockyard knows.
fn prefect_with_ui(env: &mut TestEnv) -> (PrefectServer, Server) {
    let port = free_port();
    let api_url = format!("http://127.0.0.1:{port}/prefect/api");
    let upstream_auth = format!("admin:{}", uuid::Uuid::new_v4().simple());
    let prefect = PrefectServer::start_with(
        env.dir.path().join("prefect-server"),
        &[
            ("PREFECT_UI_ENABLED", "true"),
            ("PREFECT_UI_API_URL", &api_url),
            ("PREFECT_SERVER_API_AUTH_STRING", &upstream_auth),
        ],
    );
    env.extra_env
        .push(("BLOCKYARD_PREFECT_UPSTREAM_AUTH".into(), upstream_auth));
    let server = Server::start_on(env, port, &["--prefect-upstream", &prefect.api]);
    (prefect, server)
}

/// The page holds neither planted secret.
fn assert_no_secret(browser: &Browser, step: &str) {
    let source = browser.text() + &browser.source();
    assert!(
        !source.contains(PLANTED) && !source.contains(FORM_SECRET),
        "after {step}: a secret is on the page"
    );
}

/// Signs in at Prefect's login page with a Blockyard token (the UI sends it as Basic
/// auth to every call, which Blockyard checks).
fn sign_in(browser: &Browser, ui: &str, token: &str) {
    browser.go(&format!("{ui}/"));
    browser.wait_for("input[type=password]");
    browser.type_into(&browser.find("input[type=password]"), token);
    browser.press(&browser.find("button[type=submit]"));
    browser.wait_for_text("Dashboard");
}

/// Changes `crdb-sage`'s host in Prefect's edit form and saves.
fn edit_host(browser: &Browser, ui: &str, id: &str, host: &str) {
    browser.go(&format!("{ui}/v2/blocks/block/{id}/edit"));
    browser.wait_for("textarea");
    assert_no_secret(browser, "the edit form");
    let field = browser
        .find_all("textarea")
        .into_iter()
        .find(|t| browser.value(t) == "localhost")
        .expect("the host field");
    browser.type_into(&field, host);
    browser.press(&browser.find_by_text("button", "Save"));
}

/// The Prefect document id of a block, as the UI links to it.
fn document_id(api: &Api, name: &str) -> String {
    let listed = api.post("/block_documents/filter", &serde_json::json!({}));
    let found = listed
        .body
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["name"] == name);
    found.unwrap_or_else(|| panic!("{name}: {}", listed.text))["id"]
        .as_str()
        .unwrap()
        .to_owned()
}

#[test]
fn the_prefect_ui_manages_blockyard_blocks() {
    let mut env = TestEnv::new(Backend::Sqlite);
    env.ok(&["init"]);
    create_crdb_sage(&env, PLANTED, &[]).success();
    let writer = token(&env, "writer", &["blocks:read", "blocks:write"], &[]);
    let ops = token(
        &env,
        "ops",
        &["blocks:read", "blocks:write", "blocks:read-secrets"],
        &[],
    );
    let (prefect, server) = prefect_with_ui(&mut env);
    let ui = prefect.api.trim_end_matches("/api").to_owned();
    let api = Api::at(&format!("{}/prefect/api", server.base), Some(&ops));
    let mut browser = Browser::start();

    // Prefect's login page takes the token; the block list is Blockyard's.
    sign_in(&browser, &ui, &writer);
    browser.go(&format!("{ui}/v2/blocks"));
    browser.wait_for_text("crdb-sage");
    assert_no_secret(&browser, "the block list");
    browser.screenshot("prefect-ui-blocks");

    // Create a Secret through Prefect's form: sealed and versioned here.
    browser.go(&format!("{ui}/v2/blocks/catalog/secret/create"));
    browser.wait_for("input[type=password]");
    browser.type_into(&browser.find("input:not([type=password])"), "api-key");
    browser.type_into(&browser.find("input[type=password]"), FORM_SECRET);
    browser.press(&browser.find_by_text("button", "Save"));
    browser.wait_for_text("Block created successfully");
    assert_no_secret(&browser, "the create");
    let created = env.json(&["block", "inspect", "api-key", "--show-secrets"]);
    assert_eq!(created["data"]["value"], FORM_SECRET, "{created}");

    // Where crdb-sage connects decides where its password goes: a token that may not
    // read the password may not change it (Prefect's UI shows its own words for any
    // refusal; the answer's `detail` carries Blockyard's reason, for clients).
    let id = document_id(&api, "crdb-sage");
    edit_host(&browser, &ui, &id, "db.internal");
    browser.wait_for_text("Unknown error while updating block.");
    browser.screenshot("prefect-ui-refused");
    browser.press(&browser.find_by_text("button", "Logout"));

    // With a token that may, the edit is made; the stored password stays.
    sign_in(&browser, &ui, &ops);
    edit_host(&browser, &ui, &id, "db.internal");
    browser.wait_for_text("Block updated successfully");
    let edited = env.json(&["block", "inspect", "crdb-sage", "--show-secrets"]);
    assert_eq!(edited["data"]["connection_info"]["host"], "db.internal");
    assert_eq!(edited["data"]["connection_info"]["password"], PLANTED);
    let history = env.json(&["block", "history", "crdb-sage"]);
    let last = history.as_array().unwrap().last().unwrap();
    assert_eq!(last["actor"], "ops", "{history}");

    // Delete the Secret from its page's menu.
    let id = document_id(&api, "api-key");
    browser.go(&format!("{ui}/v2/blocks/block/{id}"));
    browser.press(&browser.find_by_text("button", "Open menu"));
    browser.press(&browser.find_by_text("[role=menuitem]", "Delete"));
    browser.press(&browser.find_by_text("[role=alertdialog] button", "Delete"));
    browser.wait_for_text("1 Block");
    env.run(&["block", "inspect", "api-key"])
        .fails_with("BLOCK_NOT_FOUND");
    let on_record = |block: &str, actor: &str, action: &str, outcome: &str| {
        let audit = env.json(&["audit", "ls", "--block", block]);
        let found = audit
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["actor"] == actor && r["action"] == action && r["outcome"] == outcome);
        assert!(found, "{actor} {action} {outcome}: {audit}");
    };
    on_record("api-key", "writer", "create", "ok");
    on_record("api-key", "ops", "delete", "ok");
    on_record("crdb-sage", "writer", "update", "FORBIDDEN");
    on_record("crdb-sage", "ops", "update", "ok");

    assert_cors(&server, &ui, &ops);
    assert!(!contains_bytes(&prefect.database(), PLANTED));
    assert!(!contains_bytes(&prefect.database(), FORM_SECRET));
    assert!(!server.log().contains(FORM_SECRET) && !server.log().contains(&ops));
}

/// The UI's origin is granted (a preflight without a token, the answer of a passed-on
/// route carrying Blockyard's grant rather than Prefect's `*`); another origin is not.
fn assert_cors(server: &Server, ui: &str, token: &str) {
    let url = format!("{}/prefect/api/flows/filter", server.base);
    let preflight = |origin: &str| {
        ureq::request("OPTIONS", &url)
            .set("Origin", origin)
            .set("Access-Control-Request-Method", "POST")
            .set(
                "Access-Control-Request-Headers",
                "authorization,content-type",
            )
            .call()
            .unwrap()
    };
    let granted = preflight(ui);
    assert_eq!(granted.status(), 204);
    assert_eq!(granted.header("Access-Control-Allow-Origin"), Some(ui));
    assert!(
        granted
            .header("Access-Control-Allow-Methods")
            .unwrap()
            .contains("PATCH")
    );
    let refused = preflight("http://evil.example");
    assert_eq!(refused.header("Access-Control-Allow-Origin"), None);
    assert_eq!(refused.header("Access-Control-Allow-Methods"), None);
    // A passed-on answer carries Blockyard's grant, never the upstream's `*`; a refusal
    // carries it too, so the UI can read it and ask for a token again.
    for (origin, grant) in [(ui, Some(ui)), ("http://evil.example", None)] {
        let answer = ureq::post(&url)
            .set("Origin", origin)
            .set("Authorization", &format!("Bearer {token}"))
            .send_string("{}")
            .unwrap();
        assert_eq!(answer.status(), 200);
        assert_eq!(answer.header("Access-Control-Allow-Origin"), grant);
        let Err(ureq::Error::Status(401, refused)) =
            ureq::post(&url).set("Origin", origin).send_string("{}")
        else {
            panic!("a request without a token is refused");
        };
        assert_eq!(refused.header("Access-Control-Allow-Origin"), grant);
    }
}
