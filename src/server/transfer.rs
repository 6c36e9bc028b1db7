//! Moving blocks over HTTP (admin tokens only): `GET /export` (secrets masked, or
//! sealed to an age recipient, and then on record like a secret read before they leave)
//! and `POST /import` (one transaction, audited with it; `dry_run` for the plan).

use rocket::data::Data;
use rocket::http::ContentType;
use rocket::{FromForm, get, post};

use super::guard::Ctx;
use super::http::{json_body_up_to, parse_bool};
use super::policy::{Access, Change, audit, authorize};
use super::response::{ApiError, ApiResult, Json};
use super::state::{State, blocking_long};
use crate::block::BlockFilter;
use crate::error::Error;
use crate::name::BlockName;
use crate::registry::{Existing, SecretsIdentity, SecretsKey};
use crate::wire::ImportRequest;

/// Export and import, mounted under `/api/v1`.
pub fn routes() -> Vec<rocket::Route> {
    rocket::routes![export, import]
}

/// The largest import body: an export of about 100,000 blocks.
const IMPORT_LIMIT: u64 = 64 * 1024 * 1024;

#[derive(FromForm)]
pub struct ExportQuery<'r> {
    prefix: Option<&'r str>,
    #[field(name = "type")]
    block_type: Option<&'r str>,
    name: Vec<&'r str>,
    recipient: Option<&'r str>,
}

#[get("/export?<q..>")]
pub async fn export(ctx: Ctx, state: &rocket::State<State>, q: ExportQuery<'_>) -> ApiResult<Json> {
    let subject = format!("export:{}*", q.prefix.unwrap_or_default());
    let access = Access::admin(
        q.recipient.map(|_| ("export-secrets", subject.as_str())),
        "exporting blocks (needs admin)",
    );
    authorize(state, &ctx, access).await?;
    let names = q
        .name
        .iter()
        .map(|n| BlockName::parse(n))
        .collect::<Result<Vec<_>, _>>()?;
    let key = q.recipient.map(SecretsKey::recipient).transpose()?;
    if key.is_some() {
        // Secrets leave sealed, but they leave: on record first, like a read.
        audit(state, &ctx, "export-secrets", Some(&subject), "ok").await?;
    }
    let filter = BlockFilter {
        block_type: q.block_type.map(str::to_owned),
        name_prefix: q.prefix.map(str::to_owned),
        ..Default::default()
    };
    let registry = state.registry.clone();
    let file = blocking_long(move || registry.export(&filter, &names, key.as_ref())).await?;
    Ok(Json::ok(&file))
}

#[derive(FromForm)]
pub struct ImportQuery<'r> {
    dry_run: Option<&'r str>,
    existing: Option<&'r str>,
}

#[post("/import?<q..>", data = "<data>")]
pub async fn import(
    ctx: Ctx,
    state: &rocket::State<State>,
    q: ImportQuery<'_>,
    content_type: Option<&ContentType>,
    data: Data<'_>,
) -> ApiResult<Json> {
    let what = "importing blocks (needs admin)";
    let access = Access::admin(Some(("import", "import")), what);
    authorize(state, &ctx, access).await?;
    let dry_run = parse_bool("dry_run", q.dry_run)?;
    let existing = match q.existing {
        None | Some("update") => Existing::Update,
        Some("skip") => Existing::Skip,
        Some("overwrite") => Existing::Overwrite,
        Some(_) => {
            return Err(ApiError::from(Error::InvalidInput(
                "existing must be update, skip or overwrite".into(),
            )));
        }
    };
    let request: ImportRequest = json_body_up_to(content_type, data, IMPORT_LIMIT).await?;
    let identity = match (request.identity, request.passphrase) {
        (Some(text), _) => Some(SecretsIdentity::identity_file(&zeroize::Zeroizing::new(
            text,
        ))?),
        (None, Some(pass)) => Some(SecretsIdentity::Passphrase(pass.into())),
        (None, None) => None,
    };
    let plan = Change::admin("import", "import", what)
        .long()
        .run(state, &ctx, move |registry| {
            registry.import(request.export, identity.as_ref(), existing, dry_run)
        })
        .await?;
    Ok(Json::ok(&plan))
}
