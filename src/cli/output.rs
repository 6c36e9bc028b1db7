//! Printing results: for people by default (see [`super::terminal`]), or JSON, YAML or
//! bare names with `--output`. Errors are printed by `main` through [`print_error`].

use clap::ValueEnum;
use serde::Serialize;
use serde_json::Value;

use super::terminal::{Stream, Tone, paint};
use crate::error::Error;
use crate::registry::InitReport;

pub use super::terminal::table;

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    /// For people: tables on a terminal, tab-separated rows when piped.
    Table,
    Json,
    Yaml,
    /// Only the name of each thing listed or acted on, one per line.
    Name,
}

pub struct Printer {
    pub format: OutputFormat,
}

impl Printer {
    pub fn new(format: OutputFormat) -> Self {
        Printer { format }
    }

    /// Prints `value` as JSON, YAML or names, or `human()` for people. What people are
    /// told of an empty list ("no blocks; create one with ...") goes to stderr, so a
    /// script reading stdout sees no rows.
    pub fn emit<T: Serialize>(&self, value: &T, human: impl FnOnce() -> String) {
        match self.format {
            OutputFormat::Json => write_stdout(&to_json(value)),
            OutputFormat::Yaml => write_stdout(to_yaml(value).trim_end()),
            OutputFormat::Name => {
                let names = names(&serde_json::to_value(value).unwrap_or_default());
                if !names.is_empty() {
                    write_stdout(&names.join("\n"));
                }
            }
            OutputFormat::Table => {
                let text = human();
                let empty = serde_json::to_value(value).is_ok_and(|v| v == Value::Array(vec![]));
                match (text.is_empty(), empty) {
                    (true, _) => {}
                    (false, true) => eprintln!("{}", text.trim_end()),
                    (false, false) => write_stdout(text.trim_end()),
                }
            }
        }
    }

    /// Whether output is for people (not JSON, YAML or names).
    pub fn for_people(&self) -> bool {
        self.format == OutputFormat::Table
    }

    /// A message for people, on stderr so it never mixes with JSON on stdout.
    pub fn notice(&self, message: &str) {
        eprintln!("{message}");
    }
}

/// Writes a line to stdout. When the reader has gone (`blockyard block ls | head -1`),
/// stops quietly with exit code 0, as Unix tools do, instead of panicking.
fn write_stdout(text: &str) {
    write_raw(&format!("{text}\n"));
}

/// Writes `text` to stdout as it is (no newline added: `block get --field`), with
/// [`write_stdout`]'s handling of a reader that has gone.
pub fn write_raw(text: &str) {
    use std::io::Write;
    let mut stdout = std::io::stdout().lock();
    let written = stdout
        .write_all(text.as_bytes())
        .and_then(|()| stdout.flush());
    if let Err(err) = written {
        if err.kind() == std::io::ErrorKind::BrokenPipe {
            std::process::exit(0);
        }
        eprintln!("error[IO_ERROR]: writing to stdout: {err}");
        std::process::exit(1);
    }
}

pub fn to_json<T: Serialize>(value: &T) -> String {
    serde_json::to_string_pretty(value).unwrap_or_else(|_| "null".into())
}

pub fn to_yaml<T: Serialize>(value: &T) -> String {
    serde_norway::to_string(value).unwrap_or_else(|_| "null".into())
}

/// The names in a result, for `-o name`: each listed item's `name` (or `id` where it has
/// none), or the one item's.
fn names(value: &Value) -> Vec<String> {
    let name = |item: &Value| {
        ["name", "id"]
            .iter()
            .find_map(|key| item.get(*key))
            .map(|n| n.as_str().map_or_else(|| n.to_string(), str::to_owned))
    };
    match value {
        Value::Array(items) => items.iter().filter_map(name).collect(),
        item => name(item).into_iter().collect(),
    }
}

/// A progress bar on stderr for long work: `{verb} [bar] done/total {unit} (eta)`.
pub fn progress_bar(len: u64, verb: &str, unit: &str) -> indicatif::ProgressBar {
    let bar = indicatif::ProgressBar::new(len);
    let template = format!("{verb} {{bar:40}} {{pos}}/{{len}} {unit} ({{eta}})");
    bar.set_style(
        indicatif::ProgressStyle::with_template(&template)
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    bar
}

/// Two columns of label and value.
pub fn details(rows: &[(&str, String)]) -> String {
    let width = rows.iter().map(|(k, _)| k.len()).max().unwrap_or(0);
    rows.iter()
        .map(|(k, v)| format!("{k:<width$}  {v}\n"))
        .collect()
}

pub fn pretty(value: &Value) -> String {
    serde_json::to_string_pretty(value).unwrap_or_default()
}

/// Prints a command-line usage error in the API's JSON error shape (`USAGE_ERROR`);
/// with table output clap prints its own text.
pub fn print_usage_error(format: OutputFormat, err: &clap::Error) {
    let text = err.render().to_string();
    let message: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with("Usage:") && !l.starts_with("For more"))
        .collect();
    let message = message.join(" ");
    let message = message.strip_prefix("error: ").unwrap_or(&message);
    match format {
        OutputFormat::Json => eprintln!(
            "{}",
            serde_json::json!({"error": {"code": "USAGE_ERROR", "message": message}})
        ),
        _ => eprintln!("{}: {message}", error_label("USAGE_ERROR")),
    }
}

/// `error[CODE]`, red on a terminal.
fn error_label(code: &str) -> String {
    paint(Stream::Stderr, Tone::Bad, &format!("error[{code}]"))
}

/// Prints an error on stderr: one line for people, or the API's JSON error shape.
pub fn print_error(format: OutputFormat, err: &Error) {
    match format {
        OutputFormat::Json => eprintln!(
            "{}",
            serde_json::json!({"error": {"code": err.code(), "message": err.to_string()}})
        ),
        _ => eprintln!(
            "{}: {}",
            error_label(err.code()),
            err.to_string().replace('\n', " ")
        ),
    }
}

/// What a new store's first command says: where the store and master key are.
pub(super) fn init_message(report: &InitReport) -> String {
    let key = if report.master_key_created {
        "created in"
    } else {
        "taken from"
    };
    format!(
        "Initialised a new Blockyard store at {}.\nMaster key {key} {} (fingerprint {}). \
         Keep a copy: without it, stored secrets cannot be read.",
        report.store, report.master_key, report.fingerprint
    )
}
