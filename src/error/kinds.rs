//! Every error code in one table: its kind, its stable code, the HTTP status it is
//! answered with, and whether a client decodes it when a server sends it. `Error::code`,
//! the server's status map, remote decoding and the test against `openapi.json` all
//! read this table; nothing else spells a code.

/// Writes [`ErrorKind`] and its lookups from one table of rows
/// `Kind = "CODE", status, sent|local;`.
macro_rules! error_kinds {
    ($($(#[$doc:meta])* $kind:ident = $code:literal, $status:literal, $sent:ident;)*) => {
        /// What kind of failure an error is: one row of the table below.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        pub enum ErrorKind {
            $($(#[$doc])* $kind,)*
        }

        impl ErrorKind {
            /// Every kind, in the table's order.
            pub const ALL: &'static [ErrorKind] = &[$(ErrorKind::$kind,)*];

            /// The stable, machine-readable code (`BLOCK_NOT_FOUND`).
            pub fn code(self) -> &'static str {
                match self {
                    $(ErrorKind::$kind => $code,)*
                }
            }

            /// The HTTP status a server answers this kind with.
            pub fn http_status(self) -> u16 {
                match self {
                    $(ErrorKind::$kind => $status,)*
                }
            }

            /// Whether a server may send this code (and a client decodes it as such).
            pub fn is_sent(self) -> bool {
                match self {
                    $(ErrorKind::$kind => error_kinds!(@sent $sent),)*
                }
            }
        }
    };
    (@sent sent) => { true };
    (@sent local) => { false };
}

error_kinds! {
    InvalidBlockName = "INVALID_BLOCK_NAME", 400, sent;
    BlockNotFound = "BLOCK_NOT_FOUND", 404, sent;
    LeaseNotFound = "LEASE_NOT_FOUND", 404, sent;
    /// `block get --field`: the block has no such field.
    FieldNotFound = "FIELD_NOT_FOUND", 404, local;
    BlockAlreadyExists = "BLOCK_ALREADY_EXISTS", 409, sent;
    VersionConflict = "VERSION_CONFLICT", 412, sent;
    UnknownBlockType = "UNKNOWN_BLOCK_TYPE", 422, sent;
    InvalidBlockType = "INVALID_BLOCK_TYPE", 422, sent;
    BlockTypeAlreadyExists = "BLOCK_TYPE_ALREADY_EXISTS", 409, sent;
    InvalidBlockData = "INVALID_BLOCK_DATA", 422, sent;
    InvalidInput = "INVALID_INPUT", 400, sent;
    InvalidDatabaseUrl = "INVALID_DATABASE_URL", 500, local;
    MasterKeyMissing = "MASTER_KEY_MISSING", 500, local;
    InvalidMasterKey = "INVALID_MASTER_KEY", 500, local;
    WrongMasterKey = "WRONG_MASTER_KEY", 500, local;
    DecryptionFailed = "DECRYPTION_FAILED", 500, sent;
    /// An export's secrets do not open with the passphrase or identity given.
    WrongExportKey = "WRONG_EXPORT_KEY", 422, sent;
    InsecureKeyFile = "INSECURE_KEY_FILE", 500, local;
    Keyring = "KEYRING_ERROR", 500, local;
    StoreNotMigrated = "STORE_NOT_MIGRATED", 503, sent;
    StoreUnavailable = "STORE_UNAVAILABLE", 503, sent;
    Store = "STORE_ERROR", 500, sent;
    /// A failure inside Blockyard that is not the store's.
    Internal = "INTERNAL_ERROR", 500, sent;
    Config = "CONFIG_ERROR", 500, local;
    Io = "IO_ERROR", 500, local;
    /// `exec`: the program is not there (exit 127, as shells do).
    ProgramNotFound = "PROGRAM_NOT_FOUND", 500, local;
    /// `exec`: the program cannot be run (exit 126).
    ProgramNotExecutable = "PROGRAM_NOT_EXECUTABLE", 500, local;
    AddressUnavailable = "ADDRESS_UNAVAILABLE", 500, local;
    UnsupportedDriver = "UNSUPPORTED_DRIVER", 500, local;
    NotAConnection = "NOT_A_CONNECTION", 422, sent;
    HostUnreachable = "HOST_UNREACHABLE", 422, sent;
    AuthenticationFailed = "AUTHENTICATION_FAILED", 422, sent;
    /// A block's database is not there when it is connected to (the database side's
    /// `DATABASE_NOT_FOUND`, a 404, is [`ErrorKind::DatabaseNotFound`]).
    ConnectDatabaseNotFound = "DATABASE_NOT_FOUND", 422, local;
    Tls = "TLS_ERROR", 422, sent;
    ConnectionTimeout = "CONNECTION_TIMEOUT", 422, sent;
    ConnectionFailed = "CONNECTION_FAILED", 422, sent;
    HttpError = "HTTP_ERROR", 500, local;
    RequirementNotMet = "REQUIREMENT_NOT_MET", 422, sent;
    Unauthorized = "UNAUTHORIZED", 401, sent;
    Forbidden = "FORBIDDEN", 403, sent;
    AuditUnavailable = "AUDIT_UNAVAILABLE", 503, sent;
    /// A server's code this client does not know.
    RemoteError = "REMOTE_ERROR", 500, local;
    /// The server could not be reached.
    RemoteUnavailable = "REMOTE_UNAVAILABLE", 503, local;
    DatabaseAlreadyExists = "DATABASE_ALREADY_EXISTS", 409, sent;
    DatabaseNotFound = "DATABASE_NOT_FOUND", 404, sent;
    RoleAlreadyExists = "ROLE_ALREADY_EXISTS", 409, sent;
    TemplateNotFound = "TEMPLATE_NOT_FOUND", 422, sent;
    InvalidDatabaseName = "INVALID_DATABASE_NAME", 400, sent;
    InvalidRoleName = "INVALID_ROLE_NAME", 400, sent;
    InsufficientPermissions = "INSUFFICIENT_PERMISSIONS", 422, sent;
    DiskSpaceFull = "DISK_SPACE_FULL", 507, sent;
    /// Something named (a role, an extension, a route) does not exist.
    NotFound = "NOT_FOUND", 404, sent;
    ProvisionFailed = "PROVISION_FAILED", 422, sent;
    SchemaFailed = "SCHEMA_FAILED", 422, sent;
    NotAnAdminBlock = "NOT_AN_ADMIN_BLOCK", 422, sent;
    // The HTTP layer's own answers.
    BadRequest = "BAD_REQUEST", 400, sent;
    PayloadTooLarge = "PAYLOAD_TOO_LARGE", 413, sent;
    UnsupportedMediaType = "UNSUPPORTED_MEDIA_TYPE", 415, sent;
    /// The web UI's connection tests are all in use.
    TooManyTests = "TOO_MANY_TESTS", 429, sent;
    /// Too many failed authentications from one client address: wait `Retry-After`.
    RateLimited = "RATE_LIMITED", 429, sent;
    /// `/ready` of a server that is stopping: it finishes what it has, takes no more.
    Draining = "DRAINING", 503, sent;
    /// The Prefect server requests are passed to could not be reached or did not answer.
    UpstreamUnavailable = "UPSTREAM_UNAVAILABLE", 502, sent;
}

impl ErrorKind {
    /// The kind a server's `code` names; [`ErrorKind::RemoteError`] for one this client
    /// does not know.
    pub fn sent(code: &str) -> ErrorKind {
        ErrorKind::ALL
            .iter()
            .copied()
            .find(|kind| kind.is_sent() && kind.code() == code)
            .unwrap_or(ErrorKind::RemoteError)
    }
}

#[cfg(test)]
mod tests {
    use super::ErrorKind;

    #[test]
    fn a_code_names_one_status_among_the_kinds_a_server_sends() {
        for a in ErrorKind::ALL.iter().filter(|k| k.is_sent()) {
            for b in ErrorKind::ALL.iter().filter(|k| k.is_sent()) {
                assert!(
                    a == b || a.code() != b.code(),
                    "{a:?} and {b:?} share a code"
                );
            }
            assert_eq!(ErrorKind::sent(a.code()), *a);
        }
        assert_eq!(ErrorKind::sent("NO_SUCH_CODE"), ErrorKind::RemoteError);
    }

    #[test]
    fn every_kind_has_an_error_status() {
        for kind in ErrorKind::ALL {
            assert!((400..600).contains(&kind.http_status()), "{kind:?}");
        }
    }
}
