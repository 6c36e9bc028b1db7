//! Creating, editing and testing a block from the web UI, through the API's door: the
//! same `authorize`, the same registry calls audited in their own transaction
//! (`for_change`/`changed`), the same rule for keeping a stored secret while moving a
//! block (`update_block_from_masked`), and `If-Match` as the version the form was read
//! at.

use std::collections::HashMap;

use rocket::http::Status;
use rocket::response::Redirect;
use rocket::{get, post};

use super::form::{Filled, FormModel, model};
use super::pages::{self, FormView, Tested};
use super::{Page, SameOrigin, Viewing, page, show_block};
use crate::auth::Permission;
use crate::block::NewBlock;
use crate::document::{changes, split_secrets};
use crate::error::Error;
use crate::name::BlockName;
use crate::server::api::{Access, audit, authorize, changed, for_change};
use crate::server::http::ApiError;
use crate::server::{State, blocking, blocking_long};
use crate::types::BlockType;

/// A submitted block form: `application/x-www-form-urlencoded`, its keys taken as they
/// are (Rocket's own form parsing would nest keys at their dots), at most
/// [`BODY_LIMIT`](crate::server::BODY_LIMIT) bytes.
pub struct Fields(HashMap<String, String>);

impl std::ops::Deref for Fields {
    type Target = HashMap<String, String>;
    fn deref(&self) -> &Self::Target {
        &self.0
    }
}

#[rocket::async_trait]
impl<'r> rocket::data::FromData<'r> for Fields {
    type Error = ();

    async fn from_data(
        req: &'r rocket::Request<'_>,
        data: rocket::data::Data<'r>,
    ) -> rocket::data::Outcome<'r, Self> {
        use rocket::data::{Outcome, ToByteUnit};
        if req.content_type() != Some(&rocket::http::ContentType::Form) {
            return Outcome::Error((Status::UnsupportedMediaType, ()));
        }
        let limit = crate::server::BODY_LIMIT.bytes();
        match data.open(limit).into_bytes().await {
            Ok(bytes) if bytes.is_complete() => Outcome::Success(Fields(
                url::form_urlencoded::parse(&bytes)
                    .map(|(k, v)| (k.into_owned(), v.into_owned()))
                    .collect(),
            )),
            Ok(_) => Outcome::Error((Status::PayloadTooLarge, ())),
            Err(_) => Outcome::Error((Status::BadRequest, ())),
        }
    }
}

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
            let model = model(&ty);
            let filled = Filled::from_document(&model, &serde_json::json!({}));
            form_page(
                &viewing,
                &ty,
                &model,
                &filled,
                FormKind::Create(""),
                None,
                Status::Ok,
            )
        }
        Err(err) => viewing.problem(err),
    }
}

/// Which form: a new block (with the name typed so far) or an edit at a version.
enum FormKind<'a> {
    Create(&'a str),
    Edit(&'a str, i64),
}

fn form_page(
    viewing: &Viewing,
    ty: &BlockType,
    model: &FormModel,
    filled: &Filled,
    kind: FormKind<'_>,
    conflict: Option<&[crate::document::FieldChange]>,
    status: Status,
) -> Page {
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
        model,
        filled,
        conflict,
    };
    page(status, pages::block_form(&viewing.viewer(), &view))
}

/// Reads a submitted form against the type: the document, and the form to show again
/// (from the masked document: nothing typed into a secret or text input comes back).
fn read_form(
    ty: &BlockType,
    model: &FormModel,
    form: &HashMap<String, String>,
    stored: Option<&serde_json::Value>,
) -> (serde_json::Value, Filled) {
    let (doc, mut filled) = model.read(form, stored);
    if let Ok((masked, _)) = split_secrets(ty, doc.clone()) {
        filled.refill(model, &masked);
    }
    (doc, filled)
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
    let model = model(&ty);
    let (doc, mut filled) = read_form(&ty, &model, &form, None);
    let typed = form.get("name").map(|n| n.trim()).unwrap_or_default();
    let name = match BlockName::parse(typed) {
        Ok(name) => Some(name),
        Err(err) => {
            filled
                .errors
                .entry("name".into())
                .or_default()
                .push(err.to_string());
            None
        }
    };
    if filled.errors.is_empty()
        && let Err(Error::InvalidBlockData(messages)) = ty.validate(&doc)
    {
        filled.add_errors(&model, &messages);
    }
    let retry = |filled: &Filled, status| {
        form_page(
            &viewing,
            &ty,
            &model,
            filled,
            FormKind::Create(typed),
            None,
            status,
        )
    };
    let (Some(name), true) = (name, filled.errors.is_empty()) else {
        return Err(retry(&filled, Status::UnprocessableEntity));
    };
    let (ctx, actor) = (&viewing.ctx, viewing.ctx.actor());
    let touched: [&str; 1] = [&name];
    let access = Access::change("create", &touched, "creating this block");
    authorize(state, ctx, actor, access)
        .await
        .map_err(|e| viewing.problem(e))?;
    let registry = for_change(state, ctx, actor, "create", &name);
    let new = NewBlock {
        name: name.clone(),
        block_type: ty.def.slug.clone(),
        document: doc,
        id: None,
        replace_deleted: false,
    };
    let result = blocking(move || registry.create_block(new)).await;
    match changed(state, ctx, actor, "create", &name, result).await {
        Ok(_) => Ok(Redirect::to(format!("/ui/blocks/{name}"))),
        Err(err) if err.status.code == 403 => Err(viewing.problem(err)),
        Err(err) => {
            filled
                .errors
                .entry(String::new())
                .or_default()
                .push(err.message);
            Err(retry(&filled, err.status))
        }
    }
}

#[get("/blocks/<name>/edit")]
pub async fn edit_block(
    viewing: Viewing,
    state: &rocket::State<State>,
    name: Result<BlockName, Error>,
) -> Page {
    let shown = async {
        let name = name?;
        let (ctx, actor) = (&viewing.ctx, viewing.ctx.actor());
        authorize(
            state,
            ctx,
            actor,
            Access::change("update", &[&name], "editing this block"),
        )
        .await?;
        let registry = state.registry.clone();
        let block = blocking(move || registry.get_block_masked(&name)).await?;
        let ty = block_type(state, &block.block_type).await?;
        Ok::<_, ApiError>((block, ty))
    };
    match shown.await {
        Ok((block, ty)) => {
            let model = model(&ty);
            let filled = Filled::from_document(&model, block.masked_data());
            let kind = FormKind::Edit(&block.name, block.version);
            form_page(&viewing, &ty, &model, &filled, kind, None, Status::Ok)
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
    let name = name.map_err(|e| viewing.problem(ApiError::from(e)))?;
    let (ctx, actor) = (&viewing.ctx, viewing.ctx.actor());
    let touched: [&str; 1] = [&name];
    let access = Access::change("update", &touched, "editing this block");
    authorize(state, ctx, actor, access)
        .await
        .map_err(|e| viewing.problem(e))?;
    let registry = state.registry.clone();
    let lookup = name.clone();
    let current = blocking(move || registry.get_block_masked(&lookup))
        .await
        .map_err(|e| viewing.problem(e))?;
    let ty = block_type(state, &current.block_type)
        .await
        .map_err(|e| viewing.problem(e))?;
    let model = model(&ty);
    let (doc, mut filled) = read_form(&ty, &model, &form, Some(current.masked_data()));
    let version = form.get("version").and_then(|v| v.parse::<i64>().ok());
    let Some(version) = version.filter(|_| filled.errors.is_empty()) else {
        if version.is_none() {
            filled
                .errors
                .entry(String::new())
                .or_default()
                .push("the form has no version".into());
        }
        let kind = FormKind::Edit(&name, current.version);
        return Err(form_page(
            &viewing,
            &ty,
            &model,
            &filled,
            kind,
            None,
            Status::UnprocessableEntity,
        ));
    };
    let may_read = actor.may(Permission::ReadSecrets, Some(&name));
    let registry = for_change(state, ctx, actor, "update", &name);
    let target = name.clone();
    let sent = doc.clone();
    let result =
        blocking(move || registry.update_block_from_masked(&target, sent, Some(version), may_read))
            .await;
    match changed(state, ctx, actor, "update", &name, result).await {
        Ok(_) => Ok(Redirect::to(format!("/ui/blocks/{name}"))),
        Err(err) if err.code == "VERSION_CONFLICT" => {
            // Show the block as it is now, and what differs from what was sent.
            let (sent_masked, _) = split_secrets(&ty, doc).unwrap_or_default();
            let differs = changes(current.masked_data(), None, &sent_masked, None);
            let now = Filled::from_document(&model, current.masked_data());
            let kind = FormKind::Edit(&name, current.version);
            Err(form_page(
                &viewing,
                &ty,
                &model,
                &now,
                kind,
                Some(&differs),
                Status::Conflict,
            ))
        }
        Err(err) if err.code == "INVALID_BLOCK_DATA" => {
            filled.add_errors(&model, &err.message);
            let kind = FormKind::Edit(&name, version);
            Err(form_page(
                &viewing, &ty, &model, &filled, kind, None, err.status,
            ))
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
    let (ctx, actor) = (&viewing.ctx, viewing.ctx.actor());
    if let Err(err) = authorize(state, ctx, actor, Access::read(&name, &[&name], false)).await {
        return viewing.problem(err);
    }
    let Some(_slot) = state.ui.tests.take(&actor.token_id) else {
        return viewing.problem(ApiError::new(
            Status::TooManyRequests,
            "TOO_MANY_TESTS",
            "too many connection tests are running (yours or everyone's); try again when \
             one has finished",
        ));
    };
    if let Err(err) = audit(state, ctx, actor, "use-block-secret", Some(&name), "ok").await {
        return viewing.problem(err);
    }
    let registry = state.registry.clone();
    let target = name.clone();
    let timeout = std::time::Duration::from_secs(10);
    let tested = match blocking_long(move || registry.test_block_for_caller(&target, timeout)).await
    {
        Ok(report) => Tested::Passed(report),
        Err(err) => Tested::Failed {
            code: err.code.to_owned(),
            message: err.message,
        },
    };
    match &tested {
        Tested::Passed(_) => state.ui.record_test(&name, true, "ok"),
        Tested::Failed { code, .. } => state.ui.record_test(&name, false, code),
    }
    show_block(&viewing, state, Ok(name), false, Some(&tested)).await
}
