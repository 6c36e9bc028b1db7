//! libpq's connection keywords, one table: what libpq 18 (the bundled one) knows, from
//! fe-connect.c's `PQconninfoOptions`, and the environment variable it reads each from
//! (`None`: it reads none, so `exec` cannot pass it by the environment).

/// Each keyword and its variable.
const KEYWORDS: &[(&str, Option<&str>)] = &[
    ("host", Some("PGHOST")),
    ("port", Some("PGPORT")),
    ("user", Some("PGUSER")),
    ("password", Some("PGPASSWORD")),
    ("dbname", Some("PGDATABASE")),
    ("service", Some("PGSERVICE")),
    ("passfile", Some("PGPASSFILE")),
    ("channel_binding", Some("PGCHANNELBINDING")),
    ("connect_timeout", Some("PGCONNECT_TIMEOUT")),
    ("hostaddr", Some("PGHOSTADDR")),
    ("client_encoding", Some("PGCLIENTENCODING")),
    ("options", Some("PGOPTIONS")),
    ("application_name", Some("PGAPPNAME")),
    ("fallback_application_name", None),
    ("keepalives", None),
    ("keepalives_idle", None),
    ("keepalives_interval", None),
    ("keepalives_count", None),
    ("tcp_user_timeout", None),
    ("sslmode", Some("PGSSLMODE")),
    ("sslnegotiation", Some("PGSSLNEGOTIATION")),
    ("sslcompression", Some("PGSSLCOMPRESSION")),
    ("sslcert", Some("PGSSLCERT")),
    ("sslkey", Some("PGSSLKEY")),
    ("sslcertmode", Some("PGSSLCERTMODE")),
    ("sslpassword", None),
    ("sslrootcert", Some("PGSSLROOTCERT")),
    ("sslcrl", Some("PGSSLCRL")),
    ("sslcrldir", Some("PGSSLCRLDIR")),
    ("sslsni", Some("PGSSLSNI")),
    ("requirepeer", Some("PGREQUIREPEER")),
    ("require_auth", Some("PGREQUIREAUTH")),
    ("min_protocol_version", Some("PGMINPROTOCOLVERSION")),
    ("max_protocol_version", Some("PGMAXPROTOCOLVERSION")),
    ("ssl_min_protocol_version", Some("PGSSLMINPROTOCOLVERSION")),
    ("ssl_max_protocol_version", Some("PGSSLMAXPROTOCOLVERSION")),
    ("gssencmode", Some("PGGSSENCMODE")),
    ("krbsrvname", Some("PGKRBSRVNAME")),
    ("gsslib", Some("PGGSSLIB")),
    ("gssdelegation", Some("PGGSSDELEGATION")),
    ("replication", None),
    ("target_session_attrs", Some("PGTARGETSESSIONATTRS")),
    ("load_balance_hosts", Some("PGLOADBALANCEHOSTS")),
    ("scram_client_key", None),
    ("scram_server_key", None),
    ("oauth_issuer", None),
    ("oauth_client_id", None),
    ("oauth_client_secret", None),
    ("oauth_scope", None),
    ("sslkeylogfile", None),
];

/// The keywords a block keeps in its own fields rather than its query.
const OWN: &[&str] = &["host", "port", "user", "password", "dbname"];

/// Whether libpq knows `keyword` as a query option (not one of the block's own fields).
pub fn is_option(keyword: &str) -> bool {
    !OWN.contains(&keyword) && KEYWORDS.iter().any(|(k, _)| *k == keyword)
}

/// Every query option libpq knows (its keywords but the block's own fields).
pub fn options() -> impl Iterator<Item = &'static str> {
    KEYWORDS
        .iter()
        .map(|(k, _)| *k)
        .filter(|k| !OWN.contains(k))
}

/// The environment variable libpq reads `keyword` from (`PGHOST` for `host`), if any.
pub fn variable(keyword: &str) -> Option<&'static str> {
    KEYWORDS
        .iter()
        .find(|(k, _)| *k == keyword)
        .and_then(|(_, var)| *var)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keywords_and_their_variables() {
        assert!(is_option("sslmode") && is_option("sslkeylogfile"));
        assert!(!is_option("host") && !is_option("ssl") && !is_option("pool_size"));
        assert_eq!(variable("host"), Some("PGHOST"));
        assert_eq!(variable("connect_timeout"), Some("PGCONNECT_TIMEOUT"));
        assert_eq!(variable("sslpassword"), None);
    }
}
