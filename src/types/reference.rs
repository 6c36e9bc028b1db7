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

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

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
