//! One store, several readers and writers: kept reads see every change at once, and two
//! servers on one PostgreSQL never lose a write.

use std::time::Duration;

use serde_json::json;

use crate::support::*;

// A server keeps blocks it has read; every later read must still see each change at
// once, whoever made it (here the CLI, another process on the same store), and be
// audited like the first.
on_both_stores!(kept_reads_see_every_change_at_once, |env: TestEnv| {
    env.ok(&["init"]);
    let databot = token(&env, "databot", &["blocks:read-secrets:crdb-*"], &[]);
    let server = Server::start(&env, &["--block-cache", "1h"]);
    let api = Api::new(&server, Some(&databot));
    let password = |name: &str| {
        let reply = api.get(&format!("/blocks/{name}?include_secrets=true"));
        match reply.status {
            200 => reply.body["data"]["connection_info"]["password"]
                .as_str()
                .unwrap()
                .to_owned(),
            _ => reply.body["error"]["code"].as_str().unwrap().to_owned(),
        }
    };
    let create = |password: &str, extra: &[&str]| {
        let mut args = vec![
            "block",
            "create",
            "crdb-sage",
            "--url",
            "cockroachdb+psycopg2://databot@db.internal:26257/sage",
            "--password-stdin",
        ];
        args.extend_from_slice(extra);
        env.run_stdin(&args, password).success();
    };
    create("first-pw", &[]);
    let id = env.json(&["block", "inspect", "crdb-sage"])["id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(password("crdb-sage"), "first-pw");
    assert_eq!(password("crdb-sage"), "first-pw");

    // An update by another process.
    env.run_stdin(
        &["block", "update", "crdb-sage", "--password-stdin"],
        "second-pw",
    )
    .success();
    assert_eq!(password("crdb-sage"), "second-pw");
    let masked = api.get("/blocks/crdb-sage");
    assert_eq!(masked.body["version"], 2);
    assert_eq!(
        masked.body["data"]["connection_info"]["password"],
        "********"
    );

    // Deleted and created again with the same id: version 1 again, new contents.
    env.ok(&["block", "delete", "crdb-sage"]);
    assert_eq!(password("crdb-sage"), "BLOCK_NOT_FOUND");
    create("third-pw", &["--id", &id, "--replace-deleted"]);
    assert_eq!(password("crdb-sage"), "third-pw");
    env.run_stdin(&["block", "delete", "crdb-sage"], "")
        .success();
    std::thread::sleep(Duration::from_millis(5));
    create("fourth-pw", &["--id", &id, "--replace-deleted"]);
    assert_eq!(password("crdb-sage"), "fourth-pw");

    // Renamed away: the old name is gone at once.
    env.ok(&["block", "rename", "crdb-sage", "crdb-old"]);
    assert_eq!(password("crdb-sage"), "BLOCK_NOT_FOUND");
    assert_eq!(password("crdb-old"), "fourth-pw");

    // Every read with secrets is on record, the ones answered from memory too.
    let records = env.json(&["audit", "ls", "--limit", "100"]);
    // Repeated successful reads are one record with a count.
    let reads: Vec<(&str, i64)> = records
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["action"] == "read-secrets")
        .map(|r| (r["outcome"].as_str().unwrap(), r["count"].as_i64().unwrap()))
        .collect();
    assert_eq!(reads.iter().map(|r| r.1).sum::<i64>(), 8, "{reads:?}");
    assert_eq!(reads.iter().filter(|r| r.0 == "BLOCK_NOT_FOUND").count(), 2);
});

#[test]
fn two_servers_on_one_postgres_never_lose_a_write() {
    let env = TestEnv::new(Backend::Postgres);
    env.ok(&["init"]);
    let admin = token(&env, "admin", &["admin"], &["--expires-in", "1h"]);
    let one = Server::start(&env, &["--quiet"]);
    let two = Server::start(&env, &["--quiet"]);
    let block = json!({"name": "counter", "block_type": "json", "data": {"value": 0}});
    assert_eq!(
        Api::new(&one, Some(&admin)).post("/blocks", &block).status,
        201
    );
    assert_eq!(
        Api::new(&two, Some(&admin)).get("/blocks/counter").body["data"]["value"],
        0
    );
    let threads: Vec<_> = (0..4)
        .map(|i| {
            let api = Api::new(if i % 2 == 0 { &one } else { &two }, Some(&admin));
            std::thread::spawn(move || {
                let mut conflicts = 0;
                for _ in 0..10 {
                    loop {
                        let current = api.get("/blocks/counter");
                        let value = current.body["data"]["value"].as_i64().unwrap();
                        let etag = current.etag.unwrap();
                        let put = api.send(
                            "PUT",
                            "/blocks/counter",
                            Some(&json!({"data": {"value": value + 1}})),
                            &[("If-Match", &etag)],
                        );
                        match put.status {
                            200 => break,
                            412 => conflicts += 1,
                            other => panic!("{other}: {}", put.text),
                        }
                    }
                }
                conflicts
            })
        })
        .collect();
    let conflicts: i32 = threads.into_iter().map(|t| t.join().unwrap()).sum();
    let end = Api::new(&two, Some(&admin)).get("/blocks/counter");
    assert_eq!(end.body["data"]["value"], 40, "a write was lost");
    assert_eq!(end.body["version"], 41);
    eprintln!("{conflicts} conflicts were retried");
}
