//! Integration tests: the built `blockyard` binary against real SQLite files and real
//! PostgreSQL databases, as a user would run it.

mod support;

mod apply;
mod audit;
mod backup;
mod bad_input;
mod blocks;
mod browser;
mod connect;
mod databases;
mod everyday;
mod fleet;
mod hardening;
mod hardening2;
mod http_service;
mod keys;
mod leases;
#[cfg(feature = "mysql")]
mod mysql;
mod readme;
mod run_inject;
mod scripting;
mod secrets;
mod seeds;
mod server;
mod shapes;
mod strings;
mod transfer;
mod ui;
mod undo;

#[test]
fn verify_cli() {
    use clap::CommandFactory;
    blockyard::cli::Cli::command().debug_assert();
}
