//! Remote mode: the registry's block and type operations over a Blockyard server's
//! HTTP API (`BLOCKYARD_URL` + `BLOCKYARD_TOKEN`), returning the same values and
//! error codes as a local store.

use std::fmt;
use std::time::Duration;

use serde_json::{Value, json};

use crate::block::{
    Block, BlockFilter, BlockMeta, BlockSummary, BlockVersion, ChangeRecord, NewBlock,
};
use crate::config::RemoteSettings;
use crate::document::split_secrets;
use crate::error::{Error, Result};
use crate::name::BlockName;
use crate::source::BlockSource;
use crate::time::parse_rfc3339;
use crate::types::{BlockType, BlockTypeDef, builtin_type};

/// A client of one Blockyard server. `Debug` shows the URL, never the token.
pub struct RemoteClient {
    base: url::Url,
    token: zeroize::Zeroizing<String>,
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

    fn send(
        &self,
        method: &str,
        path: &str,
        body: Option<Value>,
        if_match: Option<i64>,
    ) -> Result<Value> {
        let mut req = self
            .agent
            .request(method, &self.url(path))
            .set("Authorization", &format!("Bearer {}", self.token.as_str()));
        if let Some(v) = if_match {
            req = req.set("If-Match", &format!("\"{v}\""));
        }
        let result = match body {
            Some(body) => req.send_json(body),
            None => req.call(),
        };
        match result {
            Ok(resp) => resp
                .into_json::<Value>()
                .map_err(|err| remote_error("REMOTE_ERROR", format!("unreadable response: {err}"))),
            Err(ureq::Error::Status(status, resp)) => {
                let body: Value = resp.into_json().unwrap_or(Value::Null);
                let code = body["error"]["code"].as_str().unwrap_or("REMOTE_ERROR");
                let message = body["error"]["message"]
                    .as_str()
                    .map(str::to_owned)
                    .unwrap_or_else(|| format!("the server answered {status}"));
                Err(remote_error(code, message))
            }
            Err(ureq::Error::Transport(err)) => Err(remote_error(
                "REMOTE_UNAVAILABLE",
                format!(
                    "cannot reach the Blockyard server at {}: {}",
                    self.base,
                    err.kind()
                ),
            )),
        }
    }
}

impl BlockSource for RemoteClient {
    fn block_types(&self) -> Result<Vec<BlockType>> {
        let body = self.send("GET", "/block-types", None, None)?;
        body["block_types"]
            .as_array()
            .cloned()
            .unwrap_or_default()
            .into_iter()
            .map(type_from_json)
            .collect()
    }

    fn block_type(&self, slug: &str) -> Result<BlockType> {
        if let Some(ty) = builtin_type(slug) {
            return Ok(ty);
        }
        match self.send("GET", &format!("/block-types/{}", enc(slug)), None, None) {
            Ok(body) => type_from_json(body),
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
        let body = serde_json::to_value(&def).unwrap_or_default();
        let path = format!("/block-types?replace={replace}");
        type_from_json(self.send("POST", &path, Some(body), None)?)
    }

    fn create_block(&self, new: NewBlock, _: Option<&ChangeRecord>) -> Result<Block> {
        let mut body =
            json!({"name": new.name.as_str(), "block_type": new.block_type, "data": new.document});
        if let Some(id) = new.id {
            body["id"] = json!(id.to_string());
        }
        block_from_json(self.send("POST", "/blocks", Some(body), None)?, None)
    }

    fn load_block(&self, name: &str) -> Result<Block> {
        let path = format!(
            "/blocks/{}?include_secrets=true",
            enc(BlockName::parse(name)?.as_str())
        );
        let body = self.send("GET", &path, None, None)?;
        let ty = self.block_type(body["block_type"].as_str().unwrap_or_default())?;
        block_from_json(body, Some(&ty))
    }

    fn get_block_masked(&self, name: &str) -> Result<Block> {
        let path = format!("/blocks/{}", enc(BlockName::parse(name)?.as_str()));
        block_from_json(self.send("GET", &path, None, None)?, None)
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
            let body = self.send("GET", &format!("/blocks?{}", query.join("&")), None, None)?;
            for b in body["blocks"].as_array().cloned().unwrap_or_default() {
                out.push(BlockSummary {
                    id: text(&b, "id"),
                    name: text(&b, "name"),
                    block_type: text(&b, "block_type"),
                    version: b["version"].as_i64().unwrap_or_default(),
                    created_at: parse_rfc3339(b["created_at"].as_str().unwrap_or_default()),
                    updated_at: parse_rfc3339(b["updated_at"].as_str().unwrap_or_default()),
                });
            }
            cursor = body["next_cursor"].as_str().map(str::to_owned);
            if cursor.is_none() || out.len() as i64 >= wanted {
                return Ok(out);
            }
        }
    }

    fn update_block(
        &self,
        name: &str,
        document: Value,
        expected: Option<i64>,
        _: Option<&ChangeRecord>,
    ) -> Result<Block> {
        let path = format!("/blocks/{}", enc(BlockName::parse(name)?.as_str()));
        block_from_json(
            self.send("PUT", &path, Some(json!({"data": document})), expected)?,
            None,
        )
    }

    fn rename_block(
        &self,
        name: &str,
        new_name: &BlockName,
        expected: Option<i64>,
        _: Option<&ChangeRecord>,
    ) -> Result<Block> {
        let path = format!("/blocks/{}/rename", enc(BlockName::parse(name)?.as_str()));
        let body = json!({"new_name": new_name.as_str()});
        block_from_json(self.send("POST", &path, Some(body), expected)?, None)
    }

    fn delete_block(
        &self,
        name: &str,
        expected: Option<i64>,
        _: Option<&ChangeRecord>,
    ) -> Result<Block> {
        let path = format!("/blocks/{}", enc(BlockName::parse(name)?.as_str()));
        let body = self.send("DELETE", &path, None, expected)?;
        Ok(Block::from_parts(
            BlockMeta {
                id: text(&body, "id"),
                name: text(&body, "deleted"),
                block_type: String::new(),
                version: body["version"].as_i64().unwrap_or_default(),
                created_at: 0,
                updated_at: 0,
            },
            Value::Null,
            None,
        ))
    }

    fn block_history(&self, name: &str) -> Result<Vec<BlockVersion>> {
        let path = format!("/blocks/{}/history", enc(BlockName::parse(name)?.as_str()));
        let body = self.send("GET", &path, None, None)?;
        Ok(body["versions"]
            .as_array()
            .cloned()
            .unwrap_or_default()
            .into_iter()
            .map(|v| BlockVersion {
                version: v["version"].as_i64().unwrap_or_default(),
                name: text(&v, "name"),
                block_type: text(&v, "block_type"),
                change: text(&v, "change"),
                created_at: parse_rfc3339(v["created_at"].as_str().unwrap_or_default()),
                data: v["data"].clone(),
                changes: serde_json::from_value(v["changes"].clone()).unwrap_or_default(),
            })
            .collect())
    }
}

fn remote_error(code: &str, message: String) -> Error {
    Error::Remote {
        code: code.to_owned(),
        message,
    }
}

fn text(v: &Value, key: &str) -> String {
    v[key].as_str().unwrap_or_default().to_owned()
}

fn type_from_json(body: Value) -> Result<BlockType> {
    let def: BlockTypeDef = serde_json::from_value(body)
        .map_err(|err| remote_error("REMOTE_ERROR", format!("unreadable block type: {err}")))?;
    match builtin_type(&def.slug) {
        Some(builtin) => Ok(builtin),
        None => BlockType::from_def(def, false),
    }
}

/// A block from the API; with `ty`, its data is the full document, split here into the
/// masked view and the secrets (so `masked_data()` never holds a secret).
fn block_from_json(body: Value, ty: Option<&BlockType>) -> Result<Block> {
    let meta = BlockMeta {
        id: text(&body, "id"),
        name: text(&body, "name"),
        block_type: text(&body, "block_type"),
        version: body["version"].as_i64().unwrap_or_default(),
        created_at: parse_rfc3339(body["created_at"].as_str().unwrap_or_default()),
        updated_at: parse_rfc3339(body["updated_at"].as_str().unwrap_or_default()),
    };
    let data = body["data"].clone();
    Ok(match ty {
        Some(ty) => {
            let (masked, secrets) = split_secrets(ty, data)?;
            Block::from_parts(meta, masked, Some(secrets))
        }
        None => Block::from_parts(meta, data, None),
    })
}
