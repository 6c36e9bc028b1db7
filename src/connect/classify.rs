//! Sorting connection failures into the few kinds people act on (host unreachable,
//! authentication failed, database missing, TLS, timeout), from the driver's message.

use crate::error::ConnectFailure;

/// Classifies a diesel connection error.
pub fn connection_error(err: &diesel::ConnectionError) -> ConnectFailure {
    match err {
        diesel::ConnectionError::BadConnection(message) => message_kind(message),
        diesel::ConnectionError::InvalidConnectionUrl(_) => ConnectFailure::Other,
        other => message_kind(&other.to_string()),
    }
}

/// Classifies a driver's error text (libpq, libmariadb or SQLite).
pub fn message_kind(message: &str) -> ConnectFailure {
    let m = message.to_ascii_lowercase();
    let any = |needles: &[&str]| needles.iter().any(|n| m.contains(n));
    // libpq refusing its connection string (an unknown option, a bad value such as
    // `invalid sslmode value`) is not a TLS or network failure, whatever it names.
    if any(&[
        "invalid connection option",
        "invalid uri query parameter",
        "invalid percent-encoded token",
        "key/value separator",
        "invalid integer value",
        "invalid port number",
    ]) || (m.contains("invalid ") && m.contains(" value"))
    {
        return ConnectFailure::Other;
    }
    if any(&[
        "password authentication failed",
        "authentication failed",
        "no pg_hba.conf entry",
        "access denied for user",
        "password is required",
        "fe_sendauth: no password supplied",
        "role \"",
    ]) && !any(&["to database '"])
    {
        ConnectFailure::AuthenticationFailed
    } else if any(&[
        "does not exist",
        "unknown database",
        "unable to open database file",
    ]) {
        ConnectFailure::DatabaseNotFound
    } else if any(&["timeout expired", "timed out", "timeout"]) {
        ConnectFailure::Timeout
    } else if any(&["ssl", "tls", "certificate"]) {
        ConnectFailure::Tls
    } else if any(&[
        "connection refused",
        "could not translate host name",
        "name or service not known",
        "no route to host",
        "network is unreachable",
        "unknown mysql server host",
        "unknown server host",
        "can't connect to",
        "could not connect to server",
        "no such file or directory",
        "temporary failure in name resolution",
    ]) {
        ConnectFailure::HostUnreachable
    } else {
        ConnectFailure::Other
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn driver_messages_are_classified() {
        use ConnectFailure::*;
        for (message, kind) in [
            (
                "connection to server at \"127.0.0.1\", port 5432 failed: FATAL:  password authentication failed for user \"bot\"",
                AuthenticationFailed,
            ),
            (
                "Access denied for user 'bot'@'localhost' (using password: YES)",
                AuthenticationFailed,
            ),
            (
                "connection to server at \"127.0.0.1\", port 5432 failed: FATAL:  database \"nope\" does not exist",
                DatabaseNotFound,
            ),
            ("Unknown database 'nope'", DatabaseNotFound),
            (
                "connection to server at \"127.0.0.1\", port 1 failed: Connection refused\n\tIs the server running on that host and accepting TCP/IP connections?",
                HostUnreachable,
            ),
            (
                "Can't connect to server on '127.0.0.1' (115)",
                HostUnreachable,
            ),
            (
                "could not translate host name \"nowhere.invalid\" to address: Name or service not known",
                HostUnreachable,
            ),
            ("timeout expired", Timeout),
            ("SSL error: certificate verify failed", Tls),
            ("invalid connection option \"ssl\"", Other),
            ("invalid sslmode value: \"nope\"", Other),
            ("something else", Other),
        ] {
            assert_eq!(message_kind(message), kind, "{message}");
        }
    }
}
