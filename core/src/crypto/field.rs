//! Drafts hold personal data in the clear until finalize; this module exists so that none of it
//! ever reaches the disk unencrypted, and so that erasing a draft is erasing one small key.
//!
//! The key hierarchy:
//!
//! ```text
//! platform keystore (KeyVault, alias "lotsa.root.<epoch>")
//!   └─ wraps RootKey (32 random bytes per epoch; the store keeps the wrapped bytes)
//!        └─ wraps DataKey (32 random bytes per draft; the store keeps `wrapped_data_key`)
//!             └─ seals each field blob (table, column, record id, schema version as AAD)
//! ```
//!
//! Erasing a draft's `wrapped_data_key` crypto-shreds every blob of that draft, wherever copies of
//! them survive (WAL frames, free pages, flash blocks); destroying a root alias shreds an epoch.
//!
//! All blobs are ring ChaCha20-Poly1305 with a fresh random nonce:
//! `version ‖ nonce (12) ‖ ciphertext ‖ tag (16)`. The associated data is length-prefixed, so a
//! blob copied to another row, column, record or schema version, or a data key copied to another
//! draft, does not open ([`CryptoError::DoesNotOpen`]) instead of yielding someone else's data.

use super::vault::KeyVault;
use super::{aead, put_field, random_array, wipe, CryptoError};

/// Format version of field blobs.
pub const FIELD_BLOB_VERSION: u8 = 1;

/// Format version of wrapped data keys.
pub const WRAPPED_DATA_KEY_VERSION: u8 = 1;

/// Bytes a field blob adds to its plaintext (version, nonce, tag).
pub const FIELD_BLOB_OVERHEAD: usize = aead::OVERHEAD;

const FIELD_LABEL: &[u8] = b"lotsa field v1";
const DATA_KEY_LABEL: &[u8] = b"lotsa data key v1";

/// A 32-byte secret key. Never cloned implicitly, never printed, zeroed when dropped.
struct Secret([u8; 32]);

impl Drop for Secret {
    fn drop(&mut self) {
        wipe(&mut self.0);
    }
}

/// A per-draft data key: seals that draft's field blobs. Zeroed when dropped; `Debug` shows nothing
/// of it.
pub struct DataKey(Secret);

impl std::fmt::Debug for DataKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DataKey(..)")
    }
}

impl DataKey {
    /// A fresh random key.
    pub fn generate() -> Result<DataKey, CryptoError> {
        Ok(DataKey(Secret(random_array()?)))
    }

    fn bytes(&self) -> &[u8; 32] {
        &self.0 .0
    }
}

/// Where a field blob lives; bound into its associated data so that it opens only there.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FieldAad<'a> {
    /// Table name ("drafts").
    pub table: &'a str,
    /// Column name ("fields").
    pub column: &'a str,
    /// The row's id (a UUID, as text).
    pub record_id: &'a str,
    /// The store's schema version the blob was written under.
    pub schema_version: u32,
}

impl FieldAad<'_> {
    /// The unambiguous encoding used as associated data: a label, then table, column and record id
    /// each with a 64-bit big-endian length prefix, then the schema version (32-bit big-endian).
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(
            FIELD_LABEL.len() + 28 + self.table.len() + self.column.len() + self.record_id.len(),
        );
        out.extend_from_slice(FIELD_LABEL);
        put_field(&mut out, self.table.as_bytes());
        put_field(&mut out, self.column.as_bytes());
        put_field(&mut out, self.record_id.as_bytes());
        out.extend_from_slice(&self.schema_version.to_be_bytes());
        out
    }
}

/// Encrypts a field blob: `version ‖ 12-byte random nonce ‖ ciphertext ‖ tag`, bound to `aad`.
/// Fails only if the system random number generator does.
pub fn seal_field(
    key: &DataKey,
    aad: &FieldAad<'_>,
    plaintext: &[u8],
) -> Result<Vec<u8>, CryptoError> {
    aead::seal(key.bytes(), FIELD_BLOB_VERSION, &aad.to_bytes(), plaintext)
}

/// Decrypts a field blob made by [`seal_field`] with the same key and the same `aad`. Anything
/// else — a changed byte, another place, another key — is a typed error, never a wrong plaintext.
pub fn open_field(key: &DataKey, aad: &FieldAad<'_>, blob: &[u8]) -> Result<Vec<u8>, CryptoError> {
    aead::open(
        key.bytes(),
        FIELD_BLOB_VERSION,
        &aad.to_bytes(),
        blob,
        "field blob",
    )
}

/// The root key of one epoch: wraps the data keys of the drafts created in it. Kept wrapped by
/// the platform [`KeyVault`] under [`RootKey::alias`]; zeroed when dropped.
pub struct RootKey {
    epoch: u32,
    key: Secret,
}

impl std::fmt::Debug for RootKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RootKey")
            .field("epoch", &self.epoch)
            .finish_non_exhaustive()
    }
}

impl RootKey {
    /// The vault alias of an epoch's root key: `lotsa.root.<epoch>`.
    pub fn alias_for(epoch: u32) -> String {
        format!("lotsa.root.{epoch}")
    }

    /// A fresh random root key for `epoch` (not yet wrapped: see [`RootKey::wrap_with`]).
    pub fn generate(epoch: u32) -> Result<RootKey, CryptoError> {
        Ok(RootKey {
            epoch,
            key: Secret(random_array()?),
        })
    }

    /// The epoch.
    pub fn epoch(&self) -> u32 {
        self.epoch
    }

    /// The vault alias of this key.
    pub fn alias(&self) -> String {
        RootKey::alias_for(self.epoch)
    }

    /// Wraps the key with the vault (creating the alias's platform key on first use); the store
    /// keeps the returned bytes.
    pub fn wrap_with(&self, vault: &dyn KeyVault) -> Result<Vec<u8>, CryptoError> {
        Ok(vault.wrap(&self.alias(), &self.key.0)?)
    }

    /// Unwraps an epoch's root key from the bytes [`RootKey::wrap_with`] returned.
    pub fn unwrap_with(
        vault: &dyn KeyVault,
        epoch: u32,
        wrapped: &[u8],
    ) -> Result<RootKey, CryptoError> {
        let mut bytes = vault.unwrap(&RootKey::alias_for(epoch), wrapped)?;
        let key: Result<[u8; 32], _> = bytes.as_slice().try_into();
        let len = bytes.len();
        wipe(&mut bytes);
        let key = key.map_err(|_| CryptoError::Malformed {
            what: "root key",
            reason: format!("{len} bytes instead of 32"),
        })?;
        Ok(RootKey {
            epoch,
            key: Secret(key),
        })
    }

    /// Destroys an epoch's root key in the vault: every data key wrapped under it, and so every
    /// blob sealed with those, becomes unrecoverable.
    pub fn destroy_epoch(vault: &dyn KeyVault, epoch: u32) -> Result<(), CryptoError> {
        Ok(vault.destroy(&RootKey::alias_for(epoch))?)
    }

    fn data_key_aad(&self, draft_id: &str) -> Vec<u8> {
        let mut out = Vec::with_capacity(DATA_KEY_LABEL.len() + 12 + draft_id.len());
        out.extend_from_slice(DATA_KEY_LABEL);
        put_field(&mut out, draft_id.as_bytes());
        out.extend_from_slice(&self.epoch.to_be_bytes());
        out
    }

    /// Wraps a draft's data key (AEAD, the draft id and epoch as associated data). The store keeps
    /// the result as the draft's `wrapped_data_key`; erasing it crypto-shreds the draft.
    pub fn wrap_data_key(&self, key: &DataKey, draft_id: &str) -> Result<Vec<u8>, CryptoError> {
        aead::seal(
            &self.key.0,
            WRAPPED_DATA_KEY_VERSION,
            &self.data_key_aad(draft_id),
            key.bytes(),
        )
    }

    /// Unwraps a draft's data key; bytes wrapped for another draft or epoch, or altered, fail.
    pub fn unwrap_data_key(&self, draft_id: &str, wrapped: &[u8]) -> Result<DataKey, CryptoError> {
        let mut bytes = aead::open(
            &self.key.0,
            WRAPPED_DATA_KEY_VERSION,
            &self.data_key_aad(draft_id),
            wrapped,
            "wrapped data key",
        )?;
        let key: Result<[u8; 32], _> = bytes.as_slice().try_into();
        let len = bytes.len();
        wipe(&mut bytes);
        let key = key.map_err(|_| CryptoError::Malformed {
            what: "wrapped data key",
            reason: format!("{len} bytes instead of 32"),
        })?;
        Ok(DataKey(Secret(key)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::vault::{MemoryVault, VaultError};
    use proptest::prelude::*;

    const ID: &str = "6f1c2a9e-3b7d-4c1e-9a55-0d2f8e7b1c34";

    fn aad(record_id: &str) -> FieldAad<'_> {
        FieldAad {
            table: "drafts",
            column: "fields",
            record_id,
            schema_version: 3,
        }
    }

    #[test]
    fn field_blob_round_trips_and_has_the_documented_layout() {
        let key = DataKey::generate().unwrap();
        let blob = seal_field(&key, &aad(ID), "Åsa Öberg".as_bytes()).unwrap();
        assert_eq!(blob[0], FIELD_BLOB_VERSION);
        assert_eq!(blob.len(), "Åsa Öberg".len() + FIELD_BLOB_OVERHEAD);
        assert_eq!(
            open_field(&key, &aad(ID), &blob).unwrap(),
            "Åsa Öberg".as_bytes()
        );
        assert_eq!(
            open_field(&key, &aad(ID), &seal_field(&key, &aad(ID), b"").unwrap()).unwrap(),
            b""
        );
    }

    #[test]
    fn a_field_blob_moved_anywhere_else_does_not_open() {
        let key = DataKey::generate().unwrap();
        let here = aad(ID);
        let blob = seal_field(&key, &here, b"0701234567").unwrap();
        let elsewhere = [
            FieldAad {
                record_id: "6f1c2a9e-3b7d-4c1e-9a55-0d2f8e7b1c35",
                ..here
            },
            FieldAad {
                column: "notes",
                ..here
            },
            FieldAad {
                table: "outbox",
                ..here
            },
            FieldAad {
                schema_version: 4,
                ..here
            },
            FieldAad {
                schema_version: 2,
                ..here
            },
        ];
        for there in elsewhere {
            assert_eq!(
                open_field(&key, &there, &blob),
                Err(CryptoError::DoesNotOpen { what: "field blob" }),
                "{there:?}"
            );
        }
        // Another draft's key.
        let other = DataKey::generate().unwrap();
        assert_eq!(
            open_field(&other, &here, &blob),
            Err(CryptoError::DoesNotOpen { what: "field blob" })
        );
    }

    #[test]
    fn field_aad_is_unambiguous() {
        let a = FieldAad {
            table: "ab",
            column: "c",
            record_id: "x",
            schema_version: 1,
        };
        let b = FieldAad {
            table: "a",
            column: "bc",
            record_id: "x",
            schema_version: 1,
        };
        assert_ne!(a.to_bytes(), b.to_bytes());
        let key = DataKey::generate().unwrap();
        let blob = seal_field(&key, &a, b"p").unwrap();
        assert!(open_field(&key, &b, &blob).is_err());
    }

    #[test]
    fn every_flipped_byte_of_a_field_blob_is_a_typed_error() {
        let key = DataKey::generate().unwrap();
        let blob = seal_field(&key, &aad(ID), b"19121212-1212").unwrap();
        for i in 0..blob.len() {
            for bit in [0x01u8, 0x80] {
                let mut bad = blob.clone();
                bad[i] ^= bit;
                match open_field(&key, &aad(ID), &bad) {
                    Err(CryptoError::DoesNotOpen { what: "field blob" }) => assert!(i > 0),
                    Err(CryptoError::UnsupportedVersion { .. }) => assert_eq!(i, 0),
                    other => panic!("byte {i}: {other:?}"),
                }
            }
        }
        for n in [0, 1, FIELD_BLOB_OVERHEAD - 1] {
            assert!(matches!(
                open_field(&key, &aad(ID), &blob[..n]),
                Err(CryptoError::Malformed { .. })
            ));
        }
    }

    #[test]
    fn key_hierarchy_round_trips_through_the_vault() {
        let vault = MemoryVault::new();
        let root = RootKey::generate(1).unwrap();
        assert_eq!(root.alias(), "lotsa.root.1");
        let wrapped_root = root.wrap_with(&vault).unwrap();

        let data = DataKey::generate().unwrap();
        let wrapped_data = root.wrap_data_key(&data, ID).unwrap();
        let blob = seal_field(&data, &aad(ID), b"Kalle").unwrap();
        drop(data);
        drop(root);

        let root = RootKey::unwrap_with(&vault, 1, &wrapped_root).unwrap();
        assert_eq!(root.epoch(), 1);
        let data = root.unwrap_data_key(ID, &wrapped_data).unwrap();
        assert_eq!(open_field(&data, &aad(ID), &blob).unwrap(), b"Kalle");
        assert_eq!(format!("{data:?}"), "DataKey(..)");
        assert!(!format!("{root:?}").contains('['));

        // The root key of epoch 1 is not the root key of epoch 2.
        assert!(matches!(
            RootKey::unwrap_with(&vault, 2, &wrapped_root),
            Err(CryptoError::Vault(VaultError::KeyGone { .. }))
        ));
        // Destroying the epoch shreds everything under it.
        RootKey::destroy_epoch(&vault, 1).unwrap();
        assert!(matches!(
            RootKey::unwrap_with(&vault, 1, &wrapped_root),
            Err(CryptoError::Vault(VaultError::KeyGone { .. }))
        ));
    }

    #[test]
    fn a_wrapped_data_key_opens_only_for_its_draft_and_epoch() {
        let root = RootKey::generate(5).unwrap();
        let data = DataKey::generate().unwrap();
        let wrapped = root.wrap_data_key(&data, ID).unwrap();
        assert_eq!(wrapped.len(), 32 + aead::OVERHEAD);
        let dne = Err(CryptoError::DoesNotOpen {
            what: "wrapped data key",
        });
        assert_eq!(
            root.unwrap_data_key("6f1c2a9e-3b7d-4c1e-9a55-0d2f8e7b1c35", &wrapped)
                .map(|_| ()),
            dne
        );
        // Same key bytes under another epoch number: the epoch is bound too.
        let relabelled = RootKey {
            epoch: 6,
            key: Secret(root.key.0),
        };
        assert_eq!(relabelled.unwrap_data_key(ID, &wrapped).map(|_| ()), dne);
        assert_eq!(
            RootKey::generate(5)
                .unwrap()
                .unwrap_data_key(ID, &wrapped)
                .map(|_| ()),
            dne
        );
        for i in 1..wrapped.len() {
            let mut bad = wrapped.clone();
            bad[i] ^= 0x10;
            assert_eq!(root.unwrap_data_key(ID, &bad).map(|_| ()), dne, "byte {i}");
        }
        let mut bad = wrapped.clone();
        bad[0] = 2;
        assert!(matches!(
            root.unwrap_data_key(ID, &bad),
            Err(CryptoError::UnsupportedVersion { found: 2, .. })
        ));
    }

    #[test]
    fn a_flipped_byte_in_a_vault_wrapped_root_key_is_a_typed_error() {
        let vault = MemoryVault::new();
        let wrapped = RootKey::generate(1).unwrap().wrap_with(&vault).unwrap();
        for i in 0..wrapped.len() {
            let mut bad = wrapped.clone();
            bad[i] ^= 0x04;
            assert!(matches!(
                RootKey::unwrap_with(&vault, 1, &bad),
                Err(CryptoError::Vault(VaultError::Rejected { .. }))
            ));
        }
        // A vault that hands back something that is not 32 bytes is refused.
        let short = vault.wrap("lotsa.root.9", b"short").unwrap();
        assert!(matches!(
            RootKey::unwrap_with(&vault, 9, &short),
            Err(CryptoError::Malformed {
                what: "root key",
                ..
            })
        ));
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]
        #[test]
        fn field_blobs_round_trip(pt in proptest::collection::vec(any::<u8>(), 0..2048),
                                  id in "[0-9a-f-]{0,40}", version in any::<u32>()) {
            let key = DataKey::generate().unwrap();
            let a = FieldAad { table: "drafts", column: "fields", record_id: &id, schema_version: version };
            let blob = seal_field(&key, &a, &pt).unwrap();
            prop_assert_eq!(open_field(&key, &a, &blob).unwrap(), pt);
        }
    }
}
