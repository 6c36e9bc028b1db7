//! `blockyard completions SHELL` and `blockyard man`: shell completions (clap_complete)
//! and man pages (clap_mangen) generated from the same clap definitions as the CLI.

use std::io::Write;
use std::path::Path;

use crate::error::{Error, Result};

/// Completions for `command` (the whole CLI, as clap defines it).
pub fn completions(shell: clap_complete::Shell, mut command: clap::Command) -> Result<()> {
    let mut text = Vec::new();
    clap_complete::generate(shell, &mut command, "blockyard", &mut text);
    write_stdout(&text)
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
