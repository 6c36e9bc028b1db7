//! Web UI sessions: a signed-in browser holds only a random session id in a cookie
//! (HttpOnly, SameSite=Strict, Secure behind TLS). The session itself is in the store
//! (`registry::UiSessions`), so every server sharing it answers any request and a
//! restart signs nobody out: the token it was opened with is named by id and checked
//! again on every request (a revoked token ends its sessions at once, on every
//! server), with the session's CSRF token. Sessions expire; sign-out ends one.

pub use crate::registry::{Held, random_token};

/// The session cookie's name.
pub const COOKIE: &str = "blockyard_session";
/// The cookie that carries the sign-in form's CSRF token (before there is a session).
pub const LOGIN_COOKIE: &str = "blockyard_login";

/// Whether two tokens are equal, in time that does not depend on where they differ.
pub fn same_token(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}
