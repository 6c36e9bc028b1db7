//! Moving blocks between stores: an SQLite store exported (masked, and with secrets
//! sealed by age) and imported into a PostgreSQL store with the same ids and secrets;
//! plans, re-runs that change nothing, masked updates that keep the target's secret,
//! all-or-nothing imports, passphrases, and `inspect -o json` read back by `create --data`.

use age::secrecy::ExposeSecret;

use crate::support::*;

const PLANTED: &str = "planted-EXPORT-secret";

fn seed(env: &TestEnv) {
    env.ok(&["init"]);
    create_crdb_sage(env, PLANTED, &[]).success();
    env.ok(&[
        "block",
        "create",
        "settings",
        "--type",
        "json",
        "--set-json",
        r#"value={"retries": 3}"#,
    ]);
    register_ftp_block(env, "ftp-pw");
}

fn export(env: &TestEnv, args: &[&str]) -> std::path::PathBuf {
    let run = env.ok(&[&["export"], args].concat());
    let path = env.dir.path().join(format!("export-{}.json", args.len()));
    std::fs::write(&path, &run.stdout).unwrap();
    path
}

#[test]
fn sqlite_to_postgres_with_age_secrets() {
    let source = TestEnv::new(Backend::Sqlite);
    seed(&source);
    let identity = age::x25519::Identity::generate();
    let recipient = identity.to_public().to_string();
    let key = write_file(
        source.dir.path(),
        "key.txt",
        identity.to_string().expose_secret(),
    );

    let masked = export(&source, &[]);
    let sealed = export(&source, &["--include-secrets", "--recipient", &recipient]);
    for file in [&masked, &sealed] {
        let text = std::fs::read_to_string(file).unwrap();
        assert!(
            !text.contains(PLANTED) && !text.contains("ftp-pw"),
            "a secret in {}",
            file.display()
        );
    }
    assert!(
        std::fs::read_to_string(&sealed)
            .unwrap()
            .contains("BEGIN AGE ENCRYPTED FILE")
    );

    let target = TestEnv::new(Backend::Postgres);
    target.ok(&["init"]);
    // Masked blocks that are new here are refused, and nothing is written.
    target
        .run(&["import", masked.to_str().unwrap()])
        .fails_with("INVALID_INPUT");
    assert_eq!(target.json(&["block", "ls"]), serde_json::json!([]));
    assert!(
        !target.json(&["type", "ls"]).to_string().contains("\"ftp\""),
        "a type was registered"
    );
    // Secrets need the identity; a plan changes nothing.
    target
        .run(&["import", sealed.to_str().unwrap()])
        .fails_with("INVALID_INPUT");
    let plan = target.json(&[
        "import",
        sealed.to_str().unwrap(),
        "--identity",
        key.to_str().unwrap(),
        "--dry-run",
    ]);
    assert_eq!(plan["create"].as_array().unwrap().len(), 3, "{plan}");
    assert_eq!(plan["applied"], false);
    assert_eq!(target.json(&["block", "ls"]), serde_json::json!([]));
    let plan = target.json(&[
        "import",
        sealed.to_str().unwrap(),
        "--identity",
        key.to_str().unwrap(),
    ]);
    assert_eq!(plan["applied"], true, "{plan}");
    for name in ["crdb-sage", "settings", "ftp-main"] {
        let a = source.json(&["block", "inspect", name, "--show-secrets"]);
        let b = target.json(&["block", "inspect", name, "--show-secrets"]);
        assert_eq!((&a["id"], &a["data"]), (&b["id"], &b["data"]), "{name}");
    }
    // A second import changes nothing and writes no version.
    let again = target.json(&[
        "import",
        sealed.to_str().unwrap(),
        "--identity",
        key.to_str().unwrap(),
    ]);
    assert_eq!(again["unchanged"].as_array().unwrap().len(), 3, "{again}");
    assert_eq!(
        target
            .json(&["block", "history", "crdb-sage"])
            .as_array()
            .unwrap()
            .len(),
        1
    );

    // A masked update keeps the secret stored here (where the block connects does not
    // change: that would need the secret in the export).
    source.ok(&[
        "block",
        "update",
        "crdb-sage",
        "--set",
        "requires.server_version=>=23",
    ]);
    let update = export(&source, &["--name", "crdb-sage"]);
    let plan = target.json(&["import", update.to_str().unwrap()]);
    assert_eq!(plan["update"], serde_json::json!(["crdb-sage"]), "{plan}");
    let b = target.json(&["block", "inspect", "crdb-sage", "--show-secrets"]);
    assert_eq!(b["data"]["connection_info"]["password"], PLANTED);
    assert_eq!(b["data"]["requires"]["server_version"], ">=23");

    // All or nothing: a bad block in the middle leaves the target as it was.
    let before = target.snapshot();
    let mut doc: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&update).unwrap()).unwrap();
    let mut bad = doc["blocks"][0].clone();
    bad["name"] = "broken".into();
    bad["id"] = uuid::Uuid::new_v4().to_string().into();
    bad["data"] = serde_json::json!({"connection_info": {"driver": "postgresql", "port": "x"}});
    let mut good = doc["blocks"][0].clone();
    good["data"]["requires"]["server_version"] = ">=24".into();
    doc["blocks"] = serde_json::json!([good, bad]);
    let partial = write_file(target.dir.path(), "partial.json", &doc.to_string());
    let dump = target.store_dump();
    target
        .run(&["import", partial.to_str().unwrap()])
        .fails_with("INVALID_BLOCK_DATA");
    assert_eq!(
        target.snapshot(),
        before,
        "a failed import changed the target"
    );
    assert!(target.store_dump() == dump, "the store's dump changed");
}

#[test]
fn an_import_killed_halfway_leaves_the_target_unchanged() {
    let source = TestEnv::new(Backend::Sqlite);
    seed(&source);
    write_file(source.dir.path(), "pass.txt", "correct horse\n");
    let file = export(
        &source,
        &["--include-secrets", "--passphrase-file", "pass.txt"],
    );
    let target = TestEnv::new(Backend::Postgres);
    target.ok(&["init"]);
    write_file(target.dir.path(), "pass.txt", "correct horse\n");
    let dump = target.store_dump();
    let args = [
        "import",
        file.to_str().unwrap(),
        "--passphrase-file",
        "pass.txt",
    ];
    let crashed = target.run_with(
        &args,
        None,
        &[("BLOCKYARD_CRASH_AT", "import-half-written")],
    );
    assert_ne!(crashed.code, 0, "the crash point was not reached");
    assert!(
        target.store_dump() == dump,
        "a killed import left part of itself"
    );
    // The same import then goes through whole, its user type included.
    let plan = target.json(&args);
    assert_eq!(plan["create"].as_array().unwrap().len(), 3, "{plan}");
    assert_eq!(plan["types"], serde_json::json!(["ftp"]), "{plan}");
}

#[test]
fn passphrase_exports_and_whole_blocks_as_documents() {
    let source = TestEnv::new(Backend::Sqlite);
    seed(&source);
    let pass = write_file(source.dir.path(), "pass.txt", "correct horse battery\n");
    let sealed = export(
        &source,
        &[
            "--include-secrets",
            "--passphrase-file",
            pass.to_str().unwrap(),
            "--prefix",
            "crdb-",
        ],
    );
    let target = TestEnv::new(Backend::Sqlite);
    target.ok(&["init"]);
    let wrong = write_file(target.dir.path(), "wrong.txt", "wrong\n");
    target
        .run(&[
            "import",
            sealed.to_str().unwrap(),
            "--passphrase-file",
            wrong.to_str().unwrap(),
        ])
        .fails_with("WRONG_EXPORT_KEY");
    target.ok(&[
        "import",
        sealed.to_str().unwrap(),
        "--passphrase-file",
        pass.to_str().unwrap(),
    ]);
    let b = target.json(&["block", "inspect", "crdb-sage", "--show-secrets"]);
    assert_eq!(b["data"]["connection_info"]["password"], PLANTED);

    // `inspect -o json` is a document `create --data` reads (its type included).
    let whole = source
        .ok(&["block", "inspect", "settings", "-o", "json"])
        .stdout;
    let file = write_file(target.dir.path(), "settings.json", &whole);
    target.ok(&[
        "block",
        "create",
        "settings-copy",
        "--data",
        file.to_str().unwrap(),
    ]);
    let copy = target.json(&["block", "inspect", "settings-copy"]);
    assert_eq!(
        (&copy["block_type"], &copy["data"]["value"]["retries"]),
        (&serde_json::json!("json"), &serde_json::json!(3))
    );
}

#[test]
fn export_and_import_over_http() {
    use serde_json::json;
    let source = TestEnv::new(Backend::Sqlite);
    seed(&source);
    let admin = token(&source, "ops", &["admin"], &[]);
    let writer = token(
        &source,
        "writer",
        &["blocks:write", "blocks:read-secrets"],
        &[],
    );
    let server = Server::start(&source, &[]);
    let (api, writer_api) = (
        Api::new(&server, Some(&admin)),
        Api::new(&server, Some(&writer)),
    );
    assert_eq!(writer_api.get("/export").status, 403);
    let masked = api.get("/export?prefix=crdb-");
    assert_eq!(masked.status, 200, "{}", masked.text);
    assert_eq!(masked.body["blocks"].as_array().unwrap().len(), 1);
    assert!(masked.body.get("secrets").is_none());
    assert_eq!(api.get("/export?recipient=nope").status, 400);

    let identity = age::x25519::Identity::generate();
    let recipient = identity.to_public().to_string();
    let sealed = api.get(&format!(
        "/export?recipient={recipient}&name=crdb-sage&name=ftp-main"
    ));
    assert_eq!(sealed.status, 200, "{}", sealed.text);
    assert!(!sealed.text.contains(PLANTED) && !sealed.text.contains("ftp-pw"));
    assert_eq!(sealed.body["blocks"].as_array().unwrap().len(), 2);
    let audit = source.json(&["audit", "ls"]);
    assert!(
        audit.to_string().contains("export-secrets"),
        "the sealed export is not on record: {audit}"
    );

    // Into another server's store: a plan, then the import, audited with it.
    let target = TestEnv::new(Backend::Postgres);
    target.ok(&["init"]);
    let target_admin = token(&target, "ops", &["admin"], &[]);
    let target_server = Server::start(&target, &[]);
    let target_api = Api::new(&target_server, Some(&target_admin));
    let body = json!({
        "export": sealed.body,
        "identity": identity.to_string().expose_secret(),
    });
    let plan = target_api.post("/import?dry_run=true", &body);
    assert_eq!(plan.status, 200, "{}", plan.text);
    assert_eq!(plan.body["applied"], false);
    assert_eq!(plan.body["types"], json!(["ftp"]));
    assert_eq!(target.json(&["block", "ls"]), json!([]));
    assert_eq!(target_api.post("/import?existing=maybe", &body).status, 400);
    let done = target_api.post("/import", &body);
    assert_eq!(done.status, 200, "{}", done.text);
    assert_eq!(done.body["create"], json!(["crdb-sage", "ftp-main"]));
    let b = target.json(&["block", "inspect", "crdb-sage", "--show-secrets"]);
    assert_eq!(b["data"]["connection_info"]["password"], PLANTED);
    let history = target.json(&["block", "history", "crdb-sage"]);
    assert_eq!(history[0]["actor"], "ops", "{history}");
    assert!(
        target
            .json(&["audit", "ls"])
            .to_string()
            .contains("\"import\"")
    );
    // Without the identity the secrets cannot be opened.
    let refused = target_api.post("/import", &json!({"export": sealed.body}));
    assert_eq!(refused.status, 400, "{}", refused.text);
    // A key that does not fit is the caller's mistake (422), as is a file that is not
    // age (400); neither is the store's DECRYPTION_FAILED, and neither writes.
    let before = target.json(&["block", "ls"]);
    let other = age::x25519::Identity::generate();
    let mut not_age = sealed.body.clone();
    not_age["secrets"] = json!("not age");
    for (body, status, code) in [
        (
            json!({"export": sealed.body, "identity": other.to_string().expose_secret()}),
            422,
            "WRONG_EXPORT_KEY",
        ),
        (
            json!({"export": sealed.body, "passphrase": ""}),
            422,
            "WRONG_EXPORT_KEY",
        ),
        (
            json!({"export": not_age, "passphrase": "x"}),
            400,
            "INVALID_INPUT",
        ),
    ] {
        let answer = target_api.post("/import?existing=overwrite", &body);
        assert_eq!(answer.status, status, "{}", answer.text);
        assert_eq!(answer.body["error"]["code"], code, "{}", answer.text);
    }
    assert_eq!(target.json(&["block", "ls"]), before);
    for log in [server.log(), target_server.log()] {
        assert!(!log.contains(PLANTED) && !log.contains("AGE-SECRET-KEY"));
    }
}

/// Seed 001: dev and prod keep the same ids. `--overwrite` replaces a same-named block of
/// another id with the export's, id included, so the next plain import is a no-op.
#[test]
fn overwrite_gives_the_target_the_exports_id() {
    let source = TestEnv::new(Backend::Sqlite);
    let target = TestEnv::new(Backend::Sqlite);
    create_crdb_sage(&source, "source-pw", &[]);
    create_crdb_sage(&target, "target-pw", &[]);
    let export = source.ok(&["export"]).stdout;
    let file = write_file(target.dir.path(), "export.json", &export);
    let file = file.to_str().unwrap();
    let refused = target
        .run(&["import", file])
        .fails_with("BLOCK_ALREADY_EXISTS");
    assert!(
        refused
            .stderr
            .contains("a block named \"crdb-sage\" is here with another id"),
        "{}",
        refused.stderr
    );
    let replaced = target.ok(&["import", file, "--overwrite"]);
    assert!(replaced.stdout.contains("replace 1"), "{}", replaced.stdout);
    let id = |env: &TestEnv| env.json(&["block", "inspect", "crdb-sage"])["id"].clone();
    assert_eq!(id(&target), id(&source));
    // The masked export kept the target's own secret; a plain import now changes nothing.
    let shown = target.json(&["block", "inspect", "crdb-sage", "--show-secrets"]);
    assert_eq!(shown["data"]["connection_info"]["password"], "target-pw");
    let again = target.ok(&["import", file]);
    assert!(again.stdout.contains("unchanged 1"), "{}", again.stdout);
    let again = target.ok(&["import", file, "--overwrite"]);
    assert!(again.stdout.contains("unchanged 1"), "{}", again.stdout);
}

/// A whole block as `inspect -o json` prints it, given on stdin, brings its type as a
/// file does; and an empty page of `ls --after` says it is the end, not that none exist.
#[test]
fn a_whole_block_on_stdin_brings_its_type() {
    let env = TestEnv::new(Backend::Sqlite);
    env.ok(&["init"]);
    env.run_stdin(
        &[
            "block",
            "create",
            "a-secret",
            "--type",
            "secret",
            "--password-stdin",
        ],
        "s3cr3t-PLANTED",
    )
    .success();
    let whole = env
        .ok(&[
            "block",
            "inspect",
            "a-secret",
            "--show-secrets",
            "-o",
            "json",
        ])
        .stdout;
    let copy = env
        .run_stdin(&["block", "create", "b-copy", "--data", "-"], &whole)
        .success();
    assert!(copy.stdout.contains("type secret"), "{}", copy.stdout);
    let shown = env.json(&["block", "inspect", "b-copy", "--show-secrets"]);
    assert_eq!(shown["data"]["value"], "s3cr3t-PLANTED");
    let end = env.ok(&["block", "ls", "--after", "b-copy"]);
    assert_eq!(end.stdout, "");
    assert_eq!(end.stderr.trim(), "no more blocks after b-copy");
}
