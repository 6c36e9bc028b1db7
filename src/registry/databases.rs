//! The database side of blocks as the registry offers it: a database and its owner
//! role created all or nothing with the block that points at them, more roles with
//! grants, schema files applied with a block's own credentials, databases listed and
//! dropped, and a block's password rotated in the database and the store with no
//! moment at which the store lacks a password that works.

use serde_json::{Value, json};

use super::crash::crash_point;
use super::handle::Registry;
use super::rotation::set_rotation;
use crate::block::{Block, NewBlock};

use crate::connect::{ConnectionInfo, connection_info};
use crate::error::{Error, ProvisionCode, Result};
use crate::name::{BlockName, ToBlockName};
use crate::provision::schema::{self, Values};
use crate::provision::{
    DatabaseListing, DatabaseName, Dialect, Grant, Provisioned, RoleName, SchemaApplied, Session,
    generate_password, sql, verify_login,
};

const CONNECTOR: &str = "sqlalchemy-connector";

/// `db create`.
#[derive(Clone, Debug)]
pub struct NewDatabase {
    pub admin: String,
    pub database: DatabaseName,
    pub owner: RoleName,
    pub block: BlockName,
    pub template: Option<String>,
    pub extensions: Vec<String>,
    /// The owner is the admin block's own role (shared by every database it makes,
    /// as in a self-hosted setup where all projects use one user): no role is created.
    pub existing_owner: bool,
}

/// What was created so far, undone in reverse when a later step fails.
#[derive(Default)]
struct Undo {
    role: Option<RoleName>,
    database: Option<DatabaseName>,
    /// A database where the role may hold grants (PostgreSQL drops a role only once
    /// they are gone).
    grants_in: Option<DatabaseName>,
}

impl Undo {
    fn run(self, admin: &mut Session) {
        let dialect = admin.dialect;
        if let (Some(role), Some(db), Dialect::Postgres) = (&self.role, &self.grants_in, dialect)
            && let Ok(mut inside) = admin.open_database(db.as_str())
            && let Ok(role) = sql::ident(dialect, role.as_str())
        {
            let _ = inside.run("undo: drop grants", &format!("DROP OWNED BY {role}"));
        }
        if let Some(db) = &self.database
            && let Ok(statement) = sql::drop_database(dialect, db)
        {
            let _ = admin.run("undo: drop database", &statement);
        }
        if let Some(role) = &self.role
            && let Ok(statement) = sql::drop_role(dialect, role)
        {
            let _ = admin.run("undo: drop role", &statement);
        }
    }
}

impl Registry {
    /// A session with an admin block's credentials.
    pub fn admin_session(&self, admin: &str) -> Result<Session> {
        let block = self.load_block(admin)?;
        let info = connection_info(&block).map_err(|err| {
            Error::provision(
                ProvisionCode::NotAnAdminBlock,
                format!("block {admin:?} cannot be an admin block: {err}"),
            )
        })?;
        Session::open(&info)
    }

    /// Creates role `owner` (with a generated password), database `database` owned by
    /// it (from `template`, with `extensions`), and block `block` pointing at them. With
    /// `existing_owner`, the owner is the admin block's own role, as it is (no role is
    /// made, and the block carries the admin's credentials). All or nothing: a failed
    /// step undoes the ones before it. A re-run after success changes nothing and says so.
    pub fn create_database(&self, new: &NewDatabase) -> Result<Provisioned> {
        let mut admin = self.admin_session(&new.admin)?;
        if let Some(done) = self.already_provisioned(&mut admin, new)? {
            return Ok(done);
        }
        check_create(&mut admin, new)?;
        let password = match new.existing_owner {
            true => admin.info().password.clone().map(zeroize::Zeroizing::new),
            false => Some(generate_password()),
        };
        if let Some(password) = &password {
            admin.hide(password);
        }
        let mut undo = Undo::default();
        let mut steps = Vec::new();
        let password = password.as_deref().map(String::as_str);
        match self.create_database_steps(&mut admin, new, password, &mut undo, &mut steps) {
            Ok(()) => Ok(Provisioned {
                database: new.database.to_string(),
                role: new.owner.to_string(),
                block: new.block.to_string(),
                changed: true,
                steps,
                connection_string: self.connection_string(&new.block),
            }),
            Err(err) => {
                undo.run(&mut admin);
                Err(err)
            }
        }
    }

    /// The steps of [`Registry::create_database`], each recorded in `undo` once done.
    fn create_database_steps(
        &self,
        admin: &mut Session,
        new: &NewDatabase,
        password: Option<&str>,
        undo: &mut Undo,
        steps: &mut Vec<String>,
    ) -> Result<()> {
        let dialect = admin.dialect;
        let statements =
            sql::create_database(dialect, &new.database, &new.owner, new.template.as_deref())?;
        if !new.existing_owner {
            let create_role = sql::create_role(dialect, &new.owner, password.unwrap_or_default())?;
            admin.run("create role", &create_role)?;
            undo.role = Some(new.owner.clone());
            steps.push(format!("created role {}", new.owner));
            if let Some(grant) = admin.membership_for(&new.owner)? {
                admin.run("grant the new role to the admin role", &grant)?;
                steps.push(format!(
                    "granted role {} to the admin role (not a superuser), so it may give \
                     it the database and drop both later",
                    new.owner
                ));
            }
        }
        for statement in &statements {
            admin
                .run("create database", statement)
                .map_err(|err| refine_create_error(admin, new, err))?;
            undo.database = Some(new.database.clone());
        }
        steps.push(format!("created database {}", new.database));
        if !new.extensions.is_empty() {
            let mut inside = admin.open_database(new.database.as_str())?;
            for extension in &new.extensions {
                let statement = sql::create_extension(dialect, extension)?;
                inside.run(&format!("create extension {extension}"), &statement)?;
                steps.push(format!("enabled extension {extension}"));
            }
        }
        let info = block_info(admin.info(), &new.database, &new.owner, password);
        self.create_block(NewBlock {
            name: new.block.clone(),
            block_type: CONNECTOR.into(),
            document: json!({ "connection_info": info.to_components() }),
            id: None,
            replace_deleted: false,
        })?;
        steps.push(format!("stored block {}", new.block));
        Ok(())
    }

    /// A stored block's URL with its password masked, for answers that name it.
    fn connection_string(&self, block: &BlockName) -> Option<String> {
        let block = self.get_block_masked(block).ok()?;
        connection_info(&block).ok()?.display_url(false).ok()
    }

    /// A re-run of a `db create` that succeeded: the block points at this database as
    /// this role on the admin's server, and both exist.
    fn already_provisioned(
        &self,
        admin: &mut Session,
        new: &NewDatabase,
    ) -> Result<Option<Provisioned>> {
        let block = match self.get_block_masked(&new.block) {
            Ok(block) => block,
            Err(err) if err.code() == "BLOCK_NOT_FOUND" => return Ok(None),
            Err(err) => return Err(err),
        };
        let info = connection_info(&block)?;
        let same = info.database == new.database.as_str()
            && info.username.as_deref() == Some(new.owner.as_str())
            && info.tcp_host() == admin.info().tcp_host()
            && info.effective_port() == admin.info().effective_port();
        if !same {
            return Err(Error::BlockAlreadyExists(new.block.to_string()));
        }
        if !(admin.database_exists(new.database.as_str())? && admin.role_exists(&new.owner)?) {
            return Err(Error::provision(
                ProvisionCode::StepFailed,
                format!(
                    "block {} points at database {} as {}, but the server lacks one of \
                     them; delete the block or recreate them by hand",
                    new.block, new.database, new.owner
                ),
            ));
        }
        Ok(Some(Provisioned {
            database: new.database.to_string(),
            role: new.owner.to_string(),
            block: new.block.to_string(),
            changed: false,
            steps: vec![
                "unchanged: the database, its owner and the block are already there".into(),
            ],
            connection_string: info.display_url(false).ok(),
        }))
    }

    /// Creates role `role` with a generated password, grants it `grant` on
    /// `database`, and stores block `block` for it. All or nothing, like
    /// [`Registry::create_database`].
    pub fn create_database_user(
        &self,
        admin: &str,
        role: &RoleName,
        grant: Grant,
        database: &DatabaseName,
        block: &BlockName,
    ) -> Result<Provisioned> {
        let mut admin = self.admin_session(admin)?;
        let dialect = admin.dialect;
        if self.get_block_masked(block).is_ok() {
            return Err(Error::BlockAlreadyExists(block.to_string()));
        }
        check_new_user(&mut admin, database, role)?;
        let owner = match dialect {
            Dialect::Mysql => String::new(),
            _ => admin.database_owner(database)?.unwrap_or_default(),
        };
        let password = generate_password();
        admin.hide(&password);
        let mut undo = Undo::default();
        let result = (|| {
            admin.run("create role", &sql::create_role(dialect, role, &password)?)?;
            undo.role = Some(role.clone());
            undo.grants_in = Some(database.clone());
            let statements = sql::grant(dialect, grant, database, role, &owner)?;
            run_grants(&mut admin, database, &statements)?;
            let info = block_info(admin.info(), database, role, Some(&password));
            self.create_block(NewBlock {
                name: block.clone(),
                block_type: CONNECTOR.into(),
                document: json!({ "connection_info": info.to_components() }),
                id: None,
                replace_deleted: false,
            })
        })();
        match result {
            Ok(_) => Ok(Provisioned {
                database: database.to_string(),
                role: role.to_string(),
                block: block.to_string(),
                changed: true,
                steps: vec![
                    format!("created role {role}"),
                    format!("granted {grant:?} on {database}").to_lowercase(),
                    format!("stored block {block}"),
                ],
                connection_string: self.connection_string(block),
            }),
            Err(err) => {
                undo.run(&mut admin);
                Err(err)
            }
        }
    }

    /// Databases on the admin's server, each with the blocks that point at it there.
    pub fn list_databases(&self, admin: &str) -> Result<Vec<DatabaseListing>> {
        let mut session = self.admin_session(admin)?;
        let databases = session.databases()?;
        let pointing = self.blocks_pointing_at(session.info())?;
        Ok(databases
            .into_iter()
            .map(|database| DatabaseListing {
                blocks: pointing
                    .iter()
                    .filter(|(db, _)| *db == database.name)
                    .map(|(_, b)| b.clone())
                    .collect(),
                database,
            })
            .collect())
    }

    /// (database, block) for every connector block on the server `admin` connects to.
    fn blocks_pointing_at(&self, admin: &ConnectionInfo) -> Result<Vec<(String, String)>> {
        let server = (admin.tcp_host(), admin.effective_port());
        let filter = crate::block::BlockFilter {
            block_type: Some(CONNECTOR.into()),
            ..Default::default()
        };
        let mut pointing = Vec::new();
        for summary in self.list_blocks(&filter)? {
            let Ok(block) = self.get_block_masked(&summary.name) else {
                continue;
            };
            if let Ok(info) = connection_info(&block)
                && (info.tcp_host(), info.effective_port()) == server
            {
                pointing.push((info.database.clone(), block.name.to_string()));
            }
        }
        Ok(pointing)
    }

    /// Drops a database (and, with `drop_role`, its owner role); the blocks that
    /// pointed at it are returned, to be deleted or kept by the caller.
    pub fn drop_database(
        &self,
        admin: &str,
        database: &DatabaseName,
        drop_role: Option<&RoleName>,
    ) -> Result<Vec<String>> {
        let mut session = self.admin_session(admin)?;
        if let Some(role) = drop_role
            && session.info().username.as_deref() == Some(role.as_str())
        {
            return Err(Error::InvalidInput(format!(
                "--drop-role {role} is the admin block's own role; it is never dropped (a \
                 database made with --existing-owner shares it)"
            )));
        }
        if !session.database_exists(database.as_str())? {
            return Err(Error::provision(
                ProvisionCode::DatabaseNotFound,
                format!("database {:?} does not exist", database.as_str()),
            ));
        }
        let blocks: Vec<String> = self
            .blocks_pointing_at(session.info())?
            .into_iter()
            .filter(|(db, _)| db == database.as_str())
            .map(|(_, block)| block)
            .collect();
        let dialect = session.dialect;
        session.run("drop database", &sql::drop_database(dialect, database)?)?;
        if let Some(role) = drop_role {
            session.run("drop role", &sql::drop_role(dialect, role)?)?;
        }
        Ok(blocks)
    }

    /// Applies schema files with the block's own credentials: placeholders replaced,
    /// statements run in order in one transaction where the dialect allows (PostgreSQL),
    /// stopping at the first error with `file:line`. The block's `requires` are checked
    /// after, not before: a schema file is how a database comes to meet them (`CREATE
    /// EXTENSION pgcrypto`); what is still unmet is returned.
    pub fn apply_schema(&self, name: &str, files: &[(String, String)]) -> Result<SchemaApplied> {
        let block = self.load_block(name)?;
        let doc = block.document().unwrap_or_default();
        let info = connection_info(&block)?;
        let mut session = Session::open(&info)?;
        let dialect = session.dialect;
        let password = info.password.clone().unwrap_or_default();
        let values = Values {
            user: info.username.as_deref().unwrap_or_default(),
            password: &password,
            database: &info.database,
        };
        let transactional = dialect == Dialect::Postgres;
        if transactional {
            session.run_batch("BEGIN").map_err(schema_error("BEGIN"))?;
        }
        let mut count = 0;
        for (file, text) in files {
            let text = schema::substitute(dialect, text, &values)?;
            for statement in schema::split(&text) {
                let at = format!("{file}:{}", statement.line);
                if let Err(message) = session.run_batch(&statement.sql) {
                    if transactional {
                        let _ = session.run_batch("ROLLBACK");
                    }
                    return Err(schema_error(&at)(message));
                }
                count += 1;
            }
        }
        if transactional {
            session
                .run_batch("COMMIT")
                .map_err(schema_error("COMMIT"))?;
        }
        let report = crate::connect::test(name, &doc, std::time::Duration::from_secs(10))?;
        let unmet = report
            .requirements
            .iter()
            .filter(|r| !r.ok)
            .map(|r| format!("{} ({})", r.requirement, r.found))
            .collect();
        Ok(SchemaApplied {
            statements: count,
            unmet,
        })
    }

    /// Rotates a block's password in its database and in the store. The new password
    /// is stored (sealed, as `rotation.pending_password`) before the role changes, so
    /// the store always holds a password that works; a re-run after a crash finishes a
    /// pending rotation instead of starting another.
    pub fn rotate_password(
        &self,
        name: &(impl ToBlockName + ?Sized),
        admin: &str,
    ) -> Result<Block> {
        let name = &*name.to_block_name()?;
        let block = self.load_block(name)?;
        let mut doc = block.document().unwrap_or_default();
        let info = connection_info(&block)?;
        let role = RoleName::parse(info.username.as_deref().unwrap_or_default())?;
        let mut session = self.admin_session(admin)?;
        let dialect = session.dialect;
        let pending = doc
            .pointer("/rotation/pending_password")
            .and_then(Value::as_str)
            .map(|p| zeroize::Zeroizing::new(p.to_owned()));
        let (password, version) = match pending {
            Some(password) => (password, block.version),
            None => {
                let password = generate_password();
                set_rotation(&mut doc, Some(&password));
                // The rotation's own writes are the only ones that set the pending
                // password, so they skip the guard every other write goes through.
                let saved = self.source.update_block(
                    name,
                    doc.clone(),
                    Some(block.version),
                    self.record(),
                )?;
                crash_point("pending-stored");
                (password, saved.version)
            }
        };
        session.hide(&password);
        // Setting the pending password again is harmless, so a re-run simply does it.
        let statement = sql::set_password(dialect, &role, &password)?;
        if let Err(err) = session.run("set the role's password", &statement) {
            return Err(self.abandon_rotation(name, doc, version, err));
        }
        crash_point("role-altered");
        verify_login(&info, &password)?;
        doc["connection_info"] = {
            let mut done = info.clone();
            done.password = Some(password.to_string());
            match &doc["connection_info"] {
                Value::String(_) => Value::String(done.connection_url()?),
                _ => done.to_components(),
            }
        };
        set_rotation(&mut doc, None);
        self.source
            .update_block(name, doc, Some(version), self.record())
    }
}

impl Registry {
    /// A rotation whose statement the database refused: the role keeps its password,
    /// so the pending one is dropped and never used again (the next rotation makes a
    /// new password). A connection lost mid-statement says nothing of whether the role
    /// changed, so that pending password stays, for the next run to set again.
    fn abandon_rotation(
        &self,
        name: &BlockName,
        mut doc: Value,
        version: i64,
        err: Error,
    ) -> Error {
        if !matches!(err, Error::Provision { .. }) {
            return err;
        }
        if let Some(rotation) = doc.get_mut("rotation").and_then(Value::as_object_mut) {
            rotation.remove("pending_password");
        }
        match self
            .source
            .update_block(name, doc, Some(version), self.record())
        {
            Ok(_) => err,
            Err(cleared) => cleared,
        }
    }
}

/// What must hold before `db user create` makes anything: the database exists and the
/// role does not.
fn check_new_user(admin: &mut Session, database: &DatabaseName, role: &RoleName) -> Result<()> {
    if !admin.database_exists(database.as_str())? {
        return Err(Error::provision(
            ProvisionCode::DatabaseNotFound,
            format!("database {:?} does not exist", database.as_str()),
        ));
    }
    if admin.role_exists(role)? {
        return Err(Error::provision(
            ProvisionCode::RoleAlreadyExists,
            format!("role {:?} already exists", role.as_str()),
        ));
    }
    Ok(())
}

/// Runs grants where they belong: inside the database (PostgreSQL, CockroachDB), or on
/// the server (MySQL).
fn run_grants(admin: &mut Session, database: &DatabaseName, statements: &[String]) -> Result<()> {
    match admin.dialect {
        Dialect::Mysql => statements.iter().try_for_each(|s| admin.run("grant", s)),
        _ => {
            let mut inside = admin.open_database(database.as_str())?;
            statements.iter().try_for_each(|s| inside.run("grant", s))
        }
    }
}

/// What must hold before `db create` makes anything: the admin may, and neither the
/// database nor the role exists, and the template can be copied.
fn check_create(admin: &mut Session, new: &NewDatabase) -> Result<()> {
    admin.check_may_provision()?;
    if admin.database_exists(new.database.as_str())? {
        return Err(Error::provision(
            ProvisionCode::DatabaseAlreadyExists,
            format!("database {:?} already exists", new.database.as_str()),
        ));
    }
    if new.existing_owner {
        return check_existing_owner(admin, new);
    }
    if admin.role_exists(&new.owner)? {
        return Err(Error::provision(
            ProvisionCode::RoleAlreadyExists,
            format!(
                "role {:?} already exists; choose another --owner (or give it a database \
                 with `db user create`)",
                new.owner.as_str()
            ),
        ));
    }
    match &new.template {
        Some(template) => admin.check_template(template),
        None => Ok(()),
    }
}

/// `--existing-owner`: the role must be the admin block's own, whose credentials the
/// new block carries (another role's password is not Blockyard's to know).
fn check_existing_owner(admin: &mut Session, new: &NewDatabase) -> Result<()> {
    if admin.info().username.as_deref() != Some(new.owner.as_str()) {
        return Err(Error::InvalidInput(format!(
            "--existing-owner {} is not the admin block's role ({}); an existing owner \
             must be the admin's own role, whose credentials the new block carries. To own \
             the database as another role, leave out --existing-owner (a new role is made)",
            new.owner,
            admin.info().username.as_deref().unwrap_or("none")
        )));
    }
    match &new.template {
        Some(template) => admin.check_template(template),
        None => Ok(()),
    }
}

/// A new block's connection: the admin's server (driver, host, port, options), this
/// database, role and password.
fn block_info(
    admin: &ConnectionInfo,
    database: &DatabaseName,
    role: &RoleName,
    password: Option<&str>,
) -> ConnectionInfo {
    let mut info = admin.clone();
    info.database = database.to_string();
    info.username = Some(role.to_string());
    info.password = password.map(str::to_owned);
    info
}

/// A `CREATE DATABASE` failure told apart by the catalogs (PostgreSQL cannot run it
/// where its SQLSTATE could be caught): taken meanwhile, or a template in use.
fn refine_create_error(admin: &mut Session, new: &NewDatabase, err: Error) -> Error {
    if err.code() != "PROVISION_FAILED" {
        return err;
    }
    if admin
        .database_exists(new.database.as_str())
        .unwrap_or(false)
    {
        return Error::provision(
            ProvisionCode::DatabaseAlreadyExists,
            format!("database {:?} already exists", new.database.as_str()),
        );
    }
    if let Some(template) = &new.template
        && let Err(template_err) = admin.check_template(template)
    {
        return template_err;
    }
    if admin.check_may_provision().is_err() {
        return Error::provision(
            ProvisionCode::InsufficientPermissions,
            format!(
                "permission denied to create database {:?}",
                new.database.as_str()
            ),
        );
    }
    refine_by_message(new, err)
}

/// What the server said of a failed `CREATE DATABASE`, where the catalogs cannot tell:
/// diesel does not expose the SQLSTATE, so PostgreSQL's disk-full message and hint
/// (`could not extend file ...: No space left on device`, `Check free disk space.`),
/// and its membership refusal, are read from the (English) text.
fn refine_by_message(new: &NewDatabase, err: Error) -> Error {
    let message = err.to_string();
    let has = |markers: &[&str]| markers.iter().any(|m| message.contains(m));
    if has(&[
        "No space left on device",
        "Check free disk space",
        "could not extend file",
    ]) {
        return Error::provision(
            ProvisionCode::DiskSpaceFull,
            format!(
                "could not create database {:?}: insufficient disk space on the database \
                 server; free space or delete unused databases, then run the same command",
                new.database.as_str()
            ),
        );
    }
    if has(&["must be member of role", "must be able to SET ROLE"]) {
        return Error::provision(
            ProvisionCode::InsufficientPermissions,
            format!(
                "the admin role may not give database {:?} to role {:?}; as a superuser, \
                 run: GRANT \"{}\" TO <the admin block's role>",
                new.database.as_str(),
                new.owner.as_str(),
                new.owner.as_str()
            ),
        );
    }
    err
}

fn schema_error(at: &str) -> impl Fn(String) -> Error + '_ {
    move |message| Error::provision(ProvisionCode::SchemaFailed, format!("{at}: {message}"))
}
