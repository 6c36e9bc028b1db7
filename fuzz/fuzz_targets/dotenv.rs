//! `.env` files (`--env-file`, the current directory's `.env`): read without a panic,
//! and an error never quotes the file.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join(".env");
    std::fs::write(&path, data).expect("write");
    if let Err(err) = blockyard::config::read_env_file(&path) {
        let message = err.to_string();
        if let Ok(text) = std::str::from_utf8(data) {
            for line in text.lines().filter(|l| l.trim().len() > 12) {
                assert!(!message.contains(line.trim()), "the error quotes the file: {message}");
            }
        }
    }
});
