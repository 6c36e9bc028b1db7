//! Block forms generated from a type's JSON Schema: one input per field (nested objects
//! by dotted path, enums as selects, booleans as yes/no, `anyOf` of alternatives as a
//! switch such as "ConnectionComponents / URL", free-form objects as JSON), and the
//! submitted form read back into a document with a message per field. Secret fields
//! are write-only: never filled in, and left empty they keep the stored secret.

use serde_json::Value;

use crate::types::BlockType;

/// What kind of input a field gets.
#[derive(Clone, Debug, PartialEq)]
pub enum Input {
    Text,
    Secret,
    Integer,
    Number,
    Boolean,
    Choice(Vec<String>),
    /// Free-form objects and arrays, typed as JSON.
    Json,
}

/// One input of a block form.
#[derive(Clone, Debug)]
pub struct Field {
    /// The dotted path in the document.
    pub path: String,
    /// What people call it: the schema's `title`, or the last part of the path in words
    /// (`last_rotated_at` → "Last rotated at").
    pub title: String,
    /// Folded under "Advanced": Blockyard's own settings (pool, requires, rotation,
    /// lease) and a connector's driver options.
    pub advanced: bool,
    pub input: Input,
    pub required: bool,
    pub help: Option<String>,
    pub default: Option<Value>,
    /// The switch this field belongs to, and the alternative that shows it.
    pub variant: Option<(String, String)>,
}

/// A choice between alternatives (`anyOf`) at one path.
#[derive(Clone, Debug)]
pub struct Switch {
    pub path: String,
    /// What people call it ("Connection info").
    pub title: String,
    pub options: Vec<String>,
    pub help: Option<String>,
}

/// The inputs of a type's form, in schema order (a connection's parts in the order
/// people read them: driver, host, port, database, username, password).
#[derive(Clone, Debug, Default)]
pub struct FormModel {
    pub fields: Vec<Field>,
    pub switches: Vec<Switch>,
    /// Fields Blockyard writes (`readOnly` in the schema: a rotation's state): never
    /// offered, and kept as stored when the form is saved.
    pub kept: Vec<String>,
}

/// The top-level fields folded under "Advanced".
const ADVANCED: &[&str] = &[
    "pool",
    "requires",
    "rotation",
    "lease",
    "connect_args",
    "fetch_size",
];

/// A connection's parts first, in this order; other fields follow in schema order.
const FIRST: &[&str] = &["driver", "host", "port", "database", "username", "password"];

/// The form of `ty`.
pub fn model(ty: &BlockType) -> FormModel {
    let mut model = FormModel::default();
    let secret = |path: &str| ty.def.secret_fields.iter().any(|s| s == path);
    walk(&ty.def.schema, "", false, None, &secret, &mut model);
    model
}

/// The JSON types a schema allows (`type` as a string or a list), without `null`.
fn types(schema: &Value) -> Vec<&str> {
    match schema.get("type") {
        Some(Value::String(t)) => vec![t.as_str()],
        Some(Value::Array(list)) => list
            .iter()
            .filter_map(Value::as_str)
            .filter(|t| *t != "null")
            .collect(),
        _ => Vec::new(),
    }
}

fn walk(
    schema: &Value,
    path: &str,
    required: bool,
    variant: Option<&(String, String)>,
    secret: &dyn Fn(&str) -> bool,
    model: &mut FormModel,
) {
    let help = schema
        .get("description")
        .and_then(Value::as_str)
        .map(str::to_owned);
    if let Some(Value::Array(alternatives)) = schema.get("anyOf") {
        let options = switch_options(alternatives);
        model.switches.push(Switch {
            path: path.to_owned(),
            title: title_of(schema, path),
            options: options.clone(),
            help,
        });
        for (alt, option) in alternatives.iter().zip(options) {
            let chosen = (path.to_owned(), option);
            walk(alt, path, required, Some(&chosen), secret, model);
        }
        return;
    }
    if schema.get("readOnly").and_then(Value::as_bool) == Some(true) {
        model.kept.push(path.to_owned());
        return;
    }
    if let Some(Value::Object(properties)) = schema.get("properties") {
        let needed: Vec<&str> = schema
            .get("required")
            .and_then(Value::as_array)
            .map(|r| r.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        for (name, child) in in_reading_order(properties) {
            let child_path = match path.is_empty() {
                true => name.clone(),
                false => format!("{path}.{name}"),
            };
            let child_required = needed.contains(&name.as_str());
            walk(child, &child_path, child_required, variant, secret, model);
        }
        return;
    }
    let input = input_of(schema, path, secret);
    let top = path.split('.').next().unwrap_or_default();
    model.fields.push(Field {
        path: path.to_owned(),
        title: title_of(schema, path),
        advanced: ADVANCED.contains(&top),
        input,
        required,
        help,
        default: schema.get("default").cloned(),
        variant: variant.cloned(),
    });
}

/// An object's properties, a connection's parts first in [`FIRST`]'s order.
fn in_reading_order(properties: &serde_json::Map<String, Value>) -> Vec<(&String, &Value)> {
    let mut ordered: Vec<(&String, &Value)> = properties.iter().collect();
    ordered.sort_by_key(|(name, _)| FIRST.iter().position(|f| f == name).unwrap_or(FIRST.len()));
    ordered
}

/// A field's title: the schema's, or its last path segment in words.
fn title_of(schema: &Value, path: &str) -> String {
    if let Some(title) = schema.get("title").and_then(Value::as_str) {
        return title.to_owned();
    }
    let last = path.rsplit('.').next().unwrap_or(path).replace('_', " ");
    let mut chars = last.chars();
    chars.next().map_or_else(String::new, |first| {
        first.to_uppercase().chain(chars).collect()
    })
}

/// The names of an `anyOf`'s alternatives: each one's title, or its place.
fn switch_options(alternatives: &[Value]) -> Vec<String> {
    alternatives
        .iter()
        .enumerate()
        .map(|(i, alt)| {
            alt.get("title")
                .and_then(Value::as_str)
                .map_or_else(|| format!("option {}", i + 1), str::to_owned)
        })
        .collect()
}

/// The input a leaf of the schema gets.
fn input_of(schema: &Value, path: &str, secret: &dyn Fn(&str) -> bool) -> Input {
    if secret(path) || schema.get("format").and_then(Value::as_str) == Some("password") {
        Input::Secret
    } else if let Some(Value::Array(choices)) = schema.get("enum") {
        Input::Choice(
            choices
                .iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect(),
        )
    } else {
        match types(schema).as_slice() {
            ["string"] => Input::Text,
            ["integer"] => Input::Integer,
            ["number"] => Input::Number,
            ["boolean"] => Input::Boolean,
            // Durations: a number of seconds or a string such as "30s".
            ["number", "string"] | ["string", "number"] => Input::Text,
            _ => Input::Json,
        }
    }
}

/// The name of a field's input: its path with `/` for `.` (a form key's dots nest).
pub fn input_name(path: &str) -> String {
    format!("f:{}", path.replace('.', "/"))
}

/// The name of a switch's radio buttons.
pub fn switch_name(path: &str) -> String {
    format!("switch:{}", path.replace('.', "/"))
}
