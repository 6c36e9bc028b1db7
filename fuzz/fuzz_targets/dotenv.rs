//! `.env` files (`--env-file`, the current directory's `.env`): read without a panic,
//! and an error is one of the fixed messages that never quote the file.
#![no_main]

use libfuzzer_sys::fuzz_target;

const NOT_SHOWN: &str = ": not a NAME=value line (the line is not shown: it may hold a secret)";

fuzz_target!(|data: &[u8]| {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join(".env");
    std::fs::write(&path, data).expect("write");
    if let Err(err) = blockyard::config::read_env_file(&path) {
        let message = err.to_string();
        let shown = path.display().to_string();
        let rest = message
            .strip_prefix(&shown)
            .or_else(|| message.strip_prefix(&format!("reading {shown}")))
            .unwrap_or_else(|| panic!("unexpected error: {message}"));
        let rest = match rest.strip_prefix(", line ") {
            Some(numbered) => numbered.trim_start_matches(|c: char| c.is_ascii_digit()),
            None => rest,
        };
        assert!(
            rest == NOT_SHOWN || rest.starts_with(": ") && message.starts_with("reading "),
            "the error may quote the file: {message}"
        );
        if message.starts_with("reading ") {
            // An I/O error's text comes from the OS or dotenvy's "unreadable", never the file.
            if let Ok(text) = std::str::from_utf8(data) {
                for line in text.lines().filter(|l| l.trim().len() > 12) {
                    assert!(!rest.contains(line.trim()), "the error quotes the file: {message}");
                }
            }
        }
    }
});
