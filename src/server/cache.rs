//! Blocks the server has read recently, kept so a repeated read skips the lookup and the
//! decryption. An entry is never served on its own word: the audit writer first checks
//! that the store still holds the block at the entry's stamp (see `crate::audit`), so a
//! change made through any server or the CLI is seen by the next read. Entries are
//! dropped after a time to live, which bounds how long opened secrets stay in memory.

use std::collections::HashMap;
use std::sync::{Arc, OnceLock, RwLock};
use std::time::{Duration, Instant};

use super::response::RenderedJson;
use crate::registry::Block;
use crate::wire::BlockBody;

/// At most this many blocks are kept; past it, expired entries are swept and, if that
/// is not enough, new reads are not kept.
const MAX_ENTRIES: usize = 10_000;

struct Entry {
    kept: Arc<Kept>,
    at: Instant,
}

/// The JSON views of a block the routes answer with; a kept block renders each once.
#[derive(Clone, Copy, Debug)]
pub enum View {
    /// `/api/v1/blocks/{name}`, with secrets if `reveal`.
    Native { reveal: bool },
    /// Prefect's BlockDocument, with secrets if `reveal`.
    Prefect { reveal: bool },
}

impl View {
    fn slot(self) -> usize {
        match self {
            View::Native { reveal } => usize::from(reveal),
            View::Prefect { reveal } => 2 + usize::from(reveal),
        }
    }
}

/// A kept block, with its JSON views rendered once. A view that needs more than the
/// block (Prefect's, which embeds the type's schema) lives as long as the kept block:
/// until the block changes or the entry expires (`--block-cache`).
pub struct Kept {
    pub block: Block,
    views: [OnceLock<RenderedJson>; 4],
}

impl Kept {
    pub fn new(block: Block) -> Self {
        Kept {
            block,
            views: Default::default(),
        }
    }

    /// The block's native JSON view, with secrets if `reveal` (and they were read).
    pub fn view(&self, reveal: bool) -> RenderedJson {
        self.render(View::Native { reveal }, || {
            BlockBody::of(&self.block, reveal)
        })
    }

    /// A view, if it was rendered already.
    pub fn rendered(&self, view: View) -> Option<RenderedJson> {
        self.views[view.slot()].get().cloned()
    }

    /// A view, rendered by `render` the first time it is asked for.
    pub fn render<T: serde::Serialize>(
        &self,
        view: View,
        render: impl FnOnce() -> T,
    ) -> RenderedJson {
        self.views[view.slot()]
            .get_or_init(|| RenderedJson::new(&render()))
            .clone()
    }
}

/// The kept blocks, by name.
pub struct BlockCache {
    ttl: Duration,
    entries: RwLock<HashMap<String, Entry>>,
}

impl BlockCache {
    /// A cache whose entries live `ttl`; a zero `ttl` keeps nothing.
    pub fn new(ttl: Duration) -> Self {
        BlockCache {
            ttl,
            entries: RwLock::new(HashMap::new()),
        }
    }

    /// The kept block named `name`, if it is young enough and, when `secrets` is asked
    /// for, was read with its secrets.
    pub fn get(&self, name: &str, secrets: bool) -> Option<Arc<Kept>> {
        let entries = self.entries.read().unwrap_or_else(|e| e.into_inner());
        let entry = entries.get(name)?;
        (entry.at.elapsed() < self.ttl && (!secrets || entry.kept.block.has_secrets()))
            .then(|| entry.kept.clone())
    }

    /// Keeps a block just read from the store. A masked read does not replace a kept
    /// read with secrets of the same stamp.
    pub fn put(&self, kept: Arc<Kept>) {
        if self.ttl.is_zero() {
            return;
        }
        let block = &kept.block;
        let mut entries = self.entries.write().unwrap_or_else(|e| e.into_inner());
        if let Some(old) = entries.get(block.name.as_str())
            && old.kept.block.has_secrets()
            && !block.has_secrets()
            && old.kept.block.stamp() == block.stamp()
        {
            return;
        }
        if entries.len() >= MAX_ENTRIES && !entries.contains_key(block.name.as_str()) {
            drop_expired(&mut entries, self.ttl);
            if entries.len() >= MAX_ENTRIES {
                return;
            }
        }
        entries.insert(
            block.name.to_string(),
            Entry {
                kept: kept.clone(),
                at: Instant::now(),
            },
        );
    }

    /// Forgets `name` (the store no longer holds the kept stamp).
    pub fn forget(&self, name: &str) {
        self.entries
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .remove(name);
    }

    /// Drops expired entries (called now and then, so opened secrets do not outlive
    /// their time to live in an idle server).
    pub fn sweep(&self) {
        let mut entries = self.entries.write().unwrap_or_else(|e| e.into_inner());
        drop_expired(&mut entries, self.ttl);
    }
}

fn drop_expired(entries: &mut HashMap<String, Entry>, ttl: Duration) {
    entries.retain(|_, entry| entry.at.elapsed() < ttl);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn block(name: &str, version: i64, secrets: bool) -> Arc<Kept> {
        Arc::new(Kept::new(Block::for_tests(name, version, secrets)))
    }

    #[test]
    fn keeps_reads_until_their_time_to_live() {
        let cache = BlockCache::new(Duration::from_millis(200));
        cache.put(block("a", 1, true));
        assert_eq!(cache.get("a", true).unwrap().block.version, 1);
        assert!(cache.get("b", false).is_none());
        std::thread::sleep(Duration::from_millis(250));
        assert!(cache.get("a", false).is_none());
        cache.sweep();
        assert!(cache.entries.read().unwrap().is_empty());
    }

    #[test]
    fn a_masked_read_never_serves_secrets() {
        let cache = BlockCache::new(Duration::from_secs(60));
        cache.put(block("a", 1, false));
        assert!(cache.get("a", true).is_none());
        assert!(cache.get("a", false).is_some());
        cache.put(block("a", 1, true));
        cache.put(block("a", 1, false));
        assert!(cache.get("a", true).is_some(), "kept the read with secrets");
        cache.put(block("a", 2, false));
        assert!(
            cache.get("a", true).is_none(),
            "a newer version replaces it"
        );
        cache.forget("a");
        assert!(cache.get("a", false).is_none());
    }

    #[test]
    fn zero_time_to_live_keeps_nothing() {
        let cache = BlockCache::new(Duration::ZERO);
        cache.put(block("a", 1, true));
        assert!(cache.get("a", false).is_none());
    }
}
