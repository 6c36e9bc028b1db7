//! `inject`'s templates: text holding `{{ blockyard://BLOCK/path.to.field }}` references,
//! `{{ url blockyard://BLOCK }}` and `{{ env blockyard://BLOCK [PREFIX] }}` helpers, and
//! the filters `| default "text"` and `| json`. Each reference is found with its line
//! and column; every other byte is kept, other `{{ ... }}` (Helm's, Jinja's) included.

use serde_json::Value;

use crate::error::{Error, ErrorKind};

const SCHEME: &str = "blockyard://";

/// What a reference asks of its block.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Wanted {
    /// The value at a dotted path.
    Field(String),
    /// The block's URL, password included.
    Url,
    /// Its `.env` lines (as `block env`), with this prefix if given.
    Env(Option<String>),
}

/// One `{{ ... }}` that names a block.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reference {
    pub block: String,
    pub wanted: Wanted,
    /// Used when the block has no such field.
    pub default: Option<String>,
    /// Written as a JSON string (quoted and escaped, for YAML and JSON files).
    pub json: bool,
    pub line: usize,
    pub column: usize,
}

/// A template: its text, cut into plain text and references.
#[derive(Debug)]
pub enum Piece<'a> {
    Text(&'a str),
    Ref(Reference),
}

/// A problem at a place in the template: `line:column: message`.
#[derive(Debug)]
pub struct Problem {
    pub line: usize,
    pub column: usize,
    pub kind: ErrorKind,
    pub message: String,
}

/// The template cut into pieces, or every malformed reference in it.
pub fn parse(text: &str) -> Result<Vec<Piece<'_>>, Vec<Problem>> {
    let (mut pieces, mut problems) = (Vec::new(), Vec::new());
    let mut rest = 0;
    let mut from = 0;
    while let Some(open) = text[from..].find("{{").map(|i| i + from) {
        let (line, column) = place(text, open);
        let Some(close) = text[open..].find("}}").map(|i| i + open) else {
            if text[open + 2..].trim_start().starts_with(SCHEME) {
                problems.push(malformed(line, column, "a {{ with no }}".into()));
            }
            break;
        };
        from = close + 2;
        match reference(text[open + 2..close].trim(), line, column) {
            Ok(None) => {}
            Ok(Some(found)) => {
                pieces.push(Piece::Text(&text[rest..open]));
                pieces.push(Piece::Ref(found));
                rest = close + 2;
            }
            Err(message) => problems.push(malformed(line, column, message)),
        }
    }
    pieces.push(Piece::Text(&text[rest..]));
    match problems.is_empty() {
        true => Ok(pieces),
        false => Err(problems),
    }
}

fn malformed(line: usize, column: usize, message: String) -> Problem {
    Problem {
        line,
        column,
        kind: ErrorKind::InvalidInput,
        message,
    }
}

/// The line and column (in characters, both from 1) of a byte offset.
fn place(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset];
    let line = before.matches('\n').count() + 1;
    let start = before.rfind('\n').map_or(0, |i| i + 1);
    (line, before[start..].chars().count() + 1)
}

/// The reference inside one `{{ }}`, if it is one (`None`: someone else's braces).
fn reference(inner: &str, line: usize, column: usize) -> Result<Option<Reference>, String> {
    let mut parts = inner.split('|');
    let head: Vec<&str> = parts
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .collect();
    let (helper, target, args) = match head.as_slice() {
        [target, ..] if target.starts_with(SCHEME) => (None, *target, &head[1..]),
        [helper @ ("url" | "env"), target, ..] if target.starts_with(SCHEME) => {
            (Some(*helper), *target, &head[2..])
        }
        _ => return Ok(None),
    };
    let (block, path) = target[SCHEME.len()..]
        .split_once('/')
        .unwrap_or((&target[SCHEME.len()..], ""));
    if block.is_empty() {
        return Err(format!("{target}: no block named"));
    }
    let wanted = match (helper, path, args) {
        (None, "", _) => return Err(format!("{target}: name a field: {SCHEME}{block}/path")),
        (None, path, []) => Wanted::Field(path.to_owned()),
        (Some("url"), "", []) => Wanted::Url,
        (Some("env"), "", [] | [_]) => Wanted::Env(args.first().map(|p| (*p).to_owned())),
        _ => return Err(format!("unexpected words in {{{{ {inner} }}}}")),
    };
    let mut found = Reference {
        block: block.to_owned(),
        wanted,
        default: None,
        json: false,
        line,
        column,
    };
    for filter in parts.map(str::trim) {
        match filter.split_once(char::is_whitespace) {
            _ if filter == "json" => found.json = true,
            Some(("default", arg)) => match serde_json::from_str::<Value>(arg.trim()) {
                Ok(Value::String(text)) => found.default = Some(text),
                _ => return Err("default takes a quoted string: default \"text\"".into()),
            },
            _ => {
                return Err(format!(
                    "unknown filter {filter:?}: default \"text\" or json"
                ));
            }
        }
    }
    Ok(Some(found))
}

/// The template with each reference replaced by what `resolve` answers (`Ok(None)`:
/// the block has no such field, so its default is used), or every problem found.
pub fn render(
    pieces: &[Piece<'_>],
    mut resolve: impl FnMut(&Reference) -> crate::error::Result<Option<String>>,
) -> Result<String, Vec<Problem>> {
    let (mut out, mut problems) = (String::new(), Vec::new());
    for piece in pieces {
        let reference = match piece {
            Piece::Text(text) => {
                out.push_str(text);
                continue;
            }
            Piece::Ref(reference) => reference,
        };
        let value = resolve(reference).and_then(|found| {
            found.or_else(|| reference.default.clone()).ok_or_else(|| {
                let Wanted::Field(path) = &reference.wanted else {
                    unreachable!("only a field may be missing")
                };
                Error::InvalidInput(format!("block {:?} has no field {path:?}", reference.block))
            })
        });
        match value {
            Ok(text) if reference.json => out.push_str(&Value::String(text).to_string()),
            Ok(text) => out.push_str(&text),
            Err(err) => problems.push(Problem {
                line: reference.line,
                column: reference.column,
                kind: err.kind(),
                message: err.to_string(),
            }),
        }
    }
    match problems.is_empty() {
        true => Ok(out),
        false => Err(problems),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refs(text: &str) -> Vec<Reference> {
        parse(text)
            .unwrap()
            .into_iter()
            .filter_map(|p| match p {
                Piece::Ref(r) => Some(r),
                Piece::Text(_) => None,
            })
            .collect()
    }

    #[test]
    fn references_are_found_with_their_place() {
        let text = "a: 1\nb: {{ blockyard://crdb-sage/connection_info.password }}\n\
                    c: {{ url blockyard://crdb-sage | json }}\n{{ .Values.x }} {{ env blockyard://es ES }}";
        let found = refs(text);
        assert_eq!(found.len(), 3);
        assert_eq!((found[0].line, found[0].column), (2, 4));
        assert_eq!(
            found[0].wanted,
            Wanted::Field("connection_info.password".into())
        );
        assert!(found[1].json && found[1].wanted == Wanted::Url);
        assert_eq!(found[2].wanted, Wanted::Env(Some("ES".into())));
    }

    #[test]
    fn malformed_references_are_problems_with_their_place() {
        let text =
            "x\n  {{ blockyard://crdb-sage }} {{ blockyard://a/b | upper }}\n{{ blockyard://c/d";
        let problems = parse(text).unwrap_err();
        let places: Vec<(usize, usize)> = problems.iter().map(|p| (p.line, p.column)).collect();
        assert_eq!(places, [(2, 3), (2, 31), (3, 1)]);
    }

    #[test]
    fn defaults_and_json_apply() {
        let pieces =
            parse(r#"{{ blockyard://b/x | default "d\"q" | json }}-{{ blockyard://b/y }}"#)
                .unwrap();
        let out = render(&pieces, |r| {
            Ok((r.wanted == Wanted::Field("y".into())).then(|| "Y".into()))
        });
        assert_eq!(out.unwrap(), r#""d\"q"-Y"#);
    }
}
