//! Schema checks with messages that name fields and never quote values, and the
//! schema walk that tells what a dotted field path may hold.

use jsonschema::error::ValidationErrorKind;
use jsonschema::{ValidationError, Validator};
use serde_json::Value;

use crate::error::{Error, Result};

/// What a field may hold, as far as `--set` needs to know to parse a value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FieldKind {
    String,
    Integer,
    Number,
    Boolean,
    /// Objects, arrays or anything else: given as JSON.
    Json,
}

pub(super) fn validate(validator: &Validator, doc: &Value) -> Result<()> {
    let refs = super::blockyard_references(doc);
    if refs.is_empty() {
        return validate_as_is(validator, doc);
    }
    // A field that refers to another block's field holds that field's value when read:
    // the document is valid if it is with a string, a number or null there (the
    // referenced block is checked by its own type).
    let with = |stand_in: &Value| {
        let mut doc = doc.clone();
        for (field, _, _) in &refs {
            let pointer: String = field
                .split('.')
                .map(|k| format!("/{}", k.replace('~', "~0").replace('/', "~1")))
                .collect();
            if let Some(slot) = doc.pointer_mut(&pointer) {
                *slot = stand_in.clone();
            }
        }
        validate_as_is(validator, &doc)
    };
    let first = with(&Value::String(String::new()));
    match first.is_ok()
        || [serde_json::json!(0), Value::Null]
            .iter()
            .any(|v| with(v).is_ok())
    {
        true => Ok(()),
        false => first,
    }
}

fn validate_as_is(validator: &Validator, doc: &Value) -> Result<()> {
    let mut problems: Vec<String> = Vec::new();
    // A field that refers to another block is that block's to be valid.
    let referring: Vec<String> = super::references(doc)
        .into_iter()
        .map(|(field, _)| format!("/{}", field.replace('~', "~0").replace('/', "~1")))
        .collect();
    for err in validator.iter_errors(doc) {
        let at = err.instance_path().as_str();
        let inside = |field: &String| at == field || at.starts_with(&format!("{field}/"));
        if !referring.iter().any(inside) {
            describe(&err, &mut problems);
        }
    }
    if problems.is_empty() {
        return Ok(());
    }
    problems.dedup();
    Err(Error::InvalidBlockData(problems.join("; ")))
}

fn dotted(pointer: &str) -> String {
    pointer
        .trim_start_matches('/')
        .split('/')
        .map(|seg| seg.replace("~1", "/").replace("~0", "~"))
        .collect::<Vec<_>>()
        .join(".")
}

fn child(parent: &str, name: &str) -> String {
    if parent.is_empty() {
        name.to_owned()
    } else {
        format!("{parent}.{name}")
    }
}

fn describe(err: &ValidationError<'_>, out: &mut Vec<String>) {
    let path = dotted(err.instance_path().as_str());
    match err.kind() {
        ValidationErrorKind::AdditionalProperties { unexpected } => {
            for name in unexpected {
                out.push(format!("{}: unknown field", child(&path, name)));
            }
        }
        ValidationErrorKind::Required { property } => {
            let name = property.as_str().unwrap_or_default();
            out.push(format!("{}: required field is missing", child(&path, name)));
        }
        ValidationErrorKind::AnyOf { context } | ValidationErrorKind::OneOfNotValid { context } => {
            // Report the alternative the value was meant for: the one whose errors are
            // all inside the value (not a type mismatch of the value itself).
            let here = err.instance_path().as_str();
            let best = context
                .iter()
                .filter(|errors| {
                    errors
                        .iter()
                        .all(|e| e.instance_path().as_str() != here || !is_type_error(e))
                })
                .min_by_key(|errors| errors.len());
            match best {
                Some(errors) => errors.iter().for_each(|e| describe(e, out)),
                None => out.push(format!(
                    "{}: has none of the allowed types",
                    display_path(&path)
                )),
            }
        }
        _ => out.push(format!("{}: {}", display_path(&path), err.masked())),
    }
}

fn is_type_error(err: &ValidationError<'_>) -> bool {
    matches!(err.kind(), ValidationErrorKind::Type { .. })
}

fn display_path(path: &str) -> &str {
    if path.is_empty() { "(document)" } else { path }
}

pub(super) fn field_kind(schema: &Value, path: &str) -> Option<FieldKind> {
    let mut nodes = vec![schema];
    for segment in path.split('.') {
        nodes = nodes
            .into_iter()
            .flat_map(|node| alternatives(schema, node, 0))
            .filter_map(|node| {
                node.get("properties")
                    .and_then(|p| p.get(segment))
                    .or_else(|| node.get("additionalProperties").filter(|a| a.is_object()))
            })
            .collect();
        if nodes.is_empty() {
            return None;
        }
    }
    let types: Vec<&str> = nodes
        .into_iter()
        .flat_map(|node| alternatives(schema, node, 0))
        .flat_map(|node| match node.get("type") {
            Some(Value::String(t)) => vec![t.as_str()],
            Some(Value::Array(ts)) => ts.iter().filter_map(Value::as_str).collect(),
            _ => vec!["any"],
        })
        .filter(|t| *t != "null")
        .collect();
    Some(match types.as_slice() {
        ["string"] => FieldKind::String,
        ["integer"] => FieldKind::Integer,
        ["number"] | ["integer", "number"] | ["number", "integer"] => FieldKind::Number,
        ["boolean"] => FieldKind::Boolean,
        _ => FieldKind::Json,
    })
}

/// How many local `$ref`s a walk follows in a row (a schema may refer to itself).
const REF_DEPTH: usize = 16;

/// A schema node and the branches of its `anyOf`/`oneOf`/`allOf`, with a local
/// `$ref` (`#/definitions/Creds`, `#/$defs/Creds`, as pydantic and Prefect write a
/// nested model) followed within `root`.
fn alternatives<'a>(root: &'a Value, node: &'a Value, depth: usize) -> Vec<&'a Value> {
    if depth > REF_DEPTH {
        return Vec::new();
    }
    let mut out = vec![node];
    if let Some(target) = node
        .get("$ref")
        .and_then(Value::as_str)
        .and_then(|r| r.strip_prefix('#'))
        .and_then(|pointer| root.pointer(pointer))
    {
        out.extend(alternatives(root, target, depth + 1));
    }
    for key in ["anyOf", "oneOf", "allOf"] {
        if let Some(Value::Array(branches)) = node.get(key) {
            out.extend(
                branches
                    .iter()
                    .flat_map(|b| alternatives(root, b, depth + 1)),
            );
        }
    }
    out
}
