//! Several servers on one PostgreSQL store behind a real haproxy (Debian's, started on
//! loopback from `deploy/haproxy.cfg` with this test's ports): a UI session used
//! across servers, a revocation seen by the others at once, a rolling restart under
//! load with no failed request, and a crash that fails no more than what was in
//! flight.

use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crate::support::*;
use crate::ui::Browser;

/// haproxy in front of `servers`, from the example config in `deploy/`.
struct Balancer {
    child: Child,
    base: String,
    stats: String,
}

impl Drop for Balancer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Balancer {
    fn start(env: &TestEnv, servers: &[u16]) -> Balancer {
        let example = concat!(env!("CARGO_MANIFEST_DIR"), "/deploy/haproxy.cfg");
        let (front, stats) = (free_port(), free_port());
        let mut config = std::fs::read_to_string(example)
            .unwrap()
            .replace("127.0.0.1:4200", &format!("127.0.0.1:{front}"));
        for (i, port) in servers.iter().enumerate() {
            let example_port = format!("127.0.0.1:{}", 4201 + i);
            config = config.replace(&example_port, &format!("127.0.0.1:{port}"));
        }
        // The test reads each server's state from haproxy's own statistics page.
        config.push_str(&format!(
            "\nfrontend stats\n    bind 127.0.0.1:{stats}\n    stats enable\n    stats uri /stats\n"
        ));
        let path = env.dir.path().join("haproxy.cfg");
        std::fs::write(&path, config).unwrap();
        let child = Command::new("haproxy")
            .args(["-db", "-f"])
            .arg(&path)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("haproxy (Debian's package) is installed by scripts/test");
        let balancer = Balancer {
            child,
            base: format!("http://127.0.0.1:{front}"),
            stats: format!("http://127.0.0.1:{stats}/stats;csv"),
        };
        balancer.until(|b| b.up().len() == servers.len(), "every server is up");
        balancer
    }

    /// The servers haproxy counts as up now.
    fn up(&self) -> Vec<String> {
        let Ok(res) = ureq::get(&self.stats).call() else {
            return Vec::new();
        };
        let csv = res.into_string().unwrap_or_default();
        csv.lines()
            .filter(|l| l.starts_with("blockyard_servers,blockyard"))
            .filter(|l| l.split(',').nth(17) == Some("UP"))
            .map(|l| l.split(',').nth(1).unwrap().to_owned())
            .collect()
    }

    /// Waits (up to 30 s) until `condition` holds.
    fn until(&self, condition: impl Fn(&Balancer) -> bool, what: &str) {
        let began = Instant::now();
        while !condition(self) {
            assert!(began.elapsed() < Duration::from_secs(30), "never: {what}");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// Client threads reading a block through the balancer until stopped: requests made,
/// and each failure (a status other than 200, or no answer).
struct Load {
    stop: Arc<AtomicBool>,
    threads: Vec<std::thread::JoinHandle<(usize, Vec<String>)>>,
}

impl Load {
    fn start(base: &str, token: &str, clients: usize) -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let threads = (0..clients)
            .map(|_| {
                let (stop, url) = (stop.clone(), format!("{base}/api/v1/blocks/app"));
                let auth = format!("Bearer {token}");
                std::thread::spawn(move || {
                    let agent = ureq::agent();
                    let (mut made, mut failed) = (0, Vec::new());
                    while !stop.load(Ordering::SeqCst) {
                        made += 1;
                        match agent.get(&url).set("Authorization", &auth).call() {
                            Ok(res) if res.status() == 200 => {}
                            Ok(res) => failed.push(format!("status {}", res.status())),
                            Err(err) => failed.push(err.to_string()),
                        }
                    }
                    (made, failed)
                })
            })
            .collect();
        Load { stop, threads }
    }

    fn finish(self) -> (usize, Vec<String>) {
        self.stop.store(true, Ordering::SeqCst);
        let mut all = (0, Vec::new());
        for thread in self.threads {
            let (made, failed) = thread.join().unwrap();
            all.0 += made;
            all.1.extend(failed);
        }
        all
    }
}

const SERVER_ARGS: &[&str] = &[
    "--quiet",
    "--trusted-proxies",
    "127.0.0.1",
    // Far longer than the second a revocation may take to reach the other servers:
    // only the store's notifications can make it that fast.
    "--token-cache",
    "60s",
    "--drain-time",
    "3s",
];

fn fleet() -> (TestEnv, String, Vec<u16>, Vec<Server>) {
    let env = TestEnv::new(Backend::Postgres);
    env.ok(&["init"]);
    let admin = token(&env, "admin", &["admin"], &[]);
    env.ok(&[
        "block",
        "create",
        "app",
        "--type",
        "json",
        "--set-json",
        "value=1",
    ]);
    let ports: Vec<u16> = (0..3).map(|_| free_port()).collect();
    let servers = ports
        .iter()
        .map(|port| Server::start_on(&env, *port, SERVER_ARGS))
        .collect();
    (env, admin, ports, servers)
}

#[test]
fn three_servers_behind_haproxy_share_sessions_revocations_and_restarts() {
    let (env, admin, ports, mut servers) = fleet();
    let balancer = Balancer::start(&env, &ports);
    session_across_servers(&balancer, &admin);
    revocation_reaches_every_server(&servers, &admin);
    rolling_restart_loses_nothing(&env, &balancer, &ports, &mut servers, &admin);
    crash_fails_only_what_was_in_flight(&balancer, &mut servers, &admin);
}

/// One sign-in through the balancer serves 20 pages from all three servers, and a
/// sign-out on one ends the session on all.
fn session_across_servers(balancer: &Balancer, admin: &str) {
    let mut browser = Browser::at(&balancer.base);
    assert_eq!(browser.sign_in(admin).status, 303);
    let mut served = std::collections::BTreeSet::new();
    let mut csrf = String::new();
    for _ in 0..20 {
        let page = browser.get("/ui");
        assert_eq!(page.status, 200, "signed out on a server: {}", page.body);
        served.insert(page.header("x-served-by").unwrap().to_owned());
        csrf = page.csrf();
    }
    assert_eq!(served.len(), 3, "every server answered: {served:?}");
    assert_eq!(browser.post("/ui/logout", &[("csrf", &csrf)]).status, 303);
    for _ in 0..3 {
        assert_eq!(browser.get("/ui").status, 303, "still signed in somewhere");
    }
}

/// A token revoked on one server is refused by the other two within a second (their
/// cache would trust it for a minute).
fn revocation_reaches_every_server(servers: &[Server], admin: &str) {
    let created = Api::new(&servers[0], Some(admin)).post(
        "/tokens",
        &serde_json::json!({"name": "short", "scopes": ["blocks:read"]}),
    );
    assert_eq!(created.status, 201, "{}", created.text);
    let short = created.body["token"].as_str().unwrap().to_owned();
    for server in &servers[1..] {
        assert_eq!(Api::new(server, Some(&short)).get("/blocks").status, 200);
    }
    let revoked = Api::new(&servers[0], Some(admin)).delete("/tokens/short");
    assert!(revoked.status < 300, "{}", revoked.text);
    let began = Instant::now();
    for server in &servers[1..] {
        while Api::new(server, Some(&short)).get("/blocks").status != 401 {
            assert!(began.elapsed() < Duration::from_secs(5), "never refused");
        }
    }
    let took = began.elapsed();
    eprintln!("revocation refused by the other two servers after {took:?}");
    assert!(took < Duration::from_secs(1), "refused after {took:?}");
}

/// Each server in turn gets SIGTERM and starts again while four clients read through
/// the balancer: every request succeeds, and each server exits within its grace.
fn rolling_restart_loses_nothing(
    env: &TestEnv,
    balancer: &Balancer,
    ports: &[u16],
    servers: &mut [Server],
    admin: &str,
) {
    let load = Load::start(&balancer.base, admin, 4);
    for (i, port) in ports.iter().enumerate() {
        let (took, clean) = servers[i].stop();
        assert!(clean, "server {i} did not exit cleanly");
        eprintln!("server {i} stopped in {took:?}");
        assert!(took < Duration::from_secs(10), "server {i} took {took:?}");
        servers[i] = Server::start_on(env, *port, SERVER_ARGS);
        let name = format!("blockyard{}", i + 1);
        balancer.until(|b| b.up().contains(&name), "the restarted server is up");
    }
    let (made, failed) = load.finish();
    eprintln!("rolling restart: {made} requests, {} failed", failed.len());
    assert!(made > 100, "only {made} requests");
    assert!(
        failed.is_empty(),
        "{} of {made} failed: {failed:?}",
        failed.len()
    );
}

/// A server killed (-9) under load: the balancer takes it out, and clients see at
/// most the requests that were in flight on it fail (one per client).
fn crash_fails_only_what_was_in_flight(balancer: &Balancer, servers: &mut [Server], admin: &str) {
    let clients = 4;
    let load = Load::start(&balancer.base, admin, clients);
    balancer.until(|b| b.up().len() == 3, "all three up under load");
    servers[0].kill();
    balancer.until(|b| !b.up().contains(&"blockyard1".to_owned()), "taken out");
    let (made, failed) = load.finish();
    eprintln!("kill -9: {made} requests, {} failed", failed.len());
    assert!(made > 20, "only {made} requests");
    assert!(
        failed.len() <= clients,
        "{} failed: {failed:?}",
        failed.len()
    );
}
