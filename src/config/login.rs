//! `blockyard login`: a server's URL and token kept for every shell, as `gh auth login`
//! and `vault login` keep theirs. The URL goes in `login.toml` in the config directory
//! (0600); the token in the OS keyring, or in that file where there is no keyring.

use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::error::{Error, Result};

/// The keyring service login tokens are kept under (the account is the server's URL).
const KEYRING_SERVICE: &str = "blockyard-login";

/// What `login.toml` holds: the server, and the token unless the keyring has it.
#[derive(Serialize, Deserialize)]
struct LoginFile {
    url: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    token: Option<String>,
}

/// A kept login. `Debug` hides the token.
pub struct Login {
    pub url: String,
    pub token: Zeroizing<String>,
    /// `the OS keyring` or the file's path, for `blockyard status`.
    pub kept_in: String,
}

impl std::fmt::Debug for Login {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Login({}, token ********, in {})",
            self.url, self.kept_in
        )
    }
}

/// `login.toml` in the user's config directory (`$XDG_CONFIG_HOME/blockyard`).
pub fn login_file() -> Result<PathBuf> {
    dirs::config_dir()
        .map(|dir| dir.join("blockyard").join("login.toml"))
        .ok_or_else(|| Error::Config("no config directory found; set XDG_CONFIG_HOME".into()))
}

fn entry(url: &str) -> Result<keyring::Entry> {
    keyring::Entry::new(KEYRING_SERVICE, url).map_err(|err| Error::Keyring(err.to_string()))
}

/// Keeps `url` and `token` for every later command: the token in the OS keyring if
/// there is one, else in the 0600 file. Answers where the token went.
pub fn save(url: &str, token: &str) -> Result<String> {
    let path = login_file()?;
    if let Some(dir) = path.parent() {
        crate::files::create_private_dir(dir)?;
    }
    let in_keyring = entry(url).and_then(|e| {
        e.set_password(token)
            .map_err(|err| Error::Keyring(err.to_string()))
    });
    let file = LoginFile {
        url: url.to_owned(),
        token: in_keyring.is_err().then(|| token.to_owned()),
    };
    let text = Zeroizing::new(
        toml::to_string(&file).map_err(|err| Error::Internal(format!("login file: {err}")))?,
    );
    crate::files::write_private_atomically(&path, |f| f.write_all(text.as_bytes()))?;
    Ok(match in_keyring {
        Ok(()) => "the OS keyring".to_owned(),
        Err(_) => path.display().to_string(),
    })
}

/// The kept login, if there is one.
pub fn load() -> Result<Option<Login>> {
    let path = login_file()?;
    if !path.exists() {
        return Ok(None);
    }
    crate::files::check_private(&path)?;
    let text = Zeroizing::new(crate::files::read_limited(&path)?);
    let file: LoginFile = toml::from_str(&text).map_err(|err| {
        Error::Config(format!(
            "{} is not a login file: {}",
            path.display(),
            err.message()
        ))
    })?;
    let (token, kept_in) = match file.token {
        Some(token) => (token, path.display().to_string()),
        None => (token_in_keyring(&file.url)?, "the OS keyring".to_owned()),
    };
    Ok(Some(Login {
        url: file.url,
        token: Zeroizing::new(token),
        kept_in,
    }))
}

fn token_in_keyring(url: &str) -> Result<String> {
    entry(url)?.get_password().map_err(|err| {
        Error::Keyring(format!(
            "the login to {url} keeps its token in the OS keyring, which answers: {err}; \
             run `blockyard login {url}` again (or `blockyard logout`)"
        ))
    })
}

/// Forgets the kept login (its keyring entry too); answers the server it was for.
pub fn forget() -> Result<Option<String>> {
    let path = login_file()?;
    let Ok(text) = std::fs::read_to_string(&path) else {
        return Ok(None);
    };
    let url = toml::from_str::<LoginFile>(&text).ok().map(|f| f.url);
    if let Some(url) = &url {
        // Nothing kept there (the token was in the file) is not an error.
        let _ = entry(url).and_then(|e| {
            e.delete_credential()
                .map_err(|err| Error::Keyring(err.to_string()))
        });
    }
    remove(&path)?;
    Ok(url.or_else(|| Some("(an unreadable login file)".to_owned())))
}

fn remove(path: &Path) -> Result<()> {
    std::fs::remove_file(path).map_err(|err| Error::io(format!("removing {}", path.display()), err))
}
