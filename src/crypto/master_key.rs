//! Where the master key lives: an environment variable, a key file, or the OS keyring.

use std::fmt;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use zeroize::Zeroizing;

use super::MasterKey;
use crate::error::{Error, Result};

/// Keyring service name under which master keys are stored.
pub const KEYRING_SERVICE: &str = "blockyard";

/// Where a master key is kept, without the key itself: what the store records so
/// later commands know where to look.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MasterKeyLocation {
    /// `BLOCKYARD_MASTER_KEY`.
    Env,
    /// A file holding the base64 key, mode 0600.
    File(PathBuf),
    /// The OS keyring (Secret Service, macOS Keychain, Windows Credential Manager).
    Keyring { user: String },
}

impl MasterKeyLocation {
    /// The text recorded in the store (`env`, `file:/path`, `keyring:user`).
    pub fn to_hint(&self) -> String {
        match self {
            MasterKeyLocation::Env => "env".into(),
            MasterKeyLocation::File(path) => format!("file:{}", path.display()),
            MasterKeyLocation::Keyring { user } => format!("keyring:{user}"),
        }
    }

    pub fn from_hint(hint: &str) -> Option<Self> {
        match hint.split_once(':') {
            None if hint == "env" => Some(MasterKeyLocation::Env),
            Some(("file", path)) => Some(MasterKeyLocation::File(PathBuf::from(path))),
            Some(("keyring", user)) => Some(MasterKeyLocation::Keyring { user: user.into() }),
            _ => None,
        }
    }
}

impl fmt::Display for MasterKeyLocation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MasterKeyLocation::Env => f.write_str("the BLOCKYARD_MASTER_KEY variable"),
            MasterKeyLocation::File(path) => write!(f, "key file {}", path.display()),
            MasterKeyLocation::Keyring { user } => {
                write!(
                    f,
                    "OS keyring (service {KEYRING_SERVICE:?}, account {user:?})"
                )
            }
        }
    }
}

/// A master key location plus, for `Env`, the variable's value.
#[derive(Clone)]
pub struct KeySource {
    pub location: MasterKeyLocation,
    env_value: Option<Zeroizing<String>>,
}

impl fmt::Debug for KeySource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "KeySource({})", self.location.to_hint())
    }
}

impl KeySource {
    pub fn env(value: Zeroizing<String>) -> Self {
        KeySource {
            location: MasterKeyLocation::Env,
            env_value: Some(value),
        }
    }

    pub fn at(location: MasterKeyLocation) -> Self {
        KeySource {
            location,
            env_value: None,
        }
    }

    /// Reads the master key; a missing key is `MASTER_KEY_MISSING`.
    pub fn load(&self) -> Result<MasterKey> {
        match &self.location {
            MasterKeyLocation::Env => match &self.env_value {
                Some(value) => MasterKey::from_base64(value),
                None => Err(Error::MasterKeyMissing(
                    "this store's master key was given in BLOCKYARD_MASTER_KEY; set that variable"
                        .into(),
                )),
            },
            MasterKeyLocation::File(path) => read_key_file(path),
            MasterKeyLocation::Keyring { user } => {
                let text = keyring_entry(user)?
                    .get_password()
                    .map_err(|err| match err {
                        keyring::Error::NoEntry => Error::MasterKeyMissing(format!(
                            "no master key in the {}; set BLOCKYARD_MASTER_KEY or --key-file",
                            self.location
                        )),
                        other => Error::Keyring(other.to_string()),
                    })?;
                MasterKey::from_base64(&Zeroizing::new(text))
            }
        }
    }

    /// Returns the key kept here, creating and saving a new one if there is none yet.
    /// Returns whether it was created.
    pub fn load_or_create(&self) -> Result<(MasterKey, bool)> {
        match self.load() {
            Ok(key) => Ok((key, false)),
            Err(Error::MasterKeyMissing(_)) if self.location != MasterKeyLocation::Env => {
                let key = MasterKey::generate();
                match &self.location {
                    MasterKeyLocation::File(path) => write_key_file(path, &key)?,
                    MasterKeyLocation::Keyring { user } => keyring_entry(user)?
                        .set_password(&key.to_base64())
                        .map_err(|err| Error::Keyring(err.to_string()))?,
                    MasterKeyLocation::Env => unreachable!("guarded above"),
                }
                Ok((key, true))
            }
            Err(err) => Err(err),
        }
    }
}

fn keyring_entry(user: &str) -> Result<keyring::Entry> {
    keyring::Entry::new(KEYRING_SERVICE, user).map_err(|err| Error::Keyring(err.to_string()))
}

fn read_key_file(path: &Path) -> Result<MasterKey> {
    crate::files::check_private(path)?;
    match std::fs::read_to_string(path) {
        Ok(text) => MasterKey::from_base64(&Zeroizing::new(text)).map_err(|_| {
            Error::InvalidMasterKey(format!(
                "key file {} does not hold a master key (32 bytes, base64)",
                path.display()
            ))
        }),
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => Err(Error::MasterKeyMissing(
            format!("master key file {} does not exist", path.display()),
        )),
        Err(err) => Err(Error::io(
            format!("reading key file {}", path.display()),
            err,
        )),
    }
}

fn write_key_file(path: &Path, key: &MasterKey) -> Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        crate::files::create_private_dir(dir)?;
    }
    let mut file = crate::files::private_file_options()
        .write(true)
        .create_new(true)
        .open(path)
        .map_err(|err| Error::io(format!("creating key file {}", path.display()), err))?;
    file.write_all(key.to_base64().as_bytes())
        .and_then(|()| file.write_all(b"\n"))
        .and_then(|()| file.sync_all())
        .map_err(|err| Error::io(format!("writing key file {}", path.display()), err))
}

/// Creates a new key file at `path` (refusing to overwrite one) and returns its key.
pub fn generate_master_key_file(path: &Path) -> Result<MasterKey> {
    let key = MasterKey::generate();
    write_key_file(path, &key)?;
    Ok(key)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hints_round_trip() {
        for loc in [
            MasterKeyLocation::Env,
            MasterKeyLocation::File("/tmp/x y/master.key".into()),
            MasterKeyLocation::Keyring {
                user: "master-key".into(),
            },
        ] {
            assert_eq!(MasterKeyLocation::from_hint(&loc.to_hint()), Some(loc));
        }
    }

    #[cfg(unix)]
    #[test]
    fn key_file_is_created_private_and_reloads() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/master.key");
        let source = KeySource::at(MasterKeyLocation::File(path.clone()));
        let (key, created) = source.load_or_create().unwrap();
        assert!(created);
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        let (again, created) = source.load_or_create().unwrap();
        assert!(!created);
        assert_eq!(key.fingerprint(), again.fingerprint());
    }
}
