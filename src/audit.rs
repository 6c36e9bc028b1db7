//! The audit log: who read a secret or changed what, when, with which outcome. Records
//! are written by one thread that commits whatever is queued in a single transaction
//! (group commit); a caller learns its record is stored before it answers.

use std::sync::mpsc;

use crate::error::{Error, Result};
use crate::store::{NewAuditRow, Store, now_millis};

/// One thing to record.
#[derive(Clone, Debug)]
pub struct AuditEvent {
    pub request_id: String,
    pub actor: String,
    pub action: &'static str,
    pub block: Option<String>,
    pub outcome: String,
}

type Reply = rocket::tokio::sync::oneshot::Sender<Result<()>>;

/// Handle to the audit writer thread; cheap to clone.
#[derive(Clone, Debug)]
pub struct AuditLog {
    queue: mpsc::SyncSender<(AuditEvent, Reply)>,
}

const BATCH: usize = 512;

impl AuditLog {
    /// Starts the writer thread for `store`.
    pub fn start(store: Store) -> AuditLog {
        let (queue, rx) = mpsc::sync_channel::<(AuditEvent, Reply)>(8 * BATCH);
        std::thread::Builder::new()
            .name("audit-writer".into())
            .spawn(move || {
                while let Ok(first) = rx.recv() {
                    let mut batch = vec![first];
                    while batch.len() < BATCH {
                        match rx.try_recv() {
                            Ok(item) => batch.push(item),
                            Err(_) => break,
                        }
                    }
                    let at = now_millis();
                    let rows: Vec<NewAuditRow> = batch
                        .iter()
                        .map(|(e, _)| NewAuditRow {
                            at,
                            request_id: e.request_id.clone(),
                            actor: e.actor.clone(),
                            action: e.action.into(),
                            block: e.block.clone(),
                            outcome: e.outcome.clone(),
                        })
                        .collect();
                    let outcome = store.insert_audit(&rows);
                    for (_, reply) in batch {
                        let _ = reply.send(match &outcome {
                            Ok(()) => Ok(()),
                            Err(err) => Err(Error::AuditUnavailable(err.to_string())),
                        });
                    }
                }
            })
            .expect("spawning the audit writer thread");
        AuditLog { queue }
    }

    /// Records an event; resolves once it is committed.
    pub async fn record(&self, event: AuditEvent) -> Result<()> {
        let (tx, rx) = rocket::tokio::sync::oneshot::channel();
        let queue = self.queue.clone();
        // A full queue blocks; keep that off the async executor.
        let sent = match queue.try_send((event, tx)) {
            Ok(()) => true,
            Err(mpsc::TrySendError::Full(item)) => {
                rocket::tokio::task::spawn_blocking(move || queue.send(item).is_ok())
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
