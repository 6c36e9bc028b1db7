//! A stock Prefect client against our Prefect-compatible routes.

use std::process::Command;

use super::PLANTED;
use crate::support::*;

/// A stock Prefect 3 client (pip-installed; see .ci/run) loads a block from us.
#[test]
fn prefect_client_loads_a_block() {
    let python = std::env::var("BLOCKYARD_TEST_PYTHON").unwrap_or_else(|_| {
        format!(
            "{}/target/prefect-venv/bin/python",
            env!("CARGO_MANIFEST_DIR")
        )
    });
    let env = TestEnv::new(Backend::Sqlite);
    env.ok(&["init"]);
    create_crdb_sage(&env, PLANTED, &["--set-json", r#"pool={"max_size": 4}"#]).success();
    let databot = token(&env, "databot", &["blocks:read-secrets:crdb-*"], &[]);
    let server = Server::start(&env, &[]);
    let script = r#"
from prefect_sqlalchemy import SqlAlchemyConnector
from prefect.blocks.core import Block
c = SqlAlchemyConnector.load("crdb-sage")
print(c.connection_info.port, c.connection_info.database, c.connection_info.password.get_secret_value())
b = Block.load("sqlalchemy-connector/crdb-sage")
print(type(b).__name__, b.connection_info.username)
"#;
    for auth in [
        ("PREFECT_API_KEY", databot.clone()),
        ("PREFECT_API_AUTH_STRING", format!("databot:{databot}")),
    ] {
        let out = Command::new(&python)
            .args(["-c", script])
            .env("PREFECT_API_URL", format!("{}/prefect/api", server.base))
            .env(auth.0, &auth.1)
            .env("PREFECT_HOME", env.dir.path().join("prefect"))
            .output()
            .expect("python with prefect and prefect-sqlalchemy (created by .ci/run)");
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{stdout}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(
            stdout.lines().collect::<Vec<_>>(),
            [
                format!("26257 sage {PLANTED}").as_str(),
                "SqlAlchemyConnector databot"
            ],
            "{}",
            auth.0
        );
    }
    // Without a token, Prefect gets a 401.
    let out = Command::new(&python)
        .args(["-c", "from prefect_sqlalchemy import SqlAlchemyConnector; SqlAlchemyConnector.load('crdb-sage')"])
        .env("PREFECT_API_URL", format!("{}/prefect/api", server.base))
        .env("PREFECT_HOME", env.dir.path().join("prefect"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(!server.log().contains(PLANTED));
}

/// The Prefect route keeps its rendered document with the kept block, and a change
/// made elsewhere (the CLI) is still seen by the very next read.
#[test]
fn prefect_documents_follow_changes_at_once() {
    let env = TestEnv::new(Backend::Sqlite);
    env.ok(&["init"]);
    create_crdb_sage(&env, PLANTED, &[]).success();
    let bot = token(&env, "databot", &["blocks:read-secrets:crdb-*"], &[]);
    let server = Server::start(&env, &[]);
    let prefect = Api::root(&server, Some(&bot));
    let url = "/prefect/api/block_types/slug/sqlalchemy-connector/block_documents/name/crdb-sage?include_secrets=true";
    let port = |reply: &Reply| reply.body["data"]["connection_info"]["port"].clone();
    for _ in 0..2 {
        let reply = prefect.get(url);
        assert_eq!(reply.status, 200, "{}", reply.text);
        assert_eq!(port(&reply), 26257);
        assert_eq!(reply.body["data"]["connection_info"]["password"], PLANTED);
    }
    env.ok(&[
        "block",
        "update",
        "crdb-sage",
        "--set",
        "connection_info.port=26258",
    ]);
    let reply = prefect.get(url);
    assert_eq!(port(&reply), 26258, "{}", reply.text);
    let masked = prefect.get(&url.replace("true", "false"));
    assert_eq!(
        masked.body["data"]["connection_info"]["password"],
        "********"
    );
}
