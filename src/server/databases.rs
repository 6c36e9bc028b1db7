//! The database side over HTTP (admin tokens only): `POST /databases`, `GET /databases`,
//! `POST /databases/{name}/users`, `DELETE /databases/{name}`, `POST
//! /blocks/{name}/apply` and `POST /blocks/{name}/rotate-password`. Each use of an admin
//! block's password is on record (`use-admin-block`) before it is used, like a secret
//! read; each change is audited like a block change.

use std::time::Duration;

use rocket::data::Data;
use rocket::http::{ContentType, Status};
use rocket::{FromForm, delete, get, post};

use super::api::{Access, audit, audited, authorize, changed, for_change};
use super::http::{ApiResult, Ctx, Json, json_body};
use super::{State, blocking, blocking_long};
use crate::auth::Actor;
use crate::error::Error;
use crate::name::BlockName;
use crate::provision::{DatabaseName, Grant, RoleName};
use crate::registry::{NewDatabase, ROTATION_LOCK, Registry};
use crate::wire::{
    Applied, ApplySchema, BlockBody, CreateDatabase, CreateDatabaseUser, DroppedDatabase,
    RotatePassword,
};

/// Admin scope, a refusal audited as `action` on `subject`; then the admin block's use
/// on record.
async fn admin_use(
    state: &State,
    ctx: &Ctx,
    actor: &Actor,
    action: &'static str,
    subject: &str,
    admin: &str,
) -> ApiResult<()> {
    let access = Access::admin(
        Some((action, subject)),
        "provisioning databases (needs admin)",
    );
    authorize(state, ctx, actor, access).await?;
    let admin = BlockName::parse(admin)?;
    audit(state, ctx, actor, "use-admin-block", Some(&admin), "ok").await
}

#[post("/databases", data = "<data>")]
pub async fn create_database(
    ctx: Ctx,
    state: &rocket::State<State>,
    content_type: Option<&ContentType>,
    data: Data<'_>,
) -> ApiResult<Json> {
    let actor = ctx.actor();
    let body: CreateDatabase = json_body(content_type, data).await?;
    let block = BlockName::parse(&body.block)?;
    admin_use(state, &ctx, actor, "db-create", &block, &body.admin).await?;
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
        admin: body.admin,
        database,
        owner: RoleName::parse(&body.owner)?,
        block: block.clone(),
        template: body.template,
        extensions: body.extensions,
    };
    let registry = for_change(state, &ctx, actor, "db-create", &block);
    let result = blocking_long(move || registry.create_database(&new)).await;
    let done = changed(state, &ctx, actor, "db-create", &block, result).await?;
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
    let actor = ctx.actor();
    let admin = admin_of(&q)?;
    admin_use(state, &ctx, actor, "db-list", &admin, &admin).await?;
    let registry = state.registry.clone();
    let listing = blocking(move || registry.list_databases(&admin)).await?;
    Ok(Json::ok(&listing))
}

#[post("/databases/<name>/users", data = "<data>")]
pub async fn create_user(
    ctx: Ctx,
    state: &rocket::State<State>,
    name: &str,
    content_type: Option<&ContentType>,
    data: Data<'_>,
) -> ApiResult<Json> {
    let actor = ctx.actor();
    let database = DatabaseName::parse(name)?;
    let body: CreateDatabaseUser = json_body(content_type, data).await?;
    let block = BlockName::parse(&body.block)?;
    admin_use(state, &ctx, actor, "db-user-create", &block, &body.admin).await?;
    let role = RoleName::parse(&body.role)?;
    let grant = Grant::parse(&body.grant)?;
    let registry = for_change(state, &ctx, actor, "db-user-create", &block);
    let target = block.clone();
    let result = blocking_long(move || {
        registry.create_database_user(&body.admin, &role, grant, &database, &target)
    })
    .await;
    let done = changed(state, &ctx, actor, "db-user-create", &block, result).await?;
    Ok(Json::new(Status::Created, &done))
}

#[delete("/databases/<name>?<q..>")]
pub async fn drop_database(
    ctx: Ctx,
    state: &rocket::State<State>,
    name: &str,
    q: AdminQuery<'_>,
) -> ApiResult<Json> {
    let actor = ctx.actor();
    let database = DatabaseName::parse(name)?;
    let admin = admin_of(&q)?;
    let role = q.drop_role.map(RoleName::parse).transpose()?;
    let label = format!("database:{database}");
    admin_use(state, &ctx, actor, "db-drop", &label, &admin).await?;
    let registry = state.registry.clone();
    let (target, dropped_role) = (database.clone(), role.clone());
    let result =
        blocking_long(move || registry.drop_database(&admin, &target, dropped_role.as_ref())).await;
    let blocks = audited(state, &ctx, actor, "db-drop", &label, result).await?;
    Ok(Json::ok(&DroppedDatabase {
        dropped: database.to_string(),
        role_dropped: role.map(|r| r.to_string()),
        blocks,
    }))
}

#[post("/blocks/<name>/apply", data = "<data>")]
pub async fn apply_schema(
    ctx: Ctx,
    state: &rocket::State<State>,
    name: Result<BlockName, Error>,
    content_type: Option<&ContentType>,
    data: Data<'_>,
) -> ApiResult<Json> {
    let actor = ctx.actor();
    let name = name?;
    let body: ApplySchema = json_body(content_type, data).await?;
    let access = Access::admin(Some(("db-apply", &name)), "applying schemas (needs admin)");
    authorize(state, &ctx, actor, access).await?;
    // The block's own password is used inside the server: a secret read, on record first.
    audit(state, &ctx, actor, "use-block-secret", Some(&name), "ok").await?;
    let files: Vec<(String, String)> = body.files.into_iter().map(|f| (f.name, f.sql)).collect();
    let count = files.len();
    let registry = state.registry.clone();
    let target = name.clone();
    let result = blocking_long(move || registry.apply_schema(&target, &files)).await;
    let statements = audited(state, &ctx, actor, "db-apply", &name, result).await?;
    Ok(Json::ok(&Applied {
        block: name.to_string(),
        files: count,
        statements,
    }))
}

#[post("/blocks/<name>/rotate-password", data = "<data>")]
pub async fn rotate_password(
    ctx: Ctx,
    state: &rocket::State<State>,
    name: Result<BlockName, Error>,
    content_type: Option<&ContentType>,
    data: Data<'_>,
) -> ApiResult<Json> {
    let actor = ctx.actor();
    let name = name?;
    let body: RotatePassword = json_body(content_type, data).await?;
    admin_use(state, &ctx, actor, "rotate-password", &name, &body.admin).await?;
    let registry = for_change(state, &ctx, actor, "rotate-password", &name);
    let target = name.clone();
    let result = blocking_long(move || registry.rotate_password(&target, &body.admin)).await;
    let block = changed(state, &ctx, actor, "rotate-password", &name, result).await?;
    Ok(Json::ok(&BlockBody::of(&block, false)).etag(block.version))
}

/// Runs scheduled password rotations (`rotation.every`) every `every`, while this server
/// holds the store's rotation lock (one server at a time when several share
/// PostgreSQL). Each rotation is audited as `rotate-password` by `scheduler`, committed
/// with the block's new version, before the admin block's password is used.
pub fn rotation_scheduler(registry: Registry, every: Duration) -> rocket::fairing::AdHoc {
    rocket::fairing::AdHoc::on_liftoff("rotation scheduler", move |_| {
        Box::pin(async move {
            rocket::tokio::spawn(async move {
                let mut ticks = rocket::tokio::time::interval(every);
                loop {
                    ticks.tick().await;
                    let registry = registry.clone();
                    let _ = rocket::tokio::task::spawn_blocking(move || run_due(&registry)).await;
                }
            });
        })
    })
}

fn run_due(registry: &Registry) -> crate::error::Result<()> {
    registry
        .exclusively(ROTATION_LOCK, || {
            for (block, schedule) in registry.due_rotations()? {
                let request_id = format!("scheduler-{}", uuid::Uuid::new_v4().simple());
                if let Err(err) = registry.run_scheduled_rotation(&block, &schedule, request_id) {
                    super::http::log_line(serde_json::json!({"scheduler": "rotate-password",
                        "block": block, "error": err.code(), "detail": err.to_string()}));
                }
            }
            Ok(())
        })?
        .unwrap_or(Ok(()))
}
