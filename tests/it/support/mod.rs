//! Test harness: a fresh store per test (an SQLite file in a temp dir, or a PostgreSQL
//! database created for the test and dropped afterwards) and the real binary.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use diesel::prelude::*;
use diesel::{PgConnection, SqliteConnection};

mod browser;
mod cluster;
mod db;
mod http;
mod prefect;
pub use browser::Browser;
pub use cluster::TinyCluster;
pub use db::*;
pub use http::{Api, Reply, Server, assert_error, free_port, token};
pub use prefect::{PrefectServer, clients, python, run_prefect, run_python};

pub const BIN: &str = env!("CARGO_BIN_EXE_blockyard");

/// Admin URL of the test PostgreSQL server.
pub fn pg_admin_url() -> String {
    std::env::var("BLOCKYARD_TEST_PG_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// One test's store and environment.
pub struct TestEnv {
    pub dir: tempfile::TempDir,
    pub backend: Backend,
    pg_db: Option<String>,
    pub extra_env: Vec<(String, String)>,
}

impl TestEnv {
    pub fn new(backend: Backend) -> TestEnv {
        let dir = tempfile::tempdir().unwrap();
        let pg_db = (backend == Backend::Postgres).then(|| {
            let name = format!("blockyard_test_{}", uuid::Uuid::new_v4().simple());
            let mut admin = PgConnection::establish(&pg_admin_url())
                .expect("PostgreSQL must be running for the tests (see .ci/run)");
            diesel::sql_query(format!("CREATE DATABASE {name}"))
                .execute(&mut admin)
                .unwrap();
            name
        });
        TestEnv {
            dir,
            backend,
            pg_db,
            extra_env: Vec::new(),
        }
    }

    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    pub fn database_url(&self) -> String {
        match &self.pg_db {
            Some(db) => {
                let mut url = url::Url::parse(&pg_admin_url()).unwrap();
                url.set_path(db);
                url.to_string()
            }
            None => self.data_dir().join("blockyard.db").display().to_string(),
        }
    }

    /// The same store, opened through the library (as a flow would).
    pub fn registry(&self, pool_refresh: &str) -> blockyard::Registry {
        let config = blockyard::Config::load(blockyard::config::Sources {
            flags: blockyard::config::Settings {
                data_dir: Some(self.data_dir()),
                database_url: Some(self.database_url()),
                pool_refresh: Some(pool_refresh.parse().unwrap()),
                ..Default::default()
            },
            ..Default::default()
        })
        .unwrap();
        blockyard::Registry::open(config).unwrap().0
    }

    pub fn key_file(&self) -> PathBuf {
        self.data_dir().join("master.key")
    }

    pub fn command(&self, args: &[&str]) -> Command {
        self.program(Path::new(BIN), args)
    }

    /// Any program, run in this test's directory with its environment.
    pub fn program(&self, program: &Path, args: &[&str]) -> Command {
        let mut cmd = Command::new(program);
        cmd.args(args)
            .current_dir(self.dir.path())
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("HOME", self.dir.path())
            .env("XDG_CONFIG_HOME", self.dir.path().join("config"))
            .env("BLOCKYARD_DATA_DIR", self.data_dir());
        if self.pg_db.is_some() {
            cmd.env("BLOCKYARD_DATABASE_URL", self.database_url());
        }
        for (k, v) in &self.extra_env {
            cmd.env(k, v);
        }
        cmd
    }

    pub fn run(&self, args: &[&str]) -> Run {
        self.run_with(args, None, &[])
    }

    pub fn run_stdin(&self, args: &[&str], stdin: &str) -> Run {
        self.run_with(args, Some(stdin), &[])
    }

    pub fn run_with(&self, args: &[&str], stdin: Option<&str>, env: &[(&str, &str)]) -> Run {
        let mut cmd = self.command(args);
        for (k, v) in env {
            cmd.env(k, v);
        }
        cmd.stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().unwrap();
        let mut pipe = child.stdin.take().unwrap();
        if let Some(text) = stdin {
            pipe.write_all(text.as_bytes()).unwrap();
        }
        drop(pipe);
        Run::from(child.wait_with_output().unwrap(), args)
    }

    /// Runs and asserts success.
    pub fn ok(&self, args: &[&str]) -> Run {
        self.run(args).success()
    }

    pub fn json(&self, args: &[&str]) -> serde_json::Value {
        let mut all = args.to_vec();
        all.extend(["--output", "json"]);
        let run = self.ok(&all);
        serde_json::from_str(&run.stdout).unwrap_or_else(|e| panic!("{e}: {}", run.stdout))
    }

    /// Executes SQL directly against the store (to tamper with it, as an attacker would).
    pub fn sql(&self, query: &str) -> usize {
        match self.backend {
            Backend::Sqlite => {
                let mut conn = SqliteConnection::establish(&self.database_url()).unwrap();
                diesel::sql_query(query).execute(&mut conn).unwrap()
            }
            Backend::Postgres => {
                let mut conn = PgConnection::establish(&self.database_url()).unwrap();
                diesel::sql_query(query).execute(&mut conn).unwrap()
            }
        }
    }

    /// Every byte the store holds, as a searchable blob: the SQLite files (database and
    /// WAL), or a pg_dump of the PostgreSQL database.
    pub fn store_bytes(&self) -> Vec<u8> {
        match self.backend {
            Backend::Sqlite => {
                let mut bytes = Vec::new();
                for entry in std::fs::read_dir(self.data_dir()).unwrap() {
                    let path = entry.unwrap().path();
                    if path.to_string_lossy().contains("blockyard.db") {
                        bytes.extend(std::fs::read(path).unwrap());
                    }
                }
                bytes
            }
            Backend::Postgres => {
                let out = Command::new("pg_dump")
                    .arg(self.database_url())
                    .output()
                    .expect("pg_dump must be installed");
                assert!(
                    out.status.success(),
                    "{}",
                    String::from_utf8_lossy(&out.stderr)
                );
                out.stdout
            }
        }
    }

    /// A PostgreSQL store's `pg_dump`, to compare byte for byte, without the random
    /// `\restrict` key newer pg_dump versions put in every dump.
    pub fn store_dump(&self) -> String {
        assert!(
            self.backend == Backend::Postgres,
            "a dump of PostgreSQL only"
        );
        String::from_utf8(self.store_bytes())
            .unwrap()
            .lines()
            .filter(|l| !l.starts_with("\\restrict ") && !l.starts_with("\\unrestrict "))
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// A snapshot of everything a user can see in the store (secrets included).
    pub fn snapshot(&self) -> String {
        let list = self.json(&["block", "ls"]);
        let mut text = list.to_string();
        for block in list.as_array().unwrap() {
            let name = block["name"].as_str().unwrap();
            text.push_str(
                &self
                    .json(&["block", "inspect", name, "--show-secrets"])
                    .to_string(),
            );
            text.push_str(&self.json(&["block", "history", name]).to_string());
        }
        text
    }
}

impl Drop for TestEnv {
    fn drop(&mut self) {
        if let Some(db) = &self.pg_db
            && let Ok(mut admin) = PgConnection::establish(&pg_admin_url())
        {
            let _ = diesel::sql_query(format!("DROP DATABASE IF EXISTS {db} WITH (FORCE)"))
                .execute(&mut admin);
        }
    }
}

/// A finished command.
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
    args: String,
}

impl Run {
    pub fn from(out: Output, args: &[&str]) -> Run {
        Run {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
            args: args.join(" "),
        }
    }

    pub fn success(self) -> Run {
        assert_eq!(
            self.code, 0,
            "`{}` failed:\n{}\n{}",
            self.args, self.stdout, self.stderr
        );
        self
    }

    /// Asserts a failure with this exit code and error code (exec's 126 and 127).
    pub fn exits_with(self, exit: i32, code: &str) -> Run {
        assert_eq!(self.code, exit, "`{}`: {}", self.args, self.stderr);
        assert!(
            self.stderr.starts_with(&format!("error[{code}]")),
            "`{}`: expected {code}, got: {}",
            self.args,
            self.stderr
        );
        self
    }

    /// Asserts a failure (exit 1) with this error code on stderr.
    pub fn fails_with(self, code: &str) -> Run {
        assert_eq!(
            self.code, 1,
            "`{}` should fail with {code}:\n{}\n{}",
            self.args, self.stdout, self.stderr
        );
        assert!(
            self.stderr.contains(&format!("error[{code}]")),
            "`{}`: expected {code}, got: {}",
            self.args,
            self.stderr
        );
        assert_eq!(
            self.stderr.trim_end().lines().count(),
            1,
            "errors are one line: {}",
            self.stderr
        );
        self
    }

    pub fn all_output(&self) -> String {
        format!("{}{}", self.stdout, self.stderr)
    }
}

/// Runs a test body on SQLite and on PostgreSQL.
macro_rules! on_both_stores {
    ($name:ident, $body:expr) => {
        mod $name {
            use super::*;
            #[test]
            fn sqlite() {
                ($body)(TestEnv::new(Backend::Sqlite));
            }
            #[test]
            fn postgres() {
                ($body)(TestEnv::new(Backend::Postgres));
            }
        }
    };
}
pub(crate) use on_both_stores;

pub fn contains_bytes(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|w| w == needle.as_bytes())
}

pub fn write_file(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

/// The README's `crdb-sage` block (cockroachdb+psycopg2, sage, databot, localhost:26257).
pub const CRDB_SAGE: &[&str] = &[
    "block",
    "create",
    "crdb-sage",
    "--type",
    "sqlalchemy-connector",
    "--set",
    "connection_info.driver=cockroachdb+psycopg2",
    "--set",
    "connection_info.database=sage",
    "--set",
    "connection_info.username=databot",
    "--set",
    "connection_info.host=localhost",
    "--set",
    "connection_info.port=26257",
];

/// Creates `crdb-sage` with this password on stdin, and `extra` arguments.
pub fn create_crdb_sage(env: &TestEnv, password: &str, extra: &[&str]) -> Run {
    let mut args = CRDB_SAGE.to_vec();
    args.extend_from_slice(extra);
    args.push("--password-stdin");
    env.run_stdin(&args, password)
}

/// Creates block `name` of `block_type` from a JSON document (a file given to `--data`).
pub fn create_from_json(env: &TestEnv, name: &str, block_type: &str, doc: &str) -> Run {
    let file = write_file(env.dir.path(), &format!("{name}.json"), doc);
    let file = file.to_str().unwrap();
    env.run(&[
        "block", "create", name, "--type", block_type, "--data", file,
    ])
}

/// Creates a `secret` block `name` holding `value` (on stdin).
pub fn create_secret(env: &TestEnv, name: &str, value: &str) -> Run {
    let args = [
        "block",
        "create",
        name,
        "--type",
        "secret",
        "--password-stdin",
    ];
    env.run_stdin(&args, value)
}

/// A loopback port nothing listens on (bound, then released): connections are refused.
pub fn closed_port() -> u16 {
    free_port()
}

/// A user block type `ftp` (a host and a password), registered, and a block `ftp-main`
/// of it holding `password`: a block of a type the target store may lack.
pub fn register_ftp_block(env: &TestEnv, password: &str) {
    let def = write_file(
        env.dir.path(),
        "ftp.json",
        r#"{"slug": "ftp", "name": "FTP", "secret_fields": ["password"], "primary_secret": "password",
            "schema": {"type": "object", "properties": {"host": {"type": "string"},
            "password": {"type": "string"}}, "required": ["host"]}}"#,
    );
    env.ok(&["type", "register", def.to_str().unwrap()]);
    env.run_stdin(
        &[
            "block",
            "create",
            "ftp-main",
            "--type",
            "ftp",
            "--set",
            "host=ftp.example",
            "--password-stdin",
        ],
        password,
    )
    .success();
}

/// Sets a block's password through `block update --password-stdin`.
pub fn update_password(env: &TestEnv, block: &str, password: &str) {
    env.run_stdin(&["block", "update", block, "--password-stdin"], password)
        .success();
}

/// Runs `script` (bash) in this test's environment inside a private D-Bus session with
/// a real Secret Service (gnome-keyring, unlocked), as on a Linux desktop.
pub fn in_keyring_session(env: &TestEnv, script: &str) -> std::process::Output {
    let setup = r#"set -e
eval "$(printf 'blockyard-test' | gnome-keyring-daemon --unlock --components=secrets)"
# One daemon only: ask nothing of org.freedesktop.secrets before this daemon owns the
# name (asking earlier, or running `--start` before its control socket is up, starts a
# second daemon that holds the login keyring locked: seen in CI under load).
owned=
for _ in $(seq 1 300); do
  dbus-send --session --print-reply --dest=org.freedesktop.DBus /org/freedesktop/DBus \
    org.freedesktop.DBus.NameHasOwner string:org.freedesktop.secrets 2>/dev/null \
    | grep -q 'boolean true' && { owned=1; break; }
  sleep 0.1
done
[ -n "$owned" ] || { echo "setup: gnome-keyring never took the Secret Service name" >&2; exit 1; }
# Then wait until the default collection (the login keyring) is unlocked.
unlocked=
for _ in $(seq 1 300); do
  dbus-send --session --print-reply --dest=org.freedesktop.secrets \
    /org/freedesktop/secrets/aliases/default org.freedesktop.DBus.Properties.Get \
    string:org.freedesktop.Secret.Collection string:Locked 2>/dev/null | grep -q 'boolean false' \
    && { unlocked=1; break; }
  sleep 0.1
done
[ -n "$unlocked" ] || {
  echo "setup: the default keyring collection never unlocked" >&2
  ps -ef | grep '[g]nome-keyring' >&2
  exit 1; }
"#;
    let mut cmd = Command::new("dbus-run-session");
    cmd.args(["--", "bash", "-c", &format!("{setup}\n{script}")]);
    for (k, v) in env.command(&[]).get_envs() {
        match v {
            Some(v) => cmd.env(k, v),
            None => cmd.env_remove(k),
        };
    }
    cmd.env_remove("BLOCKYARD_KEY_FILE")
        .current_dir(env.dir.path())
        .output()
        .expect("dbus-run-session and gnome-keyring must be installed (see .ci/run)")
}
