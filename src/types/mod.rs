//! Block types: data files (`blocks/*.json`) that give each type its JSON Schema, its
//! secret field paths and its URL fields. Built-in types are embedded in the binary;
//! users register more, which the store keeps.

mod reference;
mod validate;

pub use reference::{
    BLOCKYARD_SCHEME, block_reference, blockyard_reference, blockyard_references, reference_to,
    references,
};
pub use validate::FieldKind;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::{Error, Result};
use crate::name::BlockName;

/// The built-in types, embedded from `blocks/`.
const BUILTIN_FILES: &[(&str, &str)] = &[
    (
        "sqlalchemy-connector.json",
        include_str!("../../blocks/sqlalchemy-connector.json"),
    ),
    (
        "async-sqlalchemy-connector.json",
        include_str!("../../blocks/async-sqlalchemy-connector.json"),
    ),
    ("secret.json", include_str!("../../blocks/secret.json")),
    ("json.json", include_str!("../../blocks/json.json")),
    (
        "http-service.json",
        include_str!("../../blocks/http-service.json"),
    ),
];

/// A block type definition, as written in a `blocks/*.json` file.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BlockTypeDef {
    /// Prefect-compatible slug, e.g. `sqlalchemy-connector`.
    pub slug: String,
    pub name: String,
    #[serde(default)]
    pub description: String,
    /// Dotted paths of fields stored only encrypted.
    #[serde(default)]
    pub secret_fields: Vec<String>,
    /// Dotted paths of fields that may hold a URL whose password is stored encrypted.
    #[serde(default)]
    pub url_fields: Vec<String>,
    /// Dotted paths of fields that say where the block connects, besides those named
    /// like it (host, port, url, driver, database, username...): changing one while
    /// keeping a stored secret needs the right to read that secret.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub destination_fields: Vec<String>,
    /// The secret that `--password-stdin` and the prompt fill in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub primary_secret: Option<String>,
    /// JSON Schema of the block's data.
    pub schema: Value,
    /// For HTTP services: how `block test` calls the service and sends its API key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http: Option<HttpSpec>,
}

/// How a block of an HTTP service type is reached; a block's own `api_key_header` and
/// `health_path` fields override these.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpSpec {
    /// The header that carries the API key, e.g. `Authorization` or `api-key`.
    pub api_key_header: String,
    /// Text before the key in that header, e.g. `"ApiKey "` or `"Bearer "`.
    #[serde(default)]
    pub api_key_prefix: String,
    /// A path `block test` requests under the block's URL (default: the URL itself).
    #[serde(default)]
    pub health_path: Option<String>,
}

/// A loaded block type: its definition and compiled schema (shared by clones: a
/// schema is compiled once per load, not once per use).
#[derive(Clone)]
pub struct BlockType {
    pub def: BlockTypeDef,
    pub builtin: bool,
    validator: std::sync::Arc<jsonschema::Validator>,
}

impl std::fmt::Debug for BlockType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "BlockType({})", self.def.slug)
    }
}

impl BlockType {
    /// Parses and checks a type definition file's text.
    pub fn from_json(text: &str, builtin: bool) -> Result<Self> {
        let def: BlockTypeDef = serde_json::from_str(text).map_err(|err| {
            Error::InvalidBlockType(format!("not a block type definition: {err}"))
        })?;
        Self::from_def(def, builtin)
    }

    pub fn from_def(def: BlockTypeDef, builtin: bool) -> Result<Self> {
        BlockName::parse(&def.slug)
            .map_err(|err| Error::InvalidBlockType(format!("slug: {err}")))?;
        if def.schema.get("type").and_then(Value::as_str) != Some("object") {
            return Err(Error::InvalidBlockType(
                "schema: the top level must be {\"type\": \"object\", ...}".into(),
            ));
        }
        let validator = jsonschema::validator_for(&def.schema)
            .map_err(|err| Error::InvalidBlockType(format!("schema: {}", err.masked())))?;
        let ty = BlockType {
            def,
            builtin,
            validator: std::sync::Arc::new(validator),
        };
        for path in ty
            .def
            .secret_fields
            .iter()
            .chain(&ty.def.url_fields)
            .chain(&ty.def.primary_secret)
        {
            if path.contains('#') {
                return Err(Error::InvalidBlockType(format!(
                    "{path:?}: a secret or URL field's path may not contain '#'"
                )));
            }
            if ty.field_kind(path).is_none() {
                return Err(Error::InvalidBlockType(format!(
                    "{path:?} is listed as a secret or URL field but the schema has no such field"
                )));
            }
        }
        if let Some(primary) = &ty.def.primary_secret
            && !ty.def.secret_fields.contains(primary)
        {
            return Err(Error::InvalidBlockType(format!(
                "primary_secret {primary:?} must also be in secret_fields"
            )));
        }
        Ok(ty)
    }

    pub fn slug(&self) -> &str {
        &self.def.slug
    }

    pub fn is_secret_field(&self, path: &str) -> bool {
        self.def.secret_fields.iter().any(|p| p == path)
    }

    /// What a dotted field path may hold according to the schema, or `None` if the
    /// schema has no such field.
    pub fn field_kind(&self, path: &str) -> Option<FieldKind> {
        validate::field_kind(&self.def.schema, path)
    }

    /// Checks a complete document (secrets included) against the schema. The error
    /// names every failing field and never includes a value.
    pub fn validate(&self, doc: &Value) -> Result<()> {
        validate::validate(&self.validator, doc)?;
        if self.def.http.is_some() {
            check_health_path(doc)?;
        }
        Ok(())
    }
}

/// An HTTP service block's `health_path` is a path under its URL, never a URL or a
/// host of its own (the API key goes where `block test` requests).
fn check_health_path(doc: &Value) -> Result<()> {
    let Some(path) = doc.get("health_path").and_then(Value::as_str) else {
        return Ok(());
    };
    let base = url::Url::parse("http://service.invalid/base/").expect("a valid URL");
    let a_path = path.starts_with('/') && !path.starts_with("//") && !path.contains('\\');
    match a_path && path_under(&base, path).is_some() {
        true => Ok(()),
        false => Err(Error::InvalidBlockData(
            "health_path: must be a path under url, such as /_cluster/health (not a URL, \
             a host or a path above url's)"
                .into(),
        )),
    }
}

/// `path` (read as relative, whatever it starts with) under `base`: `None` if the
/// result would leave `base`'s origin or path.
pub fn path_under(base: &url::Url, path: &str) -> Option<url::Url> {
    let mut base = base.clone();
    if !base.path().ends_with('/') {
        base.set_path(&format!("{}/", base.path()));
    }
    let joined = base
        .join(&format!("./{}", path.trim_start_matches('/')))
        .ok()?;
    (joined.origin() == base.origin() && joined.path().starts_with(base.path())).then_some(joined)
}

/// Loads the built-in types.
pub fn builtin_types() -> Vec<BlockType> {
    BUILTIN_FILES
        .iter()
        .filter_map(|(file, _)| file.strip_suffix(".json").and_then(builtin_type))
        .collect()
}

/// The built-in type with this slug, if any: each file is named after its slug (a test
/// checks it). Each built-in schema is compiled the first time it is asked for, then
/// shared (compiling one costs far more than a lookup, and every create, update and
/// import asks): they are constants of the build, not configuration.
pub fn builtin_type(slug: &str) -> Option<BlockType> {
    static COMPILED: [std::sync::OnceLock<BlockType>; BUILTIN_FILES.len()] =
        [const { std::sync::OnceLock::new() }; BUILTIN_FILES.len()];
    let index = BUILTIN_FILES
        .iter()
        .position(|(file, _)| file.strip_suffix(".json") == Some(slug))?;
    Some(
        COMPILED[index]
            .get_or_init(|| load_builtin(&BUILTIN_FILES[index]))
            .clone(),
    )
}

/// A built-in type from its file. A file with `same_as` is that type's file with its own
/// keys (slug, name, description) over it: one schema for Prefect's sync and async
/// connectors.
fn load_builtin((file, text): &(&str, &str)) -> BlockType {
    let invalid = |err: &dyn std::fmt::Display| -> ! {
        panic!("built-in block type {file} is invalid: {err}")
    };
    let mut own: serde_json::Map<String, serde_json::Value> =
        serde_json::from_str(text).unwrap_or_else(|err| invalid(&err));
    let text = match own.remove("same_as") {
        Some(serde_json::Value::String(base)) => {
            let (_, base_text) = BUILTIN_FILES
                .iter()
                .find(|(f, _)| f.strip_suffix(".json") == Some(base.as_str()))
                .unwrap_or_else(|| invalid(&format!("same_as {base:?} is no built-in")));
            let mut merged: serde_json::Value =
                serde_json::from_str(base_text).unwrap_or_else(|err| invalid(&err));
            if let Some(merged) = merged.as_object_mut() {
                merged.extend(own);
            }
            merged.to_string()
        }
        _ => text.to_string(),
    };
    BlockType::from_json(&text, true).unwrap_or_else(|err| invalid(&err))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn every_file_in_blocks_is_embedded_and_loads() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/blocks");
        let mut on_disk: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        on_disk.sort();
        let mut embedded: Vec<String> = BUILTIN_FILES.iter().map(|(f, _)| f.to_string()).collect();
        embedded.sort();
        assert_eq!(on_disk, embedded);
        for ty in builtin_types() {
            assert!(
                BUILTIN_FILES
                    .iter()
                    .any(|(f, _)| *f == format!("{}.json", ty.slug()))
            );
        }
    }

    #[test]
    fn validation_names_the_field() {
        let ty = builtin_type("sqlalchemy-connector").unwrap();
        let doc = json!({"connection_info": {"driver": "postgresql", "database": "x", "port": 70000, "password": "PLANTED"}});
        let msg = ty.validate(&doc).unwrap_err().to_string();
        assert!(msg.contains("connection_info.port"), "{msg}");
        assert!(!msg.contains("PLANTED"), "{msg}");
        let doc = json!({"connection_info": {"driver": "postgresql", "database": "x", "prot": 1}});
        let msg = ty.validate(&doc).unwrap_err().to_string();
        assert!(msg.contains("connection_info.prot"), "{msg}");
        let msg = ty
            .validate(&json!({"connection_info": {"driver": "postgresql"}}))
            .unwrap_err()
            .to_string();
        assert!(msg.contains("connection_info.database"), "{msg}");
        assert!(
            ty.validate(&json!({"connection_info": "postgresql://u@h/db"}))
                .is_ok()
        );
    }

    #[test]
    fn field_kinds_follow_the_schema() {
        let ty = builtin_type("sqlalchemy-connector").unwrap();
        assert_eq!(
            ty.field_kind("connection_info.port"),
            Some(FieldKind::Integer)
        );
        assert_eq!(
            ty.field_kind("connection_info.host"),
            Some(FieldKind::String)
        );
        assert_eq!(ty.field_kind("connection_info.nope"), None);
        assert_eq!(ty.field_kind("fetch_size"), Some(FieldKind::Integer));
    }

    #[test]
    fn bad_definitions_are_refused() {
        let err = BlockType::from_json(
            r#"{"slug":"Bad Slug","name":"x","schema":{"type":"object"}}"#,
            false,
        )
        .unwrap_err();
        assert_eq!(err.code(), "INVALID_BLOCK_TYPE");
        let err = BlockType::from_json(
            r#"{"slug":"x","name":"x","secret_fields":["nope"],"schema":{"type":"object","properties":{},"additionalProperties":false}}"#,
            false,
        )
        .unwrap_err();
        assert!(err.to_string().contains("nope"));
    }
}
