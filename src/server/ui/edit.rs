//! Creating, editing and testing a block from the web UI, through the API's door: the
//! API's own `create` and `update` (the same checks, the same change path with its
//! audit record in the same transaction, the same rule for keeping a stored secret
//! while moving a block), with the version the form was read at as `If-Match`.

use std::collections::HashMap;

use rocket::http::Status;
use rocket::response::Redirect;
use rocket::{get, post};

use super::block_page::Tested;
use super::browse::show_block;
use super::filled::Filled;
use super::form::{FormModel, model};
use super::form_page::FormView;
use super::pages;
use super::viewing::{Fields, Page, SameOrigin, Viewing, page};
use crate::block::{Block, NewBlock};
use crate::document::{changes, split_secrets};
use crate::error::{Error, ErrorKind};
use crate::name::BlockName;
use crate::server::blocks;
use crate::server::policy::{Access, audit, authorize};
use crate::server::response::ApiError;
use crate::server::sessions::Held;
use crate::server::state::{State, blocking, blocking_long};
use crate::types::BlockType;
use zeroize::Zeroizing;

/// What the 403 of an edit says the token does not allow.
const EDITING: &str = "editing this block";

async fn block_type(state: &State, slug: &str) -> Result<BlockType, ApiError> {
    let registry = state.registry.clone();
    let slug = slug.to_owned();
    blocking(move || registry.block_type(&slug)).await
}

#[get("/new?<type>")]
pub async fn new_block(
    viewing: Viewing,
    state: &rocket::State<State>,
    r#type: Option<&str>,
) -> Page {
    let Some(slug) = r#type.filter(|t| !t.is_empty()) else {
        let registry = state.registry.clone();
        return match blocking(move || registry.block_types()).await {
            Ok(types) => {
                let listed: Vec<_> = types
                    .into_iter()
                    .map(|t| (t.def.slug, t.def.name, t.def.description))
                    .collect();
                page(Status::Ok, pages::choose_type(&viewing.viewer(), &listed))
            }
            Err(err) => viewing.problem(err),
        };
    };
    match block_type(state, slug).await {
        Ok(ty) => {
            let editor = Editor::new(&viewing, state, ty);
            let filled = Filled::from_document(&editor.model, &serde_json::json!({}));
            editor.page(&filled, FormKind::Create(""), None, Status::Ok)
        }
        Err(err) => viewing.problem(err),
    }
}

/// Which form: a new block (with the name typed so far) or an edit at a version.
enum FormKind<'a> {
    Create(&'a str),
    Edit(&'a str, i64),
}

/// A form for one block type, shown to one viewer.
struct Editor<'a> {
    viewing: &'a Viewing,
    state: &'a State,
    ty: BlockType,
    model: FormModel,
}

impl<'a> Editor<'a> {
    fn new(viewing: &'a Viewing, state: &'a State, ty: BlockType) -> Self {
        let model = model(&ty);
        Editor {
            viewing,
            state,
            ty,
            model,
        }
    }

    /// The secrets held from a refused try of form `key`.
    fn viewing_held(&self, key: &str) -> Held {
        // A form's read is synchronous; the store is asked off the async workers.
        let sessions = &self.state.ui.sessions;
        rocket::tokio::task::block_in_place(|| sessions.held(&self.viewing.session, key))
            .unwrap_or_default()
    }

    /// After a try of form `key`: refused, the secrets typed (or held) are held for the
    /// next try, and the form shown says so; saved, nothing is.
    fn hold(&self, key: &str, doc: &serde_json::Value, saved: bool, filled: &mut Filled) {
        let secrets: Held = match saved {
            true => Vec::new(),
            false => self
                .ty
                .def
                .secret_fields
                .iter()
                .filter_map(|path| {
                    let value = crate::document::get_path(doc, path)?.as_str()?;
                    (value != crate::document::MASK && !value.is_empty())
                        .then(|| (path.clone(), Zeroizing::new(value.to_owned())))
                })
                .collect(),
        };
        filled.held = secrets.iter().map(|(path, _)| path.clone()).collect();
        let sessions = &self.state.ui.sessions;
        // Held secrets spare retyping; if the store cannot keep them, they are typed again.
        let _ = rocket::tokio::task::block_in_place(|| {
            sessions.hold(&self.viewing.session, key, secrets)
        });
    }

    /// The form page, filled, with what differs from the stored block on a conflict.
    fn page(
        &self,
        filled: &Filled,
        kind: FormKind<'_>,
        conflict: Option<&[crate::document::FieldChange]>,
        status: Status,
    ) -> Page {
        let ty = &self.ty;
        let (title, action, new_name, version) = match kind {
            FormKind::Create(name) => (
                format!("New {}", ty.def.name),
                format!("/ui/new?type={}", ty.def.slug),
                Some(name),
                None,
            ),
            FormKind::Edit(name, version) => (
                format!("Edit {name}"),
                format!("/ui/blocks/{name}/edit"),
                None,
                Some(version),
            ),
        };
        let view = FormView {
            title: &title,
            action: &action,
            type_name: &ty.def.name,
            new_name,
            version,
            model: &self.model,
            filled,
            conflict,
        };
        page(
            status,
            super::form_page::block_form(&self.viewing.viewer(), &view),
        )
    }

    /// Reads a submitted form against the type: the document, and the form to show
    /// again (from the masked document: nothing typed into a secret or text input comes
    /// back).
    fn read(
        &self,
        form: &HashMap<String, String>,
        stored: Option<&serde_json::Value>,
        key: &str,
    ) -> (serde_json::Value, Filled) {
        let held = self.viewing_held(key);
        let (doc, mut filled) = self.model.read(form, stored, &held);
        if let Ok((masked, _)) = split_secrets(&self.ty, doc.clone()) {
            filled.refill(&self.model, &masked);
        }
        (doc, filled)
    }
}

#[post("/new?<type>", data = "<form>")]
pub async fn create_block(
    _origin: SameOrigin,
    viewing: Viewing,
    state: &rocket::State<State>,
    r#type: &str,
    form: Fields,
) -> Result<Redirect, Page> {
    viewing.csrf(form.get("csrf").map(String::as_str))?;
    let ty = block_type(state, r#type)
        .await
        .map_err(|e| viewing.problem(e))?;
    let editor = Editor::new(&viewing, state, ty);
    let key = format!("new:{}", editor.ty.def.slug);
    let (doc, mut filled) = editor.read(&form, None, &key);
    let typed = form.get("name").map(|n| n.trim()).unwrap_or_default();
    let name = BlockName::parse(typed)
        .map_err(|err| filled.add_error("name", err.to_string()))
        .ok();
    if filled.errors.is_empty()
        && let Err(Error::InvalidBlockData(messages)) = editor.ty.validate(&doc)
    {
        filled.add_errors(&editor.model, &messages);
    }
    let retry = |filled: &mut Filled, status| {
        editor.hold(&key, &doc, false, filled);
        editor.page(filled, FormKind::Create(typed), None, status)
    };
    let (Some(name), true) = (name, filled.errors.is_empty()) else {
        return Err(retry(&mut filled, Status::UnprocessableEntity));
    };
    let new = NewBlock {
        name: name.clone(),
        block_type: editor.ty.def.slug.clone(),
        document: doc.clone(),
        id: None,
        replace_deleted: false,
    };
    match blocks::create(state, &viewing.ctx, new).await {
        Ok(_) => {
            editor.hold(&key, &doc, true, &mut filled);
            Ok(Redirect::to(format!("/ui/blocks/{name}")))
        }
        Err(err) if err.status.code == 403 => Err(viewing.problem(err)),
        Err(err) => {
            filled.add_error("", err.message);
            Err(retry(&mut filled, err.status))
        }
    }
}

/// The block to edit (masked) and its type, once the token may change it.
async fn editing(
    state: &State,
    viewing: &Viewing,
    name: Result<BlockName, Error>,
) -> Result<(Block, BlockType), ApiError> {
    let name = name?;
    let blocks = [name.as_str()];
    authorize(
        state,
        &viewing.ctx,
        Access::write("update", &blocks, EDITING),
    )
    .await?;
    let registry = state.registry.clone();
    let block = blocking(move || registry.get_block_masked(&name)).await?;
    let ty = block_type(state, &block.block_type).await?;
    Ok((block, ty))
}

#[get("/blocks/<name>/edit")]
pub async fn edit_block(
    viewing: Viewing,
    state: &rocket::State<State>,
    name: Result<BlockName, Error>,
) -> Page {
    match editing(state, &viewing, name).await {
        Ok((block, ty)) => {
            let editor = Editor::new(&viewing, state, ty);
            let filled = Filled::from_document(&editor.model, block.masked_data());
            let kind = FormKind::Edit(&block.name, block.version);
            editor.page(&filled, kind, None, Status::Ok)
        }
        Err(err) => viewing.problem(err),
    }
}

#[post("/blocks/<name>/edit", data = "<form>")]
pub async fn save_block(
    _origin: SameOrigin,
    viewing: Viewing,
    state: &rocket::State<State>,
    name: Result<BlockName, Error>,
    form: Fields,
) -> Result<Redirect, Page> {
    viewing.csrf(form.get("csrf").map(String::as_str))?;
    let (current, ty) = editing(state, &viewing, name)
        .await
        .map_err(|e| viewing.problem(e))?;
    let editor = Editor::new(&viewing, state, ty);
    let key = format!("edit:{}", current.name);
    let (doc, mut filled) = editor.read(&form, Some(current.masked_data()), &key);
    let version = form.get("version").and_then(|v| v.parse::<i64>().ok());
    let Some(version) = version.filter(|_| filled.errors.is_empty()) else {
        if version.is_none() {
            filled.add_error("", "the form has no version".into());
        }
        editor.hold(&key, &doc, false, &mut filled);
        let kind = FormKind::Edit(&current.name, current.version);
        return Err(editor.page(&filled, kind, None, Status::UnprocessableEntity));
    };
    let name = current.name.clone();
    let saved = blocks::update(
        state,
        &viewing.ctx,
        &name,
        doc.clone(),
        Some(version),
        EDITING,
    );
    let saved = saved.await;
    editor.hold(&key, &doc, saved.is_ok(), &mut filled);
    match saved {
        Ok(_) => Ok(Redirect::to(format!("/ui/blocks/{name}"))),
        Err(err) if err.kind == ErrorKind::VersionConflict => {
            // Show the block as it is now, and what differs from what was sent.
            let (sent_masked, _) = split_secrets(&editor.ty, doc).unwrap_or_default();
            let differs = changes(current.masked_data(), None, &sent_masked, None);
            let now = Filled::from_document(&editor.model, current.masked_data());
            let kind = FormKind::Edit(&name, current.version);
            Err(editor.page(&now, kind, Some(&differs), Status::Conflict))
        }
        Err(err) if err.kind == ErrorKind::InvalidBlockData => {
            filled.add_errors(&editor.model, &err.message);
            let kind = FormKind::Edit(&name, version);
            Err(editor.page(&filled, kind, None, err.status))
        }
        Err(err) => Err(viewing.problem(err)),
    }
}

/// Test: the server connects with the stored secret to the stored host (the secret
/// never reaches the browser, and its use is on record first), and the block's page
/// shows the classified result.
#[post("/blocks/<name>/test", data = "<form>")]
pub async fn test_block(
    _origin: SameOrigin,
    viewing: Viewing,
    state: &rocket::State<State>,
    name: Result<BlockName, Error>,
    form: Fields,
) -> Page {
    if let Err(refusal) = viewing.csrf(form.get("csrf").map(String::as_str)) {
        return refusal;
    }
    let name = match name {
        Ok(name) => name,
        Err(err) => return viewing.problem(ApiError::from(err)),
    };
    let ctx = &viewing.ctx;
    if let Err(err) = authorize(state, ctx, Access::read(&name, &[&name], false)).await {
        return viewing.problem(err);
    }
    let Some(_slot) = state.ui.tests.take(&ctx.actor().token_id) else {
        return viewing.problem(ApiError::new(
            ErrorKind::TooManyTests,
            "too many connection tests are running (yours or everyone's); try again when \
             one has finished",
        ));
    };
    if let Err(err) = audit(state, ctx, "use-block-secret", Some(&name), "ok").await {
        return viewing.problem(err);
    }
    let registry = state.registry.clone();
    let target = name.clone();
    let timeout = std::time::Duration::from_secs(10);
    let tested = match blocking_long(move || registry.test_block_for_caller(&target, timeout)).await
    {
        Ok(report) => Tested::Passed(report),
        Err(err) => Tested::Failed {
            code: err.code().to_owned(),
            message: err.message,
        },
    };
    let (registry, target) = (state.registry.clone(), name.clone());
    let (passed, code) = match &tested {
        Tested::Passed(_) => (true, "ok".to_owned()),
        Tested::Failed { code, .. } => (false, code.clone()),
    };
    if let Err(err) = blocking(move || registry.record_test(&target, passed, &code)).await {
        return viewing.problem(err);
    }
    show_block(&viewing, state, Ok(name), false, Some(&tested), None).await
}
