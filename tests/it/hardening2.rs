//! Issue 26's findings (hardening, round 2), each shown failing without its fix: token
//! rows bound to the master key, scheduled rotation as a confused deputy, destinations
//! of http-service blocks, imports and apply files that move a secret.

use crate::support::*;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

const PLANTED: &str = "planted-R0UND2-secret";

/// SQL for a byte string literal on either store.
fn bytes_literal(env: &TestEnv, bytes: &[u8]) -> String {
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    match env.backend {
        Backend::Sqlite => format!("X'{hex}'"),
        Backend::Postgres => format!("'\\x{hex}'::bytea"),
    }
}

// 2. A store-row writer cannot mint or widen a token without the master key.
on_both_stores!(token_rows_need_the_master_key, |env: TestEnv| {
    env.ok(&["init"]);
    create_crdb_sage(&env, PLANTED, &[]).success();
    let reader = token(&env, "reader", &["blocks:read"], &[]);
    // A row written straight into the store: sha256 of a token of the writer's choosing.
    let id = "0123456789abcdef";
    let forged = format!("byd_{id}_{}", URL_SAFE_NO_PAD.encode([7u8; 32]));
    let hash = bytes_literal(&env, &Sha256::digest(forged.as_bytes()));
    env.sql(&format!(
        "INSERT INTO api_tokens (id, name, secret_hash, scopes, created_at) \
         VALUES ('{id}', 'forged', {hash}, '[\"admin\"]', 0)"
    ));
    let server = Server::start(&env, &[]);
    let secrets = "/blocks/crdb-sage?include_secrets=true";
    let reply = Api::new(&server, Some(&forged)).get(secrets);
    assert_eq!(reply.status, 401, "{}", reply.text);
    assert!(!reply.text.contains(PLANTED));
    assert_eq!(Api::new(&server, Some(&reader)).get("/blocks").status, 200);

    // Widening a real token's scopes in its row: it then verifies nothing at all.
    env.sql("UPDATE api_tokens SET scopes = '[\"admin\"]' WHERE name = 'reader'");
    let restarted = Server::start(&env, &[]);
    let reply = Api::new(&restarted, Some(&reader)).get(secrets);
    assert_eq!(reply.status, 401, "{}", reply.text);
    let listed = env.json(&["token", "ls"]);
    let states: Vec<(&str, &str)> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|t| (t["name"].as_str().unwrap(), t["state"].as_str().unwrap()))
        .collect();
    assert_eq!(states, [("forged", "unbound"), ("reader", "unbound")]);
});

// 2. A restore leaves out token rows edited in the backup file.
#[test]
fn a_restore_refuses_token_rows_edited_in_the_file() {
    let source = TestEnv::new(Backend::Sqlite);
    source.ok(&["init"]);
    let kept = token(&source, "kept", &["blocks:read"], &[]);
    token(&source, "widened", &["blocks:read"], &[]);
    let backup = source.dir.path().join("registry.bak");
    source.ok(&["backup", backup.to_str().unwrap()]);
    let mut file: Value = serde_json::from_str(&std::fs::read_to_string(&backup).unwrap()).unwrap();
    for row in file["rows"]["api_tokens"].as_array_mut().unwrap() {
        if row["name"] == "widened" {
            row["scopes"] = json!("[\"admin\"]");
        }
    }
    std::fs::write(&backup, file.to_string()).unwrap();

    let target = TestEnv::new(Backend::Postgres);
    std::fs::create_dir_all(target.data_dir()).unwrap();
    std::fs::copy(source.key_file(), target.key_file()).unwrap();
    let restored = target.run(&["restore", backup.to_str().unwrap()]).success();
    assert!(
        restored.stderr.contains("1 token(s) not restored"),
        "{}",
        restored.stderr
    );
    let count = |name: &str| {
        target.sql(&format!(
            "UPDATE api_tokens SET name = name WHERE name = '{name}'"
        ))
    };
    assert_eq!(count("widened"), 0, "the edited token row was restored");
    assert_eq!(count("kept"), 1);
    let server = Server::start(&target, &[]);
    assert_eq!(Api::new(&server, Some(&kept)).get("/blocks").status, 200);
}

// 2. Tokens made before rows were bound keep working after `database migrate`, which
// binds them with the master key in the same run that adds the binding.
on_both_stores!(migrate_binds_the_tokens_it_finds, |env: TestEnv| {
    env.ok(&["init"]);
    let reader = token(&env, "reader", &["blocks:read"], &[]);
    // The store as the previous release left it.
    env.sql("ALTER TABLE api_tokens DROP COLUMN mac");
    env.sql("DELETE FROM __diesel_schema_migrations WHERE version LIKE '%000005'");
    env.sql("ALTER TABLE block_types DROP COLUMN mac");
    env.run(&["block", "ls"]).fails_with("STORE_NOT_MIGRATED");
    let run = env.ok(&["database", "migrate"]);
    assert!(
        run.stdout.contains("1 tokens and 0 block types bound"),
        "{}",
        run.stdout
    );
    let server = Server::start(&env, &[]);
    assert_eq!(Api::new(&server, Some(&reader)).get("/blocks").status, 200);
});

// 1. A write token cannot make the rotation scheduler act for it: it may not choose the
// pending password, nor set up a schedule (which admin block acts); a schedule acts
// only while the admin token that set it up may still use admin blocks.
on_both_stores!(scheduled_rotation_is_no_confused_deputy, |env: TestEnv| {
    env.ok(&["init"]);
    create_crdb_sage(&env, PLANTED, &[]).success();
    let writer = token(&env, "writer", &["blocks:write:crdb-*"], &[]);
    let admin = token(&env, "admin", &["admin"], &[]);
    let server = Server::start(&env, &["--rotation-check", "100ms"]);
    let (as_writer, as_admin) = (
        Api::new(&server, Some(&writer)),
        Api::new(&server, Some(&admin)),
    );
    let doc = as_writer.get("/blocks/crdb-sage").body["data"].clone();
    let before = env.snapshot();
    let with = |rotation: Value, password: Option<&str>| {
        let mut d = doc.clone();
        d["rotation"] = rotation;
        if let Some(p) = password {
            d["connection_info"]["password"] = json!(p);
        }
        json!({ "data": d })
    };
    let chosen = json!({"every": "1s", "admin": "pg-admin", "pending_password": "attacker-pw"});
    let schedule = json!({"every": "1s", "admin": "pg-admin"});
    for body in [
        with(chosen.clone(), None),
        with(chosen, Some("a-new-password")),
        with(schedule.clone(), None),
        with(schedule.clone(), Some("a-new-password")),
    ] {
        assert_error(&as_writer.put("/blocks/crdb-sage", &body), 403, "FORBIDDEN");
    }
    assert_eq!(
        env.snapshot(),
        before,
        "a refused rotation change was stored"
    );

    // An admin token may set one up; it is stamped as the setter, and a writer cannot
    // change the stamp.
    let reply = as_admin.put(
        "/blocks/crdb-sage",
        &with(json!({"every": "100d", "admin": "pg-admin"}), None),
    );
    assert_eq!(reply.status, 200, "{}", reply.text);
    let admin_id = admin.split('_').nth(1).unwrap();
    assert_eq!(reply.body["data"]["rotation"]["set_by"], admin_id);
    let mut forged = reply.body["data"].clone();
    forged["rotation"]["set_by"] = json!("local");
    forged["requires"] = json!({"server_version": ">=10"});
    let reply = as_writer.put("/blocks/crdb-sage", &json!({ "data": forged }));
    assert_eq!(reply.status, 200, "{}", reply.text);
    assert_eq!(reply.body["data"]["rotation"]["set_by"], admin_id);

    // Once the admin token is revoked, the due schedule is refused, on record.
    let mut due = reply.body["data"].clone();
    due["rotation"]["every"] = json!("1s");
    assert_eq!(
        as_admin
            .put("/blocks/crdb-sage", &json!({ "data": due }))
            .status,
        200
    );
    env.ok(&["token", "revoke", "admin"]);
    let refused = (0..100).any(|_| {
        let audit = env.json(&["audit", "ls", "--block", "crdb-sage"]);
        let found = audit
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["action"] == "rotate-password" && r["outcome"] == "forbidden");
        if !found {
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        found
    });
    assert!(
        refused,
        "the scheduler acted for a revoked token:\n{}",
        server.log()
    );
    let secret = env.json(&["block", "inspect", "crdb-sage", "--show-secrets"]);
    assert_eq!(secret["data"]["connection_info"]["password"], PLANTED);
});

// 3. An http-service block's health path is a path, and what decides where its key
// goes (health_path, verify_tls, api_key_header, headers) is a destination.
on_both_stores!(http_service_key_stays_with_its_host, |env: TestEnv| {
    env.ok(&["init"]);
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
        PLANTED,
    )
    .success();
    let writer = token(&env, "writer", &["blocks:write"], &[]);
    let trusted = token(
        &env,
        "trusted",
        &["blocks:write", "blocks:read-secrets"],
        &[],
    );
    let server = Server::start(&env, &[]);
    let (as_writer, as_trusted) = (
        Api::new(&server, Some(&writer)),
        Api::new(&server, Some(&trusted)),
    );
    let doc = as_writer.get("/blocks/es").body["data"].clone();
    let with = |field: &str, value: Value| {
        let mut d = doc.clone();
        d[field] = value;
        json!({ "data": d })
    };
    for path in [
        "http://attacker.example/x",
        "//attacker.example/x",
        "/../../x",
        "healthz",
    ] {
        let reply = as_trusted.put("/blocks/es", &with("health_path", json!(path)));
        assert_eq!(reply.status, 422, "{path}: {}", reply.text);
        assert_eq!(reply.body["error"]["code"], "INVALID_BLOCK_DATA");
    }
    let before = env.snapshot();
    for (field, value) in [
        ("health_path", json!("/_cluster/health")),
        ("verify_tls", json!(false)),
        ("api_key_header", json!("X-Leak")),
        ("headers", json!({"Host": "attacker.example"})),
    ] {
        assert_error(
            &as_writer.put("/blocks/es", &with(field, value)),
            403,
            "FORBIDDEN",
        );
    }
    assert_eq!(env.snapshot(), before);
    let reply = as_trusted.put(
        "/blocks/es",
        &with("health_path", json!("/_cluster/health")),
    );
    assert_eq!(reply.status, 200, "{}", reply.text);
});

// 4. An edited export cannot send a stored secret to a new host: a masked block that
// changes where it connects is refused (dry run included), and the plan names the
// destination changes of blocks that bring their own secret.
on_both_stores!(
    an_edited_export_cannot_move_a_kept_secret,
    |env: TestEnv| {
        env.ok(&["init"]);
        create_crdb_sage(&env, PLANTED, &[]).success();
        let path = env.dir.path().join("export.json");
        let text = env.ok(&["export"]).stdout;
        let edited = text.replace("\"localhost\"", "\"attacker.example\"");
        assert_ne!(text, edited);
        std::fs::write(&path, &edited).unwrap();
        let before = env.snapshot();
        for dry in [true, false] {
            let mut args = vec!["import", path.to_str().unwrap()];
            if dry {
                args.push("--dry-run");
            }
            let run = env.run(&args).fails_with("FORBIDDEN");
            assert!(
                run.stderr.contains("connection_info.host"),
                "{}",
                run.stderr
            );
        }
        assert_eq!(env.snapshot(), before);
        let secret = env.json(&["block", "inspect", "crdb-sage", "--show-secrets"]);
        assert_eq!(secret["data"]["connection_info"]["password"], PLANTED);

        // With its own secret it may move, and the plan says so.
        let mut file: Value = serde_json::from_str(&edited).unwrap();
        file["blocks"][0]["data"]["connection_info"]["password"] = json!("a-new-password");
        std::fs::write(&path, file.to_string()).unwrap();
        let plan = env.json(&["import", path.to_str().unwrap(), "--dry-run"]);
        assert_eq!(
            plan["moved"]["crdb-sage"],
            json!(["connection_info.host"]),
            "{plan}"
        );
        let shown = env.ok(&[
            "import",
            path.to_str().unwrap(),
            "--dry-run",
            "--output",
            "table",
        ]);
        assert!(
            shown.stdout.contains("crdb-sage moves where it connects"),
            "{}",
            shown.stdout
        );
    }
);

// 5, 13. A reference fills only a secret field, and reads only a bounded regular file.
#[test]
fn apply_references_fill_only_secrets_from_bounded_files() {
    let env = TestEnv::new(Backend::Sqlite);
    env.ok(&["init"]);
    let dir = env.dir.path();
    write_file(dir, "pw.txt", PLANTED);
    let plain = "blocks:\n  - name: x\n    type: sqlalchemy-connector\n    data:\n      \
                 connection_info: {driver: postgresql, host: {from_env: SECRET_HOST}, \
                 database: {from_file: pw.txt}, password: {from_file: pw.txt}}\n";
    let file = write_file(dir, "plain.yaml", plain);
    for dry in [true, false] {
        let mut args = vec!["apply", "-f", file.to_str().unwrap()];
        if dry {
            args.push("--dry-run");
        }
        let run = env
            .run_with(&args, None, &[("SECRET_HOST", PLANTED)])
            .fails_with("INVALID_INPUT");
        assert!(
            run.stderr.contains("connection_info.database"),
            "{}",
            run.stderr
        );
        assert!(!run.all_output().contains(PLANTED), "{}", run.all_output());
    }
    // A whole URL that holds a password may be a reference; one without may not.
    write_file(dir, "url.txt", "postgresql://u:pw@db.example/app");
    write_file(dir, "bare-url.txt", "postgresql://db.example/app");
    let url = |f: &str| {
        format!(
            "blocks:\n  - name: u\n    type: sqlalchemy-connector\n    data: {{connection_info: {{from_file: {f}}}}}\n"
        )
    };
    let ok = write_file(dir, "url.yaml", &url("url.txt"));
    env.ok(&["apply", "-f", ok.to_str().unwrap(), "--dry-run"]);
    let bare = write_file(dir, "bare.yaml", &url("bare-url.txt"));
    env.run(&["apply", "-f", bare.to_str().unwrap(), "--dry-run"])
        .fails_with("INVALID_INPUT");
    // A device, a directory, a file over the limit: refused without reading them whole.
    std::fs::write(dir.join("big.txt"), vec![b'a'; 2 * 1024 * 1024]).unwrap();
    for source in ["/dev/zero", "/tmp", "big.txt"] {
        let text = format!(
            "blocks:\n  - name: x\n    type: secret\n    data: {{value: {{from_file: {source}}}}}\n"
        );
        let file = write_file(dir, "dev.yaml", &text);
        let run = env.run(&["apply", "-f", file.to_str().unwrap(), "--dry-run"]);
        assert_ne!(run.code, 0, "{source}");
        assert!(
            run.stderr.contains("regular file") || run.stderr.contains("KiB"),
            "{}",
            run.stderr
        );
    }
}

// 12. A backup is written through a new private file, never through a planted one.
#[test]
fn backup_never_writes_through_a_planted_partial_file() {
    use std::os::unix::fs::PermissionsExt;
    let env = TestEnv::new(Backend::Sqlite);
    env.ok(&["init"]);
    create_crdb_sage(&env, PLANTED, &[]).success();
    let dir = env.dir.path();
    let victim = write_file(dir, "victim.txt", "untouched");
    std::os::unix::fs::symlink(&victim, dir.join("registry.bak.partial")).unwrap();
    let backup = dir.join("registry.bak");
    env.ok(&["backup", backup.to_str().unwrap()]);
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "untouched");
    let mode = std::fs::metadata(&backup).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    let left: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".partial") && n != "registry.bak.partial")
        .collect();
    assert!(left.is_empty(), "{left:?}");
}

/// Every audit id an export resuming after its last id can see, read through the API
/// while `done` is false, then once more.
fn export_ids(api: &Api, done: &std::sync::atomic::AtomicBool) -> Vec<i64> {
    let (mut ids, mut after) = (Vec::new(), 0i64);
    loop {
        let finished = done.load(std::sync::atomic::Ordering::SeqCst);
        let reply = api.get(&format!("/audit/export?after={after}&limit=500"));
        assert_eq!(reply.status, 200, "{}", reply.text);
        let page: Vec<i64> = reply
            .text
            .lines()
            .map(|line| {
                serde_json::from_str::<Value>(line).unwrap()["id"]
                    .as_i64()
                    .unwrap()
            })
            .collect();
        if let Some(last) = page.last() {
            after = *last;
        }
        if finished && page.is_empty() {
            return ids;
        }
        ids.extend(page);
    }
}

// 6. An export that resumes after the last id it saw misses nothing, however commits
// interleave on PostgreSQL.
#[test]
fn audit_export_is_gap_free_under_concurrent_writes() {
    use std::sync::atomic::{AtomicBool, Ordering};
    let env = TestEnv::new(Backend::Postgres);
    env.ok(&["init"]);
    create_crdb_sage(&env, PLANTED, &[]).success();
    let admin = token(&env, "admin", &["admin"], &[]);
    let server = Server::start(&env, &["--audit-window", "0", "--workers", "16"]);
    let done = AtomicBool::new(false);
    let exported = std::thread::scope(|scope| {
        let exporter = scope.spawn(|| export_ids(&Api::new(&server, Some(&admin)), &done));
        let writers: Vec<_> = (0..8)
            .map(|i| {
                let (server, admin) = (&server, &admin);
                scope.spawn(move || {
                    let api = Api::new(server, Some(admin));
                    let name = format!("w{i}");
                    let body = json!({"name": name, "block_type": "json", "data": {"value": 0}});
                    assert_eq!(api.post("/blocks", &body).status, 201);
                    for n in 1..150 {
                        let reply =
                            api.put(&format!("/blocks/{name}"), &json!({"data": {"value": n}}));
                        assert_eq!(reply.status, 200, "{}", reply.text);
                        api.get("/blocks/crdb-sage?include_secrets=true");
                    }
                })
            })
            .collect();
        writers.into_iter().for_each(|w| w.join().unwrap());
        done.store(true, Ordering::SeqCst);
        exporter.join().unwrap()
    });
    let mut unique = exported.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), exported.len(), "an id was exported twice");
    let stored = env.sql("UPDATE audit_log SET at = at");
    assert!(stored >= 8 * 149 * 2, "{stored}");
    assert_eq!(
        exported.len(),
        stored,
        "the export missed {} records",
        stored - exported.len()
    );
}

// 7. A store-row writer can neither point a block at another type nor write or edit a
// user type: the type is bound into the seal, and type rows into the master key.
on_both_stores!(block_types_are_bound_to_the_master_key, |env: TestEnv| {
    env.ok(&["init"]);
    register_ftp_block(&env, PLANTED);
    let secret = |env: &TestEnv| env.run(&["block", "inspect", "ftp-main", "--show-secrets"]);
    assert!(secret(&env).success().stdout.contains(PLANTED));
    // Another type for the same sealed secrets.
    env.sql("UPDATE blocks SET block_type = 'secret' WHERE name = 'ftp-main'");
    secret(&env).fails_with("DECRYPTION_FAILED");
    env.sql("UPDATE blocks SET block_type = 'ftp' WHERE name = 'ftp-main'");
    assert!(secret(&env).success().stdout.contains(PLANTED));
    // An edited definition of the block's own type.
    env.sql("UPDATE block_types SET definition = replace(definition, '\"FTP\"', '\"Evil\"')");
    let run = env
        .run(&["block", "test", "ftp-main"])
        .fails_with("DECRYPTION_FAILED");
    assert!(
        run.stderr.contains("not bound to this master key"),
        "{}",
        run.stderr
    );
    assert!(!run.all_output().contains(PLANTED));
    env.run(&["type", "ls"]).fails_with("DECRYPTION_FAILED");
    // Registered again by whoever holds the master key, it is trusted again.
    let def = env.dir.path().join("ftp.json");
    env.ok(&["type", "register", def.to_str().unwrap(), "--replace"]);
    assert!(secret(&env).success().stdout.contains(PLANTED));
});

// 18. A config file holding a token is refused while others may read it.
#[test]
fn a_config_file_with_a_token_must_be_private() {
    use std::os::unix::fs::PermissionsExt;
    let env = TestEnv::new(Backend::Sqlite);
    let file = write_file(
        env.dir.path(),
        "config.toml",
        &format!(
            "server_url = \"http://127.0.0.1:{}\"\ntoken = \"byd_0123456789abcdef_{PLANTED}\"\n",
            closed_port()
        ),
    );
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
    let config = file.to_str().unwrap();
    let run = env
        .run(&["--config", config, "block", "ls"])
        .fails_with("INSECURE_KEY_FILE");
    assert!(run.stderr.contains("chmod 600"), "{}", run.stderr);
    assert!(!run.all_output().contains(PLANTED));
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();
    let run = env.run(&["--config", config, "block", "ls"]);
    assert!(
        !run.all_output().contains("INSECURE_KEY_FILE"),
        "{}",
        run.all_output()
    );
}

// 19. A block created under a deleted block's id would purge that block's history: the
// plan says so, and it needs --replace-deleted (the API: replace_deleted).
#[test]
fn taking_a_deleted_blocks_id_needs_replace_deleted() {
    let env = TestEnv::new(Backend::Sqlite);
    env.ok(&["init"]);
    let id = uuid::Uuid::new_v4().to_string();
    env.ok(&[
        "block",
        "create",
        "old",
        "--type",
        "json",
        "--set-json",
        "value=1",
        "--id",
        &id,
    ]);
    env.ok(&["block", "update", "old", "--set-json", "value=2"]);
    env.ok(&["block", "delete", "old"]);
    let text = format!("blocks:\n  - {{name: new, type: json, id: {id}, data: {{value: 3}}}}\n");
    let file = write_file(env.dir.path(), "apply.yaml", &text);
    let file = file.to_str().unwrap();
    let plan = env.json(&["apply", "-f", file, "--dry-run"]);
    assert_eq!(plan["replace_deleted"]["new"], "old", "{plan}");
    let shown = env
        .ok(&["apply", "-f", file, "--dry-run", "--output", "table"])
        .stdout;
    assert!(
        shown.contains("takes the id of deleted block old"),
        "{shown}"
    );
    let before = env.snapshot();
    env.run(&["apply", "-f", file]).fails_with("INVALID_INPUT");
    env.run(&[
        "block",
        "create",
        "new",
        "--type",
        "json",
        "--set-json",
        "value=3",
        "--id",
        &id,
    ])
    .fails_with("INVALID_INPUT");
    let server = Server::start(&env, &[]);
    let admin = token(&env, "admin", &["admin"], &[]);
    let api = Api::new(&server, Some(&admin));
    let body = json!({"name": "new", "block_type": "json", "data": {"value": 3}, "id": id});
    let reply = api.post("/blocks", &body);
    assert_eq!(reply.status, 400, "{}", reply.text);
    assert_eq!(
        env.snapshot(),
        before,
        "the deleted block's history was touched"
    );
    env.ok(&["block", "undelete", "old"]);
    env.ok(&["block", "delete", "old"]);
    env.ok(&["apply", "-f", file, "--replace-deleted"]);
    env.run(&["block", "undelete", "old"])
        .fails_with("BLOCK_NOT_FOUND");
}

// 23. A prune killed halfway is on record: its record commits with its first batch.
#[test]
fn a_prune_killed_halfway_is_on_record() {
    let env = TestEnv::new(Backend::Sqlite);
    env.ok(&["init"]);
    env.sql(
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 1000) \
         INSERT INTO audit_log (at, request_id, actor, action, block, outcome, event_count, last_at) \
         SELECT i, 'old-' || i, 'someone', 'read-secrets', 'x', 'ok', 1, i FROM n",
    );
    let crashed = env.run_with(
        &["audit", "prune", "--before", "30d"],
        None,
        &[("BLOCKYARD_CRASH_AT", "prune-batch-deleted")],
    );
    assert_ne!(crashed.code, 0, "the prune did not stop halfway");
    let left = env.sql("UPDATE audit_log SET at = at WHERE actor = 'someone'");
    assert!(left > 0 && left < 1000, "{left} old records left");
    let recorded = env.json(&["audit", "ls", "--limit", "5"]);
    let prune = recorded
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["action"] == "prune-audit");
    assert!(
        prune.is_some(),
        "a prune deleted records unrecorded: {recorded}"
    );
}

/// Audit records as `audit export` (this process's own clock) ships them.
fn exported(env: &TestEnv) -> Vec<Value> {
    env.ok(&["audit", "export"])
        .stdout
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect()
}

// 24. A server whose clock is behind the exporter's never changes a shipped record:
// records are final, and folded into, by the store's clock.
#[test]
fn a_slow_server_clock_never_changes_a_shipped_record() {
    let env = TestEnv::new(Backend::Postgres);
    env.ok(&["init"]);
    create_crdb_sage(&env, PLANTED, &[]).success();
    let reader = token(&env, "reader", &["blocks:read-secrets"], &[]);
    let server = Server::start_skewed(&env, "-2m", &["--audit-window", "60s"]);
    let api = Api::new(&server, Some(&reader));
    let read = || {
        assert_eq!(
            api.get("/blocks/crdb-sage?include_secrets=true").status,
            200
        )
    };
    (0..3).for_each(|_| read());
    let reads = |records: &[Value]| -> Vec<i64> {
        records
            .iter()
            .filter(|r| r["action"] == "read-secrets")
            .map(|r| r["count"].as_i64().unwrap())
            .collect()
    };
    let shipped = reads(&exported(&env));
    (0..5).for_each(|_| read());
    let listed = env.json(&["audit", "ls", "--block", "crdb-sage"]);
    let now: Vec<i64> = reads(listed.as_array().unwrap());
    assert_eq!(now.iter().sum::<i64>(), 8, "{listed}");
    // What was shipped is still exactly what the store holds for it.
    for count in &shipped {
        assert!(
            now.contains(count),
            "a shipped record changed: {shipped:?} -> {now:?}"
        );
    }
    assert!(
        shipped.is_empty(),
        "an open record was shipped: {shipped:?}"
    );
}

// 24. A server started with its clock far ahead prunes nothing recent.
#[test]
fn a_clock_jump_ahead_prunes_nothing_recent() {
    let env = TestEnv::new(Backend::Postgres);
    env.ok(&["init"]);
    create_crdb_sage(&env, PLANTED, &[]).success();
    let reader = token(&env, "reader", &["blocks:read-secrets"], &[]);
    let server = Server::start(&env, &["--audit-window", "0", "--audit-retention", "0"]);
    let api = Api::new(&server, Some(&reader));
    for _ in 0..3 {
        assert_eq!(
            api.get("/blocks/crdb-sage?include_secrets=true").status,
            200
        );
    }
    drop(server);
    // One record really past the 90 days.
    env.sql(&format!(
        "UPDATE audit_log SET at = at - {0}, last_at = last_at - {0} WHERE id = (SELECT min(id) FROM audit_log)",
        95_i64 * 24 * 3600 * 1000
    ));
    let before = env.sql("UPDATE audit_log SET at = at");
    let _server = Server::start_skewed(&env, "+100d", &[]);
    let pruned = (0..100).any(|_| {
        let log = env.json(&["audit", "ls"]);
        let found = log
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["action"] == "prune-audit");
        if !found {
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        found
    });
    assert!(
        pruned,
        "the server did not prune the record past its retention"
    );
    // The old record went; every recent one stayed.
    let after = env.sql("UPDATE audit_log SET at = at WHERE action <> 'prune-audit'");
    assert_eq!(after, before - 1);
}

/// A TCP proxy to PostgreSQL that can stop passing bytes while keeping every connection
/// open (a hung primary, a network partition), and pass them again.
struct FreezableProxy {
    port: u16,
    frozen: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl FreezableProxy {
    fn start() -> FreezableProxy {
        use std::sync::atomic::{AtomicBool, Ordering};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let frozen = std::sync::Arc::new(AtomicBool::new(false));
        let flag = frozen.clone();
        std::thread::spawn(move || {
            for client in listener.incoming().flatten() {
                let Ok(upstream) = std::net::TcpStream::connect("127.0.0.1:5432") else {
                    continue;
                };
                for (mut from, mut to) in [
                    (client.try_clone().unwrap(), upstream.try_clone().unwrap()),
                    (upstream, client),
                ] {
                    let flag = flag.clone();
                    std::thread::spawn(move || {
                        use std::io::{Read, Write};
                        let mut buf = [0u8; 16384];
                        while let Ok(n) = from.read(&mut buf) {
                            while flag.load(Ordering::SeqCst) {
                                std::thread::sleep(std::time::Duration::from_millis(20));
                            }
                            if n == 0 || to.write_all(&buf[..n]).is_err() {
                                break;
                            }
                        }
                        let _ = to.shutdown(std::net::Shutdown::Both);
                    });
                }
            }
        });
        FreezableProxy { port, frozen }
    }

    fn freeze(&self, frozen: bool) {
        self.frozen
            .store(frozen, std::sync::atomic::Ordering::SeqCst);
    }
}

// 20. A store that accepts connections but never answers: /ready answers within a
// second, requests get 503 STORE_UNAVAILABLE within a few seconds, and the server
// recovers by itself once the store answers again.
#[test]
fn a_hung_store_gets_503_fast_and_the_server_recovers() {
    let mut env = TestEnv::new(Backend::Postgres);
    env.ok(&["init"]);
    create_crdb_sage(&env, PLANTED, &[]).success();
    let reader = token(&env, "reader", &["blocks:read-secrets"], &[]);
    let proxy = FreezableProxy::start();
    let mut url = url::Url::parse(&env.database_url()).unwrap();
    url.set_port(Some(proxy.port)).unwrap();
    env.extra_env
        .push(("BLOCKYARD_DATABASE_URL".into(), url.to_string()));
    let server = Server::start(&env, &["--block-cache", "0s"]);
    let api = Api::new(&server, Some(&reader));
    let read = || api.get("/blocks/crdb-sage?include_secrets=true");
    assert_eq!(read().status, 200);
    proxy.freeze(true);
    let started = std::time::Instant::now();
    let ready = ureq::get(&format!("{}/ready", server.base))
        .timeout(std::time::Duration::from_secs(5))
        .call();
    assert!(
        matches!(ready, Err(ureq::Error::Status(503, _))),
        "{ready:?}"
    );
    assert!(
        started.elapsed() < std::time::Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    let started = std::time::Instant::now();
    let reply = read();
    assert_eq!(reply.status, 503, "{}", reply.text);
    assert_eq!(
        reply.body["error"]["code"], "STORE_UNAVAILABLE",
        "{}",
        reply.text
    );
    assert!(
        started.elapsed() < std::time::Duration::from_secs(15),
        "{:?}",
        started.elapsed()
    );
    proxy.freeze(false);
    let recovered = (0..150).any(|_| {
        let ok = read().status == 200;
        if !ok {
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        ok
    });
    assert!(recovered, "the server did not recover: {}", server.log());
}

// 21. PostgreSQL ending the server's connections (a failover, pg_terminate_backend) is
// never a 500: a lost connection is the store being unavailable (503), or unnoticed.
#[test]
fn ended_store_connections_are_never_a_500() {
    use std::sync::atomic::{AtomicBool, Ordering};
    let env = TestEnv::new(Backend::Postgres);
    env.ok(&["init"]);
    create_crdb_sage(&env, PLANTED, &[]).success();
    let admin = token(&env, "admin", &["admin"], &[]);
    let server = Server::start(&env, &["--block-cache", "0s", "--token-cache", "0s"]);
    let db = env.database_url();
    let db = db.rsplit('/').next().unwrap().to_owned();
    let done = AtomicBool::new(false);
    let statuses = std::thread::scope(|scope| {
        let killer = scope.spawn(|| {
            for _ in 0..30 {
                env.sql(&format!(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
                     WHERE datname = '{db}' AND pid <> pg_backend_pid()"
                ));
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            done.store(true, Ordering::SeqCst);
        });
        let readers: Vec<_> = (0..4)
            .map(|i| {
                let (server, admin, done) = (&server, &admin, &done);
                scope.spawn(move || {
                    let api = Api::new(server, Some(admin));
                    let mut statuses = Vec::new();
                    let mut n = 0;
                    while !done.load(Ordering::SeqCst) {
                        n += 1;
                        statuses.push(match i % 2 {
                            0 => api.get("/blocks/crdb-sage?include_secrets=true").status,
                            _ => {
                                let body = json!({"data": {"value": n}});
                                let name = format!("w{i}");
                                let created = json!({"name": name, "block_type": "json", "data": {"value": 0}});
                                if n == 1 {
                                    api.post("/blocks", &created);
                                }
                                api.put(&format!("/blocks/{name}"), &body).status
                            }
                        });
                    }
                    statuses
                })
            })
            .collect();
        killer.join().unwrap();
        readers
            .into_iter()
            .flat_map(|r| r.join().unwrap())
            .collect::<Vec<u16>>()
    });
    let errors: Vec<&u16> = statuses
        .iter()
        .filter(|s| **s >= 500 && **s != 503)
        .collect();
    assert!(
        errors.is_empty(),
        "{} of {} requests: {errors:?}",
        errors.len(),
        statuses.len()
    );
    assert!(
        statuses.iter().filter(|s| **s == 200).count() > 10,
        "{statuses:?}"
    );
}

// 14. A token limited to name patterns lists through the store's own filter: each
// pattern is a query, merged in name order, paged by the same cursor.
#[test]
fn pattern_tokens_list_through_the_stores_filter() {
    let env = TestEnv::new(Backend::Sqlite);
    env.ok(&["init"]);
    let mut text = String::from("blocks:\n");
    for name in ["a-1", "a-2", "b-1", "c_1", "c-1", "cx1", "z-9"] {
        text.push_str(&format!(
            "  - {{name: {name}, type: json, data: {{value: 1}}}}\n"
        ));
    }
    let file = write_file(env.dir.path(), "blocks.yaml", &text);
    env.ok(&["apply", "-f", file.to_str().unwrap()]);
    let two = token(&env, "two", &["blocks:read:a-*", "blocks:write:c-*"], &[]);
    let none = token(&env, "none", &["blocks:read:nothing-*"], &[]);
    let server = Server::start(&env, &[]);
    let names = |tok: &str, query: &str| -> (Vec<String>, Value) {
        let reply = Api::new(&server, Some(tok)).get(&format!("/blocks{query}"));
        assert_eq!(reply.status, 200, "{}", reply.text);
        let names = reply.body["blocks"]
            .as_array()
            .unwrap()
            .iter()
            .map(|b| b["name"].as_str().unwrap().to_owned())
            .collect();
        (names, reply.body["next_cursor"].clone())
    };
    assert_eq!(names(&two, "").0, ["a-1", "a-2", "c-1"]);
    let (first, cursor) = names(&two, "?limit=2");
    assert_eq!(first, ["a-1", "a-2"]);
    let (rest, end) = names(
        &two,
        &format!("?limit=2&cursor={}", cursor.as_str().unwrap()),
    );
    assert_eq!((rest, end), (vec!["c-1".to_owned()], Value::Null));
    assert_eq!(names(&two, "?prefix=c").0, ["c-1"]);
    assert!(names(&none, "").0.is_empty());
}
