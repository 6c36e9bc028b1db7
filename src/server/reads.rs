//! How blocks are read for a caller: a listing that holds only what the token may see,
//! and a block read served from the cache once the store confirms it current (in the
//! same trip that records a secret read) or from the store.

use std::sync::Arc;

use super::cache::Kept;
use super::guard::Ctx;
use super::http::MAX_PAGE;
use super::metrics::Metrics;
use super::policy::{audited, event};
use super::response::ApiResult;
use super::state::{State, blocking};
use crate::audit::Expected;
use crate::auth::{Actor, Permission};
use crate::block::{BlockFilter, BlockSummary};
use crate::error::Result;
use crate::registry::Registry;

/// Up to `wanted` blocks matching `filter` that the caller may read, in name order.
/// Blocks it may not read are skipped before anything is counted or used as a
/// cursor, so a page never says anything about them.
///
/// A caller limited to name patterns has each pattern filtered by the store, so the
/// work is bounded by the blocks it may see, not by every name in the registry.
pub fn visible_blocks(
    registry: &Registry,
    filter: BlockFilter,
    wanted: i64,
    actor: &Actor,
) -> Result<Vec<BlockSummary>> {
    let may_read = |name: &str| actor.may(Permission::Read, Some(name));
    let Some(globs) = actor.patterns_for(Permission::Read) else {
        return visible_in(registry, filter, wanted, may_read);
    };
    let mut merged = Vec::new();
    for glob in globs {
        let one = BlockFilter {
            name_glob: Some(glob),
            ..filter.clone()
        };
        merged.extend(visible_in(registry, one, wanted, may_read)?);
    }
    merged.sort_by(|a, b| a.name.cmp(&b.name));
    merged.dedup_by(|a, b| a.name == b.name);
    merged.truncate(wanted.max(0) as usize);
    Ok(merged)
}

/// [`visible_blocks`] within one filter.
fn visible_in(
    registry: &Registry,
    mut filter: BlockFilter,
    wanted: i64,
    may_read: impl Fn(&str) -> bool,
) -> Result<Vec<BlockSummary>> {
    let mut visible = Vec::new();
    // A token that sees everything needs one page of `wanted`; one that sees a few
    // blocks among many reads on in growing pages.
    let mut batch = wanted.clamp(1, MAX_PAGE);
    loop {
        filter.limit = Some(batch);
        let rows = registry.list_blocks(&filter)?;
        let exhausted = (rows.len() as i64) < batch;
        batch = (batch * 4).min(MAX_PAGE);
        filter.after = rows.last().map(|b| b.name.to_string());
        visible.extend(rows.into_iter().filter(|b| may_read(&b.name)));
        if exhausted || visible.len() as i64 >= wanted {
            visible.truncate(wanted as usize);
            return Ok(visible);
        }
    }
}

/// Reads a block for a caller already allowed to (with its secrets if `reveal`; that
/// read is on record before any secret leaves the server). A block kept from an earlier
/// read is served only once the store confirms it is unchanged, in the same trip that
/// records the read; otherwise the block is read from the store and kept.
/// Each block whose secrets `block`'s references were resolved from is one the caller
/// may read with its secrets, and that read is on record; a refusal names no block.
async fn read_through(state: &State, ctx: &Ctx, block: &crate::block::Block) -> ApiResult<()> {
    for other in block.read_through() {
        let allowed = ctx
            .actor()
            .may(crate::auth::Permission::ReadSecrets, Some(other));
        let outcome = if allowed { "ok" } else { "FORBIDDEN" };
        super::policy::audit(state, ctx, "read-secrets", Some(other), outcome).await?;
        if !allowed {
            return Err(crate::error::Error::Forbidden(format!(
                "block {} refers to a block this token may not read with its secrets \
                 (needs blocks:read-secrets on it)",
                block.name
            ))
            .into());
        }
    }
    Ok(())
}

pub async fn read_block(
    state: &State,
    ctx: &Ctx,
    name: &str,
    reveal: bool,
) -> ApiResult<Arc<Kept>> {
    if let Some(kept) = state.blocks.get(name, reveal) {
        let event = reveal.then(|| event(ctx, "read-secrets", Some(name), "ok"));
        let expected = Expected {
            name: name.to_owned(),
            stamp: kept.block.stamp(),
        };
        match state.audit.record_if_current(event, expected).await? {
            true => {
                Metrics::count(&state.metrics.cache_lookups, "hit");
                if reveal {
                    Metrics::count(&state.metrics.secret_reads, "ok");
                }
                return Ok(kept);
            }
            false => state.blocks.forget(name),
        }
    }
    Metrics::count(&state.metrics.cache_lookups, "miss");
    let registry = state.registry.clone();
    let lookup = name.to_owned();
    let block = match reveal {
        true => {
            let result = blocking(move || registry.read_block(&lookup)).await;
            let block = audited(state, ctx, "read-secrets", name, result).await?;
            read_through(state, ctx, &block).await?;
            block
        }
        false => blocking(move || registry.get_block_masked(&lookup)).await?,
    };
    let kept = Arc::new(Kept::new(block));
    // A block that refers to others is read afresh each time: each read of the blocks
    // it names is checked and on record, and a change to one of them is seen at once.
    if kept.block.read_through().is_empty() {
        state.blocks.put(kept.clone());
    }
    Ok(kept)
}
