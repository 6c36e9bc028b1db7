//! `blockyard inject`: a template's references to blocks resolved (each block a secret
//! read on record) and the result written (`--out-file`) to a file atomically with mode 0600, or to
//! stdout; `--check` resolves every reference and writes nothing.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use clap::Args;
use serde_json::Value;

use super::blocks::field_value;
use super::connect::{Target, target_of_block, variables};
use super::output::{Printer, write_raw};
use crate::block::Block;
use crate::connect::{EnvFormat, env};
use crate::error::{Error, ErrorKind, Result};
use crate::registry::Registry;
use crate::template::{self, Problem, Reference, Wanted};

/// `blockyard inject [-i TEMPLATE] [-o FILE] [--check]`
#[derive(Debug, Args)]
pub struct InjectArgs {
    /// The template (default: stdin). References: {{ blockyard://BLOCK/path.to.field }},
    /// {{ url blockyard://BLOCK }}, {{ env blockyard://BLOCK [PREFIX] }}; filters
    /// `| default "text"` (when the field is absent) and `| json` (a quoted string).
    #[arg(short = 'i', long = "in-file", value_name = "TEMPLATE")]
    pub input: Option<PathBuf>,
    /// Write here (mode 0600, replaced whole, never half-written); default: stdout.
    /// (`-o` is every command's output format, so this one is long only.)
    #[arg(long = "out-file", value_name = "FILE")]
    pub out_file: Option<PathBuf>,
    /// Resolve every reference and report, writing nothing.
    #[arg(long)]
    pub check: bool,
}

pub fn inject(registry: &Registry, args: InjectArgs, out: &Printer) -> Result<()> {
    let (source, text) = read_template(args.input.as_deref())?;
    let pieces = template::parse(&text).map_err(|p| problems(&source, p))?;
    let references = pieces
        .iter()
        .filter(|p| matches!(p, template::Piece::Ref(_)))
        .count();
    let mut blocks: HashMap<String, Block> = HashMap::new();
    let rendered = template::render(&pieces, |reference| {
        if !blocks.contains_key(&reference.block) {
            let block = registry.read_block(reference.block.as_str())?;
            blocks.insert(reference.block.clone(), block);
        }
        resolve(registry, &blocks[&reference.block], reference)
    })
    .map_err(|p| problems(&source, p))?;
    let rendered = zeroize::Zeroizing::new(rendered);
    if args.check {
        let message = format!(
            "{source}: {references} references to {} blocks resolve",
            blocks.len()
        );
        out.emit(
            &serde_json::json!({"template": source, "references": references,
                                "blocks": blocks.len()}),
            || message,
        );
        return Ok(());
    }
    match &args.out_file {
        Some(path) => write_atomically(path, rendered.as_bytes()),
        None => {
            write_raw(&rendered);
            Ok(())
        }
    }
}

/// The template's name in messages and its text.
fn read_template(input: Option<&Path>) -> Result<(String, String)> {
    let mut text = String::new();
    match input.filter(|p| *p != Path::new("-")) {
        Some(path) => {
            let name = path.display().to_string();
            text = std::fs::read_to_string(path)
                .map_err(|err| Error::InvalidInput(format!("cannot read {name}: {err}")))?;
            Ok((name, text))
        }
        None => {
            std::io::stdin()
                .read_to_string(&mut text)
                .map_err(|err| Error::InvalidInput(format!("cannot read stdin: {err}")))?;
            Ok(("<stdin>".into(), text))
        }
    }
}

/// What one reference stands for (`None`: the block has no such field).
fn resolve(registry: &Registry, block: &Block, reference: &Reference) -> Result<Option<String>> {
    let name = block.name.as_str();
    match &reference.wanted {
        Wanted::Field(path) => match field_value(block, path) {
            Ok(Value::String(text)) => Ok(Some(text)),
            Ok(other) => Ok(Some(other.to_string())),
            Err(err) if err.kind() == ErrorKind::FieldNotFound => Ok(None),
            Err(err) => Err(err),
        },
        Wanted::Url => Ok(Some(match target_of_block(registry, block)? {
            Target::Database(info, _) => info.display_url(true)?,
            Target::Http(service) => service.display_url(true),
        })),
        Wanted::Env(prefix) => {
            let target = target_of_block(registry, block)?;
            let format = Some(EnvFormat::Dotenv);
            let (vars, format) = variables(&target, name, format, prefix.as_deref())?;
            Ok(Some(env::render(&vars, format)?.trim_end().to_owned()))
        }
    }
}

/// Every problem, each as `FILE:LINE:COLUMN: message`; the error's kind is the first's.
fn problems(source: &str, problems: Vec<Problem>) -> Error {
    let kind = problems.first().map_or(ErrorKind::InvalidInput, |p| p.kind);
    let lines: Vec<String> = problems
        .iter()
        .map(|p| format!("{source}:{}:{}: {}", p.line, p.column, p.message))
        .collect();
    Error::Hinted {
        kind,
        message: lines.join("; "),
    }
}

/// Writes `bytes` to a new 0600 file beside `path`, flushed to disk, then renamed over
/// it: a reader sees the old file or the new one, never part of one.
fn write_atomically(path: &Path, bytes: &[u8]) -> Result<()> {
    let failed = |err: std::io::Error| {
        Error::InvalidInput(format!("cannot write {}: {err}", path.display()))
    };
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    let mut file = tempfile::Builder::new()
        .prefix(".blockyard-inject-")
        .tempfile_in(dir)
        .map_err(failed)?;
    file.write_all(bytes).map_err(failed)?;
    file.as_file().sync_all().map_err(failed)?;
    crate::registry::crash_point("inject-before-rename");
    file.persist(path).map_err(|err| failed(err.error))?;
    Ok(())
}
