//! Rows of API tokens (only a hash of each secret) and of the audit log.

use diesel::prelude::*;
use serde::Serialize;

use super::schema::{api_tokens::dsl as t, audit_log::dsl as a};
use super::{Store, StoreConnection, TOKENS_CHANNEL};
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
    /// HMAC of the rest of the row under the master key's token key (`auth::row_mac`);
    /// absent in rows made before tokens were bound, which verify nothing.
    #[serde(default, with = "super::backup::base64_bytes::option")]
    pub mac: Option<Vec<u8>>,
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
    /// How many events the record stands for (repeated reads fold into one record).
    pub event_count: i64,
    /// When the last of them happened (`at` for a single event).
    pub last_at: i64,
    /// The last one's request id (`None` for a single event).
    pub last_request_id: Option<String>,
    /// Until when the server may fold more reads into it (`None`: closed now).
    pub open_until: Option<i64>,
    /// What the record is about beyond its block (a lease's user name), never a secret.
    pub detail: Option<String>,
}

impl NewAuditRow {
    /// The same record, saying what it is about beyond its block.
    pub fn with_detail(self, detail: &str) -> NewAuditRow {
        NewAuditRow {
            detail: Some(fits(detail.to_owned(), 200)),
            ..self
        }
    }

    /// A record of one event at `at`, closed: it never changes again.
    pub fn single(
        at: i64,
        request_id: String,
        actor: String,
        action: String,
        block: Option<String>,
        outcome: String,
    ) -> NewAuditRow {
        NewAuditRow {
            at,
            request_id: fits(request_id, 64),
            actor: fits(actor, 128),
            action: fits(action, 32),
            block: block.map(|b| fits(b, 128)),
            outcome: fits(outcome, 32),
            event_count: 1,
            last_at: at,
            last_request_id: None,
            open_until: None,
            detail: None,
        }
    }
}

/// `text` within a column of `max` characters (PostgreSQL refuses longer text, and a
/// refused request may name anything): cut, with `…` saying so, so a record is never
/// lost to the text it describes.
fn fits(text: String, max: usize) -> String {
    match text.chars().count() <= max {
        true => text,
        false => text.chars().take(max - 1).chain(['…']).collect(),
    }
}

/// An audit record as read back. A record of `count` events says: each of them
/// happened between `at` and `last_at`, by `actor`, on `block`, with `outcome`, and
/// was committed to the store before its request was answered; `request_id` names
/// the first and `last_request_id` the last.
#[derive(Clone, Debug, Queryable, Serialize, serde::Deserialize)]
pub struct AuditRow {
    pub id: i64,
    #[serde(with = "crate::time::rfc3339_millis")]
    pub at: i64,
    pub request_id: String,
    pub actor: String,
    pub action: String,
    pub block: Option<String>,
    pub outcome: String,
    #[serde(rename = "count")]
    pub event_count: i64,
    #[serde(with = "crate::time::rfc3339_millis")]
    pub last_at: i64,
    pub last_request_id: Option<String>,
    /// Not shown: while it is in the future the record may still grow; exports wait
    /// for it to pass.
    #[serde(skip)]
    pub open_until: Option<i64>,
    /// What the record is about beyond its block (a lease's user name).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

impl AuditRow {
    /// Whether the server may still fold reads into this record at `now` (Unix ms, the
    /// store's clock, which the writer also folds by), allowing [`CLOCK_MARGIN`] for a
    /// fold's commit.
    pub fn is_open(&self, now: i64) -> bool {
        self.open_until
            .is_some_and(|until| until + CLOCK_MARGIN > now)
    }
}

/// How far apart the clocks of servers sharing a store may be, and how long a commit
/// may take, for a record past its `open_until` to be final.
pub const CLOCK_MARGIN: i64 = 5_000;

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

/// The PostgreSQL advisory lock under which audit ids are taken ("blockyard audit
/// order" folded into 63 bits).
#[cfg(feature = "postgres")]
const AUDIT_ORDER_LOCK: i64 = 0x6175_6469_746f_7264;

/// Makes audit ids commit-ordered: on PostgreSQL, ids come from a sequence when a row
/// is inserted, and transactions commit in any order, so an export resuming after the
/// last id it saw would miss a record that committed late. Every transaction takes
/// this lock just before it inserts audit records and holds it until it ends, so ids
/// are taken and committed one transaction at a time: a visible id is never followed
/// by a smaller one committing later. (SQLite has one writer at a time already.) Must
/// run inside the transaction that inserts.
pub fn lock_audit_order(conn: &mut StoreConnection) -> Result<()> {
    #[cfg(feature = "postgres")]
    if let StoreConnection::Postgresql(pg) = conn {
        lock_audit_order_pg(pg)?;
    }
    let _ = conn;
    Ok(())
}

#[cfg(feature = "postgres")]
fn lock_audit_order_pg(conn: &mut diesel::PgConnection) -> QueryResult<()> {
    diesel::sql_query(format!("SELECT pg_advisory_xact_lock({AUDIT_ORDER_LOCK})"))
        .execute(conn)
        .map(drop)
}

/// Writes audit records, all or none, inside the caller's transaction (ids in commit
/// order: [`lock_audit_order`]). PostgreSQL takes them in one statement. SQLite
/// takes them in chunks of fixed sizes (32, 8, 2, 1 rows), one statement each in one
/// transaction, so every statement is prepared once and reused: preparing a new
/// multi-row statement for each batch cost more than inserting it.
pub fn insert_audit(conn: &mut StoreConnection, rows: &[NewAuditRow]) -> Result<()> {
    match conn {
        #[cfg(feature = "postgres")]
        StoreConnection::Postgresql(pg) => {
            lock_audit_order_pg(pg)?;
            diesel::insert_into(a::audit_log).values(rows).execute(pg)?;
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

/// Writes one record the server may fold more reads into, inside the caller's
/// transaction; answers its id.
pub fn insert_open_audit(conn: &mut StoreConnection, row: &NewAuditRow) -> Result<i64> {
    lock_audit_order(conn)?;
    Ok(with_backend!(conn, c => diesel::insert_into(a::audit_log)
        .values(row)
        .returning(a::id)
        .get_result(c)?))
}

/// The store's clock in Unix milliseconds, as SQL: the one clock every server sharing
/// the store (and every exporter) agrees on, whatever their own clocks say.
fn store_clock(conn: &StoreConnection) -> &'static str {
    match conn {
        StoreConnection::Sqlite(_) => "CAST((julianday('now') - 2440587.5) * 86400000.0 AS BIGINT)",
        #[allow(unreachable_patterns)]
        _ => "(extract(epoch from clock_timestamp()) * 1000)::bigint",
    }
}

/// The store's clock now, in Unix milliseconds.
pub fn store_now(conn: &mut StoreConnection) -> Result<i64> {
    let clock = store_clock(conn);
    let now = diesel::select(diesel::dsl::sql::<diesel::sql_types::BigInt>(clock));
    Ok(with_backend!(conn, c => now.get_result(c)?))
}

/// Folds `count` more reads into the open record `id`, the last at `last_at` by request
/// `last_request_id`; false if the record is gone (pruned) or no longer open by the
/// store's clock (an export may already have shipped it).
pub fn add_to_audit(
    conn: &mut StoreConnection,
    id: i64,
    count: i64,
    last_at: i64,
    last_request_id: &str,
) -> Result<bool> {
    let clock = diesel::dsl::sql::<diesel::sql_types::Nullable<diesel::sql_types::BigInt>>(
        store_clock(conn),
    );
    let n = diesel::update(a::audit_log.find(id).filter(a::open_until.gt(clock)))
        .set((
            a::event_count.eq(a::event_count + count),
            a::last_at.eq(last_at),
            a::last_request_id.eq(Some(last_request_id)),
        ))
        .execute(conn)?;
    Ok(n == 1)
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
    /// Inserts a token, with `audit` (its record) in the same transaction.
    pub fn insert_token(&self, row: &TokenRow, audit: Option<&NewAuditRow>) -> Result<()> {
        let mut conn = self.conn()?;
        conn.transaction(|conn| {
            match diesel::insert_into(t::api_tokens)
                .values(row.clone())
                .execute(conn)
            {
                Err(diesel::result::Error::DatabaseError(
                    diesel::result::DatabaseErrorKind::UniqueViolation,
                    _,
                )) => Err(Error::InvalidInput(format!(
                    "a token named {:?} already exists; revoke it or choose another name",
                    row.name
                ))),
                other => other.map(|_| ()).map_err(Error::from),
            }?;
            super::notify::notify(conn, self.url().backend(), TOKENS_CHANNEL, &row.id)?;
            super::blocks::record_change(conn, audit)
        })
    }

    pub fn token(&self, id: &str) -> Result<Option<TokenRow>> {
        let mut conn = self.conn()?;
        Ok(t::api_tokens.find(id).first(&mut *conn).optional()?)
    }

    pub fn tokens(&self) -> Result<Vec<TokenRow>> {
        let mut conn = self.conn()?;
        Ok(t::api_tokens.order(t::name.asc()).load(&mut *conn)?)
    }

    /// Marks a token (by name or id) revoked, with the row's new `mac` computed from the
    /// revoked row; false if there is none not yet revoked.
    pub fn revoke_token(
        &self,
        name_or_id: &str,
        at: i64,
        mac: impl Fn(&TokenRow) -> Vec<u8>,
        audit: Option<&NewAuditRow>,
    ) -> Result<bool> {
        let mut conn = self.conn()?;
        conn.transaction::<_, Error, _>(|conn| {
            let found: Option<TokenRow> = t::api_tokens
                .filter(t::name.eq(name_or_id).or(t::id.eq(name_or_id)))
                .filter(t::revoked_at.is_null())
                .first(conn)
                .optional()?;
            let Some(mut row) = found else {
                return Ok(false);
            };
            row.revoked_at = Some(at);
            let tag = mac(&row);
            let n = diesel::update(t::api_tokens.find(&row.id).filter(t::revoked_at.is_null()))
                .set((t::revoked_at.eq(Some(at)), t::mac.eq(Some(tag))))
                .execute(conn)?;
            super::notify::notify(conn, self.url().backend(), TOKENS_CHANNEL, &row.id)?;
            super::blocks::record_change(conn, audit)?;
            Ok(n > 0)
        })
    }

    /// Sets the `mac` of every token row that has none (the migration that binds
    /// tokens to the master key); how many.
    pub fn bind_unbound_tokens(&self, mac: impl Fn(&TokenRow) -> Vec<u8>) -> Result<usize> {
        let mut conn = self.conn()?;
        conn.transaction::<_, Error, _>(|conn| {
            let rows: Vec<TokenRow> = t::api_tokens.filter(t::mac.is_null()).load(conn)?;
            for row in &rows {
                diesel::update(t::api_tokens.find(&row.id))
                    .set(t::mac.eq(Some(mac(row))))
                    .execute(conn)?;
            }
            Ok(rows.len())
        })
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
    /// from the last id it wrote), optionally only those at or after `since`. Only
    /// final records by the store's clock: the page ends before the first one still
    /// open, so an exported record never changes afterwards (the writer folds only into
    /// records open by the same clock) and the next page resumes with it.
    pub fn audit_after(&self, after: i64, since: Option<i64>, limit: i64) -> Result<Vec<AuditRow>> {
        let mut conn = self.conn()?;
        let mut query = a::audit_log.filter(a::id.gt(after)).into_boxed();
        if let Some(since) = since {
            query = query.filter(a::at.ge(since));
        }
        let mut rows: Vec<AuditRow> = query.order(a::id.asc()).limit(limit).load(&mut *conn)?;
        let now = store_now(&mut conn)?;
        if let Some(open) = rows.iter().position(|r| r.is_open(now)) {
            rows.truncate(open);
        }
        Ok(rows)
    }

    /// When the newest audit record was written (its `at`), if there is one.
    pub fn newest_audit_at(&self) -> Result<Option<i64>> {
        let mut conn = self.conn()?;
        Ok(a::audit_log
            .select(diesel::dsl::max(a::at))
            .first::<Option<i64>>(&mut *conn)?)
    }

    /// How many audit records are older than `before` (Unix ms).
    pub fn audit_count_before(&self, before: i64) -> Result<i64> {
        let mut conn = self.conn()?;
        Ok(a::audit_log
            .filter(a::at.lt(before))
            .count()
            .get_result(&mut *conn)?)
    }

    /// Deletes up to `batch` of the oldest audit records older than `before` with an id
    /// above `after`, in one short transaction (requests' own records are written
    /// between batches); answers how many went and the last id looked at, for the next
    /// batch to start after (so it seeks past the rows just deleted instead of scanning
    /// them again before PostgreSQL's vacuum has removed them).
    /// `record` (the prune's own record, given with its first batch that deletes
    /// anything) commits in the same transaction as the batch: a prune is on record
    /// before anything it deleted is gone, even if it is killed halfway.
    pub fn prune_audit_batch(
        &self,
        before: i64,
        after: i64,
        batch: i64,
        record: Option<&NewAuditRow>,
    ) -> Result<(usize, i64)> {
        let mut conn = self.conn()?;
        let oldest = a::audit_log
            .filter(a::id.gt(after))
            .filter(a::at.lt(before))
            .order(a::id.asc())
            .select(a::id)
            .limit(batch);
        let ids: Vec<i64> = oldest.load(&mut *conn)?;
        let Some(last) = ids.last().copied() else {
            return Ok((0, after));
        };
        conn.transaction(|conn| {
            if let Some(record) = record {
                insert_audit(conn, std::slice::from_ref(record))?;
            }
            let deleted = diesel::delete(
                a::audit_log
                    .filter(a::id.gt(after))
                    .filter(a::id.le(last))
                    .filter(a::at.lt(before)),
            )
            .execute(conn)?;
            Ok((deleted, last))
        })
    }

    /// Writes audit records made here (not by the server's writer): a prune's own.
    pub fn record_audit(&self, rows: &[NewAuditRow]) -> Result<()> {
        let mut conn = self.conn()?;
        conn.transaction(|conn| insert_audit(conn, rows))
    }
}
