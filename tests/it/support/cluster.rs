//! A private PostgreSQL cluster for disk-full tests: its own `initdb`, its data
//! directory on its own small tmpfs (the WAL on the ordinary disk, so a full data disk
//! fails a statement instead of stopping the server), on a loopback port of its own.
//! The shared server's disks are never touched. Stopped and unmounted when dropped.

use std::path::{Path, PathBuf};
use std::process::Command;

use super::http::free_port;

pub struct TinyCluster {
    pub port: u16,
    data: PathBuf,
    dir: tempfile::TempDir,
}

/// The newest PostgreSQL server binaries installed (`/usr/lib/postgresql/N/bin`).
fn bin(program: &str) -> PathBuf {
    let mut versions: Vec<u32> = std::fs::read_dir("/usr/lib/postgresql")
        .expect("PostgreSQL's server binaries (scripts/test installs them)")
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
        .collect();
    versions.sort();
    Path::new("/usr/lib/postgresql")
        .join(versions.last().expect("a PostgreSQL version").to_string())
        .join("bin")
        .join(program)
}

/// Runs a server program as the `postgres` system user (initdb refuses root).
fn as_postgres(program: &str, args: &[&str]) {
    let out = Command::new("runuser")
        .args(["-u", "postgres", "--"])
        .arg(bin(program))
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{program}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn run(program: &str, args: &[&str]) {
    let status = Command::new(program).args(args).status().unwrap();
    assert!(status.success(), "{program} {args:?}");
}

impl TinyCluster {
    /// Starts a cluster whose data directory is a tmpfs of `megabytes` (root only: it
    /// mounts, and runs the server as `postgres`).
    pub fn start(megabytes: u32) -> TinyCluster {
        let dir = tempfile::tempdir_in("/tmp").unwrap();
        let data = dir.path().join("data");
        std::fs::create_dir(&data).unwrap();
        let size = format!("size={megabytes}m,mode=0700");
        run(
            "mount",
            &["-t", "tmpfs", "-o", &size, "tmpfs", data.to_str().unwrap()],
        );
        let cluster = TinyCluster {
            port: free_port(),
            data,
            dir,
        };
        let root = cluster.dir.path().to_str().unwrap().to_owned();
        run("chown", &["-R", "postgres:postgres", &root]);
        let wal = format!("{root}/wal");
        let data = cluster.data.to_str().unwrap();
        as_postgres(
            "initdb",
            &[
                "-D",
                data,
                "--waldir",
                &wal,
                "-U",
                "postgres",
                "--auth=trust",
                "-N",
            ],
        );
        let options = format!(
            "-p {} -k {root} -c listen_addresses=127.0.0.1 -c fsync=off",
            cluster.port
        );
        let log = format!("{root}/server.log");
        as_postgres(
            "pg_ctl",
            &["-D", data, "-o", &options, "-l", &log, "-w", "start"],
        );
        cluster
    }

    pub fn url(&self) -> String {
        format!("postgresql://postgres@127.0.0.1:{}/postgres", self.port)
    }

    /// Fills the data disk with a file until at most `kilobytes` are free.
    pub fn fill_leaving(&self, kilobytes: u64) {
        let free = self.free_kilobytes();
        let filler = self.data.join("filler");
        let size = free.saturating_sub(kilobytes);
        run(
            "fallocate",
            &["-l", &format!("{size}K"), filler.to_str().unwrap()],
        );
        assert!(
            self.free_kilobytes() <= kilobytes + 64,
            "{}",
            self.free_kilobytes()
        );
    }

    fn free_kilobytes(&self) -> u64 {
        let out = Command::new("df")
            .args(["--output=avail", "-k", self.data.to_str().unwrap()])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .last()
            .and_then(|l| l.trim().parse().ok())
            .expect("df's free kilobytes")
    }
}

impl Drop for TinyCluster {
    fn drop(&mut self) {
        let data = self.data.to_str().unwrap().to_owned();
        let _ = Command::new("runuser")
            .args(["-u", "postgres", "--"])
            .arg(bin("pg_ctl"))
            .args(["-D", &data, "-m", "immediate", "-w", "stop"])
            .output();
        let _ = Command::new("umount").arg(&data).status();
    }
}
