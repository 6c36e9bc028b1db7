//! `backup` and `restore`: a store backed up while its server runs, restored on the other
//! backend (SQLite → PostgreSQL and back) with every secret readable, the same ids,
//! history, types, tokens and audit log, and a server that goes on writing to it; the
//! master key checked before anything is written; an interrupted restore leaves the
//! target empty.
use crate::support::*;

const PLANTED: &str = "planted-BACKUP-secret";

/// A store with history, a user type, a token, and audit records written by a running
/// server, which is returned still running.
fn seed(env: &TestEnv) -> (Server, String) {
    env.ok(&["init"]);
    create_crdb_sage(env, "first-BACKUP-secret", &[]).success();
    update_password(env, "crdb-sage", PLANTED);
    register_ftp_block(env, "planted-BACKUP-ftp");
    let reader = token(env, "reader", &["blocks:read-secrets"], &[]);
    let server = Server::start(env, &[]);
    let api = Api::new(&server, Some(&reader));
    for _ in 0..3 {
        assert_eq!(
            api.get("/blocks/crdb-sage?include_secrets=true").status,
            200
        );
    }
    (server, reader)
}

/// What a user can see of a store, secrets included, minus the audit log's times.
fn everything(env: &TestEnv) -> String {
    let mut text = env.snapshot();
    text.push_str(&env.json(&["type", "ls"]).to_string());
    text.push_str(&env.json(&["token", "ls"]).to_string());
    let audit = env.json(&["audit", "ls", "--limit", "1000"]);
    text.push_str(&audit.to_string());
    text
}

/// A target store that has the source's master key file, as a user would copy it.
fn target_with_key(backend: Backend, source: &TestEnv) -> TestEnv {
    let target = TestEnv::new(backend);
    std::fs::create_dir_all(target.data_dir()).unwrap();
    std::fs::copy(source.key_file(), target.key_file()).unwrap();
    target
}

fn backup_and_restore(from: Backend, to: Backend) {
    let source = TestEnv::new(from);
    let (server, reader) = seed(&source);
    // Taken while the server runs.
    let backup = source.dir.path().join("registry.bak");
    let run = source.ok(&["backup", backup.to_str().unwrap()]);
    assert!(
        run.stdout.contains("backed up 2 block(s)"),
        "{}",
        run.stdout
    );
    drop(server);
    let text = std::fs::read_to_string(&backup).unwrap();
    for secret in [
        PLANTED,
        "first-BACKUP-secret",
        "planted-BACKUP-ftp",
        &reader,
    ] {
        assert!(!text.contains(secret), "a secret in the backup file");
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&backup).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }

    let target = target_with_key(to, &source);
    let run = target.ok(&["restore", backup.to_str().unwrap()]);
    assert!(run.stdout.contains("restored 2 block(s)"), "{}", run.stdout);
    assert_eq!(everything(&target), everything(&source));

    // The restored store goes on: the restored token works and new audit records
    // follow the restored ones (on PostgreSQL, the id sequence was moved past them).
    let server = Server::start(&target, &[]);
    let reply = Api::new(&server, Some(&reader)).get("/blocks/crdb-sage?include_secrets=true");
    assert_eq!(reply.status, 200, "{}", reply.text);
    assert_eq!(
        reply.body["data"]["connection_info"]["password"], PLANTED,
        "{}",
        reply.text
    );
    target.ok(&[
        "block",
        "update",
        "crdb-sage",
        "--set",
        "connection_info.port=26258",
    ]);
    // Every read is counted: the source's and the target's (repeated reads are one
    // record with a count).
    let audit = target.json(&["audit", "ls", "--limit", "1000"]);
    let reads: i64 = audit
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["count"].as_i64().unwrap())
        .sum();
    assert_eq!(reads, 4, "{audit}");
}

#[test]
fn sqlite_backup_restores_into_postgres() {
    backup_and_restore(Backend::Sqlite, Backend::Postgres);
}

#[test]
fn postgres_backup_restores_into_sqlite() {
    backup_and_restore(Backend::Postgres, Backend::Sqlite);
}

#[test]
fn restore_checks_the_key_and_an_empty_target_before_writing() {
    let source = TestEnv::new(Backend::Sqlite);
    drop(seed(&source));
    let backup = source.dir.path().join("registry.bak");
    source.ok(&["backup", backup.to_str().unwrap()]);
    let path = backup.to_str().unwrap();

    // No key, and another key: refused, and the target store is not even created.
    let target = TestEnv::new(Backend::Sqlite);
    target
        .run(&["restore", path])
        .fails_with("MASTER_KEY_MISSING");
    let other = target.ok(&["key", "generate"]).stdout;
    target
        .run_with(
            &["restore", path],
            None,
            &[("BLOCKYARD_MASTER_KEY", other.trim())],
        )
        .fails_with("WRONG_MASTER_KEY");
    assert!(!target.data_dir().join("blockyard.db").exists());

    // A store in use is refused as it is.
    let used = target_with_key(Backend::Postgres, &source);
    used.ok(&[
        "block",
        "create",
        "mine",
        "--type",
        "json",
        "--set-json",
        "value=1",
    ]);
    let before = used.snapshot();
    let refused = used.run(&["restore", path]).fails_with("INVALID_INPUT");
    assert!(refused.stderr.contains("empty store"), "{}", refused.stderr);
    assert_eq!(used.snapshot(), before);

    // Not a backup; a backup from a newer build.
    let target = target_with_key(Backend::Sqlite, &source);
    let export = write_file(
        target.dir.path(),
        "x.json",
        r#"{"format": "blockyard-export/1"}"#,
    );
    target
        .run(&["restore", export.to_str().unwrap()])
        .fails_with("INVALID_INPUT");
    let newer = std::fs::read_to_string(&backup).unwrap().replace(
        "\"migrations\":[",
        "\"migrations\":[\"2099-01-01-000001_future\",",
    );
    let newer = write_file(target.dir.path(), "newer.bak", &newer);
    let run = target
        .run(&["restore", newer.to_str().unwrap()])
        .fails_with("INVALID_INPUT");
    assert!(run.stderr.contains("newer Blockyard"), "{}", run.stderr);
}

#[test]
fn a_restore_killed_halfway_leaves_the_target_empty() {
    let source = TestEnv::new(Backend::Sqlite);
    drop(seed(&source));
    let backup = source.dir.path().join("registry.bak");
    source.ok(&["backup", backup.to_str().unwrap()]);
    let path = backup.to_str().unwrap();
    let target = target_with_key(Backend::Postgres, &source);
    let crashed = target.run_with(
        &["restore", path],
        None,
        &[("BLOCKYARD_CRASH_AT", "restore-half-written")],
    );
    assert_ne!(crashed.code, 0, "the crash point was not reached");
    // Nothing was committed: the same restore now succeeds from the start.
    target.ok(&["restore", path]);
    assert_eq!(everything(&target), everything(&source));
}
