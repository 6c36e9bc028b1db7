//! The rough edges a new user hit in everyday use (issue 9), each checked against the
//! real binary: closed pipes, usage errors as JSON, honest codes and messages, exec's
//! exit codes and clients, SQLite blocks, history and diff, help, database status and
//! the request log.

use std::process::Stdio;

use diesel::Connection;

use crate::support::*;

fn crdb_sage(env: &TestEnv) {
    create_crdb_sage(env, "s3cr3t", &[]).success();
}

/// `blockyard block ls | head -1`: a reader that has gone is not a panic.
#[test]
fn a_closed_stdout_ends_quietly() {
    let env = TestEnv::new(Backend::Sqlite);
    crdb_sage(&env);
    for args in [
        &["block", "ls"][..],
        &["block", "inspect", "crdb-sage"],
        &["type", "inspect", "sqlalchemy-connector"],
        &["completions", "bash"],
    ] {
        for _ in 0..3 {
            let (reader, writer) = std::io::pipe().unwrap();
            drop(reader);
            let out = env
                .command(args)
                .stdout(writer)
                .stderr(Stdio::piped())
                .output()
                .unwrap();
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert_eq!(out.status.code(), Some(0), "{args:?}: {stderr}");
            assert!(stderr.is_empty(), "{args:?}: {stderr}");
        }
    }
}

#[test]
fn usage_errors_are_json_with_json_output() {
    let env = TestEnv::new(Backend::Sqlite);
    for (args, extra) in [
        (&["-o", "json", "block", "create"][..], None),
        (&["block", "create", "--output=json"], None),
        (&["block", "nosuch"], Some(("BLOCKYARD_OUTPUT", "json"))),
    ] {
        let extra: Vec<(&str, &str)> = extra.into_iter().collect();
        let run = env.run_with(args, None, &extra);
        assert_eq!(run.code, 2, "{args:?}: {}", run.stderr);
        let error: serde_json::Value = serde_json::from_str(run.stderr.trim())
            .unwrap_or_else(|_| panic!("not JSON: {}", run.stderr));
        assert_eq!(error["error"]["code"], "USAGE_ERROR");
        assert!(!error["error"]["message"].as_str().unwrap().is_empty());
    }
    // Tables keep clap's own text, and exit 2.
    let run = env.run(&["block", "create"]);
    assert_eq!(run.code, 2);
    assert!(run.stderr.contains("Usage:"), "{}", run.stderr);
}

#[test]
fn a_port_in_use_names_the_port_flag() {
    let env = TestEnv::new(Backend::Sqlite);
    env.ok(&["init"]);
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port().to_string();
    let run = env.run(&["server", "--port", &port]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(!run.stderr.contains("\"listening\""), "{}", run.stderr);
    let last = run.stderr.trim_end().lines().last().unwrap();
    assert!(last.starts_with("error[ADDRESS_UNAVAILABLE]"), "{last}");
    assert!(last.contains("--port"), "{last}");
}

#[test]
fn messages_say_what_to_do_and_do_not_repeat_their_code() {
    let env = TestEnv::new(Backend::Sqlite);
    env.ok(&["init"]);
    // An unencoded '/' in the password.
    let run = env
        .run(&[
            "block",
            "create",
            "db",
            "--no-password",
            "--url",
            "postgres://app:pa/ss@db.internal:5432/app",
        ])
        .fails_with("INVALID_BLOCK_DATA");
    assert!(run.stderr.contains("percent-encode"), "{}", run.stderr);
    assert!(run.stderr.contains("--password-stdin"), "{}", run.stderr);
    assert!(!run.stderr.contains("pa/ss"), "{}", run.stderr);
    // A configuration error says so once.
    let run = env
        .run_with(
            &["block", "ls"],
            None,
            &[("BLOCKYARD_POOL_MAX_SIZE", "many")],
        )
        .fails_with("CONFIG_ERROR");
    assert!(
        !run.stderr.to_lowercase().contains("configuration error"),
        "{}",
        run.stderr
    );
    // A requirement is checked when written, not reported NOT MET later.
    env.run(&[
        "block",
        "create",
        "pg",
        "--no-password",
        "--url",
        "postgresql://u@127.0.0.1/db",
        "--set-json",
        r#"requires={"server_version": "13+"}"#,
    ])
    .fails_with("INVALID_BLOCK_DATA");
    // A refused connection reads as sentences.
    let port = closed_port();
    env.ok(&[
        "block",
        "create",
        "closed",
        "--no-password",
        "--url",
        &format!("postgresql://u@127.0.0.1:{port}/db"),
    ]);
    let run = env
        .run(&["block", "test", "closed"])
        .fails_with("HOST_UNREACHABLE");
    assert!(
        run.stderr
            .contains("Connection refused. Is the server running"),
        "{}",
        run.stderr
    );
    // A missing extension says how to add it, without nested parentheses.
    env.ok(&[
        "block",
        "create",
        "ext",
        "--no-password",
        "--url",
        &crate::support::pg_admin_url(),
        "--set-json",
        r#"requires={"extensions": ["no_such_ext"]}"#,
    ]);
    let run = env
        .run(&["block", "test", "ext"])
        .fails_with("REQUIREMENT_NOT_MET");
    assert!(
        run.stderr
            .contains("extension no_such_ext: not installed; CREATE EXTENSION no_such_ext adds it"),
        "{}",
        run.stderr
    );
}

#[test]
fn exec_exit_codes_follow_the_shell() {
    let env = TestEnv::new(Backend::Sqlite);
    env.ok(&[
        "block",
        "create",
        "pg",
        "--no-password",
        "--url",
        "postgresql://u@127.0.0.1/db",
    ]);
    env.run(&["exec", "pg", "--", "nosuchprogram-blockyard"])
        .exits_with(127, "PROGRAM_NOT_FOUND");
    let script = write_file(env.dir.path(), "not-executable.sh", "echo hi\n");
    env.run(&["exec", "pg", "--", script.to_str().unwrap()])
        .exits_with(126, "PROGRAM_NOT_EXECUTABLE");
    let run = env.run(&["exec", "pg", "--", "sh", "-c", "exit 7"]);
    assert_eq!(run.code, 7);
}

#[test]
fn printing_variables_needs_no_driver() {
    let env = TestEnv::new(Backend::Sqlite);
    env.ok(&["init"]);
    env.ok(&[
        "block",
        "create",
        "mssql",
        "--no-password",
        "--url",
        "mssql+pyodbc://u@sqlhost:1433/db",
    ]);
    let vars = env.json(&["block", "env", "mssql"]);
    assert_eq!(vars["DATABASE_HOST"], "sqlhost");
    assert_eq!(vars["DATABASE_PORT"], "1433");
}

/// Creates an SQLite block for this file.
fn sqlite_block(env: &TestEnv, name: &str, path: &std::path::Path) {
    env.ok(&[
        "block",
        "create",
        name,
        "--no-password",
        "--url",
        &format!("sqlite:///{}", path.display()),
    ]);
}

#[test]
fn sqlite_blocks_are_tested_without_creating_files_and_print_one_url() {
    let env = TestEnv::new(Backend::Sqlite);
    let missing = env.dir.path().join("typo.db");
    sqlite_block(&env, "typo", &missing);
    let run = env
        .run(&["block", "test", "typo"])
        .fails_with("DATABASE_NOT_FOUND");
    assert!(run.stderr.contains("never creates"), "{}", run.stderr);
    assert!(
        !missing.exists(),
        "block test created {}",
        missing.display()
    );
    let nodir = env.dir.path().join("nodir/x.db");
    sqlite_block(&env, "nodir", &nodir);
    let run = env
        .run(&["block", "test", "nodir"])
        .fails_with("DATABASE_NOT_FOUND");
    assert!(!run.stderr.contains("localhost:0"), "{}", run.stderr);
    assert!(run.stderr.contains("nodir"), "{}", run.stderr);

    let real = env.dir.path().join("real.db");
    diesel::SqliteConnection::establish(real.to_str().unwrap()).unwrap();
    sqlite_block(&env, "real", &real);
    env.ok(&["block", "test", "real"]);
    let url = env.ok(&["block", "url", "real"]).stdout.trim().to_owned();
    assert_eq!(url, format!("sqlite:///{}", real.display()));
    assert_eq!(env.json(&["block", "env", "real"])["DATABASE_URL"], url);
    let run = env.ok(&["exec", "real", "--", "sh", "-c", "echo \"$DATABASE_URL\""]);
    assert_eq!(run.stdout.trim(), url);
}

#[test]
fn history_shows_changes_diff_compares_and_noop_updates_write_nothing() {
    let env = TestEnv::new(Backend::Sqlite);
    crdb_sage(&env);
    env.ok(&[
        "block",
        "update",
        "crdb-sage",
        "--set",
        "connection_info.port=26258",
    ]);
    let run = env.ok(&[
        "block",
        "update",
        "crdb-sage",
        "--set",
        "connection_info.port=26258",
    ]);
    assert!(run.stdout.contains("unchanged"), "{}", run.stdout);
    env.run_stdin(
        &["block", "update", "crdb-sage", "--password-stdin"],
        "n3w-P4ss",
    )
    .success();
    env.run_stdin(
        &["block", "update", "crdb-sage", "--password-stdin"],
        "n3w-P4ss",
    )
    .success();
    let history = env.json(&["block", "history", "crdb-sage"]);
    let versions = history.as_array().unwrap();
    assert_eq!(versions.len(), 3, "{history}");
    assert_eq!(versions[1]["changes"][0]["path"], "connection_info.port");
    assert_eq!(versions[1]["changes"][0]["before"], 26257);
    assert_eq!(versions[1]["changes"][0]["after"], 26258);
    assert_eq!(
        versions[2]["changes"][0]["path"],
        "connection_info.password"
    );
    assert_eq!(versions[2]["changes"][0]["secret"], true);
    let table = env.ok(&["block", "history", "crdb-sage"]).stdout;
    assert!(
        table.contains("connection_info.port: 26257 → 26258"),
        "{table}"
    );
    let diff = env.ok(&["block", "diff", "crdb-sage", "1", "3"]).stdout;
    assert!(diff.contains("26257") && diff.contains("26258"), "{diff}");
    assert!(diff.contains("(changed)"), "{diff}");
    for out in [&table, &diff] {
        assert!(
            !out.contains("s3cr3t") && !out.contains("n3w-P4ss"),
            "{out}"
        );
    }
    let diff = env.json(&["block", "diff", "crdb-sage"]);
    assert_eq!(diff["from"], 2);
    assert_eq!(diff["changes"].as_array().unwrap().len(), 1, "{diff}");
    env.run(&["block", "diff", "crdb-sage", "9"])
        .fails_with("INVALID_INPUT");
}

/// Every argument and option of every command says what it is.
#[test]
fn help_describes_everything_and_groups_global_options() {
    use clap::CommandFactory;
    fn walk(cmd: &clap::Command, path: &str, missing: &mut Vec<String>) {
        for arg in cmd.get_arguments() {
            let id = arg.get_id().as_str();
            if id != "help" && id != "version" && arg.get_help().is_none() {
                missing.push(format!("{path} {id}"));
            }
        }
        for sub in cmd.get_subcommands() {
            if sub.get_about().is_none() {
                missing.push(format!("{path} {} (no summary)", sub.get_name()));
            }
            walk(sub, &format!("{path} {}", sub.get_name()), missing);
        }
    }
    let mut missing = Vec::new();
    walk(&blockyard::cli::Cli::command(), "blockyard", &mut missing);
    assert!(missing.is_empty(), "without help text: {missing:?}");

    let env = TestEnv::new(Backend::Sqlite);
    let help = env.ok(&["block", "rename", "--help"]).stdout;
    let (own, global) = help.split_once("Global options:").expect(&help);
    assert!(
        own.contains("--if-version") && !own.contains("--database-url"),
        "{help}"
    );
    assert!(global.contains("--database-url"), "{help}");
    assert!(!help.contains("BLOCKYARD_OUTPUT="), "{help}");
    let version = env.ok(&["--version"]).stdout;
    assert!(version.contains("(commit "), "{version}");
}

#[test]
fn database_status_lists_migrations_oldest_first_with_dates() {
    let env = TestEnv::new(Backend::Sqlite);
    env.ok(&["init"]);
    let status = env.json(&["database", "status"]);
    let migrations = status["migrations"].as_array().unwrap();
    assert!(migrations.len() >= 2, "{status}");
    let names: Vec<&str> = migrations
        .iter()
        .map(|m| m["name"].as_str().unwrap())
        .collect();
    let mut sorted = names.clone();
    sorted.sort();
    assert_eq!(names, sorted);
    assert!(
        migrations.iter().all(|m| m["applied_at"]
            .as_str()
            .is_some_and(|d| d.starts_with("20"))),
        "{status}"
    );
}

#[test]
fn the_request_log_shows_decoded_block_names() {
    let env = TestEnv::new(Backend::Sqlite);
    crdb_sage(&env);
    let token = env.json(&["token", "create", "bot", "--scope", "blocks:read"])["token"]
        .as_str()
        .unwrap()
        .to_owned();
    let server = Server::start(&env, &[]);
    let reply = Api::new(&server, Some(&token)).get("/blocks/crdb%2Dsage");
    assert_eq!(reply.status, 200, "{}", reply.text);
    let log = server.log();
    assert!(log.contains("/api/v1/blocks/crdb-sage"), "{log}");
    assert!(!log.contains(&token), "{log}");
}

/// A flow's errors are Blockyard's: classified, one sentence, and at once when the
/// cause is certain (the block's pool timeout is a minute; the message shows that the
/// pool did not retry it out).
#[test]
fn flows_get_classified_errors() {
    let env = TestEnv::new(Backend::Sqlite);
    let port = closed_port();
    env.ok(&[
        "block",
        "create",
        "down",
        "--no-password",
        "--url",
        &format!("postgresql://u@127.0.0.1:{port}/db"),
        "--set-json",
        r#"pool={"connection_timeout": "60s"}"#,
    ]);
    let user = unique("bt_flow");
    let mut admin = diesel::PgConnection::establish(&pg_admin_url()).unwrap();
    diesel::RunQueryDsl::execute(
        diesel::sql_query(format!(
            "CREATE ROLE {user} LOGIN IN ROLE blockyard_password_auth PASSWORD {}",
            literal(AWKWARD)
        )),
        &mut admin,
    )
    .unwrap();
    let mut url = url::Url::parse(&pg_admin_url()).unwrap();
    url.set_username(&user).unwrap();
    env.run_stdin(
        &[
            "block",
            "create",
            "wrong",
            "--url",
            url.as_str(),
            "--password-stdin",
            "--set-json",
            r#"pool={"connection_timeout": "60s"}"#,
        ],
        "not-the-password",
    )
    .success();
    let registry = env.registry("30s");
    for (name, code) in [
        ("down", "HOST_UNREACHABLE"),
        ("wrong", "AUTHENTICATION_FAILED"),
    ] {
        let Err(err) = registry.pool::<diesel::PgConnection>(name).unwrap().get() else {
            panic!("{name} connected");
        };
        assert_eq!(err.code(), code, "{err}");
        let debug = format!("{err:?}");
        assert!(debug.starts_with(&format!("error[{code}]: ")), "{debug}");
        assert!(
            !debug.contains("retried for") && !debug.contains("Error(Some"),
            "{debug}"
        );
        assert!(!debug.contains("not-the-password"), "{debug}");
    }
    let missing = registry.pool::<diesel::PgConnection>("nosuch").unwrap_err();
    assert_eq!(
        format!("{missing:?}").split(':').next(),
        Some("error[BLOCK_NOT_FOUND]")
    );
    let _ =
        diesel::RunQueryDsl::execute(diesel::sql_query(format!("DROP ROLE {user}")), &mut admin);
}

/// `blockyard completions` and `blockyard man` work without a store.
#[test]
fn completions_and_man_pages() {
    let env = TestEnv::new(Backend::Sqlite);
    for shell in ["bash", "zsh", "fish"] {
        let out = env.ok(&["completions", shell]).stdout;
        assert!(out.contains("blockyard"), "{shell}");
    }
    let page = env.ok(&["man"]).stdout;
    assert!(
        page.starts_with(".ie") || page.contains(".TH blockyard 1"),
        "{page}"
    );
    let dir = env.dir.path().join("man1");
    env.ok(&["man", "--dir", dir.to_str().unwrap()]);
    assert!(dir.join("blockyard-block-create.1").is_file());
    assert!(!env.data_dir().exists(), "no store for docs commands");
}

/// Issue 27 #2: a masked document never becomes the password (`create --data` of an
/// `inspect -o json`, or the API), and #4: `token create` prints only the token.
#[test]
fn the_mask_is_never_stored_and_token_create_prints_only_the_token() {
    let env = TestEnv::new(Backend::Sqlite);
    crdb_sage(&env);
    let shown = env
        .ok(&["block", "inspect", "crdb-sage", "--output", "json"])
        .stdout;
    let file = write_file(env.dir.path(), "x.json", &shown);
    let run = env
        .run(&["block", "create", "copy", "--data", file.to_str().unwrap()])
        .fails_with("INVALID_INPUT");
    assert!(run.stderr.contains("mask"), "{}", run.stderr);
    let token = env.run(&[
        "token", "create", "ci", "--scope", "admin", "--output", "table",
    ]);
    let token = token.success();
    assert_eq!(token.stdout.trim().lines().count(), 1, "{}", token.stdout);
    assert!(token.stdout.starts_with("byd_"), "{}", token.stdout);
    assert!(token.stderr.contains("store it now"), "{}", token.stderr);
    let server = Server::start(&env, &[]);
    let api = Api::new(&server, Some(token.stdout.trim()));
    let mut body: serde_json::Value = serde_json::from_str(&shown).unwrap();
    body["name"] = "copy".into();
    let body =
        serde_json::json!({"name": "copy", "block_type": body["block_type"], "data": body["data"]});
    assert_eq!(api.post("/blocks", &body).status, 400);
}

/// Issue 27 #1: a connection is never created without its password by accident.
#[test]
fn a_connection_is_not_created_without_its_password_by_accident() {
    let env = TestEnv::new(Backend::Sqlite);
    env.ok(&["init"]);
    let url = "postgres://app@db.internal:5432/app";
    // Piped into a command that does not read stdin, or nothing at all: refused.
    for stdin in ["hunter2\n", ""] {
        let refused = env
            .run_stdin(&["block", "create", "pg-2", "--url", url], stdin)
            .fails_with("INVALID_INPUT");
        assert!(
            refused.stderr.contains("--no-password"),
            "{}",
            refused.stderr
        );
    }
    // --password-stdin with an unset variable: an empty stdin is refused.
    env.run_stdin(
        &["block", "create", "pg-2", "--url", url, "--password-stdin"],
        "\n",
    )
    .fails_with("INVALID_INPUT");
    env.run(&["block", "inspect", "pg-2"])
        .fails_with("BLOCK_NOT_FOUND");
    // Said so: created without one. A password in the URL's query counts as one.
    env.ok(&["block", "create", "pg-2", "--url", url, "--no-password"]);
    env.run_stdin(
        &["block", "create", "pg-3", "--url", url, "--password-stdin"],
        "hunter2\n",
    )
    .success();
    env.ok(&["block", "create", "lite", "--url", "sqlite:////tmp/x.db"]);
}
