//! Every setting defined once, in one table: its name (the config file's key and, with
//! `-` for `_`, its flag), its environment variable, its type, its default, whether a
//! `.env` file may set it, whether it is secret, which command line takes it, and its
//! help. From the table come [`Settings`] (one source's values), reading the
//! environment, the flags and their help (in `cli`), and `blockyard config`'s listing.

use std::collections::HashMap;
use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use crate::error::{Error, Result};

/// Which command line takes a setting as a flag.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scope {
    /// Every command (`--data-dir`, `--server-url`, ...).
    Global,
    /// `blockyard server` only.
    Server,
    /// No flag: the environment, `.env` or the config file only.
    Unflagged,
}

/// One row of the table.
#[derive(Debug)]
pub struct Setting {
    /// The config file's key; the flag is `--` and this with `-` for `_`.
    pub name: &'static str,
    pub env: &'static str,
    pub scope: Scope,
    /// A `.env` file in the current directory may set it (tuning only, never where
    /// secrets are kept or sent).
    pub dotenv: bool,
    /// Its value is never shown.
    pub secret: bool,
    /// The flag's value placeholder; a switch (a boolean) has none.
    pub value_name: &'static str,
    pub default: Option<&'static str>,
    /// The values it may take, where they are few.
    pub choices: &'static [&'static str],
    /// Another name of its flag.
    pub alias: Option<&'static str>,
    help: &'static [&'static str],
    check: fn(&str) -> std::result::Result<(), String>,
}

impl Setting {
    /// The help, one paragraph.
    pub fn help(&self) -> String {
        self.help
            .iter()
            .map(|line| line.trim())
            .collect::<Vec<_>>()
            .join(" ")
    }

    /// Whether `text` is a value of this setting's type (the message says what is).
    pub fn check(&self, text: &str) -> std::result::Result<(), String> {
        (self.check)(text)
    }

    /// A switch: a flag without a value.
    pub fn is_switch(&self) -> bool {
        self.value_name.is_empty()
    }

    /// The flag: the name with `-` for `_`.
    pub fn flag(&self) -> String {
        self.name.replace('_', "-")
    }
}

/// A type a setting may have: read from text (a variable, a flag, a default) and shown.
pub trait SettingValue: Sized {
    /// The value, or what a value must be.
    fn parse(text: &str) -> std::result::Result<Self, String>;
    fn show(&self) -> String;
    /// Refused text as an error may quote it.
    fn quote_refused(text: &str) -> String {
        format!("{text:?}")
    }
}

impl SettingValue for String {
    fn parse(text: &str) -> std::result::Result<Self, String> {
        Ok(text.to_owned())
    }
    fn show(&self) -> String {
        self.clone()
    }
}

impl SettingValue for PathBuf {
    fn parse(text: &str) -> std::result::Result<Self, String> {
        Ok(PathBuf::from(text))
    }
    fn show(&self) -> String {
        self.display().to_string()
    }
}

impl SettingValue for bool {
    fn parse(text: &str) -> std::result::Result<Self, String> {
        match text.to_ascii_lowercase().as_str() {
            "1" | "true" | "yes" | "on" => Ok(true),
            "0" | "false" | "no" | "off" => Ok(false),
            _ => Err("must be true or false (1 or 0)".into()),
        }
    }
    fn show(&self) -> String {
        self.to_string()
    }
}

impl SettingValue for IpAddr {
    fn parse(text: &str) -> std::result::Result<Self, String> {
        text.parse()
            .map_err(|_| "must be an IP address such as 127.0.0.1 or ::1".into())
    }
    fn show(&self) -> String {
        self.to_string()
    }
}

macro_rules! whole_numbers {
    ($($ty:ty),*) => {$(
        impl SettingValue for $ty {
            fn parse(text: &str) -> std::result::Result<Self, String> {
                text.parse().map_err(|_| {
                    format!("must be a whole number from {} to {}", <$ty>::MIN, <$ty>::MAX)
                })
            }
            fn show(&self) -> String {
                self.to_string()
            }
        }
    )*};
}
whole_numbers!(u16, u32, u64, usize);

/// An `http://` or `https://` URL without credentials (they have settings of their own,
/// kept secret).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HttpUrl(pub url::Url);

impl SettingValue for HttpUrl {
    fn parse(text: &str) -> std::result::Result<Self, String> {
        let url = url::Url::parse(text.trim())
            .map_err(|_| "must be an http:// or https:// URL".to_owned())?;
        if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
            return Err("must be an http:// or https:// URL".into());
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err("must not hold credentials (give them in their own setting)".into());
        }
        Ok(HttpUrl(url))
    }
    fn show(&self) -> String {
        self.0.to_string()
    }
    /// Never the password of a refused URL.
    fn quote_refused(text: &str) -> String {
        match url::Url::parse(text.trim()) {
            Ok(mut url) if url.password().is_some() => {
                let _ = url.set_password(Some("********"));
                format!("{:?}", url.as_str())
            }
            Ok(_) => format!("{text:?}"),
            Err(_) => "that".into(),
        }
    }
}

impl<'de> Deserialize<'de> for HttpUrl {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<HttpUrl, D::Error> {
        let text = String::deserialize(d)?;
        HttpUrl::parse(&text).map_err(|why| {
            serde::de::Error::custom(format!("{} {why}", HttpUrl::quote_refused(&text)))
        })
    }
}

/// Web origins (`scheme://host[:port]`), written comma-separated: the pages whose
/// scripts may call an API from a browser.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Origins(pub Vec<String>);

impl SettingValue for Origins {
    fn parse(text: &str) -> std::result::Result<Self, String> {
        let must = "must be origins such as http://127.0.0.1:4200, comma-separated";
        let mut origins = Vec::new();
        for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let url = url::Url::parse(part).map_err(|_| must.to_owned())?;
            let bare = url.path() == "/" && url.query().is_none() && url.fragment().is_none();
            let plain = url.username().is_empty() && url.password().is_none();
            if !matches!(url.scheme(), "http" | "https") || !bare || !plain {
                return Err(must.into());
            }
            origins.push(url.origin().ascii_serialization());
        }
        match origins.is_empty() {
            true => Err(must.into()),
            false => Ok(Origins(origins)),
        }
    }
    fn show(&self) -> String {
        self.0.join(",")
    }
}

/// Networks or addresses (`10.0.0.0/8`, `127.0.0.1`, `::1`), written comma-separated.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Networks(pub Vec<ipnet::IpNet>);

impl SettingValue for Networks {
    fn parse(text: &str) -> std::result::Result<Self, String> {
        let must = "must be addresses or networks such as 127.0.0.1,10.0.0.0/8, comma-separated";
        let mut networks = Vec::new();
        for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let net = match part.parse::<IpAddr>() {
                Ok(address) => ipnet::IpNet::from(address),
                Err(_) => part.parse().map_err(|_| must.to_owned())?,
            };
            networks.push(net);
        }
        match networks.is_empty() {
            true => Err(must.into()),
            false => Ok(Networks(networks)),
        }
    }
    fn show(&self) -> String {
        let shown: Vec<String> = self.0.iter().map(ToString::to_string).collect();
        shown.join(",")
    }
}

impl<'de> Deserialize<'de> for Networks {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Networks, D::Error> {
        let text = String::deserialize(d)?;
        Networks::parse(&text).map_err(serde::de::Error::custom)
    }
}

impl<'de> Deserialize<'de> for Origins {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Origins, D::Error> {
        let text = String::deserialize(d)?;
        Origins::parse(&text).map_err(serde::de::Error::custom)
    }
}

/// A length of time, written as `30s`, `5m`, `90d` (`0` for none).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Span(pub Duration);

impl SettingValue for Span {
    fn parse(text: &str) -> std::result::Result<Self, String> {
        match text.trim() {
            "0" => Ok(Span(Duration::ZERO)),
            text => humantime::parse_duration(text)
                .map(Span)
                .map_err(|_| "must be a duration such as 30s, 5m or 90d".into()),
        }
    }
    fn show(&self) -> String {
        humantime::format_duration(self.0).to_string()
    }
}

impl std::str::FromStr for Span {
    type Err = Error;
    fn from_str(text: &str) -> Result<Span> {
        Span::parse(text).map_err(|why| Error::Config(format!("{text:?} {why}")))
    }
}

impl<'de> Deserialize<'de> for Span {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Span, D::Error> {
        let text = String::deserialize(d)?;
        Span::parse(&text).map_err(serde::de::Error::custom)
    }
}

/// Reads one variable: unset or empty is not given.
fn read_var<T: SettingValue>(vars: &HashMap<String, String>, name: &str) -> Result<Option<T>> {
    match vars.get(name).filter(|v| !v.is_empty()) {
        None => Ok(None),
        Some(text) => T::parse(text)
            .map(Some)
            .map_err(|why| Error::Config(format!("{name} {why}, not {}", T::quote_refused(text)))),
    }
}

/// A setting's default, read as a value of its type.
fn read_default<T: SettingValue>(name: &str, default: Option<&str>) -> Result<Option<T>> {
    default
        .map(|text| {
            T::parse(text).map_err(|why| {
                Error::Internal(format!("the default of setting {name} {why}, not {text:?}"))
            })
        })
        .transpose()
}

macro_rules! settings {
    ($(
        $(#[doc = $doc:literal])+
        $field:ident: $ty:ty {
            env: $env:literal,
            scope: $scope:ident,
            dotenv: $dotenv:literal,
            secret: $secret:literal,
            value: $value:literal,
            default: $default:expr,
            choices: $choices:expr,
            alias: $alias:expr $(,)?
        }
    )*) => {
        /// One source's settings (flags, environment, `.env`, config file); every
        /// field optional.
        #[derive(Clone, Default, Deserialize)]
        #[serde(deny_unknown_fields)]
        pub struct Settings {
            $( $(#[doc = $doc])+ pub $field: Option<$ty>, )*
        }

        /// The table.
        pub const SETTINGS: &[Setting] = &[$(
            Setting {
                name: stringify!($field),
                env: $env,
                scope: Scope::$scope,
                dotenv: $dotenv,
                secret: $secret,
                value_name: $value,
                default: $default,
                choices: $choices,
                alias: $alias,
                help: &[$($doc),+],
                check: |text| <$ty as SettingValue>::parse(text).map(|_| ()),
            },
        )*];

        impl Settings {
            /// Fills every unset field from `other`.
            pub fn or(self, other: Settings) -> Settings {
                Settings { $( $field: self.$field.or(other.$field), )* }
            }

            /// Reads the settings' variables from a variable map.
            pub fn from_vars(vars: &HashMap<String, String>) -> Result<Settings> {
                Ok(Settings { $( $field: read_var(vars, $env)?, )* })
            }

            /// Every setting that has a default, at its default.
            pub fn defaults() -> Result<Settings> {
                Ok(Settings { $( $field: read_default(stringify!($field), $default)?, )* })
            }

            /// Whether this source gives the setting `name`.
            pub fn gives(&self, name: &str) -> bool {
                match name {
                    $( stringify!($field) => self.$field.is_some(), )*
                    _ => false,
                }
            }

            /// The value of the setting `name`, as text, if given.
            pub fn shown(&self, name: &str) -> Option<String> {
                match name {
                    $( stringify!($field) => self.$field.as_ref().map(SettingValue::show), )*
                    _ => None,
                }
            }

            /// Sets `name` from text (a flag's value), checked by its type.
            pub fn set(&mut self, name: &str, text: &str) -> Result<()> {
                match name {
                    $( stringify!($field) => {
                        let value = <$ty as SettingValue>::parse(text).map_err(|why| {
                            Error::Config(format!("--{} {why}", stringify!($field).replace('_', "-")))
                        })?;
                        self.$field = Some(value);
                    } )*
                    _ => return Err(Error::Internal(format!("no setting {name}"))),
                }
                Ok(())
            }
        }
    };
}

settings! {
    /// Directory for the default SQLite store and key file.
    data_dir: PathBuf {
        env: "BLOCKYARD_DATA_DIR", scope: Global, dotenv: false, secret: false, value: "DIR",
        default: None, choices: &[], alias: None,
    }
    /// Store URL: a path or sqlite:///path (default: blockyard.db in the data
    /// directory), or postgres://user@host/db.
    database_url: String {
        env: "BLOCKYARD_DATABASE_URL", scope: Global, dotenv: false, secret: false,
        value: "URL", default: None, choices: &[], alias: None,
    }
    /// Master key file (created 0600 on first use).
    key_file: PathBuf {
        env: "BLOCKYARD_KEY_FILE", scope: Global, dotenv: false, secret: false, value: "FILE",
        default: None, choices: &[], alias: None,
    }
    /// Where the master key lives when no key file or BLOCKYARD_MASTER_KEY is given: a
    /// key file, or the OS keyring (Secret Service, macOS Keychain, Windows Credential
    /// Manager).
    key_source: String {
        env: "BLOCKYARD_KEY_SOURCE", scope: Global, dotenv: false, secret: false,
        value: "SOURCE", default: None, choices: &["file", "keyring"], alias: None,
    }
    /// The OS keyring entry that holds the master key.
    keyring_account: String {
        env: "BLOCKYARD_KEYRING_ACCOUNT", scope: Unflagged, dotenv: false, secret: false,
        value: "NAME", default: Some("master-key"), choices: &[], alias: None,
    }
    /// Connections in the store's pool.
    pool_max_size: u32 {
        env: "BLOCKYARD_POOL_MAX_SIZE", scope: Unflagged, dotenv: true, secret: false,
        value: "N", default: Some("8"), choices: &[], alias: None,
    }
    /// Seconds to wait for a store connection.
    connect_timeout_secs: u64 {
        env: "BLOCKYARD_CONNECT_TIMEOUT", scope: Unflagged, dotenv: true, secret: false,
        value: "SECONDS", default: Some("5"), choices: &[], alias: None,
    }
    /// How long a block pool is used before its block is read again.
    pool_refresh: Span {
        env: "BLOCKYARD_POOL_REFRESH", scope: Unflagged, dotenv: true, secret: false,
        value: "DURATION", default: Some("30s"), choices: &[], alias: None,
    }
    /// Remote mode: use the Blockyard server at this URL instead of a local store
    /// (block and type commands, block test/url/env, exec).
    server_url: String {
        env: "BLOCKYARD_URL", scope: Global, dotenv: false, secret: false, value: "URL",
        default: None, choices: &[], alias: Some("remote"),
    }
    /// API token for --server-url (prefer the variable: flags show up in `ps`).
    token: String {
        env: "BLOCKYARD_TOKEN", scope: Global, dotenv: false, secret: true, value: "TOKEN",
        default: None, choices: &[], alias: None,
    }
    /// Allow plain http:// to a --server-url that is not this machine (tokens and
    /// secrets then cross the network unencrypted).
    insecure: bool {
        env: "BLOCKYARD_INSECURE", scope: Global, dotenv: false, secret: false, value: "",
        default: Some("false"), choices: &[], alias: None,
    }
    /// Address to listen on.
    address: IpAddr {
        env: "BLOCKYARD_ADDRESS", scope: Server, dotenv: false, secret: false,
        value: "ADDRESS", default: Some("127.0.0.1"), choices: &[], alias: None,
    }
    /// Port to listen on.
    port: u16 {
        env: "BLOCKYARD_PORT", scope: Server, dotenv: false, secret: false, value: "PORT",
        default: Some("4200"), choices: &[], alias: None,
    }
    /// How long a verified token is trusted before it is checked again; a revocation
    /// reaches every server within this time.
    token_cache: Span {
        env: "BLOCKYARD_TOKEN_CACHE", scope: Server, dotenv: false, secret: false,
        value: "DURATION", default: Some("1s"), choices: &[], alias: None,
    }
    /// How long a block read is kept in memory to answer the next read of it faster
    /// (each such answer is first confirmed current with the store); 0 keeps nothing.
    block_cache: Span {
        env: "BLOCKYARD_BLOCK_CACHE", scope: Server, dotenv: false, secret: false,
        value: "DURATION", default: Some("30s"), choices: &[], alias: None,
    }
    /// How often to look for blocks whose scheduled password rotation
    /// (`rotation.every`, with `rotation.admin`) is due.
    rotation_check: Span {
        env: "BLOCKYARD_ROTATION_CHECK", scope: Server, dotenv: false, secret: false,
        value: "DURATION", default: Some("60s"), choices: &[], alias: None,
    }
    /// How often the server reconciles leases: revokes expired ones and what a crash
    /// left half done, and drops managed database users the store does not know.
    lease_check: Span {
        env: "BLOCKYARD_LEASE_CHECK", scope: Server, dotenv: false, secret: false,
        value: "DURATION", default: Some("30s"), choices: &[], alias: None,
    }
    /// How long audit records are kept: older ones are deleted in the background, in
    /// small batches (by one server at a time on a shared PostgreSQL store). 0 keeps
    /// them for ever; export them first with `blockyard audit export` if they must be
    /// kept elsewhere.
    audit_retention: Span {
        env: "BLOCKYARD_AUDIT_RETENTION", scope: Server, dotenv: false, secret: false,
        value: "DURATION", default: Some("90d"), choices: &[], alias: None,
    }
    /// Successful secret reads of one block by one token within this window are one
    /// audit record with a count (first and last time, first and last request id);
    /// refusals and changes are always records of their own. 0 writes a record per
    /// read.
    audit_window: Span {
        env: "BLOCKYARD_AUDIT_WINDOW", scope: Server, dotenv: false, secret: false,
        value: "DURATION", default: Some("60s"), choices: &[], alias: None,
    }
    /// Audit writer threads on a PostgreSQL store (1 to 16), each with its own
    /// connection: one commits a batch while another sends the next (SQLite always
    /// uses one).
    audit_writers: u16 {
        env: "BLOCKYARD_AUDIT_WRITERS", scope: Server, dotenv: false, secret: false,
        value: "N", default: Some("1"), choices: &[], alias: None,
    }
    /// Do not log a line per request.
    quiet: bool {
        env: "BLOCKYARD_QUIET", scope: Server, dotenv: false, secret: false, value: "",
        default: Some("false"), choices: &[], alias: None,
    }
    /// A Prefect server's API (http://127.0.0.1:4200/api): every request under
    /// /prefect/api that Blockyard does not answer itself goes there, after the
    /// caller's token is checked.
    prefect_upstream: HttpUrl {
        env: "BLOCKYARD_PREFECT_UPSTREAM", scope: Server, dotenv: false, secret: false,
        value: "URL", default: None, choices: &[], alias: None,
    }
    /// The Prefect upstream's own credentials, `user:password` for its Basic auth (as
    /// Prefect's PREFECT_API_AUTH_STRING); never taken from a caller.
    prefect_upstream_auth: String {
        env: "BLOCKYARD_PREFECT_UPSTREAM_AUTH", scope: Unflagged, dotenv: false, secret: true,
        value: "USER:PASSWORD", default: None, choices: &[], alias: None,
    }
    /// The web pages that may call /prefect/api from a browser (CORS): the Prefect UI
    /// served by the upstream, pointed at Blockyard with PREFECT_UI_API_URL. Default:
    /// the origin of --prefect-upstream.
    prefect_ui_origins: Origins {
        env: "BLOCKYARD_PREFECT_UI_ORIGINS", scope: Server, dotenv: false, secret: false,
        value: "ORIGINS", default: None, choices: &[], alias: None,
    }
    /// Failed authentications (bad tokens, failed sign-ins) one client address may make
    /// at once; then it is answered 429 with Retry-After until it earns more back (see
    /// auth_failures_per_minute). 0 turns the limit off.
    auth_failures_burst: u32 {
        env: "BLOCKYARD_AUTH_FAILURES_BURST", scope: Server, dotenv: false, secret: false,
        value: "N", default: Some("20"), choices: &[], alias: None,
    }
    /// Failed authentications a client address earns back per minute. 0 turns the
    /// limit off.
    auth_failures_per_minute: u32 {
        env: "BLOCKYARD_AUTH_FAILURES_PER_MINUTE", scope: Server, dotenv: false,
        secret: false, value: "N", default: Some("60"), choices: &[], alias: None,
    }
    /// Proxies (load balancers) whose X-Forwarded-For names the client, comma-separated
    /// addresses or networks; from anyone else the header is ignored.
    trusted_proxies: Networks {
        env: "BLOCKYARD_TRUSTED_PROXIES", scope: Server, dotenv: false, secret: false,
        value: "NETWORKS", default: None, choices: &[], alias: None,
    }
    /// On SIGTERM or SIGINT: how long /ready answers 503 (so load balancers stop
    /// sending) while the server still serves, before it stops taking connections.
    drain_time: Span {
        env: "BLOCKYARD_DRAIN_TIME", scope: Server, dotenv: false, secret: false,
        value: "DURATION", default: Some("2s"), choices: &[], alias: None,
    }
    /// On SIGTERM or SIGINT: the most the server takes to exit, drain time included;
    /// requests still running then are cut off.
    shutdown_grace: Span {
        env: "BLOCKYARD_SHUTDOWN_GRACE", scope: Server, dotenv: false, secret: false,
        value: "DURATION", default: Some("10s"), choices: &[], alias: None,
    }
    /// Async worker threads (default: one per core).
    workers: usize {
        env: "BLOCKYARD_WORKERS", scope: Server, dotenv: false, secret: false, value: "N",
        default: None, choices: &[], alias: None,
    }
}

/// The table's row for `name`.
pub fn setting(name: &str) -> Option<&'static Setting> {
    SETTINGS.iter().find(|s| s.name == name)
}

/// Shows which settings are given, never a secret's value.
impl std::fmt::Debug for Settings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut list = f.debug_map();
        for s in SETTINGS {
            if let Some(value) = self.shown(s.name) {
                let value = if s.secret { "********".into() } else { value };
                list.entry(&s.name, &value);
            }
        }
        list.finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_default_and_choice_is_a_value_of_its_type() {
        let defaults = Settings::defaults().unwrap();
        for s in SETTINGS {
            assert_eq!(defaults.gives(s.name), s.default.is_some(), "{}", s.name);
            for choice in s.choices {
                s.check(choice).unwrap();
            }
            assert!(s.env.starts_with("BLOCKYARD_"), "{}", s.name);
            assert!(!s.help().is_empty(), "{}", s.name);
        }
    }

    #[test]
    fn the_store_pool_defaults_are_the_tables() {
        let defaults = Settings::defaults().unwrap();
        let pool = crate::store::PoolOptions::default();
        assert_eq!(defaults.pool_max_size, Some(pool.max_size));
        assert_eq!(
            defaults.connect_timeout_secs,
            Some(pool.connection_timeout.as_secs())
        );
    }

    #[test]
    fn origins_are_bare_web_origins() {
        let read = Origins::parse("http://127.0.0.1:4200, https://prefect.example.com/").unwrap();
        assert_eq!(
            read.0,
            ["http://127.0.0.1:4200", "https://prefect.example.com"]
        );
        for refused in [
            "",
            "127.0.0.1:4200",
            "ftp://x",
            "http://x/ui",
            "http://u:p@x",
            "*",
        ] {
            assert!(Origins::parse(refused).is_err(), "{refused}");
        }
    }

    #[test]
    fn a_secret_is_never_in_debug() {
        let s = Settings {
            token: Some("TOKEN-PLANTED".into()),
            port: Some(1),
            ..Settings::default()
        };
        let shown = format!("{s:?}");
        assert!(
            !shown.contains("TOKEN-PLANTED") && shown.contains("port"),
            "{shown}"
        );
    }
}
