//! A block document from an untrusted writer (`--data`, `PUT /blocks/{name}`), checked
//! against every built-in type's schema, split into masked data and secrets, and read
//! as connection and pool settings: nothing may panic, and no secret may survive in
//! the masked part where it was.
#![no_main]

use blockyard::connect::{ConnectionInfo, PoolSettings};
use blockyard::document::{MASK, get_path, merge_secrets, split_secrets};
use blockyard::types::{BlockType, builtin_types};
use libfuzzer_sys::fuzz_target;
use serde_json::Value;

/// The built-in types, their schemas compiled once.
fn types() -> &'static [BlockType] {
    static TYPES: std::sync::OnceLock<Vec<BlockType>> = std::sync::OnceLock::new();
    TYPES.get_or_init(builtin_types)
}

fuzz_target!(|data: &[u8]| {
    let Ok(doc) = serde_json::from_slice::<Value>(data) else {
        return;
    };
    for ty in types() {
        let valid = ty.validate(&doc).is_ok();
        if let Ok((masked, secrets)) = split_secrets(ty, doc.clone()) {
            // Where each secret was, the masked data holds the mask (or a URL with it).
            for path in secrets.paths() {
                let shown = get_path(&masked, path).and_then(Value::as_str);
                assert!(
                    shown.is_some_and(|text| text.contains(MASK)),
                    "a secret at {path} stayed in the masked data"
                );
            }
            let mut full = masked.clone();
            merge_secrets(&mut full, &secrets);
            if valid {
                let _ = ty.validate(&full);
            }
        }
    }
    let _ = ConnectionInfo::from_document("fuzz", &doc);
    let _ = PoolSettings::from_document(&doc);
});
