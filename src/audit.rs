//! The audit log: who read a secret or changed what, when, with which outcome. Records
//! are written by one thread, on a store connection of its own, that commits whatever
//! is queued in a single transaction (group commit); a caller learns its record is
//! stored before it answers. The same trip confirms that a block the server kept from
//! an earlier read is still the stored one, so a repeated read costs one batched query
//! and no decryption.

use std::collections::HashMap;
use std::sync::mpsc;

use crate::block::BlockStamp;
use crate::error::{Error, Result};
use crate::store::{NewAuditRow, Store, WriterConnection, block_stamps, insert_audit};
use crate::time::now_millis;

/// One thing to record.
#[derive(Clone, Debug)]
pub struct AuditEvent {
    pub request_id: String,
    pub actor: String,
    pub action: &'static str,
    pub block: Option<String>,
    pub outcome: String,
}

/// A block read from memory, valid only if the store still holds it at `stamp`.
#[derive(Clone, Debug)]
pub struct Expected {
    pub name: String,
    pub stamp: BlockStamp,
}

type Reply = tokio::sync::oneshot::Sender<Result<bool>>;

/// What the writer thread is asked to do: record `event` (if any), but only if
/// `expected` (if any) still holds.
struct Job {
    event: Option<AuditEvent>,
    expected: Option<Expected>,
    reply: Reply,
}

/// Handle to the audit writer thread; cheap to clone.
#[derive(Clone, Debug)]
pub struct AuditLog {
    queue: mpsc::SyncSender<Job>,
}

const BATCH: usize = 512;

impl AuditLog {
    /// Starts the writer thread for `store`.
    pub fn start(store: Store) -> AuditLog {
        let (queue, rx) = mpsc::sync_channel::<Job>(8 * BATCH);
        std::thread::Builder::new()
            .name("audit-writer".into())
            .spawn(move || write_batches(&store, &rx))
            .expect("spawning the audit writer thread");
        AuditLog { queue }
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
        rx.await
            .unwrap_or_else(|_| Err(Error::AuditUnavailable("the audit writer stopped".into())))
    }
}

/// The writer thread: takes what is queued (up to [`BATCH`] jobs), commits it, answers
/// every job, and waits for more.
fn write_batches(store: &Store, rx: &mpsc::Receiver<Job>) {
    let mut conn: Option<WriterConnection> = None;
    while let Ok(first) = rx.recv() {
        let mut batch = vec![first];
        while batch.len() < BATCH {
            match rx.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        // A connection that failed (the store restarted, say) is replaced and the batch
        // tried once more before anyone is told it failed.
        let outcome = commit(store, &mut conn, &batch).or_else(|_| {
            conn = None;
            commit(store, &mut conn, &batch)
        });
        if outcome.is_err() {
            conn = None;
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

/// One batch: which expectations still hold (read after every job in it arrived), then
/// the records of the jobs that may be recorded, in one statement.
fn commit(store: &Store, conn: &mut Option<WriterConnection>, batch: &[Job]) -> Result<Vec<bool>> {
    let writer = match conn {
        Some(writer) => writer,
        None => conn.insert(store.connect_writer()?),
    };
    let conn = &mut writer.conn;
    let names: Vec<&str> = batch
        .iter()
        .filter_map(|job| job.expected.as_ref().map(|e| e.name.as_str()))
        .collect();
    let stamps = match names.is_empty() {
        true => HashMap::new(),
        false => block_stamps(conn, &names)?,
    };
    let current: Vec<bool> = batch
        .iter()
        .map(|job| {
            job.expected
                .as_ref()
                .is_none_or(|e| stamps.get(&e.name) == Some(&e.stamp))
        })
        .collect();
    let at = now_millis();
    let rows: Vec<NewAuditRow> = batch
        .iter()
        .zip(&current)
        .filter(|(_, current)| **current)
        .filter_map(|(job, _)| job.event.as_ref())
        .map(|e| NewAuditRow {
            at,
            request_id: storable(&e.request_id),
            actor: storable(&e.actor),
            action: e.action.into(),
            block: e.block.as_deref().map(storable),
            outcome: storable(&e.outcome),
        })
        .collect();
    if !rows.is_empty() {
        insert_audit(conn, &rows)?;
        writer.committed();
    }
    Ok(current)
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
    use crate::store::{AuditFilter, BlockRow, PoolOptions, StoreUrl};

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

    /// 43 records take every chunk size (32 + 8 + 2 + 1); a job whose block changed is
    /// answered `false` and leaves no record.
    #[test]
    fn a_batch_is_written_whole_in_order_and_only_where_current() {
        let (_dir, store) = store();
        store
            .insert_block(
                &BlockRow {
                    id: "id-b".into(),
                    name: "b".into(),
                    block_type: "json".into(),
                    version: 3,
                    data: "{}".into(),
                    sealed_secrets: None,
                    key_id: None,
                    created_at: 1,
                    updated_at: 7,
                },
                None,
            )
            .unwrap();
        let stamp = |version| BlockStamp {
            id: "id-b".into(),
            version,
            updated_at: 7,
        };
        let mut batch: Vec<Job> = (0..43).map(|n| job(n, None)).collect();
        batch.push(job(
            100,
            Some(Expected {
                name: "b".into(),
                stamp: stamp(3),
            }),
        ));
        batch.push(job(
            101,
            Some(Expected {
                name: "b".into(),
                stamp: stamp(2),
            }),
        ));
        batch.push(job(
            102,
            Some(Expected {
                name: "gone".into(),
                stamp: stamp(3),
            }),
        ));
        let mut conn = None;
        let current = commit(&store, &mut conn, &batch).unwrap();
        assert!(current[..44].iter().all(|c| *c));
        assert_eq!(&current[44..], &[false, false]);
        let rows = store
            .audit(&AuditFilter {
                limit: 100,
                ..AuditFilter::default()
            })
            .unwrap();
        let ids: Vec<&str> = rows.iter().rev().map(|r| r.request_id.as_str()).collect();
        let mut expected: Vec<String> = (0..43).map(|n| format!("r{n}")).collect();
        expected.push("r100".into());
        assert_eq!(ids, expected);
    }
}
