//! Issue 10's attacks, each shown failing: a write-only token redirecting a stored
//! secret, changes that outrun their audit record, tampered ciphertext, secrets in odd
//! places, listings and ids that leak, a stray `.env`, wrong keys, loose files.

use crate::support::*;
use serde_json::{Value, json};

const PLANTED: &str = "planted-H4RDEN-secret";

fn masked_doc(server: &Server, tok: &str) -> Value {
    let reply = Api::new(server, Some(tok)).get("/blocks/crdb-sage");
    assert_eq!(reply.status, 200, "{}", reply.text);
    reply.body["data"].clone()
}

fn put(server: &Server, tok: &str, data: &Value) -> Reply {
    Api::new(server, Some(tok)).put("/blocks/crdb-sage", &json!({ "data": data }))
}

// 1. A write-only token cannot send the stored password to a host of its choosing.
on_both_stores!(
    write_only_token_cannot_redirect_a_kept_secret,
    |env: TestEnv| {
        env.ok(&["init"]);
        create_crdb_sage(&env, PLANTED, &[]).success();
        let writer = token(&env, "writer", &["blocks:write:crdb-*"], &[]);
        let trusted = token(
            &env,
            "trusted",
            &["blocks:write:crdb-*", "blocks:read-secrets:crdb-*"],
            &[],
        );
        let server = Server::start(&env, &[]);
        let original = masked_doc(&server, &writer);
        assert_eq!(original["connection_info"]["password"], "********");

        for (field, value) in [
            ("host", json!("attacker.example")),
            ("port", json!(5432)),
            ("driver", json!("postgresql+psycopg2")),
            ("database", json!("other")),
            ("username", json!("someone")),
        ] {
            let mut moved = original.clone();
            moved["connection_info"][field] = value;
            let reply = put(&server, &writer, &moved);
            assert_error(&reply, 403, "FORBIDDEN");
            assert!(reply.text.contains(field), "{}", reply.text);
        }
        // Nothing moved: the stored block is as it was, at version 1.
        let shown = env.json(&["block", "inspect", "crdb-sage"]);
        assert_eq!(shown["version"], 1, "{shown}");
        assert_eq!(shown["data"]["connection_info"]["host"], "localhost");
        let refused = env.json(&["audit", "ls", "--block", "crdb-sage"]);
        assert!(
            refused
                .as_array()
                .unwrap()
                .iter()
                .any(|r| r["action"] == "update" && r["outcome"] == "FORBIDDEN"),
            "{refused}"
        );

        // Changing something that is not a destination, keeping the secret, is fine.
        let mut tuned = original.clone();
        tuned["fetch_size"] = json!(5);
        assert_eq!(put(&server, &writer, &tuned).status, 200);
        // Sending the secret anew lets the write-only token move the block.
        let mut fresh = masked_doc(&server, &writer);
        fresh["connection_info"]["host"] = json!("db2.internal");
        fresh["connection_info"]["password"] = json!("a-new-password");
        assert_eq!(put(&server, &writer, &fresh).status, 200);
        // A token that may read the secret may move it.
        let mut moved = masked_doc(&server, &trusted);
        moved["connection_info"]["host"] = json!("db3.internal");
        assert_eq!(put(&server, &trusted, &moved).status, 200);
        let secret = env.json(&["block", "inspect", "crdb-sage", "--show-secrets"]);
        assert_eq!(secret["data"]["connection_info"]["host"], "db3.internal");
        assert_eq!(
            secret["data"]["connection_info"]["password"],
            "a-new-password"
        );
    }
);

fn refuse_audit_inserts(env: &TestEnv) {
    match env.backend {
        Backend::Sqlite => env.sql(
            "CREATE TRIGGER no_audit BEFORE INSERT ON audit_log \
             BEGIN SELECT RAISE(ABORT, 'audit log refused'); END",
        ),
        Backend::Postgres => {
            env.sql(
                "CREATE FUNCTION no_audit() RETURNS trigger AS $$ BEGIN \
                 RAISE EXCEPTION 'audit log refused'; END $$ LANGUAGE plpgsql",
            );
            env.sql(
                "CREATE TRIGGER no_audit BEFORE INSERT ON audit_log \
                 FOR EACH ROW EXECUTE FUNCTION no_audit()",
            )
        }
    };
}

// 2. A change whose audit record cannot be written does not happen.
on_both_stores!(
    changes_commit_only_with_their_audit_record,
    |env: TestEnv| {
        env.ok(&["init"]);
        create_crdb_sage(&env, PLANTED, &[]).success();
        let admin = token(&env, "admin", &["admin"], &[]);
        let server = Server::start(&env, &[]);
        let before = env.snapshot();
        refuse_audit_inserts(&env);
        let api = Api::new(&server, Some(&admin));
        let mut doc = masked_doc(&server, &admin);
        doc["connection_info"]["port"] = json!(26258);
        let new = json!({"name": "crdb-new", "block_type": "json", "data": {"value": {"a": 1}}});
        let replies = [
            put(&server, &admin, &doc),
            api.post("/blocks", &new),
            api.post(
                "/blocks/crdb-sage/rename",
                &json!({"new_name": "crdb-renamed"}),
            ),
            api.delete("/blocks/crdb-sage"),
            api.post(
                "/block-types",
                &json!({"slug": "my-type", "name": "Mine", "schema": {"type": "object"}}),
            ),
        ];
        for reply in &replies {
            assert_error(reply, 503, "AUDIT_UNAVAILABLE");
            assert!(!reply.text.contains(PLANTED));
        }
        assert_eq!(env.snapshot(), before, "a change took effect unaudited");
        let types = env.json(&["type", "ls"]);
        assert!(!types.to_string().contains("my-type"), "{types}");
    }
);

fn secret_of(env: &TestEnv) -> Run {
    env.run(&["block", "inspect", "crdb-sage", "--show-secrets"])
}

// 3. Sealed secrets are bound to their block's version and document.
on_both_stores!(
    sealed_secrets_are_bound_to_version_and_document,
    |env: TestEnv| {
        env.ok(&["init"]);
        create_crdb_sage(&env, PLANTED, &[]).success();
        env.run_stdin(
            &["block", "update", "crdb-sage", "--password-stdin"],
            "second-password",
        )
        .success();
        // An older version's ciphertext put back into the current row.
        env.sql(
            "UPDATE blocks SET sealed_secrets = (SELECT sealed_secrets FROM block_versions \
         WHERE version = 1) WHERE name = 'crdb-sage'",
        );
        let run = secret_of(&env).fails_with("DECRYPTION_FAILED");
        assert!(!run.all_output().contains(PLANTED));
        env.sql(
            "UPDATE blocks SET sealed_secrets = (SELECT sealed_secrets FROM block_versions \
         WHERE version = 2) WHERE name = 'crdb-sage'",
        );
        assert!(secret_of(&env).success().stdout.contains("second-password"));
        // The host changed beside the ciphertext.
        env.sql("UPDATE blocks SET data = replace(data, 'localhost', 'evil.example')");
        secret_of(&env).fails_with("DECRYPTION_FAILED");
        env.run(&["block", "test", "crdb-sage"])
            .fails_with("DECRYPTION_FAILED");
        env.sql("UPDATE blocks SET data = replace(data, 'evil.example', 'localhost')");
        assert!(secret_of(&env).success().stdout.contains("second-password"));
        // A rename is a new version: its secrets are sealed again for it.
        env.ok(&["block", "rename", "crdb-sage", "crdb-sage2"]);
        env.ok(&["block", "rename", "crdb-sage2", "crdb-sage"]);
        assert!(secret_of(&env).success().stdout.contains("second-password"));
    }
);

// 3. A store sealed before secrets were bound (format 1), or before they were bound to
// their type (format 2), is re-sealed by `database migrate`.
on_both_stores!(database_migrate_reseals_an_older_store, |env: TestEnv| {
    reseal_from(&env, 1);
});

on_both_stores!(database_migrate_reseals_a_format_2_store, |env: TestEnv| {
    reseal_from(&env, 2);
});

fn reseal_from(env: &TestEnv, format: u8) {
    use blockyard::crypto::{DataKey, MasterKey, SealBinding};
    use blockyard::store::{PoolOptions, Store, StoreUrl};
    env.ok(&["init"]);
    create_crdb_sage(env, PLANTED, &[]).success();
    let store = Store::open(
        StoreUrl::parse(&env.database_url()).unwrap(),
        &PoolOptions::default(),
    )
    .unwrap();
    // Put the store back in format 1, as an earlier Blockyard left it.
    let master = MasterKey::from_base64(&std::fs::read_to_string(env.key_file()).unwrap()).unwrap();
    let row = store.active_data_key().unwrap().unwrap();
    let key: DataKey = master.unwrap(&row.id, &row.wrapped).unwrap();
    let (current, history) = store.sealed_not_under("none", 100).unwrap();
    let to_v1 = |rows: Vec<blockyard::store::SealedRow>| {
        rows.into_iter()
            .map(|old| {
                let at = SealBinding {
                    block_id: &old.block_id,
                    block_type: &old.block_type,
                    version: old.version,
                    data: &old.data,
                };
                let key_id = old.key_id.clone().unwrap();
                let sealed = old.sealed_secrets.as_deref().unwrap();
                let plain = key.open_for_block(&at, &key_id, sealed, false).unwrap();
                let mut new = old.clone();
                new.sealed_secrets = Some(
                    match format {
                        1 => key.seal_for_block_v1(&old.block_id, &key_id, &plain),
                        _ => key.seal_for_block_v2(&at, &key_id, &plain),
                    }
                    .unwrap(),
                );
                (old, new)
            })
            .collect::<Vec<_>>()
    };
    store
        .replace_sealed(&to_v1(current), &to_v1(history))
        .unwrap();
    store.set_meta("seal_format", &format.to_string()).unwrap();

    env.run(&["block", "ls"]).fails_with("STORE_NOT_MIGRATED");
    let migrated = env.json(&["database", "migrate"]);
    assert!(migrated.to_string().contains("seal-format-3"), "{migrated}");
    assert!(secret_of(env).success().stdout.contains(PLANTED));
    let again = env.json(&["database", "migrate"]);
    assert!(!again.to_string().contains("seal-format-3"), "{again}");
}

// 14. Durations in a document never panic: the schema refuses what cannot be used.
#[test]
fn huge_negative_or_odd_durations_are_refused_not_panics() {
    let env = TestEnv::new(Backend::Sqlite);
    env.ok(&["init"]);
    for value in [
        "1e300",
        "-1",
        "\"500000000 years\"",
        "\"9999999999999999999s\"",
        "2592001",
    ] {
        let mut args = CRDB_SAGE.to_vec();
        let set = format!("pool={{\"connection_timeout\": {value}}}");
        args.extend(["--set-json", &set, "--password-stdin"]);
        let run = env
            .run_stdin(&args, PLANTED)
            .fails_with("INVALID_BLOCK_DATA");
        assert!(
            run.stderr.contains("pool.connection_timeout"),
            "{}",
            run.stderr
        );
        assert!(!run.all_output().contains("panicked"));
    }
    // Through HTTP too: 422, and the server lives on.
    let admin = token(&env, "admin", &["admin"], &[]);
    let server = Server::start(&env, &[]);
    let body = json!({"name": "pg-huge", "block_type": "sqlalchemy-connector", "data": {
        "connection_info": {"driver": "postgresql+psycopg2", "database": "d", "host": "h"},
        "pool": {"connection_timeout": 1e300}}});
    let reply = Api::new(&server, Some(&admin)).post("/blocks", &body);
    assert_error(&reply, 422, "INVALID_BLOCK_DATA");
    assert_eq!(Api::root(&server, None).get("/health").status, 200);
}

// 13. Choosing a block id is for tokens that may write every block: a conflict on an
// id never tells a pattern-limited writer about a block it cannot see.
on_both_stores!(
    an_id_conflict_reveals_nothing_outside_the_scope,
    |env: TestEnv| {
        env.ok(&["init"]);
        create_crdb_sage(&env, PLANTED, &[]).success();
        env.ok(&[
            "block",
            "create",
            "pg-hidden",
            "--type",
            "json",
            "--set-json",
            "value={}",
        ]);
        let hidden_id = env.json(&["block", "inspect", "pg-hidden"])["id"]
            .as_str()
            .unwrap()
            .to_owned();
        let writer = token(&env, "writer", &["blocks:write:crdb-*"], &[]);
        let server = Server::start(&env, &[]);
        let api = Api::new(&server, Some(&writer));
        let unused = "0b5d9a52-57a4-4c52-9b7e-2bd4c53f0a11";
        let mut answers = Vec::new();
        for id in [hidden_id.as_str(), unused] {
            let body = json!({"name": "crdb-probe", "block_type": "json", "data": {"value": {}}, "id": id});
            let reply = api.post("/blocks", &body);
            assert_error(&reply, 403, "FORBIDDEN");
            answers.push(reply.body);
        }
        assert_eq!(
            answers[0], answers[1],
            "the answers differ by whether the id exists"
        );
        let blocks = env.json(&["block", "ls"]);
        assert_eq!(blocks.as_array().unwrap().len(), 2, "{blocks}");
    }
);

// 5. A listing says nothing of blocks outside the token's patterns: not in rows, not
// in the cursor, not in whether there is a next page.
on_both_stores!(
    listings_reveal_nothing_outside_the_patterns,
    |env: TestEnv| {
        env.ok(&["init"]);
        for name in [
            "a-secret-one",
            "crdb-1",
            "crdb-2",
            "crdb-3",
            "zz-hidden",
            "zz-hidden-2",
        ] {
            env.ok(&[
                "block",
                "create",
                name,
                "--type",
                "json",
                "--set-json",
                "value={}",
            ]);
        }
        let reader = token(&env, "reader", &["blocks:read:crdb-*"], &[]);
        let server = Server::start(&env, &[]);
        let mut seen = Vec::new();
        let mut cursor: Option<String> = None;
        let mut texts = String::new();
        let api = Api::new(&server, Some(&reader));
        loop {
            let mut path = "/blocks?limit=1".to_owned();
            if let Some(c) = &cursor {
                path.push_str(&format!("&cursor={c}"));
            }
            let reply = api.get(&path);
            assert_eq!(reply.status, 200, "{}", reply.text);
            texts.push_str(&reply.text);
            for b in reply.body["blocks"].as_array().unwrap() {
                seen.push(b["name"].as_str().unwrap().to_owned());
            }
            cursor = reply.body["next_cursor"].as_str().map(str::to_owned);
            if cursor.is_none() {
                break;
            }
        }
        assert_eq!(seen, ["crdb-1", "crdb-2", "crdb-3"]);
        for hidden in ["a-secret-one", "zz-hidden"] {
            assert!(!texts.contains(hidden), "{texts}");
        }
        // The last visible block ends the listing: no cursor pointing past it.
        let reply = Api::new(&server, Some(&reader)).get("/blocks?cursor=crdb-2");
        assert_eq!(reply.body["next_cursor"], Value::Null, "{}", reply.text);
    }
);

// 10. A wrong master key writes nothing.
on_both_stores!(a_wrong_master_key_cannot_write, |env: TestEnv| {
    env.ok(&["init"]);
    create_crdb_sage(&env, PLANTED, &[]).success();
    env.ok(&["token", "create", "keep", "--scope", "admin"]);
    let before = env.snapshot();
    let tokens_before = env.json(&["token", "ls"]);
    let wrong = env.ok(&["key", "generate"]).stdout.trim().to_owned();
    let type_file = write_file(
        env.dir.path(),
        "t.json",
        r#"{"slug": "mine", "name": "Mine", "schema": {"type": "object"}}"#,
    );
    let type_path = type_file.to_str().unwrap();
    for args in [
        vec!["token", "create", "intruder", "--scope", "admin"],
        vec!["token", "revoke", "keep"],
        vec!["block", "rename", "crdb-sage", "crdb-other"],
        vec!["block", "delete", "crdb-sage"],
        vec!["type", "register", type_path],
        vec![
            "block",
            "create",
            "x-new",
            "--type",
            "json",
            "--set-json",
            "value={}",
        ],
    ] {
        env.run_with(&args, None, &[("BLOCKYARD_MASTER_KEY", wrong.as_str())])
            .fails_with("WRONG_MASTER_KEY");
    }
    assert_eq!(env.snapshot(), before);
    assert_eq!(env.json(&["token", "ls"]), tokens_before);
    assert!(!env.json(&["type", "ls"]).to_string().contains("\"mine\""));
});

// 9. `/ready` and 503 answers say up or down and a code; the store's address and the
// database's own words go only to the server's log.
#[test]
fn unready_answers_carry_no_store_address_or_database_error() {
    use diesel::{Connection, RunQueryDsl};
    let env = TestEnv::new(Backend::Postgres);
    env.ok(&["init"]);
    create_crdb_sage(&env, PLANTED, &[]).success();
    let admin = token(&env, "admin", &["admin"], &[]);
    let server = Server::start(&env, &["--token-cache", "0s", "--block-cache", "0s"]);
    assert_eq!(Api::root(&server, None).get("/ready").status, 200);
    let url = url::Url::parse(&env.database_url()).unwrap();
    let db = url.path().trim_start_matches('/').to_owned();
    let mut pg = diesel::PgConnection::establish(&pg_admin_url()).unwrap();
    diesel::sql_query(format!("ALTER DATABASE {db} ALLOW_CONNECTIONS false"))
        .execute(&mut pg)
        .unwrap();
    diesel::sql_query(format!(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{db}'"
    ))
    .execute(&mut pg)
    .unwrap();
    let replies = [
        Api::root(&server, None).get("/ready"),
        Api::new(&server, Some(&admin)).get("/blocks/crdb-sage"),
        Api::new(&server, Some(&admin)).get("/blocks"),
    ];
    diesel::sql_query(format!("ALTER DATABASE {db} ALLOW_CONNECTIONS true"))
        .execute(&mut pg)
        .unwrap();
    for reply in &replies {
        assert_eq!(reply.status, 503, "{}", reply.text);
        assert!(reply.body["error"]["code"].is_string(), "{}", reply.text);
        for leak in [db.as_str(), "127.0.0.1", "postgres", "FATAL", "connect"] {
            assert!(!reply.text.contains(leak), "{leak} in {}", reply.text);
        }
    }
    let log = server.log();
    assert!(log.contains("\"detail\""), "{log}");
    assert!(!log.contains(PLANTED));
}

// 4. A password in a URL's query string, or under a `password` key anywhere, is a
// secret: masked, sealed, never shown or scrubbed-out.
on_both_stores!(
    passwords_outside_the_obvious_field_are_secrets,
    |env: TestEnv| {
        env.ok(&["init"]);
        let port = closed_port();
        let url_doc = write_file(
            env.dir.path(),
            "q.json",
            &format!(
                r#"{{"connection_info": "postgresql://app@127.0.0.1:{port}/app?sslmode=disable&password=Q-PLANTED-1"}}"#
            ),
        );
        let parts_doc = write_file(
            env.dir.path(),
            "p.json",
            &format!(
                r#"{{"connection_info": {{"driver": "postgresql", "database": "app", "username": "app",
                "host": "127.0.0.1", "port": {port}, "query": {{"password": "Q-PLANTED-2"}}}},
                "connect_args": {{"password": "Q-PLANTED-3"}}}}"#
            ),
        );
        for (name, doc) in [("q-url", &url_doc), ("q-parts", &parts_doc)] {
            let path = doc.to_str().unwrap();
            env.ok(&[
                "block",
                "create",
                name,
                "--type",
                "sqlalchemy-connector",
                "--data",
                path,
            ]);
        }
        let mut shown = String::new();
        for name in ["q-url", "q-parts"] {
            for args in [
                vec!["block", "inspect", name],
                vec!["block", "inspect", name, "-o", "json"],
                vec!["block", "url", name],
                vec!["block", "history", name, "-o", "json"],
                vec!["block", "test", name],
            ] {
                shown.push_str(&env.run(&args).all_output());
            }
        }
        for planted in ["Q-PLANTED-1", "Q-PLANTED-2", "Q-PLANTED-3"] {
            assert!(!shown.contains(planted), "{planted} shown:\n{shown}");
            assert!(
                !contains_bytes(&env.store_bytes(), planted),
                "{planted} stored in plaintext"
            );
        }
        let masked = env.json(&["block", "inspect", "q-url"]);
        assert!(
            masked["data"]["connection_info"]
                .as_str()
                .unwrap()
                .ends_with("&password=********"),
            "{masked}"
        );
        // The secrets are all there for whoever may read them, and the URL works as given.
        let full = env.json(&["block", "inspect", "q-url", "--show-secrets"]);
        assert!(full.to_string().contains("password=Q-PLANTED-1"), "{full}");
        let full = env
            .json(&["block", "inspect", "q-parts", "--show-secrets"])
            .to_string();
        assert!(
            full.contains("Q-PLANTED-2") && full.contains("Q-PLANTED-3"),
            "{full}"
        );
        let revealed = env.ok(&["block", "url", "q-url", "--show-secrets"]).stdout;
        assert!(revealed.contains("Q-PLANTED-1"), "{revealed}");
    }
);

// 8. No secret from a command-line argument, whatever flag carries it.
on_both_stores!(no_secret_from_any_argument, |env: TestEnv| {
    env.ok(&["init"]);
    let base = ["block", "create", "argv", "--type", "sqlalchemy-connector"];
    for (flag, value) in [
        (
            "--set-json",
            r#"connection_info={"driver": "postgresql", "database": "d", "password": "ARGV-PLANTED"}"#,
        ),
        (
            "--set",
            r#"connection_info={"driver": "postgresql", "database": "d", "password": "ARGV-PLANTED"}"#,
        ),
        ("--set", "connection_info=postgresql://u:ARGV-PLANTED@h/d"),
        (
            "--set",
            "connection_info=postgresql://u@h/d?password=ARGV-PLANTED",
        ),
        ("--set-json", r#"connect_args={"password": "ARGV-PLANTED"}"#),
        ("--set", "connection_info.password=ARGV-PLANTED"),
        ("--url", "postgresql://u:ARGV-PLANTED@h/d"),
        ("--url", "postgresql://u@h/d?password=ARGV-PLANTED"),
    ] {
        let mut args = base.to_vec();
        args.extend([flag, value]);
        let run = env.run(&args).fails_with("INVALID_INPUT");
        assert!(!run.all_output().contains("ARGV-PLANTED"), "{}", run.stderr);
        assert!(run.stderr.contains("--password-stdin"), "{}", run.stderr);
    }
    assert_eq!(env.json(&["block", "ls"]), json!([]));
    assert!(!contains_bytes(&env.store_bytes(), "ARGV-PLANTED"));
});

// 11. The data directory is 0700, the store and key files 0600.
#[test]
fn data_directory_and_files_are_private() {
    use std::os::unix::fs::PermissionsExt;
    let env = TestEnv::new(Backend::Sqlite);
    env.ok(&["init"]);
    create_crdb_sage(&env, PLANTED, &[]).success();
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&env.data_dir()), 0o700);
    for entry in std::fs::read_dir(env.data_dir()).unwrap() {
        let path = entry.unwrap().path();
        assert_eq!(mode(&path), 0o600, "{}", path.display());
    }
    assert!(env.data_dir().join("blockyard.db").exists());
    assert!(env.key_file().exists());
}

/// Files named like a core dump in `dir`.
fn core_files(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.file_name().unwrap().to_string_lossy().starts_with("core"))
        .collect()
}

/// Starts `program` under `sh` with core dumps allowed (`ulimit -c unlimited`) in
/// `dir`, waits until `ready` holds, crashes it with SIGABRT (Rust's runtime swallows
/// a first SIGSEGV sent by kill) and waits for it.
fn crash(env: &TestEnv, dir: &std::path::Path, script: &str, ready: impl Fn() -> bool) {
    let mut child = env
        .program(std::path::Path::new("sh"), &["-c", script])
        .current_dir(dir)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // The shell must have set the limit and become the program before it is crashed.
    let comm = format!("/proc/{}/comm", child.id());
    for _ in 0..400 {
        let execed = std::fs::read_to_string(&comm).is_ok_and(|c| c.trim() != "sh");
        if execed && ready() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(25));
    }
    std::process::Command::new("kill")
        .args(["-ABRT", &child.id().to_string()])
        .status()
        .unwrap();
    child.wait().unwrap();
}

// 12. A crashed server leaves no core file with its opened secrets and tokens.
#[test]
fn a_crashed_server_leaves_no_core_file() {
    let env = TestEnv::new(Backend::Sqlite);
    env.ok(&["init"]);
    create_crdb_sage(&env, PLANTED, &[]).success();
    let reader = token(&env, "reader", &["blocks:read-secrets"], &[]);
    let cores = env.dir.path().join("cores");
    std::fs::create_dir_all(&cores).unwrap();

    // The check means something only where a crash writes a core file here.
    crash(&env, &cores, "ulimit -c unlimited; exec sleep 30", || true);
    let control = core_files(&cores);
    assert!(
        !control.is_empty(),
        "this machine writes no core file into the working directory (see \
         /proc/sys/kernel/core_pattern), so the test cannot check anything"
    );
    control
        .iter()
        .for_each(|p| std::fs::remove_file(p).unwrap());

    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let base = format!("http://127.0.0.1:{port}");
    let script = format!("ulimit -c unlimited; exec {BIN} server --port {port}");
    let url = format!("{base}/api/v1/blocks/crdb-sage?include_secrets=true");
    crash(&env, &cores, &script, || {
        let reply = ureq::get(&url)
            .set("Authorization", &format!("Bearer {reader}"))
            .call();
        reply.is_ok_and(|r| r.into_string().unwrap().contains(PLANTED))
    });
    let left = core_files(&cores);
    for core in &left {
        let bytes = std::fs::read(core).unwrap();
        assert!(
            !contains_bytes(&bytes, PLANTED),
            "the secret is in {}",
            core.display()
        );
        assert!(
            !contains_bytes(&bytes, &reader),
            "the token is in {}",
            core.display()
        );
    }
    assert!(left.is_empty(), "core files: {left:?}");
}

// 6. A `.env` in the current directory may not say where secrets go, never has its
// lines echoed, and `blockyard config` shows where every setting came from.
#[test]
fn a_stray_dotenv_cannot_redirect_secrets() {
    let env = TestEnv::new(Backend::Sqlite);
    env.ok(&["init"]);
    let dotenv = env.dir.path().join(".env");
    for (line, code) in [
        (
            "BLOCKYARD_URL=http://127.0.0.1:9\nBLOCKYARD_TOKEN=byd_x_y\n",
            "CONFIG_ERROR",
        ),
        ("BLOCKYARD_MASTER_KEY=DOTENV-PLANTED\n", "CONFIG_ERROR"),
        ("BLOCKYARD_CONFIG=/tmp/elsewhere.toml\n", "CONFIG_ERROR"),
        // A store of someone else's choosing could name a key they hold.
        (
            "BLOCKYARD_DATABASE_URL=/tmp/DOTENV-PLANTED.db\n",
            "CONFIG_ERROR",
        ),
        ("BLOCKYARD_DATA_DIR=/tmp/DOTENV-PLANTED\n", "CONFIG_ERROR"),
        (
            "BLOCKYARD_KEY_FILE=/tmp/DOTENV-PLANTED.key\n",
            "CONFIG_ERROR",
        ),
        ("OK=1\nBLOCKYARD_DATA_DIR 'DOTENV-PLANTED\n", "CONFIG_ERROR"),
    ] {
        std::fs::write(&dotenv, line).unwrap();
        let run = create_crdb_sage(&env, PLANTED, &[]).fails_with(code);
        assert!(
            !run.all_output().contains("DOTENV-PLANTED"),
            "{}",
            run.stderr
        );
        assert!(!run.all_output().contains(PLANTED), "{}", run.stderr);
        assert!(run.stderr.contains(".env"), "{}", run.stderr);
    }
    assert!(
        env.run(&["block", "ls"]).stderr.contains("line 2"),
        "a malformed line is named by its number"
    );
    std::fs::remove_file(&dotenv).unwrap();
    assert_eq!(env.json(&["block", "ls"]), json!([]));

    // What a .env may set (tuning), it sets, and says so; `config` shows each source.
    std::fs::write(&dotenv, "BLOCKYARD_POOL_REFRESH=7s\n").unwrap();
    let run = env.run(&["block", "ls"]).success();
    assert!(
        run.stderr.contains("pool_refresh from ./.env"),
        "{}",
        run.stderr
    );
    let shown = env.json(&["config"]);
    let source = |name: &str| {
        shown
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["setting"] == name)
            .map(|r| r["source"].as_str().unwrap().to_owned())
            .unwrap()
    };
    assert!(source("pool_refresh").starts_with(".env"), "{shown}");
    assert_eq!(source("data_dir"), "environment");
    assert_eq!(source("pool_max_size"), "default");
    std::fs::remove_file(&dotenv).unwrap();

    // Plain http to another machine needs --insecure; the token never shows.
    let remote = [
        ("BLOCKYARD_URL", "http://192.0.2.10:4200"),
        ("BLOCKYARD_TOKEN", "byd_0123456789abcdef_TOKEN-PLANTED"),
    ];
    let run = env
        .run_with(&["block", "ls"], None, &remote)
        .fails_with("CONFIG_ERROR");
    assert!(run.stderr.contains("--insecure"), "{}", run.stderr);
    let run = env
        .run_with(&["config", "--insecure"], None, &remote)
        .success();
    assert!(
        run.stdout.contains("http://192.0.2.10:4200"),
        "{}",
        run.stdout
    );
    assert!(
        !run.all_output().contains("TOKEN-PLANTED"),
        "{}",
        run.stdout
    );
    assert!(run.stdout.contains("********"), "{}", run.stdout);
}
