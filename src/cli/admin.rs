//! `blockyard init`, `type ...`, `database ...` and `key ...`.

use std::path::PathBuf;

use clap::Subcommand;
use serde_json::json;

use super::output::{Printer, details, pretty, table};
use crate::config::{Config, KeyChoice, SETTINGS, Setting};
use crate::crypto::MasterKey;
use crate::error::{Error, Result};
use crate::registry::{self, InitReport, Registry};
use crate::types::BlockTypeDef;

#[derive(Debug, Subcommand)]
pub enum TypeCommand {
    /// List block types.
    #[command(visible_alias = "list")]
    Ls,
    /// Show a type's fields (JSON Schema) and which of them are secret.
    Inspect {
        /// The type's slug, e.g. sqlalchemy-connector (`blockyard type ls`).
        slug: String,
    },
    /// Register a block type from a JSON file (same shape as the files in blocks/).
    Register {
        /// A JSON file: slug, name, JSON Schema, secret fields (see blocks/*.json).
        file: PathBuf,
        /// Replace a registered type of the same slug.
        #[arg(long)]
        replace: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum DatabaseCommand {
    /// Apply pending store migrations.
    Migrate,
    /// Show applied and pending migrations.
    Status,
}

#[derive(Debug, Subcommand)]
pub enum KeyCommand {
    /// Show the master key fingerprint and location, and the data keys.
    Status,
    /// Re-encrypt every block under a new data key (safe to interrupt and re-run).
    Rotate,
    /// Print a new random master key (base64), e.g. for BLOCKYARD_MASTER_KEY.
    Generate,
}

pub fn init(registry: &Registry, report: Option<InitReport>, out: &Printer) -> Result<()> {
    registry.verify_master_key()?;
    let status = registry.key_status()?;
    let created = report.is_some();
    let store = registry.store_url()?;
    out.emit(
        &json!({"store": store, "created": created, "master_key": status.master_key, "fingerprint": status.fingerprint}),
        || match &report {
            Some(report) => super::output::init_message(report),
            None => format!(
                "Store {store} is already initialised.\nMaster key: {} (fingerprint {}).",
                status.master_key, status.fingerprint
            ),
        },
    );
    Ok(())
}

/// `blockyard config`: every setting, its value with secrets masked, and its source.
pub fn show_config(config: &Config, out: &Printer) -> Result<()> {
    let rows = setting_rows(config);
    out.emit(&rows, || {
        table(
            &["SETTING", "VALUE", "SOURCE", "VARIABLE"],
            rows.iter().map(|r| {
                let (setting, source) = (r.setting.to_owned(), r.source.to_owned());
                vec![setting, r.value.clone(), source, r.env.to_owned()]
            }),
        )
    });
    Ok(())
}

/// One line of `blockyard config`.
#[derive(serde::Serialize)]
struct SettingRow<'a> {
    setting: &'static str,
    value: String,
    source: &'a str,
    env: &'static str,
}

/// Every setting in effect (the table's, and the master key), never a secret's value,
/// each with where it came from.
fn setting_rows(config: &Config) -> Vec<SettingRow<'_>> {
    let mut rows: Vec<SettingRow<'_>> = SETTINGS
        .iter()
        .map(|setting| SettingRow {
            setting: setting.name,
            value: setting_value(config, setting),
            source: config.origin(setting.name),
            env: setting.env,
        })
        .collect();
    let key_origin = ["master_key", "key_file", "key_source"]
        .into_iter()
        .find(|s| config.origin(s) != "default")
        .unwrap_or("master_key");
    let key = match &config.key {
        KeyChoice::Explicit(source) => source.location.to_string(),
        KeyChoice::Auto => {
            "where the store recorded it at init (else a key file in the data directory)".into()
        }
    };
    rows.insert(
        3,
        SettingRow {
            setting: "master_key",
            value: key,
            source: config.origin(key_origin),
            env: "BLOCKYARD_MASTER_KEY",
        },
    );
    rows
}

/// A setting's value as `blockyard config` shows it: what is in effect, a secret
/// masked.
fn setting_value(config: &Config, setting: &Setting) -> String {
    let remote = config.remote.as_ref();
    match setting.name {
        "data_dir" => config.data_dir.display().to_string(),
        "database_url" if remote.is_some() => "(not used: remote mode)".into(),
        "database_url" => config.database_url.to_string(),
        "server_url" if remote.is_none() => "(none: local store)".into(),
        name => match config.settings.shown(name) {
            Some(_) if setting.secret => "********".into(),
            Some(value) => value,
            None => String::new(),
        },
    }
}

pub fn types(cmd: TypeCommand, registry: &Registry, out: &Printer) -> Result<()> {
    match cmd {
        TypeCommand::Ls => {
            let types = registry.block_types()?;
            let rows: Vec<_> = types
                .iter()
                .map(|t| json!({"slug": t.slug(), "name": t.def.name, "builtin": t.builtin, "secret_fields": t.def.secret_fields, "description": t.def.description}))
                .collect();
            out.emit(&rows, || {
                table(
                    &["SLUG", "NAME", "SECRETS", "SOURCE"],
                    types.iter().map(|t| {
                        vec![
                            t.slug().to_owned(),
                            t.def.name.clone(),
                            t.def.secret_fields.join(", "),
                            if t.builtin { "built-in" } else { "registered" }.to_owned(),
                        ]
                    }),
                )
            });
        }
        TypeCommand::Inspect { slug } => {
            let ty = registry.block_type(&slug)?;
            out.emit(&ty.def, || {
                let mut text = details(&[
                    ("slug", ty.slug().to_owned()),
                    ("name", ty.def.name.clone()),
                    ("description", ty.def.description.clone()),
                    ("secret fields", ty.def.secret_fields.join(", ")),
                    ("url fields", ty.def.url_fields.join(", ")),
                ]);
                text.push_str("schema:\n");
                text.push_str(&pretty(&ty.def.schema));
                text
            });
        }
        TypeCommand::Register { file, replace } => {
            let text = std::fs::read_to_string(&file)
                .map_err(|err| Error::io(format!("reading {}", file.display()), err))?;
            let def: BlockTypeDef = serde_json::from_str(&text)
                .map_err(|err| Error::InvalidBlockType(format!("{}: {err}", file.display())))?;
            let ty = registry.register_type(def, replace)?;
            out.emit(&ty.def, || format!("registered block type {}", ty.slug()));
        }
    }
    Ok(())
}

pub fn database(cmd: DatabaseCommand, config: Config, out: &Printer) -> Result<()> {
    match cmd {
        DatabaseCommand::Migrate => {
            let (store, applied) = registry::migrate(&config)?;
            out.emit(
                &json!({"store": store, "applied": applied}),
                || match applied.is_empty() {
                    true => format!("{store} is up to date"),
                    false => format!(
                        "applied {} migration(s) to {store}: {}",
                        applied.len(),
                        applied.join(", ")
                    ),
                },
            );
        }
        DatabaseCommand::Status => {
            let status = registry::migration_status(&config)?;
            out.emit(&status, || {
                table(
                    &["MIGRATION", "APPLIED"],
                    status.migrations.iter().map(|m| {
                        vec![
                            m.name.clone(),
                            m.applied_at
                                .clone()
                                .unwrap_or_else(|| "pending (blockyard database migrate)".into()),
                        ]
                    }),
                )
            });
        }
    }
    Ok(())
}

pub fn keys(cmd: KeyCommand, registry: &Registry, out: &Printer) -> Result<()> {
    match cmd {
        KeyCommand::Status => {
            let status = registry.key_status()?;
            out.emit(&status, || {
                let mut text = details(&[
                    ("master key", status.master_key.clone()),
                    ("fingerprint", status.fingerprint.clone()),
                    (
                        "rows not under the active key",
                        status.rows_needing_rotation.to_string(),
                    ),
                ]);
                text.push_str(&table(
                    &["DATA KEY", "ACTIVE", "CREATED"],
                    status.data_keys.iter().map(|k| {
                        vec![
                            k.id.clone(),
                            k.active.to_string(),
                            crate::time::rfc3339(k.created_at),
                        ]
                    }),
                ));
                text
            });
        }
        KeyCommand::Rotate => {
            let bar = super::output::progress_bar(0, "re-encrypting", "rows");
            let report = registry.rotate_data_key(|done, total| {
                bar.set_length(total);
                bar.set_position(done);
            })?;
            bar.finish_and_clear();
            out.emit(&report, || {
                format!(
                    "re-encrypted {} row(s) under data key {}; {} old key(s) deleted",
                    report.rows_resealed, report.new_key_id, report.keys_deleted
                )
            });
        }
        KeyCommand::Generate => generate_key(out)?,
    }
    Ok(())
}

pub fn generate_key(out: &Printer) -> Result<()> {
    let key = MasterKey::generate();
    let text = key.to_base64();
    out.emit(
        &json!({"master_key": text.as_str(), "fingerprint": key.fingerprint()}),
        || text.to_string(),
    );
    Ok(())
}
