//! The registry service: the one place that handles plaintext secrets and the store
//! together. Interfaces (the CLI, the HTTP server, flows through the library) call it;
//! it validates documents against their types, seals and opens secrets, and keeps every
//! change as a version.

mod admin;
mod apply;
mod backup;
mod connections;
mod crash;
mod references;
pub use crash::crash_point;
mod databases;
mod fleet;
mod handle;
mod keys;
mod leased_pool;
mod leases;
mod local;
mod rotation;
mod transfer;

pub use crate::block::{Block, BlockMeta, BlockSummary, BlockVersion, ChangeRecord, NewBlock};
pub use crate::provision::{DatabaseListing, Provisioned, SchemaApplied};
pub use admin::{
    AUDIT_PRUNE_LOCK, AuditFilter, AuditRow, MigrationStatus, PruneReport, migrate,
    migration_status,
};
pub use apply::{ApplyFile, ApplyOptions, ApplyPlan, SecretRefs, parse_apply_file};
pub use backup::{BACKUP_FORMAT, BackupFile, BackupReport, restore};
pub use databases::NewDatabase;
pub use fleet::{Held, LastTest, OpenSession, SESSION_LIFETIME, UiSessions, random_token};
pub use handle::Registry;
pub use keys::{InitReport, KeyStatus, RotationReport};
pub use leased_pool::LeasedPool;
pub use leases::{
    DEFAULT_PREFIX, IssuedLease, LEASE_LOCK, Lease, LeaseSpec, ReconcileReport, lease_spec,
    local_actor,
};
pub use rotation::{ROTATION_LOCK, RotationSchedule, rotation_schedule};
pub use transfer::{Existing, ImportPlan, SecretsIdentity, SecretsKey};

use serde_json::Value;

use crate::block::{BlockFilter, ChangeCursor, DeletedBlock};
use crate::wire::Changes;

/// How often a local watcher asks the store for its blocks' stamps.
const CHANGE_POLL: std::time::Duration = std::time::Duration::from_millis(500);
use crate::error::{Error, Result};
use crate::name::{BlockName, ToBlockName};
use crate::types::{BlockType, BlockTypeDef};

impl Registry {
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
            self.check_references(&new.name, &new.document)?;
            rotation::guard_rotation(None, &mut new.document, self.record())?;
            leases::guard_lease(None, &new.document, self.record())?;
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
            self.check_references(name, &document)?;
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
        leases::guard_lease(Some(masked.masked_data()), document, self.record())?;
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
    /// `may_read_secrets`; without it, such an edit must send the secrets anew. Through
    /// a server, the server does this with the token's own rights.
    pub fn update_block_from_masked(
        &self,
        name: &(impl ToBlockName + ?Sized),
        mut document: Value,
        expected_version: Option<i64>,
        may_read_secrets: bool,
    ) -> Result<Block> {
        let name = &name.to_block_name()?;
        if self.remote.is_some() {
            return self.update_block(name.as_ref(), document, expected_version);
        }
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

    /// The name of the block with this id, on a local store (a Prefect client names
    /// blocks by id).
    pub fn block_name_by_id(&self, id: &str) -> Result<BlockName> {
        let row = self.store()?.find_block_by_id(id)?;
        row.map(|row| BlockName::stored(row.name))
            .ok_or_else(|| Error::BlockNotFound(format!("with id {id}")))
    }

    /// The deleted blocks (history kept, no live block) matching `filter`'s type and
    /// name prefix, by name: what `block undelete` can bring back.
    pub fn list_deleted(&self, filter: &BlockFilter) -> Result<Vec<DeletedBlock>> {
        if let Some(remote) = &self.remote {
            return remote.list_deleted(filter);
        }
        if filter.matches_nothing() {
            return Ok(Vec::new());
        }
        let rows = self.store()?.deleted_blocks(filter)?;
        Ok(rows.into_iter().map(DeletedBlock::from).collect())
    }

    /// Which of `names` changed (a new version, deleted, created again) since `since`,
    /// waiting up to `wait` for one to, with the cursor to ask with next. Without
    /// `since`, nothing has changed yet: the answer is the cursor of now. Locally, the
    /// store is asked for just these blocks' stamps twice a second; a server is asked
    /// once per wait (it does the looking).
    pub fn block_changes(
        &self,
        names: &[BlockName],
        since: Option<&str>,
        wait: std::time::Duration,
    ) -> Result<Changes> {
        if let Some(remote) = &self.remote {
            return remote.block_changes(names, since, wait);
        }
        let since = since.map(ChangeCursor::decode).transpose()?;
        let names: Vec<&str> = names.iter().map(|n| n.as_str()).collect();
        let deadline = std::time::Instant::now() + wait;
        loop {
            let now = ChangeCursor::of(&names, &self.store()?.stamps_of(&names)?);
            let changed = since
                .as_ref()
                .map(|s| now.changed_since(s))
                .unwrap_or_default();
            if !changed.is_empty() || std::time::Instant::now() >= deadline {
                let cursor = now.encode();
                return Ok(Changes { cursor, changed });
            }
            std::thread::sleep(CHANGE_POLL.min(deadline - std::time::Instant::now()));
        }
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
