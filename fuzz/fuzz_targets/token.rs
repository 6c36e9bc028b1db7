//! Bearer tokens and scopes from callers: scope text, block name patterns and tokens
//! checked against a real (SQLite) store; only errors, never a panic or a pass.
#![no_main]

use std::sync::OnceLock;
use std::time::Duration;

use blockyard::auth::{Scope, Verifier};
use blockyard::crypto::MasterKey;
use blockyard::name::BlockName;
use blockyard::store::{PoolOptions, Store, StoreUrl};
use libfuzzer_sys::fuzz_target;

fn verifier() -> &'static Verifier {
    static VERIFIER: OnceLock<(tempfile::TempDir, Verifier)> = OnceLock::new();
    &VERIFIER
        .get_or_init(|| {
            let dir = tempfile::tempdir().expect("temp dir");
            let url = StoreUrl::parse(dir.path().join("t.db").to_str().unwrap()).unwrap();
            let store = Store::open(url, &PoolOptions::default()).unwrap();
            store.migrate().unwrap();
            let key = MasterKey::generate().row_key();
            (dir, Verifier::new(store, key, Duration::from_secs(60)))
        })
        .1
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(scope) = Scope::parse(text) {
        let _ = scope.to_string();
        let _ = scope.grants(blockyard::auth::Permission::Read, Some(text));
    }
    let _ = BlockName::parse(text);
    assert!(verifier().verify(text).is_err(), "no token exists, so none verifies");
});
