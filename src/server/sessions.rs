//! Web UI sessions: a signed-in browser holds only a random session id in a cookie
//! (HttpOnly, SameSite=Strict, Secure behind TLS); the server maps it to the token it
//! was opened with, which is verified again on every request (a revoked token ends its
//! sessions at once), and to the session's CSRF token. Sessions expire; sign-out ends
//! one.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use chacha20poly1305::aead::{OsRng, rand_core::RngCore};
use zeroize::Zeroizing;

/// The session cookie's name.
pub const COOKIE: &str = "blockyard_session";
/// The cookie that carries the sign-in form's CSRF token (before there is a session).
pub const LOGIN_COOKIE: &str = "blockyard_login";

/// How long a session lasts after sign-in.
pub const LIFETIME: Duration = Duration::from_secs(8 * 3600);

/// At most this many sessions are kept; the oldest go first.
const MAX_SESSIONS: usize = 10_000;

/// At most this many sessions per token: a token's sign-ins beyond it end its own
/// oldest session, never another user's (one token signing in again and again cannot
/// sign everyone else out).
const MAX_PER_TOKEN: usize = 20;

/// One signed-in browser.
pub struct Session {
    pub token: Zeroizing<String>,
    pub csrf: String,
    expires: Instant,
    /// Secrets typed into a form the server refused, by form (`new:TYPE`, `edit:NAME`)
    /// and field path: used again when the form is sent back with those inputs empty,
    /// so nobody types a password twice. Never rendered into a page; gone with the
    /// session, on a save, or when the next try of that form holds none.
    held: HashMap<String, Vec<(String, Zeroizing<String>)>>,
}

/// Secrets held for a form, by field path.
pub type Held = Vec<(String, Zeroizing<String>)>;

/// Every open session, by id.
#[derive(Default)]
pub struct Sessions {
    open: Mutex<HashMap<String, Session>>,
}

/// A fresh random id or CSRF token: 256 bits, hex.
pub fn random_token() -> String {
    let mut bytes = [0u8; 32];
    OsRng.fill_bytes(&mut bytes);
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

impl Sessions {
    /// Opens a session for `token`; answers its id.
    pub fn open(&self, token: &str) -> String {
        let id = random_token();
        let mut open = self.open.lock().expect("sessions poisoned");
        let now = Instant::now();
        open.retain(|_, s| s.expires > now);
        let own = open
            .values()
            .filter(|s| same_token(&s.token, token))
            .count();
        let evict_own = own >= MAX_PER_TOKEN;
        if (evict_own || open.len() >= MAX_SESSIONS)
            && let Some(oldest) = open
                .iter()
                .filter(|(_, s)| !evict_own || same_token(&s.token, token))
                .min_by_key(|(_, s)| s.expires)
                .map(|(id, _)| id.clone())
        {
            open.remove(&oldest);
        }
        open.insert(
            id.clone(),
            Session {
                token: Zeroizing::new(token.to_owned()),
                csrf: random_token(),
                expires: now + LIFETIME,
                held: HashMap::new(),
            },
        );
        id
    }

    /// The token and CSRF token of a live session.
    pub fn get(&self, id: &str) -> Option<(Zeroizing<String>, String)> {
        let mut open = self.open.lock().expect("sessions poisoned");
        match open.get(id) {
            Some(s) if s.expires > Instant::now() => Some((s.token.clone(), s.csrf.clone())),
            Some(_) => {
                open.remove(id);
                None
            }
            None => None,
        }
    }

    /// Holds `secrets` for `form` in session `id` (none: forgets what was held).
    pub fn hold(&self, id: &str, form: &str, secrets: Held) {
        let mut open = self.open.lock().expect("sessions poisoned");
        if let Some(session) = open.get_mut(id) {
            match secrets.is_empty() {
                true => session.held.remove(form),
                false => session.held.insert(form.to_owned(), secrets),
            };
        }
    }

    /// The secrets held for `form` in session `id`.
    pub fn held(&self, id: &str, form: &str) -> Held {
        let open = self.open.lock().expect("sessions poisoned");
        open.get(id)
            .and_then(|s| s.held.get(form).cloned())
            .unwrap_or_default()
    }

    pub fn close(&self, id: &str) {
        self.open.lock().expect("sessions poisoned").remove(id);
    }
}

/// Whether two tokens are equal, in time that does not depend on where they differ.
pub fn same_token(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_tokens_sign_ins_end_only_its_own_sessions() {
        let sessions = Sessions::default();
        let other = sessions.open("byd_other");
        let mine: Vec<String> = (0..MAX_PER_TOKEN + 5)
            .map(|_| sessions.open("byd_flood"))
            .collect();
        assert!(
            sessions.get(&other).is_some(),
            "another user was signed out"
        );
        assert!(
            sessions.get(&mine[0]).is_none(),
            "the flood's oldest stayed"
        );
        assert!(sessions.get(mine.last().unwrap()).is_some());
        let open = sessions.open.lock().unwrap();
        let flood = open.values().filter(|s| *s.token == "byd_flood").count();
        assert_eq!(flood, MAX_PER_TOKEN);
    }
}
