//! The audit log over time: `audit export` (JSON lines, oldest first, resumable with
//! `--after`) and `GET /audit/export`, `audit prune --before` by hand (batches, itself
//! recorded), the server's own pruning past `--audit-retention`, and repeated reads
//! folded into one counted record per `--audit-window`.
use crate::support::*;
use diesel::prelude::*;

/// Secret reads by a token, each an audit record; answers the server's admin API.
fn reads(env: &TestEnv, server: &Server, n: usize) {
    let reader = token(env, &format!("reader{n}"), &["blocks:read-secrets"], &[]);
    let api = Api::new(server, Some(&reader));
    for _ in 0..n {
        assert_eq!(
            api.get("/blocks/crdb-sage?include_secrets=true").status,
            200
        );
    }
}

fn ids(lines: &str) -> Vec<i64> {
    lines
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["id"]
                .as_i64()
                .unwrap()
        })
        .collect()
}

#[test]
fn export_resumes_and_prune_deletes_only_old_records() {
    let env = TestEnv::new(Backend::Sqlite);
    env.ok(&["init"]);
    create_crdb_sage(&env, "planted-AUDIT-secret", &[]).success();
    let admin = token(&env, "ops", &["admin"], &[]);
    // A record per read, so that there are records to page through.
    let server = Server::start(&env, &["--audit-window", "0"]);
    reads(&env, &server, 25);

    let all = env.ok(&["audit", "export"]).stdout;
    let every = ids(&all);
    assert_eq!(every.len(), 25, "{all}");
    assert!(every.windows(2).all(|w| w[0] < w[1]), "not oldest first");
    assert!(!all.contains("planted-AUDIT-secret"));
    let rest = env
        .ok(&["audit", "export", "--after", &every[9].to_string()])
        .stdout;
    assert_eq!(ids(&rest), every[10..]);

    // Over HTTP, paged by the last id.
    let api = Api::new(&server, Some(&admin));
    let (mut after, mut shipped) = (0, Vec::<i64>::new());
    loop {
        let page = api.get(&format!("/audit/export?after={after}&limit=10"));
        assert_eq!(page.status, 200, "{}", page.text);
        let got = ids(&page.text);
        shipped.extend(&got);
        match got.last() {
            Some(last) if got.len() == 10 => after = *last,
            _ => break,
        }
    }
    assert_eq!(shipped, every);
    assert_eq!(api.get("/audit/export?after=x").status, 400);
    drop(server);

    // Ten records made 40 days old; a prune of what is older than 30 days takes them.
    env.sql(&format!(
        "UPDATE audit_log SET at = at - {} WHERE id <= {}",
        40_i64 * 24 * 3600 * 1000,
        every[9]
    ));
    let report = env.json(&["audit", "prune", "--before", "30d"]);
    assert_eq!(report["deleted"], 10, "{report}");
    let left = ids(&env.ok(&["audit", "export"]).stdout);
    assert_eq!(&left[..15], &every[10..], "a recent record was pruned");
    let recorded = env.json(&["audit", "ls", "--limit", "1"]);
    assert_eq!(recorded[0]["action"], "prune-audit", "{recorded}");
    assert!(recorded[0]["actor"].as_str().unwrap().starts_with("local:"));
    // Nothing more to prune: nothing deleted, nothing recorded.
    assert_eq!(
        env.json(&["audit", "prune", "--before", "30d"])["deleted"],
        0
    );
    assert_eq!(ids(&env.ok(&["audit", "export"]).stdout).len(), 16);
    env.run(&["audit", "prune", "--before", "sometime"])
        .fails_with("INVALID_INPUT");
}

on_both_stores!(the_server_prunes_past_its_retention, |env: TestEnv| {
    create_crdb_sage(&env, "planted-AUDIT-secret", &[]).success();
    let server = Server::start(&env, &["--audit-retention", "0", "--audit-window", "0"]);
    reads(&env, &server, 6);
    drop(server);
    env.sql(&format!(
        "UPDATE audit_log SET at = at - {} WHERE id IN (SELECT id FROM audit_log ORDER BY id LIMIT 4)",
        10_i64 * 24 * 3600 * 1000
    ));
    // Pruning runs as the server starts, then every ten minutes.
    let server = Server::start(&env, &["--audit-retention", "7d"]);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let log = env.json(&["audit", "ls"]);
        let actions: Vec<&str> = log
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["action"].as_str().unwrap())
            .collect();
        if actions.contains(&"prune-audit") {
            assert_eq!(
                actions.iter().filter(|a| **a == "read-secrets").count(),
                2,
                "{log}"
            );
            let prune = log
                .as_array()
                .unwrap()
                .iter()
                .find(|r| r["action"] == "prune-audit")
                .unwrap();
            assert_eq!(prune["actor"], "scheduler");
            assert!(
                prune["block"].as_str().unwrap().contains("4 to delete"),
                "{prune}"
            );
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the server did not prune: {log}"
        );
        std::thread::yield_now();
    }
    drop(server);
});

on_both_stores!(
    repeated_reads_are_one_record_with_their_count,
    |env: TestEnv| {
        create_crdb_sage(&env, "planted-AUDIT-secret", &[]).success();
        let server = Server::start(&env, &[]);
        reads(&env, &server, 40);
        // A refusal is a record of its own, even within the window.
        let stranger = token(&env, "stranger", &["blocks:read"], &[]);
        let refused =
            Api::new(&server, Some(&stranger)).get("/blocks/crdb-sage?include_secrets=true");
        assert_eq!(refused.status, 403);
        reads(&env, &server, 2);

        let log = env.json(&["audit", "ls", "--block", "crdb-sage", "--since", "1h"]);
        let records = log.as_array().unwrap();
        let reads_of = |actor: &str| {
            records
                .iter()
                .filter(|r| r["actor"] == actor && r["action"] == "read-secrets")
                .collect::<Vec<_>>()
        };
        let forty = reads_of("reader40");
        assert_eq!(forty.len(), 1, "{log}");
        assert_eq!(forty[0]["count"], 40, "{log}");
        assert_ne!(forty[0]["request_id"], forty[0]["last_request_id"]);
        assert!(forty[0]["at"].as_str() <= forty[0]["last_at"].as_str());
        let two = reads_of("reader2");
        assert_eq!((two.len(), &two[0]["count"]), (1, &serde_json::json!(2)));
        let refusal = reads_of("stranger");
        assert_eq!(refusal.len(), 1, "{log}");
        assert_eq!(
            (refusal[0]["outcome"].as_str(), refusal[0]["count"].as_i64()),
            (Some("FORBIDDEN"), Some(1))
        );
        let table = env.ok(&["audit", "ls"]).stdout;
        assert!(table.contains("\t40\t"), "{table}");
        assert!(!table.contains("planted-AUDIT-secret"));

        // The open records are not exported until their window has passed; what comes
        // before them is (the tokens' creation is not audited: only the refusal can).
        let exported = env.ok(&["audit", "export"]).stdout;
        assert_eq!(exported, "", "an open record was exported");
        drop(server);
        env.sql("UPDATE audit_log SET open_until = open_until - 3600000");
        let exported = env.ok(&["audit", "export"]).stdout;
        let counts: i64 = exported
            .lines()
            .map(|l| {
                serde_json::from_str::<serde_json::Value>(l).unwrap()["count"]
                    .as_i64()
                    .unwrap()
            })
            .sum();
        assert_eq!(counts, 43, "{exported}");
        // Shipped to another database (a fresh SQLite file, as a log system would
        // hold them), the records answer the same counts as `audit ls`.
        let shipped = env.dir.path().join("shipped.db");
        let mut conn = SqliteConnection::establish(shipped.to_str().unwrap()).unwrap();
        diesel::sql_query("CREATE TABLE audit (id INTEGER PRIMARY KEY, record TEXT NOT NULL)")
            .execute(&mut conn)
            .unwrap();
        for line in exported.lines() {
            diesel::sql_query(
                "INSERT INTO audit (id, record) VALUES (json_extract(?1, '$.id'), ?1)",
            )
            .bind::<diesel::sql_types::Text, _>(line)
            .execute(&mut conn)
            .unwrap();
        }
        #[derive(diesel::QueryableByName)]
        struct Count {
            #[diesel(sql_type = diesel::sql_types::Text)]
            actor: String,
            #[diesel(sql_type = diesel::sql_types::BigInt)]
            reads: i64,
        }
        let mut shipped: Vec<(String, i64)> = diesel::sql_query(
            "SELECT json_extract(record, '$.actor') AS actor, \
             SUM(json_extract(record, '$.count')) AS reads FROM audit GROUP BY 1 ORDER BY 1",
        )
        .load::<Count>(&mut conn)
        .unwrap()
        .into_iter()
        .map(|c| (c.actor, c.reads))
        .collect();
        let log = env.json(&["audit", "ls"]);
        let mut listed: Vec<(String, i64)> = Vec::new();
        for r in log.as_array().unwrap() {
            let actor = r["actor"].as_str().unwrap().to_owned();
            match listed.iter_mut().find(|(a, _)| *a == actor) {
                Some((_, n)) => *n += r["count"].as_i64().unwrap(),
                None => listed.push((actor, r["count"].as_i64().unwrap())),
            }
        }
        listed.sort();
        shipped.sort();
        assert_eq!(shipped, listed);
    }
);

on_both_stores!(
    reads_are_counted_by_every_writer_and_after_a_prune,
    |env: TestEnv| {
        create_crdb_sage(&env, "planted-AUDIT-secret", &[]).success();
        // Three writer threads on PostgreSQL (SQLite has one whatever is asked), readers
        // in parallel: every read is counted once, whichever writer took it.
        let server = Server::start(&env, &["--audit-writers", "3"]);
        let reader = token(&env, "reader", &["blocks:read-secrets"], &[]);
        std::thread::scope(|scope| {
            for _ in 0..4 {
                scope.spawn(|| {
                    let api = Api::new(&server, Some(&reader));
                    for _ in 0..25 {
                        let reply = api.get("/blocks/crdb-sage?include_secrets=true");
                        assert_eq!(reply.status, 200, "{}", reply.text);
                    }
                });
            }
        });
        let counted = |env: &TestEnv| -> i64 {
            let log = env.json(&["audit", "ls", "--block", "crdb-sage"]);
            log.as_array()
                .unwrap()
                .iter()
                .filter(|r| r["action"] == "read-secrets")
                .map(|r| r["count"].as_i64().unwrap())
                .sum()
        };
        assert_eq!(counted(&env), 100);

        // A prune that takes the records still open: the next reads open new ones.
        let report = env.json(&["audit", "prune", "--before", "0s"]);
        assert!(report["deleted"].as_i64().unwrap() >= 1, "{report}");
        assert_eq!(counted(&env), 0);
        let api = Api::new(&server, Some(&reader));
        for _ in 0..3 {
            assert_eq!(
                api.get("/blocks/crdb-sage?include_secrets=true").status,
                200
            );
        }
        assert_eq!(counted(&env), 3);
        drop(server);
    }
);

/// A stopped server commits what its audit writers hold and closes their connections
/// (the checkpointer's first), so SQLite removes its WAL: the store is one file again,
/// ready to copy, and the reads are in it.
#[test]
fn a_stopped_server_leaves_no_wal_behind() {
    let env = TestEnv::new(Backend::Sqlite);
    env.ok(&["init"]);
    create_crdb_sage(&env, "planted-AUDIT-secret", &[]).success();
    let server = Server::start(&env, &["--audit-window", "0"]);
    reads(&env, &server, 5);
    let [wal, shm] = ["blockyard.db-wal", "blockyard.db-shm"].map(|f| env.data_dir().join(f));
    assert!(wal.exists(), "the server runs in WAL mode");
    drop(server);
    for leftover in [wal, shm] {
        assert!(!leftover.exists(), "{} was left behind", leftover.display());
    }
    let log = env.json(&["audit", "ls", "--block", "crdb-sage"]);
    let reads = log.as_array().unwrap().iter();
    let reads = reads.filter(|r| r["action"] == "read-secrets").count();
    assert_eq!(reads, 5, "{log}");
}
