//! Rows of blocks and their versions, with optimistic concurrency on updates.

use std::collections::HashMap;

use diesel::prelude::*;
use diesel::result::{DatabaseErrorKind, Error as DieselError};

use super::schema::{block_versions::dsl as v, blocks::dsl as b};
use super::{NewAuditRow, Store, StoreConnection};
use crate::block::{
    BlockFilter, BlockMeta, BlockStamp, BlockVersion, DeletedBlock, parse_stored_data,
};
use crate::error::{Error, Result};

/// A block as stored: public data as JSON text, secrets sealed.
#[derive(Clone, Queryable, Insertable, Selectable, serde::Serialize, serde::Deserialize)]
#[diesel(table_name = super::schema::blocks)]
pub struct BlockRow {
    pub id: String,
    pub name: String,
    pub block_type: String,
    pub version: i64,
    pub data: String,
    #[serde(with = "super::backup::base64_bytes::option")]
    pub sealed_secrets: Option<Vec<u8>>,
    pub key_id: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
}

/// The current stamp of each named block that exists. PostgreSQL answers in one query
/// (`name = ANY($1)`, one round trip); SQLite, in process, answers one cached statement
/// per distinct name faster than it prepares a new `IN (...)` list for each batch.
pub fn block_stamps(
    conn: &mut StoreConnection,
    names: &[&str],
) -> Result<HashMap<String, BlockStamp>> {
    let columns = (b::name, (b::id, b::version, b::updated_at));
    let rows: Vec<(String, BlockStamp)> = match conn {
        #[cfg(feature = "postgres")]
        StoreConnection::Postgresql(conn) => b::blocks
            .filter(b::name.eq_any(names))
            .select(columns)
            .load(conn)?,
        StoreConnection::Sqlite(conn) => {
            let mut rows = Vec::new();
            let mut distinct: Vec<&str> = names.to_vec();
            distinct.sort_unstable();
            distinct.dedup();
            for name in distinct {
                rows.extend(
                    b::blocks
                        .filter(b::name.eq(name))
                        .select(columns)
                        .get_result(conn)
                        .optional()?,
                );
            }
            rows
        }
        #[allow(unreachable_patterns)]
        _ => return Err(super::not_a_store()),
    };
    Ok(rows.into_iter().collect())
}

/// One kept version of a block.
#[derive(Clone, Queryable, Insertable, Selectable, serde::Serialize, serde::Deserialize)]
#[diesel(table_name = super::schema::block_versions)]
pub struct VersionRow {
    pub block_id: String,
    pub version: i64,
    pub name: String,
    pub block_type: String,
    pub data: String,
    #[serde(with = "super::backup::base64_bytes::option")]
    pub sealed_secrets: Option<Vec<u8>>,
    pub key_id: Option<String>,
    pub change: String,
    pub created_at: i64,
    /// Who made it: the audit actor of a change over HTTP; `None` when made on the
    /// store directly.
    pub actor: Option<String>,
}

/// What a version records about the change that made it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChangeKind {
    Create,
    Update,
    Rename,
    Rollback,
    Undelete,
    Import,
}

impl ChangeKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ChangeKind::Create => "create",
            ChangeKind::Update => "update",
            ChangeKind::Rename => "rename",
            ChangeKind::Rollback => "rollback",
            ChangeKind::Undelete => "undelete",
            ChangeKind::Import => "import",
        }
    }
}

/// The `change` of the version a delete writes: the block's last data, no secrets.
pub const DELETED: &str = "delete";

impl BlockRow {
    fn version_row(&self, change: ChangeKind, audit: Option<&NewAuditRow>) -> VersionRow {
        VersionRow {
            block_id: self.id.clone(),
            version: self.version,
            name: self.name.clone(),
            block_type: self.block_type.clone(),
            data: self.data.clone(),
            sealed_secrets: self.sealed_secrets.clone(),
            key_id: self.key_id.clone(),
            change: change.as_str().into(),
            created_at: self.updated_at,
            actor: audit.map(|a| a.actor.clone()),
        }
    }
}

/// Sealed secrets of one row (current or version), for key rotation.
#[derive(Clone, Queryable)]
pub struct SealedRow {
    pub block_id: String,
    pub block_type: String,
    pub version: i64,
    /// The masked document the secrets are bound to.
    pub data: String,
    pub sealed_secrets: Option<Vec<u8>>,
    pub key_id: Option<String>,
}

/// Writes a change's audit record inside the change's transaction; if it cannot be
/// written, the change rolls back and the error says the audit log is unavailable.
/// Inserts a new block row and its first version (`change`); a block created under a
/// deleted block's id (`--id`, an import) replaces it, so that block's history goes.
fn insert_new(
    conn: &mut super::StoreConnection,
    row: &BlockRow,
    change: ChangeKind,
    audit: Option<&NewAuditRow>,
) -> Result<()> {
    diesel::insert_into(b::blocks)
        .values(row.clone())
        .execute(conn)
        .map_err(|err| conflict_on_unique(err, &row.name))?;
    diesel::delete(v::block_versions.filter(v::block_id.eq(&row.id))).execute(conn)?;
    diesel::insert_into(v::block_versions)
        .values(row.version_row(change, audit))
        .execute(conn)?;
    Ok(())
}

/// Writes `row` over the block if it is still at `expected`; how many rows changed.
fn update_current(
    conn: &mut super::StoreConnection,
    row: &BlockRow,
    expected: i64,
) -> Result<usize> {
    diesel::update(b::blocks.find(&row.id).filter(b::version.eq(expected)))
        .set((
            b::name.eq(&row.name),
            b::version.eq(row.version),
            b::data.eq(&row.data),
            b::sealed_secrets.eq(&row.sealed_secrets),
            b::key_id.eq(&row.key_id),
            b::updated_at.eq(row.updated_at),
        ))
        .execute(conn)
        .map_err(|err| conflict_on_unique(err, &row.name))
}

pub(super) fn record_change(
    conn: &mut super::StoreConnection,
    audit: Option<&NewAuditRow>,
) -> Result<()> {
    let Some(row) = audit else {
        return Ok(());
    };
    super::lock_audit_order(conn)
        .map_err(|err| Error::AuditUnavailable(format!("the change was not made: {err}")))?;
    diesel::insert_into(super::schema::audit_log::table)
        .values(row.clone())
        .execute(conn)
        .map_err(|err| Error::AuditUnavailable(format!("the change was not made: {err}")))?;
    Ok(())
}

/// Rows per statement where many are written or looked up at once (well under SQLite's
/// 32,766 bound parameters for the widest table).
const BATCH: usize = 500;

/// [`insert_new`] for many blocks: a few statements per [`BATCH`] instead of three per
/// block.
fn insert_new_batch(
    conn: &mut StoreConnection,
    rows: &[BlockRow],
    change: ChangeKind,
    audit: Option<&NewAuditRow>,
) -> Result<()> {
    let ids: Vec<&str> = rows.iter().map(|r| r.id.as_str()).collect();
    let versions: Vec<VersionRow> = rows.iter().map(|r| r.version_row(change, audit)).collect();
    let taken = |err| conflict_on_unique(err, "a block of this batch (its name or id is taken)");
    with_backend!(conn, c => {
        diesel::insert_into(b::blocks).values(rows).execute(c).map_err(taken)?;
        diesel::delete(v::block_versions.filter(v::block_id.eq_any(&ids))).execute(c)?;
        diesel::insert_into(v::block_versions).values(&versions).execute(c)?;
    });
    Ok(())
}

fn conflict_on_unique(err: DieselError, name: &str) -> Error {
    match err {
        DieselError::DatabaseError(DatabaseErrorKind::UniqueViolation, _) => {
            Error::BlockAlreadyExists(name.to_owned())
        }
        other => other.into(),
    }
}

impl Store {
    /// Inserts a new block (version 1) and its first version row, with its audit
    /// record if given, all or nothing.
    pub fn insert_block(&self, row: &BlockRow, audit: Option<&NewAuditRow>) -> Result<()> {
        let mut conn = self.conn()?;
        conn.transaction::<_, Error, _>(|conn| {
            insert_new(conn, row, ChangeKind::Create, audit)?;
            record_change(conn, audit)
        })
    }

    pub fn find_block(&self, name: &str) -> Result<Option<BlockRow>> {
        let mut conn = self.conn()?;
        Ok(b::blocks
            .filter(b::name.eq(name))
            .first(&mut *conn)
            .optional()?)
    }

    pub fn list_blocks(&self, filter: &BlockFilter) -> Result<Vec<BlockRow>> {
        let mut conn = self.conn()?;
        let mut query = b::blocks.into_boxed();
        if let Some(t) = &filter.block_type {
            query = query.filter(b::block_type.eq(t.clone()));
        }
        // Names hold no LIKE wildcards except '_', which `literal` escapes.
        if let Some(prefix) = &filter.name_prefix {
            query = query.filter(b::name.like(format!("{}%", literal(prefix))).escape('\\'));
        }
        if let Some(text) = &filter.name_contains {
            query = query.filter(b::name.like(format!("%{}%", literal(text))).escape('\\'));
        }
        if let Some(glob) = &filter.name_glob {
            query = query.filter(b::name.like(literal(glob).replace('*', "%")).escape('\\'));
        }
        if let Some(after) = &filter.after {
            query = query.filter(b::name.gt(after.clone()));
        }
        if let Some(limit) = filter.limit {
            query = query.limit(limit);
        }
        Ok(query.order(b::name.asc()).load(&mut *conn)?)
    }

    /// The blocks of `block_type` whose document mentions the key `key` (its JSON text
    /// holds `"key"`): a cheap filter in the store before documents are parsed, so a
    /// periodic scan of a large registry reads only the few blocks it may concern.
    pub fn blocks_mentioning(&self, block_type: &str, key: &str) -> Result<Vec<BlockRow>> {
        let mut conn = self.conn()?;
        let escaped = literal(key);
        Ok(b::blocks
            .filter(b::block_type.eq(block_type))
            .filter(b::data.like(format!("%\"{escaped}\"%")).escape('\\'))
            .order(b::name.asc())
            .load(&mut *conn)?)
    }

    /// Replaces a block's current row if it is still at `expected_version`, keeping the
    /// new version in history. Nothing is written on a conflict.
    pub fn update_block(
        &self,
        row: &BlockRow,
        expected_version: i64,
        change: ChangeKind,
        audit: Option<&NewAuditRow>,
    ) -> Result<()> {
        let mut conn = self.conn()?;
        let outcome = conn.transaction::<_, Error, _>(|conn| {
            let updated = update_current(conn, row, expected_version)?;
            if updated == 0 {
                return Ok(false);
            }
            diesel::insert_into(v::block_versions)
                .values(row.version_row(change, audit))
                .execute(conn)?;
            record_change(conn, audit)?;
            Ok(true)
        });
        match outcome? {
            true => Ok(()),
            false => Err(self.explain_stale(&row.id, &row.name, expected_version)),
        }
    }

    /// Deletes a block if it is still at `expected_version`, keeping its history with
    /// one more version that marks the deletion (its last data, no secrets): the name is
    /// free again, and `undelete` can bring the block back.
    pub fn delete_block(
        &self,
        row: &BlockRow,
        expected_version: i64,
        audit: Option<&NewAuditRow>,
    ) -> Result<()> {
        let mut conn = self.conn()?;
        let deleted = conn.transaction::<_, Error, _>(|conn| {
            let n = delete_current(conn, row, expected_version, audit)?;
            if n > 0 {
                record_change(conn, audit)?;
            }
            Ok(n)
        })?;
        if deleted == 0 {
            return Err(self.explain_stale(&row.id, &row.name, expected_version));
        }
        Ok(())
    }

    /// The deletion mark of the block most recently deleted under `name`, if it has not
    /// come back or been replaced since.
    pub fn find_deleted(&self, name: &str) -> Result<Option<VersionRow>> {
        let mut conn = self.conn()?;
        let live = b::blocks.select(b::id);
        Ok(v::block_versions
            .filter(v::name.eq(name))
            .filter(v::change.eq(DELETED))
            .filter(v::block_id.ne_all(live))
            .order((v::created_at.desc(), v::version.desc()))
            .first(&mut *conn)
            .optional()?)
    }

    /// The deletion mark of each deleted block (history kept, no live row), by name:
    /// the newest mark of each block, matching `filter`'s type and name prefix.
    pub fn deleted_blocks(&self, filter: &BlockFilter) -> Result<Vec<VersionRow>> {
        let mut conn = self.conn()?;
        let live = b::blocks.select(b::id);
        let mut query = v::block_versions
            .filter(v::change.eq(DELETED))
            .filter(v::block_id.ne_all(live))
            .into_boxed();
        if let Some(t) = &filter.block_type {
            query = query.filter(v::block_type.eq(t.clone()));
        }
        if let Some(prefix) = &filter.name_prefix {
            query = query.filter(v::name.like(format!("{}%", literal(prefix))).escape('\\'));
        }
        let rows: Vec<VersionRow> = query
            .order((v::name.asc(), v::created_at.desc(), v::version.desc()))
            .load(&mut *conn)?;
        let mut seen = std::collections::HashSet::new();
        Ok(rows
            .into_iter()
            .filter(|row| seen.insert(row.block_id.clone()))
            .collect())
    }

    /// The names under which deleted blocks (their history kept, no live row) hold
    /// these ids: creating a block with one of them would purge that history.
    pub fn deleted_with_ids(
        &self,
        ids: &[&str],
    ) -> Result<std::collections::BTreeMap<String, String>> {
        let mut conn = self.conn()?;
        let mut found = std::collections::BTreeMap::new();
        for chunk in ids.chunks(BATCH) {
            let live = b::blocks.select(b::id);
            let rows: Vec<(String, String)> = v::block_versions
                .filter(v::block_id.eq_any(chunk))
                .filter(v::block_id.ne_all(live))
                .filter(v::change.eq(DELETED))
                .select((v::block_id, v::name))
                .load(&mut *conn)?;
            found.extend(rows);
        }
        Ok(found)
    }

    /// The current stamp of each named block that exists (one indexed query).
    pub fn stamps_of(&self, names: &[&str]) -> Result<HashMap<String, BlockStamp>> {
        let mut conn = self.conn()?;
        block_stamps(&mut conn, names)
    }

    pub fn find_block_by_id(&self, id: &str) -> Result<Option<BlockRow>> {
        let mut conn = self.conn()?;
        Ok(b::blocks.find(id).first(&mut *conn).optional()?)
    }

    /// The current blocks that have one of these names or ids, in a few queries (an
    /// import plans thousands of blocks at once).
    pub fn blocks_named_or_with_ids(&self, names: &[&str], ids: &[&str]) -> Result<Vec<BlockRow>> {
        let mut conn = self.conn()?;
        let conn: &mut StoreConnection = &mut conn;
        let mut rows: HashMap<String, BlockRow> = HashMap::new();
        for chunk in names.chunks(BATCH) {
            let found: Vec<BlockRow> =
                with_backend!(conn, c => b::blocks.filter(b::name.eq_any(chunk)).load(c)?);
            rows.extend(found.into_iter().map(|r| (r.id.clone(), r)));
        }
        for chunk in ids.chunks(BATCH) {
            let found: Vec<BlockRow> =
                with_backend!(conn, c => b::blocks.filter(b::id.eq_any(chunk)).load(c)?);
            rows.extend(found.into_iter().map(|r| (r.id.clone(), r)));
        }
        Ok(rows.into_values().collect())
    }

    /// Writes an import in one transaction: the user types it brings, the blocks it
    /// replaces (`replaced`, deleted as `delete_block` does), new blocks (`creates`)
    /// and new versions of existing ones (`updates`, each only if still at
    /// its expected version), calling
    /// `written` after each block. Any failure leaves the store as it was.
    pub fn import_rows(
        &self,
        replaced: &[BlockRow],
        creates: &[BlockRow],
        updates: &[(BlockRow, i64)],
        types: &[super::TypeRow],
        audit: Option<&NewAuditRow>,
        written: &mut dyn FnMut(usize),
    ) -> Result<()> {
        use super::schema::block_types::dsl as t;
        let mut conn = self.conn()?;
        conn.transaction::<_, Error, _>(|conn| {
            for row in types {
                diesel::insert_into(t::block_types)
                    .values(row.clone())
                    .execute(conn)?;
            }
            for row in replaced {
                if delete_current(conn, row, row.version, audit)? == 0 {
                    return Err(Error::VersionConflict {
                        name: row.name.clone(),
                        expected: row.version,
                        actual: row.version + 1,
                    });
                }
            }
            for chunk in creates.chunks(BATCH) {
                insert_new_batch(conn, chunk, ChangeKind::Import, audit)?;
                written(chunk.len());
            }
            for (row, expected) in updates {
                let n = update_current(conn, row, *expected)?;
                if n == 0 {
                    return Err(Error::VersionConflict {
                        name: row.name.clone(),
                        expected: *expected,
                        actual: row.version - 1,
                    });
                }
                diesel::insert_into(v::block_versions)
                    .values(row.version_row(ChangeKind::Import, audit))
                    .execute(conn)?;
                written(1);
            }
            record_change(conn, audit)
        })
    }

    /// One kept version of a block.
    pub fn block_version(&self, block_id: &str, version: i64) -> Result<Option<VersionRow>> {
        let mut conn = self.conn()?;
        Ok(v::block_versions
            .find((block_id, version))
            .first(&mut *conn)
            .optional()?)
    }

    /// Brings a deleted block back as `row` (its next version).
    pub fn restore_block(&self, row: &BlockRow, audit: Option<&NewAuditRow>) -> Result<()> {
        let mut conn = self.conn()?;
        conn.transaction::<_, Error, _>(|conn| {
            diesel::insert_into(b::blocks)
                .values(row.clone())
                .execute(conn)
                .map_err(|err| conflict_on_unique(err, &row.name))?;
            diesel::insert_into(v::block_versions)
                .values(row.version_row(ChangeKind::Undelete, audit))
                .execute(conn)?;
            record_change(conn, audit)
        })
    }

    /// Destroys a block (live or deleted) and every version of it, secrets included.
    pub fn purge_block(&self, block_id: &str, audit: Option<&NewAuditRow>) -> Result<()> {
        let mut conn = self.conn()?;
        conn.transaction::<_, Error, _>(|conn| {
            diesel::delete(b::blocks.find(block_id)).execute(conn)?;
            diesel::delete(v::block_versions.filter(v::block_id.eq(block_id))).execute(conn)?;
            record_change(conn, audit)
        })
    }

    fn explain_stale(&self, id: &str, name: &str, expected: i64) -> Error {
        let current = self.conn().and_then(|mut conn| {
            Ok(b::blocks
                .find(id)
                .select(b::version)
                .first::<i64>(&mut *conn)
                .optional()?)
        });
        match current {
            Ok(Some(actual)) => Error::VersionConflict {
                name: name.to_owned(),
                expected,
                actual,
            },
            Ok(None) => Error::BlockNotFound(name.to_owned()),
            Err(err) => err,
        }
    }

    pub fn block_versions(&self, block_id: &str) -> Result<Vec<VersionRow>> {
        let mut conn = self.conn()?;
        Ok(v::block_versions
            .filter(v::block_id.eq(block_id))
            .order(v::version.asc())
            .load(&mut *conn)?)
    }

    /// Counts rows (current and history) whose secrets are sealed under another key.
    pub fn count_sealed_not_under(&self, key_id: &str) -> Result<i64> {
        let mut conn = self.conn()?;
        let current: i64 = b::blocks
            .filter(b::key_id.is_not_null().and(b::key_id.ne(key_id)))
            .count()
            .get_result(&mut *conn)?;
        let history: i64 = v::block_versions
            .filter(v::key_id.is_not_null().and(v::key_id.ne(key_id)))
            .count()
            .get_result(&mut *conn)?;
        Ok(current + history)
    }

    /// Up to `limit` current rows and history rows sealed under a key other than `key_id`.
    pub fn sealed_not_under(
        &self,
        key_id: &str,
        limit: i64,
    ) -> Result<(Vec<SealedRow>, Vec<SealedRow>)> {
        let mut conn = self.conn()?;
        let current = b::blocks
            .filter(b::key_id.is_not_null().and(b::key_id.ne(key_id)))
            .select((
                b::id,
                b::block_type,
                b::version,
                b::data,
                b::sealed_secrets,
                b::key_id,
            ))
            .limit(limit)
            .load(&mut *conn)?;
        let history = v::block_versions
            .filter(v::key_id.is_not_null().and(v::key_id.ne(key_id)))
            .select((
                v::block_id,
                v::block_type,
                v::version,
                v::data,
                v::sealed_secrets,
                v::key_id,
            ))
            .limit(limit)
            .load(&mut *conn)?;
        Ok((current, history))
    }

    /// Stores re-sealed secrets in one transaction. Each row is replaced only if it still
    /// holds the ciphertext that was re-sealed (compare-and-swap on key id and version),
    /// so a concurrent update is never overwritten.
    pub fn replace_sealed(
        &self,
        current: &[(SealedRow, SealedRow)],
        history: &[(SealedRow, SealedRow)],
    ) -> Result<()> {
        let mut conn = self.conn()?;
        conn.transaction::<_, DieselError, _>(|conn| {
            for (old, new) in current {
                diesel::update(
                    b::blocks
                        .find(&old.block_id)
                        .filter(b::version.eq(old.version))
                        .filter(b::key_id.eq(&old.key_id)),
                )
                .set((
                    b::sealed_secrets.eq(&new.sealed_secrets),
                    b::key_id.eq(&new.key_id),
                ))
                .execute(conn)?;
            }
            for (old, new) in history {
                diesel::update(
                    v::block_versions
                        .find((&old.block_id, old.version))
                        .filter(v::key_id.eq(&old.key_id)),
                )
                .set((
                    v::sealed_secrets.eq(&new.sealed_secrets),
                    v::key_id.eq(&new.key_id),
                ))
                .execute(conn)?;
            }
            Ok(())
        })?;
        Ok(())
    }
}

impl From<BlockRow> for BlockMeta {
    fn from(row: BlockRow) -> Self {
        BlockMeta {
            id: row.id,
            name: crate::name::BlockName::stored(row.name),
            block_type: row.block_type,
            version: row.version,
            created_at: row.created_at,
            updated_at: row.updated_at,
        }
    }
}

impl From<VersionRow> for DeletedBlock {
    fn from(row: VersionRow) -> Self {
        DeletedBlock {
            id: row.block_id,
            name: crate::name::BlockName::stored(row.name),
            block_type: row.block_type,
            version: row.version,
            deleted_at: row.created_at,
            deleted_by: row.actor,
        }
    }
}

impl TryFrom<VersionRow> for BlockVersion {
    type Error = Error;
    fn try_from(row: VersionRow) -> Result<Self> {
        Ok(BlockVersion {
            data: parse_stored_data(&row.data, &row.name)?,
            version: row.version,
            name: row.name,
            block_type: row.block_type,
            change: row.change,
            created_at: row.created_at,
            actor: row.actor,
            changes: Vec::new(),
        })
    }
}

/// Deletes a block's current row if still at `expected_version` and adds the version
/// that marks its deletion (its last data, no secrets). How many rows went (0 or 1).
fn delete_current(
    conn: &mut StoreConnection,
    row: &BlockRow,
    expected_version: i64,
    audit: Option<&NewAuditRow>,
) -> Result<usize> {
    let marker = VersionRow {
        version: row.version + 1,
        sealed_secrets: None,
        key_id: None,
        change: DELETED.into(),
        created_at: crate::time::now_millis(),
        ..row.version_row(ChangeKind::Update, audit)
    };
    let n = diesel::delete(
        b::blocks
            .find(&row.id)
            .filter(b::version.eq(expected_version)),
    )
    .execute(conn)?;
    if n > 0 {
        diesel::insert_into(v::block_versions)
            .values(marker)
            .execute(conn)?;
    }
    Ok(n)
}

/// `text` for a LIKE pattern with a backslash as the escape: its backslashes, `_` and
/// `%` match only themselves.
fn literal(text: &str) -> String {
    text.replace('\\', "\\\\")
        .replace('_', "\\_")
        .replace('%', "\\%")
}
