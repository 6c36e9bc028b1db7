//! A block form's values: filled from a stored (masked) document, read back from a
//! submitted form into a document with a message per field. Secret inputs are never
//! filled in, and left empty they keep the stored secret.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use serde_json::{Map, Value};

use super::form::{Field, FormModel, Input, input_name, switch_name};
use crate::document::{MASK, get_path, set_path};
use crate::server::sessions::Held;

/// What a form shows: each input's text, the chosen alternatives, and messages.
#[derive(Clone, Debug, Default)]
pub struct Filled {
    pub values: HashMap<String, String>,
    pub chosen: HashMap<String, String>,
    /// Messages by field path ("" for the form as a whole).
    pub errors: BTreeMap<String, Vec<String>>,
    /// Secret inputs whose value the server holds from a refused try (never shown).
    pub held: BTreeSet<String>,
}

impl Filled {
    /// A form filled from a stored (masked) document; secret inputs stay empty.
    pub fn from_document(model: &FormModel, doc: &Value) -> Filled {
        let mut filled = Filled::default();
        for switch in &model.switches {
            let is_text = get_path(doc, &switch.path).is_some_and(Value::is_string);
            let pick = match is_text {
                true => switch
                    .options
                    .iter()
                    .find(|o| model.leaf_of(&switch.path, o)),
                false => switch
                    .options
                    .iter()
                    .find(|o| !model.leaf_of(&switch.path, o)),
            };
            if let Some(option) = pick.or(switch.options.first()) {
                filled.chosen.insert(switch.path.clone(), option.clone());
            }
        }
        for field in &model.fields {
            let value = match get_path(doc, &field.path) {
                None | Some(Value::Null) => continue,
                Some(v) if v.as_str() == Some(MASK) => continue,
                Some(v) if field.input == Input::Json => v.to_string(),
                Some(Value::String(s)) => s.clone(),
                // An object where this input wants one value: the other alternative's.
                Some(Value::Object(_) | Value::Array(_)) => continue,
                Some(v) => v.to_string(),
            };
            if field.input != Input::Secret && !filled.values.contains_key(&field.path) {
                filled.values.insert(field.path.clone(), value);
            }
        }
        filled
    }

    /// Fills the inputs again from the document as it would be stored (masked), keeping
    /// what is already filled (inputs that did not parse).
    pub fn refill(&mut self, model: &FormModel, masked: &Value) {
        for (path, value) in Filled::from_document(model, masked).values {
            self.values.entry(path).or_insert(value);
        }
    }

    /// One message, on the field at `path` ("" for the form as a whole).
    pub fn add_error(&mut self, path: &str, message: String) {
        self.errors
            .entry(path.to_owned())
            .or_default()
            .push(message);
    }

    /// Messages of a failed validation (`path: message; ...`), each put next to the
    /// field it names (or the nearest one above it), the rest on the form.
    pub fn add_errors(&mut self, model: &FormModel, messages: &str) {
        for message in messages.split("; ") {
            let (path, text) = message.split_once(": ").unwrap_or(("", message));
            let field = model
                .fields
                .iter()
                .map(|f| f.path.as_str())
                .chain(model.switches.iter().map(|s| s.path.as_str()))
                .filter(|p| path == *p || path.starts_with(&format!("{p}.")))
                .max_by_key(|p| p.len())
                .unwrap_or("");
            let shown = match field == path {
                true => text.to_owned(),
                false => message.to_owned(),
            };
            self.errors.entry(field.to_owned()).or_default().push(shown);
        }
    }
}

impl FormModel {
    /// Whether the alternative `option` at `path` is a single value (not an object).
    fn leaf_of(&self, path: &str, option: &str) -> bool {
        self.fields
            .iter()
            .any(|f| f.path == path && f.variant.as_ref().is_some_and(|(_, o)| o == option))
    }

    /// Reads a submitted form into a document. An empty input leaves its field out; an
    /// empty secret input where `stored` (the masked document edited) holds a secret
    /// writes `********`, which keeps that secret.
    /// Inputs that do not parse are reported by field. The values to show again are
    /// not taken from the form (text may hold a secret): see [`Filled::refill`].
    pub fn read(
        &self,
        form: &HashMap<String, String>,
        stored: Option<&Value>,
        held: &Held,
    ) -> (Value, Filled) {
        let mut filled = Filled::default();
        for switch in &self.switches {
            let chosen = form
                .get(&switch_name(&switch.path))
                .filter(|c| switch.options.contains(c))
                .or(switch.options.first());
            if let Some(c) = chosen {
                filled.chosen.insert(switch.path.clone(), c.clone());
            }
        }
        let mut doc = Value::Object(Map::new());
        for field in &self.fields {
            if let Some((switch, option)) = &field.variant
                && filled.chosen.get(switch) != Some(option)
            {
                continue;
            }
            let raw = form
                .get(&input_name(&field.path))
                .map(|v| v.trim())
                .unwrap_or_default();
            let kept = stored
                .and_then(|doc| get_path(doc, &field.path))
                .and_then(Value::as_str)
                == Some(MASK);
            let earlier = held.iter().find(|(path, _)| *path == field.path);
            let Some(value) = value_of(&mut filled, field, raw, kept, earlier) else {
                continue;
            };
            if let Err(err) = set_path(&mut doc, &field.path, value) {
                filled
                    .errors
                    .entry(field.path.clone())
                    .or_default()
                    .push(err.to_string());
            }
        }
        self.keep_stored(&mut doc, stored);
        (doc, filled)
    }
}

/// The value an input gives its field: a secret left empty takes what the server
/// holds from a refused try (`earlier`), or keeps the stored one (`kept`); any other
/// empty input gives none; an input that does not parse is an error here.
fn value_of(
    filled: &mut Filled,
    field: &Field,
    raw: &str,
    kept: bool,
    earlier: Option<&(String, zeroize::Zeroizing<String>)>,
) -> Option<Value> {
    match (raw.is_empty(), &field.input) {
        (true, Input::Secret) if earlier.is_some() => {
            filled.held.insert(field.path.clone());
            earlier.map(|(_, v)| Value::String(v.to_string()))
        }
        (true, Input::Secret) if kept => Some(Value::String(MASK.into())),
        (true, _) => None,
        (false, input) => match parse(input, raw) {
            Ok(value) => Some(value),
            Err(message) => {
                // Shown again only where it cannot be a secret (a number, a yes/no):
                // text and JSON may hold one.
                if matches!(field.input, Input::Integer | Input::Number | Input::Boolean) {
                    filled.values.insert(field.path.clone(), raw.to_owned());
                }
                filled.add_error(&field.path, message);
                None
            }
        },
    }
}

impl FormModel {
    /// What Blockyard writes and the form never offers (a rotation's state) stays as
    /// stored; a stored secret there goes back as `********`, which keeps it.
    fn keep_stored(&self, doc: &mut Value, stored: Option<&Value>) {
        for path in &self.kept {
            if let Some(value) = stored.and_then(|s| get_path(s, path))
                && !value.is_null()
            {
                let _ = set_path(doc, path, value.clone());
            }
        }
    }
}

fn parse(input: &Input, raw: &str) -> Result<Value, String> {
    match input {
        Input::Text | Input::Secret | Input::Choice(_) => Ok(Value::String(raw.to_owned())),
        Input::Integer => raw
            .parse::<i64>()
            .map(Value::from)
            .map_err(|_| "must be a whole number".to_owned()),
        Input::Number => raw
            .parse::<f64>()
            .ok()
            .and_then(serde_json::Number::from_f64)
            .map(Value::Number)
            .ok_or_else(|| "must be a number".to_owned()),
        Input::Boolean => match raw {
            "true" => Ok(Value::Bool(true)),
            "false" => Ok(Value::Bool(false)),
            _ => Err("must be yes or no".to_owned()),
        },
        Input::Json => serde_json::from_str(raw).map_err(|err| {
            format!(
                "is not valid JSON (line {}, column {})",
                err.line(),
                err.column()
            )
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::server::ui::form::model;
    use crate::types::{BlockType, builtin_type};
    use serde_json::json;

    fn connector() -> (BlockType, FormModel) {
        let ty = builtin_type("sqlalchemy-connector").unwrap();
        let model = model(&ty);
        (ty, model)
    }

    #[test]
    fn the_connector_form_has_a_switch_and_write_only_secrets() {
        let (_, model) = connector();
        assert_eq!(model.switches[0].path, "connection_info");
        assert_eq!(model.switches[0].options, ["ConnectionComponents", "URL"]);
        let field = |p: &str| model.fields.iter().find(|f| f.path == p).unwrap();
        assert_eq!(field("connection_info.password").input, Input::Secret);
        // What Blockyard writes is never offered, and kept when the form is saved.
        assert!(
            model
                .fields
                .iter()
                .all(|f| !f.path.starts_with("rotation.last"))
        );
        assert_eq!(
            model.kept,
            [
                "rotation.last_rotated_at",
                "rotation.pending_password",
                "rotation.set_by"
            ]
        );
        assert_eq!(field("connection_info.port").input, Input::Integer);
        assert_eq!(field("pool.test_on_check_out").input, Input::Boolean);
        assert_eq!(field("pool.connection_timeout").input, Input::Text);
        assert_eq!(field("connection_info.query").input, Input::Json);
        assert!(field("connection_info.driver").required);
    }

    #[test]
    fn a_form_reads_back_into_a_document_and_never_shows_a_secret_again() {
        let (ty, model) = connector();
        let form: HashMap<String, String> = [
            ("switch:connection_info", "URL"),
            ("f:connection_info", "postgresql://u:PLANTED@h/db"),
            ("f:connection_info/driver", "ignored: the other alternative"),
            ("f:connection_info/port", "nope"),
            ("f:fetch_size", "5"),
            ("f:connect_args", "{\"password\": \"PLANTED2\"}"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
        let (doc, mut filled) = model.read(&form, None, &Vec::new());
        assert_eq!(doc["connection_info"], "postgresql://u:PLANTED@h/db");
        assert_eq!(doc["fetch_size"], 5);
        assert!(filled.errors.is_empty(), "{:?}", filled.errors);
        let (masked, _) = crate::document::split_secrets(&ty, doc).unwrap();
        filled.refill(&model, &masked);
        let shown = format!("{:?}", filled.values);
        assert!(!shown.contains("PLANTED"), "{shown}");
        assert!(shown.contains("u:********@h"), "{shown}");

        // The components' port that does not parse is kept to fix; the URL input is
        // not filled with the components object.
        let form: HashMap<String, String> = [("f:connection_info/port", "nope")]
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect();
        let (doc, filled) = model.read(&form, None, &Vec::new());
        assert_eq!(filled.values["connection_info.port"], "nope");
        assert_eq!(
            filled.errors["connection_info.port"],
            ["must be a whole number"]
        );
        let again = Filled::from_document(&model, &json!({"connection_info": {"driver": "x"}}));
        assert!(
            !again.values.contains_key("connection_info"),
            "{:?}",
            again.values
        );
        assert_eq!(again.chosen["connection_info"], "ConnectionComponents");
        assert!(doc.get("connection_info").is_none(), "{doc}");
        // An empty secret input keeps a stored secret, and invents none.
        let stored = json!({"connection_info": {"driver": "x", "password": MASK}});
        let (doc, _) = model.read(&HashMap::new(), Some(&stored), &Vec::new());
        assert_eq!(doc, json!({"connection_info": {"password": MASK}}));
    }
}
