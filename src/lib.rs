//! Blockyard: a registry of named connection blocks, stored encrypted.
//!
//! The library behind the `blockyard` binary. Start with [`Registry`]: open it from a
//! [`Config`], then create, load, update and list blocks by name. The architecture
//! (bird's-eye view, code map, invariants) is described in the README.
//!
//! ```
//! use blockyard::config::{Settings, Sources};
//! use blockyard::{Config, NewBlock, Registry, name::BlockName};
//! # let dir = tempfile::tempdir()?;
//! let config = Config::load(Sources {
//!     flags: Settings { data_dir: Some(dir.path().into()), ..Settings::default() },
//!     ..Sources::default()
//! })?;
//! let (registry, _first_run) = Registry::open(config)?;
//! registry.create_block(NewBlock {
//!     name: BlockName::parse("crdb-sage")?,
//!     block_type: "sqlalchemy-connector".into(),
//!     document: serde_json::json!({"connection_info": {
//!         "driver": "cockroachdb+psycopg2", "database": "sage", "username": "databot",
//!         "host": "localhost", "port": 26257, "password": "s3cr3t"}}),
//!     id: None,
//!     replace_deleted: false,
//! })?;
//! let block = registry.load_block("crdb-sage")?;
//! assert_eq!(block.document().unwrap()["connection_info"]["password"], "s3cr3t");
//! assert_eq!(block.masked_data()["connection_info"]["password"], "********");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

pub mod audit;
pub mod auth;
pub mod block;
pub mod cli;
pub mod config;
pub mod connect;
pub mod crypto;
pub mod db;
pub mod document;
pub mod dsn;
pub mod error;
pub mod files;
pub mod mask;
pub mod metrics;
pub mod name;
pub mod process;
pub mod provision;
pub mod registry;
pub mod remote;
pub mod server;
pub mod source;
pub mod store;
pub mod supervise;
pub mod template;
pub mod time;
pub mod types;
pub mod wire;

pub use block::{Block, NewBlock};
pub use config::Config;
pub use error::{Error, Result};
pub use registry::Registry;
