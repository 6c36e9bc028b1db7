//! Configuration: flags, `BLOCKYARD_*` variables, a `.env` file and an optional TOML
//! config file, merged in that order of precedence into one [`Config`] value that is
//! passed explicitly to whatever needs it (there is no global configuration). Each
//! value remembers where it came from (`blockyard config`). A `.env` file in the
//! current directory is anyone's to drop there, so it may set only tuning settings,
//! never where the store, the key or a server is: a store chosen by the file could name
//! a key the file's author holds, and a server would receive every secret.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use zeroize::Zeroizing;

pub mod login;
mod settings;

pub use settings::{
    HttpUrl, Networks, Origins, SETTINGS, Scope, Setting, SettingValue, Settings, Span, setting,
};

use crate::crypto::{KeySource, MasterKeyLocation};
use crate::error::{Error, Result};
use crate::store::{PoolOptions, StoreUrl};

/// Which master key to use, as configured.
#[derive(Clone, Debug)]
pub enum KeyChoice {
    /// Named explicitly (variable, key file, or keyring).
    Explicit(KeySource),
    /// Not named: use what the store recorded at init, or a key file in the data dir.
    Auto,
}

/// The resolved configuration.
#[derive(Debug)]
pub struct Config {
    pub data_dir: PathBuf,
    pub database_url: StoreUrl,
    pub key: KeyChoice,
    pub pool: PoolOptions,
    /// How long a cached block pool is used before its block is re-read.
    pub pool_refresh: Duration,
    /// Remote mode: the server and token to use instead of the local store.
    pub remote: Option<RemoteSettings>,
    /// Where each setting that was given came from (`flag`, `environment`,
    /// `.env (PATH)`, `config file (PATH)`), by setting name; the rest are defaults.
    pub origins: Vec<(&'static str, String)>,
    /// Every setting in effect, the defaults filled in (for `blockyard config` and the
    /// server's settings).
    pub settings: Settings,
}

impl Config {
    /// Where a setting came from: `default` if no source gave it.
    pub fn origin(&self, setting: &str) -> &str {
        self.origins
            .iter()
            .find(|(name, _)| *name == setting)
            .map_or("default", |(_, origin)| origin.as_str())
    }
}

/// A Blockyard server and the token to call it with. `Debug` hides the token.
#[derive(Clone)]
pub struct RemoteSettings {
    pub url: url::Url,
    pub token: Zeroizing<String>,
}

impl std::fmt::Debug for RemoteSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "RemoteSettings({}, token ********)", self.url)
    }
}

/// Where the settings come from, for [`Config::load`].
#[derive(Default)]
pub struct Sources {
    /// Settings given as command-line flags.
    pub flags: Settings,
    /// Process environment.
    pub env: HashMap<String, String>,
    /// Explicit config file (`--config`); otherwise `BLOCKYARD_CONFIG` or the user's
    /// config directory is tried.
    pub config_file: Option<PathBuf>,
    /// The `.env` file to read `BLOCKYARD_*` entries from, if it exists.
    pub dotenv: Option<PathBuf>,
}

impl Config {
    pub fn load(sources: Sources) -> Result<Config> {
        let mut vars = sources.env;
        let dotenv = match sources.dotenv.as_deref().filter(|p| p.exists()) {
            Some(path) => (
                read_dotenv_settings(path)?,
                format!(".env ({})", path.display()),
            ),
            None => (Settings::default(), String::new()),
        };
        let config_path = sources
            .config_file
            .or_else(|| vars.get("BLOCKYARD_CONFIG").map(PathBuf::from))
            .or_else(|| {
                dirs::config_dir()
                    .map(|d| d.join("blockyard/config.toml"))
                    .filter(|p| p.exists())
            });
        let file = match &config_path {
            Some(path) => (
                read_config_file(path)?,
                format!("config file ({})", path.display()),
            ),
            None => (Settings::default(), String::new()),
        };
        let layers = [
            (sources.flags, "flag".to_owned()),
            (Settings::from_vars(&vars)?, "environment".to_owned()),
            dotenv,
            file,
        ];
        let origins = SETTINGS
            .iter()
            .filter_map(|setting| {
                let (_, origin) = layers.iter().find(|(layer, _)| layer.gives(setting.name))?;
                Some((setting.name, origin.clone()))
            })
            .collect();
        let settings = layers
            .into_iter()
            .map(|(layer, _)| layer)
            .fold(Settings::default(), Settings::or)
            .or(Settings::defaults()?);
        let master_key = vars.remove("BLOCKYARD_MASTER_KEY").map(Zeroizing::new);
        let mut origins: Vec<(&'static str, String)> = origins;
        if master_key.as_ref().is_some_and(|k| !k.trim().is_empty()) {
            origins.push(("master_key", "environment".into()));
        }
        let mut config = Self::resolve(settings, master_key)?;
        config.origins = origins;
        config.use_login()?;
        Ok(config)
    }

    /// With no server named by a flag, the environment or a file, the one `blockyard
    /// login` kept, if any.
    fn use_login(&mut self) -> Result<()> {
        if self.remote.is_some() || self.settings.server_url.is_some() {
            return Ok(());
        }
        let Some(kept) = login::load()? else {
            return Ok(());
        };
        let insecure = *required(&self.settings.insecure, "insecure")?;
        self.remote = remote_settings(
            Some(kept.url.clone()),
            Some(kept.token.to_string()),
            insecure,
        )?;
        self.settings.server_url = Some(kept.url);
        let origin = format!("login (token in {})", kept.kept_in);
        self.origins.push(("server_url", origin.clone()));
        self.origins.push(("token", origin));
        Ok(())
    }

    fn resolve(s: Settings, master_key: Option<Zeroizing<String>>) -> Result<Config> {
        let data_dir = match &s.data_dir {
            Some(dir) => dir.clone(),
            None => dirs::data_dir()
                .map(|d| d.join("blockyard"))
                .ok_or_else(|| {
                    Error::Config("no data directory found; set BLOCKYARD_DATA_DIR".into())
                })?,
        };
        let database_url = match &s.database_url {
            Some(url) => StoreUrl::parse(url)?,
            None => StoreUrl::Sqlite(data_dir.join("blockyard.db")),
        };
        let key = key_choice(
            master_key.filter(|k| !k.trim().is_empty()),
            s.key_file.clone(),
            s.key_source.as_deref(),
            required(&s.keyring_account, "keyring_account")?.clone(),
            &data_dir,
        )?;
        let pool = PoolOptions {
            max_size: (*required(&s.pool_max_size, "pool_max_size")?).max(1),
            connection_timeout: Duration::from_secs(*required(
                &s.connect_timeout_secs,
                "connect_timeout_secs",
            )?),
        };
        let pool_refresh = required(&s.pool_refresh, "pool_refresh")?.0;
        let insecure = *required(&s.insecure, "insecure")?;
        let remote = remote_settings(s.server_url.clone(), s.token.clone(), insecure)?;
        Ok(Config {
            data_dir,
            database_url,
            key,
            pool,
            pool_refresh,
            remote,
            origins: Vec::new(),
            settings: s,
        })
    }
}

/// A setting that has a default (so is always set once the defaults are filled in).
pub fn required<'a, T>(value: &'a Option<T>, name: &str) -> Result<&'a T> {
    value
        .as_ref()
        .ok_or_else(|| Error::Internal(format!("setting {name} has no value")))
}

/// Where the master key comes from: the key itself (BLOCKYARD_MASTER_KEY) first, then a
/// key file named outright, then `key_source`; otherwise whatever the store recorded.
fn key_choice(
    master_key: Option<Zeroizing<String>>,
    key_file: Option<PathBuf>,
    key_source: Option<&str>,
    keyring_account: String,
    data_dir: &Path,
) -> Result<KeyChoice> {
    let at = |location| Ok(KeyChoice::Explicit(KeySource::at(location)));
    match (master_key, key_file, key_source) {
        (Some(value), _, _) => Ok(KeyChoice::Explicit(KeySource::env(value))),
        (None, Some(path), _) => at(MasterKeyLocation::File(path)),
        (None, None, Some("keyring")) => at(MasterKeyLocation::Keyring {
            user: keyring_account,
        }),
        (None, None, Some("file")) => at(MasterKeyLocation::File(default_key_file(data_dir))),
        (None, None, Some(other)) => Err(Error::Config(format!(
            "key source {other:?} is unknown; use file or keyring"
        ))),
        (None, None, None) => Ok(KeyChoice::Auto),
    }
}

/// Remote mode: both BLOCKYARD_URL and BLOCKYARD_TOKEN, or neither. Plain http is
/// refused for another machine unless `insecure`.
pub fn remote_settings(
    server_url: Option<String>,
    token: Option<String>,
    insecure: bool,
) -> Result<Option<RemoteSettings>> {
    let (text, token) = match (server_url, token) {
        (None, None) => return Ok(None),
        (Some(_), None) => {
            return Err(Error::Config(
                "BLOCKYARD_URL is set but BLOCKYARD_TOKEN is not; remote mode needs both \
                 (create a token on the server with `blockyard token create`)"
                    .into(),
            ));
        }
        (None, Some(_)) => {
            return Err(Error::Config(
                "BLOCKYARD_TOKEN is set but BLOCKYARD_URL is not; remote mode needs both".into(),
            ));
        }
        (Some(text), Some(token)) => (text, token),
    };
    let url = url::Url::parse(&text)
        .ok()
        .filter(|u| matches!(u.scheme(), "http" | "https") && u.has_host())
        .ok_or_else(|| {
            Error::Config(format!(
                "BLOCKYARD_URL {text:?} is not an http(s) URL such as http://127.0.0.1:4200"
            ))
        })?;
    if url.scheme() == "http" && !is_loopback(&url) && !insecure {
        return Err(Error::Config(format!(
            "BLOCKYARD_URL {url} is plain http to another machine: the token and \
             every secret would cross the network unencrypted. Use https://, or \
             pass --insecure (BLOCKYARD_INSECURE=1) if the network is trusted"
        )));
    }
    Ok(Some(RemoteSettings {
        url,
        token: Zeroizing::new(token),
    }))
}

/// Whether a URL's host is this machine (`localhost`, 127.0.0.0/8, `::1`).
fn is_loopback(url: &url::Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}

/// The `BLOCKYARD_*` settings of a `.env` file, refusing those it may not set.
fn read_dotenv_settings(path: &Path) -> Result<Settings> {
    let vars: HashMap<String, String> = read_env_file(path)?
        .into_iter()
        .filter(|(key, _)| key.starts_with("BLOCKYARD_"))
        .collect();
    let allowed: Vec<&str> = SETTINGS
        .iter()
        .filter(|s| s.dotenv)
        .map(|s| s.env)
        .collect();
    let mut refused: Vec<&str> = vars
        .keys()
        .map(String::as_str)
        .filter(|k| !allowed.contains(k))
        .collect();
    refused.sort_unstable();
    if let Some(key) = refused.first() {
        return Err(Error::Config(format!(
            "{} sets {key}, which a .env file may not set: a .env in the current directory \
             must not choose where the store, the master key or a server is (it could send \
             secrets to someone else). Set it in the environment, a flag or the config \
             file, and remove it from {}; a .env may set only {}",
            path.display(),
            path.display(),
            allowed.join(", ")
        )));
    }
    Settings::from_vars(&vars)
}

/// The key file used when nothing else is configured.
pub fn default_key_file(data_dir: &Path) -> PathBuf {
    data_dir.join("master.key")
}

fn read_config_file(path: &Path) -> Result<Settings> {
    let text = std::fs::read_to_string(path)
        .map_err(|err| Error::io(format!("reading config file {}", path.display()), err))?;
    let settings = parse_config_file(path, &text)?;
    if settings.token.is_some() {
        crate::files::check_private_holding(path, "config file", "an API token")?;
    }
    if settings.prefect_upstream_auth.is_some() {
        crate::files::check_private_holding(
            path,
            "config file",
            "the Prefect upstream's credentials",
        )?;
    }
    Ok(settings)
}

fn parse_config_file(path: &Path, text: &str) -> Result<Settings> {
    // The parser's message, with a line number but never the line (it may hold the
    // token).
    toml::from_str(text).map_err(|err| {
        let line = err.span().map(|span| {
            let before = &text.as_bytes()[..span.start.min(text.len())];
            before.iter().filter(|b| **b == b'\n').count() + 1
        });
        Error::Config(format!(
            "{}{}: {}",
            path.display(),
            line.map(|l| format!(", line {l}")).unwrap_or_default(),
            err.message()
        ))
    })
}

/// Reads a `.env` file into (name, value) pairs. A malformed line is reported by its
/// number, never its content (it may hold a secret).
pub fn read_env_file(path: &Path) -> Result<Vec<(String, String)>> {
    let iter = dotenvy::from_path_iter(path)
        .map_err(|err| Error::io(format!("reading {}", path.display()), io_error(err)))?;
    iter.map(|item| {
        item.map_err(|err| {
            let line = match &err {
                dotenvy::Error::LineParse(..) => std::fs::read_to_string(path)
                    .ok()
                    .and_then(|text| first_bad_line(&text))
                    .map(|n| format!(", line {n}")),
                _ => None,
            };
            Error::Config(format!(
                "{}{}: not a NAME=value line (the line is not shown: it may hold a secret)",
                path.display(),
                line.unwrap_or_default()
            ))
        })
    })
    .collect()
}

/// The number of the first line at which a `.env` text stops parsing.
fn first_bad_line(text: &str) -> Option<usize> {
    let lines: Vec<&str> = text.lines().collect();
    (1..=lines.len()).find(|&n| {
        let prefix = lines[..n].join("\n");
        dotenvy::from_read_iter(prefix.as_bytes()).any(|item| item.is_err())
    })
}

/// The I/O error inside a dotenvy error (or a generic one, never quoting content).
fn io_error(err: dotenvy::Error) -> std::io::Error {
    match err {
        dotenvy::Error::Io(err) => err,
        _ => std::io::Error::other("unreadable"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn flags_beat_env_beat_dotenv_beat_file() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("config.toml");
        std::fs::write(
            &file,
            "database_url = \"/from/file.db\"\npool_max_size = 3\nkey_source = \"keyring\"\n",
        )
        .unwrap();
        let dotenv = dir.path().join(".env");
        std::fs::write(
            &dotenv,
            "BLOCKYARD_POOL_REFRESH=7s\nBLOCKYARD_POOL_MAX_SIZE=5\nOTHER=x\n",
        )
        .unwrap();
        let config = Config::load(Sources {
            flags: Settings::default(),
            env: vars(&[("BLOCKYARD_DATABASE_URL", "/from/env.db")]),
            config_file: Some(file.clone()),
            dotenv: Some(dotenv.clone()),
        })
        .unwrap();
        assert_eq!(config.database_url, StoreUrl::Sqlite("/from/env.db".into()));
        assert_eq!(config.pool_refresh, Duration::from_secs(7));
        assert_eq!(config.pool.max_size, 5);
        assert_eq!(
            config.origin("pool_max_size"),
            format!(".env ({})", dotenv.display())
        );
        assert_eq!(
            config.origin("key_source"),
            format!("config file ({})", file.display())
        );
        assert!(
            matches!(config.key, KeyChoice::Explicit(ref s) if matches!(s.location, MasterKeyLocation::Keyring { .. }))
        );
        let config = Config::load(Sources {
            flags: Settings {
                database_url: Some("/from/flag.db".into()),
                ..Settings::default()
            },
            env: vars(&[("BLOCKYARD_DATABASE_URL", "/from/env.db")]),
            config_file: Some(file),
            dotenv: Some(dotenv),
        })
        .unwrap();
        assert_eq!(
            config.database_url,
            StoreUrl::Sqlite("/from/flag.db".into())
        );
    }

    #[test]
    fn bad_values_are_config_errors() {
        let err = Config::load(Sources {
            env: vars(&[
                ("BLOCKYARD_POOL_MAX_SIZE", "many"),
                ("BLOCKYARD_DATA_DIR", "/x"),
            ]),
            ..Sources::default()
        })
        .unwrap_err();
        assert_eq!(err.code(), "CONFIG_ERROR");
    }
}
