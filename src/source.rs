//! Where blocks live, as one trait: a store opened here (the registry's local source)
//! or a Blockyard server (`remote::RemoteClient`). The registry holds one and never
//! asks which; both speak in the block model's values.

use serde_json::Value;

use crate::block::{Block, BlockFilter, BlockSummary, BlockVersion, ChangeRecord, NewBlock};
use crate::error::Result;
use crate::name::BlockName;
use crate::types::{BlockType, BlockTypeDef};

/// The block and block type operations of a registry. A change given a
/// [`ChangeRecord`] commits together with that audit record (a remote source leaves the
/// record to the server, which makes its own).
pub trait BlockSource: Send + Sync + std::fmt::Debug {
    /// Every type: built-in first, then registered ones, by slug.
    fn block_types(&self) -> Result<Vec<BlockType>>;
    fn block_type(&self, slug: &str) -> Result<BlockType>;
    /// Registers (or with `replace`, replaces) a user type.
    fn register_type(
        &self,
        def: BlockTypeDef,
        replace: bool,
        record: Option<&ChangeRecord>,
    ) -> Result<BlockType>;
    /// Creates a block after validating it against its type; secrets are sealed.
    fn create_block(&self, new: NewBlock, record: Option<&ChangeRecord>) -> Result<Block>;
    /// A block with its secrets.
    fn load_block(&self, name: &BlockName) -> Result<Block>;
    /// A block with its secrets masked; nothing is decrypted.
    fn get_block_masked(&self, name: &BlockName) -> Result<Block>;
    fn list_blocks(&self, filter: &BlockFilter) -> Result<Vec<BlockSummary>>;
    /// Replaces a block's document if it is still at `expected` (the version read,
    /// when `None`); a document that changes nothing writes no version.
    fn update_block(
        &self,
        name: &BlockName,
        document: Value,
        expected: Option<i64>,
        record: Option<&ChangeRecord>,
    ) -> Result<Block>;
    fn rename_block(
        &self,
        name: &BlockName,
        new_name: &BlockName,
        expected: Option<i64>,
        record: Option<&ChangeRecord>,
    ) -> Result<Block>;
    fn delete_block(
        &self,
        name: &BlockName,
        expected: Option<i64>,
        record: Option<&ChangeRecord>,
    ) -> Result<Block>;
    /// Every kept version, oldest first, secrets masked, with what each changed.
    fn block_history(&self, name: &BlockName) -> Result<Vec<BlockVersion>>;
    /// Writes the next version equal to version `to` (secrets included).
    fn rollback_block(
        &self,
        name: &BlockName,
        to: i64,
        expected: Option<i64>,
        record: Option<&ChangeRecord>,
    ) -> Result<Block>;
    /// Brings back the block most recently deleted under `name`, history included.
    fn undelete_block(&self, name: &BlockName, record: Option<&ChangeRecord>) -> Result<Block>;
    /// Destroys the block named `name` (live, or else the one last deleted under that
    /// name) with every version and secret; answers its id.
    fn purge_block(&self, name: &BlockName, record: Option<&ChangeRecord>) -> Result<String>;
}
