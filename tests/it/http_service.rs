//! HTTP service blocks (seed 002's Elasticsearch and Qdrant) are first-class: `block
//! test` makes a real request with the API key in the type's header and classifies
//! failures; `block url`, `block env` and `exec` export `<PREFIX>_URL` and `_API_KEY`.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;

use crate::support::*;

const KEY: &str = "planted-Api-Key-9c1e";

/// A one-request HTTP server on loopback: answers `status` and sends back the request
/// head it received.
fn one_shot_server(status: &'static str) -> (u16, mpsc::Receiver<String>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let (stream, _) = listener.accept().unwrap();
        let mut reader = BufReader::new(stream.try_clone().unwrap());
        let mut head = String::new();
        loop {
            let mut line = String::new();
            if reader.read_line(&mut line).unwrap() == 0 || line == "\r\n" {
                break;
            }
            head.push_str(&line);
        }
        let mut stream = stream;
        let _ = write!(
            stream,
            "HTTP/1.1 {status}\r\nServer: fake-es/8.0\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{{}}"
        );
        let _ = tx.send(head);
    });
    (port, rx)
}

fn create(env: &TestEnv, name: &str, url: &str, extra: &[&str]) {
    let key_file = write_file(env.dir.path(), "es.key", KEY);
    let url = format!("url={url}");
    let secret = format!("api_key={}", key_file.display());
    let mut args = vec!["block", "create", name, "--type", "http-service"];
    args.extend_from_slice(&["--set", &url, "--set-secret-file", &secret]);
    args.extend_from_slice(extra);
    env.ok(&args);
}

#[test]
fn block_test_sends_the_key_and_classifies_answers() {
    let env = TestEnv::new(Backend::Sqlite);
    env.ok(&["init"]);

    let (port, head) = one_shot_server("200 OK");
    create(
        &env,
        "es",
        &format!("http://127.0.0.1:{port}"),
        &["--set", "health_path=/_cluster/health"],
    );
    let report = env.json(&["block", "test", "es"]);
    assert_eq!(report["status"], 200, "{report}");
    assert_eq!(report["server"], "fake-es/8.0");
    let head = head.recv().unwrap();
    assert!(head.starts_with("GET /_cluster/health HTTP/1.1"), "{head}");
    assert!(
        head.contains(&format!("authorization: ApiKey {KEY}"))
            || head.contains(&format!("Authorization: ApiKey {KEY}")),
        "{head}"
    );
    assert!(!report.to_string().contains(KEY));

    // Qdrant's header, set on the block.
    let (port, head) = one_shot_server("200 OK");
    create(
        &env,
        "qdrant",
        &format!("http://127.0.0.1:{port}"),
        &["--set", "api_key_header=api-key"],
    );
    env.ok(&["block", "test", "qdrant"]);
    let head = head.recv().unwrap().to_ascii_lowercase();
    assert!(
        head.contains(&format!("api-key: {}", KEY.to_ascii_lowercase())),
        "{head}"
    );

    let (port, _head) = one_shot_server("401 Unauthorized");
    create(&env, "es-denied", &format!("http://127.0.0.1:{port}"), &[]);
    let run = env
        .run(&["block", "test", "es-denied"])
        .fails_with("AUTHENTICATION_FAILED");
    assert!(run.stderr.contains("HTTP 401"), "{}", run.stderr);

    let (port, _head) = one_shot_server("503 Service Unavailable");
    create(&env, "es-down", &format!("http://127.0.0.1:{port}"), &[]);
    let run = env
        .run(&["block", "test", "es-down"])
        .fails_with("HTTP_ERROR");
    assert!(run.stderr.contains("HTTP 503"), "{}", run.stderr);

    create(
        &env,
        "es-closed",
        &format!("http://127.0.0.1:{}", closed_port()),
        &[],
    );
    env.run(&["block", "test", "es-closed"])
        .fails_with("HOST_UNREACHABLE");

    for name in ["es-denied", "es-down", "es-closed"] {
        let run = env.run(&["block", "test", name]);
        assert!(!run.all_output().contains(KEY), "{}", run.all_output());
    }
}

/// A real TLS server (`openssl s_server`) with a self-signed certificate: refused
/// with TLS_ERROR, accepted with `verify_tls: false`.
#[test]
fn tls_is_verified_unless_the_block_says_otherwise() {
    let env = TestEnv::new(Backend::Sqlite);
    env.ok(&["init"]);
    let dir = env.dir.path();
    let made = Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=localhost",
        ])
        .args(["-keyout", "key.pem", "-out", "cert.pem"])
        .current_dir(dir)
        .stderr(Stdio::null())
        .status()
        .expect("openssl must be installed");
    assert!(made.success());
    let port = closed_port();
    let server = TlsServer(
        Command::new("openssl")
            .args([
                "s_server", "-quiet", "-www", "-cert", "cert.pem", "-key", "key.pem",
            ])
            .args(["-accept", &port.to_string()])
            .current_dir(dir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    // s_server is ready once it accepts a connection.
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(server.is_running(), "openssl s_server did not start");
    }
    create(&env, "tls", &format!("https://127.0.0.1:{port}"), &[]);
    env.run(&["block", "test", "tls"]).fails_with("TLS_ERROR");
    env.ok(&["block", "update", "tls", "--set", "verify_tls=false"]);
    let report = env.json(&["block", "test", "tls"]);
    assert_eq!(report["status"], 200, "{report}");
}

struct TlsServer(Child);

impl TlsServer {
    fn is_running(&self) -> bool {
        std::fs::metadata(format!("/proc/{}", self.0.id())).is_ok()
    }
}

impl Drop for TlsServer {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn url_env_and_exec_export_url_and_key() {
    let env = TestEnv::new(Backend::Sqlite);
    env.ok(&["init"]);
    create(&env, "es-logs", "https://es.internal:9200", &[]);
    assert_eq!(
        env.ok(&["block", "url", "es-logs"]).stdout.trim(),
        "https://es.internal:9200/"
    );
    let vars = env.json(&["block", "env", "es-logs"]);
    assert_eq!(vars["ES_LOGS_URL"], "https://es.internal:9200/");
    assert_eq!(vars["ES_LOGS_API_KEY"], KEY);
    let vars = env.json(&["block", "env", "es-logs", "--prefix", "SEARCH"]);
    assert_eq!(vars["SEARCH_URL"], "https://es.internal:9200/");
    env.run(&["block", "env", "es-logs", "--format", "libpq"])
        .fails_with("INVALID_INPUT");
    let run = env.ok(&[
        "exec",
        "es-logs",
        "--",
        "sh",
        "-c",
        "echo \"$ES_LOGS_URL $ES_LOGS_API_KEY\"",
    ]);
    assert_eq!(
        run.stdout.trim(),
        format!("https://es.internal:9200/ {KEY}")
    );
    let shell = env
        .ok(&["block", "env", "es-logs", "--format", "shell"])
        .stdout;
    assert!(shell.contains("export ES_LOGS_API_KEY="), "{shell}");
}
