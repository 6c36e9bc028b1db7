//! Rows of API tokens (only a hash of each secret) and of the audit log.

use diesel::prelude::*;
use serde::Serialize;

use super::schema::{api_tokens::dsl as t, audit_log::dsl as a};
use super::{Store, StoreConnection};
use crate::error::{Error, Result};

/// An API token as stored.
#[derive(Clone, Debug, Queryable, Insertable, Selectable, Serialize, serde::Deserialize)]
#[diesel(table_name = super::schema::api_tokens)]
pub struct TokenRow {
    pub id: String,
    pub name: String,
    #[serde(with = "super::backup::base64_bytes")]
    pub secret_hash: Vec<u8>,
    /// JSON array of scope strings.
    pub scopes: String,
    pub created_at: i64,
    pub expires_at: Option<i64>,
    pub revoked_at: Option<i64>,
}

/// An audit record to write.
#[derive(Clone, Debug, Insertable)]
#[diesel(table_name = super::schema::audit_log, treat_none_as_default_value = false)]
pub struct NewAuditRow {
    pub at: i64,
    pub request_id: String,
    pub actor: String,
    pub action: String,
    pub block: Option<String>,
    pub outcome: String,
}

/// An audit record as read back.
#[derive(Clone, Debug, Queryable, Serialize)]
pub struct AuditRow {
    pub id: i64,
    #[serde(with = "crate::time::rfc3339_millis")]
    pub at: i64,
    pub request_id: String,
    pub actor: String,
    pub action: String,
    pub block: Option<String>,
    pub outcome: String,
}

/// Which audit records to list (newest first).
#[derive(Clone, Debug, Default)]
pub struct AuditFilter {
    pub block: Option<String>,
    /// Unix milliseconds.
    pub since: Option<i64>,
    /// Records with an id below this (pagination, newest first).
    pub before_id: Option<i64>,
    pub limit: i64,
}

/// Writes audit records, all or none. PostgreSQL takes them in one statement. SQLite
/// takes them in chunks of fixed sizes (32, 8, 2, 1 rows), one statement each in one
/// transaction, so every statement is prepared once and reused: preparing a new
/// multi-row statement for each batch cost more than inserting it.
pub fn insert_audit(conn: &mut StoreConnection, rows: &[NewAuditRow]) -> Result<()> {
    match conn {
        #[cfg(feature = "postgres")]
        StoreConnection::Postgresql(conn) => {
            diesel::insert_into(a::audit_log)
                .values(rows)
                .execute(conn)?;
        }
        StoreConnection::Sqlite(conn) => {
            conn.transaction::<_, diesel::result::Error, _>(|conn| {
                let mut rest = rows;
                while !rest.is_empty() {
                    rest = match rest.len() {
                        32.. => insert_chunk::<32>(conn, rest)?,
                        8.. => insert_chunk::<8>(conn, rest)?,
                        2.. => insert_chunk::<2>(conn, rest)?,
                        _ => insert_chunk::<1>(conn, rest)?,
                    };
                }
                Ok(())
            })?;
        }
        #[allow(unreachable_patterns)]
        _ => return Err(super::not_a_store()),
    }
    Ok(())
}

/// Inserts the first `N` rows with a statement of a fixed shape (cached by diesel);
/// returns the rest.
fn insert_chunk<'a, const N: usize>(
    conn: &mut diesel::SqliteConnection,
    rows: &'a [NewAuditRow],
) -> QueryResult<&'a [NewAuditRow]> {
    let (chunk, rest) = rows.split_at(N);
    let chunk: &[NewAuditRow; N] = chunk.try_into().expect("split at N");
    diesel::insert_into(a::audit_log)
        .values(chunk)
        .execute(conn)?;
    Ok(rest)
}

impl Store {
    pub fn insert_token(&self, row: &TokenRow) -> Result<()> {
        let mut conn = self.conn()?;
        match diesel::insert_into(t::api_tokens)
            .values(row.clone())
            .execute(&mut *conn)
        {
            Err(diesel::result::Error::DatabaseError(
                diesel::result::DatabaseErrorKind::UniqueViolation,
                _,
            )) => Err(Error::InvalidInput(format!(
                "a token named {:?} already exists; revoke it or choose another name",
                row.name
            ))),
            other => other.map(|_| ()).map_err(Error::from),
        }
    }

    pub fn token(&self, id: &str) -> Result<Option<TokenRow>> {
        let mut conn = self.conn()?;
        Ok(t::api_tokens.find(id).first(&mut *conn).optional()?)
    }

    pub fn tokens(&self) -> Result<Vec<TokenRow>> {
        let mut conn = self.conn()?;
        Ok(t::api_tokens.order(t::name.asc()).load(&mut *conn)?)
    }

    /// Marks a token (by name or id) revoked; false if there is none not yet revoked.
    pub fn revoke_token(&self, name_or_id: &str, at: i64) -> Result<bool> {
        let mut conn = self.conn()?;
        let n = diesel::update(
            t::api_tokens
                .filter(t::name.eq(name_or_id).or(t::id.eq(name_or_id)))
                .filter(t::revoked_at.is_null()),
        )
        .set(t::revoked_at.eq(Some(at)))
        .execute(&mut *conn)?;
        Ok(n > 0)
    }

    pub fn audit(&self, filter: &AuditFilter) -> Result<Vec<AuditRow>> {
        let mut conn = self.conn()?;
        let mut query = a::audit_log.into_boxed();
        if let Some(block) = &filter.block {
            query = query.filter(a::block.eq(block.clone()));
        }
        if let Some(since) = filter.since {
            query = query.filter(a::at.ge(since));
        }
        if let Some(before) = filter.before_id {
            query = query.filter(a::id.lt(before));
        }
        Ok(query
            .order(a::id.desc())
            .limit(filter.limit)
            .load(&mut *conn)?)
    }

    /// Up to `limit` audit records after id `after`, oldest first (an export resumes
    /// from the last id it wrote), optionally only those at or after `since`.
    pub fn audit_after(&self, after: i64, since: Option<i64>, limit: i64) -> Result<Vec<AuditRow>> {
        let mut conn = self.conn()?;
        let mut query = a::audit_log.filter(a::id.gt(after)).into_boxed();
        if let Some(since) = since {
            query = query.filter(a::at.ge(since));
        }
        Ok(query.order(a::id.asc()).limit(limit).load(&mut *conn)?)
    }

    /// How many audit records are older than `before` (Unix ms).
    pub fn audit_count_before(&self, before: i64) -> Result<i64> {
        let mut conn = self.conn()?;
        Ok(a::audit_log
            .filter(a::at.lt(before))
            .count()
            .get_result(&mut *conn)?)
    }

    /// Deletes up to `batch` of the oldest audit records older than `before`, in one
    /// short transaction (requests' own records are written between batches); answers
    /// how many went.
    pub fn prune_audit_batch(&self, before: i64, batch: i64) -> Result<usize> {
        let mut conn = self.conn()?;
        let oldest = a::audit_log
            .filter(a::at.lt(before))
            .order(a::id.asc())
            .select(a::id)
            .limit(batch);
        let ids: Vec<i64> = oldest.load(&mut *conn)?;
        let Some(last) = ids.last() else {
            return Ok(0);
        };
        Ok(diesel::delete(
            a::audit_log
                .filter(a::id.le(*last))
                .filter(a::at.lt(before)),
        )
        .execute(&mut *conn)?)
    }

    /// Writes audit records made here (not by the server's writer): a prune's own.
    pub fn record_audit(&self, rows: &[NewAuditRow]) -> Result<()> {
        let mut conn = self.conn()?;
        insert_audit(&mut conn, rows)
    }
}
