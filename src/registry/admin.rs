//! What a local store offers interfaces besides blocks: API tokens, the audit log,
//! migrations, and the token verifier and audit writer a server is built from. The
//! interfaces reach all of it through the registry, never the store.

use std::sync::Arc;
use std::time::Duration;

use super::handle::Registry;
use super::keys::KeyManager;
use crate::audit::{AuditLog, AuditOptions};
use crate::auth::{self, NewToken, TokenInfo, Verifier};
use crate::config::Config;
use crate::error::{Error, Result};
use crate::store::{Heard, Store, TOKENS_CHANNEL};

use crate::store::NewAuditRow;
pub use crate::store::{AuditFilter, AuditRow, MigrationStatus};

/// Audit records deleted per transaction by a prune.
pub const PRUNE_BATCH: i64 = 250;

/// After each batch a prune rests this many times as long as the batch took, so it
/// uses at most a fifth of the store's time and requests' records are written in
/// between without waiting (measured with `PRUNE=1000000 benches/http/soak.sh`).
pub const PRUNE_REST: u32 = 4;

/// The advisory lock of the server's background pruning: one server of several
/// sharing a PostgreSQL store prunes at a time.
pub const AUDIT_PRUNE_LOCK: i64 = 0x626c_6f63_6b61_7564;

/// What a prune did.
#[derive(Clone, Debug, serde::Serialize)]
pub struct PruneReport {
    pub before: String,
    pub deleted: u64,
}

/// The migration that gave token and type rows their MAC. Rows that exist when it is
/// applied are bound by the same run (with the master key); rows written later without
/// the master key never are.
const TOKEN_BINDING: &str = "000005";

/// Migrations applied to the configured store: its URL and the names applied (none
/// when it was up to date). Works on a store the registry would refuse to open. A
/// store whose secrets were sealed before they were bound to their block's version and
/// document is re-sealed too (with the master key; safe to interrupt and re-run).
pub fn migrate(config: &Config) -> Result<(String, Vec<String>)> {
    let store = Store::open(config.database_url.clone(), &config.pool)?;
    let mut applied = store.migrate()?;
    if store.meta(super::keys::META_FINGERPRINT)?.is_some() && KeyManager::needs_reseal(&store)? {
        let keys = KeyManager::new(config.key.clone(), config.data_dir.clone());
        let rows = keys.reseal_legacy(&store, |_, _| {})?;
        applied.push(format!(
            "seal-format-3 ({rows} sealed rows bound to their type, version and document)"
        ));
    }
    let fingerprint = store.meta(super::keys::META_FINGERPRINT)?.is_some();
    if fingerprint && applied.iter().any(|name| name.contains(TOKEN_BINDING)) {
        let keys = KeyManager::new(config.key.clone(), config.data_dir.clone());
        let key = keys.master(&store)?.row_key();
        let tokens = store.bind_unbound_tokens(|row| auth::row_mac(&key, row))?;
        let types =
            store.bind_unbound_types(|slug, def| super::local::type_mac(&key, slug, def))?;
        applied.push(format!(
            "row-binding ({tokens} tokens and {types} block types bound to the master key)"
        ));
    }
    Ok((store.url().to_string(), applied))
}

/// The configured store's migrations, applied and pending.
pub fn migration_status(config: &Config) -> Result<MigrationStatus> {
    Store::open(config.database_url.clone(), &config.pool)?.migration_status()
}

impl Registry {
    /// The local store's URL (passwords never included).
    pub fn store_url(&self) -> Result<String> {
        Ok(self.store()?.url().to_string())
    }

    /// The open store's migrations, applied and pending.
    pub fn migration_status(&self) -> Result<MigrationStatus> {
        self.store()?.migration_status()
    }

    /// Creates an API token; its secret is in the answer, only this once.
    pub fn create_token(
        &self,
        name: &str,
        scopes: &[String],
        expires_in: Option<Duration>,
    ) -> Result<NewToken> {
        if let Some(remote) = &self.remote {
            return remote.create_token(name, scopes, expires_in);
        }
        let audit = super::local::audit_row(self.record());
        let key = self.row_key()?;
        auth::create_token(
            self.store()?,
            &key,
            name,
            scopes,
            expires_in,
            audit.as_ref(),
        )
    }

    /// Through a server, the token this registry calls it with; on a local store, none
    /// (nothing is asked of a token there).
    pub fn own_token(&self) -> Result<Option<crate::wire::TokenIdentity>> {
        self.remote.as_ref().map(|r| r.own_token()).transpose()
    }

    /// Every token; a row not bound to this master key is listed as `unbound`.
    pub fn list_tokens(&self) -> Result<Vec<TokenInfo>> {
        if let Some(remote) = &self.remote {
            return remote.list_tokens();
        }
        auth::list_tokens(self.store()?, &self.row_key()?)
    }

    pub fn revoke_token(&self, name_or_id: &str) -> Result<()> {
        if let Some(remote) = &self.remote {
            return remote.revoke_token(name_or_id);
        }
        let audit = super::local::audit_row(self.record());
        let key = self.row_key()?;
        auth::revoke_token(self.store()?, &key, name_or_id, audit.as_ref())
    }

    /// The key token rows are bound with (checks the master key first).
    pub(super) fn row_key(&self) -> Result<crate::crypto::RowKey> {
        let (store, keys) = self.local()?;
        Ok(keys.master(store)?.row_key())
    }

    /// Audit records, newest first.
    pub fn audit(&self, filter: &AuditFilter) -> Result<Vec<AuditRow>> {
        if let Some(remote) = &self.remote {
            return remote.audit(filter);
        }
        self.store()?.audit(filter)
    }

    /// Up to `limit` audit records after id `after`, oldest first: an export that
    /// resumes from the last id it wrote.
    pub fn audit_after(&self, after: i64, since: Option<i64>, limit: i64) -> Result<Vec<AuditRow>> {
        if let Some(remote) = &self.remote {
            return remote.audit_after(after, since, limit);
        }
        self.store()?.audit_after(after, since, limit)
    }

    /// Deletes the audit records older than `before` (Unix ms) in batches of
    /// [`PRUNE_BATCH`], each its own short transaction followed by a rest
    /// ([`PRUNE_REST`]) so requests' records go on being written in between;
    /// `progress(done, total)` after each. A prune that deletes anything is on record
    /// (by `actor`, with how many records it set out to delete), committed with its
    /// first batch.
    pub fn prune_audit(
        &self,
        before: i64,
        actor: &str,
        mut progress: impl FnMut(u64, u64),
    ) -> Result<PruneReport> {
        let store = self.store()?;
        let total = store.audit_count_before(before)? as u64;
        let before_text = crate::time::rfc3339(before);
        // On record with the first batch, before anything is gone.
        let mut record = Some(NewAuditRow::single(
            crate::time::now_millis(),
            format!("prune-{}", uuid::Uuid::new_v4().simple()),
            actor.to_owned(),
            "prune-audit".into(),
            Some(format!("audit before {before_text}: {total} to delete")),
            "ok".into(),
        ));
        let (mut deleted, mut after) = (0u64, 0);
        loop {
            let started = std::time::Instant::now();
            let (n, last) = store.prune_audit_batch(before, after, PRUNE_BATCH, record.as_ref())?;
            if last == after {
                break;
            }
            record = None;
            super::crash::crash_point("prune-batch-deleted");
            after = last;
            std::thread::sleep(started.elapsed() * PRUNE_REST);
            deleted += n as u64;
            progress(deleted, total.max(deleted));
        }
        Ok(PruneReport {
            before: before_text,
            deleted,
        })
    }

    /// The time the server's retention counts from: its own clock, but never later than
    /// the newest audit record it finds at start (a clock that jumped ahead is no reason
    /// to prune; the pruner then counts on with a monotonic clock).
    pub fn audit_clock_anchor(&self) -> Result<i64> {
        let now = crate::time::now_millis();
        Ok(self
            .store()?
            .newest_audit_at()?
            .map_or(now, |newest| newest.min(now)))
    }

    /// A verifier of bearer tokens against this store, trusting each for `ttl`.
    pub fn token_verifier(&self, ttl: Duration) -> Result<Verifier> {
        Ok(Verifier::new(self.store()?.clone(), self.row_key()?, ttl))
    }

    /// Keeps `verifier` in step with token changes made by any server on this store:
    /// on PostgreSQL a thread listens for them (it ends with the verifier), and
    /// `listening` is told each time listening starts (`true`) or is lost (`false`,
    /// with why; the verifier then falls back to its time-bound cache until it starts
    /// again). Nothing to do on SQLite, whose store has one server.
    pub fn watch_tokens(
        &self,
        verifier: &Arc<Verifier>,
        listening: impl Fn(bool, Option<&str>) + Send + 'static,
    ) -> Result<()> {
        let store = self.store()?.clone();
        if store.url().backend() != crate::db::Backend::Postgres {
            return Ok(());
        }
        let verifier = Arc::downgrade(verifier);
        let spawned = std::thread::Builder::new()
            .name("token-notices".into())
            .spawn(move || {
                let mut now_listening = None;
                store.listen(TOKENS_CHANNEL, |heard| {
                    let Some(verifier) = verifier.upgrade() else {
                        return false;
                    };
                    let (is, why) = match &heard {
                        Heard::Lost(why) => (false, Some(why.as_str())),
                        Heard::Listening => (true, None),
                        _ => (now_listening.unwrap_or(false), None),
                    };
                    if now_listening != Some(is) {
                        listening(is, why);
                        now_listening = Some(is);
                    }
                    verifier.heard(heard);
                    true
                })
            });
        spawned.map_err(|err| Error::io("starting the token listener", err))?;
        Ok(())
    }

    /// Runs `work` while this registry's server is the one of those sharing the store
    /// that holds the lock `key`; `None` when another holds it.
    pub fn exclusively<T>(&self, key: i64, work: impl FnOnce() -> T) -> Result<Option<T>> {
        self.store()?.exclusively(key, work)
    }

    /// The store pool's measures (checkout waits, timeouts) and its connections now
    /// (in use, idle).
    pub fn pool_measures(&self) -> Result<&crate::metrics::PoolMeasures> {
        Ok(self.store()?.measures())
    }

    pub fn pool_state(&self) -> Result<(u32, u32)> {
        Ok(self.store()?.pool_state())
    }

    /// Starts the writer of audit records into this store.
    pub fn start_audit_log(&self, options: &AuditOptions) -> Result<AuditLog> {
        Ok(AuditLog::start(self.store()?.clone(), options))
    }
}
