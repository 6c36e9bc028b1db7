//! `blockyard server`, `token ...` and `audit ls`: running the HTTP API and managing
//! who may use it.

use std::time::Duration;

use clap::{Args, Subcommand};

use super::flags::ServerFlags;
use super::output::{Printer, table};
use crate::config::Settings;
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
    /// The server's settings, from the one table (`config::SETTINGS`).
    #[command(flatten)]
    pub settings: ServerFlags,
}

/// Serves the registry with the server's settings in effect (given as flags to
/// `blockyard server`, in the environment, or in the config file).
pub fn serve(registry: Registry, settings: &Settings) -> Result<()> {
    crate::process::raise_open_file_limit();
    server::serve(registry, ServerOptions::from_settings(settings)?)
}

#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Create an API token; it is printed once and only its hash is kept.
    ///
    /// Scopes: blocks:read (secrets masked), blocks:read-secrets, blocks:write,
    /// blocks:lease (leased database users, never the stored password), admin;
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
            // Only the token on stdout, so `TOKEN=$(blockyard token create ...)` captures
            // exactly it; the note for people goes to stderr.
            if out.for_people() {
                eprintln!(
                    "Token {:?} created with scopes {}. It is shown only this once: store it now.",
                    token.info.name,
                    token.info.scopes.join(", ")
                );
            }
            out.emit(&json, || token.secret.to_string());
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
    /// Repeated secret reads of a block by one token within a minute are one record
    /// with a COUNT, from AT to LAST (see `server --audit-window`).
    ///
    /// Examples:
    ///   blockyard audit ls --block crdb-sage --since 7days   # who read it this week
    ///   blockyard audit ls --since 1h -o json | jq '.[].actor'
    #[command(visible_alias = "list", verbatim_doc_comment)]
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
    /// Write audit records to stdout as JSON lines, oldest first, for a log system.
    /// Resumable: pass the last `id` written as --after.
    ///
    /// Examples:
    ///   blockyard audit export --since 2026-11-01 > audit.jsonl
    ///   blockyard audit export --after 1234 >> audit.jsonl
    #[command(verbatim_doc_comment)]
    Export {
        /// Only records since a duration ago (1h, 7days) or a time (2026-11-01).
        #[arg(long)]
        since: Option<String>,
        /// Only records after this id (the last one a previous export wrote).
        #[arg(long, default_value_t = 0)]
        after: i64,
    },
    /// Delete audit records older than a duration (30d) or a time, in small batches
    /// (requests go on being recorded meanwhile); the prune is itself recorded.
    ///
    /// Example: blockyard audit prune --before 30d
    #[command(verbatim_doc_comment)]
    Prune {
        /// Delete records older than this: a duration ago (30d, 12h) or a time.
        #[arg(long)]
        before: String,
    },
}

pub fn audit(cmd: AuditCommand, registry: &Registry, out: &Printer) -> Result<()> {
    let (block, since, limit) = match cmd {
        AuditCommand::Ls {
            block,
            since,
            limit,
        } => (block, since, limit),
        AuditCommand::Export { since, after } => return export_audit(registry, since, after),
        AuditCommand::Prune { before } => return prune_audit(registry, &before, out),
    };
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
            &[
                "AT", "ACTOR", "ACTION", "BLOCK", "OUTCOME", "COUNT", "LAST", "REQUEST",
            ],
            rows.iter().map(|r| {
                let last = match r.event_count {
                    1 => String::new(),
                    _ => rfc3339(r.last_at),
                };
                vec![
                    rfc3339(r.at),
                    r.actor.clone(),
                    r.action.clone(),
                    r.block.clone().unwrap_or_default(),
                    r.outcome.clone(),
                    r.event_count.to_string(),
                    last,
                    r.request_id.clone(),
                ]
            }),
        )
    });
    Ok(())
}

/// Records per page an export reads.
const EXPORT_PAGE: i64 = 1000;

fn export_audit(registry: &Registry, since: Option<String>, mut after: i64) -> Result<()> {
    use std::io::Write;
    let since = since.as_deref().map(crate::time::parse_since).transpose()?;
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    loop {
        let rows = registry.audit_after(after, since, EXPORT_PAGE)?;
        for row in &rows {
            let line =
                serde_json::to_string(row).map_err(|e| Error::InvalidInput(e.to_string()))?;
            writeln!(out, "{line}").map_err(|e| Error::io("writing the export", e))?;
        }
        match rows.last() {
            Some(last) if rows.len() as i64 == EXPORT_PAGE => after = last.id,
            _ => break,
        }
    }
    out.flush().map_err(|e| Error::io("writing the export", e))
}

fn prune_audit(registry: &Registry, before: &str, out: &Printer) -> Result<()> {
    let before = crate::time::parse_since(before)?;
    let bar = super::output::progress_bar(0, "pruning", "records");
    let actor = format!(
        "local:{}",
        std::env::var("USER").unwrap_or_else(|_| "cli".into())
    );
    let report = registry.prune_audit(before, &actor, |done, total| {
        bar.set_length(total);
        bar.set_position(done);
    })?;
    bar.finish_and_clear();
    out.emit(&report, || {
        format!(
            "deleted {} audit record(s) older than {}",
            report.deleted, report.before
        )
    });
    Ok(())
}
