//! Undoing: `block rollback` writes a version equal to an older one (secrets included),
//! `block delete` keeps the history and `block undelete` brings the block back, `block
//! purge` destroys it with every version; on both stores, and over HTTP.

use crate::support::*;

fn password(env: &TestEnv) -> String {
    env.json(&["block", "inspect", "crdb-sage", "--show-secrets"])["data"]["connection_info"]
        ["password"]
        .as_str()
        .unwrap()
        .to_owned()
}

on_both_stores!(rollback_delete_undelete_purge, |env: TestEnv| {
    create_crdb_sage(&env, "first-secret", &[]).success();
    env.ok(&[
        "block",
        "update",
        "crdb-sage",
        "--set",
        "connection_info.port=5432",
    ]);
    update_password(&env, "crdb-sage", "second-secret");
    let id = env.json(&["block", "inspect", "crdb-sage"])["id"]
        .as_str()
        .unwrap()
        .to_owned();

    let back = env.json(&["block", "rollback", "crdb-sage", "--to-version", "1"]);
    assert_eq!(back["version"], 4, "{back}");
    assert_eq!(back["data"]["connection_info"]["port"], 26257);
    assert_eq!(password(&env), "first-secret");
    env.run(&["block", "rollback", "crdb-sage", "--to-version", "9"])
        .fails_with("INVALID_INPUT");
    env.run(&[
        "block",
        "rollback",
        "crdb-sage",
        "--to-version",
        "2",
        "--if-version",
        "3",
    ])
    .fails_with("VERSION_CONFLICT");

    env.ok(&["block", "delete", "crdb-sage"]);
    env.run(&["block", "inspect", "crdb-sage"])
        .fails_with("BLOCK_NOT_FOUND");
    // The name is free: another block may take it, and then the deleted one cannot
    // come back under it.
    env.run_stdin(
        &[
            "block",
            "create",
            "crdb-sage",
            "--type",
            "secret",
            "--password-stdin",
        ],
        "x",
    )
    .success();
    env.run(&["block", "undelete", "crdb-sage"])
        .fails_with("BLOCK_ALREADY_EXISTS");
    env.ok(&["block", "purge", "crdb-sage", "--yes"]);

    // Undelete brings back the block deleted before (same id, secrets, history).
    let undeleted = env.json(&["block", "undelete", "crdb-sage"]);
    assert_eq!(undeleted["id"], id.as_str(), "{undeleted}");
    assert_eq!(undeleted["version"], 6);
    assert_eq!(password(&env), "first-secret");
    let history = env.json(&["block", "history", "crdb-sage"]);
    let changes: Vec<&str> = history
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["change"].as_str().unwrap())
        .collect();
    assert_eq!(
        changes,
        [
            "create", "update", "update", "rollback", "delete", "undelete"
        ]
    );

    // Purge: refused without --yes, then gone with every version.
    env.run(&["block", "purge", "crdb-sage"])
        .fails_with("INVALID_INPUT");
    env.ok(&["block", "purge", "crdb-sage", "--yes"]);
    env.run(&["block", "undelete", "crdb-sage"])
        .fails_with("BLOCK_NOT_FOUND");
    let left = env.sql(&format!(
        "DELETE FROM block_versions WHERE block_id = '{id}'"
    ));
    assert_eq!(left, 0, "purge left versions behind");
});

#[test]
fn undo_over_http_and_in_remote_mode() {
    use serde_json::json;
    let env = TestEnv::new(Backend::Sqlite);
    env.ok(&["init"]);
    create_crdb_sage(&env, "first-secret", &[]).success();
    update_password(&env, "crdb-sage", "second-secret");
    let admin = token(&env, "ops", &["admin"], &[]);
    let writer = token(&env, "writer", &["blocks:write:crdb-*"], &[]);
    let full = token(&env, "full", &["blocks:write", "blocks:read-secrets"], &[]);
    let server = Server::start(&env, &[]);
    let (admin_api, writer_api, full_api) = (
        Api::new(&server, Some(&admin)),
        Api::new(&server, Some(&writer)),
        Api::new(&server, Some(&full)),
    );
    let to_first = json!({"to_version": 1});
    let refused = writer_api.post("/blocks/crdb-sage/rollback", &to_first);
    assert_eq!(refused.status, 403, "{}", refused.text);
    let back = full_api.post("/blocks/crdb-sage/rollback", &to_first);
    assert_eq!(
        (back.status, &back.body["version"]),
        (200, &json!(3)),
        "{}",
        back.text
    );
    assert_eq!(password(&env), "first-secret");
    assert!(!back.text.contains("first-secret"));

    assert_eq!(
        writer_api
            .send("DELETE", "/blocks/crdb-sage", None, &[])
            .status,
        200
    );
    let again = writer_api.send("POST", "/blocks/crdb-sage/undelete", None, &[]);
    assert_eq!(
        (again.status, &again.body["version"]),
        (200, &json!(5)),
        "{}",
        again.text
    );
    assert_eq!(password(&env), "first-secret");
    // History says who made each version: the token over HTTP, `local` on the store.
    let history = env.json(&["block", "history", "crdb-sage"]);
    let by: Vec<(i64, Option<&str>)> = history
        .as_array()
        .unwrap()
        .iter()
        .map(|v| (v["version"].as_i64().unwrap(), v["actor"].as_str()))
        .collect();
    assert_eq!(
        by,
        [
            (1, None),
            (2, None),
            (3, Some("full")),
            (4, Some("writer")),
            (5, Some("writer"))
        ],
        "{history}"
    );
    let table = env.ok(&["block", "history", "crdb-sage"]).stdout;
    assert!(
        table.contains("\twriter\t") && table.contains("\tlocal\t"),
        "{table}"
    );

    // In remote mode the CLI does the same through the server.
    let remote = [
        ("BLOCKYARD_URL", server.base.as_str()),
        ("BLOCKYARD_TOKEN", full.as_str()),
    ];
    let run = env.run_with(
        &[
            "block",
            "rollback",
            "crdb-sage",
            "--to-version",
            "2",
            "-o",
            "json",
        ],
        None,
        &remote,
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(password(&env), "second-secret");

    let purge = writer_api.send("POST", "/blocks/crdb-sage/purge", None, &[]);
    assert_eq!(purge.status, 403, "{}", purge.text);
    let purged = admin_api.send("POST", "/blocks/crdb-sage/purge", None, &[]);
    assert_eq!(purged.status, 200, "{}", purged.text);
    let gone = admin_api.send("POST", "/blocks/crdb-sage/undelete", None, &[]);
    assert_eq!(gone.status, 404, "{}", gone.text);
    let audit = admin_api.get("/audit?limit=50").text;
    for action in ["rollback", "undelete", "purge"] {
        assert!(
            audit.contains(&format!("\"action\":\"{action}\"")),
            "{action}: {audit}"
        );
    }
    let log = server.log();
    assert!(
        !log.contains("first-secret") && !log.contains("second-secret"),
        "{log}"
    );
}
