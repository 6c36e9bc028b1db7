//! Connection URLs read field by field as Blockyard reads them and as its users' own
//! tools do: libpq (`psycopg2.extensions.parse_dsn`, which is `PQconninfoParse`) and
//! SQLAlchemy (`make_url`, and for PostgreSQL the keywords its psycopg2 dialect hands
//! to libpq), both from the test venv; and the URL Blockyard prints read back by both.
//! Every URL lands in a class the README's "Connection URLs" section explains, or the
//! test fails naming it.

use std::collections::BTreeMap;
use std::process::{Command, Stdio};

use blockyard::connect::ConnectionInfo;
use serde_json::{Value, json};

use crate::support::python;

/// PostgreSQL's own libpq URI regression cases (src/interfaces/libpq/test/regress.in).
const LIBPQ_REGRESS: &str = "postgresql://uri-user:secret@host:12345/db
postgresql://uri-user@host:12345/db
postgresql://uri-user@host/db
postgresql://host:12345/db
postgresql://host/db
postgresql://uri-user@host:12345/
postgresql://uri-user@host/
postgresql://uri-user@
postgresql://host:12345/
postgresql://host:12345
postgresql://host/
postgresql://host
postgresql://
postgresql://?hostaddr=127.0.0.1
postgresql://example.com?hostaddr=63.1.2.4
postgresql://%68ost/
postgresql://host/db?user=uri-user
postgresql://host/db?user=uri-user&port=12345
postgresql://host/db?u%73er=someotheruser&port=12345
postgresql://host/db?u%7aer=someotheruser&port=12345
postgresql://host:12345?user=uri-user
postgresql://host?user=uri-user
postgresql://host?
postgresql://[::1]:12345/db
postgresql://[::1]/db
postgresql://[2001:db8::1234]/
postgresql://[200z:db8::1234]/
postgresql://[::1]
postgres://
postgres:///
postgres:///db
postgres://uri-user@/db
postgres://?host=/path/to/socket/dir
postgresql://host?uzer=
postgre://
postgres://[::1
postgres://[]
postgres://[::1]z
postgresql://host?zzz
postgresql://host?value1&value2
postgresql://host?key=key=value
postgres://host?dbname=%XXfoo
postgresql://a%00b
postgresql://%zz
postgresql://%1
postgresql://%
postgres://@host
postgres://host:/
postgres://:12345/
postgres://otheruser@?host=/no/such/directory
postgres://otheruser@/?host=/no/such/directory
postgres://otheruser@:12345?host=/no/such/socket/path
postgres://otheruser@:12345/db?host=/path/to/socket
postgres://:12345/db?host=/path/to/socket
postgres://:12345?host=/path/to/socket
postgres://%2Fvar%2Flib%2Fpostgresql/dbname";

/// Drivers, hosts, sockets, ports and options people write, beyond libpq's cases.
const BY_HAND: &str = "postgresql+psycopg2://u:p@ss@host/db
postgresql://u@h/db#frag
postgresql://u@bücher.example/db
postgresql://u@h1:5432,h2:5433/db
postgresql://u@h1,h2/db
postgresql://u@h1,h2:5433/db
postgresql://u@[fe80::1%25eth0]:5432/db
postgresql://u@[::1]/db
postgresql:///db?host=/var/run/postgresql
postgresql:///db?host=/tmp&port=5433
postgresql://u@/db?hostaddr=127.0.0.1
postgresql://%2Fvar%2Frun%2Fpostgresql/db
postgresql://postgres@host/postgres?dbname=app
postgresql://postgres@host/postgres?user=app&port=6543
postgresql://u@host/db?service=reporting
postgresql://u@host/db?ssl=true
postgresql://u@host/db?application_name=a+b
postgresql://u@host/db?options=-c%20search_path%3Dapp
postgresql://u:pw@host/db?password=other
postgresql://postgres.mpodkwxxymffedxjmsqv:pw@aws-0-eu-central-1.pooler.supabase.com:6543/postgres
postgresql+asyncpg://u:p@host/db?ssl=disable
postgresql+asyncpg://u@host/db?prepared_statement_cache_size=0
postgresql+pg8000://u:p@host:5432/db
postgres://u:p@host/db
cockroachdb+psycopg2://databot:pw@localhost:26257/sage
cockroachdb://databot@localhost/sage?sslmode=verify-full
redshift+psycopg2://u:p@cluster.example:5439/dev
postgresql://u@h:0/db
postgresql://u@h:65536/db
postgresql://u@h:abc/db
postgresql://u@h:/db
postgresql://u:p%FFss@h/db
mysql://u:p@h:3306/db
mysql+pymysql://u:p%40ss@h/db?charset=utf8mb4
mysql+mysqldb://u@localhost/db?unix_socket=/var/run/mysqld/mysqld.sock
mariadb+mariadbconnector://u:p@h/db
mysql+pymysql://u:p@h:0/db
mysql+pymysql://u:p@[::1]:3306/db
sqlite:///relative.db
sqlite:////abs/x.db
sqlite://
sqlite:////tmp/x.db?mode=ro&uri=true
sqlite+aiosqlite:///data/x.db
mssql+pyodbc://u:p@h/db?driver=ODBC+Driver+18+for+SQL+Server";

/// Every printable special character, raw and percent-encoded, in each part.
fn special_characters() -> Vec<String> {
    let mut urls = Vec::new();
    for c in " !\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~".chars() {
        for x in [c.to_string(), format!("%{:02X}", c as u32)] {
            urls.push(format!("postgresql://us{x}er@host/db"));
            urls.push(format!("postgresql://user:pa{x}ss@host/db"));
            urls.push(format!("postgresql://user@ho{x}st/db"));
            urls.push(format!("postgresql://user@host/d{x}b"));
            urls.push(format!("postgresql://user@host/db?application_name=a{x}b"));
        }
    }
    urls
}

/// Every connection keyword libpq documents, given in the query.
fn every_libpq_option() -> Vec<String> {
    blockyard::connect::libpq::options()
        .map(|option| format!("postgresql://u@host/db?{option}=1"))
        .collect()
}

fn corpus() -> Vec<String> {
    let mut urls: Vec<String> = LIBPQ_REGRESS
        .lines()
        .chain(BY_HAND.lines())
        .map(str::to_owned)
        .collect();
    urls.extend(special_characters());
    urls.extend(every_libpq_option());
    urls
}

const PEERS: &str = r#"
import json, sys
from psycopg2.extensions import parse_dsn
from sqlalchemy.engine import make_url
from sqlalchemy.dialects.postgresql.psycopg2 import PGDialect_psycopg2
LIBPQ = {"postgresql", "postgres", "psql", "cockroachdb", "cockroach", "redshift"}
def flat(v):
    return ",".join(map(str, v)) if isinstance(v, (list, tuple)) else str(v)
def libpq(url):
    try:
        return dict(parse_dsn("postgresql://" + url.split("://", 1)[1]))
    except Exception as e:
        return {"!refused": type(e).__name__}
def sqla_libpq(url):
    try:
        u = make_url("postgresql+psycopg2://" + url.split("://", 1)[1])
        return {k: flat(v) for k, v in PGDialect_psycopg2().create_connect_args(u)[1].items()}
    except Exception as e:
        return {"!refused": type(e).__name__}
def sqla_fields(url):
    try:
        u = make_url(url)
    except Exception as e:
        return {"!refused": type(e).__name__}
    d = {"driver": u.drivername, "username": u.username, "password": u.password,
         "host": u.host, "port": None if u.port is None else str(u.port), "database": u.database,
         "query": {k: flat(v) for k, v in u.query.items()}}
    return {k: v for k, v in d.items() if v not in (None, "", {})}
out = []
for url in json.load(sys.stdin):
    if url is None:
        out.append(None)
    elif url.split("://", 1)[0].split("+")[0].lower() in LIBPQ:
        out.append({"libpq": libpq(url), "sqlalchemy": sqla_libpq(url)})
    else:
        out.append({"sqlalchemy": sqla_fields(url)})
print(json.dumps(out))
"#;

/// The peers' readings of each URL (`None` stays `None`).
fn peers(urls: &[Option<String>]) -> Vec<Value> {
    let mut child = Command::new(python())
        .args(["-c", PEERS])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    serde_json::to_writer(child.stdin.take().unwrap(), urls).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    serde_json::from_slice(&out.stdout).unwrap()
}

/// Blockyard's reading in the peers' shape: libpq's keywords for a PostgreSQL-family
/// URL, `make_url`'s fields for any other; `None` if it refuses the URL.
fn blockyard(url: &str) -> Option<(BTreeMap<String, String>, String)> {
    let info = ConnectionInfo::from_url("u", url).ok()?;
    let printed = info.display_url(true).ok().unwrap_or_default();
    // What Blockyard prints, Blockyard reads back as the same connection.
    let back = ConnectionInfo::from_url("u", &printed).unwrap_or_else(|e| panic!("{printed}: {e}"));
    assert_eq!(back.display_url(true).unwrap(), printed, "{url}");
    assert_eq!(
        back.libpq_params(),
        info.libpq_params(),
        "{url} printed as {printed}"
    );
    let reading = match info.driver().map(|d| d.backend()) {
        Ok(blockyard::db::Backend::Postgres) => info.libpq_params().into_iter().collect(),
        _ => {
            let mut fields = BTreeMap::new();
            let mut put = |k: &str, v: Option<String>| {
                if let Some(v) = v.filter(|v| !v.is_empty() && v != ":memory:") {
                    fields.insert(k.to_owned(), v);
                }
            };
            put("driver", Some(info.driver.clone()));
            put("username", info.username.clone());
            put("password", info.password.clone());
            put("host", info.host.clone());
            put("port", info.port.map(|p| p.to_string()));
            put("database", Some(info.database.clone()));
            put(
                "query",
                (!info.query.is_empty()).then(|| json!(info.query).to_string()),
            );
            fields
        }
    };
    Some((reading, printed))
}

/// A peer's reading as a map (`None` if it refused): several ports without a port are
/// libpq's default (`,`); `make_url`'s query is compared as JSON, with the query's
/// password taken as the password (Blockyard's rule: `?password=` is the password).
fn peer_reading(value: &Value) -> Option<BTreeMap<String, String>> {
    let map = value.as_object()?;
    if map.contains_key("!refused") {
        return None;
    }
    let mut reading: BTreeMap<String, String> = BTreeMap::new();
    for (k, v) in map {
        match v {
            Value::Object(query) => {
                let mut query = query.clone();
                for key in blockyard::document::LOGIN_PASSWORD_KEYS {
                    if let Some(Value::String(pw)) = query.remove(*key) {
                        reading.insert("password".into(), pw);
                    }
                }
                if !query.is_empty() {
                    reading.insert(k.clone(), Value::Object(query).to_string());
                }
            }
            Value::String(s) if k == "port" && s.chars().all(|c| c == ',') => {}
            Value::String(s) => {
                reading.entry(k.clone()).or_insert_with(|| s.clone());
            }
            other => {
                reading.insert(k.clone(), other.to_string());
            }
        }
    }
    Some(reading)
}

/// Why Blockyard's reading of `url` may differ from libpq's, or `None` if it may not.
fn libpq_difference(
    url: &str,
    ours: Option<&BTreeMap<String, String>>,
    libpq: Option<&BTreeMap<String, String>>,
) -> Option<&'static str> {
    match (ours, libpq) {
        (None, Some(theirs)) if theirs.get("port").is_some_and(|p| !ports_valid(p)) => {
            Some("a port that is not one, refused when written (libpq fails when connecting)")
        }
        (None, Some(_)) if url.contains("%FF") => Some("not UTF-8 once decoded"),
        (Some(_), None) if NEWER_LIBPQ.iter().any(|o| url.contains(&format!("?{o}="))) => {
            Some("a libpq 18 keyword psycopg2's libpq 17 does not know")
        }
        (Some(_), None) if has_foreign_option(url) => Some(
            "an option libpq does not know (a driver's own): kept for the driver, left out of \
             what libpq is given (asyncpg's ssl becomes sslmode)",
        ),
        (Some(ours), Some(theirs)) => {
            let mut extra = ours.clone();
            extra.retain(|k, v| theirs.get(k) != Some(v));
            let port_default = extra.len() == 1
                && extra
                    .get("port")
                    .is_some_and(|p| p == "26257" || p == "5439")
                && !theirs.contains_key("port");
            port_default.then_some("the dialect's default port (CockroachDB, Redshift)")
        }
        _ => None,
    }
}

/// Whether each of a comma-separated list of ports is empty or a port number.
fn ports_valid(ports: &str) -> bool {
    ports
        .split(',')
        .all(|p| p.is_empty() || p.parse::<u16>().is_ok_and(|n| n > 0))
}

/// Whether the URL's query names an option libpq does not know.
fn has_foreign_option(url: &str) -> bool {
    let own = ["host", "port", "dbname", "user", "password"];
    blockyard::dsn::Dsn::parse(url)
        .and_then(|d| d.query())
        .is_ok_and(|q| {
            q.iter().any(|(k, _)| {
                !own.contains(&k.as_str()) && !blockyard::connect::libpq::is_option(k)
            })
        })
}

/// Why SQLAlchemy reads a URL otherwise than libpq (and Blockyard) do, for the report.
fn sqlalchemy_difference(
    url: &str,
    ours: Option<&BTreeMap<String, String>>,
    sqla: Option<&BTreeMap<String, String>>,
) -> &'static str {
    let netloc = url
        .split("://")
        .nth(1)
        .unwrap_or_default()
        .split(['/', '?'])
        .next()
        .unwrap_or_default();
    match (ours, sqla) {
        (None, _) => "it accepts what libpq refuses (a malformed query or % token)",
        (Some(_), _) if netloc.contains(',') || netloc.ends_with(':') => {
            "it reads several host:port otherwise or not at all, or refuses an empty port"
        }
        (Some(ours), Some(theirs))
            if ours.get("host") != theirs.get("host")
                && theirs.get("host").is_some_and(|h| h.contains('%')) =>
        {
            "it leaves the host percent-encoded"
        }
        (Some(ours), Some(theirs)) if ours.get("user") != theirs.get("user") => {
            "it ends the user name at the last @"
        }
        (Some(_), Some(theirs))
            if theirs.values().any(|v| v.contains(' ')) && url.contains('+') =>
        {
            "it reads + in the query as a space"
        }
        (Some(_), Some(theirs)) if theirs.contains_key("ssl") => "it hands ssl=true to libpq",
        _ => "other",
    }
}

/// Keywords of the bundled libpq 18 that psycopg2-binary's libpq 17 refuses.
const NEWER_LIBPQ: &[&str] = &[
    "min_protocol_version",
    "max_protocol_version",
    "scram_client_key",
    "scram_server_key",
    "oauth_issuer",
    "oauth_client_id",
    "oauth_client_secret",
    "oauth_scope",
    "sslkeylogfile",
];

#[test]
fn urls_read_as_libpq_and_sqlalchemy_read_them() {
    let urls = corpus();
    assert!(urls.len() >= 150, "{}", urls.len());
    let ours: Vec<_> = urls.iter().map(|u| blockyard(u)).collect();
    let printed: Vec<Option<String>> = ours
        .iter()
        .map(|o| o.as_ref().map(|(_, p)| p.clone()))
        .collect();
    let readings = peers(&urls.iter().cloned().map(Some).collect::<Vec<_>>());
    let readings_back = peers(&printed);
    let mut classes: BTreeMap<String, usize> = BTreeMap::new();
    let mut unexplained = Vec::new();
    for (i, url) in urls.iter().enumerate() {
        let ours_map = ours[i].as_ref().map(|(m, _)| m);
        let libpq = readings[i].get("libpq").map(peer_reading);
        let sqla = peer_reading(&readings[i]["sqlalchemy"]);
        let class = match libpq {
            Some(libpq) if libpq.as_ref() == ours_map && sqla.as_ref() == ours_map => {
                "same as both".to_owned()
            }
            Some(libpq) if libpq.as_ref() == ours_map => format!(
                "same as libpq; SQLAlchemy reads it otherwise: {}",
                sqlalchemy_difference(url, ours_map, sqla.as_ref())
            ),
            Some(libpq) => match libpq_difference(url, ours_map, libpq.as_ref()) {
                Some(why) => format!("differs from libpq: {why}"),
                None => {
                    unexplained.push(format!(
                        "{url}\n  ours {ours_map:?}\n  libpq {libpq:?}\n  sqlalchemy {sqla:?}"
                    ));
                    "unexplained".to_owned()
                }
            },
            None if sqla.as_ref() == ours_map => "same as SQLAlchemy".to_owned(),
            None if ours_map.is_none() && url.contains(":0/") => {
                "differs from SQLAlchemy: port refused when written".to_owned()
            }
            None => {
                unexplained.push(format!("{url}\n  ours {ours_map:?}\n  sqlalchemy {sqla:?}"));
                "unexplained".to_owned()
            }
        };
        *classes.entry(class).or_default() += 1;
        check_printed(
            url,
            ours_map,
            &readings[i],
            &readings_back[i],
            &mut unexplained,
        );
    }
    eprintln!("{} URLs:", urls.len());
    for (class, n) in &classes {
        eprintln!("  {n:4}  {class}");
    }
    assert!(unexplained.is_empty(), "{}", unexplained.join("\n"));
}

/// The URL Blockyard prints reads back, in each peer that read the original as
/// Blockyard does, as the same connection.
fn check_printed(
    url: &str,
    ours: Option<&BTreeMap<String, String>>,
    original: &Value,
    back: &Value,
    unexplained: &mut Vec<String>,
) {
    let Some(ours) = ours else { return };
    for peer in ["libpq", "sqlalchemy"] {
        let agreed = original.get(peer).and_then(peer_reading).as_ref() == Some(ours);
        let back_reading = back.get(peer).and_then(peer_reading);
        if agreed && back_reading.as_ref() != Some(ours) {
            unexplained.push(format!(
                "{url} printed, read back by {peer}: {back_reading:?}, ours {ours:?}"
            ));
        }
    }
}
