//! The command-line interface: every flag is defined here with clap, validated once at
//! the edge, and dispatched to the registry. Output goes through [`output`].

mod admin;
mod backup;
mod blocks;
mod connect;
mod db;
mod docs;
mod flags;
mod inject;
mod input;
mod leases;
mod login;
mod output;
mod run;
mod server;
mod suggest;
mod terminal;
mod transfer;

use std::path::PathBuf;

use clap::{Args, CommandFactory, Parser, Subcommand};

use crate::config::{Config, Settings, Sources};
use crate::error::Result;
use crate::registry::Registry;

pub use docs::COMPLETE_VAR;
pub use output::{OutputFormat, print_error, print_usage_error};

/// `blockyard --version`: the crate version and the git commit it was built from.
pub const VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (commit ",
    env!("BLOCKYARD_GIT_COMMIT"),
    ")"
);

/// Blockyard: a registry of named connection blocks, stored encrypted.
///
/// A block (say `crdb-sage`: driver, database, user, host, port, password) is stored
/// once with its secrets encrypted, then used by name. The first command on a new
/// machine creates the store (SQLite in the data directory) and a master key, and says
/// where it put them.
#[derive(Debug, Parser)]
#[command(
    name = "blockyard",
    version = VERSION,
    propagate_version = true,
    max_term_width = 100
)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Args)]
pub struct GlobalArgs {
    /// Output format: tables for people, JSON for scripts.
    #[arg(long, short = 'o', global = true, help_heading = "Global options", value_enum, default_value_t = OutputFormat::Table, env = "BLOCKYARD_OUTPUT", hide_env_values = true)]
    pub output: OutputFormat,
    /// TOML config file [env: BLOCKYARD_CONFIG; default: ~/.config/blockyard/config.toml].
    #[arg(
        long,
        global = true,
        help_heading = "Global options",
        value_name = "FILE"
    )]
    pub config: Option<PathBuf>,
    /// The settings every command takes, from the one table (`config::SETTINGS`).
    #[command(flatten)]
    pub settings: flags::GlobalFlags,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create the store, run migrations and set up the master key (done automatically
    /// by the first command on a new store).
    Init,
    /// Show the configuration in effect: each setting, its value (secrets masked) and
    /// where it came from (flag, environment, .env, config file or default).
    Config,
    /// Create, read, change and delete blocks.
    #[command(subcommand)]
    Block(Box<blocks::BlockCommand>),
    /// List, inspect and register block types.
    #[command(subcommand, name = "type")]
    Type(admin::TypeCommand),
    /// The store's own schema migrations (for the databases blocks point at, see `db`).
    #[command(subcommand)]
    Database(admin::DatabaseCommand),
    /// The databases blocks point at: create one with its owner role and block, apply
    /// schema files, add roles, list and drop (with an admin block's credentials).
    #[command(subcommand)]
    Db(db::DbCommand),
    /// Leased database users: one per holder, in the block's group role, that expire by
    /// themselves (`lease create`, `ls`, `renew`, `revoke`, `reconcile`).
    #[command(subcommand)]
    Lease(leases::LeaseCommand),
    /// Master key and data keys.
    #[command(subcommand)]
    Key(admin::KeyCommand),
    /// Run a program with a block's connection in its environment.
    ///
    /// The password is passed in the environment only (PGPASSWORD, MYSQL_PWD), never on
    /// a command line, and the program's exit code is passed through (127 when the
    /// program is not found, 126 when it cannot be run). The common clients work as
    /// written: psql and pg_dump read the PG* variables; mysql and mysqldump get
    /// --user (and mysql --database) ahead of your arguments, since they ignore
    /// MYSQL_USER; sqlite3 gets the database file as its first argument.
    ///
    /// Examples:
    ///   blockyard exec crdb-sage -- psql -c 'select 1'
    ///   blockyard exec crdb-sage -- pg_dump -Fc -f backup.dump
    ///   blockyard exec warehouse -- mysql -e 'select current_user()'
    ///   blockyard exec warehouse -- mysqldump warehouse > warehouse.sql
    ///   blockyard exec local -- sqlite3 'select count(*) from regions'
    ///   blockyard exec crdb-sage --format dotenv --prefix SESAME_DATABASE -- ./run-flow
    #[command(verbatim_doc_comment)]
    Exec(connect::ExecArgs),
    /// Run a program with the variables of one or more blocks, its output masked.
    ///
    /// Every secret of the blocks (and its URL-encoded and base64 forms) is shown as
    /// ******** in the program's stdout and stderr as they stream, however the output is
    /// split; colours stay (on a terminal the program gets a terminal). Signals and the
    /// exit code pass through. With --watch, a change to a block (a new version, a
    /// rotated password) restarts the program with the new values: SIGTERM, --grace to
    /// exit, then SIGKILL, after a random wait up to --jitter. Works locally and with a
    /// server (BLOCKYARD_URL).
    ///
    /// Examples:
    ///   blockyard run --block crdb-sage -- psql -c 'select 1'
    ///   blockyard run --block crdb-sage --block es:ES -- python etl.py
    ///   blockyard run --watch --grace 30s --block crdb-sage -- ./server
    ///   blockyard run --no-masking --block crdb-sage -- ./debug.sh
    #[command(verbatim_doc_comment)]
    Run(run::RunArgs),
    /// Render a template's references to blocks into a file (0600, written whole).
    ///
    /// A reference is {{ blockyard://BLOCK/path.to.field }} (a field, as `block get
    /// --field`), {{ url blockyard://BLOCK }} (its URL, password included) or {{ env
    /// blockyard://BLOCK [PREFIX] }} (its .env lines); `| default "text"` stands in for
    /// a missing field, `| json` writes a quoted string. Other {{ }} are left alone. An
    /// unknown block or field fails with FILE:LINE:COLUMN and writes nothing. Each block
    /// read is a secret read on record.
    ///
    /// Examples:
    ///   blockyard inject -i config.tpl.yaml --out-file config.yaml
    ///   blockyard inject -i app.env.tpl --check
    ///   echo 'pw={{ blockyard://crdb-sage/connection_info.password }}' | blockyard inject
    #[command(verbatim_doc_comment)]
    Inject(inject::InjectArgs),
    /// Serve the registry over HTTP: the web UI at /ui, the API at /api/v1, and
    /// /prefect/api for Prefect clients.
    ///
    /// Every route but /health and /ready needs a token (`blockyard token create`); the
    /// UI signs in with one.
    ///
    /// Examples:
    ///   blockyard server                      # then open http://127.0.0.1:4200/ui
    ///   blockyard server --migrate --database-url postgres://blockyard@db/blockyard
    #[command(verbatim_doc_comment)]
    Server(Box<server::ServerArgs>),
    /// Write blocks to stdout as one JSON file, secrets masked, or encrypted with age
    /// (--include-secrets --recipient age1... | --passphrase-file F).
    ///
    /// Examples:
    ///   blockyard export --prefix crdb- > blocks.json
    ///   blockyard export --include-secrets --recipient age1... > blocks.age.json
    #[command(verbatim_doc_comment)]
    Export(transfer::ExportArgs),
    /// Import an export: ids kept, user types registered, every block written in one
    /// transaction or none; --dry-run shows the plan.
    ///
    /// Example: blockyard import blocks.age.json --identity key.txt --dry-run
    #[command(verbatim_doc_comment)]
    Import(transfer::ImportArgs),
    /// Make the blocks in a file (YAML or JSON) exist as written: created, updated or
    /// left alone, and with --prune, the others deleted. Secrets are never written in
    /// the file but referenced: `password: {from_env: CRDB_PASSWORD}` or
    /// `{from_file: secrets/crdb.txt}` (relative to the file). A second run changes
    /// nothing. Works on a local store or, with --server-url, a server.
    ///
    /// Examples:
    ///   blockyard apply -f blocks.yaml --dry-run
    ///   blockyard apply -f blocks.yaml --prune --prefix crdb-
    #[command(verbatim_doc_comment)]
    Apply(transfer::ApplyArgs),
    /// Write the whole store (blocks, history, types, tokens, audit log, data keys) to
    /// one file, read in one snapshot while servers keep running. Secrets stay sealed
    /// and data keys wrapped: a restore needs the same master key.
    ///
    /// Example: blockyard backup registry.bak
    #[command(verbatim_doc_comment)]
    Backup(backup::BackupArgs),
    /// Restore a backup into an empty store, SQLite or PostgreSQL (--database-url). The
    /// master key is checked against the backup before anything is written; every row
    /// is written in one transaction.
    ///
    /// Example: blockyard restore registry.bak --database-url postgres://blockyard@db/blockyard
    #[command(verbatim_doc_comment)]
    Restore(backup::RestoreArgs),
    /// API tokens for the HTTP server.
    #[command(subcommand)]
    Token(server::TokenCommand),
    /// The audit log of secret reads and changes made over HTTP.
    #[command(subcommand)]
    Audit(server::AuditCommand),
    /// Keep a server's URL and token for every later command (the token in the OS
    /// keyring, or in a 0600 file where there is none); checked against the server
    /// first. BLOCKYARD_URL and BLOCKYARD_TOKEN, when set, win over it.
    ///
    /// Examples:
    ///   blockyard login https://blockyard.internal          # asks for the token
    ///   blockyard login http://127.0.0.1:4200 --token-stdin <<< "$TOKEN"
    #[command(verbatim_doc_comment)]
    Login(login::LoginArgs),
    /// Forget the kept login: the CLI uses the local store again.
    Logout,
    /// Where the CLI points (a server and which token, or the local store) and whether
    /// that works now.
    Status,
    /// Print a shell completion script. At each Tab it asks this blockyard for
    /// candidates, so block names, type slugs and token names come from the store.
    ///
    /// Examples:
    ///   source <(blockyard completions bash)      # in ~/.bashrc
    ///   source <(blockyard completions zsh)       # in ~/.zshrc
    ///   blockyard completions fish > ~/.config/fish/completions/blockyard.fish
    #[command(verbatim_doc_comment)]
    Completions {
        /// The shell to complete for.
        shell: clap_complete::Shell,
    },
    /// Print the man page (roff), or write one page per command into a directory.
    ///
    /// Examples:
    ///   blockyard man > blockyard.1 && man ./blockyard.1
    ///   blockyard man --dir /usr/local/share/man/man1
    #[command(verbatim_doc_comment)]
    Man {
        /// Write blockyard.1, blockyard-block.1, blockyard-block-create.1, ... here.
        #[arg(long, value_name = "DIR")]
        dir: Option<PathBuf>,
    },
}

/// The whole command line as clap defines it, with completers for block names, type
/// slugs and token names (what a shell's completion asks, see [`docs::completions`]).
pub fn command() -> clap::Command {
    docs::with_completers(Cli::command())
}

/// Runs a parsed command line; `env` is the process environment.
pub fn run(mut cli: Cli, env: std::collections::HashMap<String, String>) -> Result<()> {
    let out = output::Printer::new(cli.global.output);
    // Commands that need no configuration and no store.
    match &cli.command {
        Command::Completions { shell } => return docs::completions(*shell, &command()),
        Command::Man { dir } => return docs::man(Cli::command(), dir.as_deref()),
        Command::Key(admin::KeyCommand::Generate) => return admin::generate_key(&out),
        Command::Logout => return login::logout(&out),
        _ => {}
    }
    // Not after the configuration: that reads the login this replaces.
    if let Command::Login(args) = cli.command {
        return login::login(args, &out);
    }
    let server_flags = match &mut cli.command {
        Command::Server(args) => std::mem::take(&mut args.settings.0),
        _ => Settings::default(),
    };
    let mut config = load_config(cli.global, server_flags, env)?;
    if !matches!(cli.command, Command::Config) {
        note_dotenv(&config, &out);
    }
    if matches!(cli.command, Command::Server(_)) {
        // A server always serves its own store, whatever BLOCKYARD_URL says.
        config.remote = None;
    }
    match cli.command {
        // Answered above, before the configuration is loaded.
        Command::Completions { .. }
        | Command::Man { .. }
        | Command::Logout
        | Command::Login(_)
        | Command::Key(admin::KeyCommand::Generate) => Ok(()),
        Command::Status => login::status(config, &out),
        Command::Database(cmd) => admin::database(cmd, config, &out),
        Command::Config => admin::show_config(&config, &out),
        Command::Init => {
            let (registry, report) = Registry::open(config)?;
            admin::init(&registry, report, &out)
        }
        Command::Block(cmd) => with_registry(config, &out, |r| blocks::run(*cmd, r, &out)),
        Command::Type(cmd) => with_registry(config, &out, |r| admin::types(cmd, r, &out)),
        Command::Db(cmd) => with_registry(config, &out, |r| db::run(cmd, r, &out)),
        Command::Lease(cmd) => with_registry(config, &out, |r| leases::run(cmd, r, &out)),
        Command::Export(args) => transfer::export(&open(config, &out)?, args),
        Command::Import(args) => transfer::import(&open(config, &out)?, args, &out),
        Command::Apply(args) => transfer::apply(&open(config, &out)?, args, &out),
        Command::Backup(args) => backup::backup(&open(config, &out)?, args, &out),
        // Not `open`: that would set up a new store's keys, and a restore writes only
        // into an empty store, after checking the master key.
        Command::Restore(args) => backup::restore(config, args, &out),
        Command::Key(cmd) => admin::keys(cmd, &open(config, &out)?, &out),
        Command::Exec(args) => with_registry(config, &out, |r| connect::exec(r, args)),
        Command::Run(args) => with_registry(config, &out, |r| run::run(r, args)),
        Command::Inject(args) => with_registry(config, &out, |r| inject::inject(r, args, &out)),
        Command::Server(args) => serve(args.migrate, config, &out),
        Command::Token(cmd) => server::tokens(cmd, &open(config, &out)?, &out),
        Command::Audit(cmd) => server::audit(cmd, &open(config, &out)?, &out),
    }
}

/// `blockyard server`: migrates first if asked, then serves until stopped.
fn serve(migrate: bool, config: Config, out: &output::Printer) -> Result<()> {
    if migrate {
        let (_, applied) = crate::registry::migrate(&config)?;
        if !applied.is_empty() {
            out.notice(&format!("applied migrations: {}", applied.join(", ")));
        }
    }
    let settings = config.settings.clone();
    server::serve(open(config, out)?, &settings)
}

/// Says (on stderr) which settings came from `./.env`, which a user may not expect.
fn note_dotenv(config: &Config, out: &output::Printer) {
    let from_dotenv: Vec<&str> = config
        .origins
        .iter()
        .filter(|(_, origin)| origin.starts_with(".env"))
        .map(|(name, _)| *name)
        .collect();
    if !from_dotenv.is_empty() {
        out.notice(&format!(
            "using {} from ./.env (`blockyard config` shows every setting's source)",
            from_dotenv.join(", ")
        ));
    }
}

/// The configuration: these flags over the environment over `./.env` over the config
/// file.
fn load_config(
    global: GlobalArgs,
    flags: Settings,
    env: std::collections::HashMap<String, String>,
) -> Result<Config> {
    Config::load(Sources {
        flags: global.settings.0.or(flags),
        env,
        config_file: global.config,
        dotenv: Some(PathBuf::from(".env")),
    })
}

/// Runs `command` on the registry; a missing block or type is answered with the names
/// closest to it.
fn with_registry(
    config: Config,
    out: &output::Printer,
    command: impl FnOnce(&Registry) -> Result<()>,
) -> Result<()> {
    let registry = open(config, out)?;
    command(&registry).map_err(|err| suggest::hint(&registry, err))
}

/// Opens the registry, telling the user (on stderr) if this created a new store.
fn open(config: Config, out: &output::Printer) -> Result<Registry> {
    let (registry, report) = Registry::open(config)?;
    if let Some(report) = report {
        out.notice(&output::init_message(&report));
    }
    Ok(registry)
}
