//! The whole store as rows, for `backup` and `restore`: read in one snapshot transaction
//! while servers keep running, and written back into an empty store of either backend
//! in one transaction. Sealed secrets and wrapped data keys travel as they are stored:
//! this module never sees a key.

use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use serde::{Deserialize, Serialize};

use super::schema::{
    api_tokens, audit_log, block_types, block_versions, blocks, data_keys, leases, store_meta,
};
use super::{
    BlockRow, DataKeyRow, LeaseRow, Store, StoreConnection, TokenRow, TypeRow, VersionRow,
};
use crate::db::Backend;
use crate::error::{Error, Result};

/// Rows written per `INSERT` on restore (well under SQLite's 32,766 bound parameters
/// for the widest table).
const RESTORE_BATCH: usize = 500;

#[derive(Clone, Debug, Queryable, Insertable, Serialize, Deserialize)]
#[diesel(table_name = store_meta)]
pub struct MetaRow {
    pub key: String,
    pub value: String,
}

/// An audit record with its id, as the table holds it.
#[derive(Clone, Debug, Queryable, Insertable, Serialize, Deserialize)]
#[diesel(table_name = audit_log)]
pub struct AuditRecord {
    pub id: i64,
    pub at: i64,
    pub request_id: String,
    pub actor: String,
    pub action: String,
    pub block: Option<String>,
    pub outcome: String,
    /// Backups made before records had counts hold single events.
    #[serde(default = "one")]
    pub event_count: i64,
    /// Missing (0) in backups made before records had counts; restored as `at`.
    #[serde(default)]
    pub last_at: i64,
    #[serde(default)]
    pub last_request_id: Option<String>,
    #[serde(default)]
    pub open_until: Option<i64>,
    #[serde(default)]
    pub detail: Option<String>,
}

fn one() -> i64 {
    1
}

/// Every row of every table of the registry (not diesel's migration table: a restore
/// runs the target's own migrations).
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StoreRows {
    pub meta: Vec<MetaRow>,
    pub data_keys: Vec<DataKeyRow>,
    pub block_types: Vec<TypeRow>,
    pub blocks: Vec<BlockRow>,
    pub block_versions: Vec<VersionRow>,
    pub api_tokens: Vec<TokenRow>,
    pub audit_log: Vec<AuditRecord>,
    /// Leased users (absent in backups made before leases): restored with their
    /// state, so a restored store still revokes what it issued.
    #[serde(default)]
    pub leases: Vec<LeaseRow>,
}

impl StoreRows {
    /// How many rows, for a report.
    pub fn len(&self) -> usize {
        self.meta.len()
            + self.data_keys.len()
            + self.block_types.len()
            + self.blocks.len()
            + self.block_versions.len()
            + self.api_tokens.len()
            + self.audit_log.len()
            + self.leases.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl Store {
    /// Every row, read in one transaction: on SQLite (WAL) the read sees one snapshot
    /// while writers go on; on PostgreSQL the transaction is `REPEATABLE READ, READ
    /// ONLY`, one snapshot for every table.
    pub fn read_all(&self) -> Result<StoreRows> {
        let backend = self.url.backend();
        let mut conn = self.conn()?;
        conn.transaction::<_, Error, _>(|conn| {
            if backend == Backend::Postgres {
                conn.batch_execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")?;
            }
            Ok(StoreRows {
                meta: store_meta::table.order(store_meta::key).load(conn)?,
                data_keys: data_keys::table.order(data_keys::id).load(conn)?,
                block_types: block_types::table.order(block_types::slug).load(conn)?,
                blocks: blocks::table.order(blocks::id).load(conn)?,
                block_versions: block_versions::table
                    .order((block_versions::block_id, block_versions::version))
                    .load(conn)?,
                api_tokens: api_tokens::table.order(api_tokens::id).load(conn)?,
                audit_log: audit_log::table.order(audit_log::id).load(conn)?,
                leases: leases::table.order(leases::id).load(conn)?,
            })
        })
    }

    /// Which registry tables hold rows (an empty, migrated store answers none).
    pub fn tables_in_use(&self) -> Result<Vec<&'static str>> {
        let mut conn = self.conn()?;
        let conn = &mut *conn;
        let counts: [(&'static str, i64); 8] = [
            ("store_meta", store_meta::table.count().get_result(conn)?),
            ("data_keys", data_keys::table.count().get_result(conn)?),
            ("block_types", block_types::table.count().get_result(conn)?),
            ("blocks", blocks::table.count().get_result(conn)?),
            (
                "block_versions",
                block_versions::table.count().get_result(conn)?,
            ),
            ("api_tokens", api_tokens::table.count().get_result(conn)?),
            ("audit_log", audit_log::table.count().get_result(conn)?),
            ("leases", leases::table.count().get_result(conn)?),
        ];
        Ok(counts
            .into_iter()
            .filter(|(_, n)| *n > 0)
            .map(|(table, _)| table)
            .collect())
    }

    /// Writes every row into this (empty, migrated) store in one transaction: all of
    /// them or none. On PostgreSQL the audit log's id sequence then continues after the
    /// highest id restored (rows inserted with their ids do not advance it).
    pub fn write_all(&self, rows: &StoreRows, progress: &mut dyn FnMut(usize)) -> Result<()> {
        let backend = self.url.backend();
        let mut pooled = self.conn()?;
        let conn: &mut StoreConnection = &mut pooled;
        conn.transaction::<_, Error, _>(|conn| {
            insert_batches!(conn, store_meta::table, rows.meta, progress);
            insert_batches!(conn, data_keys::table, rows.data_keys, progress);
            insert_batches!(conn, block_types::table, rows.block_types, progress);
            insert_batches!(conn, blocks::table, rows.blocks, progress);
            insert_batches!(conn, block_versions::table, rows.block_versions, progress);
            insert_batches!(conn, api_tokens::table, rows.api_tokens, progress);
            let audit: Vec<AuditRecord> = rows
                .audit_log
                .iter()
                .map(|r| AuditRecord {
                    last_at: r.last_at.max(r.at),
                    ..r.clone()
                })
                .collect();
            insert_batches!(conn, audit_log::table, audit, progress);
            insert_batches!(conn, leases::table, rows.leases, progress);
            if backend == Backend::Postgres {
                conn.batch_execute(
                    "SELECT setval(pg_get_serial_sequence('audit_log', 'id'), \
                     COALESCE((SELECT MAX(id) FROM audit_log), 0) + 1, false)",
                )?;
            }
            Ok(())
        })
    }
}

/// Inserts `rows` into `table` in batches of [`RESTORE_BATCH`], reporting each (a macro:
/// diesel's insert bounds, written generically, do not resolve).
macro_rules! insert_batches {
    ($conn:expr, $table:expr, $rows:expr, $progress:expr) => {
        for batch in $rows.chunks(RESTORE_BATCH) {
            with_backend!($conn, c => diesel::insert_into($table).values(batch).execute(c)?);
            $progress(batch.len());
        }
    };
}
use insert_batches;

/// Byte columns (sealed secrets, wrapped keys, token hashes) as base64 in a backup.
pub(super) mod base64_bytes {
    use base64::Engine;
    use base64::engine::general_purpose::STANDARD;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&STANDARD.encode(bytes))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let text = String::deserialize(d)?;
        STANDARD.decode(text).map_err(serde::de::Error::custom)
    }

    pub mod option {
        use super::*;

        pub fn serialize<S: Serializer>(bytes: &Option<Vec<u8>>, s: S) -> Result<S::Ok, S::Error> {
            match bytes {
                Some(bytes) => super::serialize(bytes, s),
                None => s.serialize_none(),
            }
        }

        pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Vec<u8>>, D::Error> {
            Option::<String>::deserialize(d)?
                .map(|text| STANDARD.decode(text).map_err(serde::de::Error::custom))
                .transpose()
        }
    }
}
