//! The block model every layer shares: blocks, their metadata, summaries, versions,
//! new blocks, list filters and stamps. It imports nothing above it (no store, no
//! registry), so the store, the registry, the remote client and connections can all use
//! it. None of these values can show a secret by accident: the stored data is already
//! masked, and opened secrets are kept apart in [`Secrets`], whose `Debug` prints only
//! paths.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::document::{Secrets, merge_secrets};
use crate::error::{Error, Result};
use crate::name::BlockName;

/// A block to create.
#[derive(Debug)]
pub struct NewBlock {
    pub name: BlockName,
    pub block_type: String,
    /// The full document, secrets included.
    pub document: Value,
    /// Keep this id (import); a new UUID otherwise.
    pub id: Option<uuid::Uuid>,
    /// The id may be a deleted block's: this block replaces it, and its history goes.
    /// Without it, such an id is refused.
    pub replace_deleted: bool,
}

/// Who asked for a change (over HTTP): its audit record, written in the same
/// transaction as the change, so neither commits without the other.
#[derive(Clone, Debug)]
pub struct ChangeRecord {
    pub request_id: String,
    pub actor: String,
    /// `create`, `update`, `rename`, `delete`, `register-type`.
    pub action: &'static str,
    /// The block (or `type:SLUG`) as the request named it.
    pub subject: String,
    /// The token behind the change (`None` for the server's own work).
    pub token_id: Option<String>,
    /// Whether that actor holds `admin` on every block (and so may choose which admin
    /// block acts, as a scheduled rotation does).
    pub admin: bool,
}

/// Which blocks to list.
#[derive(Clone, Debug, Default)]
pub struct BlockFilter {
    pub block_type: Option<String>,
    pub name_prefix: Option<String>,
    /// List names strictly after this one (keyset pagination).
    pub after: Option<String>,
    pub limit: Option<i64>,
    /// Only names matching this glob (`*` any run of characters), filtered by the store
    /// (a token limited to `crdb-*` lists without reading every other name).
    pub name_glob: Option<String>,
    /// Only names holding this text anywhere (the web UI's search).
    pub name_contains: Option<String>,
}

/// What identifies a stored state of a block: a kept read of it is current while the
/// block under that name has the same stamp (a block deleted and created again under
/// its old id has a new `updated_at`).
#[derive(Clone, Debug, PartialEq, Eq, diesel::Queryable)]
pub struct BlockStamp {
    pub id: String,
    pub version: i64,
    pub updated_at: i64,
}

/// Where a watcher is: the stamp of each block it watches, as it last saw them
/// (`GET /api/v1/changes`'s cursor, opaque to clients: base64 of this map).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChangeCursor(std::collections::BTreeMap<String, String>);

impl ChangeCursor {
    /// The cursor for `names` at `stamps` (a name with no stamp is a block that does
    /// not exist now).
    pub fn of(names: &[&str], stamps: &std::collections::HashMap<String, BlockStamp>) -> Self {
        ChangeCursor(
            names
                .iter()
                .map(|name| {
                    let stamp = stamps.get(*name).map_or_else(String::new, |s| {
                        format!("{}:{}:{}", s.id, s.version, s.updated_at)
                    });
                    ((*name).to_owned(), stamp)
                })
                .collect(),
        )
    }

    /// The names whose stamp differs from `earlier`'s (a name `earlier` did not watch
    /// is not a change).
    pub fn changed_since(&self, earlier: &ChangeCursor) -> Vec<String> {
        self.0
            .iter()
            .filter(|(name, stamp)| earlier.0.get(*name).is_some_and(|was| was != *stamp))
            .map(|(name, _)| name.clone())
            .collect()
    }

    pub fn encode(&self) -> String {
        use base64::Engine;
        let json = serde_json::to_vec(&self.0).unwrap_or_default();
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(json)
    }

    pub fn decode(text: &str) -> Result<Self> {
        use base64::Engine;
        let bad = || Error::InvalidInput("since: not a cursor this server gave".into());
        let json = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(text)
            .map_err(|_| bad())?;
        serde_json::from_slice(&json)
            .map(ChangeCursor)
            .map_err(|_| bad())
    }
}

/// A block document.
#[derive(Clone, Debug)]
pub struct Block {
    pub id: String,
    pub name: BlockName,
    pub block_type: String,
    pub version: i64,
    pub created_at: i64,
    pub updated_at: i64,
    masked: Value,
    secrets: Option<Secrets>,
    /// The blocks whose secrets this one's references were resolved from.
    read_through: Vec<BlockName>,
}

impl Block {
    /// A block from its metadata, its masked document and, if they were opened, its
    /// secrets (read from the store, or received from a Blockyard server).
    pub fn from_parts(meta: BlockMeta, masked: Value, secrets: Option<Secrets>) -> Block {
        Block {
            id: meta.id,
            name: meta.name,
            block_type: meta.block_type,
            version: meta.version,
            created_at: meta.created_at,
            updated_at: meta.updated_at,
            masked,
            secrets,
            read_through: Vec::new(),
        }
    }

    /// Puts another block's `value` at `path`, where this block refers to it, as a
    /// secret (masked in every masked view); `from` are the blocks it was read from.
    pub fn resolve_reference(
        &mut self,
        path: &str,
        value: Value,
        from: Vec<BlockName>,
    ) -> Result<()> {
        crate::document::set_path(
            &mut self.masked,
            path,
            Value::String(crate::document::MASK.into()),
        )?;
        self.secrets
            .get_or_insert_with(Secrets::default)
            .insert(path, value);
        self.read_through.extend(from);
        Ok(())
    }

    /// The blocks whose secrets were read to resolve this one's references (none when
    /// it has none, or was read without them).
    pub fn read_through(&self) -> &[BlockName] {
        &self.read_through
    }

    /// Puts this block's secrets back where `doc` still holds `********` (a masked
    /// document edited and sent back).
    pub fn restore_masked(&self, doc: &mut Value) -> usize {
        match &self.secrets {
            Some(secrets) => crate::document::restore_masked(doc, secrets),
            None => 0,
        }
    }

    /// Its fields other than its data.
    pub fn meta(&self) -> BlockMeta {
        BlockMeta {
            id: self.id.clone(),
            name: self.name.clone(),
            block_type: self.block_type.clone(),
            version: self.version,
            created_at: self.created_at,
            updated_at: self.updated_at,
        }
    }

    /// Its secrets, if they were read.
    pub fn secrets(&self) -> Option<&Secrets> {
        self.secrets.as_ref()
    }

    /// Whether this block was read with its secrets.
    pub fn has_secrets(&self) -> bool {
        self.secrets.is_some()
    }

    /// The stored state this block was read from.
    pub fn stamp(&self) -> BlockStamp {
        BlockStamp {
            id: self.id.clone(),
            version: self.version,
            updated_at: self.updated_at,
        }
    }

    /// A block with an empty document, for tests of code that keeps blocks.
    #[cfg(test)]
    pub(crate) fn for_tests(name: &str, version: i64, secrets: bool) -> Block {
        Block {
            id: format!("id-{name}"),
            name: BlockName::parse(name).expect("a test's block name"),
            block_type: "json".into(),
            version,
            created_at: 0,
            updated_at: version,
            masked: Value::Object(Default::default()),
            secrets: secrets.then(Secrets::default),
            read_through: Vec::new(),
        }
    }

    /// The document with `********` where each secret is.
    pub fn masked_data(&self) -> &Value {
        &self.masked
    }

    /// The full document, secrets included, if they were loaded.
    pub fn document(&self) -> Option<Value> {
        let secrets = self.secrets.as_ref()?;
        let mut doc = self.masked.clone();
        merge_secrets(&mut doc, secrets);
        Some(doc)
    }

    /// The full document if the secrets were loaded, else the masked one.
    pub fn document_or_masked(&self) -> Value {
        self.document().unwrap_or_else(|| self.masked.clone())
    }

    /// What a reader is shown: the document with its secrets when `reveal` (and they
    /// were loaded), else the masked document.
    pub fn shown(&self, reveal: bool) -> Value {
        match reveal {
            true => self.document_or_masked(),
            false => self.masked.clone(),
        }
    }
}

/// The fields of a block other than its data (a row of `block ls`, and the first
/// fields of the API's block body).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct BlockMeta {
    pub id: String,
    pub name: BlockName,
    pub block_type: String,
    pub version: i64,
    #[serde(with = "crate::time::rfc3339_millis")]
    pub created_at: i64,
    #[serde(with = "crate::time::rfc3339_millis")]
    pub updated_at: i64,
}

impl BlockFilter {
    /// Whether a type, prefix or search holds text no name or type can hold, so the
    /// filter matches nothing and the store need not be asked (PostgreSQL refuses text
    /// with a NUL byte outright).
    pub fn matches_nothing(&self) -> bool {
        [&self.block_type, &self.name_prefix, &self.name_contains]
            .into_iter()
            .flatten()
            .any(|text| !text.chars().all(crate::name::is_name_char))
    }
}

/// A row of `block ls`: a block's metadata.
pub type BlockSummary = BlockMeta;

/// A deleted block (`block ls --deleted`): its id, the name and type it had, the
/// version that marks its deletion, when and by whom (`None`: on the store directly).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct DeletedBlock {
    pub id: String,
    pub name: BlockName,
    pub block_type: String,
    pub version: i64,
    #[serde(with = "crate::time::rfc3339_millis")]
    pub deleted_at: i64,
    pub deleted_by: Option<String>,
}

/// A stored (masked) document's JSON text, parsed.
pub fn parse_stored_data(text: &str, name: &str) -> Result<Value> {
    serde_json::from_str(text)
        .map_err(|_| Error::Store(format!("block {name:?} has unreadable data in the store")))
}

/// One kept version of a block, secrets masked.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct BlockVersion {
    pub version: i64,
    pub name: String,
    pub block_type: String,
    pub change: String,
    #[serde(with = "crate::time::rfc3339_millis")]
    pub created_at: i64,
    /// Who made it: the token's actor for a change over HTTP; absent for one made on the
    /// store directly (the CLI, the library), which `history` shows as `local`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub actor: Option<String>,
    pub data: Value,
    /// What this version changed against the one before it (secrets as changed or
    /// not, never their values); empty for the first version.
    #[serde(default)]
    pub changes: Vec<crate::document::FieldChange>,
}
