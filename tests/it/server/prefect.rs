//! A stock Prefect client against our Prefect-compatible routes.

use std::process::Command;

use super::PLANTED;
use crate::support::*;

/// A stock Prefect 3 client (pip-installed; see .ci/run) loads a block from us.
#[test]
fn prefect_client_loads_a_block() {
    let python = python();
    let env = TestEnv::new(Backend::Sqlite);
    env.ok(&["init"]);
    create_crdb_sage(&env, PLANTED, &["--set-json", r#"pool={"max_size": 4}"#]).success();
    // Seed 001's async flows: Prefect's AsyncSqlAlchemyConnector has its own type.
    env.run_stdin(
        &[
            "block",
            "create",
            "crdb-async",
            "--type",
            "async-sqlalchemy-connector",
            "--url",
            "postgresql+asyncpg://databot@db.example:5432/sage",
            "--password-stdin",
        ],
        PLANTED,
    )
    .success();
    let databot = token(&env, "databot", &["blocks:read-secrets:crdb-*"], &[]);
    let server = Server::start(&env, &[]);
    let script = r#"
from prefect_sqlalchemy import AsyncSqlAlchemyConnector, SqlAlchemyConnector
from prefect.blocks.core import Block
c = SqlAlchemyConnector.load("crdb-sage")
print(c.connection_info.port, c.connection_info.database, c.connection_info.password.get_secret_value())
b = Block.load("sqlalchemy-connector/crdb-sage")
print(type(b).__name__, b.connection_info.username)
a = AsyncSqlAlchemyConnector.load("crdb-async")
print(a.connection_info.driver, a.connection_info.password.get_secret_value() == c.connection_info.password.get_secret_value())
"#;
    let auths = [
        ("PREFECT_API_KEY", databot.clone()),
        ("PREFECT_API_AUTH_STRING", format!("databot:{databot}")),
    ];
    for (python, auth) in clients()
        .iter()
        .flat_map(|p| auths.iter().map(move |a| (p, a)))
    {
        let out = Command::new(python)
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
                "SqlAlchemyConnector databot",
                "postgresql+asyncpg True"
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

/// The flow the pass-through test runs: a `@flow` (its run recorded in the Prefect
/// server behind Blockyard) that loads the block from Blockyard and runs `select 1`
/// against the real PostgreSQL through SQLAlchemy; it prints its run's id and result.
const FLOW: &str = r#"
from prefect import flow
from prefect.runtime import flow_run
from prefect_sqlalchemy import SqlAlchemyConnector

@flow(name="databot")
def databot():
    with SqlAlchemyConnector.load("pg-main") as connector:
        rows = connector.fetch_all("select 1 as one")
    print(flow_run.id)
    return rows[0][0]

@flow(name="with-block")
def with_block(connector: SqlAlchemyConnector):
    return connector.fetch_one("select 2 as two")[0]

print(databot())
print(with_block(SqlAlchemyConnector.load("pg-main")))
"#;

/// With `--prefect-upstream`, a stock Prefect client's `@flow` runs against Blockyard:
/// the run goes to the real Prefect server behind it, the block comes from Blockyard
/// (read audited, its secret never in Prefect's database), block routes are never
/// passed on, and a request without a token is refused before anything is passed on.
#[test]
fn a_prefect_flow_runs_through_blockyard() {
    let env = TestEnv::new(Backend::Sqlite);
    env.ok(&["init"]);
    // The test server trusts loopback, so the planted password is only there to be
    // searched for.
    let url = "postgresql+psycopg2://postgres@127.0.0.1:5432/postgres";
    env.run_stdin(
        &[
            "block",
            "create",
            "pg-main",
            "--url",
            url,
            "--password-stdin",
        ],
        PLANTED,
    )
    .success();
    let databot = token(&env, "databot", &["blocks:read-secrets:pg-*"], &[]);
    let prefect = PrefectServer::start(env.dir.path().join("prefect-server"));
    let server = Server::start(&env, &["--prefect-upstream", &prefect.api]);
    let api_url = format!("{}/prefect/api", server.base);
    let home = env.dir.path().join("prefect-client");
    // Each client's flows run; the auth string carries the token on HTTP (Basic) and on
    // the events websocket.
    let auth = format!("databot:{databot}");
    let vars = [
        ("PREFECT_API_URL", api_url.as_str()),
        ("PREFECT_API_AUTH_STRING", &auth),
    ];
    for python in clients() {
        let out = run_python(&python, FLOW, &[], &home, &vars);
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{python}: {stdout}\n{stderr}");
        let lines: Vec<&str> = stdout.lines().collect();
        assert_eq!(
            lines[lines.len() - 2..],
            ["1", "2"],
            "{python}: {stdout}\n{stderr}"
        );
        assert!(!stderr.contains("Unable to connect"), "{python}: {stderr}");
        let run_id = lines[lines.len() - 3];
        assert_completed_with_events(&prefect, &api_url, &databot, run_id);
    }

    // The block is Blockyard's: its read is on record, and Prefect never saw the secret.
    let audit = env.json(&["audit", "ls", "--block", "pg-main"]);
    assert!(
        audit
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["actor"] == "databot" && r["action"] == "read-secrets"),
        "{audit}"
    );
    assert!(!contains_bytes(&prefect.database(), PLANTED));
    assert!(!server.log().contains(PLANTED) && !server.log().contains(&databot));
    let server_log = std::fs::read_to_string(prefect.home.join("server.log")).unwrap();
    assert!(!server_log.contains(&databot), "the token reached Prefect");

    // Refusals: no token, and block routes, which are never passed on.
    assert_error(
        &Api::at(&api_url, None).get("/flows/filter"),
        401,
        "UNAUTHORIZED",
    );
    let through = Api::at(&api_url, Some(&databot));
    let listed = through.post("/block_documents/filter", &serde_json::json!({}));
    assert_eq!(listed.body[0]["name"], "pg-main", "{}", listed.text);
    assert!(!listed.text.contains(PLANTED), "a listing carried a secret");
    let not_ours_yet = through.post("/block_capabilities/", &serde_json::json!({}));
    assert_error(&not_ours_yet, 404, "NOT_FOUND");
    // Nor through a dot segment (sent raw: an HTTP client would resolve it first).
    let port = server.base.rsplit(':').next().unwrap();
    let mut raw = std::net::TcpStream::connect(format!("127.0.0.1:{port}")).unwrap();
    use std::io::{Read, Write};
    write!(
        raw,
        "GET /prefect/api/flows/../block_documents/x HTTP/1.1\r\nHost: x\r\n\
         Authorization: Bearer {databot}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut answer = String::new();
    raw.read_to_string(&mut answer).unwrap();
    assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");
}

/// The run is Prefect's, seen through Blockyard and directly, and its events came
/// through the websocket (Prefect's event persister writes in batches, so they are
/// looked for until they are there).
fn assert_completed_with_events(prefect: &PrefectServer, api_url: &str, token: &str, run_id: &str) {
    let run = Api::at(api_url, Some(token)).get(&format!("/flow_runs/{run_id}"));
    assert_eq!(run.body["state_type"], "COMPLETED", "{}", run.text);
    let direct = Api::at(&prefect.api, None).get(&format!("/flow_runs/{run_id}"));
    assert_eq!(direct.body["state_type"], "COMPLETED");
    let resource = format!("prefect.flow-run.{run_id}");
    let filter = serde_json::json!({"filter": {"any_resource": {"id": [resource]}}});
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let events = Api::at(&prefect.api, None).post("/events/filter", &filter);
        if events.body["events"]
            .as_array()
            .is_some_and(|e| !e.is_empty())
        {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no events for {run_id}: {}",
            events.text
        );
        std::thread::sleep(std::time::Duration::from_millis(250));
    }
}

/// Without an upstream, Prefect's own routes name the setting; with an upstream that
/// is down, 502 `UPSTREAM_UNAVAILABLE`.
#[test]
fn prefect_routes_without_an_upstream_say_what_to_do() {
    let env = TestEnv::new(Backend::Sqlite);
    env.ok(&["init"]);
    let bot = token(&env, "bot", &["blocks:read"], &[]);
    let alone = Server::start(&env, &[]);
    let reply = Api::root(&alone, Some(&bot)).get("/prefect/api/flows/x");
    assert_error(&reply, 404, "NOT_FOUND");
    assert!(reply.text.contains("--prefect-upstream"), "{}", reply.text);
    let down = format!("http://127.0.0.1:{}/api", closed_port());
    let fronting = Server::start(&env, &["--prefect-upstream", &down]);
    let reply = Api::root(&fronting, Some(&bot))
        .post("/prefect/api/flows/", &serde_json::json!({"name": "x"}));
    assert_error(&reply, 502, "UPSTREAM_UNAVAILABLE");
    // A URL that is not one is refused when it is given, whichever way.
    let flag = env.run(&["server", "--prefect-upstream", "ftp://x/api"]);
    assert_eq!(flag.code, 2, "{}", flag.stderr);
    assert!(flag.stderr.contains("must be an http"), "{}", flag.stderr);
    let url = format!("http://u:{PLANTED}@127.0.0.1:1/api");
    let refused = env
        .run_with(&["server"], None, &[("BLOCKYARD_PREFECT_UPSTREAM", &url)])
        .fails_with("CONFIG_ERROR");
    assert!(
        !refused.all_output().contains(PLANTED),
        "{}",
        refused.stderr
    );
}

/// Prefect's own command line lists, inspects and deletes Blockyard's blocks, seeing
/// only what its token may read and never a secret in a listing; a delete is a change
/// on record, and an id the token may not see is answered as unknown.
#[test]
fn prefect_block_commands_work_on_our_blocks() {
    let env = TestEnv::new(Backend::Sqlite);
    env.ok(&["init"]);
    create_crdb_sage(&env, PLANTED, &[]).success();
    env.ok(&[
        "block",
        "create",
        "crdb-old",
        "--type",
        "json",
        "--set-json",
        "value=1",
    ]);
    env.ok(&[
        "block",
        "create",
        "hidden",
        "--type",
        "json",
        "--set-json",
        "value=2",
    ]);
    let bot = token(
        &env,
        "bot",
        &["blocks:read:crdb-*", "blocks:write:crdb-*"],
        &[],
    );
    let server = Server::start(&env, &[]);
    let api_url = format!("{}/prefect/api", server.base);
    let home = env.dir.path().join("prefect-client");
    let vars = [
        ("PREFECT_API_URL", api_url.as_str()),
        ("PREFECT_API_KEY", bot.as_str()),
    ];
    let prefect = |args: &[&str]| {
        let out = run_prefect(&python(), args, &home, &vars);
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        let err = String::from_utf8_lossy(&out.stderr).into_owned();
        assert!(out.status.success(), "prefect {args:?}: {text}\n{err}");
        assert!(!text.contains(PLANTED) && !err.contains(PLANTED));
        text
    };
    let listed: serde_json::Value =
        serde_json::from_str(&prefect(&["block", "ls", "-o", "json"])).unwrap();
    let names: Vec<&str> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["crdb-old", "crdb-sage"]);
    let inspected = prefect(&["block", "inspect", "sqlalchemy-connector/crdb-sage"]);
    assert!(inspected.contains("crdb-sage"), "{inspected}");
    prefect(&["block", "delete", "json/crdb-old"]);
    env.run(&["block", "inspect", "crdb-old"])
        .fails_with("BLOCK_NOT_FOUND");
    let audit = env.json(&["audit", "ls", "--block", "crdb-old"]);
    assert!(
        audit
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["actor"] == "bot" && r["action"] == "delete"),
        "{audit}"
    );
    let hidden = env.json(&["block", "inspect", "hidden"])["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let through = Api::at(&api_url, Some(&bot));
    assert_error(
        &through.get(&format!("/block_documents/{hidden}")),
        404,
        "BLOCK_NOT_FOUND",
    );
    assert_error(
        &through.send("DELETE", &format!("/block_documents/{hidden}"), None, &[]),
        404,
        "BLOCK_NOT_FOUND",
    );
    env.ok(&["block", "inspect", "hidden"]);
}

/// What the save test runs: a system `Secret` saved and overwritten, a connector saved
/// twice, and a custom `Block` subclass registered, saved and loaded.
const SAVES: &str = r#"
import sys
from pydantic import SecretStr
from prefect.blocks.core import Block
from prefect.blocks.system import Secret
from prefect_sqlalchemy import ConnectionComponents, SqlAlchemyConnector, SyncDriver

planted, prefix = sys.argv[1], sys.argv[2]
Secret(value=planted).save(prefix + "api-key")
Secret(value=planted + "-2").save(prefix + "api-key", overwrite=True)
print(Secret.load(prefix + "api-key").get())
for port in (5432, 5433):
    info = ConnectionComponents(driver=SyncDriver.POSTGRESQL_PSYCOPG2, database="app",
        username="app", password=planted, host="db.internal", port=port)
    SqlAlchemyConnector(connection_info=info).save(prefix + "app-db", overwrite=True)
print(SqlAlchemyConnector.load(prefix + "app-db").connection_info.port)

class Ftp(Block):
    host: str
    password: SecretStr

Ftp(host="ftp.internal", password=planted).save(prefix + "ftp-one")
loaded = Ftp.load(prefix + "ftp-one")
print(loaded.host, loaded.password.get_secret_value() == planted)
"#;

/// A Prefect client saves blocks into Blockyard: each save is a sealed, versioned,
/// audited Blockyard change; a custom Block class becomes a Blockyard type.
#[test]
fn prefect_saves_blocks_into_blockyard() {
    let env = TestEnv::new(Backend::Sqlite);
    env.ok(&["init"]);
    let admin = token(&env, "ops", &["admin"], &[]);
    let server = Server::start(&env, &[]);
    let api_url = format!("{}/prefect/api", server.base);
    let home = env.dir.path().join("prefect-client");
    let vars = [
        ("PREFECT_API_URL", api_url.as_str()),
        ("PREFECT_API_KEY", &admin),
    ];
    for (python, prefix) in clients().iter().zip(["", "old-"]) {
        let out = run_python(python, SAVES, &[PLANTED, prefix], &home, &vars);
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{python}: {stdout}\n{stderr}");
        assert_eq!(
            stdout.lines().collect::<Vec<_>>(),
            [format!("{PLANTED}-2").as_str(), "5433", "ftp.internal True"],
            "{python}: {stderr}"
        );
        let versions = |name: String| {
            env.json(&["block", "history", &name])
                .as_array()
                .unwrap()
                .len()
        };
        let saved = (
            versions(format!("{prefix}api-key")),
            versions(format!("{prefix}app-db")),
        );
        assert_eq!(saved, (2, 2), "{python}");
    }
    let secret = env.json(&["block", "inspect", "api-key", "--show-secrets"]);
    assert_eq!(secret["data"]["value"], format!("{PLANTED}-2"));
    let ftp = env.json(&["type", "inspect", "ftp"]);
    assert!(ftp.to_string().contains("password"), "{ftp}");
    assert!(
        !contains_bytes(&env.store_bytes(), PLANTED),
        "a secret stored in plaintext"
    );
    let audit = env.json(&["audit", "ls", "--block", "api-key"]);
    let actions: Vec<&str> = audit
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["action"].as_str().unwrap())
        .collect();
    assert!(
        actions.contains(&"create") && actions.contains(&"update"),
        "{audit}"
    );
    assert!(!server.log().contains(PLANTED));
}

/// Two Prefect block classes: a service whose field is its credentials, a block too.
const SERVICE_CLASSES: &str = r#"
import sys
from pydantic import SecretStr
from prefect.blocks.core import Block

class Creds(Block):
    _block_type_slug = "svc-creds"
    user: str
    password: SecretStr

class Service(Block):
    _block_type_slug = "svc"
    url: str
    creds: Creds
"#;

/// Saves a service once by reference (its credentials saved before) and once inline.
const NESTED: &str = r#"
planted, prefix = sys.argv[1], sys.argv[2]
Creds(user="u", password=planted).save(prefix + "svc-creds", overwrite=True)
linked = Service(url="http://svc.internal", creds=Creds.load(prefix + "svc-creds"))
linked.save(prefix + "svc", overwrite=True)
inline = Creds(user="v", password=planted + "-inline")
Service(url="http://other.internal", creds=inline).save(prefix + "svc-inline", overwrite=True)
loaded = Service.load(prefix + "svc")
print(loaded.creds.password.get_secret_value(), loaded.creds._block_document_name)
print(Service.load(prefix + "svc-inline").creds.password.get_secret_value())
"#;

/// Loads a service and prints its credentials' password.
const LOAD_SERVICE: &str = r#"
print(Service.load(sys.argv[1]).creds.password.get_secret_value())
"#;

/// A block that refers to another (Prefect's `$ref`) keeps the reference: the other
/// block's data is put in its place at each read, checked and audited as a read of
/// that block, so a change to it reaches every block that refers to it, and a token
/// that may not read it cannot read it through the reference.
#[test]
fn prefect_blocks_refer_to_blocks() {
    let env = TestEnv::new(Backend::Sqlite);
    env.ok(&["init"]);
    let admin = token(&env, "ops", &["admin"], &[]);
    let server = Server::start(&env, &[]);
    let api_url = format!("{}/prefect/api", server.base);
    let home = env.dir.path().join("prefect-client");
    for (python, prefix) in clients().iter().zip(["", "old-"]) {
        let vars = [
            ("PREFECT_API_URL", api_url.as_str()),
            ("PREFECT_API_KEY", &admin),
        ];
        let script = format!("{SERVICE_CLASSES}{NESTED}");
        let out = run_python(python, &script, &[PLANTED, prefix], &home, &vars);
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{python}: {stdout}\n{stderr}");
        let expected = [
            format!("{PLANTED} {prefix}svc-creds"),
            format!("{PLANTED}-inline"),
        ];
        assert_eq!(
            stdout.lines().collect::<Vec<_>>(),
            expected,
            "{python}: {stderr}"
        );
    }
    // Stored as a reference to the other block's id; inline data is sealed as usual.
    let creds_id = env.json(&["block", "inspect", "svc-creds"])["id"].clone();
    let linked = env.json(&["block", "inspect", "svc"]);
    assert_eq!(
        linked["data"]["creds"]["$ref"]["block_document_id"],
        creds_id
    );
    assert!(
        !contains_bytes(&env.store_bytes(), PLANTED),
        "a secret in plaintext"
    );

    // A change to the named block reaches the block that refers to it.
    env.run_stdin(
        &[
            "block",
            "update",
            "svc-creds",
            "--set-secret-file",
            "password=/dev/stdin",
        ],
        "rotated-PASSWORD",
    )
    .success();
    let load_as = |token: &str| {
        let vars = [
            ("PREFECT_API_URL", api_url.as_str()),
            ("PREFECT_API_KEY", token),
        ];
        let load = format!("{SERVICE_CLASSES}{LOAD_SERVICE}");
        run_python(&python(), &load, &["svc"], &home, &vars)
    };
    let out = load_as(&admin);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(stdout.trim(), "rotated-PASSWORD", "{stderr}");
    let audit = env.json(&["audit", "ls", "--block", "svc-creds"]);
    let read = audit
        .as_array()
        .unwrap()
        .iter()
        .any(|r| r["actor"] == "ops" && r["action"] == "read-secrets");
    assert!(read, "{audit}");

    // A token that may read svc but not svc-creds cannot read it through svc.
    let narrow = token(&env, "narrow", &["blocks:read-secrets:svc"], &[]);
    let out = load_as(&narrow);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(stderr.contains("refers to a block"), "{stderr}");
    assert!(!stderr.contains("rotated-PASSWORD"), "{stderr}");
    assert!(!server.log().contains(PLANTED));
}
