//! The registry service: the one place that handles plaintext secrets and the store
//! together. Interfaces (the CLI, the HTTP server, flows through the library) call it;
//! it validates documents against their types, seals and opens secrets, and keeps every
//! change as a version.

mod admin;
mod apply;
mod backup;
mod connections;
mod crash;
mod databases;
mod keys;
mod local;
mod rotation;
mod transfer;

pub use crate::block::{Block, BlockMeta, BlockSummary, BlockVersion, ChangeRecord, NewBlock};
pub use crate::provision::{DatabaseListing, Provisioned};
pub use admin::{
    AUDIT_PRUNE_LOCK, AuditFilter, AuditRow, MigrationStatus, PruneReport, migrate,
    migration_status,
};
pub use apply::{ApplyFile, ApplyOptions, ApplyPlan, SecretRefs, parse_apply_file};
pub use backup::{BACKUP_FORMAT, BackupFile, BackupReport, restore};
pub use databases::NewDatabase;
pub use keys::{InitReport, KeyStatus, RotationReport};
pub use rotation::{ROTATION_LOCK, RotationSchedule, rotation_schedule};
pub use transfer::{Existing, ImportPlan, SecretsIdentity, SecretsKey};

use std::sync::Arc;

use serde_json::Value;

use crate::block::BlockFilter;
use crate::config::Config;
use crate::connect::pool::PoolCache;
use crate::error::{Error, Result};
use crate::name::{BlockName, ToBlockName};
use crate::remote::RemoteClient;
use crate::source::BlockSource;
use crate::store::Store;
use crate::types::{BlockType, BlockTypeDef};
use local::LocalBlocks;

/// The registry: where blocks live (a [`BlockSource`]: a store opened here, or a
/// Blockyard server in remote mode), and the pools handed out by block name. Cloning is
/// cheap and clones share everything.
#[derive(Clone, Debug)]
pub struct Registry {
    source: Arc<dyn BlockSource>,
    /// The store and keys, for what only a local store does (keys, tokens, audit).
    local: Option<Arc<LocalBlocks>>,
    /// In remote mode, the server, for saying why a store command cannot run.
    server: Option<url::Url>,
    pools: Arc<PoolCache>,
    /// The audit record each change made through this handle commits with.
    record: Option<Arc<ChangeRecord>>,
}

impl Registry {
    /// Opens the configured store. A brand-new store is migrated and given a master key
    /// and a first data key; the report says where they are.
    pub fn open(config: Config) -> Result<(Registry, Option<InitReport>)> {
        let pools = Arc::new(PoolCache::new(config.pool_refresh));
        if let Some(remote) = config.remote {
            let client = RemoteClient::new(remote)?;
            let server = Some(client.base().clone());
            let source: Arc<dyn BlockSource> = Arc::new(client);
            let registry = Registry {
                source,
                local: None,
                server,
                pools,
                record: None,
            };
            return Ok((registry, None));
        }
        let store = Store::open(config.database_url.clone(), &config.pool)?;
        let status = store.migration_status()?;
        let fresh = status.applied.is_empty();
        if fresh {
            store.migrate()?;
        } else if !status.pending.is_empty() {
            return Err(Error::StoreNotMigrated(format!(
                "{} pending migration(s): {}",
                status.pending.len(),
                status.pending.join(", ")
            )));
        }
        let keys = Arc::new(keys::KeyManager::new(config.key, config.data_dir));
        let report = keys.initialise_if_needed(&store)?;
        if keys::KeyManager::needs_reseal(&store)? {
            return Err(Error::StoreNotMigrated(
                "its secrets are sealed in an older format, not bound to their block's \
                 type, version and document; run `blockyard database migrate` (with the \
                 master key)"
                    .into(),
            ));
        }
        let local = Arc::new(LocalBlocks { store, keys });
        let registry = Registry {
            source: local.clone(),
            local: Some(local),
            server: None,
            pools,
            record: None,
        };
        Ok((registry, report))
    }

    /// This registry, with `record` committed in the same transaction as each change
    /// made through it (the server's audit trail of changes: both or neither).
    pub fn on_behalf(&self, record: ChangeRecord) -> Registry {
        Registry {
            record: Some(Arc::new(record)),
            ..self.clone()
        }
    }

    fn record(&self) -> Option<&ChangeRecord> {
        self.record.as_deref()
    }

    /// The local store; an error in remote mode.
    fn store(&self) -> Result<&Store> {
        self.local().map(|(store, _)| store)
    }

    fn local(&self) -> Result<(&Store, &Arc<keys::KeyManager>)> {
        match (&self.local, &self.server) {
            (Some(local), _) => Ok((&local.store, &local.keys)),
            (None, server) => Err(Error::Config(format!(
                "this works on a local store only, and BLOCKYARD_URL points at the server {}; \
                 unset it (and --server-url) to use the store directly",
                server.as_ref().map(url::Url::as_str).unwrap_or("(unknown)")
            ))),
        }
    }

    // ---- blocks and block types: the source's ----------------------------------

    /// Every type: built-in first, then registered ones, by slug.
    pub fn block_types(&self) -> Result<Vec<BlockType>> {
        self.source.block_types()
    }

    pub fn block_type(&self, slug: &str) -> Result<BlockType> {
        self.source.block_type(slug)
    }

    /// Registers (or with `replace`, replaces) a user type. Built-in types cannot be
    /// replaced.
    pub fn register_type(&self, def: BlockTypeDef, replace: bool) -> Result<BlockType> {
        self.source.register_type(def, replace, self.record())
    }

    /// Creates a block after validating it against its type; secrets are sealed.
    pub fn create_block(&self, mut new: NewBlock) -> Result<Block> {
        if self.local.is_some() {
            rotation::guard_rotation(None, &mut new.document, self.record())?;
        }
        self.source.create_block(new, self.record())
    }

    /// Loads a block with its secrets decrypted.
    pub fn load_block(&self, name: &(impl ToBlockName + ?Sized)) -> Result<Block> {
        self.source.load_block(&*name.to_block_name()?)
    }

    /// Loads a block with secrets masked; nothing is decrypted.
    pub fn get_block_masked(&self, name: &(impl ToBlockName + ?Sized)) -> Result<Block> {
        self.source.get_block_masked(&*name.to_block_name()?)
    }

    pub fn list_blocks(&self, filter: &BlockFilter) -> Result<Vec<BlockSummary>> {
        self.source.list_blocks(filter)
    }

    /// Replaces a block's document if it is still at `expected_version` (the version
    /// read, when `None` is given, which still refuses a concurrent change). An update
    /// that changes nothing writes no version and returns the block as it is.
    pub fn update_block(
        &self,
        name: &(impl ToBlockName + ?Sized),
        mut document: Value,
        expected_version: Option<i64>,
    ) -> Result<Block> {
        let name = &name.to_block_name()?;
        if self.local.is_some() {
            self.guard_rotation_update(name, &mut document)?;
        }
        self.source
            .update_block(name, document, expected_version, self.record())
    }

    /// [`rotation::guard_rotation`] against the stored block, read with its secrets
    /// only when either side mentions a rotation.
    fn guard_rotation_update(&self, name: &BlockName, document: &mut Value) -> Result<()> {
        let mentions = |doc: &Value| doc.get("rotation").is_some_and(|r| !r.is_null());
        let masked = self.get_block_masked(name)?;
        if !mentions(document) && !mentions(masked.masked_data()) {
            return Ok(());
        }
        let current = self.load_block(name)?.document();
        rotation::guard_rotation(current.as_ref(), document, self.record())
    }

    pub fn rename_block(
        &self,
        name: &(impl ToBlockName + ?Sized),
        new_name: &BlockName,
        expected_version: Option<i64>,
    ) -> Result<Block> {
        self.source.rename_block(
            &*name.to_block_name()?,
            new_name,
            expected_version,
            self.record(),
        )
    }

    pub fn delete_block(
        &self,
        name: &(impl ToBlockName + ?Sized),
        expected_version: Option<i64>,
    ) -> Result<Block> {
        self.source
            .delete_block(&*name.to_block_name()?, expected_version, self.record())
    }

    /// Writes the next version of `name` equal to version `to`, secrets included.
    pub fn rollback_block(
        &self,
        name: &(impl ToBlockName + ?Sized),
        to: i64,
        expected: Option<i64>,
    ) -> Result<Block> {
        self.source
            .rollback_block(&*name.to_block_name()?, to, expected, self.record())
    }

    /// Brings back the block last deleted under `name`, with its history.
    pub fn undelete_block(&self, name: &(impl ToBlockName + ?Sized)) -> Result<Block> {
        self.source
            .undelete_block(&*name.to_block_name()?, self.record())
    }

    /// Destroys a block (or the one last deleted under `name`) and all its versions.
    pub fn purge_block(&self, name: &(impl ToBlockName + ?Sized)) -> Result<String> {
        self.source
            .purge_block(&*name.to_block_name()?, self.record())
    }

    /// Replaces a block's document with one edited from its masked form: where it
    /// still holds `********`, the stored secret is kept. Keeping a stored secret while
    /// changing where the block connects (host, port, URL, driver, database, username,
    /// a type's `destination_fields`) would send that secret to a new place, so it needs
    /// `may_read_secrets`; without it, such an edit must send the secrets anew.
    pub fn update_block_from_masked(
        &self,
        name: &(impl ToBlockName + ?Sized),
        mut document: Value,
        expected_version: Option<i64>,
        may_read_secrets: bool,
    ) -> Result<Block> {
        let name = &name.to_block_name()?;
        let current = self.load_block(name.as_ref())?;
        let sent = document.clone();
        let kept = current.restore_masked(&mut document);
        if kept > 0 && !may_read_secrets {
            let ty = self.block_type(&current.block_type)?;
            let moved = crate::document::moved_destinations(&ty, current.masked_data(), &sent);
            if !moved.is_empty() {
                return Err(Error::Forbidden(format!(
                    "this change moves where block {} connects ({}) while keeping its stored \
                     secret; that needs a token that may read the secret \
                     (blocks:read-secrets), or send the secret anew",
                    current.name,
                    moved.join(", ")
                )));
            }
        }
        let expected = Some(expected_version.unwrap_or(current.version));
        self.update_block(name.as_ref(), document, expected)
    }

    /// Every kept version of a block, oldest first, secrets masked.
    pub fn block_history(&self, name: &(impl ToBlockName + ?Sized)) -> Result<Vec<BlockVersion>> {
        self.source.block_history(&*name.to_block_name()?)
    }

    // ---- keys -------------------------------------------------------------------

    pub fn key_status(&self) -> Result<KeyStatus> {
        self.local()?.1.status(self.local()?.0)
    }

    /// Re-seals every block (and every kept version) under a new data key, in batches;
    /// `progress(done, total)` is called after each batch. Safe to interrupt: each row
    /// names the key that sealed it, and old keys are deleted only at the end.
    pub fn rotate_data_key(&self, progress: impl FnMut(u64, u64)) -> Result<RotationReport> {
        self.local()?.1.rotate(self.local()?.0, progress)
    }

    /// Verifies the configured master key against the store.
    pub fn verify_master_key(&self) -> Result<()> {
        self.local()?.1.master(self.local()?.0).map(|_| ())
    }
}
