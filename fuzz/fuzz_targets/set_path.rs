//! `--set PATH=VALUE` paths and values from the command line: looked up in a type's
//! schema, written into and read from a document, checked for secrets.
#![no_main]

use blockyard::document::{get_path, remove_path, secret_in, set_path};
use blockyard::types::{BlockType, builtin_type};
use libfuzzer_sys::fuzz_target;
use serde_json::{Value, json};

/// The connector type, its schema compiled once.
fn connector() -> &'static BlockType {
    static TYPE: std::sync::OnceLock<BlockType> = std::sync::OnceLock::new();
    TYPE.get_or_init(|| builtin_type("sqlalchemy-connector").expect("built-in type"))
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let (path, raw) = text.split_once('=').unwrap_or((text, ""));
    let ty = connector();
    let _ = ty.field_kind(path);
    let value = serde_json::from_str(raw).unwrap_or_else(|_| Value::String(raw.to_owned()));
    let _ = secret_in(ty, path, &value);
    let mut doc = json!({"connection_info": {"driver": "postgresql", "database": "d"}});
    if set_path(&mut doc, path, value.clone()).is_ok() {
        assert_eq!(get_path(&doc, path), Some(&value), "a value set is read back");
        assert!(remove_path(&mut doc, path).is_some());
    }
});
