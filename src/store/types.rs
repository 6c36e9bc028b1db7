//! Registered block types: their definitions as JSON text, by slug, each with the MAC
//! that binds it to the master key (checked by the registry).

use diesel::prelude::*;

use super::Store;
use super::schema::block_types::dsl as t;
use crate::error::{Error, Result};

/// A registered type as stored: its definition as JSON text.
#[derive(Clone, Debug, Queryable, Insertable, serde::Serialize, serde::Deserialize)]
#[diesel(table_name = super::schema::block_types)]
pub struct TypeRow {
    pub slug: String,
    pub definition: String,
    pub created_at: i64,
    pub updated_at: i64,
    /// HMAC of the slug and definition under the master key's row key; absent in rows
    /// made before types were bound.
    #[serde(default, with = "super::backup::base64_bytes::option")]
    pub mac: Option<Vec<u8>>,
}

/// A registered type's definition and the MAC stored with it.
pub type StoredType = (String, String, Option<Vec<u8>>);

impl Store {
    /// Every registered type (slug, definition, MAC), by slug.
    pub fn block_type_definitions(&self) -> Result<Vec<StoredType>> {
        let mut conn = self.conn()?;
        Ok(t::block_types
            .select((t::slug, t::definition, t::mac))
            .order(t::slug.asc())
            .load(&mut *conn)?)
    }

    pub fn block_type_definition(&self, slug: &str) -> Result<Option<StoredType>> {
        let mut conn = self.conn()?;
        Ok(t::block_types
            .find(slug)
            .select((t::slug, t::definition, t::mac))
            .first(&mut *conn)
            .optional()?)
    }

    /// Sets the MAC of every type that has none (the migration that binds types to the
    /// master key); how many.
    pub fn bind_unbound_types(&self, mac: impl Fn(&str, &str) -> Vec<u8>) -> Result<usize> {
        let mut conn = self.conn()?;
        conn.transaction::<_, Error, _>(|conn| {
            let rows: Vec<(String, String)> = t::block_types
                .filter(t::mac.is_null())
                .select((t::slug, t::definition))
                .load(conn)?;
            for (slug, definition) in &rows {
                diesel::update(t::block_types.find(slug))
                    .set(t::mac.eq(Some(mac(slug, definition))))
                    .execute(conn)?;
            }
            Ok(rows.len())
        })
    }

    /// Stores a type's definition: replaces the one of the same slug if `replace`,
    /// else `BLOCK_TYPE_ALREADY_EXISTS` when there is one.
    pub fn save_block_type(
        &self,
        slug: &str,
        definition: &str,
        mac: &[u8],
        replace: bool,
        now: i64,
        audit: Option<&super::NewAuditRow>,
    ) -> Result<()> {
        let mut conn = self.conn()?;
        conn.transaction(|conn| {
            let updated = match replace {
                true => diesel::update(t::block_types.find(slug))
                    .set((
                        t::definition.eq(definition),
                        t::mac.eq(Some(mac)),
                        t::updated_at.eq(now),
                    ))
                    .execute(conn)?,
                false => 0,
            };
            if updated == 0 {
                diesel::insert_into(t::block_types)
                    .values((
                        t::slug.eq(slug),
                        t::definition.eq(definition),
                        t::created_at.eq(now),
                        t::updated_at.eq(now),
                        t::mac.eq(Some(mac)),
                    ))
                    .execute(conn)
                    .map_err(|err| match err {
                        diesel::result::Error::DatabaseError(
                            diesel::result::DatabaseErrorKind::UniqueViolation,
                            _,
                        ) => Error::BlockTypeAlreadyExists(slug.to_owned()),
                        other => other.into(),
                    })?;
            }
            super::blocks::record_change(conn, audit)
        })
    }
}
