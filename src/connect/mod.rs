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
