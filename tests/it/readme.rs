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

#[test]
fn readme_run_command_and_everyday_block_run() {
    let env = TestEnv::new(Backend::Sqlite);
    let blocks = shell_blocks();
    let run_line = blocks
        .iter()
        .flatten()
        .find(|l| l.starts_with("cargo run --release -- block create crdb-sage"))
        .expect("the README's run command");
    let stdin = run_line.split("<<< ").nth(1).unwrap().trim_matches('\'');
    let args = blockyard_args(run_line).unwrap();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    env.run_stdin(&args, stdin).success();
    let everyday = blocks
        .iter()
        .find(|b| b[0].starts_with("blockyard block ls "))
        .expect("the everyday block");
    let mut ran = 0;
    for line in everyday {
        let args = blockyard_args(line).unwrap();
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let run = env.run(&args).success();
        assert!(!run.stdout.is_empty() || !run.stderr.is_empty(), "{line}");
        ran += 1;
    }
    assert!(ran >= 7, "ran {ran}");
}
