//! Snapshots of every API response shape and of the main CLI outputs (tables and JSON),
//! with ids, times, tokens and paths redacted, so any change of shape shows up as a
//! diff of `tests/it/snapshots/` (review it with `cargo insta review`, or rerun with
//! `INSTA_UPDATE=always` and read `git diff`).

use crate::support::*;
use regex::Regex;
use serde_json::{Value, json};

/// `text` with what differs from run to run replaced by a fixed word.
fn redact(env: &TestEnv, text: &str) -> String {
    let text = text.replace(&env.dir.path().display().to_string(), "[dir]");
    let rules = [
        (
            r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}",
            "[uuid]",
        ),
        (
            r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)",
            "[time]",
        ),
        (r"\d{4}-\d\d-\d\d \d\d:\d\d(:\d\d)?", "[time]"),
        (r"byd_[0-9a-f]{16}_[A-Za-z0-9_-]+", "[token]"),
        (r"[0-9a-f]{32}", "[hex]"),
        (r"\b[0-9a-f]{16}\b", "[token-id]"),
        (r"\b[0-9a-f]{24}\b", "[fingerprint]"),
        (
            r#""request_id": "[^"]+""#,
            r#""request_id": "[request-id]""#,
        ),
        (r#""id": \d+"#, r#""id": [n]"#),
        (r#""next_before": \d+"#, r#""next_before": [n]"#),
    ];
    let mut text = text;
    for (pattern, with) in rules {
        text = Regex::new(pattern)
            .unwrap()
            .replace_all(&text, with)
            .into_owned();
    }
    text
}

/// A reply as a snapshot: its status line and its body, pretty.
fn shown(env: &TestEnv, reply: &Reply) -> String {
    let body = match &reply.body {
        Value::Null => reply.text.clone(),
        body => serde_json::to_string_pretty(body).unwrap(),
    };
    redact(env, &format!("{}\n{body}", reply.status))
}

fn connector(password: &str) -> Value {
    json!({"connection_info": {
        "driver": "cockroachdb+psycopg2", "database": "sage", "username": "databot",
        "host": "localhost", "port": 26257, "password": password}})
}

#[test]
fn api_response_shapes() {
    let env = TestEnv::new(Backend::Sqlite);
    env.ok(&["init"]);
    let admin = token(&env, "admin", &["admin"], &[]);
    let reader = token(&env, "reader", &["blocks:read:crdb-*"], &[]);
    let server = Server::start(&env, &[]);
    let api = Api::new(&server, Some(&admin));
    let a = Some(admin.as_str());
    let r = Some(reader.as_str());
    let get = |path: &str, token: Option<&str>| api.with_token(token).get(path);
    let send = |method: &str, path: &str, body: Value, headers: &[(&str, &str)]| {
        api.send(method, path, Some(&body), headers)
    };
    let snap = |name: &str, reply: Reply| insta::assert_snapshot!(name, shown(&env, &reply));

    snap("health", Api::root(&server, None).get("/health"));
    snap("ready", Api::root(&server, None).get("/ready"));
    let create = json!({"name": "crdb-sage", "block_type": "sqlalchemy-connector",
        "data": connector("shapes-secret")});
    snap("create_block", send("POST", "/blocks", create, &[]));
    snap("get_block_masked", get("/blocks/crdb-sage", a));
    snap(
        "get_block_with_secrets",
        get("/blocks/crdb-sage?include_secrets=true", a),
    );
    let mut data = connector("********");
    data["connection_info"]["database"] = json!("sage2");
    snap(
        "update_block",
        send(
            "PUT",
            "/blocks/crdb-sage",
            json!({ "data": data }),
            &[("If-Match", "\"1\"")],
        ),
    );
    send(
        "POST",
        "/blocks",
        json!({"name": "note", "block_type": "secret", "data": {"value": "x"}}),
        &[],
    );
    snap("list_blocks", get("/blocks?limit=1", a));
    snap("list_blocks_last_page", get("/blocks?cursor=crdb-sage", a));
    snap("history", get("/blocks/crdb-sage/history", a));
    snap(
        "rename_block",
        send(
            "POST",
            "/blocks/note/rename",
            json!({"new_name": "note2"}),
            &[],
        ),
    );
    snap("delete_block", api.delete("/blocks/note2"));
    snap("block_type", get("/block-types/secret", a));
    let types = get("/block-types", a);
    let slugs: Vec<&Value> = types.body["block_types"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| &t["slug"])
        .collect();
    insta::assert_snapshot!("block_type_slugs", format!("{} {slugs:?}", types.status));
    let def = json!({"slug": "ftp", "name": "FTP", "description": "An FTP server.",
        "schema": {"type": "object", "properties": {"host": {"type": "string"},
        "password": {"type": "string"}}, "required": ["host"]},
        "secret_fields": ["password"]});
    snap("register_type", send("POST", "/block-types", def, &[]));
    snap("audit", get("/audit?limit=3", a));
    snap(
        "prefect_block_document",
        Api::root(&server, a).get(
            "/prefect/api/block_types/slug/sqlalchemy-connector/block_documents/name/crdb-sage",
        ),
    );

    // Errors: one shape, each with its status and code.
    snap("error_unauthorized", get("/blocks", None));
    snap(
        "error_forbidden",
        get("/blocks/crdb-sage?include_secrets=true", r),
    );
    snap("error_not_found", get("/blocks/crdb-nothing", a));
    snap("error_bad_name", get("/blocks/Bad%20Name", a));
    snap(
        "error_version_conflict",
        send(
            "PUT",
            "/blocks/crdb-sage",
            json!({ "data": connector("********") }),
            &[("If-Match", "\"1\"")],
        ),
    );
    snap(
        "error_unknown_field",
        send("POST", "/blocks", json!({"name": "x", "nope": 1}), &[]),
    );
    snap(
        "error_bad_data",
        send(
            "POST",
            "/blocks",
            json!({"name": "x", "block_type": "secret", "data": {"value": 5}}),
            &[],
        ),
    );
    snap("error_no_route", get("/nothing-here", a));
}

#[test]
fn cli_output_shapes() {
    let env = TestEnv::new(Backend::Sqlite);
    env.ok(&["init"]);
    let show = |args: &[&str]| {
        let run = env.ok(args);
        redact(&env, &run.stdout)
    };
    let snap = |name: &str, args: &[&str]| insta::assert_snapshot!(name, show(args));
    create_crdb_sage(&env, "shapes-secret", &[]).success();
    env.run_stdin(
        &[
            "block",
            "create",
            "api-key",
            "--type",
            "secret",
            "--password-stdin",
        ],
        "k",
    )
    .success();
    env.ok(&[
        "block",
        "update",
        "crdb-sage",
        "--set",
        "connection_info.port=26258",
    ]);
    env.ok(&["token", "create", "bot", "--scope", "blocks:read:crdb-*"]);

    snap("cli_block_ls", &["block", "ls"]);
    snap("cli_block_ls_json", &["block", "ls", "-o", "json"]);
    snap("cli_block_inspect", &["block", "inspect", "crdb-sage"]);
    snap(
        "cli_block_inspect_json",
        &["block", "inspect", "crdb-sage", "-o", "json"],
    );
    snap("cli_block_history", &["block", "history", "crdb-sage"]);
    snap(
        "cli_block_history_json",
        &["block", "history", "crdb-sage", "-o", "json"],
    );
    snap("cli_block_diff", &["block", "diff", "crdb-sage", "1", "2"]);
    snap("cli_block_env", &["block", "env", "crdb-sage"]);
    snap("cli_type_ls", &["type", "ls"]);
    snap("cli_token_ls", &["token", "ls"]);
    snap("cli_token_ls_json", &["token", "ls", "-o", "json"]);
    snap("cli_key_status", &["key", "status"]);
    snap("cli_key_status_json", &["key", "status", "-o", "json"]);
    snap("cli_audit_ls", &["audit", "ls"]);
    snap("cli_database_status", &["database", "status"]);
    // Errors: the message on stderr, the code in JSON.
    let run = env.run(&["block", "inspect", "nothing", "-o", "json"]);
    insta::assert_snapshot!("cli_error_json", redact(&env, &run.stderr));
    let run = env.run(&["block", "inspect", "nothing"]);
    insta::assert_snapshot!("cli_error", redact(&env, &run.stderr));
}
