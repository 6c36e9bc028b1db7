//! `blockyard backup` and `blockyard restore`: the whole store as one file, and back
//! into an empty store of either backend.

use std::io::Write;
use std::path::{Path, PathBuf};

use clap::Args;

use super::output::Printer;
use crate::config::Config;
use crate::error::{Error, Result};
use crate::registry::{BackupFile, BackupReport, Registry, restore as restore_store};

/// `blockyard backup`.
#[derive(Debug, Args)]
pub struct BackupArgs {
    /// Where to write the backup (created 0600, written whole or not at all); `-`
    /// writes it to stdout.
    pub file: PathBuf,
}

/// `blockyard restore`.
#[derive(Debug, Args)]
pub struct RestoreArgs {
    /// A backup file (`blockyard backup FILE`); `-` reads stdin.
    pub file: PathBuf,
}

pub fn backup(registry: &Registry, args: BackupArgs, out: &Printer) -> Result<()> {
    let file = registry.backup()?;
    let report = file.report(registry.store_url()?);
    let write = |w: &mut dyn Write| -> std::io::Result<()> {
        serde_json::to_writer(&mut *w, &file)?;
        w.write_all(b"\n")
    };
    match args.file == Path::new("-") {
        true => write(&mut std::io::stdout().lock())
            .map_err(|err| Error::io("writing the backup to stdout", err))?,
        false => {
            crate::files::write_private_atomically(&args.file, |f| {
                let mut buffered = std::io::BufWriter::new(f);
                write(&mut buffered)?;
                buffered.flush()
            })?;
            out.emit(&report, || summary("backed up", &report, &args.file));
        }
    }
    Ok(())
}

pub fn restore(config: Config, args: RestoreArgs, out: &Printer) -> Result<()> {
    let text = match args.file == Path::new("-") {
        true => std::io::read_to_string(std::io::stdin())
            .map_err(|err| Error::io("reading stdin", err))?,
        false => std::fs::read_to_string(&args.file)
            .map_err(|err| Error::io(format!("reading {}", args.file.display()), err))?,
    };
    let file: BackupFile = serde_json::from_str(&text).map_err(|err| {
        Error::InvalidInput(format!(
            "{} is not a Blockyard backup: {err}",
            args.file.display()
        ))
    })?;
    let bar = super::output::progress_bar(file.rows.len() as u64, "restoring", "rows");
    let report = restore_store(config, file, &mut |n| bar.inc(n as u64))?;
    bar.finish_and_clear();
    if report.tokens_refused > 0 {
        eprintln!(
            "warning: {} token(s) not restored: their rows are not bound to this master key \
             (edited in the file, or made before tokens were bound); create them anew",
            report.tokens_refused
        );
    }
    out.emit(&report, || summary("restored", &report, &args.file));
    Ok(())
}

fn summary(verb: &str, report: &BackupReport, file: &Path) -> String {
    format!(
        "{verb} {} block(s), {} version(s), {} type(s), {} token(s) and {} audit record(s) \
         ({} rows) {} {}: store {}, master key fingerprint {}",
        report.blocks,
        report.versions,
        report.block_types,
        report.tokens,
        report.audit_records,
        report.rows,
        if verb == "restored" { "from" } else { "to" },
        file.display(),
        report.store,
        report.fingerprint
    )
}
