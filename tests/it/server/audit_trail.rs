//! The audit trail over HTTP: secret reads and changes recorded, refusals recorded on
//! every route, text with a NUL byte still audited.

use serde_json::Value;

use super::{PLANTED, connector};
use crate::support::*;

#[test]
fn audit_trail_of_secret_reads_and_changes() {
    let env = TestEnv::new(Backend::Postgres);
    env.ok(&["init"]);
    let admin = token(&env, "admin", &["admin"], &[]);
    let databot = token(&env, "databot", &["blocks:read-secrets:crdb-*"], &[]);
    let server = Server::start(&env, &[]);
    let api = Api::new(&server, None);
    api.with_token(Some(&admin))
        .post("/blocks", &connector("crdb-sage", PLANTED));
    api.with_token(Some(&admin))
        .post("/blocks", &connector("pg-sage", PLANTED));
    let read = api.with_token(Some(&databot)).send(
        "GET",
        "/blocks/crdb-sage?include_secrets=true",
        None,
        &[("X-Request-Id", "req-42")],
    );
    assert_eq!(read.status, 200);
    api.with_token(Some(&databot))
        .get("/blocks/pg-sage?include_secrets=true");
    api.with_token(Some(&admin)).delete("/blocks/pg-sage");

    let records = env.json(&["audit", "ls", "--since", "1h"]);
    let rows: Vec<(String, String, String, String)> = records
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["actor"].as_str().unwrap().to_owned(),
                r["action"].as_str().unwrap().to_owned(),
                r["block"].as_str().unwrap_or("").to_owned(),
                r["outcome"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let expect = |actor: &str, action: &str, block: &str, outcome: &str| {
        assert!(
            rows.contains(&(actor.into(), action.into(), block.into(), outcome.into())),
            "{rows:?}"
        );
    };
    expect("admin", "create", "crdb-sage", "ok");
    expect("databot", "read-secrets", "crdb-sage", "ok");
    expect("databot", "read-secrets", "pg-sage", "FORBIDDEN");
    expect("admin", "delete", "pg-sage", "ok");
    assert!(records.to_string().contains("req-42"));
    let only = env.json(&["audit", "ls", "--block", "crdb-sage"]);
    assert_eq!(only.as_array().unwrap().len(), 2);
    let over_http = api.with_token(Some(&admin)).get("/audit?block=crdb-sage");
    assert_eq!(over_http.body["records"].as_array().unwrap().len(), 2);
    assert!(!server.log().contains(PLANTED));
    // Every request has one structured log line with its actor.
    let line = server
        .log()
        .lines()
        .find(|l| l.contains("req-42"))
        .unwrap()
        .to_owned();
    let line: Value = serde_json::from_str(&line).unwrap();
    assert_eq!(
        (
            line["actor"].as_str(),
            line["status"].as_u64(),
            line["method"].as_str()
        ),
        (Some("databot"), Some(200), Some("GET"))
    );
    assert!(line["latency_ms"].is_number());
}

/// Every route refuses through the same check: the Prefect route records a refused
/// secret read in the audit log, as the native route does.
#[test]
fn refused_secret_reads_are_audited_on_every_route() {
    let env = TestEnv::new(Backend::Sqlite);
    env.ok(&["init"]);
    create_crdb_sage(&env, PLANTED, &[]).success();
    let reader = token(&env, "masked-only", &["blocks:read"], &[]);
    let server = Server::start(&env, &[]);
    for path in [
        "/api/v1/blocks/crdb-sage?include_secrets=true",
        "/prefect/api/block_types/slug/sqlalchemy-connector/block_documents/name/crdb-sage?include_secrets=true",
    ] {
        let reply = Api::root(&server, Some(&reader)).get(path);
        assert_error(&reply, 403, "FORBIDDEN");
        assert!(!reply.text.contains(PLANTED));
    }
    let records = env.json(&["audit", "ls", "--block", "crdb-sage"]);
    let refused: Vec<&serde_json::Value> = records
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["actor"] == "masked-only" && r["action"] == "read-secrets")
        .collect();
    assert_eq!(refused.len(), 2, "{records}");
    assert!(
        refused.iter().all(|r| r["outcome"] == "FORBIDDEN"),
        "{records}"
    );
}

/// A refused or failed change that names text with a NUL byte is still audited
/// (the byte stored as U+FFFD), so the request gets its own error, not 503.
#[test]
fn changes_naming_a_nul_byte_are_still_audited() {
    let env = TestEnv::new(Backend::Postgres);
    env.ok(&["init"]);
    let admin = token(&env, "admin", &["admin"], &[]);
    let server = Server::start(&env, &[]);
    let body = serde_json::json!({"slug": "a\u{0}b", "name": "x", "schema": {"type": "object"}});
    let reply = Api::new(&server, Some(&admin)).post("/block-types", &body);
    assert_eq!(
        reply.body["error"]["code"], "INVALID_BLOCK_TYPE",
        "{}",
        reply.text
    );
    let records = env.json(&["audit", "ls", "--limit", "10"]);
    assert!(records.to_string().contains("type:a\u{FFFD}b"), "{records}");
}

/// A change naming text longer than the audit log's columns (a 300-character slug,
/// found by schemathesis) is still audited, the text cut with `…`, so the request gets
/// its own error, not 503 `AUDIT_UNAVAILABLE`; a valid slug of 128 characters, whose
/// record names `type:` and the slug, registers.
#[test]
fn changes_naming_long_text_are_still_audited() {
    let env = TestEnv::new(Backend::Postgres);
    env.ok(&["init"]);
    let admin = token(&env, "admin", &["admin"], &[]);
    let server = Server::start(&env, &[]);
    let api = Api::new(&server, Some(&admin));
    let long = "é".repeat(300);
    let body = serde_json::json!({"slug": long, "name": "x", "schema": {"type": "object"}});
    assert_error(&api.post("/block-types", &body), 422, "INVALID_BLOCK_TYPE");
    let longest = "a".repeat(128);
    let body = serde_json::json!({"slug": longest, "name": "x", "schema": {"type": "object"}});
    let reply = api.post("/block-types", &body);
    assert_eq!(reply.status, 201, "{}", reply.text);
    let records = env.json(&["audit", "ls", "--limit", "10"]).to_string();
    assert!(
        records.contains(&format!("type:{}…", "é".repeat(122))),
        "{records}"
    );
    assert!(
        records.contains(&format!("type:{}…", "a".repeat(122))),
        "{records}"
    );
}
