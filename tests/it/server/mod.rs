//! The HTTP API against a real server process on a loopback port, on SQLite and on
//! PostgreSQL, by area: every route and its error codes, token scopes and patterns, the
//! audit trail, kept reads and two servers sharing one PostgreSQL, a stock Prefect
//! client, and remote mode. The harness is `crate::support`'s.

use serde_json::{Value, json};

use crate::support::*;

mod audit_trail;
mod consistency;
mod operations;
mod prefect;
mod prefect_ui;
mod remote;
mod routes;
mod tokens;

pub(super) const PLANTED: &str = "planted-S3CRET-value";

pub(super) fn connector(name: &str, password: &str) -> Value {
    json!({"name": name, "block_type": "sqlalchemy-connector", "data": {"connection_info": {
        "driver": "cockroachdb+psycopg2", "database": "sage", "username": "databot",
        "host": "localhost", "port": 26257, "password": password}}})
}

/// An initialized store, a server on it, and a client with an admin token.
pub(super) fn started(env: &TestEnv) -> (Server, Api, String) {
    started_with(env, &[])
}

/// [`started`], the server given `args`.
pub(super) fn started_with(env: &TestEnv, args: &[&str]) -> (Server, Api, String) {
    env.ok(&["init"]);
    let admin = token(env, "admin", &["admin"], &[]);
    let server = Server::start(env, args);
    let api = Api::new(&server, Some(&admin));
    (server, api, admin)
}
