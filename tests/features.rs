//! What each database backend feature does to the built binary. A backend that was not
//! compiled in gives one clear `UNSUPPORTED_DRIVER` line naming the feature to rebuild
//! with; one that was compiled in gets a real connection attempt instead. Both halves are
//! exercised: `scripts/test` runs this file with every feature and with `sqlite` alone.

use std::path::Path;
use std::process::{Command, Output};

const BIN: &str = env!("CARGO_BIN_EXE_blockyard");

fn blockyard(dir: &Path, args: &[&str], stdin: Option<&str>) -> Output {
    let mut cmd = Command::new(BIN);
    cmd.args(args)
        .current_dir(dir)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("HOME", dir)
        .env("XDG_CONFIG_HOME", dir.join("config"))
        .env("BLOCKYARD_DATA_DIR", dir.join("data"))
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    {
        use std::io::Write;
        let mut input = child.stdin.take().unwrap();
        if let Some(text) = stdin {
            input.write_all(text.as_bytes()).unwrap();
        }
    }
    child.wait_with_output().unwrap()
}

/// A closed port on loopback: a compiled-in backend fails to connect there, quickly.
fn closed_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

fn check_backend(compiled: bool, scheme: &str, feature: &str, library: &str) {
    let dir = tempfile::tempdir().unwrap();
    let port = closed_port();
    let url = format!("{scheme}://app@127.0.0.1:{port}/app");
    let create = blockyard(
        dir.path(),
        &["block", "create", "db", "--url", &url, "--password-stdin"],
        Some("planted-Secret-7f3a"),
    );
    assert!(
        create.status.success(),
        "{}",
        String::from_utf8_lossy(&create.stderr)
    );
    let test = blockyard(dir.path(), &["block", "test", "db"], None);
    let stderr = String::from_utf8_lossy(&test.stderr);
    assert_eq!(test.status.code(), Some(1), "{stderr}");
    assert!(!stderr.contains("planted-Secret-7f3a"), "{stderr}");
    if compiled {
        assert!(stderr.starts_with("error[HOST_UNREACHABLE]"), "{stderr}");
    } else {
        assert_eq!(stderr.lines().count(), 1, "one line: {stderr}");
        assert!(
            stderr.starts_with("error[UNSUPPORTED_DRIVER]: this build has no"),
            "{stderr}"
        );
        assert!(
            stderr.contains(&format!("rebuild with --features {feature} ({library}")),
            "{stderr}"
        );
    }
    // The block's connection details print without any driver.
    let env = blockyard(dir.path(), &["block", "env", "db"], None);
    assert!(
        env.status.success(),
        "{}",
        String::from_utf8_lossy(&env.stderr)
    );
}

#[test]
fn postgres_blocks_follow_the_postgres_feature() {
    check_backend(
        cfg!(feature = "postgres"),
        "postgresql",
        "postgres",
        "bundles libpq",
    );
}

#[test]
fn mysql_blocks_follow_the_mysql_feature() {
    check_backend(
        cfg!(feature = "mysql"),
        "mysql",
        "mysql",
        "needs libmariadb-dev",
    );
}

#[test]
fn a_postgres_store_needs_the_postgres_feature() {
    let dir = tempfile::tempdir().unwrap();
    let out = blockyard(
        dir.path(),
        &[
            "--database-url",
            "postgres://nobody@127.0.0.1:1/none",
            "block",
            "ls",
        ],
        None,
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    if cfg!(feature = "postgres") {
        assert!(stderr.starts_with("error[STORE_UNAVAILABLE]"), "{stderr}");
    } else {
        assert!(
            stderr.starts_with("error[UNSUPPORTED_DRIVER]: this build has no PostgreSQL"),
            "{stderr}"
        );
    }
}
