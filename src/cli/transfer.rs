//! `blockyard export` and `blockyard import`: blocks moved between stores as one JSON
//! file, secrets masked or sealed with age; `blockyard apply -f`: desired blocks made true.

use std::path::{Path, PathBuf};

use clap::Args;

use super::output::{Printer, to_json};
use crate::block::BlockFilter;
use crate::error::{Error, Result};
use crate::name::BlockName;
use crate::registry::{
    ApplyOptions, ApplyPlan, Existing, Registry, SecretRefs, SecretsIdentity, SecretsKey,
    parse_apply_file,
};
use crate::wire::ExportFile;

/// `blockyard export`.
#[derive(Debug, Args)]
pub struct ExportArgs {
    /// Only blocks whose names start with this.
    #[arg(long)]
    pub prefix: Option<String>,
    /// Only blocks of this type.
    #[arg(long = "type", short = 't')]
    pub block_type: Option<String>,
    /// Only this block; repeat for several.
    #[arg(long = "name", value_name = "NAME")]
    pub names: Vec<BlockName>,
    /// Include the secrets, encrypted with age to --recipient or a --passphrase-file
    /// (never in plaintext).
    #[arg(long)]
    pub include_secrets: bool,
    /// An age public key (age1...) that may open the secrets.
    #[arg(long, value_name = "AGE_PUBLIC_KEY", requires = "include_secrets")]
    pub recipient: Option<String>,
    /// A file whose first line is the passphrase that opens the secrets.
    #[arg(
        long,
        value_name = "FILE",
        requires = "include_secrets",
        conflicts_with = "recipient"
    )]
    pub passphrase_file: Option<PathBuf>,
}

/// `blockyard import`.
#[derive(Debug, Args)]
pub struct ImportArgs {
    /// An export file (`blockyard export > FILE`); `-` reads stdin.
    pub file: PathBuf,
    /// Show the plan (create, update, replace, unchanged, skipped) and change nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Leave every block that exists here as it is.
    #[arg(long, conflicts_with = "overwrite")]
    pub skip_existing: bool,
    /// Also replace a block here that has the same name but another id with the
    /// export's, id included (the one here is deleted; `undelete` brings it back).
    #[arg(long)]
    pub overwrite: bool,
    /// The age identity file (AGE-SECRET-KEY-...) that opens the export's secrets.
    #[arg(long, value_name = "FILE")]
    pub identity: Option<PathBuf>,
    /// A file whose first line is the passphrase the export's secrets were sealed with.
    #[arg(long, value_name = "FILE", conflicts_with = "identity")]
    pub passphrase_file: Option<PathBuf>,
}

fn read(path: &Path) -> Result<String> {
    match path == Path::new("-") {
        true => {
            std::io::read_to_string(std::io::stdin()).map_err(|err| Error::io("reading stdin", err))
        }
        false => std::fs::read_to_string(path)
            .map_err(|err| Error::io(format!("reading {}", path.display()), err)),
    }
}

fn passphrase(path: &Path) -> Result<age::secrecy::SecretString> {
    let text = zeroize::Zeroizing::new(read(path)?);
    let line = text.lines().next().unwrap_or_default();
    if line.is_empty() {
        return Err(Error::InvalidInput(format!(
            "{} holds no passphrase",
            path.display()
        )));
    }
    Ok(age::secrecy::SecretString::from(line.to_owned()))
}

/// Writes the export as JSON on stdout (whatever `--output` says: it is a file format).
pub fn export(registry: &Registry, args: ExportArgs) -> Result<()> {
    let key = match (args.include_secrets, &args.recipient, &args.passphrase_file) {
        (false, _, _) => None,
        (true, Some(r), _) => Some(SecretsKey::recipient(r)?),
        (true, None, Some(p)) => Some(SecretsKey::Passphrase(passphrase(p)?)),
        (true, None, None) => {
            return Err(Error::InvalidInput(
                "--include-secrets needs --recipient age1... or --passphrase-file FILE".into(),
            ));
        }
    };
    let filter = BlockFilter {
        block_type: args.block_type,
        name_prefix: args.prefix,
        ..Default::default()
    };
    let file = registry.export(&filter, &args.names, key.as_ref())?;
    println!("{}", to_json(&file));
    Ok(())
}

pub fn import(registry: &Registry, args: ImportArgs, out: &Printer) -> Result<()> {
    let text = read(&args.file)?;
    let file: ExportFile = serde_json::from_str(&text).map_err(|err| {
        Error::InvalidInput(format!(
            "{} is not a Blockyard export: {err}",
            args.file.display()
        ))
    })?;
    let identity = match (&args.identity, &args.passphrase_file) {
        (Some(path), _) => Some(SecretsIdentity::identity_file(&zeroize::Zeroizing::new(
            read(path)?,
        ))?),
        (None, Some(path)) => Some(SecretsIdentity::Passphrase(passphrase(path)?)),
        (None, None) => None,
    };
    let existing = match (args.skip_existing, args.overwrite) {
        (true, _) => Existing::Skip,
        (_, true) => Existing::Overwrite,
        _ => Existing::Update,
    };
    let plan = registry.import(file, identity.as_ref(), existing, args.dry_run)?;
    out.emit(&plan, || {
        let list = |names: &[String]| match names.is_empty() {
            true => String::new(),
            false => format!(" ({})", names.join(", ")),
        };
        let moved: String = plan
            .moved
            .iter()
            .map(|(name, fields)| {
                format!("\n  {name} moves where it connects: {}", fields.join(", "))
            })
            .collect();
        format!(
            "{}: create {}{}, update {}{}, replace {}{}, unchanged {}, skipped {}{}{}{moved}",
            if plan.applied {
                "imported"
            } else {
                "plan (nothing changed)"
            },
            plan.create.len(),
            list(&plan.create),
            plan.update.len(),
            list(&plan.update),
            plan.replace.len(),
            list(&plan.replace),
            plan.unchanged.len(),
            plan.skipped.len(),
            list(&plan.skipped),
            match plan.types.is_empty() {
                true => String::new(),
                false => format!("; types registered: {}", plan.types.join(", ")),
            }
        )
    });
    Ok(())
}

/// `blockyard apply`.
#[derive(Debug, Args)]
pub struct ApplyArgs {
    /// The file of desired blocks (YAML or JSON; `-` reads stdin).
    #[arg(long, short = 'f', value_name = "FILE")]
    pub file: PathBuf,
    /// Show the plan (create, update with a masked diff, unchanged, delete) and change
    /// nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Also delete blocks that are not in the file (soft: `block undelete` brings one
    /// back); with --prefix, only blocks whose names start with it.
    #[arg(long)]
    pub prune: bool,
    /// With --prune: only blocks whose names start with this are candidates.
    #[arg(long, requires = "prune")]
    pub prefix: Option<String>,
    /// Let a created block take the id of a deleted block (the plan lists them): that
    /// block and its history are purged.
    #[arg(long)]
    pub replace_deleted: bool,
}

pub fn apply(registry: &Registry, args: ApplyArgs, out: &Printer) -> Result<()> {
    let text = read(&args.file)?;
    let file = parse_apply_file(&text, &args.file.display().to_string())?;
    let base_dir = match args.file == Path::new("-") {
        true => PathBuf::from("."),
        false => args
            .file
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_default(),
    };
    let env = |name: &str| std::env::var(name).ok();
    let refs = SecretRefs {
        env: &env,
        base_dir: &base_dir,
    };
    let prune = args.prune.then(|| args.prefix.clone().unwrap_or_default());
    let options = ApplyOptions {
        prune: prune.as_deref(),
        dry_run: args.dry_run,
        replace_deleted: args.replace_deleted,
    };
    let plan = registry.apply(file, &refs, &options)?;
    out.emit(&plan, || plan_text(&plan));
    Ok(())
}

/// The plan as people read it: one line per change, masked diffs indented under
/// updates, then the counts.
fn plan_text(plan: &ApplyPlan) -> String {
    use super::terminal::{Stream::Stdout, Tone::*, paint};
    let mut lines = Vec::new();
    lines.extend(
        plan.create
            .iter()
            .map(|name| match plan.replace_deleted.get(name) {
                Some(deleted) => format!(
                    "{} (takes the id of deleted block {deleted}: purges it and its history)",
                    paint(Stdout, Good, &format!("+ create {name}"))
                ),
                None => paint(Stdout, Good, &format!("+ create {name}")),
            }),
    );
    for update in &plan.update {
        lines.push(paint(Stdout, Change, &format!("~ update {}", update.name)));
        for change in &update.changes {
            let show = |v: Option<&serde_json::Value>| match (change.secret, v) {
                (true, Some(_)) => "********".to_owned(),
                (_, None) => "(absent)".to_owned(),
                (false, Some(serde_json::Value::String(s))) => s.clone(),
                (false, Some(v)) => v.to_string(),
            };
            let after = match change.secret {
                true => "******** (changed)".to_owned(),
                false => show(change.after.as_ref()),
            };
            lines.push(format!(
                "    {}: {} -> {after}",
                change.path,
                show(change.before.as_ref())
            ));
        }
    }
    lines.extend(
        plan.delete
            .iter()
            .map(|name| paint(Stdout, Bad, &format!("- delete {name}"))),
    );
    lines.push(format!(
        "{}: create {}, update {}, delete {}, unchanged {}",
        match (plan.applied, plan.changes()) {
            (true, _) => "applied",
            (false, 0) => "plan (nothing to change)",
            (false, _) => "plan (nothing changed yet)",
        },
        plan.create.len(),
        plan.update.len(),
        plan.delete.len(),
        plan.unchanged.len()
    ));
    lines.join("\n")
}
