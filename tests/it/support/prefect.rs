//! A real Prefect server (the pip-installed one of `scripts/test`'s venv) on a loopback
//! port with its own SQLite database, stopped when dropped; and Python scripts run with
//! that venv's stock Prefect client.

use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// The venv's Python (`BLOCKYARD_TEST_PYTHON`, or `target/prefect-venv`): Prefect 3.8.8.
pub fn python() -> String {
    std::env::var("BLOCKYARD_TEST_PYTHON").unwrap_or_else(|_| {
        format!(
            "{}/target/prefect-venv/bin/python",
            env!("CARGO_MANIFEST_DIR")
        )
    })
}

/// The Pythons whose stock Prefect clients the tests run: the newest (3.8.8) and an
/// older 3.4 (`BLOCKYARD_TEST_PYTHON_OLD`, or `target/prefect34-venv`), both made by
/// `scripts/test`.
pub fn clients() -> [String; 2] {
    let old = std::env::var("BLOCKYARD_TEST_PYTHON_OLD").unwrap_or_else(|_| {
        format!(
            "{}/target/prefect34-venv/bin/python",
            env!("CARGO_MANIFEST_DIR")
        )
    });
    assert!(
        std::path::Path::new(&old).exists(),
        "{old} is missing: scripts/test makes it"
    );
    [python(), old]
}

/// Runs `script` (with `args`) with this Python and these variables; Prefect's home is
/// `home`.
pub fn run_python(
    python: &str,
    script: &str,
    args: &[&str],
    home: &std::path::Path,
    vars: &[(&str, &str)],
) -> Output {
    Command::new(python)
        .args(["-c", script])
        .args(args)
        .env("PREFECT_HOME", home)
        .env("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
        .envs(vars.iter().copied())
        .output()
        .expect("python with prefect (created by scripts/test)")
}

/// Runs the `prefect` command line beside this Python with these variables.
pub fn run_prefect(
    python: &str,
    args: &[&str],
    home: &std::path::Path,
    vars: &[(&str, &str)],
) -> Output {
    Command::new(PathBuf::from(python).with_file_name("prefect"))
        .args(args)
        .env("PREFECT_HOME", home)
        .env("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
        .env("PREFECT_CLI_PROMPT", "false")
        .env("COLUMNS", "200")
        .envs(vars.iter().copied())
        .output()
        .expect("prefect (created by scripts/test)")
}

/// `prefect server start`, its database in `home`.
pub struct PrefectServer {
    child: Child,
    /// Its API: `http://127.0.0.1:PORT/api`.
    pub api: String,
    pub home: PathBuf,
}

impl PrefectServer {
    pub fn start(home: PathBuf) -> PrefectServer {
        PrefectServer::start_with(home, &[])
    }

    /// A Prefect server with these settings too (its UI on, an auth string).
    pub fn start_with(home: PathBuf, vars: &[(&str, &str)]) -> PrefectServer {
        let port = super::free_port();
        let prefect = PathBuf::from(python()).with_file_name("prefect");
        std::fs::create_dir_all(&home).unwrap();
        let child = Command::new(prefect)
            .args(["server", "start", "--host", "127.0.0.1", "--port"])
            .arg(port.to_string())
            .env("PREFECT_HOME", &home)
            .env("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
            .env("PREFECT_UI_ENABLED", "false")
            .envs(vars.iter().copied())
            .process_group(0)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(home.join("server.log")).unwrap())
            .spawn()
            .expect("prefect (created by scripts/test)");
        let server = PrefectServer {
            child,
            api: format!("http://127.0.0.1:{port}/api"),
            home,
        };
        // Prefect migrates its database on start: tens of seconds on a busy machine.
        let deadline = Instant::now() + Duration::from_secs(180);
        // `/health` answers without the auth string, if one is set.
        while ureq::get(&format!("{}/health", server.api)).call().is_err() {
            assert!(
                Instant::now() < deadline,
                "the Prefect server did not start: {}",
                std::fs::read_to_string(server.home.join("server.log")).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
        server
    }

    /// Its SQLite database, to search for what must never be in it.
    pub fn database(&self) -> Vec<u8> {
        let mut bytes = Vec::new();
        for name in ["prefect.db", "prefect.db-wal"] {
            bytes.extend(std::fs::read(self.home.join(name)).unwrap_or_default());
        }
        bytes
    }
}

impl Drop for PrefectServer {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", "--", &format!("-{}", self.child.id())])
            .status();
        let _ = self.child.wait();
    }
}
