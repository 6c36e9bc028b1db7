//! Telling the other servers on a PostgreSQL store at once: a change that ends a
//! token's right to act sends `NOTIFY` in its own transaction (delivered only if it
//! commits), and each server listens on a connection of its own. SQLite stores have
//! one server, and send nothing.

use diesel::prelude::*;

use super::{Backend, Store, StoreConnection};
use crate::error::Result;

/// The channel token changes (created, revoked) are announced on; the payload is the
/// token's id.
pub const TOKENS_CHANNEL: &str = "blockyard_tokens";

/// What a listener hears.
#[derive(Debug)]
pub enum Heard {
    /// Listening (again): anything sent while it was not was missed.
    Listening,
    /// A notification's payload.
    Payload(String),
    /// A wait ended with nothing heard (the listener asks whether to go on).
    Quiet,
    /// The connection failed or was lost; the listener tries again.
    Lost(String),
}

#[cfg(feature = "postgres")]
/// How long each wait on the listening connection lasts: a notification is delivered
/// when the wait ends, so this bounds how late it is heard.
const WAIT: &str = "SELECT pg_sleep(0.1)";

#[cfg(feature = "postgres")]
/// How long a listener waits before it connects again after a failure.
const RETRY: std::time::Duration = std::time::Duration::from_secs(1);

/// Sends `payload` on `channel` within `conn`'s transaction (PostgreSQL only; the
/// payload must be an id: letters, digits, `-` and `_`).
pub fn notify(
    conn: &mut StoreConnection,
    backend: Backend,
    channel: &str,
    payload: &str,
) -> Result<()> {
    if backend != Backend::Postgres
        || !payload
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        return Ok(());
    }
    diesel::sql_query(format!("SELECT pg_notify('{channel}', '{payload}')")).execute(conn)?;
    Ok(())
}

impl Store {
    /// Listens on `channel` until `heard` answers false (PostgreSQL only; on another
    /// store it returns at once). Every notification, loss and new start is handed to
    /// `heard`.
    #[cfg(feature = "postgres")]
    pub fn listen(&self, channel: &str, mut heard: impl FnMut(Heard) -> bool) {
        if self.url().backend() != Backend::Postgres {
            return;
        }
        loop {
            let lost = match self.listen_once(channel, &mut heard) {
                Ok(()) => return,
                Err(err) => err,
            };
            if !heard(Heard::Lost(lost)) {
                return;
            }
            std::thread::sleep(RETRY);
        }
    }

    /// One listening connection's life: `Ok` when `heard` says stop, the reason when
    /// the connection fails.
    #[cfg(feature = "postgres")]
    fn listen_once(
        &self,
        channel: &str,
        heard: &mut impl FnMut(Heard) -> bool,
    ) -> std::result::Result<(), String> {
        use diesel::Connection;
        let url = self.url().connection_string();
        let mut conn = diesel::PgConnection::establish(&url).map_err(|e| e.to_string())?;
        diesel::sql_query(format!("LISTEN {channel}"))
            .execute(&mut conn)
            .map_err(|e| e.to_string())?;
        if !heard(Heard::Listening) {
            return Ok(());
        }
        loop {
            diesel::sql_query(WAIT)
                .execute(&mut conn)
                .map_err(|e| e.to_string())?;
            for note in conn.notifications_iter() {
                let note = note.map_err(|e| e.to_string())?;
                if !heard(Heard::Payload(note.payload)) {
                    return Ok(());
                }
            }
            if !heard(Heard::Quiet) {
                return Ok(());
            }
        }
    }

    /// Without PostgreSQL support there is nothing to listen to.
    #[cfg(not(feature = "postgres"))]
    pub fn listen(&self, _channel: &str, _heard: impl FnMut(Heard) -> bool) {}
}
