//! What several servers on one store share instead of keeping in memory: web UI
//! sessions ([`UiSessions`]: the browser holds a random id, the store its SHA-256, the
//! token it was opened with by id, and the secrets a refused form held, sealed and
//! bound to the session), each block's last UI Test, and each server's heartbeat (the
//! write its readiness check makes).

use std::collections::BTreeMap;
use std::time::Duration;

use chacha20poly1305::aead::{OsRng, rand_core::RngCore};
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use super::handle::Registry;
use crate::crypto::SessionKey;
use crate::error::{Error, Result};
use crate::store::{SessionRow, Store, TestRow};
use crate::time::now_millis;

/// Secrets held for a form, by field path.
pub type Held = Vec<(String, Zeroizing<String>)>;

/// A block's last Test in the web UI: passed, its code (`ok` when it passed), when.
pub type LastTest = (bool, String, i64);

/// How long a session lasts after sign-in.
pub const SESSION_LIFETIME: Duration = Duration::from_secs(8 * 3600);

/// At most this many sessions per token: a token's sign-ins beyond it end its own
/// oldest session, never another user's.
const MAX_PER_TOKEN: i64 = 20;

/// At most this many sessions in all; the oldest go first.
const MAX_SESSIONS: i64 = 10_000;

/// A fresh random id or CSRF token: 256 bits, hex.
pub fn random_token() -> String {
    let mut bytes = [0u8; 32];
    OsRng.fill_bytes(&mut bytes);
    hex(&bytes)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A live session: the id of the token it was opened with, and its CSRF token.
#[derive(Clone)]
pub struct OpenSession {
    pub token_id: String,
    pub csrf: String,
}

/// The web UI's sessions, in the store.
pub struct UiSessions {
    store: Store,
    key: SessionKey,
}

impl std::fmt::Debug for UiSessions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("UiSessions")
    }
}

/// What the store keys a session by: the SHA-256 of its id (the id itself is only in
/// the browser's cookie).
fn id_hash(id: &str) -> String {
    hex(&Sha256::digest(id.as_bytes()))
}

impl UiSessions {
    /// Opens a session for the token `token_id`; answers its id.
    pub fn open(&self, token_id: &str) -> Result<String> {
        let id = random_token();
        let now = now_millis();
        let row = SessionRow {
            id_hash: id_hash(&id),
            token_id: token_id.to_owned(),
            csrf: random_token(),
            held: None,
            created_at: now,
            expires_at: now + SESSION_LIFETIME.as_millis() as i64,
        };
        self.store.open_session(&row, MAX_PER_TOKEN, MAX_SESSIONS)?;
        Ok(id)
    }

    /// The session `id`, if it is live.
    pub fn get(&self, id: &str) -> Result<Option<OpenSession>> {
        Ok(self
            .store
            .session(&id_hash(id), now_millis())?
            .map(|row| OpenSession {
                token_id: row.token_id,
                csrf: row.csrf,
            }))
    }

    pub fn close(&self, id: &str) -> Result<()> {
        self.store.close_session(&id_hash(id))
    }

    /// Holds `secrets` for `form` in session `id` (none: forgets what was held).
    pub fn hold(&self, id: &str, form: &str, secrets: Held) -> Result<()> {
        let hash = id_hash(id);
        let Some(row) = self.store.session(&hash, now_millis())? else {
            return Ok(());
        };
        let mut forms = self.opened(&hash, row.held.as_deref());
        match secrets.is_empty() {
            true => forms.remove(form),
            false => forms.insert(form.to_owned(), secrets),
        };
        let sealed = match forms.is_empty() {
            true => None,
            false => {
                let plain: BTreeMap<&str, Vec<(&str, &str)>> = forms
                    .iter()
                    .map(|(form, held)| {
                        let held = held.iter().map(|(p, v)| (p.as_str(), v.as_str()));
                        (form.as_str(), held.collect())
                    })
                    .collect();
                let json = serde_json::to_vec(&plain)
                    .map_err(|e| Error::Internal(format!("holding a form's secrets: {e}")))?;
                let json = Zeroizing::new(json);
                Some(self.key.seal(&hash, &json)?)
            }
        };
        self.store.set_session_held(&hash, sealed)
    }

    /// The secrets held for `form` in session `id`.
    pub fn held(&self, id: &str, form: &str) -> Result<Held> {
        let hash = id_hash(id);
        let Some(row) = self.store.session(&hash, now_millis())? else {
            return Ok(Vec::new());
        };
        Ok(self
            .opened(&hash, row.held.as_deref())
            .remove(form)
            .unwrap_or_default())
    }

    /// What a session holds, by form (nothing if it does not open).
    fn opened(&self, hash: &str, sealed: Option<&[u8]>) -> BTreeMap<String, Held> {
        let Some(plain) = sealed.and_then(|s| self.key.open(hash, s).ok()) else {
            return BTreeMap::new();
        };
        let forms: BTreeMap<String, Vec<(String, String)>> =
            serde_json::from_slice(&plain).unwrap_or_default();
        forms
            .into_iter()
            .map(|(form, held)| {
                let held = held.into_iter().map(|(p, v)| (p, Zeroizing::new(v)));
                (form, held.collect())
            })
            .collect()
    }

    /// Removes expired sessions; how many.
    pub fn prune(&self) -> Result<usize> {
        self.store.prune_sessions(now_millis())
    }
}

impl Registry {
    /// The web UI's sessions in this registry's store.
    pub fn ui_sessions(&self) -> Result<UiSessions> {
        let (store, keys) = self.local()?;
        Ok(UiSessions {
            store: store.clone(),
            key: keys.master(store)?.session_key(),
        })
    }

    /// Keeps the outcome of a UI Test of `name`, for every server to show.
    pub fn record_test(&self, name: &str, passed: bool, code: &str) -> Result<()> {
        self.local()?.0.record_test(&TestRow {
            name: name.to_owned(),
            passed,
            code: code.to_owned(),
            tested_at: now_millis(),
        })
    }

    /// The last UI Test of each of `names`, if one ran.
    pub fn last_tests(&self, names: &[&str]) -> Result<Vec<Option<LastTest>>> {
        let rows = self.local()?.0.last_tests(names)?;
        let by_name: std::collections::HashMap<&str, &TestRow> =
            rows.iter().map(|r| (r.name.as_str(), r)).collect();
        Ok(names
            .iter()
            .map(|n| {
                by_name
                    .get(n)
                    .map(|r| (r.passed, r.code.clone(), r.tested_at))
            })
            .collect())
    }

    /// Writes server `server_id`'s heartbeat: the store takes writes now.
    pub fn heartbeat(&self, server_id: &str) -> Result<()> {
        self.local()?.0.heartbeat(server_id, now_millis())
    }

    /// Forgets a stopping server's heartbeat.
    pub fn forget_heartbeat(&self, server_id: &str) -> Result<()> {
        self.local()?.0.forget_heartbeat(server_id)
    }
}
