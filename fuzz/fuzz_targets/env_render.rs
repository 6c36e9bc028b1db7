//! `block env` output for any value a block's writer may plant: a dotenv line reads
//! back (dotenvy) as exactly the value, as one variable; a shell line is one `export`.
#![no_main]

use blockyard::connect::env::{EnvFormat, render};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(value) = std::str::from_utf8(data) else {
        return;
    };
    if value.contains('\0') || value.contains('\r') {
        return; // not representable in an environment variable / a dotenv line
    }
    let vars = [("A_PASSWORD".to_owned(), value.to_owned())];
    if let Ok(text) = render(&vars, EnvFormat::Dotenv) {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join(".env");
        std::fs::write(&path, &text).expect("write");
        let back: Vec<(String, String)> = dotenvy::from_path_iter(&path)
            .expect("read")
            .collect::<Result<_, _>>()
            .unwrap_or_else(|err| panic!("{err}: {text:?}"));
        assert_eq!(back, vars, "{text:?}");
    }
    let shell = render(&vars, EnvFormat::Shell).expect("shell quoting takes any value");
    assert!(shell.starts_with("export A_PASSWORD='") && shell.ends_with("'\n"));
});
