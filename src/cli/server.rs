//! `blockyard server`, `token ...` and `audit ls`: running the HTTP API and managing
//! who may use it.

use std::net::IpAddr;
use std::time::Duration;

use clap::{Args, Subcommand};

use super::output::{Printer, table};
use crate::error::{Error, Result};
use crate::registry::AuditFilter;
use crate::registry::Registry;
use crate::server::{self, ServerOptions};
use crate::time::rfc3339;

/// `blockyard server`
#[derive(Debug, Args)]
pub struct ServerArgs {
    /// Apply pending store migrations before serving. Without it, a new, empty store is
    /// initialised (as by any first command), but a store with pending migrations is
    /// refused (STORE_NOT_MIGRATED).
    #[arg(long)]
    pub migrate: bool,
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1", env = "BLOCKYARD_ADDRESS")]
    pub address: IpAddr,
    /// Port to listen on.
    #[arg(long, default_value_t = 4200, env = "BLOCKYARD_PORT")]
    pub port: u16,
    /// How long a verified token is trusted before it is checked again; a revocation
    /// reaches every server within this time.
    #[arg(long, default_value = "1s", value_parser = humantime::parse_duration)]
    pub token_cache: Duration,
    /// How long a block read is kept in memory to answer the next read of it faster
    /// (each such answer is first confirmed current with the store); 0 keeps nothing.
    #[arg(long, default_value = "30s", value_parser = humantime::parse_duration)]
    pub block_cache: Duration,
    /// How often to look for blocks whose scheduled password rotation
    /// (`rotation.every`, with `rotation.admin`) is due.
    #[arg(long, default_value = "60s", value_parser = humantime::parse_duration)]
    pub rotation_check: Duration,
    /// Do not log a line per request.
    #[arg(long)]
    pub quiet: bool,
    /// Async worker threads (default: one per core).
    #[arg(long)]
    pub workers: Option<usize>,
}

pub fn serve(registry: Registry, args: ServerArgs) -> Result<()> {
    server::serve(
        registry,
        ServerOptions {
            address: args.address,
            port: args.port,
            token_cache: args.token_cache,
            request_log: !args.quiet,
            workers: args.workers,
            block_cache: args.block_cache,
            rotation_check: args.rotation_check,
        },
    )
}

#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Create an API token; it is printed once and only its hash is kept.
    ///
    /// Scopes: blocks:read (secrets masked), blocks:read-secrets, blocks:write, admin;
    /// each may end with :PATTERN to limit it to matching block names.
    ///
    /// Examples:
    ///   blockyard token create databot --scope blocks:read-secrets:crdb-*
    ///   blockyard token create ci --scope blocks:read --scope blocks:write:ci-* --expires-in 30d
    #[command(verbatim_doc_comment)]
    Create {
        /// A name for the token (shown in the audit log).
        name: String,
        /// A scope; repeat for several.
        #[arg(long = "scope", short = 's', required = true)]
        scopes: Vec<String>,
        /// Expire after this long (e.g. 30d, 12h).
        #[arg(long, value_parser = humantime::parse_duration)]
        expires_in: Option<Duration>,
    },
    /// List tokens (never their secrets).
    #[command(visible_alias = "list")]
    Ls,
    /// Revoke a token by name or id.
    Revoke {
        /// The token's name (as given to `token create`) or id (`token ls`).
        name: String,
    },
}

pub fn tokens(cmd: TokenCommand, registry: &Registry, out: &Printer) -> Result<()> {
    match cmd {
        TokenCommand::Create {
            name,
            scopes,
            expires_in,
        } => {
            let token = registry.create_token(&name, &scopes, expires_in)?;
            let mut json = serde_json::to_value(&token.info).unwrap_or_default();
            json["token"] = token.secret.clone().into();
            out.emit(&json, || {
                format!(
                    "{}\n\nToken {:?} created with scopes {}. It is shown only this once: store it now.",
                    token.secret,
                    token.info.name,
                    token.info.scopes.join(", ")
                )
            });
            Ok(())
        }
        TokenCommand::Ls => {
            let tokens = registry.list_tokens()?;
            out.emit(&tokens, || {
                if tokens.is_empty() {
                    return "no tokens; create one with `blockyard token create`".into();
                }
                table(
                    &["NAME", "ID", "SCOPES", "STATE", "CREATED", "EXPIRES"],
                    tokens.iter().map(|t| {
                        vec![
                            t.name.clone(),
                            t.id.clone(),
                            t.scopes.join(" "),
                            t.state.to_owned(),
                            rfc3339(t.created_at),
                            t.expires_at.clone().unwrap_or_else(|| "never".into()),
                        ]
                    }),
                )
            });
            Ok(())
        }
        TokenCommand::Revoke { name } => {
            registry.revoke_token(&name)?;
            out.emit(&serde_json::json!({"revoked": name}), || {
                format!("revoked token {name}")
            });
            Ok(())
        }
    }
}

#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// List audit records, newest first: secret reads and changes made over HTTP.
    #[command(visible_alias = "list")]
    Ls {
        /// Only records about this block.
        #[arg(long)]
        block: Option<String>,
        /// Only records since a duration ago (1h, 7days) or a time (2026-11-21T10:00:00Z).
        #[arg(long)]
        since: Option<String>,
        /// At most this many records.
        #[arg(long, default_value_t = 100)]
        limit: u32,
    },
}

pub fn audit(cmd: AuditCommand, registry: &Registry, out: &Printer) -> Result<()> {
    let AuditCommand::Ls {
        block,
        since,
        limit,
    } = cmd;
    if limit == 0 {
        return Err(Error::InvalidInput("--limit must be at least 1".into()));
    }
    let filter = AuditFilter {
        block,
        since: since.as_deref().map(crate::time::parse_since).transpose()?,
        before_id: None,
        limit: i64::from(limit),
    };
    let rows = registry.audit(&filter)?;
    out.emit(&rows, || {
        if rows.is_empty() {
            return "no audit records".into();
        }
        table(
            &["AT", "ACTOR", "ACTION", "BLOCK", "OUTCOME", "REQUEST"],
            rows.iter().map(|r| {
                vec![
                    rfc3339(r.at),
                    r.actor.clone(),
                    r.action.clone(),
                    r.block.clone().unwrap_or_default(),
                    r.outcome.clone(),
                    r.request_id.clone(),
                ]
            }),
        )
    });
    Ok(())
}
