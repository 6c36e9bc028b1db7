//! Leased database users against the real PostgreSQL: a user per lease in the block's
//! group role, which the database itself refuses after its expiry; revocation that
//! ends sessions and hands over what the user owns; many cycles that leave nothing
//! behind; crashes at each step finished by the reconciler; orphans dropped; `exec
//! --lease`; the HTTP routes and their scope.

use std::time::{Duration, Instant};

use diesel::prelude::*;
use serde_json::{Value, json};

use crate::support::*;

/// A database with a table, a group role that may read it (and whose members must
/// give their password, even on loopback), and blocks: `pg-admin` and `app`, which
/// declares leases with a prefix of this test's own. Dropped with everything leased.
struct Target {
    db: String,
    group: String,
    prefix: String,
}

impl Target {
    fn new(env: &TestEnv, ttl: &str, max_ttl: &str, grace: &str) -> Target {
        let tag = &uuid::Uuid::new_v4().simple().to_string()[..10];
        let target = Target {
            db: format!("bt_lease_{tag}"),
            group: format!("bt_lease_grp_{tag}"),
            prefix: format!("btl{tag}_"),
        };
        pg(&format!("CREATE DATABASE {}", target.db));
        pg(&format!(
            "CREATE ROLE {} NOLOGIN IN ROLE blockyard_password_auth",
            target.group
        ));
        target.inside("CREATE TABLE facts (x int); INSERT INTO facts VALUES (1), (2)");
        target.inside(&format!(
            "GRANT SELECT ON facts TO {g}; GRANT CREATE ON SCHEMA public TO {g}",
            g = target.group
        ));
        env.run_stdin(
            &[
                "block",
                "create",
                "pg-admin",
                "--url",
                &pg_admin_url(),
                "--password-stdin",
            ],
            "unused-on-trust",
        )
        .success();
        let url = format!("postgresql://nobody@127.0.0.1:5432/{}", target.db);
        env.run_stdin(
            &["block", "create", "app", "--url", &url, "--password-stdin"],
            "x",
        )
        .success();
        let set = |kv: String| ["--set".to_owned(), kv];
        let mut args: Vec<String> = ["block", "update", "app"].map(String::from).to_vec();
        for kv in [
            "lease.admin=pg-admin".to_owned(),
            format!("lease.role={}", target.group),
            format!("lease.ttl={ttl}"),
            format!("lease.max_ttl={max_ttl}"),
            format!("lease.grace={grace}"),
            format!("lease.prefix={}", target.prefix),
        ] {
            args.extend(set(kv));
        }
        env.ok(&args.iter().map(String::as_str).collect::<Vec<_>>());
        target
    }

    /// Runs SQL inside the target database as the server's superuser.
    fn inside(&self, sql: &str) -> String {
        let out = std::process::Command::new("psql")
            .args([
                "-h",
                "127.0.0.1",
                "-U",
                "postgres",
                "-d",
                &self.db,
                "-Atc",
                sql,
            ])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{sql}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    }

    /// The leased users the server holds now.
    fn users(&self) -> Vec<String> {
        let names = pg(&format!(
            "SELECT string_agg(rolname, ',' ORDER BY rolname) FROM pg_roles \
             WHERE starts_with(rolname, '{}')",
            self.prefix
        ));
        names
            .split(',')
            .filter(|n| !n.is_empty())
            .map(str::to_owned)
            .collect()
    }

    /// Privileges in the database granted to roles that no longer exist.
    fn dangling_grants(&self) -> i64 {
        self.inside(
            "SELECT count(*) FROM pg_class c, aclexplode(c.relacl) a \
             WHERE a.grantee <> 0 AND a.grantee NOT IN (SELECT oid FROM pg_roles)",
        )
        .parse()
        .unwrap()
    }

    fn connect(&self, user: &str, password: &str) -> ConnectionResult<PgConnection> {
        let url = format!(
            "postgres://{user}:{}@127.0.0.1:5432/{}",
            percent_encoding::utf8_percent_encode(password, percent_encoding::NON_ALPHANUMERIC),
            self.db
        );
        PgConnection::establish(&url)
    }
}

impl Drop for Target {
    fn drop(&mut self) {
        let _ = std::process::Command::new("psql")
            .args(["-h", "127.0.0.1", "-U", "postgres", "-qc"])
            .arg(format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.db))
            .output();
        for role in self.users().into_iter().chain([self.group.clone()]) {
            let _ = std::process::Command::new("psql")
                .args(["-h", "127.0.0.1", "-U", "postgres", "-qc"])
                .arg(format!("DROP ROLE IF EXISTS {role}"))
                .output();
        }
    }
}

fn field(value: &Value, key: &str) -> String {
    value[key]
        .as_str()
        .unwrap_or_else(|| panic!("{key}: {value}"))
        .to_owned()
}

/// Waits (bounded) until `done` holds.
fn until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !done() {
        assert!(Instant::now() < deadline, "{what} did not happen");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn a_lease_is_a_user_of_its_own_that_revocation_takes_apart() {
    let env = TestEnv::new(Backend::Sqlite);
    let target = Target::new(&env, "10m", "1h", "60s");
    // The group role may not look like a leased user (the reconciler drops those).
    let lookalike = format!("lease.role={}rw", target.prefix);
    env.run(&["block", "update", "app", "--set", &lookalike])
        .fails_with("INVALID_BLOCK_DATA");
    let issued = env.json(&["lease", "create", "app", "--ttl", "5m"]);
    let (user, password) = (field(&issued, "username"), field(&issued, "password"));
    assert!(user.starts_with(&target.prefix), "{user}");
    assert!(
        target.connect(&user, "wrong").is_err(),
        "the password is not checked"
    );
    let mut conn = target
        .connect(&user, &password)
        .expect("the leased user logs in");
    let sum = text(&mut conn, "SELECT sum(x)::text AS value FROM facts");
    assert_eq!(sum, "3", "the group role's privileges");
    diesel::sql_query("CREATE TABLE mine (y int)")
        .execute(&mut conn)
        .unwrap();
    diesel::sql_query("GRANT SELECT ON mine TO PUBLIC")
        .execute(&mut conn)
        .unwrap();

    // Revoked while it owns a table and holds a session: the session is ended, the
    // table handed to the group role, the user gone.
    let id = field(&issued, "lease_id");
    env.ok(&["lease", "revoke", &id]);
    assert!(target.users().is_empty(), "{:?}", target.users());
    assert!(
        diesel::sql_query("SELECT 1").execute(&mut conn).is_err(),
        "the session lives on"
    );
    assert_eq!(
        target.inside("SELECT tableowner FROM pg_tables WHERE tablename = 'mine'"),
        target.group
    );
    assert_eq!(target.dangling_grants(), 0);
    let listed = env.json(&["lease", "ls", "--all"]);
    assert_eq!(listed[0]["state"], "revoked", "{listed}");
    let audit = env.json(&["audit", "ls", "--block", "app"]);
    let text = audit.to_string();
    for action in ["lease-issue", "lease-revoke"] {
        assert!(text.contains(action), "{action}: {audit}");
    }
    assert!(text.contains(&user) && !text.contains(&password), "{audit}");
}

#[test]
fn the_database_refuses_an_expired_lease_without_blockyard() {
    let env = TestEnv::new(Backend::Sqlite);
    let target = Target::new(&env, "2s", "1h", "0s");
    let issued = env.json(&["lease", "create", "app"]);
    let (user, password) = (field(&issued, "username"), field(&issued, "password"));
    target
        .connect(&user, &password)
        .expect("a live lease logs in");
    // Nothing of Blockyard runs now: PostgreSQL itself refuses the login after VALID UNTIL.
    until("the expired user being refused", || {
        target.connect(&user, &password).is_err()
    });
    let report = env.json(&["lease", "reconcile"]);
    assert_eq!(report["revoked"][0], issued["lease_id"], "{report}");
    assert!(target.users().is_empty());
}

#[test]
fn many_leases_leave_nothing_behind() {
    let env = TestEnv::new(Backend::Sqlite);
    let target = Target::new(&env, "10m", "1h", "60s");
    let registry = env.registry("30s");
    let cycles = 1000;
    let started = Instant::now();
    for _ in 0..cycles {
        let issued = registry.issue_lease("app", None).unwrap();
        registry.revoke_lease(&issued.lease.lease_id).unwrap();
    }
    eprintln!("{cycles} issue/revoke cycles in {:?}", started.elapsed());
    assert!(target.users().is_empty(), "{:?}", target.users());
    assert_eq!(target.dangling_grants(), 0);
    let members = pg(&format!(
        "SELECT count(*) FROM pg_auth_members m JOIN pg_roles r ON r.oid = m.roleid \
         WHERE r.rolname = '{}'",
        target.group
    ));
    assert_eq!(members, "0");
    assert!(registry.leases(None, false).unwrap().is_empty());
}

#[test]
fn a_crash_at_any_step_is_finished_by_the_reconciler() {
    const RUNS: usize = 5;
    let env = TestEnv::new(Backend::Sqlite);
    let target = Target::new(&env, "10m", "1h", "60s");
    // Five runs stopped at each step of an issue and of a revocation.
    for _ in 0..RUNS {
        for point in ["lease-journaled", "lease-user-created"] {
            let create = ["lease", "create", "app"];
            let crashed = env.run_with(&create, None, &[("BLOCKYARD_CRASH_AT", point)]);
            assert_ne!(crashed.code, 0, "the issue did not stop at {point}");
        }
        for point in ["lease-revoking", "lease-nologin", "lease-released"] {
            let id = field(&env.json(&["lease", "create", "app"]), "lease_id");
            let revoke = ["lease", "revoke", id.as_str()];
            let crashed = env.run_with(&revoke, None, &[("BLOCKYARD_CRASH_AT", point)]);
            assert_ne!(crashed.code, 0, "the revocation did not stop at {point}");
        }
    }
    // A user the store never knew (a crash between CREATE ROLE and any journal).
    let orphan = format!("{}app_0123456789ab", target.prefix);
    pg(&format!(
        "CREATE ROLE {orphan} LOGIN IN ROLE {}",
        target.group
    ));
    let live = env.json(&["lease", "create", "app"]);
    // An issue cut short is told from one under way by its age: the reconciler runs
    // with its clock two minutes on.
    let report = env
        .program(
            std::path::Path::new("faketime"),
            &["-f", "+2m", BIN, "lease", "reconcile", "-o", "json"],
        )
        .output()
        .unwrap();
    let report: Value = serde_json::from_slice(&report.stdout).unwrap();
    assert_eq!(
        report["revoked"].as_array().unwrap().len(),
        5 * RUNS,
        "{report}"
    );
    assert_eq!(report["orphans"], json!([orphan]), "{report}");
    assert_eq!(target.users(), [field(&live, "username")]);
    let leases = env.json(&["lease", "ls"]);
    assert_eq!(leases.as_array().unwrap().len(), 1, "{leases}");
    target
        .connect(&field(&live, "username"), &field(&live, "password"))
        .expect("the live lease still works");
}

#[test]
fn exec_lease_runs_a_command_as_a_user_of_its_own() {
    let env = TestEnv::new(Backend::Sqlite);
    let target = Target::new(&env, "10m", "1h", "60s");
    let ran = env.ok(&[
        "exec",
        "--lease",
        "app",
        "--",
        "psql",
        "-Atc",
        "SELECT current_user",
    ]);
    assert!(
        ran.stdout.trim().starts_with(&target.prefix),
        "{}",
        ran.stdout
    );
    assert!(target.users().is_empty(), "revoked when the command exits");
    let code = env
        .run(&["exec", "--lease", "app", "--", "sh", "-c", "exit 7"])
        .code;
    assert_eq!(code, 7);

    // SIGTERM to blockyard reaches the command, and the lease is still revoked.
    let mut child = env
        .command(&["exec", "--lease", "app", "--", "sleep", "30"])
        .spawn()
        .unwrap();
    until("the leased user", || target.users().len() == 1);
    let pid = rustix::process::Pid::from_child(&child);
    rustix::process::kill_process(pid, rustix::process::Signal::TERM).unwrap();
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(143));
    assert!(target.users().is_empty());
}

#[test]
fn leases_over_http_need_their_own_scope() {
    let env = TestEnv::new(Backend::Sqlite);
    let target = Target::new(&env, "10m", "1h", "60s");
    let leaser = token(&env, "leaser", &["blocks:lease:app"], &[]);
    let reader = token(
        &env,
        "reader",
        &["blocks:read-secrets", "blocks:write"],
        &[],
    );
    let server = Server::start(&env, &[]);
    let api = Api::new(&server, Some(&leaser));
    let issued = api.send("POST", "/blocks/app/leases", None, &[]);
    assert_eq!(issued.status, 201, "{}", issued.text);
    let (user, password) = (
        field(&issued.body, "username"),
        field(&issued.body, "password"),
    );
    target
        .connect(&user, &password)
        .expect("the leased user logs in");
    let id = field(&issued.body, "lease_id");
    let renewed = api.post(&format!("/leases/{id}/renew"), &json!({"ttl": "20m"}));
    assert_eq!(renewed.status, 200, "{}", renewed.text);
    let listed = api.get("/leases");
    assert_eq!(listed.body[0]["lease_id"], id.as_str(), "{}", listed.text);
    assert!(!listed.text.contains(&password));

    // Reading secrets or writing the block is not leasing; nor may a writer choose
    // which admin block acts.
    let other = api.with_token(Some(&reader));
    assert_error(
        &other.send("POST", "/blocks/app/leases", None, &[]),
        403,
        "FORBIDDEN",
    );
    assert_error(
        &other.delete(&format!("/leases/{id}")),
        404,
        "LEASE_NOT_FOUND",
    );
    let mut data = env.json(&["block", "inspect", "app"])["data"].clone();
    data["lease"]["admin"] = json!("someone-else");
    let moved = other.put("/blocks/app", &json!({"data": data}));
    assert_error(&moved, 403, "FORBIDDEN");

    let revoked = api.delete(&format!("/leases/{id}"));
    assert_eq!(revoked.body["state"], "revoked", "{}", revoked.text);
    assert!(target.users().is_empty());

    // An admin sees a block's live leases on its page in the web UI, and revokes one.
    let admin = token(&env, "ops", &["admin"], &[]);
    let live = field(
        &api.send("POST", "/blocks/app/leases", None, &[]).body,
        "username",
    );
    let mut ui = crate::ui::Browser::new(&server);
    ui.sign_in(&admin);
    let page = ui.get("/ui/blocks/app");
    assert!(
        page.body.contains(&live) && page.body.contains("Revoke"),
        "{}",
        page.body
    );
    let lease_id = field(&api.get("/leases").body[0], "lease_id");
    let csrf = page.csrf();
    let after = ui.post(
        "/ui/blocks/app/leases/revoke",
        &[("csrf", &csrf), ("id", &lease_id)],
    );
    assert_eq!(after.status, 200, "{}", after.body);
    assert!(after.body.contains("No live leases"), "{}", after.body);
    assert!(target.users().is_empty());
    let audit = env.json(&["audit", "ls", "--block", "app"]).to_string();
    for action in ["lease-issue", "lease-renew", "lease-revoke"] {
        assert!(audit.contains(action), "{action}: {audit}");
    }
    assert!(!server.log().contains(&password) && !audit.contains(&password));
}

/// 200 queries a second through a leased pool for 30 s, with `ttl=3s, max_ttl=9s`:
/// renewals, then rollovers to new users, and not one failed query.
#[test]
fn a_leased_pool_rolls_over_without_a_failed_query() {
    let env = TestEnv::new(Backend::Sqlite);
    let target = Target::new(&env, "3s", "9s", "1s");
    let registry = env.registry("30s");
    let pool = registry.leased_pool::<PgConnection>("app").unwrap();
    let (mut failed, mut users, mut latencies) = (0, Vec::<String>::new(), Vec::new());
    let started = Instant::now();
    let mut next = started;
    while started.elapsed() < Duration::from_secs(30) {
        let before = (pool.rollovers(), Instant::now());
        let user = pool.get().map_err(|e| e.to_string()).and_then(|mut conn| {
            let user = text(&mut *conn, "SELECT current_user::text AS value");
            let sum = text(&mut *conn, "SELECT sum(x)::text AS value FROM facts");
            (sum == "3").then_some(user).ok_or(sum)
        });
        latencies.push((before.0, before.1.elapsed()));
        match user {
            Ok(user) if !users.contains(&user) => users.push(user),
            Ok(_) => {}
            Err(_) => failed += 1,
        }
        next += Duration::from_millis(5);
        std::thread::sleep(next.saturating_duration_since(Instant::now()));
    }
    let p99 = |during: bool| {
        let mut picked: Vec<Duration> = latencies
            .iter()
            .filter(|(rolled, _)| (*rolled > 0) == during)
            .map(|(_, l)| *l)
            .collect();
        picked.sort();
        picked
            .get(picked.len() * 99 / 100)
            .copied()
            .unwrap_or_default()
    };
    eprintln!(
        "{} queries, {failed} failed, {} rollovers, users {users:?}; p99 before the first \
         rollover {:?}, after it {:?}",
        latencies.len(),
        pool.rollovers(),
        p99(false),
        p99(true)
    );
    assert_eq!(failed, 0, "{:?}", pool.last_error());
    assert!(pool.rollovers() >= 2, "{}", pool.rollovers());
    assert!(users.len() as u64 > pool.rollovers(), "{users:?}");
    drop(pool);
    assert!(target.users().is_empty(), "{:?}", target.users());
}

/// MariaDB: a leased user in the group role (its default role), locked, its sessions
/// killed and dropped when revoked; MariaDB has no `VALID UNTIL`, so an expired lease
/// is the reconciler's to revoke.
#[cfg(feature = "mysql")]
#[test]
fn mariadb_leases_are_users_in_the_group_role() {
    use diesel::MysqlConnection;
    const ROOT: &str = "mysql://root@127.0.0.1:3306/mysql";
    let env = TestEnv::new(Backend::Sqlite);
    let tag = &uuid::Uuid::new_v4().simple().to_string()[..10];
    let (db, group, prefix) = (
        format!("bt_ml_{tag}"),
        format!("bt_mlg_{tag}"),
        format!("btm{tag}_"),
    );
    let mut root = MysqlConnection::establish(ROOT).expect("MariaDB (see scripts/test)");
    let run = |conn: &mut MysqlConnection, sql: &str| diesel::sql_query(sql).execute(conn).unwrap();
    for sql in [
        format!("CREATE DATABASE {db}"),
        format!("CREATE TABLE {db}.facts (x int)"),
        format!("INSERT INTO {db}.facts VALUES (1), (2)"),
        format!("CREATE ROLE {group}"),
        format!("GRANT SELECT ON {db}.* TO {group}"),
    ] {
        run(&mut root, &sql);
    }
    let cleanup = scopeguard(|| {
        if let Ok(mut root) = MysqlConnection::establish(ROOT) {
            let _ = diesel::sql_query(format!("DROP DATABASE IF EXISTS {db}")).execute(&mut root);
            let _ = diesel::sql_query(format!("DROP ROLE IF EXISTS {group}")).execute(&mut root);
        }
    });
    env.run_stdin(
        &[
            "block",
            "create",
            "my-admin",
            "--no-password",
            "--url",
            ROOT,
        ],
        "",
    )
    .success();
    let url = format!("mysql://nobody@127.0.0.1:3306/{db}");
    env.run_stdin(
        &["block", "create", "wh", "--no-password", "--url", &url],
        "",
    )
    .success();
    let lease = [
        "lease.admin=my-admin".to_owned(),
        format!("lease.role={group}"),
        format!("lease.prefix={prefix}"),
        "lease.ttl=1s".to_owned(),
    ];
    let mut args = vec!["block", "update", "wh"];
    for kv in &lease {
        args.extend(["--set", kv.as_str()]);
    }
    env.ok(&args);

    let issued = env.json(&["lease", "create", "wh", "--ttl", "10m"]);
    let (user, password) = (field(&issued, "username"), field(&issued, "password"));
    let login = |user: &str, password: &str| {
        let url = format!(
            "mysql://{user}:{}@127.0.0.1:3306/{db}",
            percent_encoding::utf8_percent_encode(password, percent_encoding::NON_ALPHANUMERIC)
        );
        MysqlConnection::establish(&url)
    };
    assert!(login(&user, "wrong").is_err());
    let mut conn = login(&user, &password).expect("the leased user logs in");
    let sum = text(&mut conn, "SELECT CAST(SUM(x) AS CHAR) AS value FROM facts");
    assert_eq!(sum, "3", "the group role is the user's default role");
    env.ok(&["lease", "revoke", &field(&issued, "lease_id")]);
    assert!(
        diesel::sql_query("SELECT 1").execute(&mut conn).is_err(),
        "the session lives on"
    );
    assert!(login(&user, &password).is_err());
    let left = |root: &mut MysqlConnection| {
        text(
            root,
            &format!(
                "SELECT CAST(COUNT(*) AS CHAR) AS value FROM mysql.user WHERE User LIKE '{prefix}%'"
            ),
        )
    };
    assert_eq!(left(&mut root), "0");

    // No VALID UNTIL: the reconciler revokes an expired lease.
    let expiring = env.json(&["lease", "create", "wh"]);
    login(&field(&expiring, "username"), &field(&expiring, "password"))
        .expect("a live lease logs in");
    until("the lease's expiry", || {
        env.json(&["lease", "ls"])[0]["expires_at"]
            .as_str()
            .and_then(blockyard::time::parse_rfc3339)
            < Some(blockyard::time::now_millis())
    });
    let report = env.json(&["lease", "reconcile"]);
    assert_eq!(report["revoked"][0], expiring["lease_id"], "{report}");
    assert_eq!(left(&mut root), "0");
    drop(cleanup);
}

/// Runs `f` when dropped (the test's own cleanup, also when it fails).
fn scopeguard(f: impl FnOnce()) -> impl Drop {
    struct Guard<F: FnOnce()>(Option<F>);
    impl<F: FnOnce()> Drop for Guard<F> {
        fn drop(&mut self) {
            if let Some(f) = self.0.take() {
                f();
            }
        }
    }
    Guard(Some(f))
}

/// A revocation that fails (the admin block cannot reach its server) is kept with its
/// error, counted in `/ready`, and finished by a later reconcile.
#[test]
fn a_failed_revocation_is_kept_and_tried_again() {
    let env = TestEnv::new(Backend::Sqlite);
    let target = Target::new(&env, "10m", "1h", "60s");
    let id = field(&env.json(&["lease", "create", "app"]), "lease_id");
    let unreachable = format!("postgresql://postgres@127.0.0.1:{}/postgres", closed_port());
    env.run_stdin(
        &[
            "block",
            "update",
            "pg-admin",
            "--url",
            &unreachable,
            "--password-stdin",
        ],
        "x",
    )
    .success();
    assert_ne!(env.run(&["lease", "revoke", &id]).code, 0);
    // Nor is a lease journaled that the admin block cannot make.
    assert_ne!(env.run(&["lease", "create", "app"]).code, 0);
    let listed = env.json(&["lease", "ls"]);
    assert_eq!(listed.as_array().unwrap().len(), 1, "{listed}");
    assert_eq!(listed[0]["state"], "revoking", "{listed}");
    assert_eq!(listed[0]["attempts"], 1, "{listed}");
    assert!(listed[0]["last_error"].as_str().is_some(), "{listed}");
    assert_eq!(target.users().len(), 1);
    let server = Server::start(&env, &["--lease-check", "1h"]);
    let ready = Api::root(&server, None).get("/ready");
    assert_eq!(ready.body["leases_failing"], 1, "{}", ready.text);
    drop(server);

    // The admin block reaches its server again: the next reconcile (once the backoff
    // has passed) finishes the revocation.
    env.run_stdin(
        &[
            "block",
            "update",
            "pg-admin",
            "--url",
            &pg_admin_url(),
            "--password-stdin",
        ],
        "x",
    )
    .success();
    until("the revocation to be finished", || {
        env.run(&["lease", "reconcile"]).code == 0 && target.users().is_empty()
    });
    assert_eq!(env.json(&["lease", "ls", "--all"])[0]["state"], "revoked");
}
