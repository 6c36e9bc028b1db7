//! Leased database users as the store keeps them: one row per user made for a holder,
//! whose `state` journals what was done in the database (`issuing` before the user is
//! created, `live`, `revoking` before it is taken apart, `revoked`), so the reconciler
//! can finish what a crash left half done.

use diesel::prelude::*;
use serde::{Deserialize, Serialize};

use super::schema::leases::dsl as l;
use super::{NewAuditRow, Store, StoreConnection, insert_audit};
use crate::error::Result;

/// A lease's state in its journal.
pub mod state {
    /// Written before the user is created: a crash leaves a row to clean up after.
    pub const ISSUING: &str = "issuing";
    pub const LIVE: &str = "live";
    /// Written before the user is taken apart; stays until it is gone.
    pub const REVOKING: &str = "revoking";
    pub const REVOKED: &str = "revoked";
}

/// One leased user.
#[derive(Clone, Debug, Queryable, Insertable, Serialize, Deserialize)]
#[diesel(table_name = super::schema::leases)]
pub struct LeaseRow {
    pub id: String,
    pub block_id: String,
    pub block_name: String,
    pub username: String,
    pub admin_block: String,
    pub group_role: String,
    /// The block's database, where what the user owns is handed over.
    pub database_name: String,
    pub holder: String,
    pub state: String,
    pub created_at: i64,
    pub expires_at: i64,
    pub max_expires_at: i64,
    pub revoked_at: Option<i64>,
    pub attempts: i64,
    pub retry_at: Option<i64>,
    pub last_error: Option<String>,
}

fn move_lease(conn: &mut StoreConnection, id: &str, to: &str, now: i64) -> Result<bool> {
    let revoked_at = (to == state::REVOKED).then_some(now);
    let n = diesel::update(l::leases.find(id).filter(l::state.ne(state::REVOKED)))
        .set((
            l::state.eq(to),
            l::revoked_at.eq(revoked_at),
            l::retry_at.eq(None::<i64>),
        ))
        .execute(conn)?;
    Ok(n == 1)
}

impl Store {
    pub fn insert_lease(&self, row: &LeaseRow) -> Result<()> {
        let mut conn = self.conn()?;
        with_backend!(&mut *conn, c => diesel::insert_into(l::leases).values(row).execute(c)?);
        Ok(())
    }

    pub fn lease(&self, id: &str) -> Result<Option<LeaseRow>> {
        let mut conn = self.conn()?;
        Ok(l::leases.find(id).first(&mut *conn).optional()?)
    }

    /// Leases not yet revoked (with `revoked`, all), of one block or every one, by
    /// creation.
    pub fn leases(&self, block: Option<&str>, revoked: bool) -> Result<Vec<LeaseRow>> {
        let mut conn = self.conn()?;
        let mut query = l::leases.into_boxed();
        if let Some(block) = block {
            query = query.filter(l::block_name.eq(block.to_owned()));
        }
        if !revoked {
            query = query.filter(l::state.ne(state::REVOKED));
        }
        Ok(query
            .order((l::created_at.asc(), l::id.asc()))
            .load(&mut *conn)?)
    }

    /// Moves a lease to `to` (from any state but `revoked`); whether it was there to move.
    pub fn set_lease_state(&self, id: &str, to: &str, now: i64) -> Result<bool> {
        let mut conn = self.conn()?;
        move_lease(&mut conn, id, to, now)
    }

    /// [`Store::set_lease_state`] with its audit record, committed together.
    pub fn set_lease_state_on_record(
        &self,
        id: &str,
        to: &str,
        now: i64,
        record: &NewAuditRow,
    ) -> Result<bool> {
        let mut conn = self.conn()?;
        conn.transaction(|conn| {
            let moved = move_lease(conn, id, to, now)?;
            insert_audit(conn, std::slice::from_ref(record))?;
            Ok(moved)
        })
    }

    /// Revocations that failed and wait to be tried again.
    pub fn failing_leases(&self) -> Result<i64> {
        let mut conn = self.conn()?;
        Ok(l::leases
            .filter(l::state.ne(state::REVOKED))
            .filter(l::attempts.gt(0))
            .count()
            .get_result(&mut *conn)?)
    }

    /// How many leases are in each state but `revoked` (kept as history).
    pub fn lease_counts(&self) -> Result<Vec<(String, i64)>> {
        let mut conn = self.conn()?;
        Ok(l::leases
            .filter(l::state.ne(state::REVOKED))
            .group_by(l::state)
            .select((l::state, diesel::dsl::count_star()))
            .load(&mut *conn)?)
    }

    /// A live lease's new expiry; whether it was live.
    pub fn renew_lease(&self, id: &str, expires_at: i64) -> Result<bool> {
        let mut conn = self.conn()?;
        let n = diesel::update(l::leases.find(id).filter(l::state.eq(state::LIVE)))
            .set(l::expires_at.eq(expires_at))
            .execute(&mut *conn)?;
        Ok(n == 1)
    }

    /// A failed step of a lease's revocation (or issue): counted, its message kept (never
    /// a secret), tried again from `retry_at`.
    pub fn lease_failed(&self, id: &str, error: &str, retry_at: i64) -> Result<()> {
        let mut conn = self.conn()?;
        diesel::update(l::leases.find(id))
            .set((
                l::attempts.eq(l::attempts + 1),
                l::last_error.eq(Some(error)),
                l::retry_at.eq(Some(retry_at)),
            ))
            .execute(&mut *conn)?;
        Ok(())
    }

    /// What the reconciler must finish at `now`: live leases past their expiry,
    /// revocations under way, and issues begun before `stale` that never finished;
    /// each only once its `retry_at` has passed.
    pub fn leases_due(&self, now: i64, stale: i64) -> Result<Vec<LeaseRow>> {
        let mut conn = self.conn()?;
        let expired = l::state.eq(state::LIVE).and(l::expires_at.le(now));
        let revoking = l::state.eq(state::REVOKING);
        let abandoned = l::state.eq(state::ISSUING).and(l::created_at.le(stale));
        Ok(l::leases
            .filter(expired.or(revoking).or(abandoned))
            .filter(l::retry_at.is_null().or(l::retry_at.le(now)))
            .order(l::expires_at.asc())
            .load(&mut *conn)?)
    }

    /// Every user name the store knows for an admin block, whatever its state (a
    /// managed role in the database that is not among them is an orphan).
    pub fn lease_usernames(&self, admin_block: &str) -> Result<Vec<(String, String)>> {
        let mut conn = self.conn()?;
        Ok(l::leases
            .filter(l::admin_block.eq(admin_block))
            .select((l::username, l::state))
            .load(&mut *conn)?)
    }
}
