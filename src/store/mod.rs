//! The store: pooled diesel connections to SQLite or PostgreSQL, migrations, and the
//! row-level queries the registry needs. It stores ciphertext and never sees a key.

/// Runs `$body` with `$c` bound to the store's own connection type (SQLite or
/// PostgreSQL), for what diesel cannot do through the multi-backend connection: batch
/// inserts, and `IN` lists of bound values.
macro_rules! with_backend {
    ($conn:expr, $c:ident => $body:expr) => {
        match $conn {
            $crate::db::AnyConnection::Sqlite($c) => $body,
            #[cfg(feature = "postgres")]
            $crate::db::AnyConnection::Postgresql($c) => $body,
            #[allow(unreachable_patterns)]
            _ => return Err($crate::store::not_a_store()),
        }
    };
}

mod access;
mod backup;
mod blocks;
mod fleet;
mod keys;
mod leases;
mod notify;
mod schema;
mod types;
mod url;

pub use access::{
    AuditFilter, AuditRow, CLOCK_MARGIN, NewAuditRow, TokenRow, add_to_audit, insert_audit,
    insert_open_audit, lock_audit_order, store_now,
};
pub use backup::StoreRows;
pub use blocks::{BlockRow, ChangeKind, DELETED, SealedRow, VersionRow, block_stamps};
pub use fleet::{SessionRow, TestRow};
pub use keys::DataKeyRow;
pub use leases::{LeaseRow, state as lease_state};
pub use notify::{Heard, TOKENS_CHANNEL};
pub use types::{StoredType, TypeRow};
pub use url::StoreUrl;

/// Store connections are [`AnyConnection`]s; the store URL only ever selects SQLite or
/// PostgreSQL.
pub type StoreConnection = AnyConnection;

use std::time::Duration;

use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use diesel::r2d2::{ManageConnection, Pool, PooledConnection, R2D2Connection};
use diesel_migrations::{EmbeddedMigrations, MigrationHarness, embed_migrations};

use crate::db::{AnyConnection, Backend, Connect};
use crate::error::{Error, Result};
use crate::metrics::PoolMeasures;

/// The shortest time between two background WAL checkpoints (see
/// [`Store::connect_writer`]). Measured with wrk: 5-10 ms keeps the writer's own
/// checkpoints short; at 20 ms and more they stall it again.
const CHECKPOINT_EVERY: Duration = Duration::from_millis(5);

const SQLITE_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/sqlite");
#[cfg_attr(not(feature = "postgres"), allow(dead_code))]
const POSTGRES_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/postgres");

/// Opens connections of the backend a [`StoreUrl`] names (never by trial and error,
/// so a wrong PostgreSQL password reports as such).
#[derive(Debug)]
pub struct StoreManager {
    url: StoreUrl,
}

impl ManageConnection for StoreManager {
    type Connection = StoreConnection;
    type Error = diesel::ConnectionError;

    fn connect(&self) -> Result<StoreConnection, diesel::ConnectionError> {
        let backend = self.url.backend();
        let mut conn = AnyConnection::connect(backend, &self.url.connection_string())?;
        if backend == Backend::Sqlite {
            // WAL lets readers run beside a writer (busy_timeout, set for every SQLite
            // connection, queues writers instead of failing them). FULL syncs the WAL at
            // every commit, so an acknowledged change or read record survives power loss
            // or an OS crash (NORMAL may lose the last commits); the audit writer's
            // batches keep the number of commits, and so of syncs, down.
            conn.batch_execute("PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL;")
                .map_err(diesel::ConnectionError::CouldntSetupConfiguration)?;
        }
        Ok(conn)
    }

    fn is_valid(&self, conn: &mut StoreConnection) -> Result<(), diesel::ConnectionError> {
        conn.ping()
            .map_err(diesel::ConnectionError::CouldntSetupConfiguration)
    }

    fn has_broken(&self, conn: &mut StoreConnection) -> bool {
        conn.is_broken()
    }
}

/// Pool sizing and timeouts for the store.
#[derive(Clone, Debug)]
pub struct PoolOptions {
    pub max_size: u32,
    pub connection_timeout: Duration,
}

/// The same numbers as the `pool_max_size` and `connect_timeout_secs` rows of
/// `config::SETTINGS` (which this floor cannot see); for stores opened without a
/// `Config` (tests, the audit writer's own connection in tests).
impl Default for PoolOptions {
    fn default() -> Self {
        PoolOptions {
            max_size: 8,
            connection_timeout: Duration::from_secs(5),
        }
    }
}

/// Migration state of a store.
#[derive(Clone, Debug, serde::Serialize)]
pub struct MigrationStatus {
    /// Every migration this build knows, oldest first, with when it was applied.
    pub migrations: Vec<MigrationState>,
    /// Names of the applied migrations, oldest first (and versions this build does not
    /// know, as recorded).
    pub applied: Vec<String>,
    /// Names of the pending migrations, oldest first.
    pub pending: Vec<String>,
}

/// One migration: its name and when it was applied (`None`: pending).
#[derive(Clone, Debug, serde::Serialize)]
pub struct MigrationState {
    pub name: String,
    pub applied_at: Option<String>,
}

#[derive(diesel::QueryableByName)]
struct AppliedRow {
    #[diesel(sql_type = diesel::sql_types::Text)]
    version: String,
    #[diesel(sql_type = diesel::sql_types::Text)]
    run_on: String,
}

/// The connection of [`Store::connect_writer`]; dropping it ends its checkpoint thread.
pub struct WriterConnection {
    pub conn: StoreConnection,
    committed: Option<std::sync::mpsc::SyncSender<()>>,
    checkpointer: Option<std::thread::JoinHandle<()>>,
}

impl Drop for WriterConnection {
    /// Ends the checkpoint thread and waits for it (at most one [`CHECKPOINT_EVERY`]),
    /// so its connection is closed before the writer's: the last to close removes the
    /// WAL, and a stopping server leaves none behind.
    fn drop(&mut self) {
        self.committed = None;
        if let Some(thread) = self.checkpointer.take() {
            let _ = thread.join();
        }
    }
}

impl WriterConnection {
    /// Tells the checkpoint thread (if any) that a commit added pages to the WAL.
    pub fn committed(&self) {
        if let Some(tx) = &self.committed {
            let _ = tx.try_send(());
        }
    }
}

/// A pool of store connections.
#[derive(Clone)]
pub struct Store {
    pool: Pool<StoreManager>,
    url: StoreUrl,
    measures: PoolMeasures,
}

/// Feeds the pool's checkouts into its [`PoolMeasures`].
#[derive(Debug)]
struct Measured(PoolMeasures);

impl diesel::r2d2::HandleEvent for Measured {
    fn handle_checkout(&self, event: diesel::r2d2::event::CheckoutEvent) {
        self.0.wait_seconds.observe(event.duration().as_secs_f64());
    }

    fn handle_timeout(&self, _event: diesel::r2d2::event::TimeoutEvent) {
        self.0.timeouts.inc();
    }
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Store({})", self.url)
    }
}

pub(crate) type Conn = PooledConnection<StoreManager>;

impl Store {
    /// Builds the pool without connecting; the first query connects.
    pub fn open(url: StoreUrl, options: &PoolOptions) -> Result<Self> {
        url.backend().ensure_compiled()?;
        if let StoreUrl::Sqlite(path) = &url {
            if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                crate::files::create_private_dir(dir)?;
            }
            crate::files::touch_private(path)?;
        }
        // One helper thread opens connections (r2d2's default starts three): the store
        // is opened by every command, and most need a single connection.
        let helper = scheduled_thread_pool::ScheduledThreadPool::builder()
            .num_threads(1)
            .thread_name_pattern("store-pool")
            .build();
        let measures = PoolMeasures::default();
        let pool = Pool::builder()
            .event_handler(Box::new(Measured(measures.clone())))
            .max_size(options.max_size)
            .min_idle(Some(0))
            .thread_pool(std::sync::Arc::new(helper))
            .connection_timeout(options.connection_timeout)
            .build_unchecked(StoreManager { url: url.clone() });
        Ok(Store {
            pool,
            url,
            measures,
        })
    }

    /// The pool's measures: checkout waits and timeouts.
    pub fn measures(&self) -> &PoolMeasures {
        &self.measures
    }

    /// Connections the pool holds now: (in use, idle).
    pub fn pool_state(&self) -> (u32, u32) {
        let state = self.pool.state();
        (
            state.connections - state.idle_connections,
            state.idle_connections,
        )
    }

    pub fn url(&self) -> &StoreUrl {
        &self.url
    }

    /// Runs `work` holding the store-wide lock `key`, or answers `None` at once when
    /// someone else holds it. On PostgreSQL it is a session advisory lock, so of several
    /// servers sharing the store one does the work; an SQLite store has one server.
    pub fn exclusively<T>(&self, key: i64, work: impl FnOnce() -> T) -> Result<Option<T>> {
        #[derive(diesel::QueryableByName)]
        struct Locked {
            #[diesel(sql_type = diesel::sql_types::Bool)]
            locked: bool,
        }
        if self.url.backend() != Backend::Postgres {
            return Ok(Some(work()));
        }
        let mut conn = self.pool.get()?;
        let got: Locked =
            diesel::sql_query(format!("SELECT pg_try_advisory_lock({key}) AS locked"))
                .get_result(&mut *conn)?;
        if !got.locked {
            return Ok(None);
        }
        let out = work();
        diesel::sql_query(format!("SELECT pg_advisory_unlock({key})")).execute(&mut *conn)?;
        Ok(Some(out))
    }

    /// A connection of its own, outside the pool, for a thread that writes all the time
    /// (the audit writer) and keeps one open instead of checking one out, and pinging
    /// it, for each batch. On SQLite a second connection checkpoints the WAL from a
    /// background thread soon after each commit (at most every [`CHECKPOINT_EVERY`]),
    /// so the writer's own automatic checkpoints find the pages already copied and
    /// synced, and stay short.
    pub fn connect_writer(&self) -> Result<WriterConnection> {
        let manager = StoreManager {
            url: self.url.clone(),
        };
        let unavailable = |err: diesel::ConnectionError| {
            Error::StoreUnavailable(format!(
                "cannot connect to the store at {}: {err}",
                self.url
            ))
        };
        let conn = manager.connect().map_err(unavailable)?;
        let (mut committed, mut checkpointer) = (None, None);
        if self.url.backend() == Backend::Sqlite {
            let mut checkpoint_conn = manager.connect().map_err(unavailable)?;
            let (tx, rx) = std::sync::mpsc::sync_channel::<()>(1);
            let thread = std::thread::Builder::new()
                .name("wal-checkpoint".into())
                .spawn(move || {
                    // Ends when the writer's connection is dropped. A failed checkpoint
                    // is left to the writer's automatic ones.
                    while rx.recv().is_ok() {
                        let _ = checkpoint_conn.batch_execute("PRAGMA wal_checkpoint(PASSIVE)");
                        std::thread::sleep(CHECKPOINT_EVERY);
                    }
                })
                .map_err(|err| Error::io("starting the checkpoint thread", err))?;
            (committed, checkpointer) = (Some(tx), Some(thread));
        }
        Ok(WriterConnection {
            conn,
            committed,
            checkpointer,
        })
    }

    pub(crate) fn conn(&self) -> Result<Conn> {
        self.pool.get().map_err(|err| {
            Error::StoreUnavailable(format!(
                "cannot connect to the store at {}: {err}",
                self.url
            ))
        })
    }

    /// Applied and pending migrations.
    pub fn migration_status(&self) -> Result<MigrationStatus> {
        let mut conn = self.conn()?;
        let status = match &mut *conn {
            StoreConnection::Sqlite(c) => migration_names(c, SQLITE_MIGRATIONS)?,
            #[cfg(feature = "postgres")]
            StoreConnection::Postgresql(c) => migration_names(c, POSTGRES_MIGRATIONS)?,
            #[allow(unreachable_patterns)]
            _ => return Err(not_a_store()),
        };
        Ok(status)
    }

    /// Applies every pending migration; returns the names applied.
    pub fn migrate(&self) -> Result<Vec<String>> {
        let mut conn = self.conn()?;
        let done = match &mut *conn {
            StoreConnection::Sqlite(c) => c.run_pending_migrations(SQLITE_MIGRATIONS),
            #[cfg(feature = "postgres")]
            StoreConnection::Postgresql(c) => c.run_pending_migrations(POSTGRES_MIGRATIONS),
            #[allow(unreachable_patterns)]
            _ => return Err(not_a_store()),
        }
        .map_err(|err| Error::Store(format!("migration failed: {err}")))?;
        Ok(done.iter().map(ToString::to_string).collect())
    }

    pub fn meta(&self, key: &str) -> Result<Option<String>> {
        use schema::store_meta::dsl as m;
        let mut conn = self.conn()?;
        Ok(m::store_meta
            .filter(m::key.eq(key))
            .select(m::value)
            .first::<String>(&mut *conn)
            .optional()?)
    }

    /// Sets a meta entry, replacing its value.
    pub fn set_meta(&self, key: &str, value: &str) -> Result<()> {
        use schema::store_meta::dsl as m;
        let mut conn = self.conn()?;
        conn.transaction::<_, diesel::result::Error, _>(|conn| {
            let updated = diesel::update(m::store_meta.filter(m::key.eq(key)))
                .set(m::value.eq(value))
                .execute(conn)?;
            if updated == 0 {
                diesel::insert_into(m::store_meta)
                    .values((m::key.eq(key), m::value.eq(value)))
                    .execute(conn)?;
            }
            Ok(())
        })?;
        Ok(())
    }

    /// Inserts meta entries in one transaction; false if any key already existed
    /// (another process initialised the store first), in which case nothing is written.
    pub fn insert_meta_once(
        &self,
        entries: &[(&str, String)],
        first_key: &DataKeyRow,
    ) -> Result<bool> {
        use schema::store_meta::dsl as m;
        let mut conn = self.conn()?;
        let outcome = conn.transaction::<_, diesel::result::Error, _>(|conn| {
            for (key, value) in entries {
                diesel::insert_into(m::store_meta)
                    .values((m::key.eq(*key), m::value.eq(value)))
                    .execute(conn)?;
            }
            keys::insert(conn, first_key)?;
            Ok(())
        });
        match outcome {
            Ok(()) => Ok(true),
            Err(diesel::result::Error::DatabaseError(
                diesel::result::DatabaseErrorKind::UniqueViolation,
                _,
            )) => Ok(false),
            Err(err) => Err(err.into()),
        }
    }
}

pub(crate) fn not_a_store() -> Error {
    Error::InvalidDatabaseUrl("MySQL is not a store backend; use SQLite or PostgreSQL".into())
}

fn migration_names<C>(conn: &mut C, source: EmbeddedMigrations) -> Result<MigrationStatus>
where
    C: MigrationHarness<C::Backend> + diesel::Connection,
    diesel::query_builder::SqlQuery: diesel::query_dsl::LoadQuery<'static, C, AppliedRow>,
{
    use diesel::migration::MigrationSource;
    let wrap = |err: Box<dyn std::error::Error + Send + Sync>| {
        Error::Store(format!("reading migrations: {err}"))
    };
    // Creates diesel's table when missing, so the query below finds it.
    conn.applied_migrations().map_err(wrap)?;
    let applied: Vec<AppliedRow> = diesel::sql_query(
        "SELECT version, CAST(run_on AS TEXT) AS run_on FROM __diesel_schema_migrations",
    )
    .load(conn)?;
    // diesel records a version without separators (`20261121000001`).
    let digits = |v: &str| v.chars().filter(char::is_ascii_digit).collect::<String>();
    let mut known: Vec<(String, MigrationState)> =
        MigrationSource::<C::Backend>::migrations(&source)
            .map_err(wrap)?
            .iter()
            .map(|m| {
                let version = digits(&m.name().version().to_string());
                let applied_at = applied
                    .iter()
                    .find(|a| digits(&a.version) == version)
                    .map(|a| a.run_on.clone());
                let name = m.name().to_string();
                (version, MigrationState { name, applied_at })
            })
            .collect();
    known.sort_by(|a, b| a.1.name.cmp(&b.1.name));
    let (versions, known): (Vec<String>, Vec<MigrationState>) = known.into_iter().unzip();
    let names = |applied: bool| -> Vec<String> {
        known
            .iter()
            .filter(|m| m.applied_at.is_some() == applied)
            .map(|m| m.name.clone())
            .collect()
    };
    let mut applied_names = names(true);
    // Versions this build does not know still count as applied (a newer build's store).
    applied_names.extend(
        applied
            .iter()
            .map(|a| digits(&a.version))
            .filter(|v| !versions.contains(v)),
    );
    Ok(MigrationStatus {
        pending: names(false),
        applied: applied_names,
        migrations: known,
    })
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    fn names(backend: &str) -> BTreeSet<String> {
        std::fs::read_dir(format!(
            "{}/migrations/{backend}",
            env!("CARGO_MANIFEST_DIR")
        ))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect()
    }

    #[test]
    fn migration_names_are_identical_across_backends() {
        assert!(!names("sqlite").is_empty());
        assert_eq!(names("sqlite"), names("postgres"));
    }
}
