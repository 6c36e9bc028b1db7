//! What a terminal gets that a pipe does not: tables with aligned columns, colour and
//! relative times for people; plain tab-separated rows for `awk`, `cut` and `while read`.

use std::io::IsTerminal;
use std::time::SystemTime;

use anstyle::{AnsiColor, Style};
use comfy_table::{ContentArrangement, Table, presets::NOTHING};

/// The colours Blockyard uses, each for one meaning.
#[derive(Clone, Copy, Debug)]
pub enum Tone {
    /// Something made or met: `+ create`, a test that passed.
    Good,
    /// Something changed: `~ update`.
    Change,
    /// Something lost or failed: `- delete`, an error, a test that failed.
    Bad,
}

/// Which stream a text is for: colour is decided per stream (`2>errors.log` keeps
/// stdout coloured on a terminal and the log plain).
#[derive(Clone, Copy, Debug)]
pub enum Stream {
    Stdout,
    Stderr,
}

impl Stream {
    fn is_terminal(self) -> bool {
        match self {
            Stream::Stdout => std::io::stdout().is_terminal(),
            Stream::Stderr => std::io::stderr().is_terminal(),
        }
    }
}

/// Whether `stream` takes colour: a terminal unless `NO_COLOR` is set (no-color.org) or
/// `TERM=dumb`; `CLICOLOR_FORCE` forces it.
pub fn colour(stream: Stream) -> bool {
    let set = |name: &str| std::env::var_os(name).is_some_and(|v| !v.is_empty() && v != "0");
    if set("NO_COLOR") {
        return false;
    }
    if set("CLICOLOR_FORCE") {
        return true;
    }
    stream.is_terminal() && std::env::var("TERM").map_or(true, |t| t != "dumb")
}

/// `text` in the colour for `tone` when `stream` takes colour; as is otherwise.
pub fn paint(stream: Stream, tone: Tone, text: &str) -> String {
    if !colour(stream) {
        return text.to_owned();
    }
    let style: Style = match tone {
        Tone::Good => AnsiColor::Green.on_default(),
        Tone::Change => AnsiColor::Yellow.on_default(),
        Tone::Bad => AnsiColor::Red.on_default().bold(),
    };
    format!("{style}{text}{style:#}")
}

/// Rows for stdout: on a terminal, aligned columns under a header, times relative
/// ("5 min ago"), never wrapped; piped, one tab-separated line per row with no header and every cell
/// as stored (a tab or newline in a cell becomes a space), as `gh` does.
pub fn table(header: &[&str], rows: impl IntoIterator<Item = Vec<String>>) -> String {
    let rows = rows.into_iter();
    if !Stream::Stdout.is_terminal() {
        return rows
            .map(|row| {
                let cells: Vec<String> = row.iter().map(|c| c.replace(['\t', '\n'], " ")).collect();
                cells.join("\t")
            })
            .collect::<Vec<_>>()
            .join("\n");
    }
    // Never wrapped to the terminal's width (a pty of unknown size says 0): a line runs
    // on, as `kubectl get` and `docker ps` let it, and no cell is broken mid-word.
    let mut table = Table::new();
    table
        .load_preset(NOTHING)
        .set_content_arrangement(ContentArrangement::Disabled)
        .set_header(header.iter().copied());
    let now = SystemTime::now();
    for row in rows {
        table.add_row(row.iter().map(|cell| relative_if_time(cell, now)));
    }
    // NOTHING keeps each column's padding: the first column would start one space in.
    table
        .to_string()
        .lines()
        .map(|line| line.strip_prefix(' ').unwrap_or(line).trim_end())
        .collect::<Vec<_>>()
        .join("\n")
}

/// A cell holding an RFC 3339 time, as people read it: `5 min ago`, `in 3 days`.
fn relative_if_time(cell: &str, now: SystemTime) -> String {
    match humantime::parse_rfc3339(cell) {
        Ok(time) => crate::time::relative(time, now),
        Err(_) => cell.to_owned(),
    }
}
