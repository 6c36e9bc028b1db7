//! Remote mode: the registry's block and type operations over a Blockyard server's
//! HTTP API (`BLOCKYARD_URL` + `BLOCKYARD_TOKEN`), returning the same values and
//! error codes as a local store.

use std::fmt;
use std::time::Duration;

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;
use zeroize::Zeroizing;

use crate::auth::{NewToken, TokenInfo};
use crate::block::{
    Block, BlockFilter, BlockMeta, BlockSummary, BlockVersion, ChangeRecord, DeletedBlock, NewBlock,
};
use crate::config::RemoteSettings;
use crate::document::split_secrets;
use crate::error::{Error, ErrorKind, Result};
use crate::name::BlockName;
use crate::source::BlockSource;
use crate::store::AuditFilter;
use crate::store::AuditRow;
use crate::time::rfc3339;
use crate::types::{BlockType, BlockTypeDef, builtin_type};
use crate::wire::{
    AuditPage, BlockBody, BlockPage, BlockTypes, Changes, CreateBlock, CreateToken, CreatedToken,
    Deleted, DeletedBlocks, ErrorBody, History, Purged, RenameBlock, RevokedToken, Rollback,
    TokenIdentity, Tokens, UpdateBlock,
};

/// A client of one Blockyard server. `Debug` shows the URL, never the token.
pub struct RemoteClient {
    base: url::Url,
    token: Zeroizing<String>,
    agent: ureq::Agent,
}

impl fmt::Debug for RemoteClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RemoteClient({})", self.base)
    }
}

fn enc(segment: &str) -> String {
    percent_encoding::utf8_percent_encode(segment, percent_encoding::NON_ALPHANUMERIC).to_string()
}

impl RemoteClient {
    pub fn new(settings: RemoteSettings) -> Result<Self> {
        let agent = ureq::AgentBuilder::new()
            .timeout_connect(Duration::from_secs(5))
            .timeout(Duration::from_secs(30))
            .user_agent(concat!("blockyard/", env!("CARGO_PKG_VERSION")))
            .build();
        Ok(RemoteClient {
            base: settings.url,
            token: settings.token,
            agent,
        })
    }

    pub fn base(&self) -> &url::Url {
        &self.base
    }

    fn url(&self, path: &str) -> String {
        format!("{}/api/v1{path}", self.base.as_str().trim_end_matches('/'))
    }

    fn get<T: DeserializeOwned>(&self, path: &str) -> Result<T> {
        self.call("GET", path, None, None)
    }

    /// A call with a JSON body (which may hold secrets: its text is wiped after).
    fn send<B: Serialize, T: DeserializeOwned>(
        &self,
        method: &str,
        path: &str,
        body: &B,
        if_match: Option<i64>,
    ) -> Result<T> {
        let text = serde_json::to_vec(body)
            .map_err(|err| Error::InvalidInput(format!("unwritable request: {err}")))?;
        self.call(method, path, Some(Zeroizing::new(text)), if_match)
    }

    /// One API call; the answer is read as `T` (a [`crate::wire`] shape), and an error
    /// answer becomes the server's code and message.
    fn call<T: DeserializeOwned>(
        &self,
        method: &str,
        path: &str,
        body: Option<Zeroizing<Vec<u8>>>,
        if_match: Option<i64>,
    ) -> Result<T> {
        self.respond(method, path, body, if_match)?
            .into_json::<T>()
            .map_err(|err| {
                remote_error(
                    ErrorKind::RemoteError,
                    format!("unreadable response: {err}"),
                )
            })
    }

    /// A `GET` whose answer is text (`/audit/export`'s JSON lines).
    fn get_text(&self, path: &str) -> Result<String> {
        self.respond("GET", path, None, None)?
            .into_string()
            .map_err(|err| {
                remote_error(
                    ErrorKind::RemoteError,
                    format!("unreadable response: {err}"),
                )
            })
    }

    /// One API call's successful answer; an error answer becomes the server's code and
    /// message.
    fn respond(
        &self,
        method: &str,
        path: &str,
        body: Option<Zeroizing<Vec<u8>>>,
        if_match: Option<i64>,
    ) -> Result<ureq::Response> {
        let mut req = self
            .agent
            .request(method, &self.url(path))
            .set("Authorization", &format!("Bearer {}", self.token.as_str()));
        if let Some(v) = if_match {
            req = req.set("If-Match", &format!("\"{v}\""));
        }
        let result = match body {
            Some(body) => req
                .set("Content-Type", "application/json")
                .send_bytes(&body),
            None => req.call(),
        };
        match result {
            Ok(resp) => Ok(resp),
            Err(ureq::Error::Status(status, resp)) => Err(match resp.into_json::<ErrorBody>() {
                Ok(body) => remote_error(ErrorKind::sent(&body.error.code), body.error.message),
                Err(_) => remote_error(
                    ErrorKind::RemoteError,
                    format!("the server answered {status}"),
                ),
            }),
            Err(ureq::Error::Transport(err)) => Err(remote_error(
                ErrorKind::RemoteUnavailable,
                format!(
                    "cannot reach the Blockyard server at {}: {}",
                    self.base,
                    err.kind()
                ),
            )),
        }
    }
}

/// What a server does besides blocks, for an admin token: tokens and the audit log.
impl RemoteClient {
    /// Deleted blocks the token may read (`GET /deleted-blocks`).
    pub fn list_deleted(&self, filter: &BlockFilter) -> Result<Vec<DeletedBlock>> {
        let mut query = Vec::new();
        query.extend(
            filter
                .block_type
                .as_deref()
                .map(|t| format!("type={}", enc(t))),
        );
        query.extend(
            filter
                .name_prefix
                .as_deref()
                .map(|p| format!("prefix={}", enc(p))),
        );
        let page: DeletedBlocks = self.get(&format!("/deleted-blocks?{}", query.join("&")))?;
        Ok(page.deleted)
    }

    /// `GET /changes`: the server waits up to `wait` for one of `names` to change.
    pub fn block_changes(
        &self,
        names: &[BlockName],
        since: Option<&str>,
        wait: Duration,
    ) -> Result<Changes> {
        let mut query: Vec<String> = names.iter().map(|n| format!("name={}", enc(n))).collect();
        query.extend(since.map(|s| format!("since={}", enc(s))));
        query.push(format!("wait={}", wait.as_secs()));
        self.get(&format!("/changes?{}", query.join("&")))
    }

    /// The token this client holds, as the server knows it.
    pub fn own_token(&self) -> Result<TokenIdentity> {
        self.get("/token")
    }

    pub fn list_tokens(&self) -> Result<Vec<TokenInfo>> {
        Ok(self.get::<Tokens>("/tokens")?.tokens)
    }

    pub fn create_token(
        &self,
        name: &str,
        scopes: &[String],
        expires_in: Option<Duration>,
    ) -> Result<NewToken> {
        let body = CreateToken {
            name: name.to_owned(),
            scopes: scopes.to_vec(),
            expires_in: expires_in.map(|d| humantime::format_duration(d).to_string()),
        };
        let created: CreatedToken = self.send("POST", "/tokens", &body, None)?;
        Ok(NewToken {
            info: created.info,
            secret: created.token,
        })
    }

    pub fn revoke_token(&self, name_or_id: &str) -> Result<()> {
        let path = format!("/tokens/{}", enc(name_or_id));
        self.call::<RevokedToken>("DELETE", &path, None, None)
            .map(|_| ())
    }

    /// Audit records, newest first (the server's `GET /audit`).
    pub fn audit(&self, filter: &AuditFilter) -> Result<Vec<AuditRow>> {
        let mut query = vec![format!("limit={}", filter.limit)];
        query.extend(filter.block.as_deref().map(|b| format!("block={}", enc(b))));
        query.extend(filter.since.map(|s| format!("since={}", enc(&rfc3339(s)))));
        query.extend(filter.before_id.map(|b| format!("before={b}")));
        let page: AuditPage = self.get(&format!("/audit?{}", query.join("&")))?;
        Ok(page.records)
    }

    /// Up to `limit` audit records after id `after`, oldest first (`GET /audit/export`).
    pub fn audit_after(&self, after: i64, since: Option<i64>, limit: i64) -> Result<Vec<AuditRow>> {
        let mut path = format!("/audit/export?after={after}&limit={limit}");
        if let Some(since) = since {
            path.push_str(&format!("&since={}", enc(&rfc3339(since))));
        }
        let lines = self.get_text(&path)?;
        lines
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(|line| {
                serde_json::from_str(line).map_err(|err| {
                    remote_error(
                        ErrorKind::RemoteError,
                        format!("unreadable audit record: {err}"),
                    )
                })
            })
            .collect()
    }
}

impl BlockSource for RemoteClient {
    fn block_types(&self) -> Result<Vec<BlockType>> {
        let body: BlockTypes = self.get("/block-types")?;
        body.block_types.into_iter().map(known_type).collect()
    }

    fn block_type(&self, slug: &str) -> Result<BlockType> {
        if let Some(ty) = builtin_type(slug) {
            return Ok(ty);
        }
        match self.get(&format!("/block-types/{}", enc(slug))) {
            Ok(def) => known_type(def),
            Err(err) if err.code() == "UNKNOWN_BLOCK_TYPE" => {
                Err(Error::UnknownBlockType(slug.to_owned()))
            }
            Err(err) => Err(err),
        }
    }

    fn register_type(
        &self,
        def: BlockTypeDef,
        replace: bool,
        _: Option<&ChangeRecord>,
    ) -> Result<BlockType> {
        let path = format!("/block-types?replace={replace}");
        known_type(self.send("POST", &path, &def, None)?)
    }

    fn create_block(&self, new: NewBlock, _: Option<&ChangeRecord>) -> Result<Block> {
        let body = CreateBlock {
            name: new.name.to_string(),
            block_type: new.block_type,
            data: new.document,
            id: new.id,
            replace_deleted: new.replace_deleted,
        };
        Ok(masked_block(self.send("POST", "/blocks", &body, None)?))
    }

    fn load_block(&self, name: &BlockName) -> Result<Block> {
        let body: BlockBody = self.get(&format!("{}?include_secrets=true", block_path(name)?))?;
        let ty = self.block_type(&body.meta.block_type)?;
        let BlockBody { meta, data } = body;
        // The full document, split here into the masked view and the secrets (so
        // `masked_data()` never holds a secret).
        let (masked, secrets) = split_secrets(&ty, data)?;
        Ok(Block::from_parts(meta, masked, Some(secrets)))
    }

    fn get_block_masked(&self, name: &BlockName) -> Result<Block> {
        Ok(masked_block(self.get(&block_path(name)?)?))
    }

    fn list_blocks(&self, filter: &BlockFilter) -> Result<Vec<BlockSummary>> {
        let mut out = Vec::new();
        let mut cursor = filter.after.clone();
        let wanted = filter.limit.unwrap_or(i64::MAX);
        loop {
            let page = (wanted - out.len() as i64).clamp(1, 1000);
            let mut query = vec![format!("limit={page}")];
            if let Some(t) = &filter.block_type {
                query.push(format!("type={}", enc(t)));
            }
            if let Some(p) = &filter.name_prefix {
                query.push(format!("prefix={}", enc(p)));
            }
            if let Some(c) = &cursor {
                query.push(format!("cursor={}", enc(c)));
            }
            let body: BlockPage = self.get(&format!("/blocks?{}", query.join("&")))?;
            out.extend(body.blocks);
            cursor = body.next_cursor;
            if cursor.is_none() || out.len() as i64 >= wanted {
                return Ok(out);
            }
        }
    }

    fn update_block(
        &self,
        name: &BlockName,
        document: Value,
        expected: Option<i64>,
        _: Option<&ChangeRecord>,
    ) -> Result<Block> {
        let body = UpdateBlock { data: document };
        Ok(masked_block(self.send(
            "PUT",
            &block_path(name)?,
            &body,
            expected,
        )?))
    }

    fn rename_block(
        &self,
        name: &BlockName,
        new_name: &BlockName,
        expected: Option<i64>,
        _: Option<&ChangeRecord>,
    ) -> Result<Block> {
        let path = format!("{}/rename", block_path(name)?);
        let body = RenameBlock {
            new_name: new_name.to_string(),
        };
        Ok(masked_block(self.send("POST", &path, &body, expected)?))
    }

    fn delete_block(
        &self,
        name: &BlockName,
        expected: Option<i64>,
        _: Option<&ChangeRecord>,
    ) -> Result<Block> {
        let body: Deleted = self.call("DELETE", &block_path(name)?, None, expected)?;
        Ok(Block::from_parts(
            BlockMeta {
                id: body.id,
                name: BlockName::stored(body.deleted),
                block_type: String::new(),
                version: body.version,
                created_at: 0,
                updated_at: 0,
            },
            Value::Null,
            None,
        ))
    }

    fn block_history(&self, name: &BlockName) -> Result<Vec<BlockVersion>> {
        let body: History = self.get(&format!("{}/history", block_path(name)?))?;
        Ok(body.versions)
    }

    fn rollback_block(
        &self,
        name: &BlockName,
        to: i64,
        expected: Option<i64>,
        _: Option<&ChangeRecord>,
    ) -> Result<Block> {
        let path = format!("{}/rollback", block_path(name)?);
        let body = Rollback { to_version: to };
        Ok(masked_block(self.send("POST", &path, &body, expected)?))
    }

    fn undelete_block(&self, name: &BlockName, _: Option<&ChangeRecord>) -> Result<Block> {
        let path = format!("{}/undelete", block_path(name)?);
        Ok(masked_block(self.call("POST", &path, None, None)?))
    }

    fn purge_block(&self, name: &BlockName, _: Option<&ChangeRecord>) -> Result<String> {
        let path = format!("{}/purge", block_path(name)?);
        let purged: Purged = self.call("POST", &path, None, None)?;
        Ok(purged.id)
    }
}

/// `/blocks/{name}`, the name checked and encoded.
fn block_path(name: &BlockName) -> Result<String> {
    Ok(format!("/blocks/{}", enc(name.as_str())))
}

fn remote_error(kind: ErrorKind, message: String) -> Error {
    Error::Remote { kind, message }
}

/// A type as the server defines it (built-in slugs keep this build's definition).
fn known_type(def: BlockTypeDef) -> Result<BlockType> {
    match builtin_type(&def.slug) {
        Some(builtin) => Ok(builtin),
        None => BlockType::from_def(def, false),
    }
}

/// A block the server answered with masked (no secrets read).
fn masked_block(body: BlockBody) -> Block {
    let BlockBody { meta, data } = body;
    Block::from_parts(meta, data, None)
}
