//! References between blocks, as Prefect writes a block whose field is another saved
//! block: the field holds `{"$ref": {"block_document_id": ID}}` (the other block's id)
//! instead of that block's data. Such a field is not checked against the type's schema
//! (the block it names is checked by its own type); Prefect's routes put the named
//! block's data in its place when the block is read.

use serde_json::Value;

/// The id a value refers to, if it is exactly a block reference.
pub fn block_reference(value: &Value) -> Option<&str> {
    let obj = value.as_object()?;
    let target = obj.get("$ref")?.as_object()?;
    match (obj.len(), target.len()) {
        (1, 1) => target.get("block_document_id")?.as_str(),
        _ => None,
    }
}

/// The top-level fields of a document that refer to other blocks, with their ids.
pub fn references(doc: &Value) -> Vec<(String, String)> {
    doc.as_object()
        .map(|obj| {
            obj.iter()
                .filter_map(|(field, value)| {
                    block_reference(value).map(|id| (field.clone(), id.to_owned()))
                })
                .collect()
        })
        .unwrap_or_default()
}

/// A reference to the block with this id.
pub fn reference_to(id: &str) -> Value {
    serde_json::json!({"$ref": {"block_document_id": id}})
}

/// The scheme of a reference to another block's field.
pub const BLOCKYARD_SCHEME: &str = "blockyard://";

/// The block and field a value refers to, if it is exactly `{"$ref":
/// "blockyard://NAME/path.to.field"}`.
pub fn blockyard_reference(value: &Value) -> Option<(&str, &str)> {
    let obj = value.as_object().filter(|o| o.len() == 1)?;
    let target = obj.get("$ref")?.as_str()?.strip_prefix(BLOCKYARD_SCHEME)?;
    target
        .split_once('/')
        .filter(|(n, p)| !n.is_empty() && !p.is_empty())
}

/// Every field of a document, at any depth, that refers to another block's field:
/// its dotted path, the block's name and the field's path there.
pub fn blockyard_references(doc: &Value) -> Vec<(String, String, String)> {
    fn walk(value: &Value, at: &str, found: &mut Vec<(String, String, String)>) {
        if let Some((name, path)) = blockyard_reference(value) {
            found.push((at.to_owned(), name.to_owned(), path.to_owned()));
            return;
        }
        if let Some(obj) = value.as_object() {
            for (key, child) in obj {
                let path = match at.is_empty() {
                    true => key.clone(),
                    false => format!("{at}.{key}"),
                };
                walk(child, &path, found);
            }
        }
    }
    let mut found = Vec::new();
    walk(doc, "", &mut found);
    found
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn blockyard_references_are_found_at_any_depth() {
        let doc = json!({
            "connection_info": {"password": {"$ref": "blockyard://pg-admin/connection_info.password"}},
            "a": {"$ref": "blockyard://b"},
            "c": {"$ref": "op://vault/item"},
        });
        assert_eq!(
            blockyard_references(&doc),
            [(
                "connection_info.password".to_owned(),
                "pg-admin".to_owned(),
                "connection_info.password".to_owned()
            )]
        );
    }

    #[test]
    fn only_an_exact_reference_is_one() {
        let doc = json!({
            "creds": reference_to("8f0c"),
            "other": {"$ref": {"block_document_id": "1", "extra": 1}},
            "schema": {"$ref": "#/definitions/Creds"},
            "plain": "x",
        });
        assert_eq!(references(&doc), [("creds".to_owned(), "8f0c".to_owned())]);
        assert_eq!(block_reference(&doc["other"]), None);
        assert_eq!(block_reference(&doc["schema"]), None);
    }
}
