//! Blockyard: a registry of named connection blocks, stored encrypted.
//!
//! The library behind the `blockyard` binary. Start with [`Registry`]: open it from a
//! [`Config`], then create, load, update and list blocks by name. The architecture
//! (bird's-eye view, code map, invariants) is described in the README.

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
