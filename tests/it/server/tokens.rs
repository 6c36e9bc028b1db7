//! Token scopes, name patterns, expiry and revocation, as the server enforces them.

use std::time::Duration;

use serde_json::json;

use super::{PLANTED, connector};
use crate::support::*;

#[test]
fn token_scopes_patterns_expiry_and_revocation() {
    let env = TestEnv::new(Backend::Sqlite);
    env.ok(&["init"]);
    let admin = token(&env, "admin", &["admin"], &[]);
    let reader = token(&env, "reader", &["blocks:read"], &[]);
    let databot = token(&env, "databot", &["blocks:read-secrets:crdb-*"], &[]);
    let writer = token(&env, "ci", &["blocks:write:ci-*"], &[]);
    let short = token(&env, "short", &["blocks:read"], &["--expires-in", "1s"]);
    let revoked = token(&env, "gone", &["admin"], &[]);
    let server = Server::start(&env, &["--token-cache", "0s"]);
    let api = Api::new(&server, None);
    for name in ["crdb-sage", "pg-sage"] {
        assert_eq!(
            api.with_token(Some(&admin))
                .post("/blocks", &connector(name, PLANTED))
                .status,
            201
        );
    }
    let get = |token: &str, name: &str, secrets: bool| {
        api.with_token(Some(token))
            .get(&format!("/blocks/{name}?include_secrets={secrets}"))
    };
    assert_eq!(get(&reader, "crdb-sage", false).status, 200);
    assert_error(&get(&reader, "crdb-sage", true), 403, "FORBIDDEN");
    assert_eq!(
        get(&databot, "crdb-sage", true).body["data"]["connection_info"]["password"],
        PLANTED
    );
    assert_error(&get(&databot, "pg-sage", true), 403, "FORBIDDEN");
    assert_error(&get(&databot, "pg-sage", false), 403, "FORBIDDEN");
    // A 403 does not say whether the block exists.
    let missing = get(&databot, "pg-nothing", true);
    assert_error(&missing, 403, "FORBIDDEN");
    assert_eq!(
        get(&databot, "pg-sage", true).body["error"]["message"],
        missing.body["error"]["message"]
    );
    // Lists show only what the token may read.
    let listed = api.with_token(Some(&databot)).get("/blocks");
    let names: Vec<&str> = listed.body["blocks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["crdb-sage"]);
    // Write scopes with a pattern.
    let mut ci = connector("ci-db", "pw");
    assert_eq!(
        api.with_token(Some(&writer)).post("/blocks", &ci).status,
        201
    );
    ci["name"] = json!("prod-db");
    assert_error(
        &api.with_token(Some(&writer)).post("/blocks", &ci),
        403,
        "FORBIDDEN",
    );
    assert_error(
        &api.with_token(Some(&reader)).delete("/blocks/crdb-sage"),
        403,
        "FORBIDDEN",
    );
    assert_error(
        &api.with_token(Some(&reader)).get("/audit"),
        403,
        "FORBIDDEN",
    );
    let def = json!({"slug": "x-type", "name": "X", "schema": {"type": "object"}});
    assert_error(
        &api.with_token(Some(&writer)).post("/block-types", &def),
        403,
        "FORBIDDEN",
    );
    // Expired and revoked tokens.
    std::thread::sleep(Duration::from_millis(1200));
    assert_error(&get(&short, "crdb-sage", false), 401, "UNAUTHORIZED");
    assert_eq!(get(&revoked, "crdb-sage", false).status, 200);
    env.ok(&["token", "revoke", "gone"]);
    assert_error(&get(&revoked, "crdb-sage", false), 401, "UNAUTHORIZED");
    let listed = env.json(&["token", "ls"]);
    let states: Vec<(&str, &str)> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|t| (t["name"].as_str().unwrap(), t["state"].as_str().unwrap()))
        .collect();
    assert!(
        states.contains(&("gone", "revoked")) && states.contains(&("short", "expired")),
        "{states:?}"
    );
    assert!(
        !listed.to_string().contains(&admin[20..]),
        "token ls shows a secret"
    );
    // Thousands of unknown tokens: 401 until this address's failures are used up, then
    // 429 (never 5xx), while a verified token goes on being served.
    let mut statuses = std::collections::BTreeMap::new();
    for i in 0..2000 {
        let fake = format!("byd_{i:016x}_{}", "A".repeat(43));
        let status = api.with_token(Some(&fake)).get("/blocks/crdb-sage").status;
        *statuses.entry(status).or_insert(0) += 1;
    }
    assert_eq!(statuses.keys().copied().collect::<Vec<u16>>(), [401, 429]);
    assert!(statuses[&401] >= 20, "{statuses:?}");
    let verified = api.with_token(Some(&admin)).get("/blocks/crdb-sage");
    assert_eq!(verified.status, 200);
    // Bad scopes are refused at creation.
    env.run(&["token", "create", "bad", "--scope", "blocks:delete"])
        .fails_with("INVALID_INPUT");
    env.run(&["token", "create", "bad", "--scope", "blocks:read:UPPER"])
        .fails_with("INVALID_INPUT");
}
