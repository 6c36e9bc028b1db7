//! Printing results: human tables by default, JSON with `--output json`. Errors are
//! printed by `main` through [`print_error`].

use clap::ValueEnum;
use comfy_table::{ContentArrangement, Table, presets::UTF8_FULL_CONDENSED};
use serde::Serialize;
use serde_json::Value;

use crate::error::Error;

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
            OutputFormat::Json => println!("{}", to_json(value)),
            OutputFormat::Table => {
                let text = human();
                if !text.is_empty() {
                    println!("{}", text.trim_end());
                }
            }
        }
    }

    /// A message for people, on stderr so it never mixes with JSON on stdout.
    pub fn notice(&self, message: &str) {
        eprintln!("{message}");
    }
}

pub fn to_json<T: Serialize>(value: &T) -> String {
    serde_json::to_string_pretty(value).unwrap_or_else(|_| "null".into())
}

/// A table with a header row.
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
