//! Names and passwords on the database side: database and role names by seed 003's rules
//! (`[a-z][a-z0-9_]*`, at most 63 characters, not reserved), names generated from a
//! project title, and generated passwords.

use std::fmt;

use chacha20poly1305::aead::{OsRng, rand_core::RngCore};
use zeroize::Zeroizing;

use crate::error::{Error, ProvisionCode, Result};

/// The longest database or role name (PostgreSQL's limit, `NAMEDATALEN - 1`).
pub const MAX_LEN: usize = 63;

/// Names no database may take: the server's own and those seed 003's platform uses.
/// Role names a server reserves or reads as something else: PostgreSQL's `public` and
/// `none`, the SQL keywords that name the current session's role, and MySQL's `root`.
const RESERVED_ROLES: &[&str] = &[
    "public",
    "none",
    "current_user",
    "current_role",
    "session_user",
    "user",
    "all",
    "root",
];

pub const RESERVED: &[&str] = &[
    "postgres",
    "template0",
    "template1",
    "supabase",
    "auth",
    "storage",
    "realtime",
    "defaultdb",
    "system",
    "mysql",
    "information_schema",
    "performance_schema",
    "sys",
    "pg_catalog",
];

/// A valid database name: `[a-z][a-z0-9_]*`, at most 63 characters, not reserved.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DatabaseName(String);

/// A valid role (user) name: the same characters and length as a database name, and
/// not `pg_`/`mysql` names the server keeps for itself.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RoleName(String);

fn check(raw: &str, what: &str) -> std::result::Result<(), String> {
    if raw.is_empty() {
        return Err(format!("a {what} name cannot be empty"));
    }
    if raw.len() > MAX_LEN {
        return Err(format!("a {what} name has at most {MAX_LEN} characters"));
    }
    if !raw.starts_with(|c: char| c.is_ascii_lowercase()) {
        return Err(format!("a {what} name starts with a lowercase letter"));
    }
    if !raw
        .chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
    {
        return Err(format!(
            "a {what} name holds only lowercase letters, digits and underscores"
        ));
    }
    Ok(())
}

impl DatabaseName {
    pub fn parse(raw: &str) -> Result<Self> {
        let shown: String = raw.chars().take(MAX_LEN + 8).collect();
        check(raw, "database").map_err(|reason| {
            Error::provision(
                ProvisionCode::InvalidDatabaseName,
                format!("invalid database name {shown:?}: {reason}"),
            )
        })?;
        if RESERVED.contains(&raw) {
            return Err(Error::provision(
                ProvisionCode::InvalidDatabaseName,
                format!("invalid database name {raw:?}: the name is reserved"),
            ));
        }
        Ok(DatabaseName(raw.to_owned()))
    }

    /// A new name from a project title, as seed 003 makes them: lowercase, runs of
    /// anything else as one `_`, a letter first, then `_` and a random suffix, at most
    /// 63 characters in all (`My Project` → `my_project_k3x9q2`).
    pub fn generate(title: &str) -> Result<Self> {
        let mut base = String::new();
        for c in title.trim().chars().flat_map(char::to_lowercase) {
            match c {
                'a'..='z' | '0'..='9' => base.push(c),
                _ if !base.ends_with('_') => base.push('_'),
                _ => {}
            }
        }
        let mut base = base.trim_matches('_').to_owned();
        if !base.starts_with(|c: char| c.is_ascii_lowercase()) {
            base.insert_str(0, "db_");
        }
        let suffix = random_suffix();
        base.truncate(MAX_LEN - suffix.len() - 1);
        let base = base.trim_end_matches('_');
        DatabaseName::parse(&format!("{base}_{suffix}"))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl RoleName {
    pub fn parse(raw: &str) -> Result<Self> {
        let shown: String = raw.chars().take(MAX_LEN + 8).collect();
        check(raw, "role")
            .and_then(
                |()| match raw.starts_with("pg_") || RESERVED_ROLES.contains(&raw) {
                    true => Err("the name is reserved".to_owned()),
                    false => Ok(()),
                },
            )
            .map_err(|reason| {
                Error::provision(
                    ProvisionCode::InvalidRoleName,
                    format!("invalid role name {shown:?}: {reason}"),
                )
            })?;
        Ok(RoleName(raw.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for DatabaseName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Display for RoleName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A uniformly chosen byte of `alphabet`, from the OS's CSPRNG (rejection sampling,
/// so no character is likelier than another).
fn pick(alphabet: &[u8]) -> char {
    let n = alphabet.len() as u32;
    let limit = u32::MAX - u32::MAX % n;
    loop {
        let r = OsRng.next_u32();
        if r < limit {
            return alphabet[(r % n) as usize] as char;
        }
    }
}

fn random_suffix() -> String {
    (0..6)
        .map(|_| pick(b"abcdefghijklmnopqrstuvwxyz0123456789"))
        .collect()
}

/// What generated passwords are made of: letters, digits and characters a URL must
/// percent-encode (`@ : / ? # % & + =` ...), so everything downstream is tested by them.
/// No quote, backslash or space, which some tools' own config formats mangle.
const PASSWORD_ALPHABET: &[u8] =
    b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789@:/?#%&+=!*$^,;[]{}()|<>~-_.";

/// The length of generated passwords.
pub const PASSWORD_LEN: usize = 40;

/// A new password: [`PASSWORD_LEN`] characters from the OS's CSPRNG, with at least one
/// character that needs URL-encoding and never `${` (which python-dotenv expands inside
/// any quotes, so `block env --format dotenv` could not print it). Wiped from memory
/// when dropped.
pub fn generate_password() -> Zeroizing<String> {
    loop {
        let password: Zeroizing<String> =
            Zeroizing::new((0..PASSWORD_LEN).map(|_| pick(PASSWORD_ALPHABET)).collect());
        if password.chars().any(|c| "@:/?#%&+=".contains(c)) && !password.contains("${") {
            return password;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn database_names_follow_the_seed_rules() {
        for ok in ["my_project", "project_2024", "analytics_v2", "a"] {
            assert!(DatabaseName::parse(ok).is_ok(), "{ok}");
        }
        for bad in [
            "My-Project",
            "123_project",
            "project@2024",
            "postgres",
            "template1",
            "",
            "_x",
        ] {
            let err = DatabaseName::parse(bad).unwrap_err();
            assert_eq!(err.code(), "INVALID_DATABASE_NAME", "{bad}");
        }
        assert!(DatabaseName::parse(&"a".repeat(63)).is_ok());
        assert!(DatabaseName::parse(&"a".repeat(64)).is_err());
    }

    #[test]
    fn generated_names_are_valid_and_readable() {
        let name = DatabaseName::generate("My Project").unwrap();
        assert!(name.as_str().starts_with("my_project_"), "{name}");
        assert_eq!(name.as_str().len(), "my_project_".len() + 6);
        let name = DatabaseName::generate("Test-App!!  2").unwrap();
        assert!(name.as_str().starts_with("test_app_2_"), "{name}");
        let name = DatabaseName::generate("123 go").unwrap();
        assert!(name.as_str().starts_with("db_123_go_"), "{name}");
        let long = DatabaseName::generate(&"x".repeat(200)).unwrap();
        assert!(long.as_str().len() <= MAX_LEN);
        assert!(
            DatabaseName::generate("")
                .unwrap()
                .as_str()
                .starts_with("db_")
        );
    }

    #[test]
    fn role_names() {
        assert!(RoleName::parse("databot").is_ok());
        assert_eq!(
            RoleName::parse("pg_monitor").unwrap_err().code(),
            "INVALID_ROLE_NAME"
        );
        assert_eq!(
            RoleName::parse("Bot").unwrap_err().code(),
            "INVALID_ROLE_NAME"
        );
    }

    #[test]
    fn passwords_are_long_random_and_need_encoding() {
        let a = generate_password();
        let b = generate_password();
        assert_eq!(a.len(), PASSWORD_LEN);
        assert_ne!(*a, *b);
        assert!(a.chars().any(|c| "@:/?#%&+=".contains(c)));
        assert!(!a.contains(['\'', '"', '\\', ' ']));
    }
}
