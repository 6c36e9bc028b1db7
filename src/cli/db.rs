//! `blockyard db ...` and `block rotate-password`: the databases blocks point at, made
//! and changed with an admin block's credentials.

use std::path::PathBuf;

use clap::{Subcommand, ValueEnum};

use super::output::{Printer, details, table};
use crate::error::{Error, Result};
use crate::name::BlockName;
use crate::provision::{DatabaseName, Grant, RoleName};
use crate::registry::{NewDatabase, Registry};
use crate::wire::BlockBody;

#[derive(Debug, Subcommand)]
pub enum DbCommand {
    /// Create a database, its owner role (with a generated password) and a block that
    /// points at them, all or nothing. Running it again changes nothing.
    ///
    /// Examples:
    ///   blockyard db create sage --admin pg-admin --owner databot --block crdb-sage
    ///   blockyard db create --generate-name "My Project" --admin pg-admin --owner app \
    ///     --block my-project --template app_template --extension pgcrypto
    #[command(verbatim_doc_comment)]
    Create {
        /// Database name: a lowercase letter, then lowercase letters, digits and '_'
        /// (at most 63; not postgres, template0/1, supabase, auth, storage, realtime).
        #[arg(required_unless_present = "generate_name")]
        name: Option<String>,
        /// Make the name from a project title (`My Project` → my_project_<suffix>).
        #[arg(long, value_name = "TITLE", conflicts_with = "name")]
        generate_name: Option<String>,
        /// The admin block: a connection whose role may create roles and databases.
        #[arg(long, value_name = "BLOCK")]
        admin: BlockName,
        /// The role to create and give the database to.
        #[arg(long, value_name = "ROLE")]
        owner: String,
        /// The owner exists already and is the admin block's own role: no role is made,
        /// and the new block carries the admin's credentials (a self-hosted setup where
        /// every project's database is used by one user).
        #[arg(long)]
        existing_owner: bool,
        /// The block to store for the new database and role.
        #[arg(long, value_name = "BLOCK")]
        block: BlockName,
        /// Copy this database (PostgreSQL; no other session may be connected to it).
        #[arg(long, value_name = "DATABASE")]
        template: Option<String>,
        /// Enable an extension in the new database (PostgreSQL); repeat for several.
        #[arg(long = "extension", value_name = "NAME")]
        extensions: Vec<String>,
    },
    /// Run SQL files with a block's own credentials: %%USER%% (the login name),
    /// %%ROLE%% (the role: a pooler's `role.project` login without `.project`),
    /// %%PASSWORD%% and %%DATABASE%% are replaced by the block's values (quoted as their
    /// place needs), in one transaction on PostgreSQL; the first error stops it, with
    /// file:line. The block's `requires` are checked after, and what is unmet is said.
    ///
    /// Example: blockyard db apply crdb-sage schema/001.sql schema/002.sql
    #[command(verbatim_doc_comment)]
    Apply {
        /// The block to connect as.
        block: BlockName,
        /// SQL files, applied in this order.
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// Roles besides a database's owner.
    #[command(subcommand)]
    User(UserCommand),
    /// List the databases on the admin block's server: owner, size, and the blocks that
    /// point at each.
    #[command(visible_alias = "list")]
    Ls {
        /// The admin block: a connection to the server to list.
        #[arg(long, value_name = "BLOCK")]
        admin: BlockName,
    },
    /// Drop a database (and everything in it). Blocks that point at it are listed, or
    /// deleted with --delete-blocks.
    ///
    /// Examples:
    ///   blockyard db ls --admin pg-admin               # which blocks point at it
    ///   blockyard db drop app --admin pg-admin --yes
    ///   blockyard db drop app --admin pg-admin --drop-role app_owner --delete-blocks --yes
    #[command(verbatim_doc_comment)]
    Drop {
        /// The database to drop.
        name: String,
        /// The admin block: a connection whose role may drop it.
        #[arg(long, value_name = "BLOCK")]
        admin: BlockName,
        /// Also drop this role (e.g. the database's owner).
        #[arg(long, value_name = "ROLE")]
        drop_role: Option<String>,
        /// Delete the blocks that point at the database.
        #[arg(long)]
        delete_blocks: bool,
        /// Confirm: the database and its data are gone for good.
        #[arg(long)]
        yes: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Create a role with a generated password, grant it access to a database, and
    /// store a block for it.
    ///
    /// Example: blockyard db user create reporter --admin pg-admin --grant read \
    ///            --on-database sage --block sage-reader
    #[command(verbatim_doc_comment)]
    Create {
        /// The role to create (same rules as a database name).
        role: String,
        /// The admin block: a connection whose role may create roles and grant.
        #[arg(long, value_name = "BLOCK")]
        admin: BlockName,
        /// What the role may do: read (SELECT), write (and INSERT, UPDATE, DELETE), all.
        #[arg(long, value_enum)]
        grant: GrantArg,
        /// The database the role gets access to.
        #[arg(long, value_name = "DATABASE")]
        on_database: String,
        /// The block to store for the new role.
        #[arg(long, value_name = "BLOCK")]
        block: BlockName,
    },
}

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum GrantArg {
    Read,
    Write,
    All,
}

pub fn run(cmd: DbCommand, registry: &Registry, out: &Printer) -> Result<()> {
    match cmd {
        DbCommand::Create {
            name,
            generate_name,
            admin,
            owner,
            block,
            template,
            extensions,
            existing_owner,
        } => {
            let database = match (name, generate_name) {
                (Some(name), _) => DatabaseName::parse(&name)?,
                (None, Some(title)) => DatabaseName::generate(&title)?,
                (None, None) => {
                    return Err(Error::InvalidInput(
                        "give a database name or --generate-name".into(),
                    ));
                }
            };
            let new = NewDatabase {
                admin: admin.to_string(),
                database,
                owner: RoleName::parse(&owner)?,
                block,
                template,
                extensions,
                existing_owner,
            };
            create(registry, &new, out)
        }
        DbCommand::Apply { block, files } => apply(registry, &block, &files, out),
        DbCommand::User(UserCommand::Create {
            role,
            admin,
            grant,
            on_database,
            block,
        }) => create_user(registry, &admin, &role, grant, &on_database, &block, out),
        DbCommand::Ls { admin } => list(registry, &admin, out),
        DbCommand::Drop {
            name,
            admin,
            drop_role,
            delete_blocks,
            yes,
        } => drop(registry, &name, &admin, drop_role, delete_blocks, yes, out),
    }
}

fn create(registry: &Registry, new: &NewDatabase, out: &Printer) -> Result<()> {
    let done = registry.create_database(new)?;
    out.emit(&done, || {
        let mut text = done.steps.join("\n");
        text.push_str(&format!(
            "\nblock {} connects to database {} as {} (the password is stored, never \
             shown: `blockyard block test {}`)",
            done.block, done.database, done.role, done.block
        ));
        text
    });
    Ok(())
}

fn create_user(
    registry: &Registry,
    admin: &str,
    role: &str,
    grant: GrantArg,
    database: &str,
    block: &BlockName,
    out: &Printer,
) -> Result<()> {
    let grant = match grant {
        GrantArg::Read => Grant::Read,
        GrantArg::Write => Grant::Write,
        GrantArg::All => Grant::All,
    };
    let role = RoleName::parse(role)?;
    let database = DatabaseName::parse(database)?;
    let done = registry.create_database_user(admin, &role, grant, &database, block)?;
    out.emit(&done, || done.steps.join("\n"));
    Ok(())
}

fn apply(registry: &Registry, block: &str, files: &[PathBuf], out: &Printer) -> Result<()> {
    let mut texts = Vec::new();
    for file in files {
        let text = std::fs::read_to_string(file)
            .map_err(|err| Error::io(format!("reading {}", file.display()), err))?;
        texts.push((file.display().to_string(), text));
    }
    let applied = registry.apply_schema(block, &texts)?;
    let count = applied.statements;
    let report = serde_json::json!({"block": block, "files": files.len(),
        "statements": count, "unmet": applied.unmet});
    for unmet in &applied.unmet {
        eprintln!("warning: block {block} requires {unmet}, which its database still lacks");
    }
    out.emit(&report, || {
        format!(
            "applied {count} statement(s) from {} file(s) as block {block}",
            files.len()
        )
    });
    Ok(())
}

fn list(registry: &Registry, admin: &str, out: &Printer) -> Result<()> {
    let databases = registry.list_databases(admin)?;
    out.emit(&databases, || {
        table(
            &["DATABASE", "OWNER", "SIZE", "BLOCKS"],
            databases.iter().map(|d| {
                vec![
                    d.database.name.clone(),
                    d.database.owner.clone().unwrap_or_default(),
                    d.database.size.map_or("-".into(), human_size),
                    d.blocks.join(", "),
                ]
            }),
        )
    });
    Ok(())
}

fn human_size(bytes: i64) -> String {
    let units = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < units.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    match unit {
        0 => format!("{bytes} B"),
        _ => format!("{value:.1} {}", units[unit]),
    }
}

fn drop(
    registry: &Registry,
    name: &str,
    admin: &str,
    drop_role: Option<String>,
    delete_blocks: bool,
    yes: bool,
    out: &Printer,
) -> Result<()> {
    let database = DatabaseName::parse(name)?;
    let role = drop_role.as_deref().map(RoleName::parse).transpose()?;
    if !yes {
        return Err(Error::InvalidInput(format!(
            "dropping database {name} deletes it and all its data for good; pass --yes"
        )));
    }
    let blocks = registry.drop_database(admin, &database, role.as_ref())?;
    if delete_blocks {
        for block in &blocks {
            registry.delete_block(block, None)?;
        }
    }
    let report = serde_json::json!({
        "dropped": name, "role_dropped": role.as_ref().map(|r| r.to_string()),
        "blocks": blocks, "blocks_deleted": delete_blocks,
    });
    out.emit(&report, || {
        let mut text = format!("dropped database {name}");
        if let Some(role) = &role {
            text.push_str(&format!(" and role {role}"));
        }
        match (blocks.is_empty(), delete_blocks) {
            (true, _) => {}
            (false, true) => text.push_str(&format!("; deleted blocks {}", blocks.join(", "))),
            (false, false) => text.push_str(&format!(
                "; blocks still pointing at it: {} (`blockyard block delete NAME`, or \
                 --delete-blocks next time)",
                blocks.join(", ")
            )),
        }
        text
    });
    Ok(())
}

/// `block rotate-password NAME --admin ADMIN`.
pub fn rotate_password(registry: &Registry, name: &str, admin: &str, out: &Printer) -> Result<()> {
    let block = registry.rotate_password(name, admin)?;
    out.emit(&BlockBody::of(&block, false), || {
        details(&[
            (
                "rotated",
                format!("block {} (now version {})", block.name, block.version),
            ),
            (
                "password",
                "new, set on the role and stored; never shown".into(),
            ),
        ])
    });
    Ok(())
}
