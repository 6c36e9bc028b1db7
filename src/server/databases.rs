//! The database side over HTTP (admin tokens only): `POST /databases`, `GET /databases`,
//! `POST /databases/{name}/users`, `DELETE /databases/{name}`, `POST
//! /blocks/{name}/apply` and `POST /blocks/{name}/rotate-password`. Each use of an admin
//! block's password is on record (`use-admin-block`) before it is used, like a secret
//! read; each change is audited like a block change.

use rocket::http::Status;
use rocket::{FromForm, delete, get, post};

use super::guard::Ctx;
use super::http::Body;
use super::policy::{Access, Change, audit, audited, authorize};
use super::response::{ApiError, ApiResult, Json};
use super::state::{State, blocking, blocking_long};
use crate::error::Error;
use crate::name::BlockName;
use crate::provision::{DatabaseName, Grant, RoleName};
use crate::registry::NewDatabase;
use crate::wire::{
    Applied, ApplySchema, BlockBody, CreateDatabase, CreateDatabaseUser, DroppedDatabase,
    RotatePassword,
};

/// The database side, mounted under `/api/v1`.
pub fn routes() -> Vec<rocket::Route> {
    rocket::routes![
        create_database,
        list_databases,
        create_user,
        drop_database,
        apply_schema,
        rotate_password,
    ]
}

const PROVISIONING: &str = "provisioning databases (needs admin)";

/// Admin scope, a refusal audited as `action` on `subject`; then the admin block's use
/// on record. For the database routes that change no block.
async fn admin_use(
    state: &State,
    ctx: &Ctx,
    action: &'static str,
    subject: &str,
    admin: &str,
) -> ApiResult<()> {
    let access = Access::admin(Some((action, subject)), PROVISIONING);
    authorize(state, ctx, access).await?;
    let admin = BlockName::parse(admin)?;
    audit(state, ctx, "use-admin-block", Some(&admin), "ok").await
}

#[post("/databases", data = "<body>")]
pub async fn create_database(
    ctx: Ctx,
    state: &rocket::State<State>,
    body: Result<Body<CreateDatabase>, ApiError>,
) -> ApiResult<Json> {
    let Body(body) = body?;
    let block = BlockName::parse(&body.block)?;
    let database = match (&body.database, &body.generate_name) {
        (Some(name), None) => DatabaseName::parse(name)?,
        (None, Some(title)) => DatabaseName::generate(title)?,
        _ => {
            return Err(
                Error::InvalidInput("give database or generate_name (one of them)".into()).into(),
            );
        }
    };
    let new = NewDatabase {
        admin: body.admin.clone(),
        database,
        owner: RoleName::parse(&body.owner)?,
        block: block.clone(),
        template: body.template,
        extensions: body.extensions,
        existing_owner: body.existing_owner,
    };
    let done = Change::admin("db-create", &block, PROVISIONING)
        .using_admin_block(&body.admin)
        .long()
        .run(state, &ctx, move |registry| registry.create_database(&new))
        .await?;
    let status = match done.changed {
        true => Status::Created,
        false => Status::Ok,
    };
    Ok(Json::new(status, &done))
}

#[derive(FromForm)]
pub struct AdminQuery<'r> {
    admin: Option<&'r str>,
    drop_role: Option<&'r str>,
}

fn admin_of(q: &AdminQuery<'_>) -> ApiResult<String> {
    q.admin.map(str::to_owned).ok_or_else(|| {
        Error::InvalidInput("admin: the admin block's name is required".into()).into()
    })
}

#[get("/databases?<q..>")]
pub async fn list_databases(
    ctx: Ctx,
    state: &rocket::State<State>,
    q: AdminQuery<'_>,
) -> ApiResult<Json> {
    let admin = admin_of(&q)?;
    admin_use(state, &ctx, "db-list", &admin, &admin).await?;
    let registry = state.registry.clone();
    let listing = blocking(move || registry.list_databases(&admin)).await?;
    Ok(Json::ok(&listing))
}

#[post("/databases/<name>/users", data = "<body>")]
pub async fn create_user(
    ctx: Ctx,
    state: &rocket::State<State>,
    name: &str,
    body: Result<Body<CreateDatabaseUser>, ApiError>,
) -> ApiResult<Json> {
    let database = DatabaseName::parse(name)?;
    let Body(body) = body?;
    let block = BlockName::parse(&body.block)?;
    let role = RoleName::parse(&body.role)?;
    let grant = Grant::parse(&body.grant)?;
    let (admin, target) = (body.admin.clone(), block.clone());
    let done = Change::admin("db-user-create", &block, PROVISIONING)
        .using_admin_block(&body.admin)
        .long()
        .run(state, &ctx, move |registry| {
            registry.create_database_user(&admin, &role, grant, &database, &target)
        })
        .await?;
    Ok(Json::new(Status::Created, &done))
}

#[delete("/databases/<name>?<q..>")]
pub async fn drop_database(
    ctx: Ctx,
    state: &rocket::State<State>,
    name: &str,
    q: AdminQuery<'_>,
) -> ApiResult<Json> {
    let database = DatabaseName::parse(name)?;
    let admin = admin_of(&q)?;
    let role = q.drop_role.map(RoleName::parse).transpose()?;
    let label = format!("database:{database}");
    admin_use(state, &ctx, "db-drop", &label, &admin).await?;
    let registry = state.registry.clone();
    let (target, dropped_role) = (database.clone(), role.clone());
    let result =
        blocking_long(move || registry.drop_database(&admin, &target, dropped_role.as_ref())).await;
    let blocks = audited(state, &ctx, "db-drop", &label, result).await?;
    Ok(Json::ok(&DroppedDatabase {
        dropped: database.to_string(),
        role_dropped: role.map(|r| r.to_string()),
        blocks,
    }))
}

#[post("/blocks/<name>/apply", data = "<body>")]
pub async fn apply_schema(
    ctx: Ctx,
    state: &rocket::State<State>,
    name: Result<BlockName, Error>,
    body: Result<Body<ApplySchema>, ApiError>,
) -> ApiResult<Json> {
    let name = name?;
    let Body(body) = body?;
    let access = Access::admin(Some(("db-apply", &name)), "applying schemas (needs admin)");
    authorize(state, &ctx, access).await?;
    // The block's own password is used inside the server: a secret read, on record first.
    audit(state, &ctx, "use-block-secret", Some(&name), "ok").await?;
    let files: Vec<(String, String)> = body.files.into_iter().map(|f| (f.name, f.sql)).collect();
    let count = files.len();
    let registry = state.registry.clone();
    let target = name.clone();
    let result = blocking_long(move || registry.apply_schema(&target, &files)).await;
    let applied = audited(state, &ctx, "db-apply", &name, result).await?;
    Ok(Json::ok(&Applied {
        block: name.to_string(),
        files: count,
        statements: applied.statements,
        unmet: applied.unmet,
    }))
}

#[post("/blocks/<name>/rotate-password", data = "<body>")]
pub async fn rotate_password(
    ctx: Ctx,
    state: &rocket::State<State>,
    name: Result<BlockName, Error>,
    body: Result<Body<RotatePassword>, ApiError>,
) -> ApiResult<Json> {
    let name = name?;
    let Body(body) = body?;
    let (admin, target) = (body.admin.clone(), name.clone());
    let block = Change::admin("rotate-password", &name, PROVISIONING)
        .using_admin_block(&body.admin)
        .long()
        .run(state, &ctx, move |registry| {
            registry.rotate_password(&target, &admin)
        })
        .await?;
    Ok(Json::ok(&BlockBody::of(&block, false)).etag(block.version))
}
