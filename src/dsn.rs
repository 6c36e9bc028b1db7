//! Connection URLs read exactly as their own clients read them: a PostgreSQL-family URL
//! (`postgresql://`, `postgres://`, `cockroachdb+psycopg2://`, `redshift://`, ...) as
//! libpq reads a URI (fe-connect.c, `conninfo_uri_parse_options`), any other as
//! SQLAlchemy's `make_url` reads it. Each part is kept as a byte range of the text, so
//! a password can be masked and put back without touching any other byte.
//!
//! Written here because no crate reads either grammar: `url` follows WHATWG (the last
//! `@` ends the credentials, hosts are normalised and punycoded) and tokio-postgres reads
//! an `@` in the query as the end of credentials. tests/it/strings compares every field
//! with libpq's own `PQconninfoParse` and SQLAlchemy's `make_url`.

use std::ops::Range;
use std::sync::LazyLock;

use percent_encoding::percent_decode_str;

/// Whose grammar a URL is read with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Grammar {
    /// libpq's URI grammar: the first `@` before a `/` ends the credentials, several
    /// `host:port` separated by commas, every part percent-decoded, `%00` refused.
    Libpq,
    /// SQLAlchemy's `make_url`: its regular expression, the host as written, the query
    /// read by `parse_qsl` (`+` is a space, blank values dropped).
    Sqlalchemy,
}

/// A connection URL's parts, as ranges of its text.
#[derive(Clone, Debug)]
pub struct Dsn<'a> {
    text: &'a str,
    pub grammar: Grammar,
    scheme: Range<usize>,
    user: Option<Range<usize>>,
    password: Option<Range<usize>>,
    /// Each host (inside its brackets for IPv6) and its port, if one follows.
    netlocs: Vec<(Range<usize>, Option<Range<usize>>)>,
    database: Option<Range<usize>>,
    /// Each query parameter's key and value.
    query: Vec<(Range<usize>, Range<usize>)>,
}

/// A part's place in the URL's text.
type Span = Range<usize>;

/// Query parameters: each key's and value's place.
type Pairs = Vec<(Span, Span)>;

/// Why a URL cannot be read. Never quotes the URL, which may hold a password.
pub type Refusal = String;

/// The dialects whose URLs libpq reads (the part of the scheme before `+`).
const LIBPQ_DIALECTS: &[&str] = &[
    "postgresql",
    "postgres",
    "psql",
    "cockroachdb",
    "cockroach",
    "redshift",
];

impl<'a> Dsn<'a> {
    /// Reads `text` with the grammar its scheme calls for.
    pub fn parse(text: &'a str) -> Result<Dsn<'a>, Refusal> {
        let scheme_end = text
            .find("://")
            .filter(|&end| {
                end > 0
                    && text[..end]
                        .chars()
                        .all(|c| c.is_alphanumeric() || c == '_' || c == '+')
            })
            .ok_or("not a connection URL (driver://user@host:port/database)")?;
        let dialect = text[..scheme_end].split('+').next().unwrap_or_default();
        match LIBPQ_DIALECTS.contains(&dialect.to_ascii_lowercase().as_str()) {
            true => libpq(text, scheme_end),
            false => sqlalchemy(text, scheme_end),
        }
    }

    /// Whether `text` is a URL this module reads (not an HTTP one, which WHATWG's
    /// grammar reads).
    pub fn is_connection_url(text: &str) -> bool {
        let scheme = text
            .split("://")
            .next()
            .unwrap_or_default()
            .to_ascii_lowercase();
        text.contains("://") && !matches!(scheme.as_str(), "http" | "https" | "ws" | "wss" | "file")
    }

    pub fn text(&self) -> &'a str {
        self.text
    }

    pub fn scheme(&self) -> &'a str {
        &self.text[self.scheme.clone()]
    }

    /// The password's range in the text, as written (still percent-encoded).
    pub fn password_span(&self) -> Option<Range<usize>> {
        self.password.clone()
    }

    pub fn user(&self) -> Result<Option<String>, Refusal> {
        self.decoded(&self.user, "user name")
    }

    pub fn password(&self) -> Result<Option<String>, Refusal> {
        self.decoded(&self.password, "password")
    }

    pub fn database(&self) -> Result<Option<String>, Refusal> {
        self.decoded(&self.database, "database name")
    }

    /// The hosts, comma-separated as libpq keeps them (`h1,h2`); absent when empty.
    /// SQLAlchemy keeps its one host as written; libpq decodes each.
    pub fn host(&self) -> Result<Option<String>, Refusal> {
        let hosts: Vec<String> = self
            .netlocs
            .iter()
            .map(|(host, _)| self.part(host, "host"))
            .collect::<Result<_, _>>()?;
        Ok(Some(hosts.join(",")).filter(|h| !h.is_empty()))
    }

    /// The ports, comma-separated in the order of the hosts (`5432,,5433`); absent when
    /// no host has one.
    pub fn port(&self) -> Result<Option<String>, Refusal> {
        let ports: Vec<String> = self
            .netlocs
            .iter()
            .map(|(_, port)| Ok(self.decoded(port, "port")?.unwrap_or_default()))
            .collect::<Result<_, Refusal>>()?;
        Ok(Some(ports.join(",")).filter(|p| !p.chars().all(|c| c == ',')))
    }

    /// Each query parameter, decoded, in order.
    pub fn query(&self) -> Result<Vec<(String, String)>, Refusal> {
        self.query
            .iter()
            .map(|(key, value)| Ok((self.part(key, "query")?, self.part(value, "query")?)))
            .collect()
    }

    /// Each query parameter: its decoded key and value, and its value's range in the
    /// text.
    pub fn query_spans(&self) -> Result<Vec<(String, String, Range<usize>)>, Refusal> {
        self.query
            .iter()
            .map(|(key, value)| {
                let (k, v) = (self.part(key, "query")?, self.part(value, "query")?);
                Ok((k, v, value.clone()))
            })
            .collect()
    }

    /// What is refused when the URL is written: a part that does not decode, or a port
    /// (the URL's, or libpq's `port` option) that is not a number from 1 to 65535.
    pub fn check(&self) -> Result<(), Refusal> {
        if self.grammar == Grammar::Libpq && self.text.contains('\0') {
            return Err("the URL holds a NUL character, which libpq cannot read".into());
        }
        self.user()?;
        self.password()?;
        self.database()?;
        if self
            .host()?
            .is_some_and(|h| h.chars().any(char::is_control))
        {
            return Err("the host holds a control character".into());
        }
        let query = self.query()?;
        let option = query
            .into_iter()
            .filter(|(k, _)| self.grammar == Grammar::Libpq && k == "port")
            .map(|(_, v)| v);
        for ports in self.port()?.into_iter().chain(option) {
            let valid = |p: &str| p.is_empty() || p.parse::<u16>().is_ok_and(|n| n > 0);
            if !ports.split(',').all(valid) {
                return Err("a port is not a number from 1 to 65535".into());
            }
        }
        Ok(())
    }

    fn decoded(&self, span: &Option<Range<usize>>, what: &str) -> Result<Option<String>, Refusal> {
        span.as_ref().map(|s| self.part(s, what)).transpose()
    }

    fn part(&self, span: &Range<usize>, what: &str) -> Result<String, Refusal> {
        let raw = &self.text[span.clone()];
        match self.grammar {
            Grammar::Libpq => libpq_decode(raw, what),
            Grammar::Sqlalchemy if what == "host" || what == "port" => Ok(raw.to_owned()),
            Grammar::Sqlalchemy if what == "query" => {
                Ok(percent_decode_str(&raw.replace('+', " "))
                    .decode_utf8_lossy()
                    .into_owned())
            }
            Grammar::Sqlalchemy => Ok(percent_decode_str(raw).decode_utf8_lossy().into_owned()),
        }
    }
}

/// libpq's `conninfo_uri_decode`: `%XX` only, a malformed `%` or `%00` refused; the
/// result must be UTF-8 to be stored.
fn libpq_decode(raw: &str, what: &str) -> Result<String, Refusal> {
    let bytes = raw.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] != b'%' {
            out.push(bytes[i]);
            i += 1;
            continue;
        }
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok().filter(|_| h.bytes().all(|b| b.is_ascii_hexdigit())))
            .ok_or_else(|| format!("the {what} has an invalid percent-encoded token (% must be followed by two hex digits; write % as %25)"))?;
        if hex == 0 {
            return Err(format!("the {what} holds %00, which libpq refuses"));
        }
        out.push(hex);
        i += 3;
    }
    String::from_utf8(out).map_err(|_| format!("the {what} is not valid UTF-8 once decoded"))
}

/// The first index at or after `from` whose byte is one of `stops`, or the end.
fn scan(text: &str, from: usize, stops: &[u8]) -> usize {
    text.as_bytes()[from..]
        .iter()
        .position(|b| stops.contains(b))
        .map_or(text.len(), |i| from + i)
}

/// libpq's reading, step by step as `conninfo_uri_parse_options` does it.
fn libpq(text: &str, scheme_end: usize) -> Result<Dsn<'_>, Refusal> {
    let bytes = text.as_bytes();
    let start = scheme_end + 3;
    let mut dsn = Dsn {
        text,
        grammar: Grammar::Libpq,
        scheme: 0..scheme_end,
        user: None,
        password: None,
        netlocs: Vec::new(),
        database: None,
        query: Vec::new(),
    };
    let mut p = start;
    let at = scan(text, start, b"@/");
    if bytes.get(at) == Some(&b'@') {
        let user_end = scan(text, start, b":@");
        dsn.user = Some(start..user_end).filter(|s| !s.is_empty());
        if bytes[user_end] == b':' {
            dsn.password = Some(user_end + 1..at).filter(|s| !s.is_empty());
        }
        p = at + 1;
    }
    let mut terminator;
    loop {
        let (host, port, end) = netloc(text, p)?;
        dsn.netlocs.push((host, port));
        p = end;
        terminator = bytes.get(p).copied();
        if terminator != Some(b',') {
            break;
        }
        p += 1;
    }
    if terminator.is_some_and(|t| t != b'?') {
        let db_start = p + 1;
        p = scan(text, db_start, b"?");
        dsn.database = Some(db_start..p).filter(|s| !s.is_empty());
        terminator = bytes.get(p).copied();
    }
    if terminator.is_some() {
        dsn.query = libpq_params(text, p + 1)?;
    }
    Ok(dsn)
}

/// One `host[:port]` of libpq's list, starting at `p`: the host's range (inside the
/// brackets of an IPv6 address), the port's, and where the netloc ends.
fn netloc(text: &str, mut p: usize) -> Result<(Span, Option<Span>, usize), Refusal> {
    let bytes = text.as_bytes();
    let host = if bytes.get(p) == Some(&b'[') {
        let open = p;
        let close = scan(text, open + 1, b"]");
        if close == text.len() {
            return Err("an IPv6 host has no closing ]".into());
        }
        if close == open + 1 {
            return Err("an IPv6 host is empty ([])".into());
        }
        p = close + 1;
        if !matches!(bytes.get(p), None | Some(b':' | b'/' | b'?' | b',')) {
            return Err("an IPv6 host's ] must be followed by :port, /, ? or ,".into());
        }
        open + 1..close
    } else {
        let start = p;
        p = scan(text, p, b":/?,");
        start..p
    };
    if bytes.get(p) != Some(&b':') {
        return Ok((host, None, p));
    }
    let port_start = p + 1;
    let end = scan(text, port_start, b"/?,");
    Ok((host, Some(port_start..end), end))
}

/// libpq's `conninfo_uri_parse_params`: `key=value` pairs separated by `&`, each with
/// exactly one `=`.
fn libpq_params(text: &str, from: usize) -> Result<Pairs, Refusal> {
    let mut pairs = Vec::new();
    let mut p = from;
    while p < text.len() {
        let end = scan(text, p, b"&");
        let pair = &text[p..end];
        let Some(eq) = pair.find('=') else {
            return Err("a query parameter has no = (write key=value, separated by &)".into());
        };
        if pair[eq + 1..].contains('=') {
            return Err("a query parameter has a second = (percent-encode it as %3D)".into());
        }
        if eq == 0 {
            return Err("a query parameter has no name".into());
        }
        pairs.push((p..p + eq, p + eq + 1..end));
        p = if end < text.len() { end + 1 } else { end };
    }
    Ok(pairs)
}

/// SQLAlchemy's `make_url` pattern, as in sqlalchemy/engine/url.py (2.x).
static SQLALCHEMY: LazyLock<regex::Regex> = LazyLock::new(|| {
    regex::Regex::new(
        r"(?x)^
        (?P<name>[\w\+]+)://
        (?:
            (?P<username>[^:/]*)
            (?::(?P<password>[^@]*))?
        @)?
        (?:
            (?:
                \[(?P<ipv6host>[^/\?]+)\] |
                (?P<ipv4host>[^/:\?]+)
            )?
            (?::(?P<port>[^/\?]*))?
        )?
        (?:/(?P<database>[^\?]*))?
        (?:\?(?P<query>.*))?",
    )
    .expect("the make_url pattern compiles")
});

fn sqlalchemy(text: &str, scheme_end: usize) -> Result<Dsn<'_>, Refusal> {
    let caps = SQLALCHEMY
        .captures(text)
        .ok_or("not a connection URL (driver://user@host:port/database)")?;
    let span = |name: &str| caps.name(name).map(|m| m.range());
    let host = span("ipv6host").or(span("ipv4host"));
    let port = span("port").filter(|p| !p.is_empty());
    let mut query = Vec::new();
    if let Some(q) = span("query") {
        // parse_qsl: `&`-separated; no `=` or an empty value: dropped.
        let mut p = q.start;
        while p <= q.end {
            let end = scan(&text[..q.end], p, b"&");
            if let Some(eq) = text[p..end].find('=')
                && p + eq + 1 < end
            {
                query.push((p..p + eq, p + eq + 1..end));
            }
            p = end + 1;
        }
    }
    Ok(Dsn {
        text,
        grammar: Grammar::Sqlalchemy,
        scheme: 0..scheme_end,
        user: span("username").filter(|s| !s.is_empty()),
        password: span("password").filter(|s| !s.is_empty()),
        netlocs: match (host, port) {
            (None, None) => Vec::new(),
            (host, port) => vec![(host.unwrap_or(0..0), port)],
        },
        database: span("database"),
        query,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// User, password, host, port, database.
    type Parts = (
        Option<String>,
        Option<String>,
        Option<String>,
        Option<String>,
        Option<String>,
    );

    fn read(text: &str) -> Parts {
        let d = Dsn::parse(text).unwrap();
        (
            d.user().unwrap(),
            d.password().unwrap(),
            d.host().unwrap(),
            d.port().unwrap(),
            d.database().unwrap(),
        )
    }

    fn s(v: &str) -> Option<String> {
        Some(v.to_owned())
    }

    #[test]
    fn libpq_reads_the_first_at_and_several_hosts() {
        assert_eq!(
            read("postgresql://u:p@ss@host/db"),
            (s("u"), s("p"), s("ss@host"), None, s("db"))
        );
        assert_eq!(
            read("postgresql://h1:5432,h2:5433/db"),
            (None, None, s("h1,h2"), s("5432,5433"), s("db"))
        );
        assert_eq!(
            read("postgresql://[fe80::1%25eth0]:5/d#x"),
            (None, None, s("fe80::1%eth0"), s("5"), s("d#x"))
        );
        assert_eq!(
            read("postgresql:///db?host=/tmp"),
            (None, None, None, None, s("db"))
        );
        assert_eq!(
            read("postgresql://%2Ftmp/db"),
            (None, None, s("/tmp"), None, s("db"))
        );
        let d = Dsn::parse("postgresql://h/db?email=a@b&x=a+b").unwrap();
        assert_eq!(d.host().unwrap(), s("h"));
        assert_eq!(
            d.query().unwrap(),
            vec![("email".into(), "a@b".into()), ("x".into(), "a+b".into())]
        );
        for bad in [
            "postgresql://h/db?x",
            "postgresql://h/db?a=1=2",
            "postgresql://h/%00",
            "postgresql://[::1/db",
            "postgresql://h/%zz",
        ] {
            assert!(
                Dsn::parse(bad)
                    .and_then(|d| d.database().and(d.query()))
                    .is_err(),
                "{bad}"
            );
        }
    }

    #[test]
    fn sqlalchemy_reads_other_drivers() {
        assert_eq!(
            read("mysql+pymysql://u:p%40@h:3306/db"),
            (s("u"), s("p@"), s("h"), s("3306"), s("db"))
        );
        let d = Dsn::parse("sqlite:////tmp/x.db?mode=ro&uri=true&blank=").unwrap();
        assert_eq!(d.database().unwrap(), s("/tmp/x.db"));
        assert_eq!(
            d.query().unwrap(),
            vec![("mode".into(), "ro".into()), ("uri".into(), "true".into())]
        );
        assert_eq!(read("sqlite://"), (None, None, None, None, None));
    }
}
