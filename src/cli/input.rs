//! Turning command-line input into block documents: `--set` values parsed by the
//! field's schema type, secrets from stdin, a file or a prompt (never from arguments),
//! `--url` split into components, and `--from-env` variables.

use std::collections::HashMap;
use std::io::{IsTerminal, Read};
use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

use crate::connect::ConnectionInfo;
use crate::db::Backend;
use crate::document::{get_path, remove_path, set_path};
use crate::error::{Error, Result};
use crate::types::{BlockType, FieldKind};

/// Document edits given on the command line, in the order they apply.
#[derive(Debug, Default, clap::Args)]
pub struct DocumentArgs {
    /// Set a field: PATH=VALUE, e.g. connection_info.port=26257. The value is read as the
    /// field's type (a number for a port). Secret fields are refused here.
    #[arg(long = "set", value_name = "PATH=VALUE")]
    pub set: Vec<String>,
    /// Set a field to a JSON value: PATH=JSON, e.g. connect_args='{"sslmode":"require"}'.
    #[arg(long = "set-json", value_name = "PATH=JSON")]
    pub set_json: Vec<String>,
    /// Set a secret field from a file's content: PATH=FILE.
    #[arg(long = "set-secret-file", value_name = "PATH=FILE")]
    pub set_secret_file: Vec<String>,
    /// Read the type's main secret (for a connection, its password) from stdin.
    #[arg(long)]
    pub password_stdin: bool,
    /// Take the whole document from a JSON or YAML file ('-' for stdin), before --set
    /// edits.
    #[arg(long, value_name = "FILE")]
    pub data: Option<PathBuf>,
    /// Connection URL split into components, e.g. 'postgres://u:p%40ss@host:5432/db'.
    #[arg(long, value_name = "URL")]
    pub url: Option<String>,
    /// The `--data` document once read (stdin can be read only once).
    #[arg(skip)]
    loaded: Option<Value>,
}

impl DocumentArgs {
    /// Applies every edit to `doc` (which holds secrets, if any, in plaintext).
    /// Applies these arguments to `doc`, in order: `--data`, the `--from-env` document,
    /// `--url`, `--set`, `--set-json`, `--set-secret-file`, `--password-stdin`.
    pub fn apply(&self, ty: &BlockType, doc: &mut Value, env_doc: Option<Value>) -> Result<()> {
        if let Some(loaded) = &self.loaded {
            *doc = loaded.clone();
        } else if let Some(path) = &self.data {
            *doc = read_json_document(path)?.1;
        }
        if let Some(env_doc) = env_doc {
            merge_objects(doc, env_doc);
        }
        if let Some(url) = &self.url {
            apply_url(doc, url)?;
        }
        for item in &self.set {
            let (path, raw) = split_assignment(item, "--set")?;
            let kind = field_kind(ty, path)?;
            if ty.is_secret_field(path) {
                return Err(secret_in_arguments(path));
            }
            let value = parse_value(path, raw, kind)?;
            refuse_secrets(ty, path, &value)?;
            set_path(doc, path, value)?;
        }
        for item in &self.set_json {
            let (path, raw) = split_assignment(item, "--set-json")?;
            field_kind(ty, path)?;
            let value = serde_json::from_str(raw).map_err(|err| {
                Error::InvalidInput(format!("--set-json {path}: not valid JSON ({err})"))
            })?;
            refuse_secrets(ty, path, &value)?;
            set_path(doc, path, value)?;
        }
        for item in &self.set_secret_file {
            set_secret_file(ty, doc, item)?;
        }
        if self.password_stdin {
            let path = primary_secret(ty)?;
            let mut text = String::new();
            std::io::stdin()
                .read_to_string(&mut text)
                .map_err(|err| Error::io("reading the secret from stdin", err))?;
            let secret = trim_newline(text);
            if secret.is_empty() {
                return Err(Error::InvalidInput(format!(
                    "--password-stdin: stdin was empty, so there is no {path} (is the \
                     variable you pipe in set?)"
                )));
            }
            set_path(doc, path, Value::String(secret))?;
        }
        Ok(())
    }

    /// Whether any secret was given (so no prompt is needed).
    pub fn gives_secret(&self) -> bool {
        self.password_stdin || !self.set_secret_file.is_empty()
    }
}

/// `--url`: its parts become `connection_info` (a password in it is refused).
fn apply_url(doc: &mut Value, url: &str) -> Result<()> {
    let components = url_to_components(url)?;
    if components.get("password").is_some_and(|p| !p.is_null()) {
        return Err(Error::InvalidInput(
            "--url holds a password, and secrets are not taken from the command line \
             (other users see arguments, shells keep them); give the URL without it \
             and the password with --password-stdin, or answer the prompt"
                .into(),
        ));
    }
    if !matches!(get_path(doc, "connection_info"), Some(Value::Object(_))) {
        set_path(doc, "connection_info", Value::Object(Map::new()))?;
    }
    merge_objects(doc, serde_json::json!({ "connection_info": components }));
    Ok(())
}

/// `--set-secret-file PATH=FILE`: a secret field read from a file.
fn set_secret_file(ty: &BlockType, doc: &mut Value, item: &str) -> Result<()> {
    let (path, file) = split_assignment(item, "--set-secret-file")?;
    field_kind(ty, path)?;
    if !ty.is_secret_field(path) {
        return Err(Error::InvalidInput(format!(
            "{path} is not a secret field of type {}; use --set",
            ty.slug()
        )));
    }
    let text = crate::files::read_limited(Path::new(file))?;
    set_path(doc, path, Value::String(trim_newline(text)))
}

fn secret_in_arguments(path: &str) -> Error {
    Error::InvalidInput(format!(
        "{path} is a secret: secrets are not taken from the command line; use \
         --password-stdin, --set-secret-file {path}=FILE, or the prompt"
    ))
}

/// Refuses a value from the command line that would carry a secret anywhere inside it
/// (a secret field of an object, a URL's password or `?password=`, a `password` key).
fn refuse_secrets(ty: &BlockType, path: &str, value: &Value) -> Result<()> {
    match crate::document::secret_in(ty, path, value)? {
        Some(secret) => Err(secret_in_arguments(&secret)),
        None => Ok(()),
    }
}

fn primary_secret(ty: &BlockType) -> Result<&str> {
    ty.def.primary_secret.as_deref().ok_or_else(|| {
        Error::InvalidInput(format!(
            "type {} has no main secret for --password-stdin; use --set-secret-file PATH=FILE",
            ty.slug()
        ))
    })
}

/// Asks for the type's main secret on the terminal (no echo) when it is missing and
/// stdin is a terminal. Does nothing in scripts.
pub fn prompt_for_missing_secret(ty: &BlockType, name: &str, doc: &mut Value) -> Result<()> {
    let Some(path) = ty.def.primary_secret.as_deref() else {
        return Ok(());
    };
    if !get_path(doc, path).is_none_or(Value::is_null) || !std::io::stdin().is_terminal() {
        return Ok(());
    }
    // A URL-form connection carries its password inside the URL.
    if path.starts_with("connection_info.")
        && get_path(doc, "connection_info").is_some_and(Value::is_string)
    {
        return Ok(());
    }
    let secret = rpassword::prompt_password(format!(
        "{path} for {name} (input hidden, empty for none): "
    ))
    .map_err(|err| Error::io("reading the secret from the terminal", err))?;
    if !secret.is_empty() {
        set_path(doc, path, Value::String(secret))?;
    }
    Ok(())
}

/// A new block of a type with a main secret (a connection's password) is not created
/// without it by accident: refused unless `no_password` says so. A SQLite connection
/// has none, and a URL may carry its own.
pub fn check_secret_given(
    ty: &BlockType,
    name: &str,
    doc: &Value,
    no_password: bool,
) -> Result<()> {
    let Some(path) = ty.def.primary_secret.as_deref() else {
        return Ok(());
    };
    // A document that is wrong otherwise is refused for that first, when it is written.
    if no_password || !get_path(doc, path).is_none_or(Value::is_null) || ty.validate(doc).is_err() {
        return Ok(());
    }
    if path.starts_with("connection_info.") {
        match ConnectionInfo::from_document(name, doc) {
            Ok(info) if info.password.is_some() => return Ok(()),
            Ok(info) if info.driver().is_ok_and(|d| d.backend() == Backend::Sqlite) => {
                return Ok(());
            }
            Ok(_) => {}
            // What is wrong with the connection is for validation to say.
            Err(_) => return Ok(()),
        }
    }
    Err(Error::InvalidInput(format!(
        "block {name} would have no {path}: give it with --password-stdin (stdin is read only \
         then), --set-secret-file {path}=FILE or the prompt on a terminal, or pass \
         --no-password if it needs none"
    )))
}

/// Removes fields (`--unset`).
pub fn unset_fields(doc: &mut Value, paths: &[String]) -> Result<()> {
    for path in paths {
        if remove_path(doc, path).is_none() {
            return Err(Error::InvalidInput(format!(
                "--unset {path}: the block has no such field"
            )));
        }
    }
    Ok(())
}

fn field_kind(ty: &BlockType, path: &str) -> Result<FieldKind> {
    ty.field_kind(path).ok_or_else(|| {
        Error::InvalidBlockData(format!(
            "{path}: unknown field for type {}; `blockyard type inspect {}` lists the fields",
            ty.slug(),
            ty.slug()
        ))
    })
}

fn split_assignment<'a>(item: &'a str, flag: &str) -> Result<(&'a str, &'a str)> {
    item.split_once('=')
        .filter(|(path, _)| !path.is_empty())
        .ok_or_else(|| {
            Error::InvalidInput(format!(
                "{flag} takes PATH=VALUE, e.g. connection_info.port=5432"
            ))
        })
}

fn parse_value(path: &str, raw: &str, kind: FieldKind) -> Result<Value> {
    let bad = |what: &str| Error::InvalidBlockData(format!("{path}: expected {what}, got {raw:?}"));
    Ok(match kind {
        FieldKind::String => Value::String(raw.to_owned()),
        FieldKind::Integer => Value::from(
            raw.trim()
                .parse::<i64>()
                .map_err(|_| bad("a whole number"))?,
        ),
        FieldKind::Number => {
            let n: f64 = raw.trim().parse().map_err(|_| bad("a number"))?;
            serde_json::Number::from_f64(n)
                .map(Value::Number)
                .ok_or_else(|| bad("a finite number"))?
        }
        FieldKind::Boolean => match raw.trim() {
            "true" => Value::Bool(true),
            "false" => Value::Bool(false),
            _ => return Err(bad("true or false")),
        },
        FieldKind::Json => {
            serde_json::from_str(raw).unwrap_or_else(|_| Value::String(raw.to_owned()))
        }
    })
}

fn trim_newline(mut text: String) -> String {
    if text.ends_with('\n') {
        text.pop();
        if text.ends_with('\r') {
            text.pop();
        }
    }
    text
}

/// A whole block as `block inspect -o json` prints it (`id`, `name`, `block_type`,
/// `version`, `data`...): its type and its data. `--data` takes either that or the data.
fn block_body(value: &Value) -> Option<(&str, &Value)> {
    let has = |k: &str| value.get(k).is_some();
    if !(has("id") && has("name") && has("version")) {
        return None;
    }
    let data = value.get("data").filter(|d| d.is_object())?;
    Some((value.get("block_type")?.as_str()?, data))
}

impl DocumentArgs {
    /// Reads the `--data` document (a file, or stdin), once; the block type it names
    /// when it is a whole block as `inspect -o json` prints it.
    pub fn read_data(&mut self) -> Result<Option<String>> {
        let Some(path) = &self.data else {
            return Ok(None);
        };
        let (block_type, data) = read_json_document(path)?;
        self.loaded = Some(data);
        Ok(block_type)
    }
}

/// A document file's text: JSON, or YAML (a block as `inspect -o json` prints it, or
/// its data). Errors give only where the text went wrong, never what it says there (a
/// secret may be on that line).
fn parse_document(text: &str) -> Result<Value> {
    let json_err = match serde_json::from_str(text) {
        Ok(value) => return Ok(value),
        Err(err) => err,
    };
    serde_norway::from_str(text).map_err(|yaml_err| {
        let yaml_at = yaml_err.location().map_or_else(String::new, |at| {
            format!(", nor YAML (line {}, column {})", at.line(), at.column())
        });
        Error::InvalidBlockData(format!(
            "the document is not valid JSON (line {}, column {}){yaml_at}",
            json_err.line(),
            json_err.column()
        ))
    })
}

/// A `--data` document: the block type it names (a whole block) and its data.
fn read_json_document(path: &Path) -> Result<(Option<String>, Value)> {
    let text = if path == Path::new("-") {
        let mut text = String::new();
        std::io::stdin()
            .read_to_string(&mut text)
            .map_err(|err| Error::io("reading the document from stdin", err))?;
        text
    } else {
        std::fs::read_to_string(path)
            .map_err(|err| Error::io(format!("reading {}", path.display()), err))?
    };
    let value = parse_document(&text)?;
    let (block_type, value) = match block_body(&value) {
        Some((ty, data)) => (Some(ty.to_owned()), data.clone()),
        None => (None, value),
    };
    if !value.is_object() {
        return Err(Error::InvalidBlockData(
            "the document must be a JSON object".into(),
        ));
    }
    Ok((block_type, value))
}

/// Deep-merges `patch` into `doc` (objects merge, everything else replaces).
fn merge_objects(doc: &mut Value, patch: Value) {
    match (doc, patch) {
        (Value::Object(base), Value::Object(patch)) => {
            for (key, value) in patch {
                merge_objects(base.entry(key).or_insert(Value::Null), value);
            }
        }
        (slot, value) => *slot = value,
    }
}

/// Splits a connection URL into `connection_info` components. User name and password
/// are percent-decoded; query options become `query`.
pub fn url_to_components(raw: &str) -> Result<Value> {
    let mut info = ConnectionInfo::from_url("--url", raw)?;
    if info.driver == "postgres" {
        info.driver = "postgresql".into();
    }
    Ok(info.to_components())
}

/// Builds `connection_info` from `PREFIX_HOST`, `_PORT`, `_NAME`, `_USER` (or
/// `_ADMIN_USER`), `_PASSWORD` (or `_ADMIN_PASSWORD`) and `_DRIVER` (default
/// `postgresql`), from an env file if given, else from the process environment.
pub fn document_from_env(
    prefix: &str,
    env_file: Option<&Path>,
    process_env: &HashMap<String, String>,
) -> Result<Value> {
    let vars: HashMap<String, String> = match env_file {
        Some(path) => crate::config::read_env_file(path)?.into_iter().collect(),
        None => process_env.clone(),
    };
    let var = |suffix: &str| {
        vars.get(&format!("{prefix}_{suffix}"))
            .filter(|v| !v.is_empty())
            .cloned()
    };
    let source = env_file.map_or("the environment".to_owned(), |p| p.display().to_string());
    let name = var("NAME").ok_or_else(|| {
        Error::InvalidInput(format!(
            "{prefix}_NAME is not set in {source}; it names the database"
        ))
    })?;
    let mut info = Map::new();
    info.insert(
        "driver".into(),
        Value::String(var("DRIVER").unwrap_or_else(|| "postgresql".into())),
    );
    info.insert("database".into(), Value::String(name));
    if let Some(host) = var("HOST") {
        info.insert("host".into(), Value::String(host));
    }
    if let Some(port) = var("PORT") {
        let port: u16 = port.trim().parse().ok().filter(|p| *p > 0).ok_or_else(|| {
            Error::InvalidBlockData(format!(
                "{prefix}_PORT: expected a port number (1-65535), got {port:?}"
            ))
        })?;
        info.insert("port".into(), Value::from(port));
    }
    if let Some(user) = var("USER").or_else(|| var("ADMIN_USER")) {
        info.insert("username".into(), Value::String(user));
    }
    if let Some(password) = var("PASSWORD").or_else(|| var("ADMIN_PASSWORD")) {
        info.insert("password".into(), Value::String(password));
    }
    Ok(serde_json::json!({ "connection_info": info }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_components_decode_user_and_password() {
        let info = url_to_components(
            "postgres://us%3Aer:p%40ss%2Fw%C3%B6rd@db.example:5432/app?sslmode=require",
        )
        .unwrap();
        assert_eq!(info["driver"], "postgresql");
        assert_eq!(info["username"], "us:er");
        assert_eq!(info["password"], "p@ss/wörd");
        assert_eq!(info["port"], 5432);
        assert_eq!(info["query"]["sslmode"], "require");
        let info = url_to_components("cockroachdb+psycopg2://databot@[::1]:26257/sage").unwrap();
        assert_eq!(info["host"], "::1");
        // No host: libpq's default socket, as psql reads it.
        let info = url_to_components("postgres:///app").unwrap();
        assert_eq!(info.get("host"), None);
        assert!(url_to_components("postgres://h:0/app").is_err());
    }

    #[test]
    fn env_variables_become_components() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(".env");
        std::fs::write(
            &path,
            "SESAME_DATABASE_ADMIN_USER=\"postgres.mpodkwxxymffedxjmsqv\"\nSESAME_DATABASE_ADMIN_PASSWORD=\"pw\"\n\
             SESAME_DATABASE_NAME=\"postgres\"\nSESAME_DATABASE_HOST=\"aws-0-us-east-1.pooler.supabase.com\"\nSESAME_DATABASE_PORT=6543\n",
        )
        .unwrap();
        let doc = document_from_env("SESAME_DATABASE", Some(&path), &HashMap::new()).unwrap();
        assert_eq!(
            doc["connection_info"]["username"],
            "postgres.mpodkwxxymffedxjmsqv"
        );
        assert_eq!(doc["connection_info"]["port"], 6543);
        assert_eq!(doc["connection_info"]["password"], "pw");
    }
}
