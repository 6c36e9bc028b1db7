//! Every `block env` format read back by the tool that reads it: python-dotenv (seed
//! 000's loader) for `dotenv`, bash and dash (`set -a; . FILE`) for every format, over a
//! generated corpus of values holding every printable ASCII character.

use std::path::Path;
use std::process::Command;

use blockyard::connect::EnvFormat;
use blockyard::connect::env::render;

use crate::support::python;

/// Printable ASCII and newline, in values of 1 to 40 characters, plus each character
/// alone and the awkward shapes by hand; from a fixed seed, so a failure repeats.
fn corpus() -> Vec<String> {
    let alphabet: Vec<char> = (b' '..=b'~').map(char::from).chain(['\n']).collect();
    let mut values: Vec<String> = alphabet.iter().map(|c| c.to_string()).collect();
    values.extend(
        [
            "x`touch /tmp/P`",
            "ab$cd",
            "it's",
            "a\\",
            "\\'",
            "${HOME}",
            "$(id)",
            "\"quoted\" # not a comment",
            " lead and trail ",
        ]
        .map(str::to_owned),
    );
    let mut state: u64 = 0x2545_f491_4f6c_dd1d;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    for _ in 0..1500 {
        let len = 1 + next() % 40;
        let value = (0..len)
            .map(|_| alphabet[(next() % alphabet.len() as u64) as usize])
            .collect();
        values.push(value);
    }
    values
}

/// What each `NAME` holds after a POSIX shell runs `set -a; . FILE`, printed NUL-separated.
fn sourced(shell: &str, file: &Path, count: usize, dir: &Path) -> Vec<String> {
    let script = format!(
        "set -a; . '{}'; i=0; while [ $i -lt {count} ]; do eval \"printf '%s\\0' \\\"\\$V$i\\\"\"; i=$((i+1)); done",
        file.display()
    );
    let out = Command::new(shell)
        .args(["-c", &script])
        .current_dir(dir)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{shell}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    let mut values: Vec<String> = text.split('\0').map(str::to_owned).collect();
    values.pop();
    values
}

/// What python-dotenv (with its default interpolation) reads from FILE, in order.
fn python_dotenv(file: &Path, count: usize) -> Vec<String> {
    let script = "import json, sys, dotenv\n\
                  d = dotenv.dotenv_values(sys.argv[1])\n\
                  print(json.dumps([d.get('V%d' % i) for i in range(int(sys.argv[2]))]))";
    let out = Command::new(python())
        .args([
            "-c",
            script,
            &file.display().to_string(),
            &count.to_string(),
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// The dotenv format's refusals: only values no dotenv line can keep literal for every
/// reader (see `dotenv_quote`).
fn dotenv_refuses(value: &str) -> bool {
    value.contains("${") || (value.contains(['\'', '\\']) && value.contains(['$', '`']))
}

#[test]
fn each_format_reads_back_exactly_in_its_consumers() {
    let dir = tempfile::tempdir().unwrap();
    let values = corpus();
    let mut refused = 0;
    for format in [EnvFormat::Dotenv, EnvFormat::Shell, EnvFormat::Libpq] {
        let mut kept = Vec::new();
        let mut text = String::new();
        for value in &values {
            let var = [(format!("V{}", kept.len()), value.clone())];
            match render(&var, format) {
                Ok(line) => {
                    text.push_str(&line);
                    kept.push(value.clone());
                }
                Err(err) => {
                    assert!(
                        format == EnvFormat::Dotenv && dotenv_refuses(value),
                        "{err}"
                    );
                    assert!(err.to_string().contains("--format shell"), "{err}");
                    refused += 1;
                }
            }
        }
        if format == EnvFormat::Dotenv {
            let expected = values.iter().filter(|v| !dotenv_refuses(v)).count();
            assert_eq!(kept.len(), expected);
        }
        let file = dir.path().join(format!("{format:?}.env"));
        std::fs::write(&file, &text).unwrap();
        for shell in ["bash", "dash"] {
            assert_eq!(
                sourced(shell, &file, kept.len(), dir.path()),
                kept,
                "{shell} {format:?}"
            );
        }
        if format == EnvFormat::Dotenv {
            let read: Vec<String> = python_dotenv(&file, kept.len());
            assert_eq!(read, kept, "python-dotenv");
        }
        assert!(!Path::new("/tmp/P").exists() && !dir.path().join("P").exists());
    }
    eprintln!(
        "{} values, {refused} refused by the dotenv format",
        values.len()
    );
}
