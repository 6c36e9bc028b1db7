//! The registry service: the one place that handles plaintext secrets and the store
//! together. Interfaces (the CLI, the HTTP server, flows through the library) call it;
//! it validates documents against their types, seals and opens secrets, and keeps every
//! change as a version.

mod connections;
mod keys;

pub use crate::block::{Block, BlockMeta, BlockSummary, BlockVersion, NewBlock};
pub use keys::{InitReport, KeyStatus, RotationReport};

use std::sync::Arc;

use serde_json::Value;

use crate::block::{BlockFilter, parse_stored_data};
use crate::config::Config;
use crate::connect::pool::PoolCache;
use crate::document::split_secrets;
use crate::error::{Error, Result};
use crate::name::BlockName;
use crate::remote::RemoteClient;
use crate::store::{BlockRow, ChangeKind, Store, schema};
use crate::time::now_millis;
use crate::types::{BlockType, BlockTypeDef, builtin_type, builtin_types};

/// The registry: a store, the configured master key, the block types, and the pools
/// handed out by block name. Cloning is cheap and clones share everything.
#[derive(Clone, Debug)]
pub struct Registry {
    source: Source,
    pools: Arc<PoolCache>,
}

/// Where blocks live: a store opened here, or a Blockyard server (remote mode).
#[derive(Clone, Debug)]
enum Source {
    Local {
        store: Store,
        keys: Arc<keys::KeyManager>,
    },
    Remote(Arc<RemoteClient>),
}

impl Registry {
    /// Opens the configured store. A brand-new store is migrated and given a master key
    /// and a first data key; the report says where they are.
    pub fn open(config: Config) -> Result<(Registry, Option<InitReport>)> {
        let pools = Arc::new(PoolCache::new(config.pool_refresh));
        if let Some(remote) = config.remote {
            let client = Arc::new(RemoteClient::new(remote)?);
            return Ok((
                Registry {
                    source: Source::Remote(client),
                    pools,
                },
                None,
            ));
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
        let source = Source::Local { store, keys };
        Ok((Registry { source, pools }, report))
    }

    /// The local store; an error in remote mode.
    pub fn store(&self) -> Result<&Store> {
        self.local().map(|(store, _)| store)
    }

    /// The server this registry talks to, in remote mode.
    pub fn remote(&self) -> Option<&RemoteClient> {
        match &self.source {
            Source::Remote(client) => Some(client),
            Source::Local { .. } => None,
        }
    }

    fn local(&self) -> Result<(&Store, &Arc<keys::KeyManager>)> {
        match &self.source {
            Source::Local { store, keys } => Ok((store, keys)),
            Source::Remote(client) => Err(Error::Config(format!(
                "this works on a local store only, and BLOCKYARD_URL points at the server {}; \
                 unset it (and --server-url) to use the store directly",
                client.base()
            ))),
        }
    }

    // ---- block types ----------------------------------------------------------

    /// Every type: built-in first, then registered ones, by slug.
    pub fn block_types(&self) -> Result<Vec<BlockType>> {
        if let Some(r) = self.remote() {
            return r.block_types();
        }
        use diesel::prelude::*;
        use schema::block_types::dsl as t;
        let mut types = builtin_types();
        let mut conn = self.local()?.0.conn()?;
        let stored: Vec<String> = t::block_types
            .select(t::definition)
            .order(t::slug.asc())
            .load(&mut *conn)?;
        for text in stored {
            types.push(BlockType::from_json(&text, false)?);
        }
        Ok(types)
    }

    pub fn block_type(&self, slug: &str) -> Result<BlockType> {
        if let Some(r) = self.remote() {
            return r.block_type(slug);
        }
        use diesel::prelude::*;
        use schema::block_types::dsl as t;
        if let Some(ty) = builtin_type(slug) {
            return Ok(ty);
        }
        let mut conn = self.local()?.0.conn()?;
        let text: Option<String> = t::block_types
            .find(slug)
            .select(t::definition)
            .first(&mut *conn)
            .optional()?;
        match text {
            Some(text) => BlockType::from_json(&text, false),
            None => Err(Error::UnknownBlockType(slug.to_owned())),
        }
    }

    /// Registers (or with `replace`, replaces) a user type. Built-in types cannot be
    /// replaced.
    pub fn register_type(&self, def: BlockTypeDef, replace: bool) -> Result<BlockType> {
        if let Some(r) = self.remote() {
            return r.register_type(def, replace);
        }
        use diesel::prelude::*;
        use schema::block_types::dsl as t;
        let ty = BlockType::from_def(def, false)?;
        if builtin_type(ty.slug()).is_some() {
            return Err(Error::BlockTypeAlreadyExists(ty.slug().to_owned()));
        }
        let text =
            serde_json::to_string(&ty.def).map_err(|e| Error::InvalidBlockType(e.to_string()))?;
        let now = now_millis();
        let mut conn = self.local()?.0.conn()?;
        let updated = if replace {
            diesel::update(t::block_types.find(ty.slug()))
                .set((t::definition.eq(&text), t::updated_at.eq(now)))
                .execute(&mut *conn)?
        } else {
            0
        };
        if updated == 0 {
            diesel::insert_into(t::block_types)
                .values((
                    t::slug.eq(ty.slug()),
                    t::definition.eq(&text),
                    t::created_at.eq(now),
                    t::updated_at.eq(now),
                ))
                .execute(&mut *conn)
                .map_err(|err| match err {
                    diesel::result::Error::DatabaseError(
                        diesel::result::DatabaseErrorKind::UniqueViolation,
                        _,
                    ) => Error::BlockTypeAlreadyExists(ty.slug().to_owned()),
                    other => other.into(),
                })?;
        }
        Ok(ty)
    }

    // ---- blocks -----------------------------------------------------------------

    /// Creates a block after validating it against its type; secrets are sealed.
    pub fn create_block(&self, new: NewBlock) -> Result<Block> {
        if let Some(r) = self.remote() {
            return r.create_block(new);
        }
        let ty = self.block_type(&new.block_type)?;
        ty.validate(&new.document)?;
        let (masked, secrets) = split_secrets(&ty, new.document)?;
        let id = new.id.unwrap_or_else(uuid::Uuid::new_v4).to_string();
        let (sealed_secrets, key_id) = self.local()?.1.seal(self.local()?.0, &id, &secrets)?;
        let now = now_millis();
        let row = BlockRow {
            id,
            name: new.name.to_string(),
            block_type: ty.slug().to_owned(),
            version: 1,
            data: masked.to_string(),
            sealed_secrets,
            key_id,
            created_at: now,
            updated_at: now,
        };
        self.local()?.0.insert_block(&row)?;
        block_from_row(row, Some(secrets))
    }

    /// Loads a block with its secrets decrypted.
    pub fn load_block(&self, name: &str) -> Result<Block> {
        if let Some(r) = self.remote() {
            return r.load_block(name);
        }
        let (store, keys) = self.local()?;
        load_block(store, keys, name)
    }

    /// Loads a block with secrets masked; nothing is decrypted.
    pub fn get_block_masked(&self, name: &str) -> Result<Block> {
        if let Some(r) = self.remote() {
            return r.get_block_masked(name);
        }
        block_from_row(self.find_row(name)?, None)
    }

    pub fn list_blocks(&self, filter: &BlockFilter) -> Result<Vec<BlockSummary>> {
        if let Some(r) = self.remote() {
            return r.list_blocks(filter);
        }
        Ok(self
            .local()?
            .0
            .list_blocks(filter)?
            .into_iter()
            .map(BlockSummary::from)
            .collect())
    }

    /// Replaces a block's document if it is still at `expected_version` (the version
    /// read, when `None` is given, which still refuses a concurrent change).
    pub fn update_block(
        &self,
        name: &str,
        document: Value,
        expected_version: Option<i64>,
    ) -> Result<Block> {
        if let Some(r) = self.remote() {
            return r.update_block(name, document, expected_version);
        }
        let current = self.find_row(name)?;
        let expected = check_version(&current, expected_version)?;
        let ty = self.block_type(&current.block_type)?;
        ty.validate(&document)?;
        let (masked, secrets) = split_secrets(&ty, document)?;
        let (store, keys) = self.local()?;
        // An update that changes nothing writes no version: the block is returned as it
        // is (same version), which callers report as "unchanged".
        let current_secrets = keys.open(
            store,
            &current.id,
            current.sealed_secrets.as_deref(),
            current.key_id.as_deref(),
        )?;
        if current_secrets == secrets
            && serde_json::from_str::<Value>(&current.data).is_ok_and(|d| d == masked)
        {
            return block_from_row(current, Some(secrets));
        }
        let (sealed_secrets, key_id) = keys.seal(store, &current.id, &secrets)?;
        let row = BlockRow {
            version: current.version + 1,
            data: masked.to_string(),
            sealed_secrets,
            key_id,
            updated_at: now_millis(),
            ..current
        };
        self.local()?
            .0
            .update_block(&row, expected, ChangeKind::Update)?;
        block_from_row(row, Some(secrets))
    }

    pub fn rename_block(
        &self,
        name: &str,
        new_name: &BlockName,
        expected_version: Option<i64>,
    ) -> Result<Block> {
        if let Some(r) = self.remote() {
            return r.rename_block(name, new_name, expected_version);
        }
        let current = self.find_row(name)?;
        let expected = check_version(&current, expected_version)?;
        let row = BlockRow {
            name: new_name.to_string(),
            version: current.version + 1,
            updated_at: now_millis(),
            ..current
        };
        self.local()?
            .0
            .update_block(&row, expected, ChangeKind::Rename)?;
        block_from_row(row, None)
    }

    pub fn delete_block(&self, name: &str, expected_version: Option<i64>) -> Result<Block> {
        if let Some(r) = self.remote() {
            return r.delete_block(name, expected_version);
        }
        self.verify_master_key()?;
        let current = self.find_row(name)?;
        let expected = check_version(&current, expected_version)?;
        self.local()?
            .0
            .delete_block(&current.id, &current.name, expected)?;
        block_from_row(current, None)
    }

    /// Every kept version of a block, oldest first, secrets masked.
    pub fn block_history(&self, name: &str) -> Result<Vec<BlockVersion>> {
        if let Some(r) = self.remote() {
            return r.block_history(name);
        }
        let current = self.find_row(name)?;
        let (store, keys) = self.local()?;
        let mut versions = Vec::new();
        let mut previous: Option<(Value, crate::document::Secrets)> = None;
        for row in store.block_versions(&current.id)? {
            let secrets = keys.open(
                store,
                &row.block_id,
                row.sealed_secrets.as_deref(),
                row.key_id.as_deref(),
            )?;
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

    fn find_row(&self, name: &str) -> Result<BlockRow> {
        find_row(self.local()?.0, name)
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

fn find_row(store: &Store, name: &str) -> Result<BlockRow> {
    let name = BlockName::parse(name)?;
    store
        .find_block(name.as_str())?
        .ok_or_else(|| Error::BlockNotFound(name.to_string()))
}

fn load_block(store: &Store, keys: &keys::KeyManager, name: &str) -> Result<Block> {
    let row = find_row(store, name)?;
    let secrets = keys.open(
        store,
        &row.id,
        row.sealed_secrets.as_deref(),
        row.key_id.as_deref(),
    )?;
    block_from_row(row, Some(secrets))
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
fn block_from_row(row: BlockRow, secrets: Option<crate::document::Secrets>) -> Result<Block> {
    let masked = parse_stored_data(&row.data, &row.name)?;
    Ok(Block::from_parts(row.meta(), masked, secrets))
}
