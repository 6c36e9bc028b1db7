//! Connecting to the databases blocks describe: SQLAlchemy drivers mapped to diesel
//! backends, connection URLs, cached r2d2 pools, `block test`, and environment exports
//! for `block env` and `exec`; and to the HTTP services blocks describe (`http`).

mod classify;
pub mod driver;
pub mod env;
pub mod http;
pub mod info;
pub mod libpq;
pub mod pool;
pub mod probe;

pub use driver::Driver;
pub use env::EnvFormat;
pub use http::{HttpService, HttpTestReport};
pub use info::ConnectionInfo;
pub use pool::{BlockConnection, BlockManager, BlockPool, PoolSettings, connection_info};
pub use probe::{TestReport, test};

/// The value at `path` in a block's document; a connection given as a URL answers for
/// its parts (`connection_info.password`, `.host`, ...) as if written as fields.
pub fn field_of(name: &str, doc: &serde_json::Value, path: &str) -> Option<serde_json::Value> {
    if let Some(value) = crate::document::get_path(doc, path) {
        return Some(value.clone());
    }
    path.strip_prefix("connection_info.")
        .filter(|_| {
            doc.get("connection_info")
                .is_some_and(serde_json::Value::is_string)
        })
        .and_then(|part| {
            let info = ConnectionInfo::from_document(name, doc).ok()?;
            crate::document::get_path(&info.to_components(), part).cloned()
        })
}
