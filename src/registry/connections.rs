//! What flows come for: a registry opened from the environment, and pooled diesel
//! connections to a block's database by name.

use std::sync::Arc;

use super::handle::Registry;
use crate::config::{Config, Sources};
use crate::connect::BlockPool;
use crate::connect::pool::Loader;
use crate::db::{AnyConnection, Connect};
use crate::error::{Error, Result};
use crate::name::{BlockName, ToBlockName};

impl Registry {
    /// Opens the registry the way the `blockyard` command does: `BLOCKYARD_*`
    /// variables, then `./.env`, then the config file. With `BLOCKYARD_URL` and
    /// `BLOCKYARD_TOKEN` set, blocks are loaded from that server instead of a store.
    pub fn from_env() -> Result<Registry> {
        let config = Config::load(Sources {
            env: std::env::vars().collect(),
            dotenv: Some(".env".into()),
            ..Sources::default()
        })?;
        Ok(Registry::open(config)?.0)
    }

    /// A pool of `C` connections to the database block `name` describes, cached by
    /// name: while it is fresh (see `BLOCKYARD_POOL_REFRESH`, default 30 s) a call costs
    /// no registry round trip. After that, or at once after a connection failed
    /// authentication, the block is re-read; if its connection or `pool` settings
    /// changed, a new pool is returned (and the old one connects with the new
    /// credentials too).
    ///
    /// `C` is `diesel::PgConnection` (PostgreSQL, CockroachDB), `diesel::MysqlConnection`
    /// (MySQL, MariaDB), `diesel::SqliteConnection`, or [`AnyConnection`].
    pub fn pool<C: Connect>(&self, name: &(impl ToBlockName + ?Sized)) -> Result<BlockPool<C>> {
        self.pools
            .get::<C>(&*name.to_block_name()?, || self.loader())
    }

    /// A pool whose backend is chosen by the block's driver.
    pub fn any_pool(&self, name: &(impl ToBlockName + ?Sized)) -> Result<BlockPool<AnyConnection>> {
        self.pool::<AnyConnection>(name)
    }

    fn loader(&self) -> Loader {
        let source = self.source.clone();
        // A pool's connection takes referenced blocks' values too (a server resolves
        // them itself for a remote source).
        match self.remote.is_some() {
            true => Arc::new(move |name: &BlockName| source.load_block(name)),
            false => Arc::new(move |name: &BlockName| {
                super::references::resolve(&*source, source.load_block(name)?, 0)
            }),
        }
    }
}

impl Registry {
    /// Connects to a database block's server with its stored secret (which never
    /// leaves this process) and reports how it went: `block test`, the web UI's Test.
    pub fn test_block(
        &self,
        name: &str,
        timeout: std::time::Duration,
    ) -> Result<crate::connect::TestReport> {
        let (block, doc) = self.document_to_test(name)?;
        crate::connect::test(&block.name, &doc, timeout)
    }

    /// A block and the document a test connects with (its secrets opened).
    fn document_to_test(&self, name: &str) -> Result<(crate::block::Block, serde_json::Value)> {
        let block = self.read_block(name)?;
        let doc = block.document_or_masked();
        Ok((block, doc))
    }
}

impl Registry {
    /// [`Registry::test_block`] as the server runs it for a caller over HTTP: a SQLite
    /// block (a file on the server's own disk, its store among them) is not opened, and
    /// a failure is reported by its kind only, never with what the peer sent back (so a
    /// test is no probe of other ports).
    pub fn test_block_for_caller(
        &self,
        name: &str,
        timeout: std::time::Duration,
    ) -> Result<crate::connect::TestReport> {
        let (block, doc) = self.document_to_test(name)?;
        let backend = crate::connect::ConnectionInfo::from_document(&block.name, &doc)
            .and_then(|info| info.driver())
            .map(|driver| driver.backend());
        if let Ok(crate::db::Backend::Sqlite) = backend {
            return Err(Error::Forbidden(format!(
                "block {name} is a SQLite file, which the server does not open for a caller; \
                 test it with `blockyard block test {name}` on the machine that holds it"
            )));
        }
        crate::connect::test(&block.name, &doc, timeout).map_err(|err| match err {
            Error::Connect { kind, .. } => Error::Connect {
                kind,
                message: format!("block {name}: {}", kind.describe()),
            },
            other => other,
        })
    }
}
