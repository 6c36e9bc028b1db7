//! `backup` and `restore`: the whole registry (blocks, history, types, tokens, audit
//! log, wrapped data keys) as one file, taken from a running store in one snapshot and
//! restored into an empty store of either backend once the master key is proven to be
//! the one that sealed it.

use serde::{Deserialize, Serialize};

use super::handle::Registry;
use super::keys::{KeyManager, META_FINGERPRINT, META_LOCATION, META_STORE_ID};
use crate::config::Config;
use crate::error::{Error, Result};
use crate::store::{Store, StoreRows};
use crate::time::{now_millis, rfc3339};

/// The format a backup declares.
pub const BACKUP_FORMAT: &str = "blockyard-backup/1";

/// A backup: the store's rows as they are stored (secrets sealed, data keys wrapped by
/// the master key, token secrets only as hashes), with what a restore checks first.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BackupFile {
    /// `blockyard-backup/1`.
    pub format: String,
    pub created_at: String,
    /// The store's id (a restore keeps it: the restored store is the same registry).
    pub store_id: String,
    /// The fingerprint of the master key that wraps the data keys.
    pub master_key_fingerprint: String,
    /// The store's applied migrations; a restore needs a build that knows all of them.
    pub migrations: Vec<String>,
    pub rows: StoreRows,
}

/// What a backup holds or a restore wrote.
#[derive(Debug, Serialize)]
pub struct BackupReport {
    pub store: String,
    pub store_id: String,
    pub fingerprint: String,
    pub blocks: usize,
    pub versions: usize,
    pub block_types: usize,
    pub tokens: usize,
    pub audit_records: usize,
    pub rows: usize,
    /// Token rows a restore left out: not bound to the master key (edited in the file,
    /// or made before tokens were bound). Create them anew.
    #[serde(skip_serializing_if = "is_zero")]
    pub tokens_refused: usize,
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

impl BackupFile {
    pub fn report(&self, store: String) -> BackupReport {
        BackupReport {
            store,
            store_id: self.store_id.clone(),
            fingerprint: self.master_key_fingerprint.clone(),
            blocks: self.rows.blocks.len(),
            versions: self.rows.block_versions.len(),
            block_types: self.rows.block_types.len(),
            tokens: self.rows.api_tokens.len(),
            audit_records: self.rows.audit_log.len(),
            rows: self.rows.len(),
            tokens_refused: 0,
        }
    }

    fn meta(&self, key: &str) -> Option<&str> {
        self.rows
            .meta
            .iter()
            .find(|m| m.key == key)
            .map(|m| m.value.as_str())
    }
}

impl Registry {
    /// The whole store, read in one snapshot while others keep using it.
    pub fn backup(&self) -> Result<BackupFile> {
        let (store, _) = self.local()?;
        let migrations = store.migration_status()?.applied;
        let rows = store.read_all()?;
        let meta = |key: &str| {
            rows.meta
                .iter()
                .find(|m| m.key == key)
                .map(|m| m.value.clone())
                .unwrap_or_default()
        };
        Ok(BackupFile {
            format: BACKUP_FORMAT.into(),
            created_at: rfc3339(now_millis()),
            store_id: meta(META_STORE_ID),
            master_key_fingerprint: meta(META_FINGERPRINT),
            migrations,
            rows,
        })
    }
}

/// Restores `file` into the configured store, which must be empty (new, or migrated
/// with no rows). The configured master key is checked first (its fingerprint, and
/// that it opens every data key), before anything is written; then every row is
/// written in one transaction, so an interrupted restore leaves the store empty.
pub fn restore(
    config: Config,
    mut file: BackupFile,
    progress: &mut dyn FnMut(usize),
) -> Result<BackupReport> {
    check_file(&file)?;
    if let Some(remote) = &config.remote {
        return Err(Error::Config(format!(
            "restore writes into a store opened here, and BLOCKYARD_URL points at the server \
             {}; unset it (and --server-url)",
            remote.url
        )));
    }
    let keys = KeyManager::new(config.key.clone(), config.data_dir.clone());
    let (location, row_key) =
        keys.check_restore_key(&file.master_key_fingerprint, &file.rows.data_keys)?;
    // A token row the master key did not bind would let whoever wrote it in.
    let before = file.rows.api_tokens.len();
    file.rows
        .api_tokens
        .retain(|row| crate::auth::row_verifies(&row_key, row));
    let tokens_refused = before - file.rows.api_tokens.len();
    let store = Store::open(config.database_url.clone(), &config.pool)?;
    check_empty_store(&store, &file)?;
    store.migrate()?;
    let mut rows_written = 0;
    store.write_all(&file.rows, &mut |n| {
        rows_written += n;
        progress(n);
        if rows_written >= file.rows.len() / 2 {
            super::crash::crash_point("restore-half-written");
        }
    })?;
    // The key may live elsewhere on this machine than where the backup was taken.
    store.set_meta(META_LOCATION, &location)?;
    let mut report = file.report(store.url().to_string());
    report.tokens_refused = tokens_refused;
    Ok(report)
}

/// The store a restore writes into knows every migration the backup's store had and
/// holds no rows.
fn check_empty_store(store: &Store, file: &BackupFile) -> Result<()> {
    let status = store.migration_status()?;
    let unknown: Vec<&String> = file
        .migrations
        .iter()
        .filter(|name| !status.migrations.iter().any(|m| &m.name == *name))
        .collect();
    if !unknown.is_empty() {
        return Err(Error::InvalidInput(format!(
            "the backup comes from a newer Blockyard: this build does not know its \
             migration(s) {}",
            unknown
                .iter()
                .map(|s| s.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        )));
    }
    if !status.applied.is_empty() {
        let used = store.tables_in_use()?;
        if !used.is_empty() {
            return Err(Error::InvalidInput(format!(
                "restore writes only into an empty store, and {} holds rows ({}); \
                 give a new one with --database-url or --data-dir",
                store.url(),
                used.join(", ")
            )));
        }
    }
    Ok(())
}

fn check_file(file: &BackupFile) -> Result<()> {
    if file.format != BACKUP_FORMAT {
        return Err(Error::InvalidInput(format!(
            "not a Blockyard backup of a format this build reads ({:?}; expected {BACKUP_FORMAT})",
            file.format
        )));
    }
    if file.meta(META_FINGERPRINT) != Some(file.master_key_fingerprint.as_str()) {
        return Err(Error::InvalidInput(
            "the backup's master key fingerprint does not match its store's".into(),
        ));
    }
    Ok(())
}
