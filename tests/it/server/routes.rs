//! The `/api/v1` routes on SQLite and PostgreSQL: blocks, types and the OpenAPI document,
//! bad input answered 4xx with nothing changed, authentication on every route.

use serde_json::json;

use super::{PLANTED, connector, started};
use crate::support::*;

on_both_stores!(block_routes, |env: TestEnv| {
    let (server, api, _) = started(&env);

    assert_eq!(Api::root(&server, None).get("/ready").status, 200);
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

// A request without a usable token is refused before anything else, and says nothing
// of what exists.
on_both_stores!(requests_without_a_good_token_are_refused, |env: TestEnv| {
    let (_server, api, admin) = started(&env);
    let anonymous = api.with_token(None);
    let refused = [
        anonymous.get("/blocks"),
        api.with_token(Some("byd_0123456789abcdef_nope"))
            .get("/blocks"),
        anonymous.send("GET", "/blocks", None, &[("X-Api-Key", &admin)]),
        anonymous.send("GET", "/blocks", None, &[("Authorization", &admin)]),
    ];
    for reply in &refused {
        assert_error(reply, 401, "UNAUTHORIZED");
    }
});

// Bad input is answered 4xx with its code, and nothing stored changes; neither the
// planted secret nor the token reaches the server's log.
on_both_stores!(bad_input_answers_4xx_and_changes_nothing, |env: TestEnv| {
    let (server, api, admin) = started(&env);
    assert_eq!(
        api.post("/blocks", &connector("crdb-sage", PLANTED)).status,
        201
    );
    let before = env.snapshot();
    let huge = json!({"name": "big", "block_type": "json", "data": {"value": "x".repeat(400_000)}});
    let bad_data = json!({"name": "x", "block_type": "sqlalchemy-connector",
        "data": {"connection_info": {"driver": "pg", "database": "d", "port": "5432"}}});
    let bad: Vec<(Reply, u16, &str)> = vec![
        (api.get("/blocks/Bad_Name"), 400, "INVALID_BLOCK_NAME"),
        (
            api.get("/blocks/..%2Fetc%2Fpasswd"),
            400,
            "INVALID_BLOCK_NAME",
        ),
        (api.get("/blocks/crdb-sage%00x"), 400, "INVALID_BLOCK_NAME"),
        (api.get("/blocks/crdb%2Dsage%20"), 400, "INVALID_BLOCK_NAME"),
        (
            api.get("/blocks/crdb-sage?include_secrets=maybe"),
            400,
            "INVALID_INPUT",
        ),
        (api.get("/blocks?limit=0"), 400, "INVALID_INPUT"),
        (api.get("/blocks?limit=abc"), 400, "INVALID_INPUT"),
        (
            api.post("/blocks", &connector("crdb-sage", "x")),
            409,
            "BLOCK_ALREADY_EXISTS",
        ),
        (
            api.post(
                "/blocks",
                &json!({"name": "x", "block_type": "nope", "data": {}}),
            ),
            422,
            "UNKNOWN_BLOCK_TYPE",
        ),
        (api.post("/blocks", &bad_data), 422, "INVALID_BLOCK_DATA"),
        (
            api.post("/blocks", &json!({"name": "x", "block_type": "json"})),
            400,
            "INVALID_INPUT",
        ),
        (api.post("/blocks", &json!([1, 2])), 400, "INVALID_INPUT"),
        (api.post("/blocks", &huge), 413, "PAYLOAD_TOO_LARGE"),
        (
            api.send(
                "PUT",
                "/blocks/crdb-sage",
                Some(&json!({"data": {}})),
                &[("If-Match", "soon")],
            ),
            400,
            "INVALID_INPUT",
        ),
        (
            api.put("/blocks/nope", &json!({"data": {}})),
            404,
            "BLOCK_NOT_FOUND",
        ),
        (
            api.send(
                "DELETE",
                "/blocks/crdb-sage",
                None,
                &[("If-Match", "\"9\"")],
            ),
            412,
            "VERSION_CONFLICT",
        ),
        (api.get("/nowhere"), 404, "NOT_FOUND"),
        (
            api.send_text("POST", "/blocks", "application/json", "{\"name\": \"x\", "),
            400,
            "INVALID_INPUT",
        ),
        (
            api.send_text("POST", "/blocks", "text/plain", "{}"),
            415,
            "UNSUPPORTED_MEDIA_TYPE",
        ),
    ];
    for (reply, status, code) in &bad {
        assert_error(reply, *status, code);
    }
    assert_eq!(env.snapshot(), before, "bad input changed the store");
    assert!(
        !server.log().contains(PLANTED),
        "the planted secret reached the log"
    );
    assert!(!server.log().contains(&admin), "a token reached the log");
});

/// Authentication is the request guard's, not each handler's: every route in the
/// OpenAPI document (and Prefect's version route) answers 401 without a token, with
/// the API's error shape, before reading a body or looking anything up.
#[test]
fn every_route_but_health_needs_a_token() {
    let env = TestEnv::new(Backend::Sqlite);
    env.ok(&["init"]);
    let admin = token(&env, "admin", &["admin"], &[]);
    let server = Server::start(&env, &[]);
    let doc = Api::new(&server, Some(&admin)).get("/openapi.json");
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
        let reply = Api::root(&server, None).send(&method, &path, None, &[]);
        if ["/health", "/ready", "/prefect/api/health"].contains(&path.as_str()) {
            assert_eq!(reply.status, 200, "{method} {path}");
            continue;
        }
        assert_error(&reply, 401, "UNAUTHORIZED");
        checked += 1;
    }
    assert!(checked >= 12, "{checked} routes");
    let bad = Api::new(&server, Some("by_nonsense")).get("/blocks");
    assert_error(&bad, 401, "UNAUTHORIZED");
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
    let api = Api::new(&server, None);
    for query in ["type=%00x", "prefix=%01%00", "type=%C3%B1"] {
        let reply = api
            .with_token(Some(&admin))
            .get(&format!("/blocks?{query}"));
        assert_eq!(reply.status, 200, "{query}: {}", reply.text);
        assert_eq!(reply.body["blocks"], serde_json::json!([]), "{query}");
    }
    let reply = api.with_token(Some(&admin)).get("/block-types/%00x");
    assert_eq!(
        reply.body["error"]["code"], "UNKNOWN_BLOCK_TYPE",
        "{}",
        reply.text
    );
    let body = serde_json::json!({"name": "x", "block_type": "a\u{0}b", "data": {}});
    let reply = api.with_token(Some(&admin)).post("/blocks", &body);
    assert_eq!(
        reply.body["error"]["code"], "UNKNOWN_BLOCK_TYPE",
        "{}",
        reply.text
    );
    let reply = api.with_token(Some(&admin)).get("/audit?block=%00");
    assert_error(&reply, 400, "INVALID_INPUT");
}
