//! Encryption at rest: the master key, data keys, and sealing of block secrets.
//!
//! Envelope scheme: a 256-bit master key (never stored in the registry) wraps random
//! 256-bit data keys, which are stored wrapped in the store. Block secrets are sealed
//! with a data key using XChaCha20-Poly1305 (random 192-bit nonces, so no nonce
//! bookkeeping across several servers). The associated data binds every ciphertext to
//! what it belongs to: a wrapped data key to its key id; block secrets (format 3) to
//! the block id, its type's slug, the data key id, the block's version and a SHA-256 of
//! its stored non-secret document. So a ciphertext copied to another row, an older
//! version's ciphertext put back into the current row, an edited host next to a
//! ciphertext, or a block pointed at another type all fail to open. Formats 1 (bound to
//! block and key id only) and 2 (without the type) open only while `blockyard database
//! migrate` re-seals a store made before format 3. Rows that are not sealed but decide
//! who gets in or where a secret goes (API tokens, user block types) carry an HMAC
//! under a key derived from the master key ([`RowKey`]).

mod master_key;

pub use master_key::{KEYRING_SERVICE, KeySource, MasterKeyLocation, generate_master_key_file};

use base64::Engine as _;
use chacha20poly1305::aead::{Aead, AeadCore, KeyInit, OsRng, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};
use std::fmt;
use zeroize::{Zeroize, Zeroizing};

use crate::error::{Error, Result};

const KEY_LEN: usize = 32;
const NONCE_LEN: usize = 24;
/// First byte of every sealed value: the format version. Data keys and legacy block
/// secrets are format 1; block secrets are sealed as format 3 (format 2: before the
/// type was bound).
const FORMAT_V1: u8 = 1;
const FORMAT_V2: u8 = 2;
const FORMAT_V3: u8 = 3;

/// What a block's sealed secrets belong to: its id, its type, its version and the
/// stored text of its non-secret document.
#[derive(Clone, Copy, Debug)]
pub struct SealBinding<'a> {
    pub block_id: &'a str,
    /// The type's slug (a user type's definition is bound to the master key itself, so
    /// the slug names one definition).
    pub block_type: &'a str,
    pub version: i64,
    /// The masked document exactly as stored.
    pub data: &'a str,
}

impl SealBinding<'_> {
    fn data_digest(&self) -> String {
        Sha256::digest(self.data.as_bytes())
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }

    fn aad(&self, key_id: &str) -> Vec<u8> {
        format!(
            "blockyard/v3/block/{}/type/{}/key/{key_id}/version/{}/data/{}",
            self.block_id,
            self.block_type,
            self.version,
            self.data_digest()
        )
        .into_bytes()
    }

    /// Format 2's, made before the type was bound.
    fn aad_v2(&self, key_id: &str) -> Vec<u8> {
        format!(
            "blockyard/v2/block/{}/key/{key_id}/version/{}/data/{}",
            self.block_id,
            self.version,
            self.data_digest()
        )
        .into_bytes()
    }
}

/// 32 secret bytes; zeroed on drop and never printed.
struct KeyBytes(Zeroizing<[u8; KEY_LEN]>);

impl KeyBytes {
    fn random() -> Self {
        let key = XChaCha20Poly1305::generate_key(&mut OsRng);
        let mut bytes = Zeroizing::new([0u8; KEY_LEN]);
        bytes.copy_from_slice(&key);
        KeyBytes(bytes)
    }

    fn from_slice(raw: &[u8]) -> Option<Self> {
        let arr: [u8; KEY_LEN] = raw.try_into().ok()?;
        Some(KeyBytes(Zeroizing::new(arr)))
    }

    fn cipher(&self) -> XChaCha20Poly1305 {
        XChaCha20Poly1305::new(self.0.as_ref().into())
    }
}

/// The master key: wraps and unwraps data keys.
pub struct MasterKey(KeyBytes);

impl fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "MasterKey(fingerprint {})", self.fingerprint())
    }
}

impl MasterKey {
    pub fn generate() -> Self {
        MasterKey(KeyBytes::random())
    }

    /// Parses the base64 text form (what key files, the keyring and
    /// `BLOCKYARD_MASTER_KEY` hold). The error never echoes the input.
    pub fn from_base64(text: &str) -> Result<Self> {
        let mut raw = base64::engine::general_purpose::STANDARD
            .decode(text.trim())
            .map_err(|_| invalid_master_key())?;
        let key = KeyBytes::from_slice(&raw).ok_or_else(invalid_master_key);
        raw.zeroize();
        Ok(MasterKey(key?))
    }

    /// The base64 text form, for writing to a key file or the keyring.
    pub fn to_base64(&self) -> Zeroizing<String> {
        Zeroizing::new(base64::engine::general_purpose::STANDARD.encode(self.0.0.as_ref()))
    }

    /// A short public identifier of the key, recorded in the store so a wrong key is
    /// recognised before anything is decrypted or written.
    pub fn fingerprint(&self) -> String {
        let mut hasher = Sha256::new();
        hasher.update(b"blockyard master key fingerprint v1\0");
        hasher.update(self.0.0.as_ref());
        let digest = hasher.finalize();
        digest[..12].iter().map(|b| format!("{b:02x}")).collect()
    }

    /// Wraps a data key for storage under `key_id`.
    pub fn wrap(&self, key_id: &str, data_key: &DataKey) -> Result<Vec<u8>> {
        seal(&self.0, FORMAT_V1, &wrap_aad(key_id), data_key.0.0.as_ref())
    }

    /// Unwraps a stored data key; fails if the bytes were made for another key id.
    pub fn unwrap(&self, key_id: &str, wrapped: &[u8]) -> Result<DataKey> {
        let raw = open(&self.0, FORMAT_V1, &wrap_aad(key_id), wrapped).map_err(|_| {
            Error::DecryptionFailed(format!(
                "data key {key_id} does not open with this master key (tampered or wrong key)"
            ))
        })?;
        KeyBytes::from_slice(&raw)
            .map(DataKey)
            .ok_or_else(|| Error::DecryptionFailed(format!("data key {key_id} is malformed")))
    }
}

impl MasterKey {
    /// The key that binds store rows that are not sealed (API tokens, user block types)
    /// to this master key (derived, never stored): a row written by anyone without the
    /// master key does not verify.
    pub fn row_key(&self) -> RowKey {
        RowKey(self.derive(b"blockyard/v1/store-rows"))
    }

    /// The key that seals what a web UI session holds in the store (derived, never
    /// stored).
    pub fn session_key(&self) -> SessionKey {
        SessionKey(self.derive(b"blockyard/v1/ui-sessions"))
    }

    /// A key for one purpose, derived from the master key by HMAC under `label`.
    fn derive(&self, label: &[u8]) -> KeyBytes {
        let mut bytes = Zeroizing::new([0u8; KEY_LEN]);
        bytes.copy_from_slice(&hmac(&self.0, label).finalize().into_bytes());
        KeyBytes(bytes)
    }
}

/// Seals the secrets a web UI session holds, each bound to its session.
pub struct SessionKey(KeyBytes);

impl fmt::Debug for SessionKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SessionKey(********)")
    }
}

impl SessionKey {
    /// Seals `plaintext` for session `session` (its stored id hash).
    pub fn seal(&self, session: &str, plaintext: &[u8]) -> Result<Vec<u8>> {
        seal(&self.0, FORMAT_V1, &session_aad(session), plaintext)
    }

    /// Opens what [`SessionKey::seal`] sealed for `session`.
    pub fn open(&self, session: &str, sealed: &[u8]) -> Result<Zeroizing<Vec<u8>>> {
        open(&self.0, FORMAT_V1, &session_aad(session), sealed)
            .map_err(|_| Error::DecryptionFailed("a session's held secrets do not decrypt".into()))
    }
}

fn session_aad(session: &str) -> Vec<u8> {
    format!("blockyard/v1/ui-session/{session}").into_bytes()
}

/// Authenticates store rows that are not sealed: API tokens and user block types
/// (HMAC-SHA256); derived from the master key.
pub struct RowKey(KeyBytes);

impl fmt::Debug for RowKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("RowKey(********)")
    }
}

impl RowKey {
    /// The tag of `message`.
    pub fn tag(&self, message: &[u8]) -> Vec<u8> {
        hmac(&self.0, message).finalize().into_bytes().to_vec()
    }

    /// Whether `tag` is the tag of `message` (in constant time).
    pub fn verifies(&self, message: &[u8], tag: &[u8]) -> bool {
        hmac(&self.0, message).verify_slice(tag).is_ok()
    }
}

/// HMAC-SHA256 under `key`, fed `message`.
fn hmac(key: &KeyBytes, message: &[u8]) -> Hmac<Sha256> {
    let mut mac =
        <Hmac<Sha256> as Mac>::new_from_slice(key.0.as_ref()).expect("HMAC takes any key length");
    mac.update(message);
    mac
}

fn invalid_master_key() -> Error {
    Error::InvalidMasterKey(
        "the master key must be 32 bytes encoded as base64 (44 characters); \
         `blockyard key generate` prints a new one"
            .into(),
    )
}

/// A data key: seals block secrets.
pub struct DataKey(KeyBytes);

impl fmt::Debug for DataKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("DataKey(********)")
    }
}

impl DataKey {
    pub fn generate() -> Self {
        DataKey(KeyBytes::random())
    }

    /// Seals a block's secrets (format 3), bound to `binding` and this key's id.
    pub fn seal_for_block(
        &self,
        binding: &SealBinding<'_>,
        key_id: &str,
        plaintext: &[u8],
    ) -> Result<Vec<u8>> {
        seal(&self.0, FORMAT_V3, &binding.aad(key_id), plaintext)
    }

    /// Opens a block's secrets; fails if the ciphertext was made for another block, an
    /// other type, an other version of it, or beside another document. Format 1 and 2
    /// ciphertexts open only with `legacy` (while a store is re-sealed).
    pub fn open_for_block(
        &self,
        binding: &SealBinding<'_>,
        key_id: &str,
        sealed: &[u8],
        legacy: bool,
    ) -> Result<Zeroizing<Vec<u8>>> {
        let opened = match sealed.first() {
            Some(&FORMAT_V3) => open(&self.0, FORMAT_V3, &binding.aad(key_id), sealed),
            Some(&FORMAT_V2) if legacy => open(&self.0, FORMAT_V2, &binding.aad_v2(key_id), sealed),
            Some(&FORMAT_V1) if legacy => open(
                &self.0,
                FORMAT_V1,
                &block_aad_v1(binding.block_id, key_id),
                sealed,
            ),
            _ => Err(OpenFailed),
        };
        opened.map_err(|_| {
            Error::DecryptionFailed(format!(
                "the secrets of block {} (version {}) do not decrypt: tampered with (the \
                 ciphertext, its version or the document beside it was changed, or it \
                 belongs to another block)",
                binding.block_id, binding.version
            ))
        })
    }

    /// Seals in format 2, as stores made before format 3 hold (for tests of the
    /// upgrade).
    #[doc(hidden)]
    pub fn seal_for_block_v2(
        &self,
        binding: &SealBinding<'_>,
        key_id: &str,
        plaintext: &[u8],
    ) -> Result<Vec<u8>> {
        seal(&self.0, FORMAT_V2, &binding.aad_v2(key_id), plaintext)
    }

    /// Seals in format 1, as stores made before format 2 hold (for tests of the
    /// upgrade).
    #[doc(hidden)]
    pub fn seal_for_block_v1(
        &self,
        block_id: &str,
        key_id: &str,
        plaintext: &[u8],
    ) -> Result<Vec<u8>> {
        seal(
            &self.0,
            FORMAT_V1,
            &block_aad_v1(block_id, key_id),
            plaintext,
        )
    }
}

fn wrap_aad(key_id: &str) -> Vec<u8> {
    format!("blockyard/v1/data-key/{key_id}").into_bytes()
}

fn block_aad_v1(block_id: &str, key_id: &str) -> Vec<u8> {
    format!("blockyard/v1/block/{block_id}/key/{key_id}").into_bytes()
}

fn seal(key: &KeyBytes, format: u8, aad: &[u8], plaintext: &[u8]) -> Result<Vec<u8>> {
    let nonce = XChaCha20Poly1305::generate_nonce(&mut OsRng);
    let ciphertext = key
        .cipher()
        .encrypt(
            &nonce,
            Payload {
                msg: plaintext,
                aad,
            },
        )
        .map_err(|_| Error::Internal("encryption failed".into()))?;
    let mut out = Vec::with_capacity(1 + NONCE_LEN + ciphertext.len());
    out.push(format);
    out.extend_from_slice(&nonce);
    out.extend_from_slice(&ciphertext);
    Ok(out)
}

/// The only failure is "does not open"; callers say what that means for them.
struct OpenFailed;

fn open(
    key: &KeyBytes,
    format: u8,
    aad: &[u8],
    sealed: &[u8],
) -> Result<Zeroizing<Vec<u8>>, OpenFailed> {
    if sealed.len() < 1 + NONCE_LEN || sealed[0] != format {
        return Err(OpenFailed);
    }
    let nonce = XNonce::from_slice(&sealed[1..1 + NONCE_LEN]);
    key.cipher()
        .decrypt(
            nonce,
            Payload {
                msg: &sealed[1 + NONCE_LEN..],
                aad,
            },
        )
        .map(Zeroizing::new)
        .map_err(|_| OpenFailed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_secrets_are_bound_to_their_block_version_and_document() {
        let key = DataKey::generate();
        let at = |block_id, version, data| SealBinding {
            block_id,
            block_type: "json",
            version,
            data,
        };
        let here = at("block-a", 3, r#"{"host":"db"}"#);
        let sealed = key.seal_for_block(&here, "k1", b"s3cr3t").unwrap();
        assert_eq!(
            &key.open_for_block(&here, "k1", &sealed, false).unwrap()[..],
            b"s3cr3t"
        );
        let other_type = SealBinding {
            block_type: "http-service",
            ..here
        };
        assert!(
            key.open_for_block(&other_type, "k1", &sealed, false)
                .is_err()
        );
        for elsewhere in [
            at("block-b", 3, r#"{"host":"db"}"#),
            at("block-a", 4, r#"{"host":"db"}"#),
            at("block-a", 3, r#"{"host":"evil"}"#),
        ] {
            let err = key
                .open_for_block(&elsewhere, "k1", &sealed, false)
                .unwrap_err();
            assert_eq!(err.code(), "DECRYPTION_FAILED");
        }
        assert!(key.open_for_block(&here, "k2", &sealed, false).is_err());
        let mut tampered = sealed.clone();
        *tampered.last_mut().unwrap() ^= 1;
        assert!(key.open_for_block(&here, "k1", &tampered, false).is_err());
        // Format 1 opens only while a store is being re-sealed.
        let old = key.seal_for_block_v1("block-a", "k1", b"s3cr3t").unwrap();
        assert!(key.open_for_block(&here, "k1", &old, false).is_err());
        assert!(key.open_for_block(&here, "k1", &old, true).is_ok());
    }

    #[test]
    fn row_keys_differ_per_master_key_and_tags_verify() {
        let (one, two) = (MasterKey::generate(), MasterKey::generate());
        let tag = one.row_key().tag(b"row");
        assert!(one.row_key().verifies(b"row", &tag));
        assert!(!one.row_key().verifies(b"rov", &tag));
        assert!(!two.row_key().verifies(b"row", &tag));
    }

    #[test]
    fn master_key_wraps_and_refuses_other_keys() {
        let master = MasterKey::generate();
        let other = MasterKey::generate();
        let wrapped = master.wrap("k1", &DataKey::generate()).unwrap();
        assert!(master.unwrap("k1", &wrapped).is_ok());
        assert!(master.unwrap("k2", &wrapped).is_err());
        assert!(other.unwrap("k1", &wrapped).is_err());
        assert_ne!(master.fingerprint(), other.fingerprint());
    }

    #[test]
    fn master_key_text_form_round_trips_and_errors_do_not_echo() {
        let key = MasterKey::generate();
        let text = key.to_base64();
        let again = MasterKey::from_base64(&text).unwrap();
        assert_eq!(key.fingerprint(), again.fingerprint());
        let err = MasterKey::from_base64("not-a-key-PLANTED").unwrap_err();
        assert!(!err.to_string().contains("PLANTED"));
        assert!(!format!("{key:?}").contains(text.as_str()));
    }
}
