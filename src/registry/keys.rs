//! Master and data keys as the registry uses them: first-run initialisation, the
//! fingerprint check, a cache of unwrapped data keys, sealing, and rotation.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock, RwLock};

use serde::Serialize;

use crate::config::{KeyChoice, default_key_file};
use crate::crypto::{DataKey, KeySource, MasterKey, MasterKeyLocation, SealBinding};
use crate::document::Secrets;
use crate::error::{Error, Result};
use crate::store::{BlockRow, DataKeyRow, SealedRow, Store, VersionRow};
use crate::time::now_millis;

pub(super) const META_FINGERPRINT: &str = "master_key_fingerprint";
pub(super) const META_LOCATION: &str = "master_key_location";
pub(super) const META_STORE_ID: &str = "store_id";
/// `2` once every block's secrets are sealed bound to their version and document.
pub(super) const META_SEAL_FORMAT: &str = "seal_format";
/// The format every block's secrets are sealed in (3: bound to the block's type too).
const SEAL_FORMAT: &str = "3";
const ROTATION_BATCH: i64 = 200;

/// What the first command on a new store set up.
#[derive(Clone, Debug, Serialize)]
pub struct InitReport {
    pub store: String,
    pub master_key: String,
    pub master_key_created: bool,
    pub fingerprint: String,
}

/// `key status`.
#[derive(Clone, Debug, Serialize)]
pub struct KeyStatus {
    pub fingerprint: String,
    pub master_key: String,
    pub data_keys: Vec<DataKeyStatus>,
    pub rows_needing_rotation: i64,
}

#[derive(Clone, Debug, Serialize)]
pub struct DataKeyStatus {
    pub id: String,
    pub active: bool,
    #[serde(with = "crate::time::rfc3339_millis")]
    pub created_at: i64,
}

/// `key rotate`.
#[derive(Clone, Debug, Serialize)]
pub struct RotationReport {
    pub new_key_id: String,
    pub rows_resealed: u64,
    pub keys_deleted: usize,
}

/// Secrets as a row of the store holds them (a current block, a kept version, a row
/// being rotated), with what they were sealed for.
pub(super) struct Sealed<'a> {
    pub at: SealBinding<'a>,
    pub sealed: Option<&'a [u8]>,
    pub key_id: Option<&'a str>,
}

macro_rules! sealed_from {
    ($row:ty, $id:ident) => {
        impl<'a> From<&'a $row> for Sealed<'a> {
            fn from(row: &'a $row) -> Self {
                Sealed {
                    at: SealBinding {
                        block_id: &row.$id,
                        block_type: &row.block_type,
                        version: row.version,
                        data: &row.data,
                    },
                    sealed: row.sealed_secrets.as_deref(),
                    key_id: row.key_id.as_deref(),
                }
            }
        }
    };
}
sealed_from!(BlockRow, id);
sealed_from!(VersionRow, block_id);
sealed_from!(SealedRow, block_id);

#[derive(Debug)]
pub(super) struct KeyManager {
    choice: KeyChoice,
    data_dir: PathBuf,
    master: OnceLock<MasterKey>,
    data_keys: RwLock<HashMap<String, Arc<DataKey>>>,
    /// Whether format 1 ciphertexts open: only while a store is re-sealed.
    legacy: AtomicBool,
}

impl KeyManager {
    pub(super) fn new(choice: KeyChoice, data_dir: PathBuf) -> Self {
        KeyManager {
            choice,
            data_dir,
            master: OnceLock::new(),
            data_keys: RwLock::new(HashMap::new()),
            legacy: AtomicBool::new(false),
        }
    }

    fn default_source(&self) -> KeySource {
        KeySource::at(MasterKeyLocation::File(default_key_file(&self.data_dir)))
    }

    /// On a store without a master key fingerprint: get or create the master key, and
    /// record its fingerprint, its location and a first data key, atomically.
    pub(super) fn initialise_if_needed(&self, store: &Store) -> Result<Option<InitReport>> {
        if store.meta(META_FINGERPRINT)?.is_some() {
            return Ok(None);
        }
        let default_source;
        let source = match &self.choice {
            KeyChoice::Explicit(source) => source,
            KeyChoice::Auto => {
                default_source = self.default_source();
                &default_source
            }
        };
        let (master, created) = source.load_or_create()?;
        let fingerprint = master.fingerprint();
        let first_key = new_data_key_row(&master, true)?;
        let entries = [
            (META_FINGERPRINT, fingerprint.clone()),
            (META_LOCATION, source.location.to_hint()),
            (META_STORE_ID, uuid::Uuid::new_v4().to_string()),
            (META_SEAL_FORMAT, SEAL_FORMAT.to_owned()),
        ];
        if !store.insert_meta_once(&entries, &first_key)? {
            // Another process initialised the store first: our key must match theirs.
            self.master(store)?;
            return Ok(None);
        }
        let _ = self.master.set(master);
        Ok(Some(InitReport {
            store: store.url().to_string(),
            master_key: source.location.to_string(),
            master_key_created: created,
            fingerprint,
        }))
    }

    /// For a restore: the configured master key (never created here) must have the
    /// backup's fingerprint and open each of its wrapped data keys. Answers where the
    /// key lives, to record in the restored store, and the key token rows are bound with.
    pub(super) fn check_restore_key(
        &self,
        expected: &str,
        data_keys: &[DataKeyRow],
    ) -> Result<(String, crate::crypto::RowKey)> {
        let default_source;
        let source = match &self.choice {
            KeyChoice::Explicit(source) => source,
            KeyChoice::Auto => {
                default_source = self.default_source();
                &default_source
            }
        };
        let key = source.load().map_err(|err| match err {
            Error::MasterKeyMissing(why) => Error::MasterKeyMissing(format!(
                "a restore needs the master key the backup was sealed with (fingerprint \
                 {expected}): {why}"
            )),
            other => other,
        })?;
        let actual = key.fingerprint();
        if actual != expected {
            return Err(Error::WrongMasterKey {
                expected: expected.to_owned(),
                actual,
            });
        }
        for row in data_keys {
            key.unwrap(&row.id, &row.wrapped)?;
        }
        Ok((source.location.to_hint(), key.row_key()))
    }

    /// The master key, loaded once and checked against the store's fingerprint before
    /// it is used for anything.
    pub(super) fn master(&self, store: &Store) -> Result<&MasterKey> {
        if let Some(key) = self.master.get() {
            return Ok(key);
        }
        let expected = store.meta(META_FINGERPRINT)?.ok_or_else(|| {
            Error::Store("the store has no master key fingerprint; run `blockyard init`".into())
        })?;
        let hinted;
        let source = match &self.choice {
            KeyChoice::Explicit(source) => source,
            KeyChoice::Auto => {
                hinted = match store
                    .meta(META_LOCATION)?
                    .as_deref()
                    .and_then(MasterKeyLocation::from_hint)
                {
                    Some(location) => KeySource::at(location),
                    None => self.default_source(),
                };
                &hinted
            }
        };
        let key = source.load()?;
        let actual = key.fingerprint();
        if actual != expected {
            return Err(Error::WrongMasterKey { expected, actual });
        }
        Ok(self.master.get_or_init(|| key))
    }

    fn data_key(&self, store: &Store, id: &str) -> Result<Arc<DataKey>> {
        if let Some(key) = self
            .data_keys
            .read()
            .expect("data key cache poisoned")
            .get(id)
        {
            return Ok(key.clone());
        }
        let master = self.master(store)?;
        let row = store.data_key(id)?.ok_or_else(|| {
            Error::DecryptionFailed(format!("data key {id} is missing from the store"))
        })?;
        let key = Arc::new(master.unwrap(&row.id, &row.wrapped)?);
        self.data_keys
            .write()
            .expect("data key cache poisoned")
            .insert(id.to_owned(), key.clone());
        Ok(key)
    }

    /// Seals a block's secrets under the active data key; `(None, None)` if it has none.
    /// The master key is checked even then, so a wrong key never writes.
    /// They are bound to `at` (block id, version, stored document).
    pub(super) fn seal(
        &self,
        store: &Store,
        at: &SealBinding<'_>,
        secrets: &Secrets,
    ) -> Result<(Option<Vec<u8>>, Option<String>)> {
        self.master(store)?;
        if secrets.is_empty() {
            return Ok((None, None));
        }
        let active = store.active_data_key()?.ok_or_else(|| {
            Error::Store("the store has no active data key; run `blockyard key rotate`".into())
        })?;
        let key = self.data_key(store, &active.id)?;
        let plaintext = zeroize::Zeroizing::new(
            serde_json::to_vec(secrets).map_err(|e| Error::Internal(e.to_string()))?,
        );
        Ok((
            Some(key.seal_for_block(at, &active.id, &plaintext)?),
            Some(active.id),
        ))
    }

    /// Opens a row's secrets; tampering with any part of what they were sealed for
    /// fails.
    pub(super) fn open(&self, store: &Store, row: &Sealed<'_>) -> Result<Secrets> {
        let at = &row.at;
        let (Some(sealed), Some(key_id)) = (row.sealed, row.key_id) else {
            self.master(store)?;
            return Ok(Secrets::default());
        };
        let key = self.data_key(store, key_id)?;
        let legacy = self.legacy.load(Ordering::Relaxed);
        let plaintext = key.open_for_block(at, key_id, sealed, legacy)?;
        serde_json::from_slice(&plaintext).map_err(|_| {
            Error::DecryptionFailed(format!(
                "the secrets of block {} are malformed",
                at.block_id
            ))
        })
    }

    /// Whether this store still holds secrets sealed before format 3.
    pub(super) fn needs_reseal(store: &Store) -> Result<bool> {
        Ok(store.meta(META_SEAL_FORMAT)?.as_deref() != Some(SEAL_FORMAT))
    }

    /// Re-seals a store made before format 3: a key rotation that opens formats 1 and
    /// 2 and seals format 3 (batch by batch, safe to interrupt and re-run), then records
    /// the format, after which formats 1 and 2 no longer open.
    pub(super) fn reseal_legacy(
        &self,
        store: &Store,
        progress: impl FnMut(u64, u64),
    ) -> Result<u64> {
        self.legacy.store(true, Ordering::Relaxed);
        let report = self.rotate(store, progress);
        self.legacy.store(false, Ordering::Relaxed);
        let report = report?;
        store.set_meta(META_SEAL_FORMAT, SEAL_FORMAT)?;
        Ok(report.rows_resealed)
    }

    pub(super) fn status(&self, store: &Store) -> Result<KeyStatus> {
        let master = self.master(store)?;
        let location = store
            .meta(META_LOCATION)?
            .as_deref()
            .and_then(MasterKeyLocation::from_hint);
        let active = store.active_data_key()?;
        let rows_needing_rotation = match &active {
            Some(key) => store.count_sealed_not_under(&key.id)?,
            None => 0,
        };
        Ok(KeyStatus {
            fingerprint: master.fingerprint(),
            master_key: match (&self.choice, location) {
                (KeyChoice::Explicit(source), _) => source.location.to_string(),
                (KeyChoice::Auto, Some(location)) => location.to_string(),
                (KeyChoice::Auto, None) => self.default_source().location.to_string(),
            },
            data_keys: store
                .data_keys()?
                .into_iter()
                .map(|k| DataKeyStatus {
                    id: k.id,
                    active: k.active,
                    created_at: k.created_at,
                })
                .collect(),
            rows_needing_rotation,
        })
    }

    pub(super) fn rotate(
        &self,
        store: &Store,
        mut progress: impl FnMut(u64, u64),
    ) -> Result<RotationReport> {
        let master = self.master(store)?;
        let new_row = new_data_key_row(master, false)?;
        store.add_data_key(&new_row)?;
        let new_key = Arc::new(master.unwrap(&new_row.id, &new_row.wrapped)?);
        let total = store.count_sealed_not_under(&new_row.id)?.max(0) as u64;
        let mut done = 0u64;
        progress(done, total);
        loop {
            let (current, history) = store.sealed_not_under(&new_row.id, ROTATION_BATCH)?;
            if current.is_empty() && history.is_empty() {
                break;
            }
            let reseal = |rows: Vec<SealedRow>| -> Result<Vec<(SealedRow, SealedRow)>> {
                rows.into_iter()
                    .map(|old| {
                        let stored = Sealed::from(&old);
                        let secrets = self.open(store, &stored)?;
                        let plaintext = zeroize::Zeroizing::new(
                            serde_json::to_vec(&secrets)
                                .map_err(|e| Error::Internal(e.to_string()))?,
                        );
                        let sealed = new_key.seal_for_block(&stored.at, &new_row.id, &plaintext)?;
                        let new = SealedRow {
                            block_id: old.block_id.clone(),
                            block_type: old.block_type.clone(),
                            version: old.version,
                            data: old.data.clone(),
                            sealed_secrets: Some(sealed),
                            key_id: Some(new_row.id.clone()),
                        };
                        Ok((old, new))
                    })
                    .collect()
            };
            let current = reseal(current)?;
            let history = reseal(history)?;
            store.replace_sealed(&current, &history)?;
            done += (current.len() + history.len()) as u64;
            progress(done, total);
        }
        let keys_deleted = store.activate_data_key(&new_row.id)?;
        self.data_keys
            .write()
            .expect("data key cache poisoned")
            .insert(new_row.id.clone(), new_key);
        Ok(RotationReport {
            new_key_id: new_row.id,
            rows_resealed: done,
            keys_deleted,
        })
    }
}

fn new_data_key_row(master: &MasterKey, active: bool) -> Result<DataKeyRow> {
    let id = uuid::Uuid::new_v4().to_string();
    let wrapped = master.wrap(&id, &DataKey::generate())?;
    Ok(DataKeyRow {
        id,
        wrapped,
        active,
        created_at: now_millis(),
    })
}
