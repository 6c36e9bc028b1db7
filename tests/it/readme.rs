//! The README cannot rot: every `blockyard` command in its `sh` blocks must parse with
//! the real command line (so no flag or command it shows is gone or renamed), and the
//! run command and the everyday block are run, in order, against a fresh store.

use crate::support::*;

/// The lines of the README's `sh` code blocks, block by block, continuation lines
/// joined.
fn shell_blocks() -> Vec<Vec<String>> {
    let readme = include_str!("../../README.md");
    let mut blocks = Vec::new();
    let mut lines = Vec::new();
    let mut in_sh = false;
    let mut pending = String::new();
    for line in readme.lines() {
        if line.starts_with("```") {
            in_sh = line == "```sh";
            if !lines.is_empty() {
                blocks.push(std::mem::take(&mut lines));
            }
            continue;
        }
        if !in_sh {
            continue;
        }
        match line.strip_suffix('\\') {
            Some(start) => pending.push_str(start),
            None => {
                pending.push_str(line);
                lines.push(std::mem::take(&mut pending).trim().to_owned());
            }
        }
    }
    blocks
}

/// The arguments of a README line that runs blockyard (`cargo run --release --` counts),
/// without leading variable assignments, redirections, pipes and comments; split by
/// a real shell.
fn blockyard_args(line: &str) -> Option<Vec<String>> {
    let mut rest = line;
    while let Some((word, tail)) = rest.split_once(' ') {
        if word.contains('=') && !word.starts_with('-') {
            rest = tail;
        } else {
            break;
        }
    }
    let rest = rest
        .strip_prefix("blockyard ")
        .or_else(|| rest.strip_prefix("cargo run --release -- "))?;
    let mut cut = rest.len();
    for stop in [" <<<", " >", " |", "  #"] {
        if let Some(i) = rest.find(stop) {
            cut = cut.min(i);
        }
    }
    let out = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!("printf '%s\\0' {}", &rest[..cut]))
        .output()
        .unwrap();
    let words = String::from_utf8(out.stdout).unwrap();
    Some(words.split_terminator('\0').map(str::to_owned).collect())
}

#[test]
fn every_readme_command_parses() {
    use clap::Parser;
    let mut checked = 0;
    for line in shell_blocks().into_iter().flatten() {
        let Some(args) = blockyard_args(&line) else {
            continue;
        };
        let argv = std::iter::once("blockyard".to_owned()).chain(args);
        if let Err(err) = blockyard::cli::Cli::try_parse_from(argv)
            && err.kind() != clap::error::ErrorKind::DisplayVersion
        {
            panic!("README line does not parse: {line}\n{err}");
        }
        checked += 1;
    }
    assert!(checked >= 30, "only {checked} README commands found");
}

/// The Configuration section names every row of the settings table: its variable, and
/// its config file key.
#[test]
fn the_configuration_table_lists_every_setting() {
    let readme = include_str!("../../README.md");
    let start = readme.find("## Configuration").unwrap();
    let section = &readme[start..readme[start..].find("\n## Exit").unwrap() + start];
    for setting in blockyard::config::SETTINGS {
        for name in [setting.env, setting.name] {
            assert!(
                section.contains(&format!("`{name}`")),
                "README's Configuration does not list {name}"
            );
        }
    }
}

/// The `sh` blocks of the README section headed `heading`, as written (continuation
/// lines and heredocs kept).
fn section_blocks(heading: &str) -> Vec<String> {
    let readme = include_str!("../../README.md");
    let start = readme
        .find(&format!("\n{heading}\n"))
        .unwrap_or_else(|| panic!("README has no {heading:?}"));
    let rest = &readme[start + heading.len() + 2..];
    let end = rest.find("\n## ").unwrap_or(rest.len());
    rest[..end]
        .split("```sh\n")
        .skip(1)
        .map(|block| block.split("\n```").next().unwrap().to_owned())
        .collect()
}

/// Runs `script` with bash in the test's home and directory, `blockyard` on the PATH,
/// stopping at the first command that fails.
fn bash(env: &TestEnv, script: &str, vars: &[(&str, &str)]) -> Run {
    let bin_dir = env.dir.path().join("bin");
    std::fs::create_dir_all(&bin_dir).unwrap();
    let link = bin_dir.join("blockyard");
    if !link.exists() {
        std::os::unix::fs::symlink(BIN, &link).unwrap();
    }
    let path = format!(
        "{}:{}",
        bin_dir.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let mut cmd = env.program(
        std::path::Path::new("bash"),
        &["-euo", "pipefail", "-c", script],
    );
    cmd.env("PATH", path);
    for (k, v) in vars {
        cmd.env(k, v);
    }
    let out = cmd.stdin(std::process::Stdio::null()).output().unwrap();
    Run::from(out, &["bash", script])
}

/// The quickstart, as pasted in a fresh home with no database server: a SQLite block
/// created, filled by `exec -- sqlite3`, tested, a token made, and the server's /ui up.
#[test]
fn the_quickstart_ends_in_success() {
    let env = TestEnv::new(Backend::Sqlite);
    let quickstart = section_blocks("## Quickstart");
    let lines: Vec<&str> = quickstart[0].lines().collect();
    assert!(
        lines.len() <= 5,
        "the quickstart has {} commands",
        lines.len()
    );
    let (server_line, first) = lines.split_last().unwrap();
    assert!(server_line.starts_with("blockyard server"), "{server_line}");
    let ran = bash(&env, &first.join("\n"), &[]).success();
    assert!(
        ran.stdout.contains("round trip"),
        "block test connected: {}",
        ran.stdout
    );
    let token = ran.stdout.lines().last().unwrap().trim().to_owned();
    // The server line as written, on a free port (BLOCKYARD_PORT), until /ui answers.
    let port = free_port().to_string();
    let mut server = env.program(std::path::Path::new(BIN), &["server"]);
    server
        .env("BLOCKYARD_PORT", &port)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    let mut child = server.spawn().unwrap();
    let api = Api::at(&format!("http://127.0.0.1:{port}"), None);
    let mut login = None;
    for _ in 0..200 {
        let answered = std::net::TcpStream::connect(format!("127.0.0.1:{port}")).is_ok();
        if answered {
            login = Some(api.get("/ui/login"));
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let _ = child.kill();
    let _ = child.wait();
    let login = login.expect("the quickstart's server answers /ui/login");
    assert_eq!(login.status, 200, "{}", login.text);
    assert!(
        token.starts_with("by_") || token.len() >= 32,
        "a token, alone: {token}"
    );
}

/// The sections a newcomer pastes after the quickstart, every block in order, in one
/// fresh home: a real connection, everyday use, other ways to create a block, and
/// declaring blocks in a file. None needs a database server.
#[test]
fn the_readme_runs_as_pasted_in_order() {
    let env = TestEnv::new(Backend::Sqlite);
    let mut ran = 0;
    for heading in [
        "## A real connection",
        "## Everyday use",
        "## Move blocks between stores",
    ] {
        for block in section_blocks(heading) {
            // `cargo run --release --` is the binary under test; installing it is not.
            let script: String = block
                .replace("cargo run --release -- ", "blockyard ")
                .lines()
                .filter(|l| !l.starts_with("cargo install"))
                .collect::<Vec<_>>()
                .join("\n");
            if !script.contains("blockyard ") {
                continue;
            }
            bash(&env, &script, &[]).success();
            ran += 1;
        }
    }
    assert!(ran >= 5, "ran {ran} blocks");
    // What the sections left is what later sections use.
    let ls = env.ok(&["block", "ls", "-o", "name"]).stdout;
    for name in [
        "crdb-sage",
        "app-db",
        "sesame",
        "es",
        "settings",
        "ftp-main",
        "warehouse",
    ] {
        assert!(
            ls.lines().any(|l| l == name),
            "{name} missing after the README: {ls}"
        );
    }
}
