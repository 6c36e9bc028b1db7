//! Moving blocks between stores: `export` (secrets masked, or sealed to an age recipient
//! or passphrase, never written in plaintext) and `import` (ids kept, a plan first,
//! every block written in one transaction or none).

use std::collections::{BTreeMap, HashMap};

use serde::Serialize;

use super::handle::Registry;
use super::local::LocalBlocks;
use crate::block::BlockFilter;
use crate::document::{Secrets, merge_secrets, split_secrets};
use crate::error::{Error, Result};
use crate::name::BlockName;
use crate::store::{BlockRow, TypeRow};
use crate::time::now_millis;
use crate::types::BlockType;
use crate::wire::{BlockBody, EXPORT_FORMAT, ExportFile};

/// Who may open an export's secrets: an age public key, or a passphrase.
pub enum SecretsKey {
    Recipient(Box<age::x25519::Recipient>),
    Passphrase(age::secrecy::SecretString),
}

/// What opens an export's secrets: an age identity, or the passphrase.
pub enum SecretsIdentity {
    Identity(Box<age::x25519::Identity>),
    Passphrase(age::secrecy::SecretString),
}

impl SecretsKey {
    /// `age1...`
    pub fn recipient(text: &str) -> Result<SecretsKey> {
        text.trim()
            .parse()
            .map(|r| SecretsKey::Recipient(Box::new(r)))
            .map_err(|err| Error::InvalidInput(format!("not an age recipient (age1...): {err}")))
    }
}

impl SecretsIdentity {
    /// An age identity file's text (`AGE-SECRET-KEY-1...`, comments allowed).
    pub fn identity_file(text: &str) -> Result<SecretsIdentity> {
        text.lines()
            .map(str::trim)
            .find(|l| l.starts_with("AGE-SECRET-KEY-"))
            .and_then(|l| l.parse().ok())
            .map(|i| SecretsIdentity::Identity(Box::new(i)))
            .ok_or_else(|| Error::InvalidInput("the identity file holds no age secret key".into()))
    }
}

/// What an import did (or, with `--dry-run`, would do), block names by outcome.
#[derive(Debug, Default, Serialize)]
pub struct ImportPlan {
    pub types: Vec<String>,
    pub create: Vec<String>,
    pub update: Vec<String>,
    /// Blocks here of the same name but another id, replaced by the export's (its id
    /// included) with `--overwrite`; their history stays under the old id, deleted.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub replace: Vec<String>,
    pub unchanged: Vec<String>,
    pub skipped: Vec<String>,
    /// Updates that change where a block connects (block name to the fields), so a
    /// reviewer sees them before the secret goes there.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub moved: BTreeMap<String, Vec<String>>,
    pub applied: bool,
}

/// How an import treats blocks that exist.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Existing {
    /// Update a block of the same id and name; refuse one whose name or id belongs to
    /// another block.
    #[default]
    Update,
    /// Leave every existing block as it is.
    Skip,
    /// Also replace a block of the same name but another id with the export's, id
    /// included (so dev and prod keep the same ids).
    Overwrite,
}

impl Registry {
    /// The blocks `filter` selects (and, if `names` is not empty, only those), masked;
    /// with `key`, their secrets sealed to it.
    pub fn export(
        &self,
        filter: &BlockFilter,
        names: &[BlockName],
        key: Option<&SecretsKey>,
    ) -> Result<ExportFile> {
        let (store, _) = self.local()?;
        let mut blocks = Vec::new();
        let mut secrets: BTreeMap<String, Secrets> = BTreeMap::new();
        let mut type_slugs = Vec::new();
        for summary in self.list_blocks(filter)? {
            if !names.is_empty() && !names.contains(&summary.name) {
                continue;
            }
            let block = match key {
                Some(_) => self.load_block(&summary.name)?,
                None => self.get_block_masked(&summary.name)?,
            };
            if let Some(block_secrets) = block.secrets().filter(|_| key.is_some()) {
                secrets.insert(block.id.clone(), block_secrets.clone());
            }
            if !type_slugs.contains(&block.block_type) {
                type_slugs.push(block.block_type.clone());
            }
            blocks.push(BlockBody::of(&block, false));
        }
        let types = self
            .block_types()?
            .into_iter()
            .filter(|t| !t.builtin && type_slugs.contains(&t.def.slug))
            .map(|t| t.def)
            .collect();
        let sealed = match key {
            None => None,
            Some(key) => Some(seal(key, &secrets)?),
        };
        Ok(ExportFile {
            format: EXPORT_FORMAT.into(),
            source_store: store.meta("store_id")?.unwrap_or_default(),
            exported_at: crate::time::rfc3339(now_millis()),
            types,
            blocks,
            secrets: sealed,
        })
    }

    /// Imports an export: the user types it brings and every block in one transaction (ids
    /// kept). A block that arrives masked keeps the secret stored here for it, and is
    /// refused if it is new here. With `dry_run`, only the plan.
    pub fn import(
        &self,
        file: ExportFile,
        identity: Option<&SecretsIdentity>,
        existing: Existing,
        dry_run: bool,
    ) -> Result<ImportPlan> {
        let local = self
            .local
            .clone()
            .ok_or_else(|| Error::Config("import needs a local store".into()))?;
        let secrets = export_secrets(&file, identity)?;
        let mut plan = ImportPlan::default();
        let new_types = self.new_types(&file, &mut plan)?;
        let rows = self.plan_import(&local, &file, &new_types, &secrets, existing, &mut plan)?;
        if dry_run {
            return Ok(plan);
        }
        self.write_import(&local, rows, &new_types)?;
        plan.applied = true;
        Ok(plan)
    }

    /// Each exported block's plan, recorded in `plan`; the rows to create and update.
    fn plan_import(
        &self,
        local: &LocalBlocks,
        file: &ExportFile,
        new_types: &[BlockType],
        secrets: &BTreeMap<String, Secrets>,
        existing: Existing,
        plan: &mut ImportPlan,
    ) -> Result<ImportRows> {
        let mut rows = ImportRows::default();
        let here = Here::load(&local.store, file)?;
        for body in &file.blocks {
            let name = body.meta.name.to_string();
            let fetched;
            let ty = match new_types
                .iter()
                .find(|t| t.def.slug == body.meta.block_type)
            {
                Some(ty) => ty,
                None => {
                    fetched = self.block_type(&body.meta.block_type)?;
                    &fetched
                }
            };
            let secrets = secrets.get(&body.meta.id);
            match plan_block(local, &here, ty, body, secrets, existing, self.record())? {
                Planned::Create(row, s) => {
                    if let Some(deleted) = here.deleted.get(&row.id)
                        && existing != Existing::Overwrite
                    {
                        let how = "import with --overwrite (existing=overwrite)";
                        return Err(super::local::replaces_deleted(&row.id, deleted, how));
                    }
                    plan.create.push(name);
                    rows.creates.push((row, s));
                }
                Planned::Update(row, s, expected, moved) => {
                    if !moved.is_empty() {
                        plan.moved.insert(name.clone(), moved);
                    }
                    plan.update.push(name);
                    rows.updates.push((row, s, expected));
                }
                Planned::Replace(row, s, old) => {
                    plan.replace.push(name);
                    rows.replaced.push(old);
                    rows.creates.push((row, s));
                }
                Planned::Unchanged => plan.unchanged.push(name),
                Planned::Skipped => plan.skipped.push(name),
            }
        }
        Ok(rows)
    }

    /// Seals the planned rows (only now, once every block checks out) and writes them
    /// with the new types and the audit entry in one transaction.
    fn write_import(
        &self,
        local: &LocalBlocks,
        rows: ImportRows,
        new_types: &[BlockType],
    ) -> Result<()> {
        let ImportRows {
            creates,
            updates,
            replaced,
        } = rows;
        let creates = creates
            .into_iter()
            .map(|(row, s)| local.sealed(row, &s))
            .collect::<Result<Vec<_>>>()?;
        let updates = updates
            .into_iter()
            .map(|(row, s, expected)| Ok((local.sealed(row, &s)?, expected)))
            .collect::<Result<Vec<_>>>()?;
        let types = type_rows(local, new_types)?;
        let audit = super::local::audit_row(self.record());
        let (half, mut done) = ((creates.len() + updates.len()) / 2, 0);
        local.store.import_rows(
            &replaced,
            &creates,
            &updates,
            &types,
            audit.as_ref(),
            &mut |n| {
                done += n;
                if done >= half.max(1) {
                    super::crash::crash_point("import-half-written");
                }
            },
        )
    }

    /// The export's user types this store lacks, to check their blocks against (they
    /// are registered only once every block checks out).
    fn new_types(&self, file: &ExportFile, plan: &mut ImportPlan) -> Result<Vec<BlockType>> {
        let mut new_types = Vec::new();
        for def in &file.types {
            if self.block_type(&def.slug).is_err() {
                plan.types.push(def.slug.clone());
                new_types.push(BlockType::from_def(def.clone(), false)?);
            }
        }
        Ok(new_types)
    }
}

/// The export's secrets, opened with `identity`; none if it holds none. Refuses a file
/// that is not an export.
fn export_secrets(
    file: &ExportFile,
    identity: Option<&SecretsIdentity>,
) -> Result<BTreeMap<String, Secrets>> {
    if file.format != EXPORT_FORMAT {
        return Err(Error::InvalidInput(format!(
            "not a Blockyard export (format {:?}, expected {EXPORT_FORMAT})",
            file.format
        )));
    }
    match (&file.secrets, identity) {
        (Some(sealed), Some(identity)) => open(identity, sealed),
        (Some(_), None) => Err(Error::InvalidInput(
            "this export holds secrets: give --identity (or --passphrase-file) to import them"
                .into(),
        )),
        (None, _) => Ok(BTreeMap::new()),
    }
}

/// What an import does with one block.
/// The rows an import writes: new blocks, and next versions with the version each
/// replaces.
#[derive(Default)]
struct ImportRows {
    creates: Vec<(BlockRow, Secrets)>,
    updates: Vec<(BlockRow, Secrets, i64)>,
    /// Blocks deleted (at their current version) to make way for a create that
    /// replaces them.
    replaced: Vec<BlockRow>,
}

/// The new types' rows, each bound to this store by the row key.
fn type_rows(local: &LocalBlocks, new_types: &[BlockType]) -> Result<Vec<TypeRow>> {
    let now = now_millis();
    let row_key = local.row_key()?;
    new_types
        .iter()
        .map(|ty| {
            let definition = serde_json::to_string(&ty.def)
                .map_err(|e| Error::InvalidBlockType(e.to_string()))?;
            Ok(TypeRow {
                mac: Some(super::local::type_mac(&row_key, &ty.def.slug, &definition)),
                slug: ty.def.slug.clone(),
                definition,
                created_at: now,
                updated_at: now,
            })
        })
        .collect()
}

enum Planned {
    Create(BlockRow, Secrets),
    /// The next row, its secrets, the version it replaces and the destination fields
    /// it changes.
    Update(BlockRow, Secrets, i64, Vec<String>),
    /// The new row (the export's id), its secrets, and the block here it replaces.
    Replace(BlockRow, Secrets, BlockRow),
    Unchanged,
    Skipped,
}

/// The plan for one exported block: which block here it is (by id and name), and its
/// next row with its secrets (from the export, or kept from here where it is masked).
fn plan_block(
    local: &LocalBlocks,
    here: &Here,
    ty: &BlockType,
    body: &BlockBody,
    secrets: Option<&Secrets>,
    existing: Existing,
    record: Option<&crate::block::ChangeRecord>,
) -> Result<Planned> {
    let store = &local.store;
    let name = &body.meta.name;
    let Some(target) = here.target(name, &body.meta.id, existing)? else {
        return Ok(Planned::Skipped);
    };
    let mut document = body.data.clone();
    if let Some(s) = secrets {
        merge_secrets(&mut document, s);
    }
    let stored = match &target {
        Some(current) => local.keys.open(store, &current.into())?,
        None => Secrets::default(),
    };
    let kept = crate::document::restore_masked(&mut document, &stored);
    let current_document = match &target {
        Some(current) => {
            let mut doc = crate::block::parse_stored_data(&current.data, &current.name)?;
            crate::document::restore_masked(&mut doc, &stored);
            Some(doc)
        }
        None => None,
    };
    super::rotation::guard_rotation(current_document.as_ref(), &mut document, record)?;
    super::leases::guard_lease(current_document.as_ref(), &document, record)?;
    ty.validate(&document)?;
    let (masked, block_secrets) = split_secrets(ty, document)?;
    let moved = match &target {
        Some(current) => {
            let here = crate::block::parse_stored_data(&current.data, &current.name)?;
            crate::document::moved_destinations(ty, &here, &masked)
        }
        None => Vec::new(),
    };
    check_masked(name, kept, &moved, &block_secrets)?;
    Ok(next_row(
        target,
        body,
        name,
        masked.to_string(),
        block_secrets,
        &stored,
        moved,
    ))
}

/// A block that arrives with its secrets masked keeps the ones stored here, so it may
/// not move them elsewhere, and a new block may not arrive masked at all.
fn check_masked(name: &BlockName, kept: usize, moved: &[String], secrets: &Secrets) -> Result<()> {
    if kept > 0 && !moved.is_empty() {
        return Err(Error::Forbidden(format!(
            "block {name} arrives with its secret masked and changes where it connects \
             ({}): the secret stored here would go there. Export it with its secrets, or \
             change it here first",
            moved.join(", ")
        )));
    }
    if secrets.holds_mask() {
        return Err(Error::InvalidInput(format!(
            "block {name} arrives with its secrets masked and is new here; export it with \
             --include-secrets"
        )));
    }
    Ok(())
}

/// What importing a block does to its row here: nothing, a new row, or the next version.
fn next_row(
    target: Option<BlockRow>,
    body: &BlockBody,
    name: &BlockName,
    data: String,
    block_secrets: Secrets,
    stored: &Secrets,
    moved: Vec<String>,
) -> Planned {
    let new_row = |data: String| BlockRow {
        id: body.meta.id.clone(),
        name: name.to_string(),
        block_type: body.meta.block_type.clone(),
        version: 1,
        data,
        sealed_secrets: None,
        key_id: None,
        created_at: now_millis(),
        updated_at: now_millis(),
    };
    match target {
        None => Planned::Create(new_row(data), block_secrets),
        Some(current) if current.id != body.meta.id => {
            Planned::Replace(new_row(data), block_secrets, current)
        }
        Some(current) if current.data == data && *stored == block_secrets => Planned::Unchanged,
        Some(current) => {
            let expected = current.version;
            let row = BlockRow {
                version: current.version + 1,
                data,
                block_type: body.meta.block_type.clone(),
                updated_at: now_millis(),
                ..current
            };
            Planned::Update(row, block_secrets, expected, moved)
        }
    }
}

/// The blocks here that an export's blocks may be (by name or id), read at once.
struct Here {
    by_name: HashMap<String, BlockRow>,
    by_id: HashMap<String, BlockRow>,
    /// Ids in the export held by deleted blocks here (id to name).
    deleted: std::collections::BTreeMap<String, String>,
}

impl Here {
    fn load(store: &crate::store::Store, file: &ExportFile) -> Result<Here> {
        let names: Vec<&str> = file.blocks.iter().map(|b| b.meta.name.as_str()).collect();
        let ids: Vec<&str> = file.blocks.iter().map(|b| b.meta.id.as_str()).collect();
        let rows = store.blocks_named_or_with_ids(&names, &ids)?;
        Ok(Here {
            deleted: store.deleted_with_ids(&ids)?,
            by_name: rows.iter().map(|r| (r.name.clone(), r.clone())).collect(),
            by_id: rows.into_iter().map(|r| (r.id.clone(), r)).collect(),
        })
    }

    /// The block here an exported block is: `Some(None)` a new one, `Some(Some(row))`
    /// an existing one to update, `None` one to skip; a name or id held by another
    /// block is refused.
    fn target(
        &self,
        name: &BlockName,
        id: &str,
        existing: Existing,
    ) -> Result<Option<Option<BlockRow>>> {
        let by_name = self.by_name.get(name.as_str()).cloned();
        let by_id = self.by_id.get(id).cloned();
        find_target(name, id, by_name, by_id, existing)
    }
}

/// See [`Here::target`].
fn find_target(
    name: &BlockName,
    id: &str,
    by_name: Option<BlockRow>,
    by_id: Option<BlockRow>,
    existing: Existing,
) -> Result<Option<Option<BlockRow>>> {
    Ok(Some(match (by_name, by_id, existing) {
        (None, None, _) => None,
        (_, _, Existing::Skip) => return Ok(None),
        (Some(n), Some(i), _) if n.id == i.id => Some(n),
        (Some(n), None, Existing::Overwrite) => Some(n),
        (Some(n), _, _) => {
            return Err(Error::BlockIdDiffers {
                name: name.to_string(),
                here: n.id,
                theirs: id.to_owned(),
            });
        }
        (None, Some(i), _) => {
            return Err(Error::InvalidInput(format!(
                "block {name}'s id {id} belongs to block {} here",
                i.name
            )));
        }
    }))
}

/// The secrets, as JSON, encrypted to `key` and ASCII-armored.
fn seal(key: &SecretsKey, secrets: &BTreeMap<String, Secrets>) -> Result<String> {
    let plaintext = zeroize::Zeroizing::new(
        serde_json::to_vec(secrets)
            .map_err(|err| Error::InvalidInput(format!("cannot write the secrets: {err}")))?,
    );
    let failed = |err: age::EncryptError| Error::InvalidInput(format!("age encryption: {err}"));
    match key {
        SecretsKey::Recipient(r) => age::encrypt_and_armor(r.as_ref(), &plaintext).map_err(failed),
        SecretsKey::Passphrase(p) => {
            age::encrypt_and_armor(&age::scrypt::Recipient::new(p.clone()), &plaintext)
                .map_err(failed)
        }
    }
}

fn open(identity: &SecretsIdentity, sealed: &str) -> Result<BTreeMap<String, Secrets>> {
    // The export is the caller's input: a key that does not fit is WRONG_EXPORT_KEY and
    // a file that is not age is INVALID_INPUT, never the store's DECRYPTION_FAILED.
    let failed = |err: age::DecryptError| match err {
        age::DecryptError::DecryptionFailed
        | age::DecryptError::KeyDecryptionFailed
        | age::DecryptError::NoMatchingKeys
        | age::DecryptError::InvalidMac => Error::WrongExportKey(format!(
            "the export's secrets do not open with this passphrase or identity: {err}"
        )),
        other => Error::InvalidInput(format!(
            "the export's secrets are not an age file this can open: {other}"
        )),
    };
    let plaintext = zeroize::Zeroizing::new(match identity {
        SecretsIdentity::Identity(i) => {
            age::decrypt(i.as_ref(), sealed.as_bytes()).map_err(failed)?
        }
        SecretsIdentity::Passphrase(p) => {
            age::decrypt(&age::scrypt::Identity::new(p.clone()), sealed.as_bytes())
                .map_err(failed)?
        }
    });
    serde_json::from_slice(&plaintext)
        .map_err(|_| Error::InvalidInput("the export's secrets are malformed".into()))
}
