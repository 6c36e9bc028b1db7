//! API tokens and their scopes: creation (the secret is shown once, only its SHA-256 is
//! stored), verification in constant time with a short-lived cache, revocation, and
//! the permission check every HTTP route makes. Every token row carries an HMAC under a
//! key derived from the master key ([`row_mac`]), so a row written or edited by anyone
//! without the master key (a store-row writer, an edited backup) verifies nothing.

use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Serialize;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::crypto::RowKey;
use crate::error::{Error, Result};
use crate::store::{Heard, NewAuditRow, Store, TokenRow};
use crate::time::now_millis;

const PREFIX: &str = "byd";

/// What a scope allows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Permission {
    /// Read blocks with secrets masked.
    Read,
    /// Read blocks with secrets.
    ReadSecrets,
    /// Create, update, rename and delete blocks.
    Write,
    /// Lease database users of blocks (their own logins, never the stored password).
    Lease,
    /// Read the server's `/metrics` (no block).
    Metrics,
    /// Everything, including block types, tokens and the audit log.
    Admin,
}

/// A permission, optionally limited to block names matching a pattern (`crdb-*`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Scope {
    pub permission: Permission,
    pub pattern: Option<String>,
}

impl Scope {
    /// Parses `blocks:read`, `blocks:read-secrets`, `blocks:write`, `blocks:lease` or
    /// `admin`, each with
    /// an optional `:PATTERN` (`*` matches any run of characters).
    pub fn parse(text: &str) -> Result<Scope> {
        let bad = || {
            Error::InvalidInput(format!(
                "scope {text:?} is not one of blocks:read, blocks:read-secrets, blocks:write, \
                 blocks:lease, admin (each optionally followed by :PATTERN, e.g. \
                 blocks:read:crdb-*), or metrics"
            ))
        };
        let mut parts = text.trim().splitn(3, ':');
        let (permission, rest) = match (parts.next(), parts.next(), parts.next()) {
            (Some("admin"), pattern, None) => (Permission::Admin, pattern),
            (Some("metrics"), None, None) => (Permission::Metrics, None),
            (Some("blocks"), Some(p), pattern) => (
                match p {
                    "read" => Permission::Read,
                    "read-secrets" => Permission::ReadSecrets,
                    "write" => Permission::Write,
                    "lease" => Permission::Lease,
                    _ => return Err(bad()),
                },
                pattern,
            ),
            _ => return Err(bad()),
        };
        let pattern = match rest {
            None | Some("*") => None,
            Some(p)
                if !p.is_empty()
                    && p.chars().all(|c| {
                        c.is_ascii_lowercase() || c.is_ascii_digit() || "-_.*".contains(c)
                    }) =>
            {
                Some(p.to_owned())
            }
            Some(_) => return Err(bad()),
        };
        Ok(Scope {
            permission,
            pattern,
        })
    }

    /// Whether this scope grants `wanted` on block `name` (`None`: on every block).
    pub fn grants(&self, wanted: Permission, name: Option<&str>) -> bool {
        let level_ok = match (self.permission, wanted) {
            (Permission::Admin, _) => true,
            (Permission::ReadSecrets, Permission::Read | Permission::ReadSecrets) => true,
            (Permission::Write, Permission::Read | Permission::Write) => true,
            (Permission::Lease, Permission::Read | Permission::Lease) => true,
            (have, want) => have == want,
        };
        level_ok
            && match (&self.pattern, name) {
                (None, _) => true,
                (Some(pattern), Some(name)) => glob(pattern, name),
                (Some(_), None) => false,
            }
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let base = match self.permission {
            Permission::Read => "blocks:read",
            Permission::ReadSecrets => "blocks:read-secrets",
            Permission::Write => "blocks:write",
            Permission::Lease => "blocks:lease",
            Permission::Admin => "admin",
            Permission::Metrics => "metrics",
        };
        match &self.pattern {
            Some(p) => write!(f, "{base}:{p}"),
            None => f.write_str(base),
        }
    }
}

/// `*` matches any run of characters; everything else matches itself.
fn glob(pattern: &str, name: &str) -> bool {
    let (p, n) = (pattern.as_bytes(), name.as_bytes());
    let (mut pi, mut ni, mut star, mut mark) = (0, 0, None, 0);
    while ni < n.len() {
        if pi < p.len() && p[pi] == b'*' {
            star = Some(pi);
            mark = ni;
            pi += 1;
        } else if pi < p.len() && p[pi] == n[ni] {
            pi += 1;
            ni += 1;
        } else if let Some(s) = star {
            pi = s + 1;
            mark += 1;
            ni = mark;
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == b'*')
}

/// Who is calling, once their token is verified.
#[derive(Clone, Debug)]
pub struct Actor {
    pub token_id: String,
    pub name: String,
    pub scopes: Vec<Scope>,
}

impl Actor {
    pub fn may(&self, wanted: Permission, name: Option<&str>) -> bool {
        self.scopes.iter().any(|s| s.grants(wanted, name))
    }

    /// The name patterns that bound what `wanted` reaches: `None` when a scope grants
    /// it on every block, else each granting scope's pattern (none: nothing).
    pub fn patterns_for(&self, wanted: Permission) -> Option<Vec<String>> {
        let granting = self.scopes.iter().filter(|s| {
            s.grants(wanted, Some("")) || s.pattern.is_some() && s.permission >= wanted
        });
        let mut patterns = Vec::new();
        for scope in granting {
            match &scope.pattern {
                None => return None,
                Some(pattern) => patterns.push(pattern.clone()),
            }
        }
        patterns.sort();
        patterns.dedup();
        Some(patterns)
    }

    /// Whether any scope reaches `wanted` on some block (to list with a filter).
    pub fn may_some(&self, wanted: Permission) -> bool {
        self.scopes
            .iter()
            .any(|s| s.grants(wanted, Some("")) || s.pattern.is_some() && s.permission >= wanted)
    }
}

/// A token as listed (no secret, no hash).
#[derive(Clone, Debug, Serialize, serde::Deserialize)]
pub struct TokenInfo {
    pub id: String,
    pub name: String,
    pub scopes: Vec<String>,
    #[serde(with = "crate::time::rfc3339_millis")]
    pub created_at: i64,
    pub expires_at: Option<String>,
    pub revoked_at: Option<String>,
    /// `active`, `expired`, `revoked` or `unbound` (a row not bound to this master key).
    pub state: String,
}

/// A new token: `secret` is the only copy of the full token.
pub struct NewToken {
    pub info: TokenInfo,
    pub secret: String,
}

impl fmt::Debug for NewToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NewToken")
            .field("info", &self.info)
            .field("secret", &"********")
            .finish()
    }
}

fn info(row: &TokenRow, key: &RowKey) -> Result<TokenInfo> {
    let scopes: Vec<String> = serde_json::from_str(&row.scopes)
        .map_err(|_| Error::Store(format!("token {:?} has unreadable scopes", row.name)))?;
    let now = now_millis();
    let state = match (row.revoked_at, row.expires_at) {
        _ if !row_verifies(key, row) => "unbound",
        (Some(_), _) => "revoked",
        (None, Some(at)) if at <= now => "expired",
        _ => "active",
    };
    Ok(TokenInfo {
        id: row.id.clone(),
        name: row.name.clone(),
        scopes,
        created_at: row.created_at,
        expires_at: row.expires_at.map(crate::time::rfc3339),
        revoked_at: row.revoked_at.map(crate::time::rfc3339),
        state: state.to_owned(),
    })
}

fn hash(secret: &str) -> [u8; 32] {
    Sha256::digest(secret.as_bytes()).into()
}

/// What a token row's MAC covers: everything that decides whom it lets in and how far.
fn mac_message(row: &TokenRow) -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!([
        "blockyard/v1/token",
        row.id,
        row.name,
        URL_SAFE_NO_PAD.encode(&row.secret_hash),
        row.scopes,
        row.created_at,
        row.expires_at,
        row.revoked_at,
    ]))
    .unwrap_or_default()
}

/// The MAC that binds a token row to the master key.
pub fn row_mac(key: &RowKey, row: &TokenRow) -> Vec<u8> {
    key.tag(&mac_message(row))
}

/// Whether a token row carries a MAC made with this master key for exactly its
/// contents (a row made or edited without the master key does not).
pub fn row_verifies(key: &RowKey, row: &TokenRow) -> bool {
    row.mac
        .as_deref()
        .is_some_and(|tag| key.verifies(&mac_message(row), tag))
}

/// Creates a token. The returned secret is shown once; only its hash is stored.
/// Creates a token; `audit` (its record) commits with it.
pub fn create_token(
    store: &Store,
    key: &RowKey,
    name: &str,
    scopes: &[String],
    expires_in: Option<Duration>,
    audit: Option<&NewAuditRow>,
) -> Result<NewToken> {
    crate::name::BlockName::parse(name).map_err(|_| {
        Error::InvalidInput(format!(
            "token name {name:?}: use 1-128 lowercase letters, digits, '-', '_', '.'"
        ))
    })?;
    if scopes.is_empty() {
        return Err(Error::InvalidInput(
            "give at least one --scope (blocks:read, blocks:read-secrets, blocks:write, \
             blocks:lease, admin)"
                .into(),
        ));
    }
    let parsed: Vec<String> = scopes
        .iter()
        .map(|s| Scope::parse(s).map(|s| s.to_string()))
        .collect::<Result<_>>()?;
    let mut random = [0u8; 32];
    getrandom(&mut random)?;
    let id = uuid::Uuid::new_v4().simple().to_string()[..16].to_owned();
    let secret = format!("{PREFIX}_{id}_{}", URL_SAFE_NO_PAD.encode(random));
    let now = now_millis();
    let mut row = TokenRow {
        id,
        name: name.to_owned(),
        secret_hash: hash(&secret).to_vec(),
        scopes: serde_json::to_string(&parsed).unwrap_or_default(),
        created_at: now,
        expires_at: expires_in.map(|d| now + d.as_millis() as i64),
        revoked_at: None,
        mac: None,
    };
    row.mac = Some(row_mac(key, &row));
    store.insert_token(&row, audit)?;
    Ok(NewToken {
        info: info(&row, key)?,
        secret,
    })
}

fn getrandom(buf: &mut [u8]) -> Result<()> {
    use chacha20poly1305::aead::{OsRng, rand_core::RngCore};
    OsRng
        .try_fill_bytes(buf)
        .map_err(|_| Error::Internal("the OS random number generator failed".into()))
}

pub fn list_tokens(store: &Store, key: &RowKey) -> Result<Vec<TokenInfo>> {
    store.tokens()?.iter().map(|row| info(row, key)).collect()
}

/// Revokes a token; `audit` (its record) commits with it.
pub fn revoke_token(
    store: &Store,
    key: &RowKey,
    name_or_id: &str,
    audit: Option<&NewAuditRow>,
) -> Result<()> {
    match store.revoke_token(name_or_id, now_millis(), |row| row_mac(key, row), audit)? {
        true => Ok(()),
        false => Err(Error::InvalidInput(format!(
            "no active token named {name_or_id:?}; `blockyard token ls` lists them"
        ))),
    }
}

/// The actor a stored token stands for, if its row is bound to this master key and it
/// is neither revoked nor expired (for work done later on its behalf, such as a
/// scheduled rotation).
pub fn stored_actor(store: &Store, key: &RowKey, id: &str) -> Result<Option<Actor>> {
    let Some(known) = store.token(id)?.and_then(|row| Known::from_row(row, key)) else {
        return Ok(None);
    };
    let expired = known.expires_at.is_some_and(|at| at <= now_millis());
    Ok((known.revoked_at.is_none() && !expired).then(|| (*known.actor).clone()))
}

/// The id part of `byd_<id>_<secret>`.
fn token_id(token: &str) -> Option<&str> {
    token
        .strip_prefix("byd_")
        .and_then(|rest| rest.split_once('_'))
        .map(|(id, _)| id)
        .filter(|id| id.len() == 16 && id.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// Verifies bearer tokens against the store, caching each token row (with the actor it
/// stands for, scopes parsed) for `ttl`, so a revocation reaches every server within
/// that time. While the store's notifications are heard ([`Verifier::heard`]), a token
/// changed on any server is forgotten at once, and rows are kept for [`PUSHED_TTL`].
pub struct Verifier {
    store: Store,
    key: RowKey,
    ttl: Duration,
    cache: RwLock<HashMap<String, Cached>>,
    /// Whether notifications of token changes are being heard now.
    pushed: AtomicBool,
    /// Token changes heard (and cache clears) so far: a row read while one arrived is
    /// not kept.
    changes: AtomicU64,
}

/// How long a token row is trusted while every change of a token is announced.
pub const PUSHED_TTL: Duration = Duration::from_secs(300);

/// A token id's row as last read (`None`: no such token) and when it was read.
type Cached = (Option<Arc<Known>>, Instant);

/// A stored token as the verifier keeps it: what to check a presented token against,
/// and who it is.
struct Known {
    secret_hash: Vec<u8>,
    expires_at: Option<i64>,
    revoked_at: Option<i64>,
    actor: Arc<Actor>,
}

impl Known {
    /// `None` for a row whose scopes do not parse or that is not bound to the master
    /// key (it then verifies nothing).
    fn from_row(row: TokenRow, key: &RowKey) -> Option<Known> {
        if !row_verifies(key, &row) {
            return None;
        }
        let scopes: Vec<String> = serde_json::from_str(&row.scopes).ok()?;
        Some(Known {
            secret_hash: row.secret_hash,
            expires_at: row.expires_at,
            revoked_at: row.revoked_at,
            actor: Arc::new(Actor {
                token_id: row.id,
                name: row.name,
                scopes: scopes.iter().filter_map(|s| Scope::parse(s).ok()).collect(),
            }),
        })
    }

    fn check(&self, token: &str) -> Result<Arc<Actor>> {
        let matches: bool = self.secret_hash.as_slice().ct_eq(&hash(token)).into();
        match matches {
            true => self.check_active(),
            false => Err(unauthorized()),
        }
    }

    /// The actor, while the token is neither revoked nor expired.
    fn check_active(&self) -> Result<Arc<Actor>> {
        let expired = self.expires_at.is_some_and(|at| at <= now_millis());
        match self.revoked_at.is_none() && !expired {
            true => Ok(self.actor.clone()),
            false => Err(unauthorized()),
        }
    }
}

/// The one answer for a token that does not verify: never why beyond "invalid, expired
/// or revoked", and never the token.
fn unauthorized() -> Error {
    Error::Unauthorized("the token is invalid, expired or revoked".into())
}

impl fmt::Debug for Verifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Verifier(ttl {:?})", self.ttl)
    }
}

impl Verifier {
    pub fn new(store: Store, key: RowKey, ttl: Duration) -> Self {
        Verifier {
            store,
            key,
            ttl,
            cache: RwLock::new(HashMap::new()),
            pushed: AtomicBool::new(false),
            changes: AtomicU64::new(0),
        }
    }

    /// What the store's token channel said: a token's id (forgotten at once), or that
    /// listening began or stopped (either way, what was missed is unknown, so every
    /// cached check goes; while listening, rows are kept for [`PUSHED_TTL`]).
    pub fn heard(&self, heard: Heard) {
        match heard {
            Heard::Payload(id) => {
                let mut cache = self.cache.write().unwrap_or_else(|e| e.into_inner());
                self.changes.fetch_add(1, Ordering::SeqCst);
                cache.remove(&id);
            }
            Heard::Listening => {
                if !self.pushed.swap(true, Ordering::SeqCst) {
                    self.forget_all();
                }
            }
            Heard::Lost(_) => {
                self.pushed.store(false, Ordering::SeqCst);
                self.forget_all();
            }
            Heard::Quiet => {}
        }
    }

    /// Whether token changes are heard as they happen.
    pub fn is_pushed(&self) -> bool {
        self.pushed.load(Ordering::SeqCst)
    }

    /// The actor of the token with id `id` while it is neither revoked nor expired: for
    /// a web UI session, opened with the token's secret and keeping only its id.
    pub fn verify_id(&self, id: &str) -> Result<Arc<Actor>> {
        let known = match self.cached(id) {
            Some(known) => known,
            None => self.load(id)?,
        };
        known.ok_or_else(unauthorized)?.check_active()
    }

    /// The actor a token belongs to, or `Unauthorized`.
    pub fn verify(&self, token: &str) -> Result<Arc<Actor>> {
        let id = token_id(token).ok_or_else(unauthorized)?;
        let known = match self.cached(id) {
            Some(known) => known,
            None => self.load(id)?,
        };
        known.ok_or_else(unauthorized)?.check(token)
    }

    /// Verifies from the cache only: `None` if the token's row is not cached (or stale),
    /// so the caller can do the store lookup off the async executor.
    pub fn verify_cached(&self, token: &str) -> Option<Result<Arc<Actor>>> {
        let id = token_id(token)?;
        let known = self.cached(id)?;
        Some(known.ok_or_else(unauthorized).and_then(|k| k.check(token)))
    }

    /// Whether this verifier has seen the token's id exist (its row cached, fresh or
    /// not): cheap, no store work.
    pub fn knows(&self, token: &str) -> bool {
        token_id(token).is_some_and(|id| {
            let cache = self.cache.read().unwrap_or_else(|e| e.into_inner());
            cache.get(id).is_some_and(|(known, _)| known.is_some())
        })
    }

    /// Forgets every cached check: after a revocation on this server, the next request
    /// of each token is checked against the store.
    pub fn forget_all(&self) {
        let mut cache = self.cache.write().unwrap_or_else(|e| e.into_inner());
        self.changes.fetch_add(1, Ordering::SeqCst);
        cache.clear();
    }

    /// The cached row for a token id, if fresh (`Some(None)`: known not to exist).
    fn cached(&self, id: &str) -> Option<Option<Arc<Known>>> {
        let cache = self.cache.read().unwrap_or_else(|e| e.into_inner());
        let (known, at) = cache.get(id)?;
        let ttl = match self.is_pushed() {
            true => self.ttl.max(PUSHED_TTL),
            false => self.ttl,
        };
        (at.elapsed() < ttl).then(|| known.clone())
    }

    fn load(&self, id: &str) -> Result<Option<Arc<Known>>> {
        let changes = self.changes.load(Ordering::SeqCst);
        let known = self
            .store
            .token(id)?
            .and_then(|row| Known::from_row(row, &self.key))
            .map(Arc::new);
        let mut cache = self.cache.write().unwrap_or_else(|e| e.into_inner());
        if self.changes.load(Ordering::SeqCst) != changes {
            // A token changed while the row was read: the row may be from before the
            // change, so it is used this once and not kept.
            return Ok(known);
        }
        if cache.len() > 10_000 {
            // Thousands of unknown token ids must not grow memory without bound.
            cache.retain(|_, (known, at)| known.is_some() && at.elapsed() < self.ttl);
        }
        cache.insert(id.to_owned(), (known.clone(), Instant::now()));
        Ok(known)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_parse_and_grant() {
        let s = Scope::parse("blocks:read-secrets:crdb-*").unwrap();
        assert!(s.grants(Permission::ReadSecrets, Some("crdb-sage")));
        assert!(s.grants(Permission::Read, Some("crdb-sage")));
        assert!(!s.grants(Permission::ReadSecrets, Some("pg-sage")));
        assert!(!s.grants(Permission::Write, Some("crdb-sage")));
        assert!(
            Scope::parse("admin")
                .unwrap()
                .grants(Permission::Write, Some("x"))
        );
        let w = Scope::parse("blocks:write").unwrap();
        assert!(
            w.grants(Permission::Read, Some("x")) && !w.grants(Permission::ReadSecrets, Some("x"))
        );
        for bad in [
            "blocks",
            "blocks:delete",
            "root",
            "blocks:read:UPPER",
            "blocks:read:",
        ] {
            assert!(Scope::parse(bad).is_err(), "{bad}");
        }
        assert_eq!(Scope::parse("blocks:read:*").unwrap().pattern, None);
    }

    #[test]
    fn glob_patterns() {
        assert!(glob("crdb-*", "crdb-sage"));
        assert!(glob("*-prod", "pg-prod"));
        assert!(glob("a*b*c", "axxbyyc"));
        assert!(!glob("crdb-*", "crdb"));
        assert!(!glob("exact", "exactly"));
    }
}
