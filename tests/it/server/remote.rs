//! Remote mode: the CLI and the library through a server.

use super::PLANTED;
use crate::support::*;

/// A store holding `crdb-sage` (its password planted), a quiet server on it and an
/// admin token.
fn serving_crdb_sage(env: &TestEnv) -> (Server, String) {
    env.run_stdin(
        &[
            "block",
            "create",
            "crdb-sage",
            "--url",
            "postgresql://databot@localhost:26257/sage",
            "--password-stdin",
        ],
        PLANTED,
    )
    .success();
    let admin = token(env, "ops", &["admin"], &[]);
    (Server::start(env, &["--quiet"]), admin)
}

/// With BLOCKYARD_URL and BLOCKYARD_TOKEN, the same commands go through the API and
/// print the same output, or fail with the same code and exit code.
#[test]
fn remote_commands_answer_as_local_ones() {
    let env = TestEnv::new(Backend::Sqlite);
    let (server, admin) = serving_crdb_sage(&env);
    let remote = [
        ("BLOCKYARD_URL", server.base.as_str()),
        ("BLOCKYARD_TOKEN", admin.as_str()),
    ];
    let both = |args: &[&str]| {
        let local = env.run(args);
        let over_http = env.run_with(args, None, &remote);
        assert_eq!(local.code, over_http.code, "{args:?}: {}", over_http.stderr);
        (local, over_http)
    };
    for args in [
        &["block", "ls", "-o", "json"][..],
        &["block", "inspect", "crdb-sage", "-o", "json"],
        &[
            "block",
            "inspect",
            "crdb-sage",
            "--show-secrets",
            "-o",
            "json",
        ],
        &["block", "history", "crdb-sage", "-o", "json"],
        &["block", "url", "crdb-sage"],
        &["block", "env", "crdb-sage", "--format", "libpq"],
        &["type", "ls", "-o", "json"],
    ] {
        let (local, over_http) = both(args);
        assert_eq!(local.stdout, over_http.stdout, "{args:?}");
    }
    for (args, code) in [
        (&["block", "inspect", "nope"][..], "BLOCK_NOT_FOUND"),
        (&["block", "inspect", "Bad Name"], "INVALID_BLOCK_NAME"),
        (
            &[
                "block",
                "update",
                "crdb-sage",
                "--set",
                "connection_info.port=70000",
            ],
            "INVALID_BLOCK_DATA",
        ),
        (
            &[
                "block",
                "update",
                "crdb-sage",
                "--set",
                "connection_info.port=1",
                "--if-version",
                "9",
            ],
            "VERSION_CONFLICT",
        ),
    ] {
        let (local, over_http) = both(args);
        local.fails_with(code);
        over_http.fails_with(code);
    }
}

/// Changes made remotely land in the server's store; a wrong token, an unreachable
/// server or a local-only command in remote mode is a clear error, exit 1.
#[test]
fn remote_changes_land_in_the_servers_store() {
    let env = TestEnv::new(Backend::Sqlite);
    let (server, admin) = serving_crdb_sage(&env);
    let remote = [
        ("BLOCKYARD_URL", server.base.as_str()),
        ("BLOCKYARD_TOKEN", admin.as_str()),
    ];
    env.run_with(
        &[
            "block",
            "update",
            "crdb-sage",
            "--set",
            "connection_info.port=26258",
        ],
        None,
        &remote,
    )
    .success();
    env.run_with(
        &["block", "rename", "crdb-sage", "crdb-main"],
        None,
        &remote,
    )
    .success();
    let local = env.json(&["block", "inspect", "crdb-main", "--show-secrets"]);
    assert_eq!(local["data"]["connection_info"]["port"], 26258);
    assert_eq!(
        local["data"]["connection_info"]["password"], PLANTED,
        "the masked password sent back was kept"
    );
    // A wrong token or an unreachable server: clear errors, exit 1.
    env.run_with(
        &["block", "ls"],
        None,
        &[
            ("BLOCKYARD_URL", server.base.as_str()),
            ("BLOCKYARD_TOKEN", "byd_0000000000000000_x"),
        ],
    )
    .fails_with("UNAUTHORIZED");
    env.run_with(
        &["block", "ls"],
        None,
        &[
            ("BLOCKYARD_URL", "http://127.0.0.1:1"),
            ("BLOCKYARD_TOKEN", "t"),
        ],
    )
    .fails_with("REMOTE_UNAVAILABLE");
    env.run_with(
        &["block", "ls"],
        None,
        &[("BLOCKYARD_URL", "http://127.0.0.1:1")],
    )
    .fails_with("CONFIG_ERROR");
    env.run_with(&["key", "status"], None, &remote)
        .fails_with("CONFIG_ERROR");
}

/// The library in remote mode: blocks come from the server, with their secrets, and no
/// local store is created.
#[test]
fn the_library_reads_blocks_through_a_server() {
    let env = TestEnv::new(Backend::Sqlite);
    let (server, admin) = serving_crdb_sage(&env);
    let config = blockyard::Config::load(blockyard::config::Sources {
        flags: blockyard::config::Settings {
            server_url: Some(server.base.clone()),
            token: Some(admin.clone()),
            data_dir: Some(env.dir.path().join("elsewhere")),
            ..Default::default()
        },
        ..Default::default()
    })
    .unwrap();
    let registry = blockyard::Registry::open(config).unwrap().0;
    let block = registry.load_block("crdb-sage").unwrap();
    assert_eq!(
        block.document().unwrap()["connection_info"]["password"],
        PLANTED
    );
    assert_eq!(
        block.masked_data()["connection_info"]["password"],
        "********"
    );
    assert!(
        !format!("{registry:?}{block:?}").contains(&admin),
        "Debug shows the token"
    );
    assert!(
        !env.dir.path().join("elsewhere").exists(),
        "remote mode created a local store"
    );
    assert!(!server.log().contains(PLANTED));
}
