//! Master key checks, tampering, rotation (also interrupted by kill -9), and the OS
//! keyring.

use std::process::Stdio;
use std::time::Duration;

use crate::support::*;

const OTHER_KEY: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";

fn seed_two(env: &TestEnv) {
    env.run_stdin(
        &[
            "block",
            "create",
            "a",
            "--type",
            "secret",
            "--password-stdin",
        ],
        "secret-a",
    )
    .success();
    env.run_stdin(
        &[
            "block",
            "create",
            "b",
            "--type",
            "secret",
            "--password-stdin",
        ],
        "secret-b",
    )
    .success();
}

on_both_stores!(
    wrong_or_missing_master_key_is_refused_before_anything,
    |env: TestEnv| {
        seed_two(&env);
        let before = env.snapshot();
        let wrong = [("BLOCKYARD_MASTER_KEY", OTHER_KEY)];
        env.run_with(&["block", "inspect", "a", "--show-secrets"], None, &wrong)
            .fails_with("WRONG_MASTER_KEY");
        env.run_with(
            &[
                "block",
                "create",
                "c",
                "--type",
                "json",
                "--set-json",
                "value=1",
            ],
            None,
            &wrong,
        )
        .fails_with("WRONG_MASTER_KEY");
        env.run_with(
            &[
                "block",
                "update",
                "a",
                "--set-secret-file",
                "value=/dev/null",
            ],
            None,
            &wrong,
        )
        .fails_with("WRONG_MASTER_KEY");
        env.run_with(&["key", "rotate"], None, &wrong)
            .fails_with("WRONG_MASTER_KEY");
        env.run_with(
            &["block", "ls"],
            None,
            &[("BLOCKYARD_MASTER_KEY", "not base64!")],
        )
        .success();
        env.run_with(
            &["block", "inspect", "a", "--show-secrets"],
            None,
            &[("BLOCKYARD_MASTER_KEY", "c2hvcnQ=")],
        )
        .fails_with("INVALID_MASTER_KEY");
        assert_eq!(env.snapshot(), before);

        let key_file = env.key_file();
        let saved = std::fs::read(&key_file).unwrap();
        std::fs::remove_file(&key_file).unwrap();
        env.run(&["block", "inspect", "a", "--show-secrets"])
            .fails_with("MASTER_KEY_MISSING");
        env.run(&[
            "block",
            "create",
            "c",
            "--type",
            "json",
            "--set-json",
            "value=1",
        ])
        .fails_with("MASTER_KEY_MISSING");
        // A key file others may read is refused, with the chmod that fixes it.
        use std::os::unix::fs::PermissionsExt;
        std::fs::write(&key_file, &saved).unwrap();
        std::fs::set_permissions(&key_file, std::fs::Permissions::from_mode(0o644)).unwrap();
        let run = env
            .run(&["block", "inspect", "a", "--show-secrets"])
            .fails_with("INSECURE_KEY_FILE");
        assert!(run.stderr.contains("chmod 600"), "{}", run.stderr);
        std::fs::set_permissions(&key_file, std::fs::Permissions::from_mode(0o600)).unwrap();
        std::fs::write(&key_file, b"garbage").unwrap();
        env.run(&["block", "inspect", "a", "--show-secrets"])
            .fails_with("INVALID_MASTER_KEY");
        std::fs::write(&key_file, saved).unwrap();
        assert_eq!(env.snapshot(), before);

        // The same key given through the environment works.
        let text = std::fs::read_to_string(&key_file).unwrap();
        let shown = env
            .run_with(
                &["block", "inspect", "a", "--show-secrets", "-o", "json"],
                None,
                &[("BLOCKYARD_MASTER_KEY", text.trim())],
            )
            .success();
        assert!(shown.stdout.contains("secret-a"));
    }
);

on_both_stores!(
    tampered_or_moved_ciphertext_does_not_decrypt,
    |env: TestEnv| {
        seed_two(&env);
        // Copy b's ciphertext into a's row: bound to b's id, it must not open as a's.
        env.sql("UPDATE blocks SET sealed_secrets = (SELECT sealed_secrets FROM blocks WHERE name = 'b') WHERE name = 'a'");
        let run = env
            .run(&["block", "inspect", "a", "--show-secrets"])
            .fails_with("DECRYPTION_FAILED");
        assert!(!run.all_output().contains("secret-b"));
        env.ok(&["block", "inspect", "b", "--show-secrets"]);
        // Flip the last byte of b's ciphertext.
        let flip = match env.backend {
            Backend::Sqlite => {
                "UPDATE blocks SET sealed_secrets = substr(sealed_secrets, 1, length(sealed_secrets) - 1) || \
                            CASE WHEN substr(sealed_secrets, -1) = x'00' THEN x'01' ELSE x'00' END WHERE name = 'b'"
            }
            Backend::Postgres => {
                "UPDATE blocks SET sealed_secrets = set_byte(sealed_secrets, length(sealed_secrets) - 1, \
                              (get_byte(sealed_secrets, length(sealed_secrets) - 1) + 1) % 256) WHERE name = 'b'"
            }
        };
        assert_eq!(env.sql(flip), 1);
        env.run(&["block", "inspect", "b", "--show-secrets"])
            .fails_with("DECRYPTION_FAILED");
        // Masked reads still work: nothing there needs decrypting.
        env.ok(&["block", "inspect", "b"]);
    }
);

on_both_stores!(rotation_reseals_everything, |env: TestEnv| {
    seed_two(&env);
    env.ok(&[
        "block",
        "update",
        "a",
        "--set-secret-file",
        &format!(
            "value={}",
            write_file(env.dir.path(), "a2", "secret-a2").display()
        ),
    ]);
    let before = env.snapshot();
    let old = env.json(&["key", "status"]);
    let report = env.json(&["key", "rotate"]);
    assert_eq!(
        report["rows_resealed"], 5,
        "2 current rows + 3 versions: {report}"
    );
    assert_eq!(report["keys_deleted"], 1);
    let new = env.json(&["key", "status"]);
    assert_eq!(new["data_keys"].as_array().unwrap().len(), 1);
    assert_ne!(new["data_keys"][0]["id"], old["data_keys"][0]["id"]);
    assert_eq!(new["rows_needing_rotation"], 0);
    assert_eq!(env.snapshot(), before, "rotation changes no visible data");
});

#[test]
fn interrupted_rotation_leaves_every_block_readable() {
    let env = TestEnv::new(Backend::Sqlite);
    env.ok(&["init"]);
    // Many blocks, created through the library to keep the test fast.
    let config = blockyard::Config::load(blockyard::config::Sources {
        flags: blockyard::config::Settings {
            data_dir: Some(env.data_dir()),
            ..Default::default()
        },
        ..Default::default()
    })
    .unwrap();
    let (registry, _) = blockyard::Registry::open(config).unwrap();
    for i in 0..3000 {
        registry
            .create_block(blockyard::NewBlock {
                name: blockyard::name::BlockName::parse(&format!("b{i:05}")).unwrap(),
                block_type: "secret".into(),
                document: serde_json::json!({"value": format!("v{i}")}),
                id: None,
                replace_deleted: false,
            })
            .unwrap();
    }
    let mut interrupted = false;
    for delay_ms in [150, 400, 900] {
        let mut child = env
            .command(&["key", "rotate"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(delay_ms));
        let finished = child.try_wait().unwrap().is_some();
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        interrupted |= !finished;
        for block in registry.list_blocks(&Default::default()).unwrap() {
            let loaded = registry.load_block(&block.name).unwrap();
            let i: usize = block.name[1..].parse().unwrap();
            assert_eq!(loaded.document().unwrap()["value"], format!("v{i}"));
        }
    }
    assert!(
        interrupted,
        "no rotation was interrupted; the test did not test anything"
    );
    // A rotation run to the end afterwards leaves a single key.
    env.ok(&["key", "rotate"]);
    assert_eq!(
        env.json(&["key", "status"])["data_keys"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    assert_eq!(
        registry.load_block("b02999").unwrap().document().unwrap()["value"],
        "v2999"
    );
}

/// The master key kept in a real Secret Service (gnome-keyring under a private D-Bus
/// session), as on a Linux desktop.
#[test]
fn master_key_in_the_os_keyring() {
    let env = TestEnv::new(Backend::Sqlite);
    let out = in_keyring_session(
        &env,
        &format!(
            r#"B='{bin}'
"$B" init --key-source keyring
"$B" block create k1 --type secret --password-stdin <<< 'keyring-held-secret'
"$B" block inspect k1 --show-secrets -o json
"$B" key status -o json
"#,
            bin = BIN
        ),
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(
        stdout.contains("\"value\": \"keyring-held-secret\""),
        "{stdout}"
    );
    assert!(stdout.contains("OS keyring"), "{stdout}");
    assert!(
        !env.key_file().exists(),
        "the key went to a file, not the keyring"
    );
    // Outside that keyring session, the key is not there: a clear error, not garbage.
    env.run(&["block", "inspect", "k1", "--show-secrets"])
        .fails_with("KEYRING_ERROR");
}
