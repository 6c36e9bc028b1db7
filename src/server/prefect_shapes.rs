//! Prefect's shapes of what Blockyard holds: a block as a `BlockDocument`, a block type
//! as a `BlockType` and its schema as a `BlockSchema`, with ids Prefect clients can
//! use again (a block's own id; stable ids derived from a type's slug).

use serde_json::{Value, json};
use uuid::Uuid;

use crate::block::Block;
use crate::types::BlockTypeDef;

/// Fields of a block that are Blockyard's alone (its pool, what the database must
/// offer, rotation state, leasing): Prefect's shapes leave them out, and a save from Prefect
/// keeps them as they are.
pub const BLOCKYARD_ONLY: &[&str] = &["pool", "requires", "rotation", "lease"];

/// A stable UUID for a name (block types and schemas have no id of their own here).
pub fn derived_id(kind: &str, key: &str) -> String {
    use sha2::Digest;
    let digest = sha2::Sha256::digest(format!("blockyard:{kind}:{key}").as_bytes());
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest[..16]);
    uuid::Builder::from_random_bytes(bytes)
        .into_uuid()
        .to_string()
}

/// A block's id as Prefect sees it: its own id when that is a UUID (as Blockyard makes
/// them), else one derived from it.
pub fn document_id(block: &Block) -> String {
    block
        .id
        .parse::<Uuid>()
        .map(|u| u.to_string())
        .unwrap_or_else(|_| derived_id("block", &block.id))
}

/// Prefect's BlockType for one of ours.
pub fn block_type_json(def: &BlockTypeDef, created: &str) -> Value {
    json!({
        "id": derived_id("type", &def.slug),
        "created": created,
        "updated": created,
        "name": def.name,
        "slug": def.slug,
        "logo_url": null,
        "documentation_url": null,
        "description": def.description,
        "code_example": null,
        "is_protected": false,
    })
}

/// Prefect's BlockSchema for one of our types: its JSON Schema with the fields a
/// client resolves its Python class from.
pub fn block_schema_json(def: &BlockTypeDef, created: &str) -> Value {
    let mut fields = def.schema.clone();
    if let Some(properties) = fields.get_mut("properties").and_then(Value::as_object_mut) {
        for own in BLOCKYARD_ONLY {
            properties.remove(*own);
        }
    }
    titled(&mut fields);
    if let Some(obj) = fields.as_object_mut() {
        obj.insert("title".into(), json!(def.name));
        obj.insert("block_type_slug".into(), json!(def.slug));
        obj.insert("secret_fields".into(), json!(def.secret_fields));
        obj.insert("block_schema_references".into(), json!({}));
    }
    json!({
        "id": derived_id("schema", &def.slug),
        "created": created,
        "updated": created,
        "checksum": format!("sha256:{}", derived_id("checksum", &def.slug).replace('-', "")),
        "fields": fields,
        "block_type_id": derived_id("type", &def.slug),
        "block_type": block_type_json(def, created),
        "capabilities": [],
        "version": "blockyard",
    })
}

/// Gives each property without a title pydantic's (`connection_info` is "Connection
/// Info"), at every depth (inside `anyOf` branches too): the Prefect UI labels form
/// fields by title.
fn titled(schema: &mut Value) {
    match schema {
        Value::Object(obj) => {
            if let Some(properties) = obj.get_mut("properties").and_then(Value::as_object_mut) {
                for (key, property) in properties.iter_mut() {
                    if let Some(property) = property.as_object_mut() {
                        property
                            .entry("title")
                            .or_insert_with(|| json!(title_of(key)));
                    }
                }
            }
            obj.values_mut().for_each(titled);
        }
        Value::Array(items) => items.iter_mut().for_each(titled),
        _ => {}
    }
}

/// `connection_info` as pydantic titles it: `Connection Info`.
fn title_of(key: &str) -> String {
    key.split('_')
        .filter(|word| !word.is_empty())
        .map(|word| {
            let mut chars = word.chars();
            chars.next().map_or_else(String::new, |first| {
                first.to_uppercase().chain(chars).collect()
            })
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// Prefect's BlockDocument: the block's data without Blockyard-only fields, and the
/// block schema and type a client resolves its Python class from.
pub fn block_document_json(block: &Block, def: &BlockTypeDef, reveal: bool) -> Value {
    let mut data = block.shown(reveal);
    if let Some(obj) = data.as_object_mut() {
        for own in BLOCKYARD_ONLY {
            obj.remove(*own);
        }
    }
    let created = crate::time::rfc3339(block.created_at);
    let updated = crate::time::rfc3339(block.updated_at);
    let schema = block_schema_json(def, &created);
    let (schema_id, block_type) = (schema["id"].clone(), schema["block_type"].clone());
    json!({
        "id": document_id(block),
        "created": created,
        "updated": updated,
        "name": block.name,
        "data": data,
        "block_schema_id": schema_id,
        "block_schema": schema,
        "block_type_id": block_type["id"],
        "block_type_name": def.name,
        "block_type": block_type,
        "block_document_references": {},
        "is_anonymous": false,
    })
}
