//! A planted secret appears nowhere but in an explicit `--show-secrets` answer.

use crate::support::*;

const PLANTED: &str = "PLANTED-pw-7f3a9c";

on_both_stores!(planted_secret_never_leaks, |env: TestEnv| {
    let mut outputs = Vec::new();
    let create = env.run_stdin(
        &[
            "block",
            "create",
            "crdb-sage",
            "--type",
            "sqlalchemy-connector",
            "--set",
            "connection_info.driver=postgresql",
            "--set",
            "connection_info.database=sage",
            "--set",
            "connection_info.host=db.internal",
            "--password-stdin",
        ],
        PLANTED,
    );
    outputs.push(create.success().all_output());
    env.run_stdin(
        &[
            "block",
            "create",
            "url-form",
            "--url",
            "postgres://app@db.internal:5432/app",
            "--password-stdin",
        ],
        PLANTED,
    )
    .success();
    env.run_stdin(
        &[
            "block",
            "create",
            "tok",
            "--type",
            "secret",
            "--password-stdin",
        ],
        PLANTED,
    )
    .success();
    for args in [
        &["block", "ls"][..],
        &["block", "ls", "-o", "json"],
        &["block", "inspect", "crdb-sage"],
        &["block", "inspect", "crdb-sage", "-o", "json"],
        &["block", "inspect", "url-form", "-o", "json"],
        &["block", "inspect", "tok"],
        &[
            "block",
            "update",
            "crdb-sage",
            "--set",
            "connection_info.port=5433",
        ],
        &[
            "block",
            "update",
            "url-form",
            "--set",
            "fetch_size=5",
            "-o",
            "json",
        ],
        &["block", "history", "crdb-sage"],
        &["block", "history", "url-form", "-o", "json"],
        &[
            "block",
            "update",
            "crdb-sage",
            "--set",
            "connection_info.port=99999",
        ],
        &[
            "block",
            "update",
            "crdb-sage",
            "--set",
            "connection_info.nope=1",
        ],
        &["block", "rename", "crdb-sage", "crdb-sage-2", "-o", "json"],
        &["key", "status"],
        &["key", "rotate", "-o", "json"],
        &["block", "delete", "tok", "--if-version", "5"],
    ] {
        outputs.push(env.run(args).all_output());
    }
    let wrong_key = env.run_with(
        &["block", "update", "url-form", "--set", "fetch_size=2"],
        None,
        &[(
            "BLOCKYARD_MASTER_KEY",
            "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=",
        )],
    );
    outputs.push(wrong_key.fails_with("WRONG_MASTER_KEY").all_output());
    for (i, out) in outputs.iter().enumerate() {
        assert!(
            !out.contains(PLANTED),
            "output #{i} leaks the secret:\n{out}"
        );
    }
    let shown = env.json(&["block", "inspect", "crdb-sage-2", "--show-secrets"]);
    assert_eq!(
        shown["data"]["connection_info"]["password"], PLANTED,
        "the secret is still there"
    );
    assert!(
        !contains_bytes(&env.store_bytes(), PLANTED),
        "the store holds the secret outside its ciphertext"
    );
    assert!(!contains_bytes(&env.store_bytes(), "pw-7f3a9c"));
});

#[test]
fn debug_output_of_library_values_is_masked() {
    use blockyard::types::builtin_type;
    let ty = builtin_type("sqlalchemy-connector").unwrap();
    let doc = serde_json::json!({"connection_info": format!("postgresql://u:{PLANTED}@h:5432/db")});
    let (masked, secrets) = blockyard::document::split_secrets(&ty, doc).unwrap();
    assert!(!format!("{masked:?}{secrets:?}").contains(PLANTED));
    let key = blockyard::crypto::MasterKey::generate();
    assert!(!format!("{key:?}").contains(key.to_base64().as_str()));
}
