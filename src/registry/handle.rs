//! The registry handle: where blocks live (a store opened here, or a server in remote
//! mode), opened once from a `Config`, and the audit record its changes commit with.
//! Each sibling file adds the methods of one topic to [`Registry`].

use std::sync::Arc;

use super::keys::{self, InitReport};
use super::local::LocalBlocks;
use crate::block::ChangeRecord;
use crate::config::Config;
use crate::connect::pool::PoolCache;
use crate::error::{Error, Result};
use crate::remote::RemoteClient;
use crate::source::BlockSource;
use crate::store::Store;

/// The registry: where blocks live (a [`BlockSource`]: a store opened here, or a
/// Blockyard server in remote mode), and the pools handed out by block name. Cloning is
/// cheap and clones share everything.
#[derive(Clone, Debug)]
pub struct Registry {
    pub(super) source: Arc<dyn BlockSource>,
    /// The store and keys, for what only a local store does (keys, tokens, audit).
    pub(super) local: Option<Arc<LocalBlocks>>,
    /// In remote mode, the server: what it does besides blocks (tokens, the audit log),
    /// and its address for saying why a store command cannot run.
    pub(super) remote: Option<Arc<RemoteClient>>,
    pub(super) pools: Arc<PoolCache>,
    /// The audit record each change made through this handle commits with.
    pub(super) record: Option<Arc<ChangeRecord>>,
}

impl Registry {
    /// Opens the configured store. A brand-new store is migrated and given a master key
    /// and a first data key; the report says where they are.
    pub fn open(config: Config) -> Result<(Registry, Option<InitReport>)> {
        let pools = Arc::new(PoolCache::new(config.pool_refresh));
        if let Some(remote) = config.remote {
            let client = Arc::new(RemoteClient::new(remote)?);
            let source: Arc<dyn BlockSource> = client.clone();
            let registry = Registry {
                source,
                local: None,
                remote: Some(client),
                pools,
                record: None,
            };
            return Ok((registry, None));
        }
        let store = Store::open(config.database_url.clone(), &config.pool)?;
        let status = store.migration_status()?;
        let fresh = status.applied.is_empty();
        if fresh {
            store.migrate()?;
        } else if !status.pending.is_empty() {
            return Err(Error::StoreNotMigrated(format!(
                "{} pending migration(s): {}",
                status.pending.len(),
                status.pending.join(", ")
            )));
        }
        let keys = Arc::new(keys::KeyManager::new(config.key, config.data_dir));
        let report = keys.initialise_if_needed(&store)?;
        if keys::KeyManager::needs_reseal(&store)? {
            return Err(Error::StoreNotMigrated(
                "its secrets are sealed in an older format, not bound to their block's \
                 type, version and document; run `blockyard database migrate` (with the \
                 master key)"
                    .into(),
            ));
        }
        let local = Arc::new(LocalBlocks {
            store,
            keys,
            admin_sessions: Default::default(),
        });
        let registry = Registry {
            source: local.clone(),
            local: Some(local),
            remote: None,
            pools,
            record: None,
        };
        Ok((registry, report))
    }

    /// Opens the configured store only if it is already there (a server, or an SQLite
    /// file that exists): never creates one, as a shell's Tab must not.
    pub fn open_existing(config: Config) -> Result<Option<Registry>> {
        if let (None, crate::store::StoreUrl::Sqlite(path)) = (&config.remote, &config.database_url)
            && !path.exists()
        {
            return Ok(None);
        }
        Registry::open(config).map(|(registry, _)| Some(registry))
    }

    /// This registry, with `record` committed in the same transaction as each change
    /// made through it (the server's audit trail of changes: both or neither).
    pub fn on_behalf(&self, record: ChangeRecord) -> Registry {
        Registry {
            record: Some(Arc::new(record)),
            ..self.clone()
        }
    }

    pub(super) fn record(&self) -> Option<&ChangeRecord> {
        self.record.as_deref()
    }

    /// The local store; an error in remote mode.
    pub(super) fn store(&self) -> Result<&Store> {
        self.local().map(|(store, _)| store)
    }

    pub(super) fn local(&self) -> Result<(&Store, &Arc<keys::KeyManager>)> {
        match (&self.local, &self.remote) {
            (Some(local), _) => Ok((&local.store, &local.keys)),
            (None, remote) => Err(Error::Config(format!(
                "this works on a local store only, and BLOCKYARD_URL points at the server {}; \
                 unset it (and --server-url) to use the store directly",
                remote.as_ref().map_or("(unknown)", |r| r.base().as_str())
            ))),
        }
    }
}
