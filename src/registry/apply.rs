//! `apply -f`: a file of desired blocks (YAML or JSON) made true, idempotently. Secrets
//! are never written in the file but referenced (`{from_env: VAR}`, `{from_file:
//! PATH}`); the plan lists what is created, updated (with a masked diff), unchanged
//! and, with prune, deleted.

use std::collections::BTreeSet;
use std::path::Path;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::handle::Registry;
use crate::block::{Block, BlockFilter, NewBlock};
use crate::document::{FieldChange, MASK, Secrets, changes, split_secrets};
use crate::error::{Error, Result};
use crate::name::BlockName;

/// An apply file: the blocks that should exist.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApplyFile {
    pub blocks: Vec<DesiredBlock>,
}

/// One desired block, in the block document format (`inspect -o json` output is
/// accepted; its `version` and times are ignored).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DesiredBlock {
    pub name: BlockName,
    #[serde(alias = "type")]
    pub block_type: String,
    /// Keep this id when the block is created (as import does).
    #[serde(default)]
    pub id: Option<uuid::Uuid>,
    pub data: Value,
    #[serde(default)]
    pub version: Option<i64>,
    #[serde(default)]
    pub created_at: Option<Value>,
    #[serde(default)]
    pub updated_at: Option<Value>,
}

/// Where an apply file's secrets come from: the environment of `apply`, and files
/// (relative paths are read from the apply file's directory).
pub struct SecretRefs<'a> {
    pub env: &'a dyn Fn(&str) -> Option<String>,
    pub base_dir: &'a Path,
}

/// How an apply runs.
#[derive(Clone, Debug, Default)]
pub struct ApplyOptions<'a> {
    /// Also delete blocks not in the file whose names start with this.
    pub prune: Option<&'a str>,
    /// Only plan.
    pub dry_run: bool,
    /// A created block may take a deleted block's id (purging that block's history).
    pub replace_deleted: bool,
}

/// What an apply did (or, with `dry_run`, would do).
#[derive(Debug, Default, Serialize)]
pub struct ApplyPlan {
    pub create: Vec<String>,
    /// Created blocks that take a deleted block's id (created block to deleted block):
    /// that block and its history are purged.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub replace_deleted: std::collections::BTreeMap<String, String>,
    pub update: Vec<PlannedUpdate>,
    pub unchanged: Vec<String>,
    pub delete: Vec<String>,
    pub applied: bool,
}

/// A block the apply changes, and how (secret values never shown).
#[derive(Debug, Serialize)]
pub struct PlannedUpdate {
    pub name: String,
    pub changes: Vec<FieldChange>,
}

impl ApplyPlan {
    pub fn changes(&self) -> usize {
        self.create.len() + self.update.len() + self.delete.len()
    }

    /// Lists each step under what it will do.
    fn record(&mut self, steps: &[Step]) {
        for step in steps {
            match step {
                Step::Create(new) => self.create.push(new.name.to_string()),
                Step::Update { name, changes, .. } => self.update.push(PlannedUpdate {
                    name: name.clone(),
                    changes: changes.clone(),
                }),
                Step::Unchanged(name) => self.unchanged.push(name.clone()),
            }
        }
    }
}

/// Parses an apply file: YAML, of which JSON is a part.
pub fn parse_apply_file(text: &str, origin: &str) -> Result<ApplyFile> {
    serde_norway::from_str(text)
        .map_err(|err| Error::InvalidInput(format!("{origin} is not an apply file: {err}")))
}

/// A desired block, its secrets read, checked against its type and the store.
enum Step {
    Create(NewBlock),
    Update {
        name: String,
        document: Value,
        version: i64,
        changes: Vec<FieldChange>,
    },
    Unchanged(String),
}

impl Registry {
    /// Makes the blocks in `file` exist as written. Every block is checked (type,
    /// schema, secret references, the block it would replace) before anything is
    /// written; each write then carries the version read, so a concurrent change is a
    /// conflict, not lost. With `prune`, blocks not in the file whose names start with
    /// `prune_prefix` are deleted (a soft delete: `block undelete` brings one back).
    pub fn apply(
        &self,
        file: ApplyFile,
        refs: &SecretRefs<'_>,
        options: &ApplyOptions<'_>,
    ) -> Result<ApplyPlan> {
        let (seen, mut steps) = self.plan_steps(file, refs)?;
        let mut plan = ApplyPlan::default();
        if let Some(prefix) = options.prune {
            plan.delete = self.pruned(prefix, &seen)?;
        }
        plan.replace_deleted = self.deleted_ids_taken(&steps)?;
        if !options.replace_deleted
            && !options.dry_run
            && let Some((name, deleted)) = plan.replace_deleted.iter().next()
        {
            return Err(Error::InvalidInput(format!(
                "block {name} takes the id of the deleted block {deleted}: applying would \
                 purge that block and its history; `blockyard block undelete {deleted}` \
                 brings it back, or pass --replace-deleted"
            )));
        }
        for step in &mut steps {
            if let Step::Create(new) = step {
                new.replace_deleted = options.replace_deleted;
            }
        }
        plan.record(&steps);
        if options.dry_run {
            return Ok(plan);
        }
        self.carry_out(steps, &plan.delete)?;
        plan.applied = true;
        Ok(plan)
    }

    /// Each desired block's step, every one checked before any is taken; a name
    /// written twice is refused. Also the names seen.
    fn plan_steps(
        &self,
        file: ApplyFile,
        refs: &SecretRefs<'_>,
    ) -> Result<(BTreeSet<String>, Vec<Step>)> {
        let mut seen = BTreeSet::new();
        let mut steps = Vec::new();
        for desired in file.blocks {
            if !seen.insert(desired.name.to_string()) {
                return Err(Error::InvalidInput(format!(
                    "block {} is in the file twice",
                    desired.name
                )));
            }
            steps.push(self.plan_step(desired, refs)?);
        }
        Ok((seen, steps))
    }

    /// The blocks under `prefix` that the file does not name.
    fn pruned(&self, prefix: &str, seen: &BTreeSet<String>) -> Result<Vec<String>> {
        let filter = BlockFilter {
            name_prefix: Some(prefix.to_owned()).filter(|p| !p.is_empty()),
            ..Default::default()
        };
        Ok(self
            .list_blocks(&filter)?
            .into_iter()
            .map(|b| String::from(b.name))
            .filter(|name| !seen.contains(name))
            .collect())
    }

    /// Takes the planned steps, then deletes the pruned blocks.
    fn carry_out(&self, steps: Vec<Step>, delete: &[String]) -> Result<()> {
        for step in steps {
            match step {
                Step::Create(new) => {
                    self.create_block(new)?;
                }
                Step::Update {
                    name,
                    document,
                    version,
                    ..
                } => {
                    self.update_block(&name, document, Some(version))?;
                }
                Step::Unchanged(_) => {}
            }
        }
        for name in delete {
            self.delete_block(name, None)?;
        }
        Ok(())
    }

    fn plan_step(&self, desired: DesiredBlock, refs: &SecretRefs<'_>) -> Result<Step> {
        let name = desired.name.to_string();
        let ty = self.block_type(&desired.block_type)?;
        let mut referenced = Vec::new();
        let mut document = desired.data;
        resolve_refs(&mut document, "", refs, &mut referenced)
            .map_err(|err| in_block(&name, err))?;
        let (_, given) =
            split_secrets(&ty, document.clone()).map_err(|err| in_block(&name, err))?;
        check_secrets_referenced(&given, &referenced).map_err(|err| in_block(&name, err))?;
        check_refs_are_secrets(&given, &referenced).map_err(|err| in_block(&name, err))?;
        let current = match self.load_block(&name) {
            Ok(block) => Some(block),
            // (a server answers the same code)
            Err(err) if err.code() == "BLOCK_NOT_FOUND" => None,
            Err(err) => return Err(err),
        };
        if let Some(current) = &current {
            current.restore_masked(&mut document);
        }
        let (masked, secrets) =
            split_secrets(&ty, document.clone()).map_err(|err| in_block(&name, err))?;
        if secrets.holds_mask() {
            return Err(in_block(
                &name,
                Error::InvalidInput(format!(
                    "a secret reads {MASK}, which keeps a stored secret, but none is stored \
                     for it here"
                )),
            ));
        }
        ty.validate(&document).map_err(|err| in_block(&name, err))?;
        let Some(current) = current else {
            return Ok(Step::Create(NewBlock {
                name: desired.name,
                block_type: desired.block_type,
                document,
                id: desired.id,
                replace_deleted: false,
            }));
        };
        check_same_block(&current, &desired.block_type, desired.id)?;
        if current.document().as_ref() == Some(&document) {
            return Ok(Step::Unchanged(name));
        }
        let changes = changes(
            current.masked_data(),
            current.secrets(),
            &masked,
            Some(&secrets),
        );
        Ok(Step::Update {
            name,
            document,
            version: current.version,
            changes,
        })
    }
}

impl Registry {
    /// The created blocks whose ids belong to deleted blocks here (only a local store
    /// can tell; a server refuses such a create by itself).
    fn deleted_ids_taken(
        &self,
        steps: &[Step],
    ) -> Result<std::collections::BTreeMap<String, String>> {
        let Ok((store, _)) = self.local() else {
            return Ok(Default::default());
        };
        let created: Vec<(String, String)> = steps
            .iter()
            .filter_map(|step| match step {
                Step::Create(new) => Some((new.id?.to_string(), new.name.to_string())),
                _ => None,
            })
            .collect();
        let ids: Vec<&str> = created.iter().map(|(id, _)| id.as_str()).collect();
        let deleted = store.deleted_with_ids(&ids)?;
        Ok(created
            .into_iter()
            .filter_map(|(id, name)| Some((name, deleted.get(&id)?.clone())))
            .collect())
    }
}

fn in_block(name: &str, err: Error) -> Error {
    match err {
        Error::InvalidInput(message) => Error::InvalidInput(format!("block {name}: {message}")),
        other => other,
    }
}

/// An existing block an apply would update must be of the same type (and id, if the
/// file gives one): the file describes that block, not another under its name.
fn check_same_block(current: &Block, block_type: &str, id: Option<uuid::Uuid>) -> Result<()> {
    if current.block_type != block_type {
        return Err(Error::InvalidInput(format!(
            "block {} is of type {} here, not {block_type}; delete it first to change its type",
            current.name, current.block_type
        )));
    }
    if let Some(id) = id
        && current.id != id.to_string()
    {
        return Err(Error::InvalidInput(format!(
            "block {} here has id {}, not {id}",
            current.name, current.id
        )));
    }
    Ok(())
}

/// Replaces each `{from_env: VAR}` and `{from_file: PATH}` object in `node` with the
/// value read, recording the paths replaced.
fn resolve_refs(
    node: &mut Value,
    path: &str,
    refs: &SecretRefs<'_>,
    referenced: &mut Vec<String>,
) -> Result<()> {
    if let Value::Object(map) = node {
        if let Some(value) = secret_ref(map, path, refs)? {
            *node = Value::String(value);
            referenced.push(path.to_owned());
            return Ok(());
        }
        for (key, child) in map.iter_mut() {
            let child_path = match path.is_empty() {
                true => key.clone(),
                false => format!("{path}.{key}"),
            };
            resolve_refs(child, &child_path, refs, referenced)?;
        }
    }
    Ok(())
}

/// The value an object refers to, if it is a reference (an object whose only key is
/// `from_env` or `from_file`).
fn secret_ref(
    map: &Map<String, Value>,
    path: &str,
    refs: &SecretRefs<'_>,
) -> Result<Option<String>> {
    if map.len() != 1 {
        return Ok(None);
    }
    let (kind, target) = map.iter().next().expect("one entry");
    let Some(target) = target.as_str() else {
        return match kind.as_str() {
            "from_env" | "from_file" => Err(Error::InvalidInput(format!(
                "{path}: {kind} takes a string"
            ))),
            _ => Ok(None),
        };
    };
    match kind.as_str() {
        "from_env" => (refs.env)(target).map(Some).ok_or_else(|| {
            Error::InvalidInput(format!(
                "{path}: the environment variable {target} is not set"
            ))
        }),
        "from_file" => {
            let text = crate::files::read_secret_file(&refs.base_dir.join(target))
                .map_err(|err| in_field(path, err))?;
            Ok(Some(text.trim_end_matches(['\n', '\r']).to_owned()))
        }
        _ => Ok(None),
    }
}

fn in_field(path: &str, err: Error) -> Error {
    match err {
        Error::InvalidInput(message) => Error::InvalidInput(format!("{path}: {message}")),
        other => other,
    }
}

/// A reference stands only where the type declares a secret (or for a whole URL that
/// holds one): a value read from the environment or a file into a plain field would be
/// printed by the plan and stored unsealed, readable with `blocks:read`.
fn check_refs_are_secrets(secrets: &Secrets, referenced: &[String]) -> Result<()> {
    let plain: Vec<&str> = referenced
        .iter()
        .filter(|r| !secrets.paths().any(|p| p == r.as_str()))
        .map(String::as_str)
        .collect();
    match plain.is_empty() {
        true => Ok(()),
        false => Err(Error::InvalidInput(format!(
            "{}: from_env and from_file may only fill a secret field (this type's secrets, \
             or a URL with a password in it); write a plain value in the file",
            plain.join(", ")
        ))),
    }
}

/// Every secret must come from a reference (or be the mask, keeping the stored one):
/// an apply file is meant to be committed, so a secret written in it is refused.
fn check_secrets_referenced(secrets: &Secrets, referenced: &[String]) -> Result<()> {
    let literal: Vec<&str> = secrets
        .iter()
        .filter(|(path, value)| {
            value.as_str() != Some(MASK)
                && !referenced
                    .iter()
                    .any(|r| r == path || path.starts_with(&format!("{r}.")))
        })
        .map(|(path, _)| path)
        .collect();
    match literal.is_empty() {
        true => Ok(()),
        false => Err(Error::InvalidInput(format!(
            "{} written in the file; secrets are referenced instead: \
             {{from_env: VARIABLE}} or {{from_file: PATH}}",
            literal.join(", ")
        ))),
    }
}
