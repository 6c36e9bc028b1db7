pub mod cli;
pub mod config;
pub mod crypto;
pub mod document;
pub mod error;
pub mod name;
pub mod registry;
pub mod store;
pub mod time;
pub mod types;

pub use config::Config;
pub use error::{Error, Result};
pub use registry::{Block, NewBlock, Registry};
