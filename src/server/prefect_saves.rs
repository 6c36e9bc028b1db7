//! Saving blocks from Prefect (`Block.save(...)`, `Block.register_type_and_schema()`):
//! a block type a client registers becomes a Blockyard user type (admin tokens only),
//! its schema that type's schema; a block document created or updated becomes a
//! Blockyard block written through the one change path, sealed, versioned and on
//! record. Built-in types keep their own schemas whatever a client sends.

use rocket::http::Status;
use rocket::{Route, patch, post, routes};
use serde::Deserialize;
use serde_json::{Value, json};

use super::blocks;
use super::guard::Ctx;
use super::http::{Body, parse_name};
use super::policy::Change;
use super::prefect::named_by_id;
use super::prefect_shapes::{
    BLOCKYARD_ONLY, block_document_json, block_schema_json, block_type_json,
};
use super::prefect_types::{epoch, type_with_id};
use super::response::{ApiError, ApiResult, Json};
use super::state::{State, blocking};
use crate::block::NewBlock;
use crate::error::Error;
use crate::types::{BlockType, BlockTypeDef, references};

pub fn routes() -> Vec<Route> {
    routes![
        create_block_type,
        update_block_type,
        create_block_schema,
        create_block_document,
        update_block_document,
    ]
}

/// What follows a collection's path: Prefect's clients create at `/block_types/` (with
/// the slash), which only a route with a trailing segment matches; nothing may follow.
struct Tail(std::path::PathBuf);

impl<'r> rocket::request::FromSegments<'r> for Tail {
    type Error = std::convert::Infallible;
    fn from_segments(
        segments: rocket::http::uri::Segments<'r, rocket::http::uri::fmt::Path>,
    ) -> Result<Self, Self::Error> {
        Ok(Tail(segments.collect()))
    }
}

impl Tail {
    fn none(&self) -> ApiResult<()> {
        match self.0.as_os_str().is_empty() {
            true => Ok(()),
            false => Err(super::response::not_found()),
        }
    }
}

/// Registers (or replaces) a user type, as an admin change on record.
async fn register(
    state: &State,
    ctx: &Ctx,
    def: BlockTypeDef,
    replace: bool,
) -> ApiResult<BlockType> {
    let label = format!("type:{}", def.slug);
    let what = "registering block types (needs admin)";
    Change::admin("register-type", &label, what)
        .run(state, ctx, move |registry| {
            registry.register_type(def, replace)
        })
        .await
}

#[derive(Deserialize)]
struct NewType {
    name: String,
    slug: String,
    #[serde(default)]
    description: Option<String>,
}

#[post("/block_types/<tail..>", data = "<body>")]
async fn create_block_type(
    ctx: Ctx,
    state: &rocket::State<State>,
    tail: Tail,
    body: Result<Body<NewType>, ApiError>,
) -> ApiResult<Json> {
    tail.none()?;
    let Body(new) = body?;
    // Its schema comes next (`POST /block_schemas/`); until then it takes any object.
    let def = BlockTypeDef {
        slug: new.slug,
        name: new.name,
        description: new.description.unwrap_or_default(),
        secret_fields: Vec::new(),
        url_fields: Vec::new(),
        destination_fields: Vec::new(),
        primary_secret: None,
        schema: json!({"type": "object"}),
        http: None,
    };
    let ty = register(state, &ctx, def, false).await?;
    Ok(Json::new(
        Status::Created,
        &block_type_json(&ty.def, &epoch()),
    ))
}

/// A client updating a type's description or logo: Blockyard keeps its own.
#[patch("/block_types/<id>")]
async fn update_block_type(
    _authenticated: Ctx,
    state: &rocket::State<State>,
    id: &str,
) -> ApiResult<Status> {
    type_with_id(state, id).await?;
    Ok(Status::NoContent)
}

#[derive(Deserialize)]
struct NewSchema {
    fields: Value,
    block_type_id: String,
}

#[post("/block_schemas/<tail..>", data = "<body>")]
async fn create_block_schema(
    ctx: Ctx,
    state: &rocket::State<State>,
    tail: Tail,
    body: Result<Body<NewSchema>, ApiError>,
) -> ApiResult<Json> {
    tail.none()?;
    let Body(new) = body?;
    let ty = type_with_id(state, &new.block_type_id).await?;
    if ty.builtin {
        return Ok(Json::new(
            Status::Created,
            &block_schema_json(&ty.def, &epoch()),
        ));
    }
    let secret_fields = new.fields["secret_fields"]
        .as_array()
        .map(|list| {
            list.iter()
                .filter_map(|f| f.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    let def = BlockTypeDef {
        secret_fields,
        schema: new.fields,
        ..ty.def
    };
    let ty = register(state, &ctx, def, true).await?;
    Ok(Json::new(
        Status::Created,
        &block_schema_json(&ty.def, &epoch()),
    ))
}

#[derive(Deserialize)]
struct NewDocument {
    name: Option<String>,
    block_type_id: String,
    data: Value,
    #[serde(default)]
    is_anonymous: bool,
}

#[post("/block_documents/<tail..>", data = "<body>")]
async fn create_block_document(
    ctx: Ctx,
    state: &rocket::State<State>,
    tail: Tail,
    body: Result<Body<NewDocument>, ApiError>,
) -> ApiResult<Json> {
    tail.none()?;
    let Body(new) = body?;
    let (false, Some(name)) = (new.is_anonymous, new.name.as_deref()) else {
        return Err(Error::InvalidInput(
            "Blockyard keeps named blocks only; save the block with a name".into(),
        )
        .into());
    };
    let ty = type_with_id(state, &new.block_type_id).await?;
    check_references(state, &ctx, &new.data).await?;
    let block = NewBlock {
        name: parse_name(name)?,
        block_type: ty.def.slug.clone(),
        document: new.data,
        id: None,
        replace_deleted: false,
    };
    let block = blocks::create(state, &ctx, block).await?;
    Ok(Json::new(
        Status::Created,
        &block_document_json(&block, &ty.def, false),
    ))
}

#[derive(Deserialize)]
struct DocumentUpdate {
    data: Value,
    /// Prefect's default: the data sent is merged into what is stored.
    #[serde(default = "merged")]
    merge_existing_data: bool,
}

fn merged() -> bool {
    true
}

#[patch("/block_documents/<id>", data = "<body>")]
async fn update_block_document(
    ctx: Ctx,
    state: &rocket::State<State>,
    id: &str,
    body: Result<Body<DocumentUpdate>, ApiError>,
) -> ApiResult<Status> {
    let Body(update) = body?;
    let name = named_by_id(state, &ctx, id).await?;
    let registry = state.registry.clone();
    let target = name.clone();
    let current = blocking(move || registry.get_block_masked(&target)).await?;
    let stored = current.masked_data();
    let mut document = match update.merge_existing_data {
        true => stored.clone(),
        false => json!({}),
    };
    merge(&mut document, update.data);
    check_references(state, &ctx, &document).await?;
    // What Prefect is never shown, it cannot be expected to send back.
    for own in BLOCKYARD_ONLY {
        if let (Some(kept), Some(obj)) = (stored.get(*own), document.as_object_mut()) {
            obj.insert((*own).to_owned(), kept.clone());
        }
    }
    let what = "changing this block";
    blocks::update(state, &ctx, &name, document, None, what).await?;
    Ok(Status::NoContent)
}

/// Each field that refers to another block (a nested block Prefect saved before)
/// names one the caller may read.
async fn check_references(state: &State, ctx: &Ctx, data: &Value) -> ApiResult<()> {
    for (field, id) in references(data) {
        named_by_id(state, ctx, &id).await.map_err(|_| {
            Error::InvalidBlockData(format!(
                "{field}: refers to a block that does not exist or that this token may not read"
            ))
        })?;
    }
    Ok(())
}

/// `patch` merged into `into`, objects key by key (Prefect's deep merge).
fn merge(into: &mut Value, patch: Value) {
    match (into, patch) {
        (Value::Object(into), Value::Object(patch)) => {
            for (key, value) in patch {
                merge(into.entry(key).or_insert(Value::Null), value);
            }
        }
        (into, patch) => *into = patch,
    }
}
