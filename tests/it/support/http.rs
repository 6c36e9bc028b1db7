//! The HTTP harness: a real `blockyard server` process on a loopback port, the one
//! client the tests speak to it with, and the assertions on its answers.

use std::io::Read;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::Value;

use super::TestEnv;

/// A loopback port nothing listens on now.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A `blockyard server` process; stopped (SIGTERM) when dropped.
pub struct Server {
    child: Child,
    pub base: String,
    log: std::path::PathBuf,
}

impl Server {
    pub fn start(env: &TestEnv, extra: &[&str]) -> Server {
        Server::start_program(env, &[], free_port(), extra)
    }

    /// A server on `port` (one a peer was told of before the server started).
    pub fn start_on(env: &TestEnv, port: u16, extra: &[&str]) -> Server {
        Server::start_program(env, &[], port, extra)
    }

    /// A server whose clock is off by `offset` (libfaketime's `+100d`, `-2m`).
    pub fn start_skewed(env: &TestEnv, offset: &str, extra: &[&str]) -> Server {
        Server::start_program(env, &["faketime", "-f", offset], free_port(), extra)
    }

    fn start_program(env: &TestEnv, wrapper: &[&str], port: u16, extra: &[&str]) -> Server {
        let log = env.dir.path().join(format!("server-{port}.log"));
        let mut args = vec!["server", "--port"];
        let port_text = port.to_string();
        args.push(&port_text);
        args.extend_from_slice(extra);
        let mut command = match wrapper.split_first() {
            None => env.command(&args),
            Some((program, rest)) => {
                let bin = crate::support::BIN;
                env.program(
                    std::path::Path::new(program),
                    &[rest, &[bin], &args].concat(),
                )
            }
        };
        // Its own process group, so that stopping it stops a wrapper's child too
        // (faketime runs the server as its child).
        use std::os::unix::process::CommandExt;
        let child = command
            .process_group(0)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        // Built at once so that a failed start still stops the process (Drop).
        let server = Server {
            child,
            base: format!("http://127.0.0.1:{port}"),
            log,
        };
        for _ in 0..100 {
            if ureq::get(&format!("{}/health", server.base)).call().is_ok() {
                return server;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("server did not start: {}", server.log());
    }

    /// SIGTERM, as a service manager stops it; waits for it to end and answers how
    /// long that took and whether it exited cleanly.
    pub fn stop(&mut self) -> (Duration, bool) {
        let began = std::time::Instant::now();
        self.terminate();
        let clean = self.wait_exit();
        (began.elapsed(), clean)
    }

    /// Sends SIGTERM and returns at once.
    pub fn terminate(&self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
    }

    /// Waits for the process to end; whether it exited cleanly.
    pub fn wait_exit(&mut self) -> bool {
        self.child.wait().unwrap().success()
    }

    /// SIGKILL: a crash, with no draining.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// `blockyard ARGS` in remote mode: through this server, with `token`.
    pub fn cli(&self, env: &TestEnv, token: &str, args: &[&str]) -> super::Run {
        let remote = [
            ("BLOCKYARD_URL", self.base.as_str()),
            ("BLOCKYARD_TOKEN", token),
        ];
        env.run_with(args, None, &remote)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", "--", &format!("-{}", self.child.id())])
            .stderr(Stdio::null())
            .status();
        let _ = self.child.wait();
    }
}

/// A response: status and body (JSON if it parses).
pub struct Reply {
    pub status: u16,
    pub body: Value,
    pub text: String,
    pub etag: Option<String>,
}

fn request(
    method: &str,
    url: &str,
    token: Option<&str>,
    body: Option<&Value>,
    headers: &[(&str, &str)],
) -> Reply {
    let mut req = ureq::request(method, url);
    if let Some(token) = token {
        req = req.set("Authorization", &format!("Bearer {token}"));
    }
    for (k, v) in headers {
        req = req.set(k, v);
    }
    let result = match body {
        Some(b) => req.send_json(b.clone()),
        None => req.call(),
    };
    reply(method, url, result)
}

/// Any answer, error statuses included, read whole; a transport error fails the test.
fn reply(method: &str, url: &str, result: Result<ureq::Response, ureq::Error>) -> Reply {
    let resp = match result {
        Ok(r) => r,
        Err(ureq::Error::Status(_, r)) => r,
        Err(err) => panic!("{method} {url}: {err}"),
    };
    let status = resp.status();
    let etag = resp.header("ETag").map(str::to_owned);
    let mut text = String::new();
    resp.into_reader()
        .take(10_000_000)
        .read_to_string(&mut text)
        .unwrap();
    let body = serde_json::from_str(&text).unwrap_or(Value::Null);
    Reply {
        status,
        body,
        text,
        etag,
    }
}

/// The one HTTP client of the tests: a base URL and a token (or none).
/// `Api::new(&server, token)` speaks to `/api/v1`, `Api::root(&server, token)` to the
/// server's root (`/health`, `/ready`, `/prefect/api`, `/ui`); `api.with_token(..)` is
/// the same server with another token. `get`/`post`/`put`/`delete`, `send` for the rest.
#[derive(Clone)]
pub struct Api {
    pub base: String,
    token: Option<String>,
}

impl Api {
    pub fn new(server: &Server, token: Option<&str>) -> Api {
        Api::at(&format!("{}/api/v1", server.base), token)
    }

    pub fn root(server: &Server, token: Option<&str>) -> Api {
        Api::at(&server.base, token)
    }

    pub fn at(base: &str, token: Option<&str>) -> Api {
        Api {
            base: base.to_owned(),
            token: token.map(str::to_owned),
        }
    }

    pub fn with_token(&self, token: Option<&str>) -> Api {
        Api::at(&self.base, token)
    }

    pub fn send(
        &self,
        method: &str,
        path: &str,
        body: Option<&Value>,
        headers: &[(&str, &str)],
    ) -> Reply {
        let url = format!("{}{path}", self.base);
        request(method, &url, self.token.as_deref(), body, headers)
    }

    pub fn get(&self, path: &str) -> Reply {
        self.send("GET", path, None, &[])
    }

    pub fn post(&self, path: &str, body: &Value) -> Reply {
        self.send("POST", path, Some(body), &[])
    }

    pub fn put(&self, path: &str, body: &Value) -> Reply {
        self.send("PUT", path, Some(body), &[])
    }

    pub fn delete(&self, path: &str) -> Reply {
        self.send("DELETE", path, None, &[])
    }

    /// A body sent as it is, with this content type (malformed JSON, other media types).
    pub fn send_text(&self, method: &str, path: &str, content_type: &str, body: &str) -> Reply {
        let url = format!("{}{path}", self.base);
        let mut req = ureq::request(method, &url).set("Content-Type", content_type);
        if let Some(token) = &self.token {
            req = req.set("Authorization", &format!("Bearer {token}"));
        }
        reply(method, &url, req.send_string(body))
    }
}

pub fn token(env: &TestEnv, name: &str, scopes: &[&str], extra: &[&str]) -> String {
    let mut args = vec!["token", "create", name];
    for s in scopes {
        args.extend(["--scope", s]);
    }
    args.extend_from_slice(extra);
    env.json(&args)["token"].as_str().unwrap().to_owned()
}

/// A refusal: this status, this stable code, and a message.
pub fn assert_error(reply: &Reply, status: u16, code: &str) {
    assert_eq!(reply.status, status, "{}", reply.text);
    assert_eq!(reply.body["error"]["code"], code, "{}", reply.text);
    assert!(reply.body["error"]["message"].is_string(), "{}", reply.text);
}
