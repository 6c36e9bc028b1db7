//! Printing results: human tables by default, JSON with `--output json`. Errors are
//! printed by `main` through [`print_error`].

use clap::ValueEnum;
use comfy_table::{ContentArrangement, Table, presets::UTF8_FULL_CONDENSED};
use serde::Serialize;
use serde_json::Value;

use crate::error::Error;
use crate::registry::InitReport;

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    Table,
    Json,
}

pub struct Printer {
    pub format: OutputFormat,
}

impl Printer {
    pub fn new(format: OutputFormat) -> Self {
        Printer { format }
    }

    /// Prints `value` as JSON, or `human()` for people.
    pub fn emit<T: Serialize>(&self, value: &T, human: impl FnOnce() -> String) {
        match self.format {
            OutputFormat::Json => write_stdout(&to_json(value)),
            OutputFormat::Table => {
                let text = human();
                if !text.is_empty() {
                    write_stdout(text.trim_end());
                }
            }
        }
    }

    /// A message for people, on stderr so it never mixes with JSON on stdout.
    pub fn notice(&self, message: &str) {
        eprintln!("{message}");
    }
}

/// Writes a line to stdout. When the reader has gone (`blockyard block ls | head -1`),
/// stops quietly with exit code 0, as Unix tools do, instead of panicking.
fn write_stdout(text: &str) {
    use std::io::Write;
    let mut stdout = std::io::stdout().lock();
    let written = writeln!(stdout, "{text}").and_then(|()| stdout.flush());
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

/// A table with a header row.
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

pub fn table(header: &[&str], rows: impl IntoIterator<Item = Vec<String>>) -> String {
    let mut table = Table::new();
    table
        .load_preset(UTF8_FULL_CONDENSED)
        .set_content_arrangement(ContentArrangement::Dynamic)
        .set_header(header.iter().copied());
    for row in rows {
        table.add_row(row);
    }
    table.to_string()
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
        OutputFormat::Table => eprintln!("error[USAGE_ERROR]: {message}"),
    }
}

/// Prints an error on stderr: one line for people, or the API's JSON error shape.
pub fn print_error(format: OutputFormat, err: &Error) {
    match format {
        OutputFormat::Json => eprintln!(
            "{}",
            serde_json::json!({"error": {"code": err.code(), "message": err.to_string()}})
        ),
        OutputFormat::Table => eprintln!(
            "error[{}]: {}",
            err.code(),
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
