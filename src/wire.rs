//! The `/api/v1` wire format: every JSON body the server answers with or accepts, as
//! serde types shared by the server (which writes them) and the remote client (which
//! reads them), so a shape lives in one place. Times travel as RFC 3339 text.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::auth::TokenInfo;
use crate::block::{Block, BlockMeta, BlockSummary, BlockVersion};
use crate::store::AuditRow;
use crate::types::BlockTypeDef;

/// A block: `GET /blocks/{name}` and the answer to every change of one. `data` is the
/// full document only when secrets were asked for and allowed; masked otherwise.
#[derive(Debug, Serialize, Deserialize)]
pub struct BlockBody {
    #[serde(flatten)]
    pub meta: BlockMeta,
    pub data: Value,
}

impl BlockBody {
    /// `block` with its full document if `reveal` and its secrets were read, masked
    /// otherwise.
    pub fn of(block: &Block, reveal: bool) -> BlockBody {
        let data = block.shown(reveal);
        BlockBody {
            meta: block.meta(),
            data,
        }
    }
}

/// `GET /blocks`: a page of blocks in name order; `next_cursor` is the name to pass as
/// `cursor` for the next page, absent on the last one.
#[derive(Debug, Serialize, Deserialize)]
pub struct BlockPage {
    pub blocks: Vec<BlockSummary>,
    pub next_cursor: Option<String>,
}

/// `DELETE /blocks/{name}`: what was deleted, at which version.
#[derive(Debug, Serialize, Deserialize)]
pub struct Deleted {
    pub deleted: String,
    pub id: String,
    pub version: i64,
}

/// `GET /blocks/{name}/history`: kept versions, newest first, secrets masked.
#[derive(Debug, Serialize, Deserialize)]
pub struct History {
    pub versions: Vec<BlockVersion>,
}

/// `GET /block-types`.
#[derive(Debug, Serialize, Deserialize)]
pub struct BlockTypes {
    pub block_types: Vec<BlockTypeDef>,
}

/// `GET /audit`: records newest first; `next_before` is the id to pass as `before`
/// for the next page, absent on the last one.
#[derive(Debug, Serialize, Deserialize)]
pub struct AuditPage {
    pub records: Vec<AuditRow>,
    pub next_before: Option<i64>,
}

/// `GET /tokens`.
#[derive(Debug, Serialize, Deserialize)]
pub struct Tokens {
    pub tokens: Vec<TokenInfo>,
}

/// `POST /tokens`: `expires_in` as `blockyard token create --expires-in` takes it (90d).
#[derive(Debug, Serialize, Deserialize)]
pub struct CreateToken {
    pub name: String,
    pub scopes: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_in: Option<String>,
}

/// `POST /tokens`'s answer: the token, shown this once. `Debug` masks it.
#[derive(Serialize, Deserialize)]
pub struct CreatedToken {
    #[serde(flatten)]
    pub info: TokenInfo,
    pub token: String,
}

impl std::fmt::Debug for CreatedToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "CreatedToken({:?}, ********)", self.info.name)
    }
}

/// `GET /deleted-blocks`: deleted blocks the caller may read, by name.
#[derive(Debug, Serialize, Deserialize)]
pub struct DeletedBlocks {
    pub deleted: Vec<crate::block::DeletedBlock>,
}

/// `GET /changes`: which of the watched blocks changed since the cursor (none when
/// the wait ran out), and the cursor to ask with next.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Changes {
    pub cursor: String,
    pub changed: Vec<String>,
}

/// `GET /token`: the caller's own token (what `blockyard status` shows).
#[derive(Debug, Serialize, Deserialize)]
pub struct TokenIdentity {
    pub name: String,
    pub scopes: Vec<String>,
}

/// `DELETE /tokens/{name}`.
#[derive(Debug, Serialize, Deserialize)]
pub struct RevokedToken {
    pub revoked: String,
}

/// `POST /blocks`. Only a token that may write every block may choose `id`.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateBlock {
    pub name: String,
    pub block_type: String,
    pub data: Value,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<uuid::Uuid>,
    /// With `id` of a deleted block: replace it (its history is purged); without, such
    /// an id is refused.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub replace_deleted: bool,
}

/// `PUT /blocks/{name}`: the whole new document; `********` keeps a stored secret.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpdateBlock {
    pub data: Value,
}

/// `POST /blocks/{name}/rename`.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RenameBlock {
    pub new_name: String,
}

/// Every error answer: a stable code and a message that never holds a secret.
#[derive(Debug, Serialize, Deserialize)]
pub struct ErrorBody {
    pub error: ErrorDetail,
    /// Under `/prefect/api` only: the code and message in FastAPI's shape, which
    /// Prefect's clients and UI show.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct ErrorDetail {
    pub code: String,
    pub message: String,
}

/// `/health` and `/ready`.
#[derive(Debug, Serialize, Deserialize)]
pub struct Health {
    pub status: String,
    /// `/ready`: lease revocations that failed and wait to be tried again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub leases_failing: Option<i64>,
}

/// `POST /databases`: `db create`. Give `database`, or `generate_name` (a project
/// title) to have one made.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateDatabase {
    pub admin: String,
    #[serde(default)]
    pub database: Option<String>,
    #[serde(default)]
    pub generate_name: Option<String>,
    pub owner: String,
    pub block: String,
    #[serde(default)]
    pub template: Option<String>,
    #[serde(default)]
    pub extensions: Vec<String>,
    /// `owner` exists and is the admin block's own role (`db create --existing-owner`).
    #[serde(default)]
    pub existing_owner: bool,
}

/// `POST /databases/{name}/users`: `db user create`. `grant`: read, write or all.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateDatabaseUser {
    pub admin: String,
    pub role: String,
    pub grant: String,
    pub block: String,
}

/// `POST /blocks/{name}/apply`: schema files, applied in order.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApplySchema {
    pub files: Vec<SchemaFile>,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SchemaFile {
    /// Shown in errors as `name:line`.
    pub name: String,
    pub sql: String,
}

/// The answer to `POST /blocks/{name}/apply`.
#[derive(Debug, Serialize, Deserialize)]
pub struct Applied {
    pub block: String,
    pub files: usize,
    pub statements: usize,
    /// The block's `requires` its database still lacks after the files ran.
    #[serde(default)]
    pub unmet: Vec<String>,
}

/// `POST /blocks/{name}/rotate-password`.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RotatePassword {
    pub admin: String,
}

/// The answer to `DELETE /databases/{name}`: what was dropped and the blocks that
/// still point at it.
#[derive(Debug, Serialize, Deserialize)]
pub struct DroppedDatabase {
    pub dropped: String,
    pub role_dropped: Option<String>,
    pub blocks: Vec<String>,
}

/// `POST /blocks/{name}/rollback`: write the next version equal to `to_version`.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rollback {
    pub to_version: i64,
}

/// The answer to `POST /blocks/{name}/purge`.
#[derive(Debug, Serialize, Deserialize)]
pub struct Purged {
    pub purged: String,
    pub id: String,
}

/// An export (`blockyard export`): blocks in the same shape `block inspect -o json` and
/// `GET /blocks/{name}` give, secrets masked; with `--include-secrets`, their secrets
/// as one age-encrypted, ASCII-armored message (a JSON object from block id to that
/// block's secrets).
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExportFile {
    /// `blockyard-export/1`.
    pub format: String,
    /// The id of the store the blocks came from.
    pub source_store: String,
    pub exported_at: String,
    /// User block types the blocks use (built-in ones travel with every build).
    #[serde(default)]
    pub types: Vec<BlockTypeDef>,
    pub blocks: Vec<BlockBody>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secrets: Option<String>,
}

/// The format an export declares.
pub const EXPORT_FORMAT: &str = "blockyard-export/1";

/// `POST /import`: an export, and what opens its secrets if it carries any (an age
/// identity, or the passphrase it was sealed with).
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImportRequest {
    pub export: ExportFile,
    #[serde(default)]
    pub identity: Option<String>,
    #[serde(default)]
    pub passphrase: Option<String>,
}
