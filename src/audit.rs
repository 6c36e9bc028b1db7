//! The audit log: who read a secret or changed what, when, with which outcome. Records
//! are written by writer threads, each on a store connection of its own, that commit
//! whatever is queued in a single trip (group commit); a caller learns its record is
//! stored before it answers. The same trip confirms that a block the server kept from
//! an earlier read is still the stored one, so a repeated read costs one batched query
//! and no decryption.
//!
//! Successful secret reads of one block by one actor within a window (a minute by
//! default) fold into one record with a count: the writer adds each batch's reads to
//! the record it opened, in the batch's commit, so the log grows with what happened,
//! not with how often. Refusals, failures and changes are records of their own.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::time::Duration;

use diesel::Connection;

use crate::block::BlockStamp;
use crate::error::{Error, Result};
use crate::metrics::AuditMeasures;
use crate::store::{
    NewAuditRow, Store, StoreConnection, WriterConnection, add_to_audit, block_stamps,
    insert_audit, insert_open_audit, store_now,
};
use crate::time::now_millis;

/// The only action whose successful events fold into counted records.
const FOLDED_ACTION: &str = "read-secrets";

/// One thing to record.
#[derive(Clone, Debug)]
pub struct AuditEvent {
    pub request_id: String,
    pub actor: String,
    pub action: &'static str,
    pub block: Option<String>,
    pub outcome: String,
}

impl AuditEvent {
    /// The record this event may fold into (actor, block): a successful secret read.
    fn fold_key(&self) -> Option<(&str, &str)> {
        let block = self.block.as_deref()?;
        (self.action == FOLDED_ACTION && self.outcome == "ok").then_some((&self.actor, block))
    }

    fn single(&self, at: i64) -> NewAuditRow {
        NewAuditRow::single(
            at,
            storable(&self.request_id),
            storable(&self.actor),
            self.action.into(),
            self.block.as_deref().map(storable),
            storable(&self.outcome),
        )
    }
}

/// A block read from memory, valid only if the store still holds it at `stamp`.
#[derive(Clone, Debug)]
pub struct Expected {
    pub name: String,
    pub stamp: BlockStamp,
}

/// How the audit log is written.
#[derive(Clone, Debug)]
pub struct AuditOptions {
    /// Successful secret reads of a block by an actor within this window are one
    /// record with a count; zero writes a record per read.
    pub fold_window: Duration,
    /// Writer threads, each committing its own batches: on PostgreSQL one batch's
    /// commit waits for the disk while the next is sent. SQLite has one writer at a
    /// time whatever this says, so it gets one thread.
    pub writers: u16,
}

type Reply = tokio::sync::oneshot::Sender<Result<bool>>;

/// What a writer thread is asked to do: record `event` (if any), but only if
/// `expected` (if any) still holds.
struct Job {
    event: Option<AuditEvent>,
    expected: Option<Expected>,
    reply: Reply,
}

/// Handle to the audit writer threads; cheap to clone.
#[derive(Clone, Debug)]
pub struct AuditLog {
    queue: mpsc::SyncSender<Job>,
    finished: WritersFinished,
    health: Arc<WriterHealth>,
}

/// How the writers are doing, for readiness and metrics: when the batch in hand (if
/// any) began, whether the last commit failed, and the batches' measures.
#[derive(Debug, Default)]
pub struct WriterHealth {
    /// Unix ms the oldest batch now being committed began; 0 when none is.
    busy_since: AtomicI64,
    /// Whether the last batch failed to commit.
    failing: AtomicBool,
    pub measures: AuditMeasures,
}

impl WriterHealth {
    /// Why the audit log cannot be written now, if it cannot: its last commit failed,
    /// or a commit has been waiting on the store for longer than `stuck`.
    pub fn problem(&self, stuck: Duration) -> Option<&'static str> {
        let since = self.busy_since.load(Ordering::SeqCst);
        if since != 0 && now_millis() - since > stuck.as_millis() as i64 {
            return Some("an audit commit is waiting on the store");
        }
        self.failing
            .load(Ordering::SeqCst)
            .then_some("the last audit commit failed")
    }
}

/// Tells when every writer thread has ended, its store connection closed (SQLite
/// removes its WAL file when the last connection closes cleanly). A writer ends once
/// every [`AuditLog`] handle is dropped and the batch in hand is committed.
#[derive(Clone, Debug)]
pub struct WritersFinished(Arc<Mutex<mpsc::Receiver<()>>>);

impl WritersFinished {
    /// Waits up to `limit` for the writers to end; whether they did.
    pub fn wait(&self, limit: Duration) -> bool {
        let done = self.0.lock().unwrap_or_else(|e| e.into_inner());
        // Nothing is ever sent: the channel closes as the last writer drops its end.
        matches!(
            done.recv_timeout(limit),
            Err(mpsc::RecvTimeoutError::Disconnected)
        )
    }
}

const BATCH: usize = 512;

impl AuditLog {
    /// Starts the writer threads for `store`.
    pub fn start(store: Store, options: &AuditOptions) -> AuditLog {
        let (queue, rx) = mpsc::sync_channel::<Job>(8 * BATCH);
        let rx = Arc::new(Mutex::new(rx));
        let writers = match store.url().backend() {
            crate::db::Backend::Sqlite => 1,
            _ => options.writers.max(1),
        };
        let window = i64::try_from(options.fold_window.as_millis()).unwrap_or(i64::MAX);
        let (alive, finished) = mpsc::channel::<()>();
        let health = Arc::new(WriterHealth::default());
        for n in 0..writers {
            let (store, rx, alive) = (store.clone(), rx.clone(), alive.clone());
            let health = health.clone();
            std::thread::Builder::new()
                .name(format!("audit-writer-{n}"))
                .spawn(move || {
                    write_batches(&store, &rx, window, &health);
                    // Its connection is closed by now; so is the pool's, if this was
                    // the last handle to it. Then the thread counts as ended.
                    drop(store);
                    drop(alive);
                })
                .expect("spawning an audit writer thread");
        }
        AuditLog {
            queue,
            finished: WritersFinished(Arc::new(Mutex::new(finished))),
            health,
        }
    }

    /// How the writers are doing.
    pub fn health(&self) -> &WriterHealth {
        &self.health
    }

    /// What tells when the writer threads have ended (see [`WritersFinished`]).
    pub fn finished(&self) -> WritersFinished {
        self.finished.clone()
    }

    /// Records an event; resolves once it is committed.
    pub async fn record(&self, event: AuditEvent) -> Result<()> {
        self.submit(Some(event), None).await.map(|_| ())
    }

    /// Records `event` (if any) only if the block named in `expected` is still at its
    /// stamp; resolves to whether it was. A stale read records nothing: the caller
    /// reads the block again and records that read.
    pub async fn record_if_current(
        &self,
        event: Option<AuditEvent>,
        expected: Expected,
    ) -> Result<bool> {
        self.submit(event, Some(expected)).await
    }

    async fn submit(&self, event: Option<AuditEvent>, expected: Option<Expected>) -> Result<bool> {
        let (reply, rx) = tokio::sync::oneshot::channel();
        let queue = self.queue.clone();
        let job = Job {
            event,
            expected,
            reply,
        };
        // A full queue blocks; keep that off the async executor.
        let sent = match queue.try_send(job) {
            Ok(()) => true,
            Err(mpsc::TrySendError::Full(job)) => {
                tokio::task::spawn_blocking(move || queue.send(job).is_ok())
                    .await
                    .unwrap_or(false)
            }
            Err(mpsc::TrySendError::Disconnected(_)) => false,
        };
        if !sent {
            return Err(Error::AuditUnavailable("the audit writer stopped".into()));
        }
        // A store that never answers holds the writer: the request is answered (with
        // nothing released) rather than held for the whole outage.
        match tokio::time::timeout(COMMIT_DEADLINE, rx).await {
            Err(_) => Err(Error::StoreUnavailable(format!(
                "the audit log's store did not answer within {} s",
                COMMIT_DEADLINE.as_secs()
            ))),
            Ok(answer) => answer.unwrap_or_else(|_| {
                Err(Error::AuditUnavailable("the audit writer stopped".into()))
            }),
        }
    }
}

/// The records one writer has open: for each (actor, block), the id of the record its
/// reads fold into and until when (Unix ms). Only this writer adds to them.
#[derive(Default)]
struct OpenRecords {
    window: i64,
    open: HashMap<(String, String), (i64, i64)>,
}

/// How long a request waits for its audit record's commit.
const COMMIT_DEADLINE: std::time::Duration = std::time::Duration::from_secs(5);

/// A writer thread: takes what is queued (up to [`BATCH`] jobs), commits it, answers
/// every job, and waits for more.
fn write_batches(
    store: &Store,
    rx: &Mutex<mpsc::Receiver<Job>>,
    window: i64,
    health: &WriterHealth,
) {
    let mut conn: Option<WriterConnection> = None;
    let mut records = OpenRecords {
        window,
        ..OpenRecords::default()
    };
    while let Some(batch) = next_batch(rx) {
        // A connection that failed (the store restarted, say) is replaced and the batch
        // tried once more before anyone is told it failed.
        let began = std::time::Instant::now();
        let _ =
            health
                .busy_since
                .compare_exchange(0, now_millis(), Ordering::SeqCst, Ordering::SeqCst);
        let outcome = commit(store, &mut conn, &mut records, &batch).or_else(|_| {
            conn = None;
            commit(store, &mut conn, &mut records, &batch)
        });
        health.busy_since.store(0, Ordering::SeqCst);
        health.failing.store(outcome.is_err(), Ordering::SeqCst);
        if outcome.is_err() {
            conn = None;
        } else {
            let m = &health.measures;
            m.batch_size.observe(batch.len() as f64);
            m.commit_seconds.observe(began.elapsed().as_secs_f64());
        }
        for (i, job) in batch.into_iter().enumerate() {
            let answer = match &outcome {
                Ok(current) => Ok(current[i]),
                Err(err) if job.event.is_some() => Err(Error::AuditUnavailable(err.to_string())),
                Err(err) => Err(Error::StoreUnavailable(err.to_string())),
            };
            let _ = job.reply.send(answer);
        }
    }
}

/// Waits for a job, then takes whatever else is queued, up to [`BATCH`]; `None` once
/// every sender is gone.
fn next_batch(rx: &Mutex<mpsc::Receiver<Job>>) -> Option<Vec<Job>> {
    let rx = rx.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    let mut batch = vec![rx.recv().ok()?];
    while batch.len() < BATCH {
        match rx.try_recv() {
            Ok(job) => batch.push(job),
            Err(_) => break,
        }
    }
    Some(batch)
}

/// Reads of one block by one actor in a batch.
struct Fold<'a> {
    actor: &'a str,
    block: &'a str,
    count: i64,
    first: &'a str,
    last: &'a str,
}

/// One batch: which expectations still hold (read after every job in it arrived), then
/// the records of the jobs that may be recorded, committed together: single events
/// inserted, reads added to the records open for them (or new open records).
fn commit(
    store: &Store,
    conn: &mut Option<WriterConnection>,
    records: &mut OpenRecords,
    batch: &[Job],
) -> Result<Vec<bool>> {
    let writer = match conn {
        Some(writer) => writer,
        None => conn.insert(store.connect_writer()?),
    };
    let current = still_current(&mut writer.conn, batch)?;
    let at = now_millis();
    let (singles, folds) = plan(batch, &current, records.window);
    if singles.is_empty() && folds.is_empty() {
        return Ok(current);
    }
    let singles: Vec<NewAuditRow> = singles.iter().map(|e| e.single(at)).collect();
    let conn = &mut writer.conn;
    // One record on SQLite is one statement, committed by itself; on PostgreSQL the
    // audit order lock must be held to the commit, so it is a transaction too.
    let opened = match (singles.len() + folds.len(), &*conn) {
        (1, StoreConnection::Sqlite(_)) => write(conn, records, at, &singles, &folds)?,
        _ => conn.transaction(|conn| write(conn, records, at, &singles, &folds))?,
    };
    writer.committed();
    records.open.retain(|_, (_, until)| *until > at);
    records.open.extend(opened);
    Ok(current)
}

/// The events of the jobs marked `recorded`: those that are records of their own, and
/// the reads folded per (actor, block), in the order they came.
fn plan<'a>(
    batch: &'a [Job],
    recorded: &[bool],
    window: i64,
) -> (Vec<&'a AuditEvent>, Vec<Fold<'a>>) {
    let mut singles = Vec::new();
    let mut folds: Vec<Fold> = Vec::new();
    let mut index: HashMap<(&str, &str), usize> = HashMap::new();
    let jobs = batch
        .iter()
        .zip(recorded)
        .filter(|(_, recorded)| **recorded);
    for event in jobs.filter_map(|(job, _)| job.event.as_ref()) {
        let Some((actor, block)) = event.fold_key().filter(|_| window > 0) else {
            singles.push(event);
            continue;
        };
        let i = *index.entry((actor, block)).or_insert_with(|| {
            folds.push(Fold {
                actor,
                block,
                count: 0,
                first: &event.request_id,
                last: &event.request_id,
            });
            folds.len() - 1
        });
        folds[i].count += 1;
        folds[i].last = &event.request_id;
    }
    (singles, folds)
}

/// Which jobs' expectations hold: a job without one always does.
fn still_current(conn: &mut StoreConnection, batch: &[Job]) -> Result<Vec<bool>> {
    let names: Vec<&str> = batch
        .iter()
        .filter_map(|job| job.expected.as_ref().map(|e| e.name.as_str()))
        .collect();
    let stamps = match names.is_empty() {
        true => HashMap::new(),
        false => block_stamps(conn, &names)?,
    };
    Ok(batch
        .iter()
        .map(|job| {
            job.expected
                .as_ref()
                .is_none_or(|e| stamps.get(&e.name) == Some(&e.stamp))
        })
        .collect())
}

type Opened = Vec<((String, String), (i64, i64))>;

/// Writes a batch's records; answers the records it opened, for the caller to keep
/// once the batch is committed.
fn write(
    conn: &mut StoreConnection,
    records: &OpenRecords,
    at: i64,
    singles: &[NewAuditRow],
    folds: &[Fold],
) -> Result<Opened> {
    if !singles.is_empty() {
        insert_audit(conn, singles)?;
    }
    let mut opened = Vec::new();
    // A record stays open for the window by the store's clock, which every server and
    // exporter shares (one of them running ahead must not hold a record open).
    let mut store_at = None;
    for fold in folds {
        let key = (fold.actor.to_owned(), fold.block.to_owned());
        let last = storable(fold.last);
        if let Some((id, until)) = records.open.get(&key)
            && *until > at
            && add_to_audit(conn, *id, fold.count, at, &last)?
        {
            continue;
        }
        let mut row = NewAuditRow::single(
            at,
            storable(fold.first),
            storable(fold.actor),
            FOLDED_ACTION.into(),
            Some(storable(fold.block)),
            "ok".into(),
        );
        row.event_count = fold.count;
        row.last_request_id = (fold.count > 1).then_some(last);
        let now = match store_at {
            Some(now) => now,
            None => *store_at.insert(store_now(conn)?),
        };
        row.open_until = Some(now.saturating_add(records.window));
        let id = insert_open_audit(conn, &row)?;
        opened.push((key, (id, now.saturating_add(records.window))));
    }
    Ok(opened)
}

/// Text as the store can keep it: a NUL byte (which PostgreSQL refuses, and which a
/// refused request may carry in what it names) becomes U+FFFD, so a record is never
/// lost to the text it describes.
fn storable(text: &str) -> String {
    text.replace('\0', "\u{FFFD}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{AuditFilter, AuditRow, BlockRow, PoolOptions, StoreUrl};

    fn store() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        let url = StoreUrl::parse(dir.path().join("t.db").to_str().unwrap()).unwrap();
        let store = Store::open(url, &PoolOptions::default()).unwrap();
        store.migrate().unwrap();
        (dir, store)
    }

    fn job(n: usize, expected: Option<Expected>) -> Job {
        Job {
            event: Some(AuditEvent {
                request_id: format!("r{n}"),
                actor: "bot".into(),
                action: "read-secrets",
                block: Some("b".into()),
                outcome: "ok".into(),
            }),
            expected,
            reply: tokio::sync::oneshot::channel().0,
        }
    }

    /// A job for block `name` that expects it at `version`.
    fn expecting(n: usize, name: &str, version: i64) -> Job {
        let stamp = BlockStamp {
            id: "id-b".into(),
            version,
            updated_at: 7,
        };
        let name = name.into();
        job(n, Some(Expected { name, stamp }))
    }

    /// Block `b` at version 3.
    fn block_b(store: &Store) {
        let row = BlockRow {
            id: "id-b".into(),
            name: "b".into(),
            block_type: "json".into(),
            version: 3,
            data: "{}".into(),
            sealed_secrets: None,
            key_id: None,
            created_at: 1,
            updated_at: 7,
        };
        store.insert_block(&row, None).unwrap();
    }

    /// Every audit record, oldest first.
    fn all_rows(store: &Store) -> Vec<AuditRow> {
        let filter = AuditFilter {
            limit: 100,
            ..AuditFilter::default()
        };
        let mut rows = store.audit(&filter).unwrap();
        rows.reverse();
        rows
    }

    /// Without folding, 43 records take every chunk size (32 + 8 + 2 + 1); a job whose
    /// block changed is answered `false` and leaves no record.
    #[test]
    fn a_batch_is_written_whole_in_order_and_only_where_current() {
        let (_dir, store) = store();
        block_b(&store);
        let mut batch: Vec<Job> = (0..43).map(|n| job(n, None)).collect();
        batch.push(expecting(100, "b", 3));
        batch.push(expecting(101, "b", 2));
        batch.push(expecting(102, "gone", 3));
        let mut conn = None;
        let mut records = OpenRecords::default();
        let current = commit(&store, &mut conn, &mut records, &batch).unwrap();
        assert!(current[..44].iter().all(|c| *c));
        assert_eq!(&current[44..], &[false, false]);
        let rows = all_rows(&store);
        let ids: Vec<&str> = rows.iter().map(|r| r.request_id.as_str()).collect();
        let mut expected: Vec<String> = (0..43).map(|n| format!("r{n}")).collect();
        expected.push("r100".into());
        assert_eq!(ids, expected);
    }

    /// A record's actor, outcome, count, first and last request.
    fn summary(r: &AuditRow) -> (&str, &str, i64, &str, Option<&str>) {
        (
            r.actor.as_str(),
            r.outcome.as_str(),
            r.event_count,
            r.request_id.as_str(),
            r.last_request_id.as_deref(),
        )
    }

    /// Reads of one block by one actor fold into the record this writer opened, across
    /// batches, until its window ends; other actors, refusals and other actions are
    /// records of their own.
    #[test]
    fn repeated_reads_fold_into_one_counted_record_per_window() {
        let (_dir, store) = store();
        let mut conn = None;
        let mut records = OpenRecords {
            window: 60_000,
            ..OpenRecords::default()
        };
        let mut batch: Vec<Job> = (0..5).map(|n| job(n, None)).collect();
        let mut other = job(5, None);
        other.event.as_mut().unwrap().actor = "other".into();
        let mut refused = job(6, None);
        refused.event.as_mut().unwrap().outcome = "FORBIDDEN".into();
        batch.extend([other, refused]);
        commit(&store, &mut conn, &mut records, &batch).unwrap();
        let batch: Vec<Job> = (7..10).map(|n| job(n, None)).collect();
        commit(&store, &mut conn, &mut records, &batch).unwrap();

        let rows = all_rows(&store);
        let summary: Vec<_> = rows.iter().map(summary).collect();
        assert_eq!(
            summary,
            [
                ("bot", "FORBIDDEN", 1, "r6", None),
                ("bot", "ok", 8, "r0", Some("r9")),
                ("other", "ok", 1, "r5", None),
            ]
        );
        let folded = &rows[1];
        assert!(folded.at <= folded.last_at);
        assert!(folded.is_open(now_millis()));
        // An open record is not exported yet; the single records before it are.
        let exported = store.audit_after(0, None, 100).unwrap();
        assert_eq!(exported.len(), 1);

        // Once the window has passed, the next read opens a new record.
        for open in records.open.values_mut() {
            open.1 = now_millis() - 1;
        }
        commit(&store, &mut conn, &mut records, &[job(11, None)]).unwrap();
        let rows = all_rows(&store);
        assert_eq!(rows.len(), 4);
        assert_eq!(
            (rows[3].event_count, rows[3].request_id.as_str()),
            (1, "r11")
        );
        assert_eq!(rows[1].event_count, 8);
    }
}
