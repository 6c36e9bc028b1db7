//! `blockyard block ...`: create, list, inspect, update, rename, delete, history (and
//! test, url, env, which live in [`super::connect`]).

use std::path::PathBuf;

use clap::{Args, Subcommand};
use serde_json::{Value, json};

use super::input::{self, DocumentArgs};
use super::output::{Printer, details, pretty, table, write_raw};
use crate::block::{BlockFilter, BlockVersion};
use crate::connect::EnvFormat;
use crate::document::FieldChange;
use crate::error::{Error, Result};
use crate::name::BlockName;
use crate::registry::{Block, NewBlock, Registry, rotation_schedule};
use crate::time::rfc3339;
use crate::wire::{BlockBody, Deleted};

const CONNECTOR: &str = "sqlalchemy-connector";

#[derive(Debug, Subcommand)]
pub enum BlockCommand {
    /// Create a block.
    ///
    /// Examples:
    ///   blockyard block create crdb-sage --type sqlalchemy-connector \
    ///     --set connection_info.driver=cockroachdb+psycopg2 --set connection_info.database=sage \
    ///     --set connection_info.username=databot --set connection_info.host=localhost \
    ///     --set connection_info.port=26257 --password-stdin <<< "$PASSWORD"
    ///   blockyard block create app-db --url 'postgres://app@db.internal:5432/app' --password-stdin
    ///   blockyard block create sesame --from-env SESAME_DATABASE --env-file sesame/.env
    #[command(verbatim_doc_comment)]
    Create(Create),
    /// Write a new version equal to an older one, secrets included.
    ///
    /// Examples:
    ///   blockyard block history crdb-sage      # which version to go back to
    ///   blockyard block rollback crdb-sage 3
    #[command(verbatim_doc_comment)]
    Rollback {
        /// The block to roll back.
        name: BlockName,
        /// The version to return to (`blockyard block history NAME` lists them).
        #[arg(value_name = "VERSION", required_unless_present = "to_version")]
        target: Option<i64>,
        /// The same as VERSION (the older spelling).
        #[arg(long, value_name = "N", conflicts_with = "target", hide = true)]
        to_version: Option<i64>,
        /// Only if the block is still at this version.
        #[arg(long, value_name = "N")]
        if_version: Option<i64>,
    },
    /// Bring back the block last deleted under this name, with its history (the name
    /// must be free again).
    Undelete {
        /// The deleted block's name.
        name: BlockName,
    },
    /// Destroy a block (or the one last deleted under this name) and every version of
    /// it, secrets included, for good.
    Purge {
        /// The block to destroy.
        name: BlockName,
        /// Confirm: nothing of it can be brought back.
        #[arg(long)]
        yes: bool,
    },
    /// Give a block's database role a new generated password, in the database and in
    /// the block (safe to interrupt and re-run: a pending rotation is finished).
    ///
    /// Example: blockyard block rotate-password crdb-sage --admin pg-admin
    #[command(verbatim_doc_comment)]
    RotatePassword {
        /// The block whose role gets the new password.
        name: BlockName,
        /// The admin block whose role may change the block's role's password.
        #[arg(long, value_name = "BLOCK")]
        admin: BlockName,
    },
    /// List blocks (name, type, version, last update).
    ///
    /// On a terminal: aligned columns, times relative. Piped: one tab-separated line
    /// per block (name, type, version, RFC 3339 time), no header.
    ///
    /// Examples:
    ///   blockyard block ls
    ///   blockyard block ls --type sqlalchemy-connector --prefix crdb-
    ///   blockyard block ls -o name | xargs -n1 blockyard block test
    ///   blockyard block ls --limit 100 --after crdb-0099     # the next page
    #[command(visible_alias = "list", verbatim_doc_comment)]
    Ls(ListArgs),
    /// Show one block (secrets masked unless --show-secrets), or one value of it raw.
    #[command(
        visible_aliases = ["get", "show"],
        after_help = "Examples:\n  \
          blockyard block get crdb-sage\n  \
          blockyard block get crdb-sage --field connection_info.password   # raw, no newline\n  \
          PGPASSWORD=$(blockyard block get crdb-sage --field connection_info.password) psql ...\n  \
          blockyard block get crdb-sage -o json | jq .data"
    )]
    Inspect {
        /// The block to show.
        name: BlockName,
        /// Show secret values in clear.
        #[arg(long, conflicts_with = "field")]
        show_secrets: bool,
        /// Print only this field's value (a dotted path such as
        /// `connection_info.password`; a URL's parts read as fields too), in clear and
        /// with no trailing newline, as `vault kv get -field=`. A secret so read is a
        /// read on record.
        #[arg(long, value_name = "PATH")]
        field: Option<String>,
    },
    /// Change fields of a block (read, edit, write back if nobody changed it meanwhile).
    ///
    /// Examples:
    ///   blockyard block update crdb-sage --set connection_info.host=db2.internal
    ///   blockyard block update crdb-sage --set pool.max_size=5
    ///   blockyard block update crdb-sage --password-stdin <<< "$NEW_PASSWORD"
    ///   blockyard block update crdb-sage --unset requires --if-version 4
    #[command(verbatim_doc_comment)]
    Update {
        /// The block to change.
        name: BlockName,
        /// Remove a field.
        #[arg(long, value_name = "PATH")]
        unset: Vec<String>,
        /// Fail unless the block is at this version.
        #[arg(long, value_name = "N")]
        if_version: Option<i64>,
        #[command(flatten)]
        doc: DocumentArgs,
    },
    /// Rename a block; its id, data and history are kept.
    #[command(visible_alias = "mv")]
    Rename {
        /// The block to rename.
        name: BlockName,
        /// Its new name (same rules as for create).
        new_name: BlockName,
        /// Fail (VERSION_CONFLICT) unless the block is at this version.
        #[arg(long, value_name = "N")]
        if_version: Option<i64>,
    },
    /// Delete a block; its history is kept, and `block undelete NAME` brings it back
    /// (`block purge NAME` destroys it for good).
    ///
    /// Examples:
    ///   blockyard audit ls --block crdb-sage      # who still reads it
    ///   blockyard block delete crdb-sage
    ///   blockyard block undelete crdb-sage        # changed your mind
    #[command(visible_alias = "rm", verbatim_doc_comment)]
    Delete {
        /// The block to delete.
        name: BlockName,
        /// Fail (VERSION_CONFLICT) unless the block is at this version.
        #[arg(long, value_name = "N")]
        if_version: Option<i64>,
    },
    /// Show what changed between two versions of a block (secrets only as changed).
    ///
    /// Examples:
    ///   blockyard block diff crdb-sage          # the latest version against the one before
    ///   blockyard block diff crdb-sage 3        # version 3 against the latest
    ///   blockyard block diff crdb-sage 2 5
    #[command(verbatim_doc_comment)]
    Diff {
        /// The block to compare versions of.
        name: BlockName,
        /// The earlier version (default: the one before V2).
        v1: Option<i64>,
        /// The later version (default: the latest).
        v2: Option<i64>,
    },
    /// List every kept version of a block and what each one changed (secrets masked).
    ///
    /// Examples:
    ///   blockyard block history crdb-sage
    ///   blockyard block diff crdb-sage 2 3        # one change in detail
    ///   blockyard block rollback crdb-sage 2
    #[command(verbatim_doc_comment)]
    History {
        /// The block whose versions to list.
        name: BlockName,
    },
    /// Connect to the block's database: report the server version, round-trip latency
    /// and whether the block's `requires` are met. Fails (exit 1) with the reason:
    /// HOST_UNREACHABLE, AUTHENTICATION_FAILED, DATABASE_NOT_FOUND, TLS_ERROR,
    /// CONNECTION_TIMEOUT, UNSUPPORTED_DRIVER or REQUIREMENT_NOT_MET.
    ///
    /// Examples:
    ///   blockyard block test crdb-sage
    ///   blockyard block test crdb-sage --timeout 2s -o json | jq .latency_ms
    ///   blockyard block ls -o name | xargs -n1 blockyard block test
    #[command(verbatim_doc_comment)]
    Test {
        /// The block to connect with.
        name: BlockName,
        /// Give up connecting after this long (e.g. 5s, 500ms).
        #[arg(long, default_value = "5s", value_parser = humantime::parse_duration)]
        timeout: std::time::Duration,
    },
    /// Print the block's connection URL, password masked unless --show-secrets.
    ///
    /// Example: blockyard block url crdb-sage
    ///          postgresql://databot:********@localhost:26257/sage
    #[command(verbatim_doc_comment)]
    Url {
        /// The block whose URL to print.
        name: BlockName,
        /// Show the password (percent-encoded) in the URL.
        #[arg(long)]
        show_secrets: bool,
        /// Print the URL libpq reads (psql, pg_dump): postgresql:// without the
        /// +driver, only the options libpq knows. By default the URL is printed as
        /// SQLAlchemy reads it, driver included.
        #[arg(long)]
        libpq: bool,
    },
    /// Print the block's connection as environment variables (password included).
    ///
    /// Examples:
    ///   blockyard block env crdb-sage --format dotenv --prefix SESAME_DATABASE > .env
    ///   eval "$(blockyard block env crdb-sage --format shell)"
    ///   blockyard block env crdb-sage --format libpq
    #[command(verbatim_doc_comment)]
    Env {
        /// The block whose connection to print.
        name: BlockName,
        /// Which variables: dotenv (DATABASE_URL, DATABASE_HOST, ...), shell (the same as
        /// export lines), libpq (PGHOST, PGPORT, ...), mysql (MYSQL_HOST, ...).
        /// Default: dotenv. For an HTTP service block: dotenv or shell, with
        /// PREFIX_URL and PREFIX_API_KEY (PREFIX: the block's name in capitals).
        #[arg(long, value_enum)]
        format: Option<EnvFormat>,
        /// Variable prefix for dotenv and shell (default DATABASE: DATABASE_HOST, ...).
        #[arg(long, value_name = "PREFIX")]
        prefix: Option<String>,
        /// The variables of a user leased for this (the block declares `lease.admin` and
        /// `lease.role`), with BLOCKYARD_LEASE_ID to renew or revoke it; it lives until
        /// it expires (`lease.ttl`) or is revoked.
        #[arg(long)]
        lease: bool,
    },
}

/// `block ls`'s arguments.
#[derive(Debug, Args)]
pub struct ListArgs {
    /// Only blocks of this type.
    #[arg(long = "type", short = 't')]
    block_type: Option<String>,
    /// Only names starting with this.
    #[arg(long)]
    prefix: Option<String>,
    /// At most this many blocks.
    #[arg(long)]
    limit: Option<u32>,
    /// Only names after this one: the next page after a page that ended with NAME
    /// (`--limit 100 --after crdb-0999`), read from the name index, so every page
    /// is as fast as the first.
    #[arg(long, value_name = "NAME")]
    after: Option<BlockName>,
    /// List deleted blocks instead (history kept; `block undelete NAME` brings one
    /// back): who deleted each and when.
    #[arg(long, conflicts_with_all = ["limit", "after"])]
    deleted: bool,
}

impl ListArgs {
    fn filter(self) -> BlockFilter {
        BlockFilter {
            block_type: self.block_type,
            name_prefix: self.prefix,
            after: self.after.map(|name| name.to_string()),
            limit: self.limit.map(i64::from),
            name_glob: None,
            name_contains: None,
        }
    }
}

pub fn run(cmd: BlockCommand, registry: &Registry, out: &Printer) -> Result<()> {
    match cmd {
        BlockCommand::Create(args) => create(registry, out, args),
        BlockCommand::Ls(args) if args.deleted => list_deleted(registry, out, args.filter()),
        BlockCommand::Ls(args) => list(registry, out, args.filter()),
        BlockCommand::Inspect {
            name,
            show_secrets,
            field,
        } => match field {
            Some(path) => print_field(registry, &name, &path, out),
            None => inspect(registry, &name, show_secrets, out),
        },
        BlockCommand::Update {
            name,
            unset,
            if_version,
            doc,
        } => update(registry, out, &name, &unset, if_version, &doc),
        BlockCommand::Rename {
            name,
            new_name,
            if_version,
        } => rename(registry, &name, &new_name, if_version, out),
        BlockCommand::Delete { name, if_version } => delete(registry, &name, if_version, out),
        BlockCommand::Test { name, timeout } => super::connect::test(registry, &name, timeout, out),
        BlockCommand::Url {
            name,
            show_secrets: reveal,
            libpq,
        } => super::connect::url(registry, &name, reveal, libpq, out),
        BlockCommand::Env {
            name,
            format,
            prefix,
            lease,
        } => super::connect::env(registry, &name, format, prefix.as_deref(), lease, out),
        BlockCommand::History { name } => history(registry, &name, out),
        BlockCommand::Diff { name, v1, v2 } => diff(registry, &name, v1, v2, out),
        BlockCommand::Rollback {
            name,
            target,
            to_version,
            if_version,
        } => rollback(registry, &name, target.or(to_version), if_version, out),
        BlockCommand::Undelete { name } => undelete(registry, &name, out),
        BlockCommand::Purge { name, yes } => purge(registry, &name, yes, out),
        BlockCommand::RotatePassword { name, admin } => {
            super::db::rotate_password(registry, &name, &admin, out)
        }
    }
}

fn rollback(
    registry: &Registry,
    name: &str,
    to_version: Option<i64>,
    if_version: Option<i64>,
    out: &Printer,
) -> Result<()> {
    // clap requires one of VERSION and --to-version.
    let to_version = to_version.unwrap_or_default();
    let block = registry.rollback_block(name, to_version, if_version)?;
    out.emit(&BlockBody::of(&block, false), || {
        format!(
            "rolled block {} back to version {to_version}: now version {}",
            block.name, block.version
        )
    });
    Ok(())
}

fn undelete(registry: &Registry, name: &str, out: &Printer) -> Result<()> {
    let block = registry.undelete_block(name)?;
    out.emit(&BlockBody::of(&block, false), || {
        format!("block {} is back (version {})", block.name, block.version)
    });
    Ok(())
}

fn inspect(registry: &Registry, name: &str, show_secrets: bool, out: &Printer) -> Result<()> {
    let block = match show_secrets {
        true => registry.read_block(name)?,
        false => registry.get_block_masked(name)?,
    };
    out.emit(&BlockBody::of(&block, show_secrets), || {
        describe(&block, show_secrets)
    });
    Ok(())
}

/// `block get NAME --field PATH`: one value, raw. The block is read with its secrets
/// only when the path leads to one (or into a URL that holds one), or it refers to
/// another block.
fn print_field(registry: &Registry, name: &str, path: &str, out: &Printer) -> Result<()> {
    let masked = registry.get_block_masked(name)?;
    let refers = !crate::types::blockyard_references(masked.masked_data()).is_empty();
    let block = match refers || crate::document::path_holds_mask(masked.masked_data(), path) {
        true => registry.read_block(name)?,
        false => masked,
    };
    let value = field_value(&block, path)?;
    match (out.for_people(), &value) {
        (true, Value::String(text)) => write_raw(text),
        (true, other) => write_raw(&other.to_string()),
        (false, _) => out.emit(&value, String::new),
    }
    Ok(())
}

/// The value at `path` in a block's document (see [`crate::connect::field_of`]).
pub(super) fn field_value(block: &crate::registry::Block, path: &str) -> Result<Value> {
    let doc = block.document_or_masked();
    crate::connect::field_of(&block.name, &doc, path).ok_or_else(|| Error::FieldNotFound {
        block: block.name.to_string(),
        path: path.to_owned(),
        fields: crate::document::leaves(&doc)
            .into_keys()
            .collect::<Vec<_>>()
            .join(", "),
    })
}

fn rename(
    registry: &Registry,
    name: &str,
    new_name: &BlockName,
    if_version: Option<i64>,
    out: &Printer,
) -> Result<()> {
    let block = registry.rename_block(name, new_name, if_version)?;
    out.emit(&BlockBody::of(&block, false), || {
        format!(
            "renamed block {name} to {} (version {})",
            block.name, block.version
        )
    });
    Ok(())
}

fn delete(registry: &Registry, name: &str, if_version: Option<i64>, out: &Printer) -> Result<()> {
    let block = registry.delete_block(name, if_version)?;
    let deleted = Deleted {
        deleted: block.name.into(),
        id: block.id,
        version: block.version,
    };
    out.emit(&deleted, || {
        format!(
            "deleted block {0} (its history is kept; `blockyard block undelete {0}` brings it back)",
            deleted.deleted
        )
    });
    Ok(())
}

fn purge(registry: &Registry, name: &str, yes: bool, out: &Printer) -> Result<()> {
    if !yes {
        return Err(Error::InvalidInput(format!(
            "purging {name} destroys it and every version of it for good; pass --yes"
        )));
    }
    let id = registry.purge_block(name)?;
    out.emit(&json!({"purged": name, "id": id}), || {
        format!("purged block {name} and all its versions")
    });
    Ok(())
}

/// `block create`'s arguments.
#[derive(Debug, Args)]
pub struct Create {
    /// Block name: 1-128 lowercase letters, digits, '-', '_', '.'.
    pub name: BlockName,
    /// Block type (`blockyard type ls`); defaults to sqlalchemy-connector with --url or --from-env.
    #[arg(long = "type", short = 't')]
    pub block_type: Option<String>,
    /// Build the connection from PREFIX_HOST, _PORT, _NAME, _USER/_ADMIN_USER,
    /// _PASSWORD/_ADMIN_PASSWORD (and _DRIVER).
    #[arg(long, value_name = "PREFIX")]
    pub from_env: Option<String>,
    /// Read --from-env variables from this file instead of the environment.
    #[arg(long, value_name = "FILE", requires = "from_env")]
    pub env_file: Option<PathBuf>,
    /// Use this id instead of a new UUID (to mirror blocks across environments).
    #[arg(long)]
    pub id: Option<uuid::Uuid>,
    /// With --id of a deleted block: replace it (its history is purged).
    #[arg(long, requires = "id")]
    pub replace_deleted: bool,
    /// Create it without its main secret (a connection that needs no password, such
    /// as trust or peer authentication); without this, a missing one is refused.
    #[arg(long)]
    pub no_password: bool,
    #[command(flatten)]
    pub doc: DocumentArgs,
}

fn create(registry: &Registry, out: &Printer, args: Create) -> Result<()> {
    let Create {
        name,
        block_type,
        from_env,
        env_file,
        id,
        replace_deleted,
        no_password,
        mut doc,
    } = args;
    let from_data = doc.read_data()?;
    let slug = match block_type.or(from_data) {
        Some(slug) => slug,
        None if doc.url.is_some() || from_env.is_some() => CONNECTOR.to_owned(),
        None => {
            return Err(Error::InvalidInput(
                "--type is required (see `blockyard type ls`), unless --url or --from-env is given"
                    .into(),
            ));
        }
    };
    let ty = registry.block_type(&slug)?;
    let env_doc = match &from_env {
        Some(prefix) => {
            let vars = std::env::vars().collect();
            Some(input::document_from_env(
                prefix,
                env_file.as_deref(),
                &vars,
            )?)
        }
        None => None,
    };
    let mut document = json!({});
    doc.apply(&ty, &mut document, env_doc)?;
    if !doc.gives_secret() && !no_password {
        input::prompt_for_missing_secret(&ty, name.as_str(), &mut document)?;
    }
    input::check_secret_given(&ty, name.as_str(), &document, no_password)?;
    let block = registry.create_block(NewBlock {
        name,
        block_type: slug,
        document,
        id,
        replace_deleted,
    })?;
    out.emit(&BlockBody::of(&block, false), || {
        format!(
            "created block {} (type {}, version {})",
            block.name, block.block_type, block.version
        )
    });
    Ok(())
}

fn list(registry: &Registry, out: &Printer, filter: BlockFilter) -> Result<()> {
    if let Some(slug) = &filter.block_type {
        // `--type secrets` is a mistake to say so, not an empty list.
        registry.block_type(slug)?;
    }
    let blocks = registry.list_blocks(&filter)?;
    out.emit(&blocks, || {
        if blocks.is_empty() {
            return match (&filter.after, &filter.name_prefix, &filter.block_type) {
                (Some(after), _, _) => format!("no more blocks after {after}"),
                (None, None, None) => "no blocks; create one with `blockyard block create`".into(),
                _ => "no blocks match; `blockyard block ls` lists them all".into(),
            };
        }
        table(
            &["NAME", "TYPE", "VERSION", "UPDATED"],
            blocks.iter().map(|b| {
                vec![
                    b.name.to_string(),
                    b.block_type.clone(),
                    b.version.to_string(),
                    rfc3339(b.updated_at),
                ]
            }),
        )
    });
    Ok(())
}

/// `block ls --deleted`.
fn list_deleted(registry: &Registry, out: &Printer, filter: BlockFilter) -> Result<()> {
    let deleted = registry.list_deleted(&filter)?;
    out.emit(&deleted, || {
        if deleted.is_empty() {
            return "no deleted blocks".into();
        }
        table(
            &["NAME", "TYPE", "VERSION", "DELETED", "BY"],
            deleted.iter().map(|b| {
                vec![
                    b.name.to_string(),
                    b.block_type.clone(),
                    b.version.to_string(),
                    rfc3339(b.deleted_at),
                    b.deleted_by.clone().unwrap_or_else(|| "local".into()),
                ]
            }),
        )
    });
    Ok(())
}

/// `block update`: read, edit, write back if nobody changed it meanwhile.
fn update(
    registry: &Registry,
    out: &Printer,
    name: &str,
    unset: &[String],
    if_version: Option<i64>,
    doc: &DocumentArgs,
) -> Result<()> {
    // Edited in its masked form: a token that may write but not read the secrets
    // (`--set pool.max_size=5` with blocks:write) changes what it may.
    let current = registry.get_block_masked(name)?;
    let ty = registry.block_type(&current.block_type)?;
    let mut document = current.masked_data().clone();
    input::unset_fields(&mut document, unset)?;
    doc.apply(&ty, &mut document, None)?;
    let expected = Some(if_version.unwrap_or(current.version));
    let block = registry.update_block_from_masked(name, document, expected, true)?;
    let unchanged = block.version == current.version;
    let report = Updated {
        block: BlockBody::of(&block, false),
        changed: !unchanged,
    };
    out.emit(&report, || match unchanged {
        true => format!(
            "block {} unchanged: the update changes nothing, so no version was written \
             (still version {})",
            block.name, block.version
        ),
        false => format!("updated block {} to version {}", block.name, block.version),
    });
    Ok(())
}

/// `block update -o json`: the block and whether a version was written.
#[derive(serde::Serialize)]
struct Updated {
    #[serde(flatten)]
    block: BlockBody,
    changed: bool,
}

fn history(registry: &Registry, name: &str, out: &Printer) -> Result<()> {
    let versions = registry.block_history(name)?;
    out.emit(&versions, || {
        table(
            &["VERSION", "CHANGE", "BY", "NAME", "AT", "WHAT CHANGED"],
            versions.iter().rev().map(|v| {
                let what = match v.changes.is_empty() {
                    true if v.version == 1 => "created".to_owned(),
                    true => "-".to_owned(),
                    false => summarize(&v.changes),
                };
                vec![
                    v.version.to_string(),
                    v.change.clone(),
                    v.actor.clone().unwrap_or_else(|| "local".into()),
                    v.name.clone(),
                    rfc3339(v.created_at),
                    what,
                ]
            }),
        )
    });
    Ok(())
}

/// What differs between versions `a` and `b`: non-secret fields by value; a secret as
/// changed if any version between them changed it (the masked data cannot tell).
fn changes_between(
    versions: &[BlockVersion],
    a: &BlockVersion,
    b: &BlockVersion,
) -> Vec<FieldChange> {
    let (lo, hi) = (a.version.min(b.version), a.version.max(b.version));
    let mut changes = crate::document::changes(&a.data, None, &b.data, None);
    let secret_changes = versions
        .iter()
        .filter(|v| v.version > lo && v.version <= hi)
        .flat_map(|v| v.changes.iter().filter(|c| c.secret));
    for c in secret_changes {
        if !changes.iter().any(|x| x.path == c.path) {
            changes.push(FieldChange {
                path: c.path.clone(),
                before: Some(Value::Null),
                after: Some(Value::Null),
                secret: true,
            });
        }
    }
    changes.sort_by(|x, y| x.path.cmp(&y.path));
    changes
}

fn diff(
    registry: &Registry,
    name: &str,
    v1: Option<i64>,
    v2: Option<i64>,
    out: &Printer,
) -> Result<()> {
    let versions = registry.block_history(name)?;
    let latest = versions.iter().map(|v| v.version).max().unwrap_or(1);
    let (v1, v2) = match (v1, v2) {
        (Some(a), Some(b)) => (a, b),
        (Some(a), None) => (a, latest),
        (None, _) => (latest.saturating_sub(1).max(1), latest),
    };
    let find = |n: i64| {
        versions.iter().find(|v| v.version == n).ok_or_else(|| {
            Error::InvalidInput(format!(
                "block {name:?} has no version {n}; `blockyard block history {name}` lists them"
            ))
        })
    };
    let (a, b) = (find(v1)?, find(v2)?);
    let changes = changes_between(&versions, a, b);
    let report = json!({"name": name, "from": v1, "to": v2, "changes": changes});
    out.emit(&report, || {
        if changes.is_empty() {
            return format!("{name}: versions {v1} and {v2} are the same");
        }
        table(
            &["FIELD", &format!("VERSION {v1}"), &format!("VERSION {v2}")],
            changes.iter().map(|c| match c.secret {
                true => vec![
                    c.path.clone(),
                    "********".into(),
                    "******** (changed)".into(),
                ],
                false => vec![
                    c.path.clone(),
                    shown(c.before.as_ref()),
                    shown(c.after.as_ref()),
                ],
            }),
        )
    });
    Ok(())
}

fn shown(value: Option<&Value>) -> String {
    match value {
        None => "(absent)".into(),
        Some(Value::String(s)) => s.clone(),
        Some(v) => v.to_string(),
    }
}

/// One line per version for `block history`: each changed field and how.
fn summarize(changes: &[crate::document::FieldChange]) -> String {
    changes
        .iter()
        .map(|c| match (c.secret, &c.before, &c.after) {
            (true, _, _) => format!("{} changed (secret)", c.path),
            (false, None, after) => format!("{} added: {}", c.path, shown(after.as_ref())),
            (false, before, None) => format!("{} removed (was {})", c.path, shown(before.as_ref())),
            (false, before, after) => format!(
                "{}: {} → {}",
                c.path,
                shown(before.as_ref()),
                shown(after.as_ref())
            ),
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn describe(block: &Block, reveal: bool) -> String {
    let data = block.shown(reveal);
    let mut rows = vec![
        ("name", block.name.to_string()),
        ("id", block.id.clone()),
        ("type", block.block_type.clone()),
        ("version", block.version.to_string()),
        ("created", rfc3339(block.created_at)),
        ("updated", rfc3339(block.updated_at)),
    ];
    if let Some(schedule) = rotation_schedule(block, crate::time::now_millis()) {
        rows.push((
            "rotation",
            format!(
                "every {} with {}; last {}; next {}{}",
                schedule.every,
                schedule.admin,
                schedule.last_rotated_at.as_deref().unwrap_or("never"),
                schedule.next_rotation_at,
                if schedule.due { " (due)" } else { "" }
            ),
        ));
    }
    let mut text = details(&rows);
    text.push_str("data:\n");
    text.push_str(&pretty(&data));
    text
}
