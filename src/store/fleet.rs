//! What several servers on one store share instead of keeping in memory: web UI
//! sessions (by the SHA-256 of their id), each block's last UI Test, and each server's
//! last successful write (its readiness heartbeat).

use diesel::prelude::*;

use super::schema::block_tests::dsl as bt;
use super::schema::server_heartbeats::dsl as hb;
use super::schema::ui_sessions::dsl as s;
use super::{Store, StoreConnection};
use crate::error::Result;

/// One web UI session as stored.
#[derive(Clone, Queryable, Insertable)]
#[diesel(table_name = super::schema::ui_sessions)]
pub struct SessionRow {
    pub id_hash: String,
    pub token_id: String,
    pub csrf: String,
    /// Secrets a refused form held for its next try, sealed.
    pub held: Option<Vec<u8>>,
    pub created_at: i64,
    pub expires_at: i64,
}

impl std::fmt::Debug for SessionRow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SessionRow(token {}, ********)", self.token_id)
    }
}

/// A block's last UI Test.
#[derive(Clone, Debug, Queryable, Insertable)]
#[diesel(table_name = super::schema::block_tests)]
pub struct TestRow {
    pub name: String,
    pub passed: bool,
    pub code: String,
    pub tested_at: i64,
}

impl Store {
    /// Inserts a session; then, of `token_id`'s sessions, all but the newest
    /// `per_token` end, and of every session, all but the newest `in_all`.
    pub fn open_session(&self, row: &SessionRow, per_token: i64, in_all: i64) -> Result<()> {
        let mut conn = self.conn()?;
        conn.transaction(|conn| {
            diesel::delete(s::ui_sessions.filter(s::expires_at.le(row.created_at)))
                .execute(conn)?;
            diesel::insert_into(s::ui_sessions)
                .values(row.clone())
                .execute(conn)?;
            trim_sessions(conn, Some(&row.token_id), per_token)?;
            trim_sessions(conn, None, in_all)
        })
    }

    /// A session that has not expired by `now`.
    pub fn session(&self, id_hash: &str, now: i64) -> Result<Option<SessionRow>> {
        let mut conn = self.conn()?;
        Ok(s::ui_sessions
            .find(id_hash)
            .filter(s::expires_at.gt(now))
            .first(&mut *conn)
            .optional()?)
    }

    /// Replaces what a session holds for its forms.
    pub fn set_session_held(&self, id_hash: &str, held: Option<Vec<u8>>) -> Result<()> {
        let mut conn = self.conn()?;
        diesel::update(s::ui_sessions.find(id_hash))
            .set(s::held.eq(held))
            .execute(&mut *conn)?;
        Ok(())
    }

    pub fn close_session(&self, id_hash: &str) -> Result<()> {
        let mut conn = self.conn()?;
        diesel::delete(s::ui_sessions.find(id_hash)).execute(&mut *conn)?;
        Ok(())
    }

    /// Removes sessions expired by `now`; how many.
    pub fn prune_sessions(&self, now: i64) -> Result<usize> {
        let mut conn = self.conn()?;
        Ok(diesel::delete(s::ui_sessions.filter(s::expires_at.le(now))).execute(&mut *conn)?)
    }

    /// Keeps `row` as its block's last Test.
    pub fn record_test(&self, row: &TestRow) -> Result<()> {
        let mut conn = self.conn()?;
        conn.transaction(|conn| {
            diesel::delete(bt::block_tests.find(&row.name)).execute(conn)?;
            diesel::insert_into(bt::block_tests)
                .values(row.clone())
                .execute(conn)?;
            Ok(())
        })
    }

    /// The last Tests of those of `names` that have one.
    pub fn last_tests(&self, names: &[&str]) -> Result<Vec<TestRow>> {
        let mut conn = self.conn()?;
        let mut found = Vec::new();
        for chunk in names.chunks(500) {
            let rows: Vec<TestRow> = bt::block_tests
                .filter(bt::name.eq_any(chunk))
                .load(&mut *conn)?;
            found.extend(rows);
        }
        Ok(found)
    }

    /// Writes this server's heartbeat: proof that the store takes writes now.
    pub fn heartbeat(&self, server_id: &str, now: i64) -> Result<()> {
        let mut conn = self.conn()?;
        let n = diesel::update(hb::server_heartbeats.find(server_id))
            .set(hb::seen_at.eq(now))
            .execute(&mut *conn)?;
        if n == 0 {
            diesel::insert_into(hb::server_heartbeats)
                .values((hb::server_id.eq(server_id), hb::seen_at.eq(now)))
                .execute(&mut *conn)?;
        }
        Ok(())
    }

    /// Forgets a stopped server's heartbeat.
    pub fn forget_heartbeat(&self, server_id: &str) -> Result<()> {
        let mut conn = self.conn()?;
        diesel::delete(hb::server_heartbeats.find(server_id)).execute(&mut *conn)?;
        Ok(())
    }
}

/// Of `token_id`'s sessions (`None`: of every session), ends all but the newest `keep`.
fn trim_sessions(conn: &mut StoreConnection, token_id: Option<&str>, keep: i64) -> Result<()> {
    let newest_first = s::ui_sessions
        .order(s::created_at.desc())
        .offset(keep)
        .limit(10_000)
        .select(s::id_hash);
    let old: Vec<String> = match token_id {
        Some(id) => newest_first.filter(s::token_id.eq(id)).load(conn)?,
        None => newest_first.load(conn)?,
    };
    if !old.is_empty() {
        diesel::delete(s::ui_sessions.filter(s::id_hash.eq_any(old))).execute(conn)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{PoolOptions, StoreUrl};

    fn row(id: &str, token: &str, at: i64) -> SessionRow {
        SessionRow {
            id_hash: id.to_owned(),
            token_id: token.to_owned(),
            csrf: "c".into(),
            held: None,
            created_at: at,
            expires_at: at + 1_000,
        }
    }

    #[test]
    fn one_tokens_sign_ins_end_only_its_own_sessions() {
        let dir = tempfile::tempdir().unwrap();
        let url = StoreUrl::parse(dir.path().join("t.db").to_str().unwrap()).unwrap();
        let store = Store::open(url, &PoolOptions::default()).unwrap();
        store.migrate().unwrap();
        store
            .open_session(&row("other", "t-other", 1), 3, 100)
            .unwrap();
        for n in 0..6 {
            let id = format!("flood-{n}");
            store
                .open_session(&row(&id, "t-flood", 10 + n), 3, 100)
                .unwrap();
        }
        assert!(
            store.session("other", 5).unwrap().is_some(),
            "another user was signed out"
        );
        assert!(
            store.session("flood-0", 20).unwrap().is_none(),
            "the flood's oldest stayed"
        );
        assert!(store.session("flood-5", 20).unwrap().is_some());
        // In all, the newest are kept; expired sessions are pruned.
        store
            .open_session(&row("last", "t-last", 30), 3, 2)
            .unwrap();
        assert!(store.session("flood-4", 31).unwrap().is_none());
        assert_eq!(store.prune_sessions(2_000).unwrap(), 2);
        assert!(store.session("last", 31).unwrap().is_none());
    }
}
