//! Schema files (seed 000's `run-schema`): `%%USER%%`, `%%ROLE%%`, `%%PASSWORD%%` and
//! `%%DATABASE%%` replaced by a block's values, each quoted as its position requires (inside `'...'`
//! as literal text, inside `E'...'` with backslashes escaped, inside `"..."` or
//! `` `...` `` as identifier text, inside a dollar quote verbatim, inside a comment not
//! at all, bare as a quoted literal for the password and a quoted identifier for
//! names; where it stands is read by sqlparser's tokenizer for the dialect), then
//! split into statements that remember the line they start on, so a failure says
//! `file:line`.

use super::sql::{self, Dialect};
use crate::error::Result;

/// What the placeholders stand for.
pub struct Values<'a> {
    /// `%%USER%%`: the user name the block logs in with, as stored.
    pub user: &'a str,
    pub password: &'a str,
    pub database: &'a str,
}

impl<'a> Values<'a> {
    /// `%%ROLE%%`: the role inside the database. A pooler's login `role.project`
    /// (Supabase's Supavisor: `postgres.mpodkwxxymffedxjmsqv`) names role `role`, so
    /// the namespace after the first `.` is left out; any other name is the user's.
    pub fn role(&self) -> &'a str {
        self.user.split('.').next().unwrap_or_default()
    }
}

/// One statement of a file and the line (1-based) it starts on.
#[derive(Debug, PartialEq, Eq)]
pub struct Statement {
    pub line: usize,
    pub sql: String,
}

/// Where a placeholder stands, as the dialect's SQL tokenizer reads the file.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Context {
    /// Between tokens: a quoted literal (password) or identifier (names) goes in.
    Bare,
    /// Inside `'...'` (or MySQL's `"..."`): literal text.
    Literal,
    /// Inside PostgreSQL's `E'...'`, where backslashes escape.
    Escaped,
    /// Inside `"..."` (PostgreSQL) or `` `...` `` (MySQL): identifier text.
    Identifier,
    /// Inside `$tag$ ... $tag$`: verbatim, so the value must not hold the closing tag.
    Dollar(String),
    /// Inside a comment: left as written (no value goes into a comment, or a log).
    Comment,
}

/// `text` with its placeholders replaced.
pub fn substitute(dialect: Dialect, text: &str, values: &Values<'_>) -> Result<String> {
    let contexts = contexts(dialect, text)?;
    let mut out = String::with_capacity(text.len());
    let mut at = 0;
    while at < text.len() {
        let rest = &text[at..];
        if let Some((name, value, tail)) = placeholder(rest, values) {
            let context = contexts
                .iter()
                .find(|(start, end, _)| (*start..*end).contains(&at))
                .map_or(&Context::Bare, |(_, _, c)| c);
            match context {
                Context::Comment => out.push_str(&rest[..rest.len() - tail.len()]),
                context => out.push_str(&quoted(dialect, context, name, value)?),
            }
            at = text.len() - tail.len();
            continue;
        }
        let c = rest.chars().next().unwrap_or(' ');
        out.push(c);
        at += c.len_utf8();
    }
    Ok(out)
}

/// The byte ranges of the tokens that are not bare SQL (strings, quoted identifiers,
/// dollar quotes, comments), as sqlparser's tokenizer for the dialect reads them.
fn contexts(dialect: Dialect, text: &str) -> Result<Vec<(usize, usize, Context)>> {
    use sqlparser::dialect::{MySqlDialect, PostgreSqlDialect};
    use sqlparser::tokenizer::{Token, Tokenizer, Whitespace};
    let tokens = match dialect {
        Dialect::Mysql => Tokenizer::new(&MySqlDialect {}, text).tokenize_with_location(),
        _ => Tokenizer::new(&PostgreSqlDialect {}, text).tokenize_with_location(),
    }
    .map_err(|err| {
        crate::error::Error::InvalidInput(format!("the file cannot be read as SQL: {err}"))
    })?;
    let offsets = LineOffsets::new(text);
    Ok(tokens
        .into_iter()
        .filter_map(|t| {
            let context = match t.token {
                Token::SingleQuotedString(_) | Token::NationalStringLiteral(_) => Context::Literal,
                Token::DoubleQuotedString(_) => Context::Literal,
                Token::EscapedStringLiteral(_) => Context::Escaped,
                Token::DollarQuotedString(d) => Context::Dollar(d.tag.unwrap_or_default()),
                Token::Word(w) if w.quote_style.is_some() => Context::Identifier,
                Token::Whitespace(Whitespace::SingleLineComment { .. })
                | Token::Whitespace(Whitespace::MultiLineComment(_)) => Context::Comment,
                _ => return None,
            };
            let start = offsets.byte(t.span.start.line, t.span.start.column);
            let end = offsets.byte(t.span.end.line, t.span.end.column);
            Some((start, end, context))
        })
        .collect())
}

/// Byte offsets of (line, column) positions as the tokenizer counts them (both from 1,
/// a column per character).
struct LineOffsets<'a> {
    text: &'a str,
    starts: Vec<usize>,
}

impl<'a> LineOffsets<'a> {
    fn new(text: &'a str) -> Self {
        let starts = std::iter::once(0)
            .chain(text.match_indices('\n').map(|(i, _)| i + 1))
            .collect();
        LineOffsets { text, starts }
    }

    fn byte(&self, line: u64, column: u64) -> usize {
        let Some(&start) = self.starts.get((line as usize).saturating_sub(1)) else {
            return self.text.len();
        };
        self.text[start..]
            .char_indices()
            .nth((column as usize).saturating_sub(1))
            .map_or(self.text.len(), |(i, _)| start + i)
    }
}

fn placeholder<'t, 'v>(
    text: &'t str,
    values: &Values<'v>,
) -> Option<(&'static str, &'v str, &'t str)> {
    [
        ("%%USER%%", "user", values.user),
        ("%%ROLE%%", "user", values.role()),
        ("%%PASSWORD%%", "password", values.password),
        ("%%DATABASE%%", "database", values.database),
    ]
    .into_iter()
    .find_map(|(token, name, value)| text.strip_prefix(token).map(|tail| (name, value, tail)))
}

/// A value as its position needs it. Inside quotes, the quoted form without its outer
/// quotes (a doubled `''` or `""` is how SQL escapes either, so the text stays inside).
fn quoted(dialect: Dialect, context: &Context, name: &str, value: &str) -> Result<String> {
    let inner = |q: String| q[1..q.len() - 1].to_owned();
    Ok(match context {
        Context::Literal if dialect == Dialect::Mysql => inner(sql::literal(dialect, value)?),
        Context::Literal => {
            let lit = sql::literal(dialect, value)?;
            // An E'' literal cannot be opened inside a plain one; double quotes only.
            match lit.starts_with('E') {
                true => value.replace('\'', "''"),
                false => inner(lit),
            }
        }
        Context::Escaped => value.replace('\\', "\\\\").replace('\'', "''"),
        Context::Identifier => inner(sql::ident(dialect, value)?),
        Context::Dollar(tag) if value.contains(&format!("${tag}$")) => {
            return Err(crate::error::Error::InvalidInput(format!(
                "the {name} holds the closing tag of the dollar quote it stands in"
            )));
        }
        Context::Dollar(_) | Context::Comment => value.to_owned(),
        Context::Bare if name == "password" => sql::literal(dialect, value)?,
        Context::Bare => sql::ident(dialect, value)?,
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
    fn a_poolers_namespace_is_left_out_of_the_role() {
        let supabase = Values {
            user: "postgres.mpodkwxxymffedxjmsqv",
            ..VALUES
        };
        let text = "GRANT USAGE ON SCHEMA app TO %%ROLE%%; -- login %%USER%%\nSELECT '%%USER%%'";
        assert_eq!(
            substitute(Dialect::Postgres, text, &supabase).unwrap(),
            "GRANT USAGE ON SCHEMA app TO \"postgres\"; -- login %%USER%%\nSELECT 'postgres.mpodkwxxymffedxjmsqv'"
        );
        assert_eq!(VALUES.role(), "databot");
    }

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
    fn comments_escape_strings_and_dollar_quotes_are_read_as_sql() {
        let pg = |text: &str| substitute(Dialect::Postgres, text, &VALUES).unwrap();
        // A quote inside a comment opens nothing: the placeholder after it is bare.
        assert_eq!(
            pg("-- don't\nALTER ROLE %%USER%% PASSWORD %%PASSWORD%%;"),
            "-- don't\nALTER ROLE \"databot\" PASSWORD 'p''w@x';"
        );
        assert_eq!(
            pg("/* it's */ SELECT %%PASSWORD%%"),
            "/* it's */ SELECT 'p''w@x'"
        );
        // In an E'' string backslashes escape, so one in the value is doubled.
        let tricky = Values {
            password: "a\\'; DROP TABLE x; --",
            ..VALUES
        };
        let out = substitute(Dialect::Postgres, "SELECT E'%%PASSWORD%%'", &tricky).unwrap();
        assert_eq!(out, "SELECT E'a\\\\''; DROP TABLE x; --'");
        // In a dollar quote the value goes in verbatim, unless it could close it.
        assert_eq!(
            pg("DO $$ BEGIN RAISE NOTICE '%%USER%%'; END $$"),
            "DO $$ BEGIN RAISE NOTICE 'databot'; END $$"
        );
        let closing = Values {
            user: "x$$; DROP TABLE y; --",
            ..VALUES
        };
        assert!(substitute(Dialect::Postgres, "DO $$ SELECT '%%USER%%' $$", &closing).is_err());
        // In a comment nothing is put (a comment can reach a server's log).
        assert_eq!(
            pg("-- for %%PASSWORD%%\nSELECT 1"),
            "-- for %%PASSWORD%%\nSELECT 1"
        );
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
