//! Leased database users as a block declares them (`lease.admin`, `lease.role`,
//! `lease.ttl`, `lease.max_ttl`, `lease.grace`, `lease.prefix`): each holder gets its
//! own login role in the group role, made with the admin block's credentials, that the
//! database refuses after its expiry (plus grace) even with Blockyard down. Every step
//! is journaled in the store before it runs (see `store::leases`), so a crash leaves a
//! row the reconciler finishes; revocation takes the user apart whatever it did
//! (no more logins, sessions ended, what it owns handed to the group role, dropped),
//! and one that keeps failing stays listed with its error, never forgotten.

use std::time::Duration;

use serde::Serialize;
use serde_json::Value;
use zeroize::Zeroizing;

use super::crash::crash_point;
use super::handle::Registry;
use crate::block::{Block, ChangeRecord};
use crate::connect::{ConnectionInfo, connection_info};
use crate::error::{Error, Result};
use crate::name::{BlockName, ToBlockName};
use crate::provision::lease_sql::{self, Engine};
use crate::provision::{RoleName, Session, generate_password, sql};
use crate::store::{LeaseRow, NewAuditRow, lease_state as state};

const CONNECTOR: &str = "sqlalchemy-connector";
/// The name prefix of leased users when a block sets none.
pub const DEFAULT_PREFIX: &str = "bylease_";
const DEFAULT_TTL: Duration = Duration::from_secs(3600);
const DEFAULT_MAX_TTL: Duration = Duration::from_secs(24 * 3600);
/// How long after its expiry the database still lets a user log in (clocks differ).
const DEFAULT_GRACE: Duration = Duration::from_secs(60);
/// An issue begun this long ago that never finished was cut short by a crash.
const STALE_ISSUE: Duration = Duration::from_secs(60);

/// What a block declares about leasing, read from its `lease` object.
#[derive(Clone, Debug)]
pub struct LeaseSpec {
    pub admin: String,
    pub role: RoleName,
    pub ttl: Duration,
    pub max_ttl: Duration,
    pub grace: Duration,
    pub prefix: String,
}

fn span(lease: &Value, key: &str, default: Duration) -> Result<Duration> {
    match lease.get(key).and_then(Value::as_str) {
        None => Ok(default),
        Some(text) => humantime::parse_duration(text.trim())
            .map_err(|_| Error::InvalidBlockData(format!("lease.{key}: not a duration"))),
    }
}

/// The block's lease declaration.
pub fn lease_spec(block: &Block) -> Result<LeaseSpec> {
    let undeclared = || {
        Error::InvalidInput(format!(
            "block {} declares no leases; set lease.admin (an admin block) and lease.role \
             (the group role leased users join), e.g. `blockyard block update {} --set \
             lease.admin=pg-admin --set lease.role=app_rw`",
            block.name, block.name
        ))
    };
    let lease = block.masked_data().get("lease").filter(|l| l.is_object());
    let lease = lease.ok_or_else(undeclared)?;
    let text = |key: &str| lease.get(key).and_then(Value::as_str);
    let (Some(admin), Some(role)) = (text("admin"), text("role")) else {
        return Err(undeclared());
    };
    let spec = LeaseSpec {
        admin: admin.to_owned(),
        role: RoleName::parse(role)?,
        ttl: span(lease, "ttl", DEFAULT_TTL)?,
        max_ttl: span(lease, "max_ttl", DEFAULT_MAX_TTL)?,
        grace: span(lease, "grace", DEFAULT_GRACE)?,
        prefix: text("prefix").unwrap_or(DEFAULT_PREFIX).to_owned(),
    };
    if spec.role.as_str().starts_with(&spec.prefix) {
        return Err(Error::InvalidBlockData(
            "lease.role: starts with lease.prefix, which names leased users alone".into(),
        ));
    }
    match spec.ttl <= spec.max_ttl {
        true => Ok(spec),
        false => Err(Error::InvalidBlockData(
            "lease.ttl: longer than lease.max_ttl".into(),
        )),
    }
}

/// Whether a role name has the form of a leased user's: the prefix, then anything,
/// then `_` and 12 lowercase hex digits (as [`leased_username`] makes them).
fn is_leased_name(name: &str, prefix: &str) -> bool {
    let Some(rest) = name.strip_prefix(prefix) else {
        return false;
    };
    let Some((_, random)) = rest.rsplit_once('_') else {
        return false;
    };
    random.len() == 12
        && random
            .bytes()
            .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// What a write may do to a block's `lease` (`current`: as stored, `None` for a new
/// block): which admin block acts and which group role a holder joins are chosen only
/// by an actor who may use admin blocks (`record`: `None` is the CLI on the store).
pub(super) fn guard_lease(
    current: Option<&Value>,
    document: &Value,
    record: Option<&ChangeRecord>,
) -> Result<()> {
    let chosen = |doc: &Value| {
        let lease = doc.get("lease").filter(|l| l.is_object());
        let field = |key: &str| lease.and_then(|l| l.get(key)).cloned();
        (field("admin"), field("role"), field("prefix"))
    };
    let changed = chosen(document) != current.map(chosen).unwrap_or((None, None, None));
    if let Some(Value::String(role)) = document.pointer("/lease/role") {
        let prefix = document.pointer("/lease/prefix").and_then(Value::as_str);
        if role.starts_with(prefix.unwrap_or(DEFAULT_PREFIX)) {
            return Err(Error::InvalidBlockData(
                "lease.role: starts with lease.prefix, which names leased users alone".into(),
            ));
        }
    }
    match (changed, record) {
        (false, _) | (true, None) => Ok(()),
        (true, Some(record)) if record.admin => Ok(()),
        (true, Some(_)) => Err(Error::Forbidden(
            "leases act with the admin block's credentials and hand out the group role's \
             privileges; setting lease.admin, lease.role or lease.prefix needs an admin token"
                .into(),
        )),
    }
}

/// A lease as listed: never its password.
#[derive(Clone, Debug, Serialize)]
pub struct Lease {
    pub lease_id: String,
    pub block: String,
    pub username: String,
    pub holder: String,
    pub state: String,
    pub created_at: String,
    pub expires_at: String,
    pub max_expires_at: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub revoked_at: Option<String>,
    /// Failed attempts at the step under way (a revocation that keeps failing).
    pub attempts: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
}

impl From<&LeaseRow> for Lease {
    fn from(row: &LeaseRow) -> Lease {
        let time = crate::time::rfc3339;
        Lease {
            lease_id: row.id.clone(),
            block: row.block_name.clone(),
            username: row.username.clone(),
            holder: row.holder.clone(),
            state: row.state.clone(),
            created_at: time(row.created_at),
            expires_at: time(row.expires_at),
            max_expires_at: time(row.max_expires_at),
            revoked_at: row.revoked_at.map(time),
            attempts: row.attempts,
            last_error: row.last_error.clone(),
        }
    }
}

/// A lease just issued: the only time its password is shown.
#[derive(Serialize)]
pub struct IssuedLease {
    #[serde(flatten)]
    pub lease: Lease,
    #[serde(serialize_with = "shown_once")]
    pub password: Zeroizing<String>,
    /// The block's connection with the leased user's credentials.
    #[serde(skip)]
    pub connection: ConnectionInfo,
}

fn shown_once<S: serde::Serializer>(
    password: &Zeroizing<String>,
    s: S,
) -> std::result::Result<S::Ok, S::Error> {
    s.serialize_str(password)
}

impl std::fmt::Debug for IssuedLease {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IssuedLease")
            .field("lease", &self.lease)
            .field("password", &"********")
            .finish()
    }
}

/// The name of a new leased user: the prefix, the block's name folded into a role
/// name, a random part; at most 63 bytes (PostgreSQL's limit).
fn leased_username(prefix: &str, block: &BlockName) -> Result<RoleName> {
    use chacha20poly1305::aead::{OsRng, rand_core::RngCore};
    let folded: String = block
        .as_str()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .take(63 - prefix.len().min(40) - 13)
        .collect();
    let random = OsRng.next_u64() & 0xffff_ffff_ffff;
    RoleName::parse(&format!("{prefix}{folded}_{random:012x}"))
}

/// Who acts, for the audit log: the request's actor, or `local:$USER` for the CLI on
/// the store.
pub fn local_actor() -> String {
    format!(
        "local:{}",
        std::env::var("USER").unwrap_or_else(|_| "cli".into())
    )
}

impl Registry {
    /// Runs `work` with an admin session of `admin` (in `database`, or the admin
    /// block's own), kept for the next lease operation when it went well.
    fn with_admin<T>(
        &self,
        admin: &str,
        database: Option<&str>,
        work: impl FnOnce(&mut Session) -> Result<T>,
    ) -> Result<T> {
        let block = self.load_block(admin)?;
        let key = (
            admin.to_owned(),
            block.version,
            database.unwrap_or_default().to_owned(),
        );
        let cache = &self
            .local
            .as_ref()
            .ok_or_else(|| self.store().unwrap_err())?
            .admin_sessions;
        let mut session = match cache.take(&key) {
            Some(session) => session,
            None => {
                let session = self.admin_session(admin)?;
                match database {
                    Some(db) if db != session.info().database => session.open_database(db)?,
                    _ => session,
                }
            }
        };
        let done = work(&mut session);
        if done.is_ok() {
            cache.give(key, session);
        }
        done
    }

    fn lease_actor(&self) -> (String, String) {
        match self.record() {
            Some(record) => (record.actor.clone(), record.request_id.clone()),
            None => (local_actor(), uuid::Uuid::new_v4().simple().to_string()),
        }
    }

    /// The record of a lease event: who, which block, which user name, never the
    /// password.
    fn lease_record(&self, action: &str, row: &LeaseRow, outcome: &str) -> NewAuditRow {
        let (actor, request_id) = self.lease_actor();
        let record = NewAuditRow::single(
            crate::time::now_millis(),
            request_id,
            actor,
            action.into(),
            Some(row.block_name.clone()),
            outcome.into(),
        );
        record.with_detail(&row.username)
    }

    fn audit_lease(&self, action: &str, row: &LeaseRow, outcome: &str) -> Result<()> {
        let record = self.lease_record(action, row, outcome);
        self.store()?.record_audit(&[record])
    }

    /// Moves a lease to `to` with the record of what was done, in one commit.
    fn finish_step(&self, action: &str, row: &LeaseRow, to: &str) -> Result<()> {
        let record = self.lease_record(action, row, "ok");
        let now = crate::time::now_millis();
        self.store()?
            .set_lease_state_on_record(&row.id, to, now, &record)?;
        Ok(())
    }

    /// A failed step on record, unless a server's request records it (it records every
    /// failed change itself).
    fn audit_failure(&self, action: &str, row: &LeaseRow, err: &Error) -> Result<()> {
        match self.record().and_then(|r| r.token_id.as_ref()) {
            Some(_) => Ok(()),
            None => self.audit_lease(action, row, err.code()),
        }
    }

    /// Issues a lease on `block` for at most `ttl` (the block's `lease.ttl` by
    /// default, never past `lease.max_ttl`).
    pub fn issue_lease(
        &self,
        block: &(impl ToBlockName + ?Sized),
        ttl: Option<Duration>,
    ) -> Result<IssuedLease> {
        let name = &*block.to_block_name()?;
        let block = self.load_block(name)?;
        let spec = lease_spec(&block)?;
        let info = connection_info(&block)?;
        let ttl = ttl.unwrap_or(spec.ttl).min(spec.max_ttl);
        let now = crate::time::now_millis();
        let row = LeaseRow {
            id: uuid::Uuid::new_v4().to_string(),
            block_id: block.id.clone(),
            block_name: name.to_string(),
            username: leased_username(&spec.prefix, name)?.as_str().to_owned(),
            admin_block: spec.admin.clone(),
            group_role: spec.role.as_str().to_owned(),
            database_name: info.database.clone(),
            holder: self.lease_actor().0,
            state: state::ISSUING.into(),
            created_at: now,
            expires_at: now + ttl.as_millis() as i64,
            max_expires_at: now + spec.max_ttl.as_millis() as i64,
            revoked_at: None,
            attempts: 0,
            retry_at: None,
            last_error: None,
        };
        // The admin block must reach its server before anything is journaled, so a
        // lease that cannot be made leaves no row waiting for it.
        self.with_admin(&spec.admin, None, |admin| admin.engine())?;
        // Journaled before the user exists: a crash from here on leaves a row that the
        // reconciler revokes.
        self.store()?.insert_lease(&row)?;
        crash_point("lease-journaled");
        let password = generate_password();
        if let Err(err) = self.create_leased_user(&spec, &row, &password) {
            self.store()?
                .set_lease_state(&row.id, state::REVOKING, now)?;
            let _ = self.revoke_lease(&row.id);
            self.audit_failure("lease-issue", &row, &err)?;
            return Err(err);
        }
        crash_point("lease-user-created");
        self.finish_step("lease-issue", &row, state::LIVE)?;
        let live = LeaseRow {
            state: state::LIVE.into(),
            ..row
        };
        let mut connection = info;
        connection.username = Some(live.username.clone());
        connection.password = Some(password.to_string());
        Ok(IssuedLease {
            lease: Lease::from(&live),
            password,
            connection,
        })
    }

    fn create_leased_user(&self, spec: &LeaseSpec, row: &LeaseRow, password: &str) -> Result<()> {
        let name = RoleName::parse(&row.username)?;
        let valid_until = row.expires_at + spec.grace.as_millis() as i64;
        self.with_admin(&spec.admin, None, |admin| {
            admin.hide(password);
            let engine = admin.engine()?;
            let statements =
                lease_sql::create_user(engine, &name, password, &spec.role, valid_until)?;
            for statement in statements {
                admin.run("create the leased user", &statement)?;
            }
            Ok(())
        })
    }

    /// The leases of `block` (or of every block), live and being revoked; with `all`,
    /// revoked ones too.
    pub fn leases(&self, block: Option<&BlockName>, all: bool) -> Result<Vec<Lease>> {
        let rows = self.store()?.leases(block.map(BlockName::as_str), all)?;
        Ok(rows.iter().map(Lease::from).collect())
    }

    /// How many lease revocations failed and wait to be tried again (the server's
    /// `/ready` says so).
    pub fn failing_leases(&self) -> Result<i64> {
        self.store()?.failing_leases()
    }

    /// How many leases are in each state (`issuing`, `live`, `revoking`).
    pub fn lease_counts(&self) -> Result<Vec<(String, i64)>> {
        self.store()?.lease_counts()
    }

    /// One lease, by id.
    pub fn lease(&self, id: &str) -> Result<Lease> {
        Ok(Lease::from(&self.lease_row(id)?))
    }

    fn lease_row(&self, id: &str) -> Result<LeaseRow> {
        self.store()?
            .lease(id)?
            .ok_or_else(|| Error::LeaseNotFound(format!("no lease with id {id}")))
    }

    /// Extends a live lease by `ttl` from now (the block's `lease.ttl` by default),
    /// never past its `max_expires_at`.
    pub fn renew_lease(&self, id: &str, ttl: Option<Duration>) -> Result<Lease> {
        let row = self.lease_row(id)?;
        if row.state != state::LIVE {
            return Err(Error::InvalidInput(format!(
                "lease {id} is {}, not live; issue a new one",
                row.state
            )));
        }
        let block = self.get_block_masked(&row.block_name)?;
        let spec = lease_spec(&block)?;
        let now = crate::time::now_millis();
        let wanted = now + ttl.unwrap_or(spec.ttl).as_millis() as i64;
        let expires_at = wanted.min(row.max_expires_at);
        let name = RoleName::parse(&row.username)?;
        let until = expires_at + spec.grace.as_millis() as i64;
        self.with_admin(
            &row.admin_block,
            None,
            |admin| match lease_sql::valid_until(admin.engine()?, &name, until)? {
                Some(statement) => admin.run("renew the leased user", &statement),
                None => Ok(()),
            },
        )?;
        self.store()?.renew_lease(id, expires_at)?;
        self.audit_lease("lease-renew", &row, "ok")?;
        Ok(Lease::from(&LeaseRow { expires_at, ..row }))
    }

    /// Revokes a lease: journaled, then taken apart step by step (each safe to run
    /// again). A failure is counted and kept, and the reconciler tries again later.
    pub fn revoke_lease(&self, id: &str) -> Result<Lease> {
        let row = self.lease_row(id)?;
        if row.state == state::REVOKED {
            return Ok(Lease::from(&row));
        }
        let now = crate::time::now_millis();
        self.store()?.set_lease_state(id, state::REVOKING, now)?;
        crash_point("lease-revoking");
        if let Err(err) = self.take_apart(&row) {
            let backoff = 1000 * (1i64 << row.attempts.clamp(0, 10));
            self.store()?
                .lease_failed(id, &err.to_string(), now + backoff)?;
            self.audit_failure("lease-revoke", &row, &err)?;
            return Err(err);
        }
        self.finish_step("lease-revoke", &row, state::REVOKED)?;
        Ok(Lease::from(&self.lease_row(id)?))
    }

    /// Every live lease of a block, revoked; the first failure is returned after all
    /// were tried.
    pub fn revoke_block_leases(&self, block: &BlockName) -> Result<Vec<Lease>> {
        let mut revoked = Vec::new();
        let mut failed = None;
        for lease in self.store()?.leases(Some(block.as_str()), false)? {
            match self.revoke_lease(&lease.id) {
                Ok(lease) => revoked.push(lease),
                Err(err) => failed = failed.or(Some(err)),
            }
        }
        failed.map_or(Ok(revoked), Err)
    }

    /// Takes a leased user apart: no more logins, its sessions ended, what it owns
    /// handed to the group role (in the block's database), dropped. A user already
    /// gone is done.
    fn take_apart(&self, row: &LeaseRow) -> Result<()> {
        let name = RoleName::parse(&row.username)?;
        let group = RoleName::parse(&row.group_role)?;
        self.take_apart_user(&row.admin_block, &name, &group, &row.database_name)
    }

    fn take_apart_user(
        &self,
        admin: &str,
        name: &RoleName,
        group: &RoleName,
        database: &str,
    ) -> Result<()> {
        let engine = self.with_admin(admin, None, |session| {
            let engine = session.engine()?;
            if !session.role_exists(name)? {
                return Ok(None);
            }
            session.run("refuse new logins", &lease_sql::no_login(engine, name)?)?;
            crash_point("lease-nologin");
            end_sessions(session, engine, name)?;
            Ok(Some(engine))
        })?;
        let Some(engine) = engine else {
            return Ok(());
        };
        let handover = lease_sql::release_owned(engine, name, group)?;
        if !handover.is_empty() {
            // PostgreSQL keeps ownership per database: handed over inside the block's.
            let inside = Some(database).filter(|_| engine == Engine::Postgres);
            self.with_admin(admin, inside, |session| {
                for statement in &handover {
                    session.run("hand over what the user owns", statement)?;
                }
                Ok(())
            })?;
        }
        crash_point("lease-released");
        self.with_admin(admin, None, |session| {
            session.run("drop the user", &sql::drop_role(engine.dialect(), name)?)
        })
    }
}

/// Ends the user's sessions: in one statement, or on MySQL one by one.
fn end_sessions(session: &mut Session, engine: Engine, name: &RoleName) -> Result<()> {
    let statement = lease_sql::end_sessions(engine, name)?;
    match engine {
        Engine::MariaDb | Engine::MySql => {
            for id in session.names(&statement)? {
                // A session that ended meanwhile is no failure.
                let _ = session.run("end a session of the user", &lease_sql::kill(&id)?);
            }
            Ok(())
        }
        _ => session.run("end the user's sessions", &statement),
    }
}

/// The lock a server holds while it reconciles leases (PostgreSQL advisory lock key:
/// "blockleas" in ASCII, folded into 63 bits), so one server does it at a time.
pub const LEASE_LOCK: i64 = 0x626c_6f63_6b6c_6561;

/// What one reconcile did.
#[derive(Clone, Debug, Default, Serialize)]
pub struct ReconcileReport {
    /// Leases revoked (expired, or left half done by a crash).
    pub revoked: Vec<String>,
    /// Leases whose revocation failed again (still listed, tried again later).
    pub failed: Vec<String>,
    /// Managed users in a database that the store did not know (or knew as revoked),
    /// dropped.
    pub orphans: Vec<String>,
}

impl Registry {
    /// Revokes what is due (expired leases, revocations under way, issues a crash cut
    /// short) and drops managed users the store does not know.
    pub fn reconcile_leases(&self) -> Result<ReconcileReport> {
        let now = crate::time::now_millis();
        let stale = now - STALE_ISSUE.as_millis() as i64;
        let mut report = ReconcileReport::default();
        for row in self.store()?.leases_due(now, stale)? {
            match self.revoke_lease(&row.id) {
                Ok(_) => report.revoked.push(row.id),
                Err(_) => report.failed.push(row.id),
            }
        }
        report.orphans = self.drop_orphans()?;
        Ok(report)
    }

    /// Each admin block leases are declared with, and the prefixes used there.
    fn lease_admins(&self) -> Result<Vec<(String, String, RoleName, String)>> {
        let mut admins = Vec::new();
        for row in self.store()?.blocks_mentioning(CONNECTOR, "lease")? {
            let block = super::local::block_from_row(row, None)?;
            if let Ok(spec) = lease_spec(&block) {
                let database = connection_info(&block)
                    .map(|i| i.database)
                    .unwrap_or_default();
                let entry = (spec.admin, spec.prefix, spec.role, database);
                let same = |a: &(String, String, RoleName, String)| {
                    (&a.0, &a.1, a.2.as_str()) == (&entry.0, &entry.1, entry.2.as_str())
                };
                if !admins.iter().any(same) {
                    admins.push(entry);
                }
            }
        }
        Ok(admins)
    }

    fn drop_orphans(&self) -> Result<Vec<String>> {
        let mut dropped = Vec::new();
        for (admin_block, prefix, group, database) in self.lease_admins()? {
            let known = self.store()?.lease_usernames(&admin_block)?;
            let names = self.with_admin(&admin_block, None, |admin| {
                let sql = lease_sql::managed_roles(admin.engine()?, &prefix, &group)?;
                admin.names(&sql)
            })?;
            for name in names {
                if !is_leased_name(&name, &prefix) {
                    continue;
                }
                let live = known
                    .iter()
                    .any(|(user, st)| user == &name && st != state::REVOKED);
                if live {
                    continue;
                }
                let role = RoleName::parse(&name)?;
                self.take_apart_user(&admin_block, &role, &group, &database)?;
                let (actor, request_id) = self.lease_actor();
                let record = NewAuditRow::single(
                    crate::time::now_millis(),
                    request_id,
                    actor,
                    "lease-orphan-dropped".into(),
                    None,
                    "ok".into(),
                );
                self.store()?.record_audit(&[record.with_detail(&name)])?;
                dropped.push(name);
            }
        }
        Ok(dropped)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_leased_users_name_is_one() {
        let made = leased_username("bylease_", &BlockName::parse("crdb-sage").unwrap()).unwrap();
        assert!(
            is_leased_name(made.as_str(), "bylease_"),
            "{}",
            made.as_str()
        );
        for other in [
            "bylease_rw",
            "bylease_",
            "app_rw",
            "bylease_x_0123456789aG",
            "bylease_x_12ab",
        ] {
            assert!(!is_leased_name(other, "bylease_"), "{other}");
        }
    }
}
