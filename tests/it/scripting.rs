//! The CLI in scripts and at a terminal (issue 27 #7–#9, #12): plain rows when piped,
//! aligned columns and colour on a pty, `-o name|yaml`, one raw value with `get
//! --field`, completions from the store, "did you mean", and the everyday verbs.

use std::path::Path;

use crate::support::*;

/// Runs `blockyard ARGS` on a pseudo-terminal (`script` from util-linux) of `cols`
/// columns (0: a pty whose size nobody set), with `env`; what the terminal showed,
/// whatever the exit status.
fn on_a_pty(env: &TestEnv, cols: u16, args: &str, vars: &[(&str, &str)]) -> String {
    let line = format!("stty cols {cols} rows 50; {BIN} {args}");
    let mut cmd = env.program(Path::new("script"), &["-qec", &line, "/dev/null"]);
    cmd.env("TERM", "xterm");
    for (k, v) in vars {
        cmd.env(k, v);
    }
    let out = cmd.output().expect("script (util-linux) runs");
    String::from_utf8_lossy(&out.stdout).replace("\r\n", "\n")
}

/// `piped` with each RFC 3339 time as `[time]`.
fn redact_times(piped: &str) -> String {
    let time = regex::Regex::new(r"\d{4}-\d\d-\d\dT[\d:.]+Z").unwrap();
    time.replace_all(piped, "[time]").into_owned()
}

fn two_blocks(env: &TestEnv) {
    create_crdb_sage(env, "s3cr3t", &[]).success();
    create_secret(env, "api-key", "k-123").success();
}

#[test]
fn tables_are_for_people_and_rows_for_pipes() {
    let env = TestEnv::new(Backend::Sqlite);
    two_blocks(&env);
    // Piped: one tab-separated row per block, no header, no borders.
    let piped = env.ok(&["block", "ls"]).stdout;
    let rows: Vec<Vec<&str>> = piped.lines().map(|l| l.split('\t').collect()).collect();
    assert_eq!(rows.len(), 2, "{piped}");
    assert_eq!(rows[0][..3], ["api-key", "secret", "1"]);
    assert_eq!(rows[1][..3], ["crdb-sage", "sqlalchemy-connector", "1"]);
    assert!(
        rows[1][3].ends_with('Z'),
        "times stay RFC 3339 in a pipe: {piped}"
    );
    assert!(!piped.contains('─') && !piped.contains('│'), "{piped}");
    // Names only, and YAML.
    assert_eq!(
        env.ok(&["block", "ls", "-o", "name"]).stdout,
        "api-key\ncrdb-sage\n"
    );
    let yaml = env.ok(&["block", "get", "crdb-sage", "-o", "yaml"]).stdout;
    assert!(yaml.contains("name: crdb-sage\n"), "{yaml}");
    assert!(yaml.contains("password: '********'"), "{yaml}");
    // An empty list says so on stderr; stdout stays empty for the script.
    let none = env.ok(&["block", "ls", "--prefix", "zz"]);
    assert_eq!(none.stdout, "");
    assert!(none.stderr.contains("no blocks match"), "{}", none.stderr);
    // A terminal: a header and aligned columns, times relative; a narrow terminal (or a
    // pty of no known width) lets a line run on, never breaking a cell.
    for cols in [0, 40, 120] {
        let shown = on_a_pty(&env, cols, "block ls", &[]);
        let lines: Vec<&str> = shown.lines().collect();
        assert_eq!(lines.len(), 3, "{cols} columns:\n{shown}");
        assert!(lines[0].starts_with("NAME "), "{shown}");
        assert!(lines[2].starts_with("crdb-sage "), "{shown}");
        assert!(lines[2].contains("sqlalchemy-connector"), "{shown}");
        assert!(
            lines[2].ends_with("ago") || lines[2].ends_with("just now"),
            "{shown}"
        );
        let column = |line: &str| line.find(" secret").or(line.find(" sqlalchemy"));
        assert_eq!(column(lines[1]), column(lines[2]), "aligned:\n{shown}");
    }
    insta::assert_snapshot!("cli_block_ls_terminal", on_a_pty(&env, 0, "block ls", &[]));
    insta::assert_snapshot!("cli_block_ls_piped", redact_times(&piped));
}

#[test]
fn colour_only_where_it_helps_and_never_when_asked_not_to() {
    let env = TestEnv::new(Backend::Sqlite);
    env.ok(&["init"]);
    write_file(
        env.dir.path(),
        "blocks.json",
        r#"{"blocks": [{"name": "conf", "block_type": "json", "data": {"value": 1}}]}"#,
    );
    let plan = on_a_pty(&env, 100, "apply --dry-run --file blocks.json", &[]);
    assert!(
        plan.contains("\x1b[32m+ create conf"),
        "green on a terminal: {plan:?}"
    );
    let plain = on_a_pty(
        &env,
        100,
        "apply --dry-run --file blocks.json",
        &[("NO_COLOR", "1")],
    );
    assert!(
        plain.contains("+ create conf") && !plain.contains('\x1b'),
        "{plain:?}"
    );
    let piped = env
        .ok(&["apply", "--dry-run", "--file", "blocks.json"])
        .stdout;
    assert!(!piped.contains('\x1b'), "{piped:?}");
    let missing = on_a_pty(&env, 100, "block get nothing-here", &[]);
    assert!(
        missing.contains("\x1b[1m\x1b[31merror[BLOCK_NOT_FOUND]"),
        "{missing:?}"
    );
    let missing = env.run(&["block", "get", "nothing-here"]);
    assert!(
        missing.stderr.starts_with("error[BLOCK_NOT_FOUND]"),
        "{}",
        missing.stderr
    );
}

#[test]
fn one_value_raw_from_every_builtin_type() {
    let env = TestEnv::new(Backend::Sqlite);
    two_blocks(&env);
    env.run_stdin(
        &[
            "block",
            "create",
            "by-url",
            "--url",
            "postgresql+psycopg2://app@db.internal:6432/app?sslmode=require",
            "--password-stdin",
        ],
        "p@ss word",
    )
    .success();
    env.run_stdin(
        &[
            "block",
            "create",
            "async-db",
            "--type",
            "async-sqlalchemy-connector",
            "--url",
            "postgresql+asyncpg://app@db.internal/app",
            "--password-stdin",
        ],
        "a-pass",
    )
    .success();
    env.run_stdin(
        &[
            "block",
            "create",
            "es",
            "--type",
            "http-service",
            "--set",
            "url=https://es.internal:9200",
            "--password-stdin",
        ],
        "es-key",
    )
    .success();
    let conf = write_file(
        env.dir.path(),
        "conf.json",
        r#"{"value": {"region": "eu-west-1"}}"#,
    );
    env.ok(&[
        "block",
        "create",
        "conf",
        "--type",
        "json",
        "--data",
        conf.to_str().unwrap(),
    ]);
    let field = |block: &str, path: &str| env.ok(&["block", "get", block, "--field", path]).stdout;
    assert_eq!(field("crdb-sage", "connection_info.password"), "s3cr3t");
    assert_eq!(field("crdb-sage", "connection_info.port"), "26257");
    assert_eq!(field("crdb-sage", "connection_info.host"), "localhost");
    assert_eq!(field("by-url", "connection_info.password"), "p@ss word");
    assert_eq!(field("by-url", "connection_info.port"), "6432");
    assert_eq!(field("by-url", "connection_info.query.sslmode"), "require");
    assert_eq!(field("async-db", "connection_info.password"), "a-pass");
    assert_eq!(field("api-key", "value"), "k-123");
    assert_eq!(field("es", "api_key"), "es-key");
    assert_eq!(field("es", "url"), "https://es.internal:9200");
    assert_eq!(field("conf", "value.region"), "eu-west-1");
    assert_eq!(field("conf", "value"), r#"{"region":"eu-west-1"}"#);
    let json = env.json(&[
        "block",
        "get",
        "crdb-sage",
        "--field",
        "connection_info.port",
    ]);
    assert_eq!(json, serde_json::json!(26257));
    let missing = env
        .run(&[
            "block",
            "get",
            "crdb-sage",
            "--field",
            "connection_info.passwd",
        ])
        .fails_with("FIELD_NOT_FOUND");
    assert!(
        missing.stderr.contains("connection_info.password"),
        "{}",
        missing.stderr
    );
    assert!(
        !missing.all_output().contains("s3cr3t"),
        "{}",
        missing.all_output()
    );
}

#[test]
fn a_mistyped_name_or_type_is_answered_with_the_closest() {
    let env = TestEnv::new(Backend::Sqlite);
    two_blocks(&env);
    let said = |args: &[&str], code: &str| env.run(args).fails_with(code).stderr;
    let near = said(&["block", "get", "crdb-sag"], "BLOCK_NOT_FOUND");
    assert!(near.contains(r#"did you mean "crdb-sage"?"#), "{near}");
    let upper = said(&["block", "test", "CRDB-SAGE"], "INVALID_BLOCK_NAME");
    assert!(upper.contains(r#"did you mean "crdb-sage"?"#), "{upper}");
    let slug = said(
        &["block", "ls", "--type", "sqlalchemy"],
        "UNKNOWN_BLOCK_TYPE",
    );
    assert!(
        slug.contains(r#"did you mean "sqlalchemy-connector""#),
        "{slug}"
    );
    let plural = said(&["block", "ls", "--type", "secrets"], "UNKNOWN_BLOCK_TYPE");
    assert!(plural.contains(r#""secret""#), "{plural}");
    let far = said(&["block", "get", "kafka"], "BLOCK_NOT_FOUND");
    assert!(!far.contains("did you mean"), "{far}");
}

/// The README's completions line works in a fresh home; a Tab completes block names,
/// type slugs and token names from the store.
#[test]
fn completions_come_from_the_store() {
    let env = TestEnv::new(Backend::Sqlite);
    let complete = |words: &str| {
        let word_list: Vec<&str> = words.split(' ').collect();
        let script = format!(
            "source <({BIN} completions bash)\nCOMP_WORDS=({words}); COMP_CWORD={}; \
             COMP_TYPE=9\n_clap_complete_blockyard blockyard '{}' x\n\
             printf '%s\\n' \"${{COMPREPLY[@]}}\"",
            word_list.len() - 1,
            word_list.last().unwrap()
        );
        let out = env
            .program(Path::new("bash"), &["-c", &script])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    };
    // No store yet: nothing offered, and none created by asking.
    assert_eq!(complete("blockyard block get crdb"), "");
    assert!(!env.data_dir().join("blockyard.db").exists());
    two_blocks(&env);
    env.ok(&["token", "create", "ci-bot", "--scope", "blocks:read"]);
    assert_eq!(complete("blockyard block get crdb"), "crdb-sage");
    assert_eq!(complete("blockyard block test a"), "api-key");
    assert_eq!(
        complete("blockyard block ls --type sqla"),
        "sqlalchemy-connector"
    );
    assert_eq!(complete("blockyard token revoke c"), "ci-bot");
    // The README's line, as pasted in a fresh home.
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let line = readme
        .lines()
        .find(|l| l.contains("completions bash"))
        .expect("the README shows how to install completions");
    let line = line
        .split('#')
        .next()
        .unwrap()
        .replace("blockyard completions", &format!("{BIN} completions"));
    let out = env
        .program(Path::new("bash"), &["-c", &line])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{line}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn everyday_verbs_say_what_comes_next() {
    let env = TestEnv::new(Backend::Sqlite);
    two_blocks(&env);
    env.ok(&[
        "block",
        "update",
        "crdb-sage",
        "--set",
        "connection_info.port=26258",
    ]);
    // rollback takes the version as diff does; --to-version still works.
    env.ok(&["block", "rollback", "crdb-sage", "1"]);
    assert_eq!(
        env.ok(&[
            "block",
            "get",
            "crdb-sage",
            "--field",
            "connection_info.port"
        ])
        .stdout,
        "26257"
    );
    env.ok(&["block", "rollback", "crdb-sage", "--to-version", "2"]);
    let deleted = env.ok(&["block", "delete", "api-key"]).stdout;
    assert!(
        deleted.contains("blockyard block undelete api-key"),
        "{deleted}"
    );
    for (args, example) in [
        (&["block", "ls", "--help"][..], "blockyard block ls -o name"),
        (
            &["block", "get", "--help"],
            "--field connection_info.password",
        ),
        (&["block", "update", "--help"], "--set pool.max_size=5"),
        (&["block", "delete", "--help"], "blockyard block undelete"),
        (
            &["block", "history", "--help"],
            "blockyard block rollback crdb-sage 2",
        ),
        (
            &["block", "test", "--help"],
            "blockyard block test crdb-sage",
        ),
        (
            &["audit", "ls", "--help"],
            "blockyard audit ls --block crdb-sage",
        ),
        (&["db", "drop", "--help"], "blockyard db drop app"),
        (&["server", "--help"], "/ui"),
    ] {
        let help = env.ok(args).stdout;
        assert!(help.contains(example), "{args:?}:\n{help}");
    }
}

/// Issue 27 #11: with an admin token, `token` and `audit` work through a server as on
/// the store; `update --set pool.max_size=5` needs only blocks:write; a refusal names
/// the scope that is missing.
#[test]
fn the_cli_through_a_server_does_what_it_does_on_the_store() {
    let env = TestEnv::new(Backend::Sqlite);
    create_crdb_sage(&env, "remote-PLANTED-pw", &[]).success();
    let admin = token(&env, "root", &["admin"], &[]);
    let writer = token(&env, "writer", &["blocks:write", "blocks:read"], &[]);
    let server = Server::start(&env, &[]);
    let as_token = |token: &str, args: &[&str]| server.cli(&env, token, args);
    // Tokens: create (only the token on stdout), list, revoke; the new one works.
    let made = as_token(&admin, &["token", "create", "ci", "--scope", "blocks:read"]).success();
    let ci = made.stdout.trim().to_owned();
    assert!(ci.starts_with("by_") || ci.len() > 20, "{}", made.stdout);
    assert_eq!(
        as_token(&ci, &["block", "ls", "-o", "name"])
            .success()
            .stdout,
        "crdb-sage\n"
    );
    let listed = as_token(&admin, &["token", "ls", "-o", "name"])
        .success()
        .stdout;
    assert_eq!(
        listed.lines().collect::<Vec<_>>(),
        ["ci", "root", "writer"],
        "{listed}"
    );
    as_token(&admin, &["token", "revoke", "ci"]).success();
    as_token(&ci, &["block", "ls"]).fails_with("UNAUTHORIZED");
    // The audit log, listed and exported; the token's creation and revocation are in it.
    let records = as_token(&admin, &["audit", "ls", "-o", "json"])
        .success()
        .stdout;
    let records: serde_json::Value = serde_json::from_str(&records).unwrap();
    let actions: Vec<&str> = records
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|r| r["action"].as_str())
        .collect();
    assert!(
        actions.contains(&"create-token") && actions.contains(&"revoke-token"),
        "{records}"
    );
    let exported = as_token(&admin, &["audit", "export"]).success().stdout;
    assert!(exported.lines().count() >= 2, "{exported}");
    assert!(!exported.contains("remote-PLANTED-pw"));
    // Without admin: refused, naming the scope.
    let refused = as_token(&writer, &["token", "ls"]).fails_with("FORBIDDEN");
    assert!(refused.stderr.contains("admin"), "{}", refused.stderr);
    // blocks:write without blocks:read-secrets: the pool may change, the destination
    // may not (it would take the stored password elsewhere).
    let pool = as_token(
        &writer,
        &["block", "update", "crdb-sage", "--set", "pool.max_size=5"],
    );
    pool.success();
    let shown = env.json(&["block", "get", "crdb-sage", "--show-secrets"]);
    assert_eq!(shown["data"]["pool"]["max_size"], 5);
    assert_eq!(
        shown["data"]["connection_info"]["password"],
        "remote-PLANTED-pw"
    );
    let moved = as_token(
        &writer,
        &[
            "block",
            "update",
            "crdb-sage",
            "--set",
            "connection_info.host=evil.example",
        ],
    )
    .fails_with("FORBIDDEN");
    assert!(
        moved.stderr.contains("blocks:read-secrets"),
        "{}",
        moved.stderr
    );
    let secrets =
        as_token(&writer, &["block", "get", "crdb-sage", "--show-secrets"]).fails_with("FORBIDDEN");
    assert!(
        secrets.stderr.contains("(needs blocks:read-secrets)"),
        "{}",
        secrets.stderr
    );
    for run in [&refused, &moved, &secrets] {
        assert!(!run.all_output().contains("remote-PLANTED-pw"));
    }
}

/// Issue 27 #10: `login` keeps a server and token for every later command (checked
/// first; nothing kept on a refusal), `status` says where the CLI points, `logout`
/// forgets; the token is in the OS keyring where there is one, else in a 0600 file.
#[test]
fn login_status_and_logout() {
    let env = TestEnv::new(Backend::Sqlite);
    create_secret(&env, "api-key", "k").success();
    let reader = token(&env, "reader", &["blocks:read"], &[]);
    let server = Server::start(&env, &[]);
    let login_file = env.dir.path().join("config/blockyard/login.toml");
    let local = env.json(&["status"]);
    assert_eq!(local["mode"], "local", "{local}");
    // A refused token, or none: nothing is kept.
    let login = ["login", server.base.as_str(), "--token-stdin"];
    env.run_stdin(&login, "by_not-a-token")
        .fails_with("UNAUTHORIZED");
    env.run_stdin(&login, "\n").fails_with("INVALID_INPUT");
    env.run(&["login", server.base.as_str()])
        .fails_with("INVALID_INPUT");
    assert!(!login_file.exists());
    // Kept: every command now goes to the server, with no variable set.
    let said = env.run_stdin(&login, &reader).success();
    assert!(
        said.stdout.contains(r#"as token "reader""#),
        "{}",
        said.stdout
    );
    assert!(
        !said.all_output().contains(&reader),
        "the token is never printed"
    );
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&login_file).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
    let status = env.json(&["status"]);
    assert_eq!(
        (status["mode"].as_str(), status["token"].as_str()),
        (Some("server"), Some("reader"))
    );
    assert_eq!(status["scopes"], serde_json::json!(["blocks:read"]));
    env.run(&["block", "get", "api-key", "--show-secrets"])
        .fails_with("FORBIDDEN");
    let rows = env.ok(&["block", "ls", "-o", "name"]).stdout;
    assert_eq!(rows, "api-key\n");
    // The variables win over the login.
    server
        .cli(&env, "by_wrong", &["status"])
        .fails_with("UNAUTHORIZED");
    let out = env.ok(&["logout"]);
    assert!(out.stdout.contains("Logged out of"), "{}", out.stdout);
    assert!(!login_file.exists());
    assert_eq!(env.json(&["status"])["mode"], "local");
    env.ok(&["block", "get", "api-key", "--show-secrets"]);
    // With a Secret Service, the token goes there and the file holds only the URL.
    let out = in_keyring_session(
        &env,
        &format!(
            "B='{BIN}'\n\"$B\" login {} --token-stdin <<< '{reader}'\n\"$B\" status -o json\n\
             cat '{}'\n\"$B\" logout",
            server.base,
            login_file.display()
        ),
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("kept in the OS keyring"), "{stdout}");
    assert!(stdout.contains(r#""token": "reader""#), "{stdout}");
    assert!(
        !stdout.contains(&reader),
        "the file holds no token: {stdout}"
    );
}

/// Issue 27 #12: `block ls --deleted` lists what `undelete` can bring back, who deleted
/// it and when, on the store and through a server (only names the token may read).
#[test]
fn deleted_blocks_are_listed_until_they_come_back() {
    let env = TestEnv::new(Backend::Sqlite);
    two_blocks(&env);
    env.ok(&["block", "delete", "api-key"]);
    let listed = env.json(&["block", "ls", "--deleted"]);
    assert_eq!(listed.as_array().unwrap().len(), 1, "{listed}");
    assert_eq!(listed[0]["name"], "api-key");
    assert_eq!(listed[0]["deleted_by"], serde_json::Value::Null);
    let rows = env.ok(&["block", "ls", "--deleted"]).stdout;
    assert!(
        rows.starts_with("api-key\tsecret\t2\t") && rows.trim_end().ends_with("\tlocal"),
        "{rows}"
    );
    // Through a server: deleted by a token, listed by name for tokens that may read it.
    let writer = token(&env, "writer", &["blocks:write", "blocks:read"], &[]);
    let narrow = token(&env, "narrow", &["blocks:read:crdb-*"], &[]);
    let server = Server::start(&env, &[]);
    let remote = |token: &str, args: &[&str]| server.cli(&env, token, args);
    remote(&writer, &["block", "delete", "crdb-sage"]).success();
    let names = remote(&writer, &["block", "ls", "--deleted", "-o", "name"])
        .success()
        .stdout;
    assert_eq!(names, "api-key\ncrdb-sage\n");
    let by = remote(&writer, &["block", "ls", "--deleted", "-o", "json"])
        .success()
        .stdout;
    assert!(by.contains(r#""deleted_by": "writer""#), "{by}");
    let theirs = remote(&narrow, &["block", "ls", "--deleted", "-o", "name"])
        .success()
        .stdout;
    assert_eq!(
        theirs, "crdb-sage\n",
        "a name the token may not read is never listed"
    );
    env.ok(&["block", "undelete", "api-key"]);
    assert_eq!(
        env.ok(&["block", "ls", "--deleted", "-o", "name"]).stdout,
        "crdb-sage\n"
    );
}
