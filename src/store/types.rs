//! Registered block types: their definitions as JSON text, by slug.

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
}

impl Store {
    /// Every registered type's definition, by slug.
    pub fn block_type_definitions(&self) -> Result<Vec<String>> {
        let mut conn = self.conn()?;
        Ok(t::block_types
            .select(t::definition)
            .order(t::slug.asc())
            .load(&mut *conn)?)
    }

    pub fn block_type_definition(&self, slug: &str) -> Result<Option<String>> {
        let mut conn = self.conn()?;
        Ok(t::block_types
            .find(slug)
            .select(t::definition)
            .first(&mut *conn)
            .optional()?)
    }

    /// Stores a type's definition: replaces the one of the same slug if `replace`,
    /// else `BLOCK_TYPE_ALREADY_EXISTS` when there is one.
    pub fn save_block_type(
        &self,
        slug: &str,
        definition: &str,
        replace: bool,
        now: i64,
        audit: Option<&super::NewAuditRow>,
    ) -> Result<()> {
        let mut conn = self.conn()?;
        conn.transaction(|conn| {
            let updated = match replace {
                true => diesel::update(t::block_types.find(slug))
                    .set((t::definition.eq(definition), t::updated_at.eq(now)))
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
