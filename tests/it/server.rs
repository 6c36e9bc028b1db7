//! The HTTP API against a real server process on a loopback port, on SQLite and on
//! PostgreSQL: every route, error codes, token scopes and patterns, the audit trail,
//! planted secrets, a stock Prefect client, and two servers sharing one PostgreSQL.

use std::io::Read;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::{Value, json};

use crate::support::*;

/// A `blockyard server` process; stopped (SIGTERM) when dropped.
pub struct Server {
    child: Child,
    pub base: String,
    log: std::path::PathBuf,
}

impl Server {
    pub fn start(env: &TestEnv, extra: &[&str]) -> Server {
        Server::start_program(env, &[], extra)
    }

    /// A server whose clock is off by `offset` (libfaketime's `+100d`, `-2m`).
    pub fn start_skewed(env: &TestEnv, offset: &str, extra: &[&str]) -> Server {
        Server::start_program(env, &["faketime", "-f", offset], extra)
    }

    fn start_program(env: &TestEnv, wrapper: &[&str], extra: &[&str]) -> Server {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let log = env.dir.path().join(format!("server-{port}.log"));
        let mut args = vec!["server", "--port"];
        let port_text = port.to_string();
        args.push(&port_text);
        args.extend_from_slice(extra);
        let mut command = match wrapper.split_first() {
            None => env.command(&args),
            Some((program, rest)) => {
                let bin = crate::support::BIN;
                env.program(
                    std::path::Path::new(program),
                    &[rest, &[bin], &args].concat(),
                )
            }
        };
        let child = command
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        // Built at once so that a failed start still stops the process (Drop).
        let server = Server {
            child,
            base: format!("http://127.0.0.1:{port}"),
            log,
        };
        for _ in 0..100 {
            if ureq::get(&format!("{}/health", server.base)).call().is_ok() {
                return server;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("server did not start: {}", server.log());
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .arg(self.child.id().to_string())
            .status();
        let _ = self.child.wait();
    }
}

/// A response: status and body (JSON if it parses).
pub struct Reply {
    pub status: u16,
    pub body: Value,
    pub text: String,
    pub etag: Option<String>,
}

pub fn call(
    method: &str,
    url: &str,
    token: Option<&str>,
    body: Option<&Value>,
    headers: &[(&str, &str)],
) -> Reply {
    let mut req = ureq::request(method, url);
    if let Some(token) = token {
        req = req.set("Authorization", &format!("Bearer {token}"));
    }
    for (k, v) in headers {
        req = req.set(k, v);
    }
    let result = match body {
        Some(b) => req.send_json(b.clone()),
        None => req.call(),
    };
    let resp = match result {
        Ok(r) => r,
        Err(ureq::Error::Status(_, r)) => r,
        Err(err) => panic!("{method} {url}: {err}"),
    };
    let status = resp.status();
    let etag = resp.header("ETag").map(str::to_owned);
    let mut text = String::new();
    resp.into_reader()
        .take(10_000_000)
        .read_to_string(&mut text)
        .unwrap();
    let body = serde_json::from_str(&text).unwrap_or(Value::Null);
    Reply {
        status,
        body,
        text,
        etag,
    }
}

/// A client of one server's `/api/v1` with one token (or none):
/// `api.get("/blocks")`, `api.post("/blocks", &body)`, `api.send(...)` for the rest.
pub struct Api {
    pub base: String,
    token: Option<String>,
}

impl Api {
    pub fn new(server: &Server, token: Option<&str>) -> Api {
        Api {
            base: format!("{}/api/v1", server.base),
            token: token.map(str::to_owned),
        }
    }

    pub fn send(
        &self,
        method: &str,
        path: &str,
        body: Option<&Value>,
        headers: &[(&str, &str)],
    ) -> Reply {
        let url = format!("{}{path}", self.base);
        call(method, &url, self.token.as_deref(), body, headers)
    }

    pub fn get(&self, path: &str) -> Reply {
        self.send("GET", path, None, &[])
    }

    pub fn post(&self, path: &str, body: &Value) -> Reply {
        self.send("POST", path, Some(body), &[])
    }

    pub fn put(&self, path: &str, body: &Value) -> Reply {
        self.send("PUT", path, Some(body), &[])
    }
}

pub fn token(env: &TestEnv, name: &str, scopes: &[&str], extra: &[&str]) -> String {
    let mut args = vec!["token", "create", name];
    for s in scopes {
        args.extend(["--scope", s]);
    }
    args.extend_from_slice(extra);
    env.json(&args)["token"].as_str().unwrap().to_owned()
}

fn assert_error(reply: &Reply, status: u16, code: &str) {
    assert_eq!(reply.status, status, "{}", reply.text);
    assert_eq!(reply.body["error"]["code"], code, "{}", reply.text);
    assert!(reply.body["error"]["message"].is_string());
}

const PLANTED: &str = "planted-S3CRET-value";

fn connector(name: &str, password: &str) -> Value {
    json!({"name": name, "block_type": "sqlalchemy-connector", "data": {"connection_info": {
        "driver": "cockroachdb+psycopg2", "database": "sage", "username": "databot",
        "host": "localhost", "port": 26257, "password": password}}})
}

/// An initialized store, a server on it, and a client with an admin token.
fn started(env: &TestEnv) -> (Server, Api, String) {
    env.ok(&["init"]);
    let admin = token(env, "admin", &["admin"], &[]);
    let server = Server::start(env, &[]);
    let api = Api::new(&server, Some(&admin));
    (server, api, admin)
}

on_both_stores!(block_routes, |env: TestEnv| {
    let (server, api, _) = started(&env);

    assert_eq!(
        call("GET", &format!("{}/ready", server.base), None, None, &[]).status,
        200
    );
    let created = api.post("/blocks", &connector("crdb-sage", PLANTED));
    assert_eq!(created.status, 201, "{}", created.text);
    assert_eq!(
        created.body["data"]["connection_info"]["password"],
        "********"
    );
    assert_eq!(created.etag.as_deref(), Some("\"1\""));

    let masked = api.get("/blocks/crdb-sage");
    assert_eq!(
        masked.body["data"]["connection_info"]["password"],
        "********"
    );
    assert!(!masked.text.contains(PLANTED));
    let full = api.get("/blocks/crdb-sage?include_secrets=true");
    assert_eq!(full.body["data"]["connection_info"]["password"], PLANTED);

    // Update with If-Match; the masked password sent back keeps the stored one.
    let mut data = masked.body["data"].clone();
    data["connection_info"]["port"] = json!(26258);
    let updated = api.send(
        "PUT",
        "/blocks/crdb-sage",
        Some(&json!({"data": data})),
        &[("If-Match", "\"1\"")],
    );
    assert_eq!(updated.status, 200, "{}", updated.text);
    assert_eq!(updated.body["version"], 2);
    let stale = api.send(
        "PUT",
        "/blocks/crdb-sage",
        Some(&json!({"data": {"connection_info": "postgresql://x@h/db"}})),
        &[("If-Match", "1")],
    );
    assert_error(&stale, 412, "VERSION_CONFLICT");
    let after = api.get("/blocks/crdb-sage?include_secrets=true");
    assert_eq!(after.body["data"]["connection_info"]["port"], 26258);
    assert_eq!(after.body["data"]["connection_info"]["password"], PLANTED);

    // Listing with cursor pagination, type and prefix filters.
    for i in 0..5 {
        let mut b = connector(&format!("pg-{i}"), "pw");
        b["data"]["connection_info"]["driver"] = json!("postgresql");
        assert_eq!(api.post("/blocks", &b).status, 201);
    }
    let page1 = api.get("/blocks?prefix=pg-&limit=2");
    assert_eq!(page1.body["blocks"].as_array().unwrap().len(), 2);
    let cursor = page1.body["next_cursor"].as_str().unwrap().to_owned();
    let page2 = api.get(&format!("/blocks?prefix=pg-&limit=2&cursor={cursor}"));
    assert_eq!(page2.body["blocks"][0]["name"], "pg-2");
    let page3 = api.get("/blocks?prefix=pg-&limit=2&cursor=pg-3");
    assert_eq!(page3.body["blocks"].as_array().unwrap().len(), 1);
    assert!(page3.body["next_cursor"].is_null());
    let typed = api.get("/blocks?type=secret");
    assert_eq!(typed.body["blocks"].as_array().unwrap().len(), 0);

    // Rename, history, delete.
    let renamed = api.post("/blocks/pg-4/rename", &json!({"new_name": "pg-four"}));
    assert_eq!(renamed.body["name"], "pg-four", "{}", renamed.text);
    let history = api.get("/blocks/crdb-sage/history");
    assert_eq!(history.body["versions"].as_array().unwrap().len(), 2);
    assert!(!history.text.contains(PLANTED));
    assert_eq!(
        api.send("DELETE", "/blocks/pg-four", None, &[("If-Match", "2")])
            .status,
        200
    );
    assert_error(&api.get("/blocks/pg-four"), 404, "BLOCK_NOT_FOUND");
});

on_both_stores!(type_routes_and_openapi, |env: TestEnv| {
    let (_server, api, _) = started(&env);
    // Block types.
    let types = api.get("/block-types");
    assert!(types.body["block_types"].as_array().unwrap().len() >= 4);
    assert_eq!(api.get("/block-types/secret").body["slug"], "secret");
    assert_error(&api.get("/block-types/nope"), 404, "UNKNOWN_BLOCK_TYPE");
    let def = json!({"slug": "api-key", "name": "API key", "secret_fields": ["key"],
        "schema": {"type": "object", "properties": {"key": {"type": "string"}}, "required": ["key"]}});
    assert_eq!(api.post("/block-types", &def).status, 201);
    assert_error(
        &api.post("/block-types", &def),
        409,
        "BLOCK_TYPE_ALREADY_EXISTS",
    );

    // The OpenAPI document names every route the server has.
    let doc = api.get("/openapi.json");
    let paths = doc.body["paths"].as_object().expect("openapi paths");
    for p in [
        "/blocks",
        "/blocks/{name}",
        "/blocks/{name}/rename",
        "/blocks/{name}/history",
        "/block-types",
        "/block-types/{slug}",
        "/audit",
        "/openapi.json",
    ] {
        assert!(
            paths.contains_key(&format!("/api/v1{p}")),
            "{p} missing from openapi.json"
        );
    }
});

on_both_stores!(bad_input_answers_4xx_and_changes_nothing, |env: TestEnv| {
    let (server, api, admin) = started(&env);
    let base = &api.base;
    assert_eq!(
        api.post("/blocks", &connector("crdb-sage", PLANTED)).status,
        201
    );
    // Bad input: all 4xx with a code, and nothing stored changes.
    let before = env.snapshot();
    let huge = json!({"name": "big", "block_type": "json", "data": {"value": "x".repeat(400_000)}});
    let bad: Vec<(Reply, u16, &str)> = vec![
        (
            call("GET", &format!("{base}/blocks"), None, None, &[]),
            401,
            "UNAUTHORIZED",
        ),
        (
            call(
                "GET",
                &format!("{base}/blocks"),
                Some("byd_0123456789abcdef_nope"),
                None,
                &[],
            ),
            401,
            "UNAUTHORIZED",
        ),
        (
            call(
                "GET",
                &format!("{base}/blocks"),
                None,
                None,
                &[("X-Api-Key", &admin)],
            ),
            401,
            "UNAUTHORIZED",
        ),
        (
            call(
                "GET",
                &format!("{base}/blocks"),
                None,
                None,
                &[("Authorization", &admin)],
            ),
            401,
            "UNAUTHORIZED",
        ),
        (
            api.get("/blocks/Bad_Name"),
            400,
            "INVALID_BLOCK_NAME",
        ),
        (
            api.get("/blocks/..%2Fetc%2Fpasswd"),
            400,
            "INVALID_BLOCK_NAME",
        ),
        (
            api.get("/blocks/crdb-sage%00x"),
            400,
            "INVALID_BLOCK_NAME",
        ),
        (
            api.get("/blocks/crdb%2Dsage%20"),
            400,
            "INVALID_BLOCK_NAME",
        ),
        (
            api.get("/blocks/crdb-sage?include_secrets=maybe"),
            400,
            "INVALID_INPUT",
        ),
        (
            api.get("/blocks?limit=0"),
            400,
            "INVALID_INPUT",
        ),
        (
            api.get("/blocks?limit=abc"),
            400,
            "INVALID_INPUT",
        ),
        (
            api.post("/blocks", &connector("crdb-sage", "x")),
            409,
            "BLOCK_ALREADY_EXISTS",
        ),
        (
            api.post("/blocks", &json!({"name": "x", "block_type": "nope", "data": {}})),
            422,
            "UNKNOWN_BLOCK_TYPE",
        ),
        (
            api.post("/blocks", &json!({"name": "x", "block_type": "sqlalchemy-connector", "data": {"connection_info": {"driver": "pg", "database": "d", "port": "5432"}}}),),
            422,
            "INVALID_BLOCK_DATA",
        ),
        (
            api.post("/blocks", &json!({"name": "x", "block_type": "json"})),
            400,
            "INVALID_INPUT",
        ),
        (
            api.post("/blocks", &json!([1, 2])),
            400,
            "INVALID_INPUT",
        ),
        (
            api.post("/blocks", &huge),
            413,
            "PAYLOAD_TOO_LARGE",
        ),
        (
            api.send("PUT", "/blocks/crdb-sage", Some(&json!({"data": {}})), &[("If-Match", "soon")]),
            400,
            "INVALID_INPUT",
        ),
        (
            api.put("/blocks/nope", &json!({"data": {}})),
            404,
            "BLOCK_NOT_FOUND",
        ),
        (
            api.send("DELETE", "/blocks/crdb-sage", None, &[("If-Match", "\"9\"")]),
            412,
            "VERSION_CONFLICT",
        ),
        (
            api.get("/nowhere"),
            404,
            "NOT_FOUND",
        ),
    ];
    for (reply, status, code) in &bad {
        assert_error(reply, *status, code);
    }
    let raw = |content_type: &str, body: &str| {
        let resp = ureq::post(&format!("{base}/blocks"))
            .set("Authorization", &format!("Bearer {admin}"))
            .set("Content-Type", content_type)
            .send_string(body);
        match resp {
            Ok(r) => (r.status(), r.into_string().unwrap()),
            Err(ureq::Error::Status(s, r)) => (s, r.into_string().unwrap()),
            Err(e) => panic!("{e}"),
        }
    };
    let (status, text) = raw("application/json", "{\"name\": \"x\", ");
    assert_eq!(status, 400, "{text}");
    let (status, text) = raw("text/plain", "{}");
    assert_eq!(status, 415, "{text}");
    assert!(text.contains("UNSUPPORTED_MEDIA_TYPE"));
    assert_eq!(env.snapshot(), before, "bad input changed the store");
    assert!(
        !server.log().contains(PLANTED),
        "the planted secret reached the log"
    );
    assert!(!server.log().contains(&admin), "a token reached the log");
});

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
    let api = format!("{}/api/v1", server.base);
    for name in ["crdb-sage", "pg-sage"] {
        assert_eq!(
            call(
                "POST",
                &format!("{api}/blocks"),
                Some(&admin),
                Some(&connector(name, PLANTED)),
                &[]
            )
            .status,
            201
        );
    }
    let get = |token: &str, name: &str, secrets: bool| {
        call(
            "GET",
            &format!("{api}/blocks/{name}?include_secrets={secrets}"),
            Some(token),
            None,
            &[],
        )
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
    let listed = call("GET", &format!("{api}/blocks"), Some(&databot), None, &[]);
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
        call(
            "POST",
            &format!("{api}/blocks"),
            Some(&writer),
            Some(&ci),
            &[]
        )
        .status,
        201
    );
    ci["name"] = json!("prod-db");
    assert_error(
        &call(
            "POST",
            &format!("{api}/blocks"),
            Some(&writer),
            Some(&ci),
            &[],
        ),
        403,
        "FORBIDDEN",
    );
    assert_error(
        &call(
            "DELETE",
            &format!("{api}/blocks/crdb-sage"),
            Some(&reader),
            None,
            &[],
        ),
        403,
        "FORBIDDEN",
    );
    assert_error(
        &call("GET", &format!("{api}/audit"), Some(&reader), None, &[]),
        403,
        "FORBIDDEN",
    );
    let def = json!({"slug": "x-type", "name": "X", "schema": {"type": "object"}});
    assert_error(
        &call(
            "POST",
            &format!("{api}/block-types"),
            Some(&writer),
            Some(&def),
            &[],
        ),
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
    // Thousands of unknown tokens: all 401, never 5xx.
    for i in 0..2000 {
        let fake = format!("byd_{i:016x}_{}", "A".repeat(43));
        assert_eq!(
            call(
                "GET",
                &format!("{api}/blocks/crdb-sage"),
                Some(&fake),
                None,
                &[]
            )
            .status,
            401
        );
    }
    // Bad scopes are refused at creation.
    env.run(&["token", "create", "bad", "--scope", "blocks:delete"])
        .fails_with("INVALID_INPUT");
    env.run(&["token", "create", "bad", "--scope", "blocks:read:UPPER"])
        .fails_with("INVALID_INPUT");
}

#[test]
fn audit_trail_of_secret_reads_and_changes() {
    let env = TestEnv::new(Backend::Postgres);
    env.ok(&["init"]);
    let admin = token(&env, "admin", &["admin"], &[]);
    let databot = token(&env, "databot", &["blocks:read-secrets:crdb-*"], &[]);
    let server = Server::start(&env, &[]);
    let api = format!("{}/api/v1", server.base);
    call(
        "POST",
        &format!("{api}/blocks"),
        Some(&admin),
        Some(&connector("crdb-sage", PLANTED)),
        &[],
    );
    call(
        "POST",
        &format!("{api}/blocks"),
        Some(&admin),
        Some(&connector("pg-sage", PLANTED)),
        &[],
    );
    let read = call(
        "GET",
        &format!("{api}/blocks/crdb-sage?include_secrets=true"),
        Some(&databot),
        None,
        &[("X-Request-Id", "req-42")],
    );
    assert_eq!(read.status, 200);
    call(
        "GET",
        &format!("{api}/blocks/pg-sage?include_secrets=true"),
        Some(&databot),
        None,
        &[],
    );
    call(
        "DELETE",
        &format!("{api}/blocks/pg-sage"),
        Some(&admin),
        None,
        &[],
    );

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
    let over_http = call(
        "GET",
        &format!("{api}/audit?block=crdb-sage"),
        Some(&admin),
        None,
        &[],
    );
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

// A server keeps blocks it has read; every later read must still see each change at
// once, whoever made it (here the CLI, another process on the same store), and be
// audited like the first.
on_both_stores!(kept_reads_see_every_change_at_once, |env: TestEnv| {
    env.ok(&["init"]);
    let databot = token(&env, "databot", &["blocks:read-secrets:crdb-*"], &[]);
    let server = Server::start(&env, &["--block-cache", "1h"]);
    let url = |name: &str| format!("{}/api/v1/blocks/{name}", server.base);
    let password = |name: &str| {
        let reply = call(
            "GET",
            &format!("{}?include_secrets=true", url(name)),
            Some(&databot),
            None,
            &[],
        );
        match reply.status {
            200 => reply.body["data"]["connection_info"]["password"]
                .as_str()
                .unwrap()
                .to_owned(),
            _ => reply.body["error"]["code"].as_str().unwrap().to_owned(),
        }
    };
    let create = |password: &str, extra: &[&str]| {
        let mut args = vec![
            "block",
            "create",
            "crdb-sage",
            "--url",
            "cockroachdb+psycopg2://databot@db.internal:26257/sage",
            "--password-stdin",
        ];
        args.extend_from_slice(extra);
        env.run_stdin(&args, password).success();
    };
    create("first-pw", &[]);
    let id = env.json(&["block", "inspect", "crdb-sage"])["id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(password("crdb-sage"), "first-pw");
    assert_eq!(password("crdb-sage"), "first-pw");

    // An update by another process.
    env.run_stdin(
        &["block", "update", "crdb-sage", "--password-stdin"],
        "second-pw",
    )
    .success();
    assert_eq!(password("crdb-sage"), "second-pw");
    let masked = call("GET", &url("crdb-sage"), Some(&databot), None, &[]);
    assert_eq!(masked.body["version"], 2);
    assert_eq!(
        masked.body["data"]["connection_info"]["password"],
        "********"
    );

    // Deleted and created again with the same id: version 1 again, new contents.
    env.ok(&["block", "delete", "crdb-sage"]);
    assert_eq!(password("crdb-sage"), "BLOCK_NOT_FOUND");
    create("third-pw", &["--id", &id, "--replace-deleted"]);
    assert_eq!(password("crdb-sage"), "third-pw");
    env.run_stdin(&["block", "delete", "crdb-sage"], "")
        .success();
    std::thread::sleep(Duration::from_millis(5));
    create("fourth-pw", &["--id", &id, "--replace-deleted"]);
    assert_eq!(password("crdb-sage"), "fourth-pw");

    // Renamed away: the old name is gone at once.
    env.ok(&["block", "rename", "crdb-sage", "crdb-old"]);
    assert_eq!(password("crdb-sage"), "BLOCK_NOT_FOUND");
    assert_eq!(password("crdb-old"), "fourth-pw");

    // Every read with secrets is on record, the ones answered from memory too.
    let records = env.json(&["audit", "ls", "--limit", "100"]);
    // Repeated successful reads are one record with a count.
    let reads: Vec<(&str, i64)> = records
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["action"] == "read-secrets")
        .map(|r| (r["outcome"].as_str().unwrap(), r["count"].as_i64().unwrap()))
        .collect();
    assert_eq!(reads.iter().map(|r| r.1).sum::<i64>(), 8, "{reads:?}");
    assert_eq!(reads.iter().filter(|r| r.0 == "BLOCK_NOT_FOUND").count(), 2);
});

#[test]
fn two_servers_on_one_postgres_never_lose_a_write() {
    let env = TestEnv::new(Backend::Postgres);
    env.ok(&["init"]);
    let admin = token(&env, "admin", &["admin"], &["--expires-in", "1h"]);
    let one = Server::start(&env, &["--quiet"]);
    let two = Server::start(&env, &["--quiet"]);
    let block = json!({"name": "counter", "block_type": "json", "data": {"value": 0}});
    assert_eq!(
        call(
            "POST",
            &format!("{}/api/v1/blocks", one.base),
            Some(&admin),
            Some(&block),
            &[]
        )
        .status,
        201
    );
    assert_eq!(
        call(
            "GET",
            &format!("{}/api/v1/blocks/counter", two.base),
            Some(&admin),
            None,
            &[]
        )
        .body["data"]["value"],
        0
    );
    let threads: Vec<_> = (0..4)
        .map(|i| {
            let base = if i % 2 == 0 {
                one.base.clone()
            } else {
                two.base.clone()
            };
            let admin = admin.clone();
            std::thread::spawn(move || {
                let url = format!("{base}/api/v1/blocks/counter");
                let mut conflicts = 0;
                for _ in 0..10 {
                    loop {
                        let current = call("GET", &url, Some(&admin), None, &[]);
                        let value = current.body["data"]["value"].as_i64().unwrap();
                        let etag = current.etag.unwrap();
                        let put = call(
                            "PUT",
                            &url,
                            Some(&admin),
                            Some(&json!({"data": {"value": value + 1}})),
                            &[("If-Match", &etag)],
                        );
                        match put.status {
                            200 => break,
                            412 => conflicts += 1,
                            other => panic!("{other}: {}", put.text),
                        }
                    }
                }
                conflicts
            })
        })
        .collect();
    let conflicts: i32 = threads.into_iter().map(|t| t.join().unwrap()).sum();
    let end = call(
        "GET",
        &format!("{}/api/v1/blocks/counter", two.base),
        Some(&admin),
        None,
        &[],
    );
    assert_eq!(end.body["data"]["value"], 40, "a write was lost");
    assert_eq!(end.body["version"], 41);
    eprintln!("{conflicts} conflicts were retried");
}

/// A stock Prefect 3 client (pip-installed; see .ci/run) loads a block from us.
#[test]
fn prefect_client_loads_a_block() {
    let python = std::env::var("BLOCKYARD_TEST_PYTHON").unwrap_or_else(|_| {
        format!(
            "{}/target/prefect-venv/bin/python",
            env!("CARGO_MANIFEST_DIR")
        )
    });
    let env = TestEnv::new(Backend::Sqlite);
    env.ok(&["init"]);
    create_crdb_sage(&env, PLANTED, &["--set-json", r#"pool={"max_size": 4}"#]).success();
    let databot = token(&env, "databot", &["blocks:read-secrets:crdb-*"], &[]);
    let server = Server::start(&env, &[]);
    let script = r#"
from prefect_sqlalchemy import SqlAlchemyConnector
from prefect.blocks.core import Block
c = SqlAlchemyConnector.load("crdb-sage")
print(c.connection_info.port, c.connection_info.database, c.connection_info.password.get_secret_value())
b = Block.load("sqlalchemy-connector/crdb-sage")
print(type(b).__name__, b.connection_info.username)
"#;
    for auth in [
        ("PREFECT_API_KEY", databot.clone()),
        ("PREFECT_API_AUTH_STRING", format!("databot:{databot}")),
    ] {
        let out = Command::new(&python)
            .args(["-c", script])
            .env("PREFECT_API_URL", format!("{}/prefect/api", server.base))
            .env(auth.0, &auth.1)
            .env("PREFECT_HOME", env.dir.path().join("prefect"))
            .output()
            .expect("python with prefect and prefect-sqlalchemy (created by .ci/run)");
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{stdout}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(
            stdout.lines().collect::<Vec<_>>(),
            [
                format!("26257 sage {PLANTED}").as_str(),
                "SqlAlchemyConnector databot"
            ],
            "{}",
            auth.0
        );
    }
    // Without a token, Prefect gets a 401.
    let out = Command::new(&python)
        .args(["-c", "from prefect_sqlalchemy import SqlAlchemyConnector; SqlAlchemyConnector.load('crdb-sage')"])
        .env("PREFECT_API_URL", format!("{}/prefect/api", server.base))
        .env("PREFECT_HOME", env.dir.path().join("prefect"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(!server.log().contains(PLANTED));
}

/// With BLOCKYARD_URL and BLOCKYARD_TOKEN, the same commands go through the API and
/// print the same output with the same exit codes; the library loads blocks and pools
/// through the server too.
#[test]
fn remote_mode_cli_and_library() {
    let env = TestEnv::new(Backend::Sqlite);
    env.run_stdin(
        &[
            "block",
            "create",
            "crdb-sage",
            "--url",
            "postgresql://databot@localhost:26257/sage",
            "--password-stdin",
        ],
        PLANTED,
    )
    .success();
    let admin = token(&env, "ops", &["admin"], &[]);
    let server = Server::start(&env, &["--quiet"]);
    let remote = [
        ("BLOCKYARD_URL", server.base.as_str()),
        ("BLOCKYARD_TOKEN", admin.as_str()),
    ];
    let both = |args: &[&str]| {
        let local = env.run(args);
        let over_http = env.run_with(args, None, &remote);
        assert_eq!(local.code, over_http.code, "{args:?}: {}", over_http.stderr);
        (local, over_http)
    };
    for args in [
        &["block", "ls", "-o", "json"][..],
        &["block", "inspect", "crdb-sage", "-o", "json"],
        &[
            "block",
            "inspect",
            "crdb-sage",
            "--show-secrets",
            "-o",
            "json",
        ],
        &["block", "history", "crdb-sage", "-o", "json"],
        &["block", "url", "crdb-sage"],
        &["block", "env", "crdb-sage", "--format", "libpq"],
        &["type", "ls", "-o", "json"],
    ] {
        let (local, over_http) = both(args);
        assert_eq!(local.stdout, over_http.stdout, "{args:?}");
    }
    for (args, code) in [
        (&["block", "inspect", "nope"][..], "BLOCK_NOT_FOUND"),
        (&["block", "inspect", "Bad Name"], "INVALID_BLOCK_NAME"),
        (
            &[
                "block",
                "update",
                "crdb-sage",
                "--set",
                "connection_info.port=70000",
            ],
            "INVALID_BLOCK_DATA",
        ),
        (
            &[
                "block",
                "update",
                "crdb-sage",
                "--set",
                "connection_info.port=1",
                "--if-version",
                "9",
            ],
            "VERSION_CONFLICT",
        ),
    ] {
        let (local, over_http) = both(args);
        local.fails_with(code);
        over_http.fails_with(code);
    }
    // Changes made remotely land in the server's store.
    env.run_with(
        &[
            "block",
            "update",
            "crdb-sage",
            "--set",
            "connection_info.port=26258",
        ],
        None,
        &remote,
    )
    .success();
    env.run_with(
        &["block", "rename", "crdb-sage", "crdb-main"],
        None,
        &remote,
    )
    .success();
    let local = env.json(&["block", "inspect", "crdb-main", "--show-secrets"]);
    assert_eq!(local["data"]["connection_info"]["port"], 26258);
    assert_eq!(
        local["data"]["connection_info"]["password"], PLANTED,
        "the masked password sent back was kept"
    );
    // A wrong token or an unreachable server: clear errors, exit 1.
    env.run_with(
        &["block", "ls"],
        None,
        &[
            ("BLOCKYARD_URL", server.base.as_str()),
            ("BLOCKYARD_TOKEN", "byd_0000000000000000_x"),
        ],
    )
    .fails_with("UNAUTHORIZED");
    env.run_with(
        &["block", "ls"],
        None,
        &[
            ("BLOCKYARD_URL", "http://127.0.0.1:1"),
            ("BLOCKYARD_TOKEN", "t"),
        ],
    )
    .fails_with("REMOTE_UNAVAILABLE");
    env.run_with(
        &["block", "ls"],
        None,
        &[("BLOCKYARD_URL", "http://127.0.0.1:1")],
    )
    .fails_with("CONFIG_ERROR");
    env.run_with(&["key", "status"], None, &remote)
        .fails_with("CONFIG_ERROR");

    // The library in remote mode: blocks come from the server.
    let config = blockyard::Config::load(blockyard::config::Sources {
        flags: blockyard::config::Settings {
            server_url: Some(server.base.clone()),
            token: Some(admin.clone()),
            data_dir: Some(env.dir.path().join("elsewhere")),
            ..Default::default()
        },
        ..Default::default()
    })
    .unwrap();
    let registry = blockyard::Registry::open(config).unwrap().0;
    let block = registry.load_block("crdb-main").unwrap();
    assert_eq!(
        block.document().unwrap()["connection_info"]["password"],
        PLANTED
    );
    assert_eq!(
        block.masked_data()["connection_info"]["password"],
        "********"
    );
    assert!(
        !format!("{registry:?}{block:?}").contains(&admin),
        "Debug shows the token"
    );
    assert!(
        !env.dir.path().join("elsewhere").exists(),
        "remote mode created a local store"
    );
    assert!(!server.log().contains(PLANTED));
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
        let reply = call(
            "GET",
            &format!("{}{path}", server.base),
            Some(&reader),
            None,
            &[],
        );
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

/// Authentication is the request guard's, not each handler's: every route in the
/// OpenAPI document (and Prefect's version route) answers 401 without a token, with
/// the API's error shape, before reading a body or looking anything up.
#[test]
fn every_route_but_health_needs_a_token() {
    let env = TestEnv::new(Backend::Sqlite);
    env.ok(&["init"]);
    let admin = token(&env, "admin", &["admin"], &[]);
    let server = Server::start(&env, &[]);
    let doc = call(
        "GET",
        &format!("{}/api/v1/openapi.json", server.base),
        Some(&admin),
        None,
        &[],
    );
    let mut checked = 0;
    let mut routes: Vec<(String, String)> =
        vec![("GET".into(), "/prefect/api/admin/version".into())];
    for (path, ops) in doc.body["paths"].as_object().unwrap() {
        for method in ops.as_object().unwrap().keys() {
            routes.push((method.to_uppercase(), path.clone()));
        }
    }
    for (method, path) in routes {
        let path = path
            .replace("{name}", "crdb-sage")
            .replace("{slug}", "sqlalchemy-connector");
        let reply = call(&method, &format!("{}{path}", server.base), None, None, &[]);
        if ["/health", "/ready", "/prefect/api/health"].contains(&path.as_str()) {
            assert_eq!(reply.status, 200, "{method} {path}");
            continue;
        }
        assert_error(&reply, 401, "UNAUTHORIZED");
        checked += 1;
    }
    assert!(checked >= 12, "{checked} routes");
    let bad = call(
        "GET",
        &format!("{}/api/v1/blocks", server.base),
        Some("by_nonsense"),
        None,
        &[],
    );
    assert_error(&bad, 401, "UNAUTHORIZED");
}

/// The Prefect route keeps its rendered document with the kept block, and a change
/// made elsewhere (the CLI) is still seen by the very next read.
#[test]
fn prefect_documents_follow_changes_at_once() {
    let env = TestEnv::new(Backend::Sqlite);
    env.ok(&["init"]);
    create_crdb_sage(&env, PLANTED, &[]).success();
    let bot = token(&env, "databot", &["blocks:read-secrets:crdb-*"], &[]);
    let server = Server::start(&env, &[]);
    let url = format!(
        "{}/prefect/api/block_types/slug/sqlalchemy-connector/block_documents/name/crdb-sage?include_secrets=true",
        server.base
    );
    let port = |reply: &Reply| reply.body["data"]["connection_info"]["port"].clone();
    for _ in 0..2 {
        let reply = call("GET", &url, Some(&bot), None, &[]);
        assert_eq!(reply.status, 200, "{}", reply.text);
        assert_eq!(port(&reply), 26257);
        assert_eq!(reply.body["data"]["connection_info"]["password"], PLANTED);
    }
    env.ok(&[
        "block",
        "update",
        "crdb-sage",
        "--set",
        "connection_info.port=26258",
    ]);
    let reply = call("GET", &url, Some(&bot), None, &[]);
    assert_eq!(port(&reply), 26258, "{}", reply.text);
    let masked = call("GET", &url.replace("true", "false"), Some(&bot), None, &[]);
    assert_eq!(
        masked.body["data"]["connection_info"]["password"],
        "********"
    );
}

/// Text PostgreSQL refuses outright (a NUL byte) in a filter or a type slug is a
/// client error or an empty answer, never a 500 (found by schemathesis).
#[test]
fn nul_bytes_in_filters_and_slugs_are_not_server_errors() {
    let env = TestEnv::new(Backend::Postgres);
    env.ok(&["init"]);
    create_crdb_sage(&env, PLANTED, &[]).success();
    let admin = token(&env, "admin", &["admin"], &[]);
    let server = Server::start(&env, &[]);
    let api = format!("{}/api/v1", server.base);
    for query in ["type=%00x", "prefix=%01%00", "type=%C3%B1"] {
        let reply = call(
            "GET",
            &format!("{api}/blocks?{query}"),
            Some(&admin),
            None,
            &[],
        );
        assert_eq!(reply.status, 200, "{query}: {}", reply.text);
        assert_eq!(reply.body["blocks"], serde_json::json!([]), "{query}");
    }
    let reply = call(
        "GET",
        &format!("{api}/block-types/%00x"),
        Some(&admin),
        None,
        &[],
    );
    assert_eq!(
        reply.body["error"]["code"], "UNKNOWN_BLOCK_TYPE",
        "{}",
        reply.text
    );
    let body = serde_json::json!({"name": "x", "block_type": "a\u{0}b", "data": {}});
    let reply = call(
        "POST",
        &format!("{api}/blocks"),
        Some(&admin),
        Some(&body),
        &[],
    );
    assert_eq!(
        reply.body["error"]["code"], "UNKNOWN_BLOCK_TYPE",
        "{}",
        reply.text
    );
    let reply = call(
        "GET",
        &format!("{api}/audit?block=%00"),
        Some(&admin),
        None,
        &[],
    );
    assert_error(&reply, 400, "INVALID_INPUT");
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
    let reply = call(
        "POST",
        &format!("{}/api/v1/block-types", server.base),
        Some(&admin),
        Some(&body),
        &[],
    );
    assert_eq!(
        reply.body["error"]["code"], "INVALID_BLOCK_TYPE",
        "{}",
        reply.text
    );
    let records = env.json(&["audit", "ls", "--limit", "10"]);
    assert!(records.to_string().contains("type:a\u{FFFD}b"), "{records}");
}
