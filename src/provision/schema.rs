//! Schema files (seed 000's `run-schema`): `%%USER%%`, `%%PASSWORD%%` and `%%DATABASE%%`
//! replaced by a block's values, each quoted as its position requires (inside `'...'`
//! as literal text, inside `"..."` or `` `...` `` as identifier text, bare as a quoted
//! literal for the password and a quoted identifier for names), then split into
//! statements that remember the line they start on, so a failure says `file:line`.

use super::sql::{self, Dialect};
use crate::error::Result;

/// What the placeholders stand for.
pub struct Values<'a> {
    pub user: &'a str,
    pub password: &'a str,
    pub database: &'a str,
}

/// One statement of a file and the line (1-based) it starts on.
#[derive(Debug, PartialEq, Eq)]
pub struct Statement {
    pub line: usize,
    pub sql: String,
}

/// Where the scanner is.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Quote {
    None,
    Single,
    Double,
    Backtick,
}

/// `text` with its placeholders replaced.
pub fn substitute(dialect: Dialect, text: &str, values: &Values<'_>) -> Result<String> {
    let mut out = String::with_capacity(text.len());
    let mut quote = Quote::None;
    let mut rest = text;
    while let Some(c) = rest.chars().next() {
        if let Some((name, value, tail)) = placeholder(rest, values) {
            out.push_str(&quoted(dialect, quote, name, value)?);
            rest = tail;
            continue;
        }
        quote = match (quote, c) {
            (Quote::None, '\'') => Quote::Single,
            (Quote::None, '"') => Quote::Double,
            (Quote::None, '`') if dialect == Dialect::Mysql => Quote::Backtick,
            (Quote::Single, '\'') | (Quote::Double, '"') | (Quote::Backtick, '`') => Quote::None,
            (q, _) => q,
        };
        out.push(c);
        rest = &rest[c.len_utf8()..];
    }
    Ok(out)
}

fn placeholder<'t, 'v>(
    text: &'t str,
    values: &Values<'v>,
) -> Option<(&'static str, &'v str, &'t str)> {
    [
        ("%%USER%%", "user", values.user),
        ("%%PASSWORD%%", "password", values.password),
        ("%%DATABASE%%", "database", values.database),
    ]
    .into_iter()
    .find_map(|(token, name, value)| text.strip_prefix(token).map(|tail| (name, value, tail)))
}

/// A value as its position needs it. Inside quotes, the quoted form without its outer
/// quotes (a doubled `''` or `""` is how SQL escapes either, so the text stays inside).
fn quoted(dialect: Dialect, quote: Quote, name: &str, value: &str) -> Result<String> {
    let inner = |q: String| q[1..q.len() - 1].to_owned();
    Ok(match quote {
        Quote::Single => {
            let lit = sql::literal(dialect, value)?;
            // An E'' literal cannot be opened inside a plain one; double quotes only.
            match lit.starts_with('E') {
                true => value.replace('\'', "''"),
                false => inner(lit),
            }
        }
        Quote::Double | Quote::Backtick => inner(sql::ident(dialect, value)?),
        Quote::None if name == "password" => sql::literal(dialect, value)?,
        Quote::None => sql::ident(dialect, value)?,
    })
}

/// Splits SQL into statements at `;` outside quotes, comments and PostgreSQL dollar
/// quotes (`$$ ... $$`, `$body$ ... $body$`); blank statements are dropped.
pub fn split(text: &str) -> Vec<Statement> {
    let mut out = Vec::new();
    let (mut current, mut start_line, mut line) = (String::new(), 1, 1);
    // Whether `current` holds anything but blanks and comments yet.
    let mut started = false;
    let bytes = text.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        let rest = &text[i..];
        let skip = if rest.starts_with("--") {
            rest.find('\n').unwrap_or(rest.len())
        } else if rest.starts_with("/*") {
            rest.find("*/").map_or(rest.len(), |e| e + 2)
        } else if let Some(tag) = dollar_tag(rest) {
            rest[tag.len()..]
                .find(tag)
                .map_or(rest.len(), |e| e + 2 * tag.len())
        } else if let Some(q @ ('\'' | '"' | '`')) = rest.chars().next() {
            rest[1..].find(q).map_or(rest.len(), |e| e + 2)
        } else {
            let c = rest.chars().next().unwrap_or(' ');
            c.len_utf8()
        };
        let piece = &rest[..skip];
        if piece == ";" {
            push(&mut out, &current, start_line);
            current.clear();
            started = false;
        } else {
            let comment = piece.starts_with("--") || piece.starts_with("/*");
            if !started && !comment && !piece.trim().is_empty() {
                start_line = line;
                started = true;
            }
            current.push_str(piece);
        }
        line += piece.matches('\n').count();
        i += skip;
    }
    push(&mut out, &current, start_line);
    out
}

fn push(out: &mut Vec<Statement>, sql: &str, line: usize) {
    let without_comments: String = sql
        .lines()
        .filter(|l| !l.trim_start().starts_with("--"))
        .collect();
    if !without_comments.trim().is_empty() {
        out.push(Statement {
            line,
            sql: sql.trim().to_owned(),
        });
    }
}

/// `$tag$` at the start of `text`, if it opens a dollar quote.
fn dollar_tag(text: &str) -> Option<&str> {
    let rest = text.strip_prefix('$')?;
    let end = rest.find('$')?;
    let tag = &rest[..end];
    tag.chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '_')
        .then(|| &text[..end + 2])
        .filter(|t| !t[1..].starts_with(|c: char| c.is_ascii_digit()))
}

#[cfg(test)]
mod tests {
    use super::*;

    const VALUES: Values<'static> = Values {
        user: "databot",
        password: "p'w@x",
        database: "sage",
    };

    #[test]
    fn placeholders_are_quoted_for_their_position() {
        let text = "CREATE ROLE %%USER%% PASSWORD %%PASSWORD%%;\n\
                    ALTER ROLE \"%%USER%%\" PASSWORD '%%PASSWORD%%';\n\
                    GRANT ALL ON DATABASE %%DATABASE%% TO %%USER%%;";
        let out = substitute(Dialect::Postgres, text, &VALUES).unwrap();
        assert_eq!(
            out,
            "CREATE ROLE \"databot\" PASSWORD 'p''w@x';\n\
             ALTER ROLE \"databot\" PASSWORD 'p''w@x';\n\
             GRANT ALL ON DATABASE \"sage\" TO \"databot\";"
        );
        let out = substitute(
            Dialect::Mysql,
            "CREATE USER '%%USER%%'@'%' IDENTIFIED BY %%PASSWORD%%",
            &VALUES,
        )
        .unwrap();
        assert_eq!(out, "CREATE USER 'databot'@'%' IDENTIFIED BY 'p\\'w@x'");
    }

    #[test]
    fn statements_split_outside_quotes_comments_and_dollar_quotes() {
        let text = "-- a comment; not a statement\n\
                    CREATE TABLE a (x text default ';');\n\
                    \n\
                    CREATE FUNCTION f() RETURNS int AS $$ SELECT 1; $$ LANGUAGE sql;\n\
                    /* ; */ SELECT 2";
        let statements = split(text);
        assert_eq!(statements.len(), 3, "{statements:?}");
        assert_eq!(statements[0].line, 2);
        assert_eq!(statements[1].line, 4);
        assert!(statements[1].sql.contains("SELECT 1; $$"));
        assert_eq!(statements[2].line, 5);
    }
}
