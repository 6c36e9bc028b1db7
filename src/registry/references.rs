//! References between blocks' fields: a field holding `{"$ref":
//! "blockyard://NAME/path"}` takes that block's value when the block is read for use
//! (`read_block`), each block read with its secrets; a reference to a missing block or
//! field, or one that leads back to its own block, is refused when written.

use super::handle::Registry;
use crate::block::Block;
use crate::error::{Error, ErrorKind, Result};
use crate::name::{BlockName, ToBlockName};
use crate::source::BlockSource;
use crate::types::blockyard_references;

/// How deep references may lead (a chain longer than this is refused as a cycle is).
const DEPTH: usize = 8;

impl Registry {
    /// A block read for use: with its secrets, and each field that refers to another
    /// block's field holding that value (as a secret). Through a server, the server
    /// resolves them, checking the token's read of each block.
    pub fn read_block(&self, name: &(impl ToBlockName + ?Sized)) -> Result<Block> {
        let block = self.load_block(name)?;
        match self.remote.is_some() {
            true => Ok(block),
            false => resolve(&*self.source, block, 0),
        }
    }

    /// Refuses a document whose references name a block that does not exist, or lead
    /// back to `name` itself (read masked: a reference is never a secret).
    pub(super) fn check_references(&self, name: &BlockName, doc: &serde_json::Value) -> Result<()> {
        let mut chain = vec![name.to_string()];
        self.follow(doc, &mut chain)
    }

    fn follow(&self, doc: &serde_json::Value, chain: &mut Vec<String>) -> Result<()> {
        for (field, target, _) in blockyard_references(doc) {
            let here = chain.last().cloned().unwrap_or_default();
            if chain.contains(&target) || chain.len() > DEPTH {
                chain.push(target);
                return Err(Error::InvalidBlockData(format!(
                    "{here}: field {field}: references lead in a cycle: {}",
                    chain.join(" → ")
                )));
            }
            let block = match self.get_block_masked(target.as_str()) {
                Ok(block) => block,
                Err(err) if err.kind() == ErrorKind::BlockNotFound => {
                    return Err(Error::InvalidBlockData(format!(
                        "{here}: field {field} refers to block {target:?}, which does not exist"
                    )));
                }
                Err(err) => return Err(err),
            };
            chain.push(target);
            self.follow(block.masked_data(), chain)?;
            chain.pop();
        }
        Ok(())
    }
}

/// `block` with each reference resolved from `source` (a local store's), reading each
/// referenced block with its secrets: what [`Registry::read_block`] and the pools'
/// loader give.
pub(super) fn resolve(source: &dyn BlockSource, mut block: Block, depth: usize) -> Result<Block> {
    for (field, name, path) in blockyard_references(block.masked_data()) {
        let refers = || format!("{}: field {field} refers to {name}/{path}", block.name);
        if depth >= DEPTH {
            return Err(Error::InvalidBlockData(format!(
                "{}, {DEPTH} references deep",
                refers()
            )));
        }
        let target = match BlockName::parse(&name).and_then(|n| source.load_block(&n)) {
            Ok(target) => resolve(source, target, depth + 1)?,
            Err(err) if err.kind() == ErrorKind::BlockNotFound => {
                return Err(Error::InvalidBlockData(format!(
                    "{}, which does not exist",
                    refers()
                )));
            }
            Err(err) => return Err(err),
        };
        let doc = target.document_or_masked();
        let value = crate::connect::field_of(&target.name, &doc, &path).ok_or_else(|| {
            Error::InvalidBlockData(format!("{}, a field it does not have", refers()))
        })?;
        let mut from = target.read_through().to_vec();
        from.push(target.name.clone());
        block.resolve_reference(&field, value, from)?;
    }
    Ok(block)
}
