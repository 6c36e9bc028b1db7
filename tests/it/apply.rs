//! `apply -f`: desired blocks from a YAML (or JSON) file, secrets referenced from the
//! environment or files; plans with masked diffs, a second run that writes nothing,
//! `--prune` that deletes only what it lists, literal secrets refused, and the same
//! through a server in remote mode.

use crate::support::*;

const ENV_SECRET: &str = "planted-APPLY-env-secret";
const FILE_SECRET: &str = "planted-APPLY-file-secret";

const DESIRED: &str = r#"
# What the team's repository holds: no secret in it.
blocks:
  - name: crdb-sage
    type: sqlalchemy-connector
    data:
      connection_info:
        driver: cockroachdb+psycopg2
        database: sage
        username: databot
        host: crdb.example
        port: 26257
        password: {from_env: CRDB_PASSWORD}
  - name: warehouse
    block_type: sqlalchemy-connector
    data:
      connection_info: {from_file: secrets/warehouse.url}
  - name: settings
    type: json
    data: {value: {retries: 3}}
"#;

fn versions(env: &TestEnv) -> Vec<(String, i64)> {
    env.json(&["block", "ls"])
        .as_array()
        .unwrap()
        .iter()
        .map(|b| {
            (
                b["name"].as_str().unwrap().to_owned(),
                b["version"].as_i64().unwrap(),
            )
        })
        .collect()
}

fn apply(env: &TestEnv, file: &std::path::Path, args: &[&str], password: &str) -> Run {
    let mut all = vec!["apply", "-f", file.to_str().unwrap()];
    all.extend(args);
    env.run_with(&all, None, &[("CRDB_PASSWORD", password)])
}

fn setup(env: &TestEnv) -> std::path::PathBuf {
    env.ok(&["init"]);
    std::fs::create_dir_all(env.dir.path().join("secrets")).unwrap();
    write_file(
        &env.dir.path().join("secrets"),
        "warehouse.url",
        &format!("postgresql://loader:{FILE_SECRET}@wh.example:5432/wh\n"),
    );
    write_file(env.dir.path(), "blocks.yaml", DESIRED)
}

on_both_stores!(
    apply_twice_changes_nothing_the_second_time,
    |env: TestEnv| {
        let file = setup(&env);
        let plan = apply(&env, &file, &["--dry-run", "-o", "json"], ENV_SECRET).success();
        let plan: serde_json::Value = serde_json::from_str(&plan.stdout).unwrap();
        assert_eq!(plan["applied"], false);
        assert_eq!(plan["create"].as_array().unwrap().len(), 3, "{plan}");
        assert!(versions(&env).is_empty(), "a dry run wrote blocks");

        let first = apply(&env, &file, &[], ENV_SECRET).success();
        assert!(
            first.stdout.contains("applied: create 3"),
            "{}",
            first.stdout
        );
        let shown = env.json(&["block", "inspect", "crdb-sage", "--show-secrets"]);
        assert_eq!(shown["data"]["connection_info"]["password"], ENV_SECRET);
        let wh = env.json(&["block", "inspect", "warehouse", "--show-secrets"]);
        assert_eq!(
            wh["data"]["connection_info"],
            format!("postgresql://loader:{FILE_SECRET}@wh.example:5432/wh")
        );
        let before = versions(&env);

        let second = apply(&env, &file, &[], ENV_SECRET).success();
        assert!(
            second
                .stdout
                .contains("create 0, update 0, delete 0, unchanged 3"),
            "{}",
            second.stdout
        );
        assert_eq!(versions(&env), before, "a second apply wrote versions");

        // A new secret in the environment is an update, shown masked.
        let rotated = apply(&env, &file, &["--dry-run"], "planted-APPLY-rotated").success();
        assert!(
            rotated
                .stdout
                .contains("connection_info.password: ******** -> ******** (changed)"),
            "{}",
            rotated.stdout
        );
        for run in [&first, &second, &rotated] {
            for secret in [ENV_SECRET, FILE_SECRET, "planted-APPLY-rotated"] {
                assert!(!run.all_output().contains(secret), "{secret} in a plan");
            }
        }
        apply(&env, &file, &[], "planted-APPLY-rotated").success();
        let crdb = versions(&env).into_iter().find(|(n, _)| n == "crdb-sage");
        assert_eq!(crdb, Some(("crdb-sage".to_owned(), 2)));
    }
);

#[test]
fn prune_deletes_only_what_it_lists_and_literal_secrets_are_refused() {
    let env = TestEnv::new(Backend::Sqlite);
    let file = setup(&env);
    apply(&env, &file, &[], ENV_SECRET).success();
    for name in ["crdb-old", "other"] {
        env.ok(&[
            "block",
            "create",
            name,
            "--no-password",
            "--url",
            "postgresql://u@h/d",
        ]);
    }
    let plan = apply(
        &env,
        &file,
        &["--prune", "--prefix", "crdb-", "--dry-run"],
        ENV_SECRET,
    )
    .success();
    assert!(plan.stdout.contains("- delete crdb-old"), "{}", plan.stdout);
    assert!(!plan.stdout.contains("other"), "{}", plan.stdout);
    apply(&env, &file, &["--prune", "--prefix", "crdb-"], ENV_SECRET).success();
    let names: Vec<String> = versions(&env).into_iter().map(|(n, _)| n).collect();
    assert_eq!(names, ["crdb-sage", "other", "settings", "warehouse"]);
    // Pruning is a soft delete.
    env.ok(&["block", "undelete", "crdb-old"]);

    // A secret written in the file is refused, naming the field, and nothing changes.
    let snapshot = env.snapshot();
    let literal = write_file(
        env.dir.path(),
        "literal.yaml",
        &DESIRED.replace("{from_env: CRDB_PASSWORD}", "planted-APPLY-literal"),
    );
    let refused = apply(&env, &literal, &[], ENV_SECRET).fails_with("INVALID_INPUT");
    assert!(
        refused
            .stderr
            .contains("crdb-sage: connection_info.password written in the file"),
        "{}",
        refused.stderr
    );
    assert!(!refused.all_output().contains("planted-APPLY-literal"));
    // An unset variable, a missing file, a typo'd key and a bad name: clear errors.
    let unset = env.run(&["apply", "-f", file.to_str().unwrap()]);
    assert!(
        unset
            .fails_with("INVALID_INPUT")
            .stderr
            .contains("CRDB_PASSWORD is not set")
    );
    for (name, text) in [
        (
            "typo.yaml",
            "blocks:\n  - name: x\n    type: json\n    dat: {}\n",
        ),
        (
            "bad-name.yaml",
            "blocks:\n  - name: Bad Name\n    type: json\n    data: {}\n",
        ),
        (
            "twice.yaml",
            "blocks:\n  - {name: x, type: json, data: {value: 1}}\n  - {name: x, type: json, data: {value: 2}}\n",
        ),
    ] {
        let path = write_file(env.dir.path(), name, text);
        apply(&env, &path, &[], ENV_SECRET).fails_with("INVALID_INPUT");
    }
    let missing = write_file(
        env.dir.path(),
        "missing.yaml",
        "blocks:\n  - {name: x, type: sqlalchemy-connector, data: {connection_info: {from_file: nope.txt}}}\n",
    );
    apply(&env, &missing, &[], ENV_SECRET).fails_with("IO_ERROR");
    assert_eq!(
        env.snapshot(),
        snapshot,
        "a refused apply changed the store"
    );
}

#[test]
fn apply_in_remote_mode_and_a_masked_secret_keeps_the_stored_one() {
    let env = TestEnv::new(Backend::Sqlite);
    let file = setup(&env);
    let full = token(
        &env,
        "deployer",
        &["blocks:write", "blocks:read-secrets"],
        &[],
    );
    let server = Server::start(&env, &[]);
    let remote = [
        ("BLOCKYARD_URL", server.base.as_str()),
        ("BLOCKYARD_TOKEN", full.as_str()),
        ("CRDB_PASSWORD", ENV_SECRET),
    ];
    let path = file.to_str().unwrap();
    let run = env
        .run_with(&["apply", "-f", path], None, &remote)
        .success();
    assert!(run.stdout.contains("applied: create 3"), "{}", run.stdout);
    let again = env
        .run_with(&["apply", "-f", path], None, &remote)
        .success();
    assert!(again.stdout.contains("unchanged 3"), "{}", again.stdout);

    // `********` in the file keeps the secret stored for the block.
    let masked = write_file(
        env.dir.path(),
        "masked.yaml",
        &DESIRED
            .replace("{from_env: CRDB_PASSWORD}", "'********'")
            .replace("crdb.example", "crdb2.example"),
    );
    let run = env
        .run_with(&["apply", "-f", masked.to_str().unwrap()], None, &remote)
        .success();
    assert!(run.stdout.contains("~ update crdb-sage"), "{}", run.stdout);
    let shown = env.json(&["block", "inspect", "crdb-sage", "--show-secrets"]);
    assert_eq!(shown["data"]["connection_info"]["password"], ENV_SECRET);
    assert_eq!(shown["data"]["connection_info"]["host"], "crdb2.example");
    // For a block that does not exist, there is nothing to keep.
    let new = write_file(
        env.dir.path(),
        "new.yaml",
        "blocks:\n  - {name: fresh, type: sqlalchemy-connector, data: {connection_info: {driver: postgresql, database: d, password: '********'}}}\n",
    );
    env.run_with(&["apply", "-f", new.to_str().unwrap()], None, &remote)
        .fails_with("INVALID_INPUT");
    assert!(!server.log().contains(ENV_SECRET));
}

#[test]
fn create_reads_a_yaml_document_and_yaml_errors_show_no_value() {
    let env = TestEnv::new(Backend::Sqlite);
    env.ok(&["init"]);
    let doc = write_file(
        env.dir.path(),
        "doc.yaml",
        "connection_info:\n  driver: postgresql\n  database: app\n  host: db.example\n  port: 5433\n",
    );
    env.ok(&[
        "block",
        "create",
        "from-yaml",
        "--no-password",
        "--type",
        "sqlalchemy-connector",
        "--data",
        doc.to_str().unwrap(),
    ]);
    let shown = env.json(&["block", "inspect", "from-yaml"]);
    assert_eq!(shown["data"]["connection_info"]["port"], 5433);
    let bad = write_file(
        env.dir.path(),
        "bad.yaml",
        "connection_info:\n  password: planted-YAML-secret\n    port: [\n",
    );
    let run = env
        .run(&[
            "block",
            "create",
            "bad",
            "--type",
            "sqlalchemy-connector",
            "--data",
            bad.to_str().unwrap(),
        ])
        .fails_with("INVALID_BLOCK_DATA");
    assert!(run.stderr.contains("nor YAML (line"), "{}", run.stderr);
    assert!(!run.all_output().contains("planted-YAML-secret"));
}
