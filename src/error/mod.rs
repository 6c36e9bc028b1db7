//! The library's error type and its stable error codes.
//!
//! Every library area returns [`Error`], a `thiserror` enum; each variant has a stable
//! `code()` (`BLOCK_NOT_FOUND`, ...) that the CLI prints, the HTTP layer returns and
//! `main` maps to an exit code. diesel and r2d2 errors convert into it (`From`) where
//! the store and pools meet the rest. `thiserror` is for the library; `anyhow` belongs
//! only in binaries (ours needs none: `main` maps an `Error` to its exit code).
//!
//! Messages are for people: they say what is wrong and what to do, and never carry a
//! secret value (no document, URL with password or key material is ever formatted here).

use std::fmt;

mod kinds;

pub use kinds::ErrorKind;

/// Result alias used across the library.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Every failure the library reports. `Display` is one sentence; `Debug` adds the code
/// (`error[BLOCK_NOT_FOUND]: block "x" not found; ...`), so a flow whose `main` returns
/// this error prints a line a person can act on, not a dump of the enum.
#[derive(thiserror::Error)]
pub enum Error {
    #[error("invalid block name {name:?}: {reason}")]
    InvalidBlockName {
        name: String,
        reason: std::borrow::Cow<'static, str>,
    },

    #[error("block {0:?} not found; `blockyard block ls` lists the blocks")]
    BlockNotFound(String),

    #[error("{0}")]
    LeaseNotFound(String),

    /// An error re-worded with the next step to take (`did you mean "crdb-sage"?`); its
    /// kind is the original's.
    #[error("{message}")]
    Hinted { kind: ErrorKind, message: String },

    #[error("block {block:?} has no field {path:?}; its fields: {fields}")]
    FieldNotFound {
        block: String,
        path: String,
        fields: String,
    },

    #[error("a block named {0:?} already exists; choose another name or update it")]
    BlockAlreadyExists(String),

    #[error(
        "a block named {name:?} is here with another id ({here}, the export's is {theirs}); \
         import with --overwrite to replace it with the export's block and id"
    )]
    BlockIdDiffers {
        name: String,
        here: String,
        theirs: String,
    },

    #[error("block {name:?} is at version {actual}, not {expected}; re-read it and retry")]
    VersionConflict {
        name: String,
        expected: i64,
        actual: i64,
    },

    #[error("unknown block type {0:?}; `blockyard type ls` lists the types")]
    UnknownBlockType(String),

    #[error("invalid block type definition: {0}")]
    InvalidBlockType(String),

    #[error("block type {0:?} already exists")]
    BlockTypeAlreadyExists(String),

    #[error("{0}")]
    InvalidBlockData(String),

    #[error("{0}")]
    InvalidInput(String),

    #[error("{0}")]
    InvalidDatabaseUrl(String),

    #[error("{0}")]
    MasterKeyMissing(String),

    #[error("{0}")]
    InvalidMasterKey(String),

    #[error(
        "the master key does not match this store (fingerprint {actual}, store expects {expected}); \
         set BLOCKYARD_MASTER_KEY or --key-file to the key this store was created with"
    )]
    WrongMasterKey { expected: String, actual: String },

    #[error("{0}")]
    DecryptionFailed(String),

    /// An export's secrets do not open with the passphrase or identity given: the
    /// caller's input, not the store's data (which is `DecryptionFailed`).
    #[error("{0}")]
    WrongExportKey(String),

    #[error("{0}")]
    InsecureKeyFile(String),

    #[error("the OS keyring: {0}")]
    Keyring(String),

    #[error("the store is not migrated ({0}); run `blockyard database migrate`")]
    StoreNotMigrated(String),

    #[error("{0}")]
    StoreUnavailable(String),

    #[error("the store: {0}")]
    Store(String),

    /// A failure inside Blockyard that is not the store's (randomness, a panicked task,
    /// serialisation): a bug or the machine, never the caller's input.
    #[error("internal error: {0}")]
    Internal(String),

    #[error("{0}")]
    Config(String),

    #[error("{0}")]
    AddressUnavailable(String),

    #[error("{0}")]
    UnsupportedDriver(String),

    #[error("block {name:?} is not a database connection: {reason}")]
    NotAConnection { name: String, reason: String },

    #[error("{message}")]
    Connect {
        kind: ConnectFailure,
        message: String,
    },

    #[error("{message}")]
    HttpStatus { status: u16, message: String },

    #[error("{0}")]
    RequirementNotMet(String),

    #[error("{0}")]
    Unauthorized(String),

    #[error("{0}")]
    Forbidden(String),

    #[error("the audit log cannot be written, so nothing is returned: {0}")]
    AuditUnavailable(String),

    /// An error a Blockyard server answered with (its code decoded by [`ErrorKind::sent`]).
    #[error("{message}")]
    Remote { kind: ErrorKind, message: String },

    /// The database side (roles, databases, grants, schemas): seed 003's codes.
    #[error("{message}")]
    Provision {
        code: ProvisionCode,
        message: String,
    },

    /// `exec` could not start its program (exit 127 when it is not found, 126 when it
    /// cannot be run), as shells do.
    #[error("cannot run {program}: {source}")]
    Exec {
        program: String,
        #[source]
        source: std::io::Error,
    },

    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
}

impl Error {
    /// The kind of this error: its row of [`ErrorKind`]'s table.
    pub fn kind(&self) -> ErrorKind {
        use ErrorKind as K;
        match self {
            Error::InvalidBlockName { .. } => K::InvalidBlockName,
            Error::BlockNotFound(_) => K::BlockNotFound,
            Error::LeaseNotFound(_) => K::LeaseNotFound,
            Error::FieldNotFound { .. } => K::FieldNotFound,
            Error::Hinted { kind, .. } => *kind,
            Error::BlockAlreadyExists(_) | Error::BlockIdDiffers { .. } => K::BlockAlreadyExists,
            Error::VersionConflict { .. } => K::VersionConflict,
            Error::UnknownBlockType(_) => K::UnknownBlockType,
            Error::InvalidBlockType(_) => K::InvalidBlockType,
            Error::BlockTypeAlreadyExists(_) => K::BlockTypeAlreadyExists,
            Error::InvalidBlockData(_) => K::InvalidBlockData,
            Error::InvalidInput(_) => K::InvalidInput,
            Error::InvalidDatabaseUrl(_) => K::InvalidDatabaseUrl,
            Error::MasterKeyMissing(_) => K::MasterKeyMissing,
            Error::InvalidMasterKey(_) => K::InvalidMasterKey,
            Error::WrongMasterKey { .. } => K::WrongMasterKey,
            Error::DecryptionFailed(_) => K::DecryptionFailed,
            Error::WrongExportKey(_) => K::WrongExportKey,
            Error::InsecureKeyFile(_) => K::InsecureKeyFile,
            Error::Keyring(_) => K::Keyring,
            Error::StoreNotMigrated(_) => K::StoreNotMigrated,
            Error::StoreUnavailable(_) => K::StoreUnavailable,
            Error::Store(_) => K::Store,
            Error::Internal(_) => K::Internal,
            Error::Config(_) => K::Config,
            Error::Io { .. } => K::Io,
            Error::Exec { source, .. } if source.kind() == std::io::ErrorKind::NotFound => {
                K::ProgramNotFound
            }
            Error::Exec { .. } => K::ProgramNotExecutable,
            Error::AddressUnavailable(_) => K::AddressUnavailable,
            Error::UnsupportedDriver(_) => K::UnsupportedDriver,
            Error::NotAConnection { .. } => K::NotAConnection,
            Error::Connect { kind, .. } => kind.kind(),
            Error::HttpStatus { .. } => K::HttpError,
            Error::RequirementNotMet(_) => K::RequirementNotMet,
            Error::Unauthorized(_) => K::Unauthorized,
            Error::Forbidden(_) => K::Forbidden,
            Error::AuditUnavailable(_) => K::AuditUnavailable,
            Error::Remote { kind, .. } => *kind,
            Error::Provision { code, .. } => code.kind(),
        }
    }

    /// The stable, machine-readable code of this error.
    pub fn code(&self) -> &'static str {
        self.kind().code()
    }

    /// The process exit code for this error: 1, or what a shell uses when a program
    /// cannot be run (127 not found, 126 not executable).
    pub fn exit_code(&self) -> u8 {
        match self.kind() {
            ErrorKind::ProgramNotFound => 127,
            ErrorKind::ProgramNotExecutable => 126,
            _ => 1,
        }
    }

    pub(crate) fn provision(code: ProvisionCode, message: impl Into<String>) -> Self {
        Error::Provision {
            code,
            message: message.into(),
        }
    }

    pub(crate) fn io(context: impl fmt::Display, source: std::io::Error) -> Self {
        Error::Io {
            context: context.to_string(),
            source,
        }
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "error[{}]: {self}", self.code())
    }
}

/// What went wrong on the database side, as seed 003 names it (and a few more).
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub enum ProvisionCode {
    DatabaseAlreadyExists,
    DatabaseNotFound,
    RoleAlreadyExists,
    TemplateNotFound,
    InvalidDatabaseName,
    InvalidRoleName,
    InsufficientPermissions,
    DiskSpaceFull,
    /// Something the server named (a role, an extension) does not exist.
    NotFound,
    /// A step failed for another reason; the message names the step.
    StepFailed,
    /// A statement of a schema file failed; the message names `file:line`.
    SchemaFailed,
    /// The block named with `--admin` cannot create roles and databases.
    NotAnAdminBlock,
}

impl ProvisionCode {
    /// Its row of [`ErrorKind`]'s table.
    pub fn kind(self) -> ErrorKind {
        use ErrorKind as K;
        match self {
            ProvisionCode::DatabaseAlreadyExists => K::DatabaseAlreadyExists,
            ProvisionCode::DatabaseNotFound => K::DatabaseNotFound,
            ProvisionCode::RoleAlreadyExists => K::RoleAlreadyExists,
            ProvisionCode::TemplateNotFound => K::TemplateNotFound,
            ProvisionCode::InvalidDatabaseName => K::InvalidDatabaseName,
            ProvisionCode::InvalidRoleName => K::InvalidRoleName,
            ProvisionCode::InsufficientPermissions => K::InsufficientPermissions,
            ProvisionCode::DiskSpaceFull => K::DiskSpaceFull,
            ProvisionCode::NotFound => K::NotFound,
            ProvisionCode::StepFailed => K::ProvisionFailed,
            ProvisionCode::SchemaFailed => K::SchemaFailed,
            ProvisionCode::NotAnAdminBlock => K::NotAnAdminBlock,
        }
    }

    pub fn as_str(self) -> &'static str {
        self.kind().code()
    }
}

/// Why a connection to a block's database failed, in the terms `block test` reports.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ConnectFailure {
    HostUnreachable,
    AuthenticationFailed,
    DatabaseNotFound,
    Tls,
    Timeout,
    Other,
}

impl ConnectFailure {
    /// Failures that retrying will not fix until something changes (a refused port, a
    /// wrong password, a missing database): a pool reports them at once.
    pub fn is_certain(self) -> bool {
        matches!(
            self,
            ConnectFailure::HostUnreachable
                | ConnectFailure::AuthenticationFailed
                | ConnectFailure::DatabaseNotFound
        )
    }

    /// What happened, in words that quote nothing the peer sent.
    pub fn describe(self) -> &'static str {
        match self {
            ConnectFailure::HostUnreachable => "the host or port cannot be reached",
            ConnectFailure::AuthenticationFailed => "the database refused the credentials",
            ConnectFailure::DatabaseNotFound => "the database it names does not exist there",
            ConnectFailure::Tls => "TLS negotiation failed",
            ConnectFailure::Timeout => "no answer in time",
            ConnectFailure::Other => "the server it names did not answer as its database does",
        }
    }

    /// Its row of [`ErrorKind`]'s table.
    pub fn kind(self) -> ErrorKind {
        use ErrorKind as K;
        match self {
            ConnectFailure::HostUnreachable => K::HostUnreachable,
            ConnectFailure::AuthenticationFailed => K::AuthenticationFailed,
            ConnectFailure::DatabaseNotFound => K::ConnectDatabaseNotFound,
            ConnectFailure::Tls => K::Tls,
            ConnectFailure::Timeout => K::ConnectionTimeout,
            ConnectFailure::Other => K::ConnectionFailed,
        }
    }

    pub fn code(self) -> &'static str {
        self.kind().code()
    }
}

impl From<diesel::result::Error> for Error {
    fn from(err: diesel::result::Error) -> Self {
        // diesel's messages carry SQL error text, never bound parameter values.
        match lost_connection(&err) {
            true => Error::StoreUnavailable(err.to_string()),
            false => Error::Store(err.to_string()),
        }
    }
}

/// Whether a store error means the connection went away (a failover, a restart,
/// `pg_terminate_backend`, a dropped network): the store is unavailable for now, not
/// broken, and the request may be tried again.
fn lost_connection(err: &diesel::result::Error) -> bool {
    use diesel::result::{DatabaseErrorKind as Kind, Error as E};
    match err {
        E::DatabaseError(Kind::ClosedConnection | Kind::UnableToSendCommand, _) => true,
        E::DatabaseError(_, info) => {
            let message = info.message();
            // SQLSTATE class 08 and the administrator shutdowns of class 57P.
            [
                "terminating connection",
                "server closed the connection",
                "no connection to the server",
                "connection to server",
                "the database system is shutting down",
                "the database system is starting up",
            ]
            .iter()
            .any(|m| message.contains(m))
        }
        E::BrokenTransactionManager => true,
        _ => false,
    }
}

impl From<r2d2::Error> for Error {
    fn from(err: r2d2::Error) -> Self {
        Error::StoreUnavailable(err.to_string())
    }
}
