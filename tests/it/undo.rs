//! Undoing: `block rollback` writes a version equal to an older one (secrets included),
//! `block delete` keeps the history and `block undelete` brings the block back, `block
//! purge` destroys it with every version; on both stores, and over HTTP.

use crate::connect::update_password;
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
