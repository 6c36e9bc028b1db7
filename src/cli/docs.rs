//! `blockyard completions SHELL` and `blockyard man`: shell completions (clap_complete,
//! completing block names, type slugs and token names from the store as the user types)
//! and man pages (clap_mangen) generated from the same clap definitions as the CLI.

use std::ffi::OsStr;
use std::io::Write;
use std::path::Path;

use clap_complete::engine::{ArgValueCompleter, CompletionCandidate};
use clap_complete::env::{EnvCompleter, Shells};

use crate::block::BlockFilter;
use crate::config::{Config, Sources};
use crate::error::{Error, Result};
use crate::name::BlockName;
use crate::registry::Registry;

/// The variable the shell sets when it asks `blockyard` for completions (its own name,
/// not clap's default `COMPLETE`, which another program may have set).
pub const COMPLETE_VAR: &str = "BLOCKYARD_COMPLETE";

/// At most this many names are offered for one word.
const MAX_CANDIDATES: i64 = 200;

/// The shell's registration script: it asks this binary (`BLOCKYARD_COMPLETE=bash
/// blockyard -- ...`) for candidates at each Tab, so names come from the store as it
/// is then.
pub fn completions(shell: clap_complete::Shell, command: &clap::Command) -> Result<()> {
    let shells = Shells::builtins();
    let completer: &dyn EnvCompleter = shells
        .completer(&shell.to_string())
        .ok_or_else(|| Error::InvalidInput(format!("no completions for {shell}")))?;
    let exe = std::env::current_exe()
        .map(|p| p.to_string_lossy().into_owned())
        .unwrap_or_else(|_| command.get_name().to_owned());
    let mut text = Vec::new();
    completer
        .write_registration(
            COMPLETE_VAR,
            command.get_name(),
            command.get_name(),
            &exe,
            &mut text,
        )
        .map_err(|err| Error::io("writing the completion script", err))?;
    write_stdout(&text)
}

/// `command` with a completer on every argument that names a block, a type or a token.
pub fn with_completers(command: clap::Command) -> clap::Command {
    command
        .mut_args(|arg| {
            let block = arg.get_value_parser().type_id() == std::any::TypeId::of::<BlockName>();
            match arg.get_id().as_str() {
                "new_name" => arg,
                "block_type" => arg.add(ArgValueCompleter::new(type_slugs)),
                _ if block => arg.add(ArgValueCompleter::new(block_names)),
                _ => arg,
            }
        })
        .mut_subcommands(|sub| match sub.get_name() {
            "token" => sub.mut_subcommand("revoke", |revoke| {
                revoke.mut_arg("name", |a| a.add(ArgValueCompleter::new(token_names)))
            }),
            _ => with_completers(sub),
        })
}

/// The configured registry, if its store is already there: a completion never creates a
/// store, prints an error or waits long.
fn existing_registry() -> Option<Registry> {
    let config = Config::load(Sources {
        env: std::env::vars().collect(),
        dotenv: Some(".env".into()),
        ..Sources::default()
    })
    .ok()?;
    Registry::open_existing(config).ok().flatten()
}

fn candidates(names: impl IntoIterator<Item = (String, String)>) -> Vec<CompletionCandidate> {
    names
        .into_iter()
        .map(|(name, help)| CompletionCandidate::new(name).help(Some(help.into())))
        .collect()
}

fn block_names(current: &OsStr) -> Vec<CompletionCandidate> {
    let filter = BlockFilter {
        name_prefix: current
            .to_str()
            .map(str::to_owned)
            .filter(|p| !p.is_empty()),
        limit: Some(MAX_CANDIDATES),
        ..BlockFilter::default()
    };
    let Some(blocks) = existing_registry().and_then(|r| r.list_blocks(&filter).ok()) else {
        return Vec::new();
    };
    candidates(
        blocks
            .into_iter()
            .map(|b| (b.name.to_string(), b.block_type)),
    )
}

fn type_slugs(current: &OsStr) -> Vec<CompletionCandidate> {
    let Some(types) = existing_registry().and_then(|r| r.block_types().ok()) else {
        return Vec::new();
    };
    let prefix = current.to_string_lossy();
    candidates(
        types
            .into_iter()
            .filter(|t| t.def.slug.starts_with(prefix.as_ref()))
            .map(|t| (t.def.slug, t.def.name)),
    )
}

fn token_names(current: &OsStr) -> Vec<CompletionCandidate> {
    let Some(tokens) = existing_registry().and_then(|r| r.list_tokens().ok()) else {
        return Vec::new();
    };
    let prefix = current.to_string_lossy();
    candidates(
        tokens
            .into_iter()
            .filter(|t| t.state == "active" && t.name.starts_with(prefix.as_ref()))
            .map(|t| (t.name, t.scopes.join(","))),
    )
}

/// The main page of `command` on stdout, or one page per command (and subcommand) in
/// `dir`.
pub fn man(command: clap::Command, dir: Option<&Path>) -> Result<()> {
    match dir {
        None => write_stdout(&render(&command, "blockyard")?),
        Some(dir) => {
            std::fs::create_dir_all(dir)
                .map_err(|err| Error::io(format!("creating {}", dir.display()), err))?;
            write_pages(&command, "blockyard", dir)
        }
    }
}

fn write_pages(command: &clap::Command, name: &str, dir: &Path) -> Result<()> {
    let page = render(command, name)?;
    let path = dir.join(format!("{name}.1"));
    std::fs::write(&path, page)
        .map_err(|err| Error::io(format!("writing {}", path.display()), err))?;
    for sub in command.get_subcommands().filter(|s| !s.is_hide_set()) {
        write_pages(sub, &format!("{name}-{}", sub.get_name()), dir)?;
    }
    Ok(())
}

/// One man page, titled `name` (`blockyard-block-create` for a subcommand).
fn render(command: &clap::Command, name: &str) -> Result<Vec<u8>> {
    let mut page = Vec::new();
    clap_mangen::Man::new(command.clone())
        .title(name.to_owned())
        .render(&mut page)
        .map_err(|err| Error::io("rendering the man page", err))?;
    Ok(page)
}

fn write_stdout(bytes: &[u8]) -> Result<()> {
    let mut stdout = std::io::stdout().lock();
    match stdout.write_all(bytes).and_then(|()| stdout.flush()) {
        Err(err) if err.kind() != std::io::ErrorKind::BrokenPipe => {
            Err(Error::io("writing to stdout", err))
        }
        _ => Ok(()),
    }
}
