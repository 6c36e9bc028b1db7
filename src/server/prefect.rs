//! The slice of Prefect's REST API a stock Prefect 3 client needs to load a block:
//! `GET /block_types/slug/{slug}/block_documents/name/{name}` in Prefect's BlockDocument
//! shape, `GET /admin/version` and `GET /health`. Prefect's `PREFECT_API_KEY` (Bearer)
//! and `PREFECT_API_AUTH_STRING` (Basic) carry a Blockyard token.

use rocket::http::Status;
use rocket::{Route, get, routes};
use serde_json::{Value, json};
use uuid::Uuid;

use super::cache::View;
use super::guard::Ctx;
use super::policy::{Access, authorize};
use super::reads::read_block;
use super::response::{ApiResult, Json};
use super::state::{State, blocking};
use crate::block::Block;
use crate::error::Error;
use crate::name::BlockName;
use crate::types::BlockTypeDef;

/// The Prefect server version we answer as: the newest client these routes are tested
/// with (older servers make clients warn).
const PREFECT_VERSION: &str = "3.8.8";

pub fn routes() -> Vec<Route> {
    routes![health, version, block_document]
}

#[get("/health")]
fn health() -> Json {
    Json::ok(&true)
}

#[get("/admin/version")]
fn version(_authenticated: Ctx) -> ApiResult<Json> {
    Ok(Json::ok(PREFECT_VERSION))
}

/// A stable UUID for a name (block types and schemas have no id of their own here).
fn derived_id(kind: &str, key: &str) -> String {
    use sha2::Digest;
    let digest = sha2::Sha256::digest(format!("blockyard:{kind}:{key}").as_bytes());
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest[..16]);
    uuid::Builder::from_random_bytes(bytes)
        .into_uuid()
        .to_string()
}

#[get("/block_types/slug/<slug>/block_documents/name/<name>?<include_secrets>")]
async fn block_document(
    ctx: Ctx,
    state: &rocket::State<State>,
    slug: &str,
    name: Result<BlockName, Error>,
    include_secrets: Option<bool>,
) -> ApiResult<Json> {
    let name = name?;
    let reveal = include_secrets.unwrap_or(false);
    // The same check as the native route: a refused secret read is audited here too.
    authorize(state, &ctx, Access::read(&name, &[&name], reveal)).await?;
    // The native route's read path: kept blocks, confirmed current in the trip that
    // records the read; the rendered document is kept with the block.
    let kept = read_block(state, &ctx, &name, reveal).await?;
    if kept.block.block_type != slug {
        return Err(Error::BlockNotFound(format!("{slug}/{name}")).into());
    }
    let view = View::Prefect { reveal };
    if let Some(body) = kept.rendered(view) {
        return Ok(Json::rendered(Status::Ok, body));
    }
    let registry = state.registry.clone();
    let slug = slug.to_owned();
    let def = blocking(move || registry.block_type(&slug)).await?.def;
    let body = kept.render(view, || block_document_json(&kept.block, &def, reveal));
    Ok(Json::rendered(Status::Ok, body))
}

/// Prefect's BlockDocument: the block's data without Blockyard-only fields, and the
/// block schema and type a client resolves its Python class from.
fn block_document_json(block: &Block, def: &BlockTypeDef, reveal: bool) -> Value {
    let mut data = block.shown(reveal);
    if let Some(obj) = data.as_object_mut() {
        obj.remove("pool");
        obj.remove("requires");
        obj.remove("rotation");
    }
    let created = crate::time::rfc3339(block.created_at);
    let updated = crate::time::rfc3339(block.updated_at);
    let type_id = derived_id("type", &def.slug);
    let schema_id = derived_id("schema", &def.slug);
    let block_type = json!({
        "id": type_id,
        "created": created,
        "updated": updated,
        "name": def.name,
        "slug": def.slug,
        "logo_url": null,
        "documentation_url": null,
        "description": def.description,
        "code_example": null,
        "is_protected": false,
    });
    let mut fields = def.schema.clone();
    if let Some(obj) = fields.as_object_mut() {
        obj.insert("title".into(), json!(def.name));
        obj.insert("block_type_slug".into(), json!(def.slug));
        obj.insert("secret_fields".into(), json!(def.secret_fields));
        obj.insert("block_schema_references".into(), json!({}));
    }
    json!({
        "id": block.id.parse::<Uuid>().map(|u| u.to_string()).unwrap_or_else(|_| derived_id("block", &block.id)),
        "created": created,
        "updated": updated,
        "name": block.name,
        "data": data,
        "block_schema_id": schema_id,
        "block_schema": {
            "id": schema_id,
            "created": created,
            "updated": updated,
            "checksum": format!("sha256:{}", derived_id("checksum", &def.slug).replace('-', "")),
            "fields": fields,
            "block_type_id": type_id,
            "block_type": block_type,
            "capabilities": [],
            "version": "blockyard",
        },
        "block_type_id": type_id,
        "block_type_name": def.name,
        "block_type": block_type,
        "block_document_references": {},
        "is_anonymous": false,
    })
}
