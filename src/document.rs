//! Block documents: dotted-path access, and splitting a document into its masked part
//! (stored as JSON, with `********` where each secret was) and the secrets (stored only
//! sealed). The stored JSON is therefore exactly what a masked listing shows.

use std::collections::BTreeMap;
use std::fmt;

use serde_json::{Map, Value};

use crate::dsn::Dsn;
use crate::error::{Error, Result};
use crate::types::BlockType;

/// What every masked secret is shown as.
pub const MASK: &str = "********";

/// Suffix of a secrets-map key holding the password found in a URL field.
const URL_PASSWORD: &str = "#url-password";

/// Infix of a secrets-map key holding a URL field's query parameter that carries a
/// password (`PATH#url-query:password`).
const URL_QUERY: &str = "#url-query:";

/// Names under which drivers read the login password besides a type's declared secret
/// fields: a URL's query parameter (`?password=`, which libpq and SQLAlchemy accept) or
/// a key in an object such as `connection_info.query` or `connect_args`. These and
/// `sslpassword` (a client key's passphrase) are secrets wherever they appear: masked
/// and sealed; a login password is also scrubbed from driver messages.
pub const LOGIN_PASSWORD_KEYS: &[&str] = &["password", "passwd", "pwd"];

/// The secret values of one block, keyed by dotted field path. `Debug` shows only the
/// paths.
#[derive(Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(transparent)]
pub struct Secrets(BTreeMap<String, Value>);

impl fmt::Debug for Secrets {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map()
            .entries(self.0.keys().map(|k| (k, MASK)))
            .finish()
    }
}

/// Opened secrets can stay in memory a while (a server keeps recent reads), so their
/// strings are wiped when dropped.
impl Drop for Secrets {
    fn drop(&mut self) {
        fn wipe(value: &mut Value) {
            match value {
                Value::String(text) => zeroize::Zeroize::zeroize(text),
                Value::Array(items) => items.iter_mut().for_each(wipe),
                Value::Object(fields) => fields.values_mut().for_each(wipe),
                _ => {}
            }
        }
        self.0.values_mut().for_each(wipe);
    }
}

impl Secrets {
    /// Holds `value` at `path` (a reference resolved when the block was read).
    pub fn insert(&mut self, path: &str, value: Value) {
        self.0.insert(path.to_owned(), value);
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The paths that hold secrets (URL passwords show as the URL field's path).
    pub fn paths(&self) -> impl Iterator<Item = &str> {
        self.0.keys().map(|k| field_of(k))
    }

    /// Each secret's field path (as [`Secrets::paths`]) and value.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &Value)> {
        self.0.iter().map(|(k, v)| (field_of(k), v))
    }

    /// Whether any secret is still the mask (a masked document sent without it).
    pub fn holds_mask(&self) -> bool {
        self.0.values().any(|v| v.as_str() == Some(MASK))
    }

    /// Whether a secret at this path is already known.
    pub fn contains(&self, path: &str) -> bool {
        self.0.contains_key(path)
    }
}

/// One field that differs between two versions of a block, as `block diff` and
/// `block history` show it: values of non-secret fields, only "changed" for secrets.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct FieldChange {
    pub path: String,
    /// The earlier value (absent when the field was added; `null` for a secret).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub before: Option<Value>,
    /// The later value (absent when the field was removed; `null` for a secret).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after: Option<Value>,
    #[serde(default)]
    pub secret: bool,
}

/// The fields that differ between two masked documents and their secrets. Secret
/// values are compared but never returned; without secrets (a remote history) only
/// the masked documents are compared.
pub fn changes(
    before: &Value,
    before_secrets: Option<&Secrets>,
    after: &Value,
    after_secrets: Option<&Secrets>,
) -> Vec<FieldChange> {
    let (a, b) = (leaves(before), leaves(after));
    let mut out: BTreeMap<String, FieldChange> = BTreeMap::new();
    for path in a.keys().chain(b.keys()) {
        let (x, y) = (a.get(path), b.get(path));
        if x != y {
            let masked = |v: Option<&Value>| v.filter(|v| v.as_str() != Some(MASK)).cloned();
            let secret = x.or(y).and_then(Value::as_str) == Some(MASK);
            out.insert(
                path.clone(),
                FieldChange {
                    path: path.clone(),
                    before: masked(x),
                    after: masked(y),
                    secret,
                },
            );
        }
    }
    if let (Some(sa), Some(sb)) = (before_secrets, after_secrets) {
        for key in sa.0.keys().chain(sb.0.keys()) {
            if sa.0.get(key) != sb.0.get(key) {
                let path = field_of(key).to_owned();
                out.entry(path.clone()).or_insert(FieldChange {
                    path,
                    before: sa.0.contains_key(key).then_some(Value::Null),
                    after: sb.0.contains_key(key).then_some(Value::Null),
                    secret: true,
                });
            }
        }
    }
    out.into_values().collect()
}

/// Every leaf of a document by dotted path (arrays are leaves).
pub fn leaves(doc: &Value) -> BTreeMap<String, Value> {
    fn walk(prefix: &str, node: &Value, out: &mut BTreeMap<String, Value>) {
        match node {
            Value::Object(map) if !map.is_empty() => {
                for (k, v) in map {
                    let path = if prefix.is_empty() {
                        k.clone()
                    } else {
                        format!("{prefix}.{k}")
                    };
                    walk(&path, v, out);
                }
            }
            other => {
                out.insert(prefix.to_owned(), other.clone());
            }
        }
    }
    let mut out = BTreeMap::new();
    walk("", doc, &mut out);
    out
}

/// Whether the value at a dotted path of a masked document holds a secret: the value
/// itself, or the string (a URL) the path runs into (`connection_info.password` of a
/// connection given as a URL). A path that leads nowhere holds none.
pub fn path_holds_mask(doc: &Value, path: &str) -> bool {
    let mut node = doc;
    for seg in path.split('.') {
        match node.get(seg) {
            Some(next) => node = next,
            None if node.is_string() => break,
            None => return false,
        }
    }
    node.to_string().contains(MASK)
}

/// Reads the value at a dotted path.
pub fn get_path<'a>(doc: &'a Value, path: &str) -> Option<&'a Value> {
    path.split('.').try_fold(doc, |node, seg| node.get(seg))
}

/// Sets the value at a dotted path, creating objects on the way. Fails if a step on
/// the way is not an object (e.g. setting `connection_info.port` when
/// `connection_info` is a URL string).
pub fn set_path(doc: &mut Value, path: &str, value: Value) -> Result<()> {
    let mut node = doc;
    let mut segments = path.split('.').peekable();
    while let Some(seg) = segments.next() {
        if node.is_null() {
            *node = Value::Object(Map::new());
        }
        let Value::Object(map) = node else {
            return Err(Error::InvalidInput(format!(
                "cannot set {path}: the field above {seg:?} is not an object"
            )));
        };
        if segments.peek().is_none() {
            map.insert(seg.to_owned(), value);
            return Ok(());
        }
        node = map.entry(seg.to_owned()).or_insert(Value::Null);
    }
    Ok(())
}

/// Removes and returns the value at a dotted path.
pub fn remove_path(doc: &mut Value, path: &str) -> Option<Value> {
    let (parent, last) = match path.rsplit_once('.') {
        Some((parent, last)) => (path_mut(doc, parent)?, last),
        None => (doc, path),
    };
    parent.as_object_mut()?.remove(last)
}

fn path_mut<'a>(doc: &'a mut Value, path: &str) -> Option<&'a mut Value> {
    path.split('.').try_fold(doc, |node, seg| node.get_mut(seg))
}

/// What a secrets-map key names: a document field, a URL field's password, or one of
/// a URL field's query parameters. A document's own field names may contain the
/// markers, so a key is read as a URL secret only when what follows the marker could
/// have been written by [`split_secrets`] (a password parameter name, no further path).
enum SecretKey<'a> {
    Field(&'a str),
    UrlPassword(&'a str),
    UrlQuery(&'a str, &'a str),
}

impl<'a> SecretKey<'a> {
    fn parse(key: &'a str) -> Self {
        if let Some((path, param)) = key.rsplit_once(URL_QUERY)
            && is_password_key(param)
        {
            return SecretKey::UrlQuery(path, param);
        }
        match key.strip_suffix(URL_PASSWORD) {
            Some(path) => SecretKey::UrlPassword(path),
            None => SecretKey::Field(key),
        }
    }

    /// The field the secret belongs to.
    fn field(&self) -> &'a str {
        match *self {
            SecretKey::Field(path)
            | SecretKey::UrlPassword(path)
            | SecretKey::UrlQuery(path, _) => path,
        }
    }
}

/// The field a secrets-map key belongs to.
fn field_of(key: &str) -> &str {
    SecretKey::parse(key).field()
}

fn is_password_key(name: &str) -> bool {
    LOGIN_PASSWORD_KEYS
        .iter()
        .chain(&["sslpassword"])
        .any(|k| k.eq_ignore_ascii_case(name))
}

/// Splits a full document into its masked form and its secrets: the type's
/// `secret_fields`, the password of each of its `url_fields` and every password
/// query parameter ([`LOGIN_PASSWORD_KEYS`], `sslpassword`) of those URLs, and every field named like a
/// password anywhere in the document. Null and absent secret fields stay as they are.
pub fn split_secrets(ty: &BlockType, mut doc: Value) -> Result<(Value, Secrets)> {
    let mut secrets = BTreeMap::new();
    let mut paths: Vec<String> = ty.def.secret_fields.clone();
    paths.extend(
        leaves(&doc)
            .into_iter()
            .filter(|(path, value)| {
                !value.is_null() && path.rsplit('.').next().is_some_and(is_password_key)
            })
            .map(|(path, _)| path)
            .filter(|path| !ty.def.secret_fields.contains(path)),
    );
    for path in &paths {
        match get_path(&doc, path) {
            None | Some(Value::Null) => {}
            // A reference to another block's secret is no secret: it is resolved when
            // the block is read.
            Some(value) if crate::types::blockyard_reference(value).is_some() => {}
            Some(value) => {
                secrets.insert(path.clone(), value.clone());
                set_path(&mut doc, path, Value::String(MASK.into()))?;
            }
        }
    }
    for path in &ty.def.url_fields {
        let Some(Value::String(text)) = get_path(&doc, path) else {
            continue;
        };
        let masked = match Dsn::is_connection_url(text) {
            true => split_dsn_secrets(path, text, &mut secrets)?,
            false => split_http_secrets(path, text, &mut secrets)?,
        };
        if let Some(masked) = masked {
            set_path(&mut doc, path, Value::String(masked))?;
        }
    }
    Ok((doc, Secrets(secrets)))
}

/// A connection URL's password and password query options, taken out where its own
/// client reads them ([`Dsn`]); every other byte of the URL stays as written. Refused
/// when the URL does not read, so a URL is checked when written.
fn split_dsn_secrets(
    path: &str,
    text: &str,
    secrets: &mut BTreeMap<String, Value>,
) -> Result<Option<String>> {
    let bad = |why: String| Error::InvalidBlockData(format!("{path}: {why}"));
    let dsn = Dsn::parse(text).map_err(bad)?;
    dsn.check().map_err(bad)?;
    let mut masks = Vec::new();
    if let Some(span) = dsn.password_span() {
        let raw = text[span.clone()].to_owned();
        secrets.insert(format!("{path}{URL_PASSWORD}"), Value::String(raw));
        masks.push(span);
    }
    for (key, value, span) in dsn.query_spans().map_err(bad)? {
        if is_password_key(&key) {
            secrets.insert(format!("{path}{URL_QUERY}{key}"), Value::String(value));
            masks.push(span);
        }
    }
    Ok((!masks.is_empty()).then(|| splice(text, masks, |_| MASK.to_owned())))
}

/// An HTTP URL's password and password query options, read by WHATWG's grammar.
fn split_http_secrets(
    path: &str,
    text: &str,
    secrets: &mut BTreeMap<String, Value>,
) -> Result<Option<String>> {
    let mut url = parse_url_field(path, text)?;
    let mut changed = false;
    if let Some(password) = url.password().map(str::to_owned) {
        let _ = url.set_password(Some(MASK));
        secrets.insert(format!("{path}{URL_PASSWORD}"), Value::String(password));
        changed = true;
    }
    changed |= rewrite_query(&mut url, |key, value| {
        if !is_password_key(key) {
            return None;
        }
        secrets.insert(
            format!("{path}{URL_QUERY}{key}"),
            Value::String(value.into()),
        );
        Some(MASK.to_owned())
    });
    Ok(changed.then(|| url.into()))
}

/// `text` with each range replaced by `new(old text)`.
fn splice(
    text: &str,
    mut spans: Vec<std::ops::Range<usize>>,
    new: impl Fn(&str) -> String,
) -> String {
    spans.sort_by_key(|s| std::cmp::Reverse(s.start));
    let mut out = text.to_owned();
    for span in spans {
        let replacement = new(&out[span.clone()]);
        out.replace_range(span, &replacement);
    }
    out
}

/// The first secret that `value`, put at `path` in a document of this type, would
/// carry (for refusing secrets given on a command line).
pub fn secret_in(ty: &BlockType, path: &str, value: &Value) -> Result<Option<String>> {
    let mut scratch = Value::Object(Map::new());
    set_path(&mut scratch, path, value.clone())?;
    let (_, secrets) = split_secrets(ty, scratch)?;
    Ok(secrets.paths().next().map(str::to_owned))
}

/// Puts secrets back into a masked document: the full plaintext document.
pub fn merge_secrets(doc: &mut Value, secrets: &Secrets) {
    put_secrets(doc, secrets, false);
}

/// Where a document sent back by a client still holds `********` at a secret (or as a
/// URL's password), puts the stored secret back, so a masked document can be edited and
/// returned without knowing the secrets. Returns how many stored secrets it kept.
pub fn restore_masked(doc: &mut Value, stored: &Secrets) -> usize {
    put_secrets(doc, stored, true)
}

/// Field names that say where a connection goes (and so where its secrets are sent).
const DESTINATION_KEYS: &[&str] = &[
    "host",
    "hostname",
    "hostaddr",
    "port",
    "url",
    "uri",
    "dsn",
    "driver",
    "drivername",
    "database",
    "dbname",
    "db",
    "username",
    "user",
    "query",
    "service",
    "socket",
    "unix_socket",
    "path",
    "server",
    "endpoint",
    "base_url",
    "account",
    "connect_args",
];

/// The fields that differ between a block's masked document and one sent back for it
/// and that say where the block connects: a field named like a destination (host,
/// port, driver, database, username, query...) or anything under one, a URL field, or
/// a field the type marks in `destination_fields`. Keeping a stored secret while any of
/// these change would send that secret somewhere new.
pub fn moved_destinations(ty: &BlockType, before: &Value, after: &Value) -> Vec<String> {
    let (a, b) = (leaves(before), leaves(after));
    let under = |path: &str, field: &str| {
        path == field
            || path.starts_with(&format!("{field}."))
            || field.starts_with(&format!("{path}."))
    };
    let mut moved: Vec<String> = a
        .keys()
        .chain(b.keys())
        .filter(|path| a.get(*path) != b.get(*path))
        .filter(|path| {
            path.split('.').any(|seg| DESTINATION_KEYS.contains(&seg))
                || ty.def.url_fields.iter().any(|f| under(path, f))
                || ty.def.destination_fields.iter().any(|f| under(path, f))
        })
        .cloned()
        .collect();
    moved.sort();
    moved.dedup();
    moved
}

/// Writes each secret to its place; with `only_masked`, only where `********` stands.
/// Returns how many it wrote.
fn put_secrets(doc: &mut Value, secrets: &Secrets, only_masked: bool) -> usize {
    let mut written = 0;
    for (key, value) in &secrets.0 {
        let put = match SecretKey::parse(key) {
            SecretKey::UrlQuery(path, param) => {
                put_query_secret(doc, path, param, value, only_masked)
            }
            SecretKey::UrlPassword(path) => put_url_password(doc, path, value, only_masked),
            SecretKey::Field(path) => {
                (!only_masked || get_path(doc, path).and_then(Value::as_str) == Some(MASK))
                    && set_path(doc, path, value.clone()).is_ok()
            }
        };
        written += usize::from(put);
    }
    written
}

/// Puts a URL's password back into the URL at `path` (with `only_masked`, only where
/// it reads `********`). Whether it did.
fn put_url_password(doc: &mut Value, path: &str, value: &Value, only_masked: bool) -> bool {
    let (Some(Value::String(text)), Some(pw)) = (get_path(doc, path), value.as_str()) else {
        return false;
    };
    if Dsn::is_connection_url(text) {
        let Some(span) = Dsn::parse(text).ok().and_then(|d| d.password_span()) else {
            return false;
        };
        let written = splice(text, vec![span.clone()], |_| pw.to_owned());
        return (!only_masked || text[span] == *MASK)
            && set_path(doc, path, Value::String(written)).is_ok();
    }
    let Ok(mut url) = url::Url::parse(text) else {
        return false;
    };
    (!only_masked || url.password() == Some(MASK))
        && url.set_password(Some(pw)).is_ok()
        && set_path(doc, path, Value::String(url.into())).is_ok()
}

/// Puts a secret query parameter back into the URL at `path` (with `only_masked`,
/// only where it reads `********`). Whether it did.
fn put_query_secret(
    doc: &mut Value,
    path: &str,
    param: &str,
    value: &Value,
    only_masked: bool,
) -> bool {
    let (Some(Value::String(text)), Some(secret)) = (get_path(doc, path), value.as_str()) else {
        return false;
    };
    if Dsn::is_connection_url(text) {
        let Ok(spans) = Dsn::parse(text).and_then(|d| d.query_spans()) else {
            return false;
        };
        let spans: Vec<_> = spans
            .into_iter()
            .filter(|(key, old, _)| key == param && (!only_masked || old == MASK))
            .map(|(_, _, span)| span)
            .collect();
        let encoded = percent_encoding::utf8_percent_encode(secret, QUERY_VALUE).to_string();
        return !spans.is_empty()
            && set_path(
                doc,
                path,
                Value::String(splice(text, spans, |_| encoded.clone())),
            )
            .is_ok();
    }
    let Ok(mut url) = url::Url::parse(text) else {
        return false;
    };
    let written = rewrite_query(&mut url, |key, value| {
        (key == param && (!only_masked || value == MASK)).then(|| secret.to_owned())
    });
    written && set_path(doc, path, Value::String(url.into())).is_ok()
}

/// What a rewritten query value keeps as is: unreserved characters and `*` (so a
/// masked value reads `********`).
const QUERY_VALUE: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~')
    .remove(b'*');

/// Replaces the values of a URL's query parameters for which `new(key, value)` (both
/// percent-decoded) gives a new value, leaving every other byte of the query as it
/// was (libpq reads `+` as itself, so nothing is re-encoded). Whether any changed.
fn rewrite_query(url: &mut url::Url, mut new: impl FnMut(&str, &str) -> Option<String>) -> bool {
    let Some(query) = url.query() else {
        return false;
    };
    let decode = |s: &str| {
        percent_encoding::percent_decode_str(s)
            .decode_utf8_lossy()
            .into_owned()
    };
    let mut changed = false;
    let pairs: Vec<String> = query
        .split('&')
        .map(|pair| {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            match new(&decode(key), &decode(value)) {
                Some(value) => {
                    changed = true;
                    let value = percent_encoding::utf8_percent_encode(&value, QUERY_VALUE);
                    format!("{key}={value}")
                }
                None => pair.to_owned(),
            }
        })
        .collect();
    if changed {
        url.set_query(Some(&pairs.join("&")));
    }
    changed
}

/// Why a URL does not parse, and how to fix it when it is the usual cause: a password
/// with `/`, `@`, `:`, `#` or `?` written as is cuts the URL in the wrong place
/// ("invalid port number"). Never quotes the URL, which may hold a password.
pub fn url_error(text: &str, err: &url::ParseError) -> String {
    let hint = if text.contains('@') {
        "; if the password holds / @ : # ? or %, percent-encode them (%2F %40 %3A %23 %3F \
         %25), or leave the password out of the URL and give it with --password-stdin"
    } else {
        ""
    };
    format!("not a valid URL ({err}){hint}")
}

/// Parses a URL field's value. The error names the field, never the URL (which may
/// hold a password).
pub fn parse_url_field(path: &str, text: &str) -> Result<url::Url> {
    let url = url::Url::parse(text)
        .map_err(|err| Error::InvalidBlockData(format!("{path}: {}", url_error(text, &err))))?;
    let needs_host = !url.scheme().starts_with("sqlite") && !url.scheme().starts_with("file");
    if needs_host && url.host_str().is_none_or(str::is_empty) {
        return Err(Error::InvalidBlockData(format!(
            "{path}: the URL has no host"
        )));
    }
    Ok(url)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::builtin_type;
    use serde_json::json;

    #[test]
    fn components_password_is_split_merged_and_masked() {
        let ty = builtin_type("sqlalchemy-connector").unwrap();
        let full = json!({"connection_info": {"driver": "postgresql", "database": "d", "password": "PLANTED"}});
        let (masked, secrets) = split_secrets(&ty, full.clone()).unwrap();
        assert!(!masked.to_string().contains("PLANTED"));
        assert!(!format!("{secrets:?}").contains("PLANTED"));
        assert_eq!(masked["connection_info"]["password"], MASK);
        let mut merged = masked;
        merge_secrets(&mut merged, &secrets);
        assert_eq!(merged, full);
    }

    /// Found by the `document` fuzz target: a field whose own name holds the marker of
    /// a URL query secret (`#url-query:`) was taken for one, so its nested password was
    /// reported under, and put back into, a field that does not exist.
    #[test]
    fn field_names_holding_the_url_markers_stay_plain_fields() {
        let ty = builtin_type("json").unwrap();
        for name in ["a#url-query:b", "a#url-query:password", "a#url-password"] {
            let full = json!({ name: {"password": "PLANTED", "inner": {"pwd": "PLANTED2"}} });
            let (masked, secrets) = split_secrets(&ty, full.clone()).unwrap();
            assert!(!masked.to_string().contains("PLANTED"), "{name}: {masked}");
            for path in secrets.paths() {
                assert_eq!(
                    get_path(&masked, path).and_then(Value::as_str),
                    Some(MASK),
                    "{name}: {path}"
                );
            }
            let mut merged = masked;
            merge_secrets(&mut merged, &secrets);
            assert_eq!(merged, full, "{name}");
        }
    }

    #[test]
    fn url_password_is_split_merged_and_masked() {
        let ty = builtin_type("sqlalchemy-connector").unwrap();
        let full =
            json!({"connection_info": "postgresql+psycopg2://u:p%40PLANTED@db.example:5432/app"});
        let (masked, secrets) = split_secrets(&ty, full.clone()).unwrap();
        assert_eq!(
            masked["connection_info"],
            "postgresql+psycopg2://u:********@db.example:5432/app"
        );
        let mut merged = masked;
        merge_secrets(&mut merged, &secrets);
        assert_eq!(merged, full);
    }

    #[test]
    fn connection_urls_are_read_as_their_clients_read_them() {
        let ty = builtin_type("sqlalchemy-connector").unwrap();
        // No host is libpq's default socket; a port out of range is refused when written.
        assert!(split_secrets(&ty, json!({"connection_info": "postgresql:///db"})).is_ok());
        let err = split_secrets(
            &ty,
            json!({"connection_info": "postgresql://u:PLANTED@h:0/d"}),
        )
        .unwrap_err();
        assert!(err.to_string().contains("port") && !err.to_string().contains("PLANTED"));
        // libpq's password ends at the first @; every other byte stays as written.
        for url in [
            "postgresql://u:p@ss@hôst.example/db#frag?application_name=a+b&password=q%26r",
            "mysql+pymysql://u:p%40ss@h/db?unix_socket=/tmp/m.sock&passwd=x",
        ] {
            let full = json!({"connection_info": url});
            let (masked, secrets) = split_secrets(&ty, full.clone()).unwrap();
            let text = masked["connection_info"].as_str().unwrap();
            assert!(!text.contains("p@ss@") && !text.contains("q%26r"), "{text}");
            let mut merged = masked.clone();
            merge_secrets(&mut merged, &secrets);
            assert_eq!(merged, full);
        }
    }

    #[test]
    fn set_path_refuses_to_descend_into_a_string() {
        let mut doc = json!({"connection_info": "postgresql://h/db"});
        assert!(set_path(&mut doc, "connection_info.port", json!(1)).is_err());
        let mut doc = json!({});
        set_path(&mut doc, "a.b.c", json!(1)).unwrap();
        assert_eq!(doc, json!({"a": {"b": {"c": 1}}}));
        assert_eq!(remove_path(&mut doc, "a.b.c"), Some(json!(1)));
    }
}
