//! The block lifecycle, as the registry-core issue describes it.

use crate::support::*;

const SECRET: &str = "s3cr3t-lifecycle";

fn crdb_sage_with_secret(env: &TestEnv) -> Run {
    create_crdb_sage(env, &format!("{SECRET}\n"), &[]).success()
}

on_both_stores!(lifecycle, |env: TestEnv| {
    let first = crdb_sage_with_secret(&env);
    assert!(
        first.stderr.contains("Initialised a new Blockyard store"),
        "{}",
        first.stderr
    );
    assert!(
        first.stderr.contains("Master key created"),
        "{}",
        first.stderr
    );

    let ls = env.ok(&["block", "ls"]);
    assert!(
        ls.stdout
            .starts_with("crdb-sage\tsqlalchemy-connector\t1\t"),
        "{}",
        ls.stdout
    );

    let masked = env.ok(&["block", "inspect", "crdb-sage"]);
    assert!(
        masked.stdout.contains("\"password\": \"********\""),
        "{}",
        masked.stdout
    );
    assert!(!masked.stdout.contains(SECRET));

    let shown = env.json(&["block", "inspect", "crdb-sage", "--show-secrets"]);
    let info = &shown["data"]["connection_info"];
    assert_eq!(info["password"], SECRET);
    assert_eq!(info["port"], 26257);
    assert_eq!(info["driver"], "cockroachdb+psycopg2");
    assert_eq!(shown["version"], 1);
    let id = shown["id"].as_str().unwrap().to_owned();
    assert!(uuid::Uuid::parse_str(&id).is_ok());

    env.ok(&[
        "block",
        "update",
        "crdb-sage",
        "--set",
        "connection_info.port=26258",
        "--if-version",
        "1",
    ]);
    env.run(&[
        "block",
        "update",
        "crdb-sage",
        "--set",
        "connection_info.port=1",
        "--if-version",
        "1",
    ])
    .fails_with("VERSION_CONFLICT");
    let updated = env.json(&["block", "inspect", "crdb-sage", "--show-secrets"]);
    assert_eq!(updated["data"]["connection_info"]["port"], 26258);
    assert_eq!(
        updated["data"]["connection_info"]["password"], SECRET,
        "update keeps the secret"
    );
    assert_eq!(updated["version"], 2);

    env.ok(&["block", "rename", "crdb-sage", "crdb-sage-prod"]);
    env.run(&["block", "inspect", "crdb-sage"])
        .fails_with("BLOCK_NOT_FOUND");
    let renamed = env.json(&["block", "inspect", "crdb-sage-prod"]);
    assert_eq!(renamed["id"], id.as_str(), "rename keeps the id");

    let history = env.json(&["block", "history", "crdb-sage-prod"]);
    let changes: Vec<_> = history
        .as_array()
        .unwrap()
        .iter()
        .map(|v| {
            (
                v["version"].as_i64().unwrap(),
                v["change"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        changes,
        vec![
            (1, "create".into()),
            (2, "update".into()),
            (3, "rename".into())
        ]
    );
    assert_eq!(
        history[0]["data"]["connection_info"]["port"], 26257,
        "history keeps the old value"
    );

    env.ok(&["block", "delete", "crdb-sage-prod"]);
    assert_eq!(env.json(&["block", "ls"]), serde_json::json!([]));
    env.run(&["block", "delete", "crdb-sage-prod"])
        .fails_with("BLOCK_NOT_FOUND");
});

on_both_stores!(list_filters_by_type_and_prefix, |env: TestEnv| {
    for name in ["crdb-a", "crdb-b", "pg_main"] {
        env.ok(&[
            "block",
            "create",
            name,
            "--no-password",
            "--url",
            "postgresql://u@db.example:5432/app",
        ]);
    }
    env.run_stdin(
        &[
            "block",
            "create",
            "crdb-token",
            "--type",
            "secret",
            "--password-stdin",
        ],
        "t",
    )
    .success();
    let names = |args: &[&str]| -> Vec<String> {
        let mut all = vec!["block", "ls"];
        all.extend_from_slice(args);
        env.json(&all)
            .as_array()
            .unwrap()
            .iter()
            .map(|b| b["name"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(names(&[]), ["crdb-a", "crdb-b", "crdb-token", "pg_main"]);
    assert_eq!(
        names(&["--prefix", "crdb-"]),
        ["crdb-a", "crdb-b", "crdb-token"]
    );
    assert_eq!(names(&["--type", "secret"]), ["crdb-token"]);
    assert_eq!(
        names(&["--type", "sqlalchemy-connector", "--prefix", "crdb"]),
        ["crdb-a", "crdb-b"]
    );
    // '_' is a literal in a prefix, not a LIKE wildcard.
    assert_eq!(names(&["--prefix", "pg_"]), ["pg_main"]);
    assert!(names(&["--prefix", "crdb_"]).is_empty());
    assert_eq!(names(&["--limit", "2"]), ["crdb-a", "crdb-b"]);
    // The next page starts after the last name of the one before.
    assert_eq!(
        names(&["--limit", "2", "--after", "crdb-b"]),
        ["crdb-token", "pg_main"]
    );
    assert_eq!(
        names(&["--prefix", "crdb-", "--after", "crdb-a"]),
        ["crdb-b", "crdb-token"]
    );
    assert!(names(&["--after", "pg_main"]).is_empty());
    env.run(&["block", "ls", "--after", "Bad Name"])
        .fails_with("INVALID_BLOCK_NAME");
});

on_both_stores!(url_and_env_forms, |env: TestEnv| {
    env.ok(&["init"]);
    // A password is never taken from the command line, not even inside --url.
    let run = env
        .run(&[
            "block",
            "create",
            "from-url",
            "--url",
            "postgres://us%3Aer:p%40ss%2F%C3%B6@[::1]:6543/app?sslmode=require",
        ])
        .fails_with("INVALID_INPUT");
    assert!(!run.all_output().contains("p%40ss"), "{}", run.stderr);
    env.run_stdin(
        &[
            "block",
            "create",
            "from-url",
            "--url",
            "postgres://us%3Aer@[::1]:6543/app?sslmode=require",
            "--password-stdin",
        ],
        "p@ss/ö",
    )
    .success();
    let info =
        env.json(&["block", "inspect", "from-url", "--show-secrets"])["data"]["connection_info"]
            .clone();
    assert_eq!(info["username"], "us:er");
    assert_eq!(info["password"], "p@ss/ö");
    assert_eq!(info["host"], "::1");
    assert_eq!(info["port"], 6543);
    assert_eq!(info["query"]["sslmode"], "require");

    // A URL-form connection keeps its password sealed too (given in a file: never in
    // an argument).
    env.run(&[
        "block",
        "create",
        "as-url",
        "--type",
        "sqlalchemy-connector",
        "--set",
        "connection_info=postgresql+psycopg2://app:url-PLANTED@db.example:5432/app",
    ])
    .fails_with("INVALID_INPUT");
    let doc = write_file(
        env.dir.path(),
        "as-url.json",
        r#"{"connection_info": "postgresql+psycopg2://app:url-PLANTED@db.example:5432/app"}"#,
    );
    env.ok(&[
        "block",
        "create",
        "as-url",
        "--type",
        "sqlalchemy-connector",
        "--data",
        doc.to_str().unwrap(),
    ]);
    let masked = env.json(&["block", "inspect", "as-url"]);
    assert_eq!(
        masked["data"]["connection_info"],
        "postgresql+psycopg2://app:********@db.example:5432/app"
    );
    let shown = env.json(&["block", "inspect", "as-url", "--show-secrets"]);
    assert_eq!(
        shown["data"]["connection_info"],
        "postgresql+psycopg2://app:url-PLANTED@db.example:5432/app"
    );
    assert!(!contains_bytes(&env.store_bytes(), "url-PLANTED"));

    let sesame = env.dir.path().join("sesame");
    std::fs::create_dir_all(&sesame).unwrap();
    write_file(
        &sesame,
        ".env",
        "SESAME_DATABASE_ADMIN_USER=\"postgres.mpodkwxxymffedxjmsqv\"\nSESAME_DATABASE_ADMIN_PASSWORD=\"env-pw\"\n\
         SESAME_DATABASE_NAME=\"postgres\"\nSESAME_DATABASE_HOST=\"aws-0-us-east-1.pooler.supabase.com\"\nSESAME_DATABASE_PORT=6543\n",
    );
    env.ok(&[
        "block",
        "create",
        "sesame",
        "--from-env",
        "SESAME_DATABASE",
        "--env-file",
        "sesame/.env",
    ]);
    let info =
        env.json(&["block", "inspect", "sesame", "--show-secrets"])["data"]["connection_info"]
            .clone();
    assert_eq!(info["username"], "postgres.mpodkwxxymffedxjmsqv");
    assert_eq!(info["password"], "env-pw");
    assert_eq!(info["host"], "aws-0-us-east-1.pooler.supabase.com");
    assert_eq!(info["port"], 6543);
    assert_eq!(info["database"], "postgres");
});

// From the process environment, with the app user preferred over the admin user.
on_both_stores!(from_env_prefers_the_app_user, |env: TestEnv| {
    env.run_with(
        &[
            "block",
            "create",
            "sesame-app",
            "--no-password",
            "--from-env",
            "SESAME_DATABASE",
        ],
        None,
        &[
            ("SESAME_DATABASE_NAME", "sesame"),
            ("SESAME_DATABASE_USER", "app"),
            ("SESAME_DATABASE_ADMIN_USER", "admin"),
            ("SESAME_DATABASE_HOST", "h"),
        ],
    )
    .success();
    assert_eq!(
        env.json(&["block", "inspect", "sesame-app"])["data"]["connection_info"]["username"],
        "app"
    );
});

on_both_stores!(explicit_ids_and_other_types, |env: TestEnv| {
    let id = "6f1c3a52-8d7e-4c3b-9a0e-0d5f1b2c3d4e";
    env.ok(&[
        "block",
        "create",
        "settings",
        "--type",
        "json",
        "--id",
        id,
        "--set-json",
        "value={\"retries\": 3}",
    ]);
    let block = env.json(&["block", "inspect", "settings"]);
    assert_eq!(block["id"], id);
    assert_eq!(block["data"]["value"]["retries"], 3);

    let key_file = write_file(env.dir.path(), "es.key", "es-api-key\n");
    env.ok(&[
        "block",
        "create",
        "search",
        "--type",
        "http-service",
        "--set",
        "url=https://es.internal:9200",
        "--set-secret-file",
        &format!("api_key={}", key_file.display()),
        "--set",
        "verify_tls=false",
    ]);
    let shown = env.json(&["block", "inspect", "search", "--show-secrets"]);
    assert_eq!(shown["data"]["api_key"], "es-api-key");
    assert_eq!(shown["data"]["verify_tls"], false);
    assert_eq!(
        env.json(&["block", "inspect", "search"])["data"]["api_key"],
        "********"
    );
});

on_both_stores!(user_types_and_migrations, |env: TestEnv| {
    let types = env.json(&["type", "ls"]);
    let slugs: Vec<_> = types
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["slug"].as_str().unwrap().to_owned())
        .collect();
    for slug in ["sqlalchemy-connector", "secret", "json", "http-service"] {
        assert!(slugs.contains(&slug.to_owned()), "{slugs:?}");
    }
    let file = write_file(
        env.dir.path(),
        "qdrant.json",
        r#"{"slug": "qdrant", "name": "Qdrant", "secret_fields": ["api_key"], "primary_secret": "api_key",
            "schema": {"type": "object", "properties": {"url": {"type": "string"}, "api_key": {"type": "string"},
            "collection": {"type": "string"}}, "required": ["url"], "additionalProperties": false}}"#,
    );
    env.ok(&["type", "register", file.to_str().unwrap()]);
    env.run(&["type", "register", file.to_str().unwrap()])
        .fails_with("BLOCK_TYPE_ALREADY_EXISTS");
    env.ok(&["type", "register", file.to_str().unwrap(), "--replace"]);
    assert_eq!(
        env.json(&["type", "inspect", "qdrant"])["secret_fields"][0],
        "api_key"
    );
    env.run_stdin(
        &[
            "block",
            "create",
            "vectors",
            "--type",
            "qdrant",
            "--set",
            "url=http://q:6333",
            "--password-stdin",
        ],
        "q-key",
    )
    .success();
    assert_eq!(
        env.json(&["block", "inspect", "vectors", "--show-secrets"])["data"]["api_key"],
        "q-key"
    );
    env.run(&[
        "block",
        "create",
        "v2",
        "--type",
        "qdrant",
        "--set",
        "collection=x",
    ])
    .fails_with("INVALID_BLOCK_DATA");

    let status = env.json(&["database", "status"]);
    assert!(status["pending"].as_array().unwrap().is_empty());
    assert_eq!(
        status["applied"].as_array().unwrap().len(),
        status["migrations"].as_array().unwrap().len()
    );
    assert_eq!(
        env.json(&["database", "migrate"])["applied"],
        serde_json::json!([])
    );
});

on_both_stores!(a_partly_migrated_store_is_refused, |env: TestEnv| {
    env.ok(&["init"]);
    env.sql("DELETE FROM __diesel_schema_migrations");
    env.sql("INSERT INTO __diesel_schema_migrations (version) VALUES ('00000000000000')");
    env.run(&["block", "ls"]).fails_with("STORE_NOT_MIGRATED");
});
