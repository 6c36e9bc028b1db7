//! Bad input gets a clear, coded, one-line error, and the store is unchanged after it.

use crate::support::*;

fn seed(env: &TestEnv) {
    env.run_stdin(
        &[
            "block",
            "create",
            "crdb-sage",
            "--url",
            "cockroachdb+psycopg2://databot@localhost:26257/sage",
            "--password-stdin",
        ],
        "seed-secret",
    )
    .success();
    env.run_stdin(
        &[
            "block",
            "create",
            "token",
            "--type",
            "secret",
            "--password-stdin",
        ],
        "token-secret",
    )
    .success();
}

/// Each command fails with its code, shows neither seeded secret, and changes nothing.
fn refused(env: &TestEnv, cases: &[(&[&str], &str)]) {
    seed(env);
    let before = env.snapshot();
    for (args, code) in cases {
        let run = env.run(args).fails_with(code);
        assert!(
            !run.all_output().contains("seed-secret") && !run.all_output().contains("token-secret")
        );
    }
    assert_eq!(
        env.snapshot(),
        before,
        "a rejected command changed the store"
    );
}

on_both_stores!(bad_names_and_types_are_refused, |env: TestEnv| {
    refused(
        &env,
        &[
            (
                &["block", "create", "Crdb", "--type", "secret"],
                "INVALID_BLOCK_NAME",
            ),
            (
                &["block", "create", "_x", "--type", "secret"],
                "INVALID_BLOCK_NAME",
            ),
            (
                &["block", "create", "--type", "secret", "--", "-x"],
                "INVALID_BLOCK_NAME",
            ),
            (
                &["block", "create", "a/b", "--type", "secret"],
                "INVALID_BLOCK_NAME",
            ),
            (
                &["block", "create", &"a".repeat(129), "--type", "secret"],
                "INVALID_BLOCK_NAME",
            ),
            (
                &["block", "rename", "crdb-sage", "Crdb Sage"],
                "INVALID_BLOCK_NAME",
            ),
            (&["block", "inspect", "../etc"], "INVALID_BLOCK_NAME"),
            (
                &["block", "create", "x", "--type", "no-such-type"],
                "UNKNOWN_BLOCK_TYPE",
            ),
        ],
    );
});

on_both_stores!(bad_block_data_is_refused, |env: TestEnv| {
    let bad_json = write_file(env.dir.path(), "bad.json", "{\"value\": [1, 2");
    let not_object = write_file(env.dir.path(), "list.json", "[1, 2]");
    refused(
        &env,
        &[
            (
                &[
                    "block",
                    "create",
                    "x",
                    "--type",
                    "json",
                    "--data",
                    bad_json.to_str().unwrap(),
                ],
                "INVALID_BLOCK_DATA",
            ),
            (
                &[
                    "block",
                    "create",
                    "x",
                    "--type",
                    "json",
                    "--data",
                    not_object.to_str().unwrap(),
                ],
                "INVALID_BLOCK_DATA",
            ),
            (
                &[
                    "block",
                    "create",
                    "x",
                    "--type",
                    "json",
                    "--set-json",
                    "value={oops",
                ],
                "INVALID_INPUT",
            ),
        ],
    );
});

on_both_stores!(bad_connection_info_is_refused, |env: TestEnv| {
    refused(
        &env,
        &[
            (
                &[
                    "block",
                    "create",
                    "x",
                    "--type",
                    "sqlalchemy-connector",
                    "--set",
                    "connection_info.driver=postgresql",
                    "--set",
                    "connection_info.database=d",
                    "--set",
                    "connection_info.port=abc",
                ],
                "INVALID_BLOCK_DATA",
            ),
            (
                &[
                    "block",
                    "create",
                    "x",
                    "--type",
                    "sqlalchemy-connector",
                    "--set",
                    "connection_info.driver=postgresql",
                    "--set",
                    "connection_info.database=d",
                    "--set-json",
                    "connection_info.port=\"5432\"",
                ],
                "INVALID_BLOCK_DATA",
            ),
            (
                &[
                    "block",
                    "create",
                    "x",
                    "--type",
                    "sqlalchemy-connector",
                    "--set",
                    "connection_info.driver=postgresql",
                    "--set",
                    "connection_info.database=d",
                    "--set",
                    "connection_info.port=70000",
                ],
                "INVALID_BLOCK_DATA",
            ),
            (
                &[
                    "block",
                    "create",
                    "x",
                    "--type",
                    "sqlalchemy-connector",
                    "--set",
                    "connection_info.driver=postgresql",
                ],
                "INVALID_BLOCK_DATA",
            ),
            (
                &["block", "create", "x", "--url", "postgres://h:0/sage"],
                "INVALID_BLOCK_DATA",
            ),
            (
                &["block", "create", "x", "--url", "not a url"],
                "INVALID_BLOCK_DATA",
            ),
            (
                &[
                    "block",
                    "create",
                    "x",
                    "--type",
                    "sqlalchemy-connector",
                    "--set",
                    "connection_info=postgresql://nohost:0/db",
                ],
                "INVALID_BLOCK_DATA",
            ),
            (
                &[
                    "block",
                    "create",
                    "x",
                    "--type",
                    "sqlalchemy-connector",
                    "--set",
                    "connection_info.prot=1",
                ],
                "INVALID_BLOCK_DATA",
            ),
            (
                &[
                    "block",
                    "create",
                    "x",
                    "--type",
                    "sqlalchemy-connector",
                    "--set",
                    "connection_info.password=on-the-command-line",
                ],
                "INVALID_INPUT",
            ),
            (
                &["block", "create", "x", "--type", "secret", "--set", "nope"],
                "INVALID_INPUT",
            ),
        ],
    );
});

on_both_stores!(bad_changes_and_settings_are_refused, |env: TestEnv| {
    refused(
        &env,
        &[
            (
                &[
                    "block",
                    "create",
                    "crdb-sage",
                    "--type",
                    "json",
                    "--set-json",
                    "value=\"dup\"",
                ],
                "BLOCK_ALREADY_EXISTS",
            ),
            (
                &[
                    "block",
                    "update",
                    "crdb-sage",
                    "--set",
                    "connection_info.port=0",
                ],
                "INVALID_BLOCK_DATA",
            ),
            (
                &["block", "update", "crdb-sage", "--set", "fetch_size=-1"],
                "INVALID_BLOCK_DATA",
            ),
            (
                &["block", "update", "crdb-sage", "--set", "nope.deeper=1"],
                "INVALID_BLOCK_DATA",
            ),
            (
                &["block", "update", "crdb-sage", "--unset", "connection_info"],
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
                    "7",
                ],
                "VERSION_CONFLICT",
            ),
            (
                &["block", "rename", "crdb-sage", "token"],
                "BLOCK_ALREADY_EXISTS",
            ),
            (
                &["block", "delete", "crdb-sage", "--if-version", "9"],
                "VERSION_CONFLICT",
            ),
            (
                &["block", "update", "missing", "--set", "x=1"],
                "BLOCK_NOT_FOUND",
            ),
            (
                &["--database-url", "mysql://root@127.0.0.1/x", "block", "ls"],
                "INVALID_DATABASE_URL",
            ),
            (
                &[
                    "--key-file",
                    "/nonexistent/key",
                    "block",
                    "inspect",
                    "token",
                    "--show-secrets",
                ],
                "MASTER_KEY_MISSING",
            ),
        ],
    );
});

on_both_stores!(usage_errors_exit_2, |env: TestEnv| {
    seed(&env);
    let before = env.snapshot();
    assert_eq!(env.run(&["block", "create"]).code, 2);
    assert_eq!(env.run(&["block", "frobnicate"]).code, 2);
    assert_eq!(
        env.run(&["block", "update", "crdb-sage", "--if-version", "abc"])
            .code,
        2
    );
    assert_eq!(env.snapshot(), before, "a usage error changed the store");
});

on_both_stores!(json_errors_have_the_api_shape, |env: TestEnv| {
    seed(&env);
    let run = env.run(&["block", "inspect", "nope", "--output", "json"]);
    assert_eq!(run.code, 1);
    let err: serde_json::Value = serde_json::from_str(&run.stderr).unwrap();
    assert_eq!(err["error"]["code"], "BLOCK_NOT_FOUND");
    assert!(err["error"]["message"].as_str().unwrap().contains("nope"));
});
