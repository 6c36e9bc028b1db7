//! The local source of blocks: a store opened here and the key manager that seals and
//! opens their secrets. The only code that handles both plaintext secrets and the store.

use std::sync::Arc;

use serde_json::Value;

use super::keys::KeyManager;
use crate::block::{
    Block, BlockFilter, BlockMeta, BlockSummary, BlockVersion, ChangeRecord, NewBlock,
    parse_stored_data,
};
use crate::crypto::{RowKey, SealBinding};
use crate::document::{Secrets, split_secrets};
use crate::error::{Error, Result};
use crate::name::BlockName;
use crate::source::BlockSource;
use crate::store::{BlockRow, ChangeKind, DELETED, NewAuditRow, Store, StoredType, VersionRow};
use crate::time::now_millis;
use crate::types::{BlockType, BlockTypeDef, builtin_type, builtin_types};

#[derive(Debug)]
pub(super) struct LocalBlocks {
    pub store: Store,
    pub keys: Arc<KeyManager>,
    /// Admin sessions kept between lease operations.
    pub admin_sessions: crate::provision::SessionCache,
}

impl LocalBlocks {
    fn find_row(&self, name: &BlockName) -> Result<BlockRow> {
        find_row(&self.store, name)
    }

    /// The version a deletion mark followed (the block as it was when deleted).
    fn last_before_deletion(&self, mark: &VersionRow) -> Result<VersionRow> {
        self.store
            .block_version(&mark.block_id, mark.version - 1)?
            .ok_or_else(|| Error::Store(format!("block {} lost its last version", mark.name)))
    }

    /// `row` with `secrets` sealed for it: its id, version and document (so every new
    /// version, a rename included, is sealed anew; a wrong master key is refused here,
    /// before anything is written).
    pub(super) fn sealed(&self, row: BlockRow, secrets: &Secrets) -> Result<BlockRow> {
        let at = SealBinding {
            block_id: &row.id,
            block_type: &row.block_type,
            version: row.version,
            data: &row.data,
        };
        let (sealed_secrets, key_id) = self.keys.seal(&self.store, &at, secrets)?;
        Ok(BlockRow {
            sealed_secrets,
            key_id,
            ..row
        })
    }
}

/// A read whose connection was lost (a failover, `pg_terminate_backend`) is tried
/// once more on another: reading twice is harmless, and the pool replaces the lost one.
fn read_twice<T>(read: impl Fn() -> Result<T>) -> Result<T> {
    match read() {
        Err(Error::StoreUnavailable(_)) => read(),
        other => other,
    }
}

/// Creating a block with a deleted block's id would purge that block's history.
/// `how` says how to replace it anyway.
pub(super) fn replaces_deleted(id: &str, name: &str, how: &str) -> Error {
    Error::InvalidInput(format!(
        "id {id} belongs to the deleted block {name}: creating this block would purge \
         that block and its history; `blockyard block undelete {name}` brings it back, or \
         {how} to replace it"
    ))
}

/// The MAC that binds a user type's definition to the master key.
pub(super) fn type_mac(key: &RowKey, slug: &str, definition: &str) -> Vec<u8> {
    key.tag(&type_mac_message(slug, definition))
}

fn type_mac_message(slug: &str, definition: &str) -> Vec<u8> {
    serde_json::json!(["blockyard/v1/type", slug, definition])
        .to_string()
        .into_bytes()
}

impl LocalBlocks {
    pub(super) fn row_key(&self) -> Result<RowKey> {
        Ok(self.keys.master(&self.store)?.row_key())
    }

    /// A stored user type, if the master key bound it (a type row written or edited
    /// without the master key could point `block test` and its secret anywhere).
    fn verified_type(&self, (slug, definition, mac): StoredType) -> Result<BlockType> {
        let bound = mac.is_some_and(|tag| {
            self.row_key()
                .is_ok_and(|key| key.verifies(&type_mac_message(&slug, &definition), &tag))
        });
        if !bound {
            return Err(Error::DecryptionFailed(format!(
                "block type {slug} is not bound to this master key: its definition was \
                 written without it (tampered with); register it again"
            )));
        }
        BlockType::from_json(&definition, false)
    }
}

impl BlockSource for LocalBlocks {
    /// Every type: built-in first, then registered ones, by slug.
    fn block_types(&self) -> Result<Vec<BlockType>> {
        let mut types = builtin_types();
        for stored in self.store.block_type_definitions()? {
            types.push(self.verified_type(stored)?);
        }
        Ok(types)
    }

    fn block_type(&self, slug: &str) -> Result<BlockType> {
        if let Some(ty) = builtin_type(slug) {
            return Ok(ty);
        }
        // Slugs follow the name rules; anything else is no type (and never a query).
        if BlockName::parse(slug).is_err() {
            return Err(Error::UnknownBlockType(slug.chars().take(140).collect()));
        }
        match self.store.block_type_definition(slug)? {
            Some(stored) => self.verified_type(stored),
            None => Err(Error::UnknownBlockType(slug.to_owned())),
        }
    }

    /// Registers (or with `replace`, replaces) a user type. Built-in types cannot be
    /// replaced.
    fn register_type(
        &self,
        def: BlockTypeDef,
        replace: bool,
        record: Option<&ChangeRecord>,
    ) -> Result<BlockType> {
        // Every write refuses a wrong master key first.
        self.keys.master(&self.store)?;
        let ty = BlockType::from_def(def, false)?;
        if builtin_type(ty.slug()).is_some() {
            return Err(Error::BlockTypeAlreadyExists(ty.slug().to_owned()));
        }
        let text =
            serde_json::to_string(&ty.def).map_err(|e| Error::InvalidBlockType(e.to_string()))?;
        let mac = type_mac(&self.row_key()?, ty.slug(), &text);
        self.store.save_block_type(
            ty.slug(),
            &text,
            &mac,
            replace,
            now_millis(),
            audit_row(record).as_ref(),
        )?;
        Ok(ty)
    }

    /// Creates a block after validating it against its type; secrets are sealed.
    fn create_block(&self, new: NewBlock, record: Option<&ChangeRecord>) -> Result<Block> {
        if let Some(id) = new.id.filter(|_| !new.replace_deleted) {
            let id = id.to_string();
            if let Some(name) = self.store.deleted_with_ids(&[&id])?.remove(&id) {
                let how = "pass --replace-deleted (replace_deleted: true)";
                return Err(replaces_deleted(&id, &name, how));
            }
        }
        let ty = self.block_type(&new.block_type)?;
        ty.validate(&new.document)?;
        let (masked, secrets) = split_secrets(&ty, new.document)?;
        if secrets.holds_mask() {
            return Err(Error::InvalidInput(format!(
                "block {} would store {} as a secret: that is the mask a masked document \
                 shows, not a secret; send the secret itself (or leave the field out)",
                new.name,
                crate::document::MASK
            )));
        }
        let now = now_millis();
        let row = self.sealed(
            BlockRow {
                id: new.id.unwrap_or_else(uuid::Uuid::new_v4).to_string(),
                name: new.name.to_string(),
                block_type: ty.slug().to_owned(),
                version: 1,
                data: masked.to_string(),
                sealed_secrets: None,
                key_id: None,
                created_at: now,
                updated_at: now,
            },
            &secrets,
        )?;
        self.store.insert_block(&row, audit_row(record).as_ref())?;
        block_from_row(row, Some(secrets))
    }

    /// Loads a block with its secrets decrypted.
    fn load_block(&self, name: &BlockName) -> Result<Block> {
        read_twice(|| load_block(&self.store, &self.keys, name))
    }

    /// Loads a block with secrets masked; nothing is decrypted.
    fn get_block_masked(&self, name: &BlockName) -> Result<Block> {
        read_twice(|| block_from_row(self.find_row(name)?, None))
    }

    fn list_blocks(&self, filter: &BlockFilter) -> Result<Vec<BlockSummary>> {
        if filter.matches_nothing() {
            return Ok(Vec::new());
        }
        Ok(self
            .store
            .list_blocks(filter)?
            .into_iter()
            .map(BlockSummary::from)
            .collect())
    }

    /// Replaces a block's document if it is still at `expected_version` (the version
    /// read, when `None` is given, which still refuses a concurrent change).
    fn update_block(
        &self,
        name: &BlockName,
        document: Value,
        expected_version: Option<i64>,
        record: Option<&ChangeRecord>,
    ) -> Result<Block> {
        let current = self.find_row(name)?;
        let expected = check_version(&current, expected_version)?;
        let ty = self.block_type(&current.block_type)?;
        ty.validate(&document)?;
        let (masked, secrets) = split_secrets(&ty, document)?;
        // An update that changes nothing writes no version: the block is returned as it
        // is (same version), which callers report as "unchanged".
        let current_secrets = self.keys.open(&self.store, &(&current).into())?;
        if current_secrets == secrets
            && serde_json::from_str::<Value>(&current.data).is_ok_and(|d| d == masked)
        {
            return block_from_row(current, Some(secrets));
        }
        let next = BlockRow {
            version: current.version + 1,
            data: masked.to_string(),
            updated_at: now_millis(),
            ..current
        };
        let row = self.sealed(next, &secrets)?;
        self.store.update_block(
            &row,
            expected,
            ChangeKind::Update,
            audit_row(record).as_ref(),
        )?;
        block_from_row(row, Some(secrets))
    }

    fn rename_block(
        &self,
        name: &BlockName,
        new_name: &BlockName,
        expected_version: Option<i64>,
        record: Option<&ChangeRecord>,
    ) -> Result<Block> {
        let current = self.find_row(name)?;
        let expected = check_version(&current, expected_version)?;
        // The secrets are bound to the version, so a new version re-seals them (and a
        // wrong master key is refused before anything is written).
        let secrets = self.keys.open(&self.store, &(&current).into())?;
        let next = BlockRow {
            name: new_name.to_string(),
            version: current.version + 1,
            updated_at: now_millis(),
            ..current
        };
        let row = self.sealed(next, &secrets)?;
        self.store.update_block(
            &row,
            expected,
            ChangeKind::Rename,
            audit_row(record).as_ref(),
        )?;
        block_from_row(row, None)
    }

    fn delete_block(
        &self,
        name: &BlockName,
        expected_version: Option<i64>,
        record: Option<&ChangeRecord>,
    ) -> Result<Block> {
        self.keys.master(&self.store)?;
        let current = self.find_row(name)?;
        let expected = check_version(&current, expected_version)?;
        self.store
            .delete_block(&current, expected, audit_row(record).as_ref())?;
        block_from_row(current, None)
    }

    /// Every kept version of a block, oldest first, secrets masked.
    fn block_history(&self, name: &BlockName) -> Result<Vec<BlockVersion>> {
        let current = self.find_row(name)?;
        let (store, keys) = (&self.store, &self.keys);
        let mut versions = Vec::new();
        let mut previous: Option<(Value, crate::document::Secrets)> = None;
        for row in store.block_versions(&current.id)? {
            if row.change == DELETED {
                // The deletion mark holds no secrets: what changed is "deleted", and
                // an undelete compares with the version before it.
                versions.push(BlockVersion::try_from(row)?);
                continue;
            }
            let secrets = keys.open(store, &(&row).into())?;
            let mut version = BlockVersion::try_from(row)?;
            if let Some((data, before)) = &previous {
                version.changes =
                    crate::document::changes(data, Some(before), &version.data, Some(&secrets));
            }
            previous = Some((version.data.clone(), secrets));
            versions.push(version);
        }
        Ok(versions)
    }

    fn rollback_block(
        &self,
        name: &BlockName,
        to: i64,
        expected_version: Option<i64>,
        record: Option<&ChangeRecord>,
    ) -> Result<Block> {
        let current = self.find_row(name)?;
        let expected = check_version(&current, expected_version)?;
        let target = match self.store.block_version(&current.id, to)? {
            Some(row) if row.change != DELETED => row,
            _ => {
                return Err(Error::InvalidInput(format!(
                    "block {name:?} has no version {to} to roll back to; `blockyard block \
                     history {name}` lists them"
                )));
            }
        };
        let secrets = self.keys.open(&self.store, &(&target).into())?;
        let next = BlockRow {
            version: current.version + 1,
            block_type: target.block_type,
            data: target.data,
            updated_at: now_millis(),
            ..current
        };
        let ty = self.block_type(&next.block_type)?;
        let mut document = parse_stored_data(&next.data, name)?;
        crate::document::merge_secrets(&mut document, &secrets);
        ty.validate(&document)?;
        let row = self.sealed(next, &secrets)?;
        self.store.update_block(
            &row,
            expected,
            ChangeKind::Rollback,
            audit_row(record).as_ref(),
        )?;
        block_from_row(row, Some(secrets))
    }

    fn undelete_block(&self, name: &BlockName, record: Option<&ChangeRecord>) -> Result<Block> {
        let mark = self
            .store
            .find_deleted(name.as_str())?
            .ok_or_else(|| Error::BlockNotFound(format!("{name} (deleted)")))?;
        let last = self.last_before_deletion(&mark)?;
        let secrets = self.keys.open(&self.store, &(&last).into())?;
        let created_at = self
            .store
            .block_version(&mark.block_id, 1)?
            .map_or(last.created_at, |first| first.created_at);
        let row = BlockRow {
            id: mark.block_id.clone(),
            name: name.to_string(),
            block_type: last.block_type,
            version: mark.version + 1,
            data: last.data,
            sealed_secrets: None,
            key_id: None,
            created_at,
            updated_at: now_millis(),
        };
        let row = self.sealed(row, &secrets)?;
        self.store.restore_block(&row, audit_row(record).as_ref())?;
        block_from_row(row, Some(secrets))
    }

    fn purge_block(&self, name: &BlockName, record: Option<&ChangeRecord>) -> Result<String> {
        self.keys.master(&self.store)?;
        let id = match self.store.find_block(name)? {
            Some(row) => row.id,
            None => {
                self.store
                    .find_deleted(name)?
                    .ok_or_else(|| Error::BlockNotFound(name.to_string()))?
                    .block_id
            }
        };
        self.store.purge_block(&id, audit_row(record).as_ref())?;
        Ok(id)
    }
}

fn find_row(store: &Store, name: &BlockName) -> Result<BlockRow> {
    store
        .find_block(name.as_str())?
        .ok_or_else(|| Error::BlockNotFound(name.to_string()))
}

fn load_block(store: &Store, keys: &KeyManager, name: &BlockName) -> Result<Block> {
    let row = find_row(store, name)?;
    let secrets = keys.open(store, &(&row).into())?;
    block_from_row(row, Some(secrets))
}

/// The audit record a change commits with: it succeeded, now.
pub(super) fn audit_row(record: Option<&ChangeRecord>) -> Option<NewAuditRow> {
    record.map(|r| {
        NewAuditRow::single(
            now_millis(),
            r.request_id.clone(),
            r.actor.clone(),
            r.action.into(),
            Some(r.subject.clone()),
            "ok".into(),
        )
    })
}

fn check_version(current: &BlockRow, expected: Option<i64>) -> Result<i64> {
    match expected {
        Some(v) if v != current.version => Err(Error::VersionConflict {
            name: current.name.clone(),
            expected: v,
            actual: current.version,
        }),
        Some(v) => Ok(v),
        None => Ok(current.version),
    }
}

/// The block a stored row holds, with its secrets if they were opened.
pub(super) fn block_from_row(
    row: BlockRow,
    secrets: Option<crate::document::Secrets>,
) -> Result<Block> {
    let masked = parse_stored_data(&row.data, &row.name)?;
    Ok(Block::from_parts(BlockMeta::from(row), masked, secrets))
}
