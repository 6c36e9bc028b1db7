//! Rows of wrapped data keys.

use diesel::prelude::*;

use super::schema::data_keys::dsl as k;
use super::{Store, StoreConnection};
use crate::error::Result;

/// A data key as stored: wrapped by the master key.
#[derive(Clone, Queryable, Insertable, serde::Serialize, serde::Deserialize)]
#[diesel(table_name = super::schema::data_keys)]
pub struct DataKeyRow {
    pub id: String,
    #[serde(with = "super::backup::base64_bytes")]
    pub wrapped: Vec<u8>,
    pub active: bool,
    pub created_at: i64,
}

pub(super) fn insert(conn: &mut StoreConnection, row: &DataKeyRow) -> QueryResult<usize> {
    diesel::insert_into(k::data_keys)
        .values(row.clone())
        .execute(conn)
}

impl Store {
    pub fn data_keys(&self) -> Result<Vec<DataKeyRow>> {
        let mut conn = self.conn()?;
        Ok(k::data_keys.order(k::created_at.asc()).load(&mut *conn)?)
    }

    pub fn data_key(&self, id: &str) -> Result<Option<DataKeyRow>> {
        let mut conn = self.conn()?;
        Ok(k::data_keys.find(id).first(&mut *conn).optional()?)
    }

    pub fn active_data_key(&self) -> Result<Option<DataKeyRow>> {
        let mut conn = self.conn()?;
        Ok(k::data_keys
            .filter(k::active.eq(true))
            .first(&mut *conn)
            .optional()?)
    }

    /// Adds a new, not yet active, data key.
    pub fn add_data_key(&self, row: &DataKeyRow) -> Result<()> {
        let mut conn = self.conn()?;
        insert(&mut conn, row)?;
        Ok(())
    }

    /// Makes `id` the only active data key and deletes keys no row uses any more.
    /// Returns the number of keys deleted.
    pub fn activate_data_key(&self, id: &str) -> Result<usize> {
        use super::schema::{block_versions::dsl as v, blocks::dsl as b};
        let mut conn = self.conn()?;
        Ok(conn.transaction::<_, diesel::result::Error, _>(|conn| {
            diesel::update(k::data_keys)
                .set(k::active.eq(false))
                .execute(conn)?;
            diesel::update(k::data_keys.find(id))
                .set(k::active.eq(true))
                .execute(conn)?;
            let mut used: Vec<Option<String>> = b::blocks
                .select(b::key_id)
                .filter(b::key_id.is_not_null())
                .distinct()
                .load(conn)?;
            used.extend(
                v::block_versions
                    .select(v::key_id)
                    .filter(v::key_id.is_not_null())
                    .distinct()
                    .load::<Option<String>>(conn)?,
            );
            let used: Vec<String> = used.into_iter().flatten().collect();
            diesel::delete(k::data_keys.filter(k::id.ne(id)).filter(k::id.ne_all(used)))
                .execute(conn)
        })?)
    }
}
