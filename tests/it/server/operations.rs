//! Running the server in production: `/metrics` read by the Prometheus project's own
//! Python parser, the failed-authentication limit per client address (and the client
//! address a trusted proxy forwards), `/ready` failing when the store or the audit log
//! cannot be written and while the server drains, and SIGTERM's drain.

use std::time::{Duration, Instant};

use diesel::{Connection, PgConnection, RunQueryDsl};
use serde_json::Value;

use super::*;

/// Every family a scraper is promised, parsed by `prometheus_client`'s OpenMetrics
/// parser: name → [(labels, value)].
fn scrape(env: &TestEnv, server: &Server, token: &str) -> serde_json::Map<String, Value> {
    let reply = Api::root(server, Some(token)).get("/metrics");
    assert_eq!(reply.status, 200, "{}", reply.text);
    let script = r#"
import json, sys
from prometheus_client.openmetrics.parser import text_string_to_metric_families
out = {}
for family in text_string_to_metric_families(open(sys.argv[1]).read()):
    out[family.name] = [[s.name, s.labels, s.value] for s in family.samples]
print(json.dumps(out))
"#;
    let file = env.dir.path().join("metrics.txt");
    std::fs::write(&file, &reply.text).unwrap();
    let out = run_python(
        &python(),
        script,
        &[file.to_str().unwrap()],
        env.dir.path(),
        &[],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice::<Value>(&out.stdout)
        .unwrap()
        .as_object()
        .unwrap()
        .clone()
}

/// The value of `family`'s sample `sample` whose labels include `labels`.
fn sample(families: &serde_json::Map<String, Value>, sample: &str, labels: &[(&str, &str)]) -> f64 {
    let family = families
        .values()
        .flat_map(|f| f.as_array().unwrap())
        .find(|s| s[0] == sample && labels.iter().all(|(k, v)| s[1][*k].as_str() == Some(*v)));
    family.unwrap_or_else(|| panic!("no {sample} {labels:?}"))[2]
        .as_f64()
        .unwrap()
}

#[test]
fn metrics_are_openmetrics_text_with_every_family() {
    let env = TestEnv::new(Backend::Sqlite);
    let (server, api, _) = started(&env);
    assert_eq!(
        api.post("/blocks", &connector("crdb-sage", PLANTED)).status,
        201
    );
    for _ in 0..5 {
        assert_eq!(
            api.get("/blocks/crdb-sage?include_secrets=true").status,
            200
        );
    }
    let bad = api.with_token(Some("byd_0123456789abcdef_wrong"));
    assert_eq!(bad.get("/blocks").status, 401);
    let reader = token(&env, "reader", &["blocks:read"], &[]);
    assert_eq!(
        Api::root(&server, Some(&reader)).get("/metrics").status,
        403
    );
    assert_eq!(Api::root(&server, None).get("/metrics").status, 401);
    let scraper = token(&env, "prometheus", &["metrics"], &[]);
    let families = scrape(&env, &server, &scraper);
    let route = [
        ("route", "/api/v1/blocks/<name>"),
        ("method", "GET"),
        ("status", "200"),
    ];
    assert_eq!(
        sample(&families, "blockyard_http_requests_total", &route),
        5.0
    );
    let timed = [("route", "/api/v1/blocks/<name>"), ("method", "GET")];
    let count = sample(
        &families,
        "blockyard_http_request_duration_seconds_count",
        &timed,
    );
    assert_eq!(count, 5.0);
    let ok = [("outcome", "ok")];
    assert_eq!(sample(&families, "blockyard_secret_reads_total", &ok), 5.0);
    assert_eq!(
        sample(
            &families,
            "blockyard_secret_reads_total",
            &[("outcome", "refused")]
        ),
        0.0
    );
    let hits = sample(
        &families,
        "blockyard_block_cache_lookups_total",
        &[("outcome", "hit")],
    );
    assert_eq!(hits, 4.0, "the first read fills the cache");
    let invalid = [("reason", "invalid")];
    assert_eq!(
        sample(&families, "blockyard_auth_failures_total", &invalid),
        1.0
    );
    let missing = [("reason", "missing")];
    assert_eq!(
        sample(&families, "blockyard_auth_failures_total", &missing),
        1.0
    );
    let forbidden = [("reason", "forbidden")];
    assert_eq!(
        sample(&families, "blockyard_auth_failures_total", &forbidden),
        1.0
    );
    assert!(sample(&families, "blockyard_audit_batch_size_count", &[]) >= 1.0);
    assert!(
        sample(
            &families,
            "blockyard_audit_commit_duration_seconds_sum",
            &[]
        ) > 0.0
    );
    assert!(sample(&families, "blockyard_store_pool_wait_seconds_count", &[]) >= 5.0);
    assert!(
        sample(
            &families,
            "blockyard_store_connections",
            &[("state", "idle")]
        ) >= 1.0
    );
    assert_eq!(
        sample(&families, "blockyard_store_pool_timeouts_total", &[]),
        0.0
    );
    assert_eq!(
        sample(&families, "blockyard_password_rotations_total", &ok),
        0.0
    );
    let issued = [("operation", "issue"), ("outcome", "ok")];
    assert_eq!(
        sample(&families, "blockyard_lease_operations_total", &issued),
        0.0
    );
    assert_eq!(
        sample(&families, "blockyard_leases", &[("state", "live")]),
        0.0
    );
    assert_eq!(
        sample(&families, "blockyard_lease_revocations_failing", &[]),
        0.0
    );
    let version = [("version", env!("CARGO_PKG_VERSION"))];
    assert_eq!(sample(&families, "blockyard_build_info", &version), 1.0);
    assert!(!serde_json::to_string(&families).unwrap().contains(PLANTED));
    assert!(!server.log().contains(PLANTED));
}

#[test]
fn failed_authentications_are_limited_per_client_address() {
    let env = TestEnv::new(Backend::Sqlite);
    let limit = [
        "--auth-failures-burst",
        "5",
        "--auth-failures-per-minute",
        "60",
    ];
    let (server, good, _) = started_with(&env, &limit);
    assert_eq!(good.get("/blocks").status, 200);
    let bad = good.with_token(Some("byd_0123456789abcdef_wrong"));
    for _ in 0..5 {
        assert_eq!(bad.get("/blocks").status, 401);
    }
    let refused = bad.get("/blocks");
    assert_error(&refused, 429, "RATE_LIMITED");
    // Another address in X-Forwarded-For changes nothing: this peer is not a proxy.
    let forwarded = [("X-Forwarded-For", "198.51.100.7")];
    assert_eq!(bad.send("GET", "/blocks", None, &forwarded).status, 429);
    // A token this server verified passes whatever the address's failures.
    assert_eq!(good.get("/blocks").status, 200);
    let retry = ureq::get(&format!("{}/blocks", bad.base))
        .set("Authorization", "Bearer byd_0123456789abcdef_wrong")
        .call()
        .unwrap_err();
    let ureq::Error::Status(429, res) = retry else {
        panic!("not a 429")
    };
    let wait: u64 = res.header("Retry-After").unwrap().parse().unwrap();
    assert!((1..=60).contains(&wait), "{wait}");
    // The sign-in form's failures count too.
    let mut browser = crate::ui::Browser::new(&server);
    assert_eq!(browser.sign_in("byd_0123456789abcdef_wrong").status, 429);
}

#[test]
fn a_trusted_proxys_forwarded_address_is_the_client() {
    let env = TestEnv::new(Backend::Sqlite);
    let args = [
        "--auth-failures-burst",
        "3",
        "--trusted-proxies",
        "127.0.0.0/8",
    ];
    let (server, _, admin) = started_with(&env, &args);
    let bad = Api::new(&server, Some("byd_0123456789abcdef_wrong"));
    // The last address not a trusted proxy's is the client: a spoofed first entry
    // does not help.
    let flood = [("X-Forwarded-For", "203.0.113.1, 192.0.2.9")];
    for _ in 0..3 {
        assert_eq!(bad.send("GET", "/blocks", None, &flood).status, 401);
    }
    assert_eq!(bad.send("GET", "/blocks", None, &flood).status, 429);
    let spoofed = [("X-Forwarded-For", "203.0.113.2, 192.0.2.9")];
    assert_eq!(bad.send("GET", "/blocks", None, &spoofed).status, 429);
    let other = [("X-Forwarded-For", "192.0.2.10")];
    assert_eq!(bad.send("GET", "/blocks", None, &other).status, 401);
    // A token not yet verified here, from the flooding address, waits like the flood
    // (it would cost a store lookup); from its own address it passes, and once
    // verified it passes from anywhere.
    let good = Api::new(&server, Some(&admin));
    assert_eq!(good.send("GET", "/blocks", None, &flood).status, 429);
    assert_eq!(good.send("GET", "/blocks", None, &other).status, 200);
    assert_eq!(good.send("GET", "/blocks", None, &flood).status, 200);
}

/// Holds `sql` (a lock) in an open transaction on the test's store until dropped.
fn holding(env: &TestEnv, sql: &str) -> PgConnection {
    let mut conn = PgConnection::establish(&env.database_url()).unwrap();
    diesel::sql_query("BEGIN").execute(&mut conn).unwrap();
    diesel::sql_query(sql).execute(&mut conn).unwrap();
    conn
}

/// `/ready`'s status and how long it took to answer.
fn ready(server: &Server) -> (u16, Duration, Value) {
    let began = Instant::now();
    let reply = Api::root(server, None).get("/ready");
    (reply.status, began.elapsed(), reply.body)
}

#[test]
fn ready_fails_when_the_store_or_audit_log_cannot_be_written() {
    let env = TestEnv::new(Backend::Postgres);
    let (server, api, _) = started(&env);
    assert_eq!(
        api.post("/blocks", &connector("crdb-sage", PLANTED)).status,
        201
    );
    assert_eq!(ready(&server).0, 200);
    let lock = holding(
        &env,
        "LOCK TABLE server_heartbeats IN ACCESS EXCLUSIVE MODE",
    );
    let (status, took, body) = ready(&server);
    assert_eq!(status, 503, "{body}");
    assert!(took < Duration::from_secs(5), "{took:?}");
    drop(lock);
    assert_eq!(ready(&server).0, 200);
    // An audit commit that cannot finish makes the server not ready while it waits.
    let lock = holding(&env, "LOCK TABLE audit_log IN ACCESS EXCLUSIVE MODE");
    let reader = api.clone();
    let read = std::thread::spawn(move || reader.get("/blocks/crdb-sage?include_secrets=true"));
    let began = Instant::now();
    while ready(&server).0 == 200 {
        assert!(began.elapsed() < Duration::from_secs(5), "still ready");
    }
    assert_eq!(ready(&server).2["error"]["code"], "AUDIT_UNAVAILABLE");
    assert_eq!(read.join().unwrap().status, 503, "nothing shown unaudited");
    drop(lock);
    let began = Instant::now();
    while ready(&server).0 != 200 {
        assert!(
            began.elapsed() < Duration::from_secs(10),
            "never ready again"
        );
        assert_eq!(
            api.get("/blocks/crdb-sage?include_secrets=true").status,
            200
        );
    }
}

#[test]
fn sigterm_drains_then_stops_within_the_grace() {
    let env = TestEnv::new(Backend::Sqlite);
    let args = ["--drain-time", "2s", "--shutdown-grace", "6s"];
    let (mut server, api, _) = started_with(&env, &args);
    assert_eq!(ready(&server).0, 200, "a balancer is watching");
    let began = Instant::now();
    server.terminate();
    while ready(&server).0 == 200 {
        assert!(began.elapsed() < Duration::from_secs(2), "not draining");
    }
    assert_eq!(ready(&server).2["error"]["code"], "DRAINING");
    // Still serving while the balancer notices.
    assert_eq!(api.get("/blocks").status, 200);
    assert!(server.wait_exit(), "{}", server.log());
    let took = began.elapsed();
    assert!(
        took >= Duration::from_secs(2) && took < Duration::from_secs(6),
        "{took:?}"
    );
    assert!(server.log().contains("\"draining\""));
}

#[test]
fn without_a_balancer_watching_sigterm_stops_at_once() {
    let env = TestEnv::new(Backend::Sqlite);
    env.ok(&["init"]);
    let mut server = Server::start(&env, &["--drain-time", "5s"]);
    let (took, clean) = server.stop();
    assert!(clean, "{}", server.log());
    assert!(took < Duration::from_secs(3), "{took:?}");
}
