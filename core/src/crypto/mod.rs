//! Cryptographic building blocks the rest of the core relies on: SHA-256 digests and Ed25519
//! signatures (program bundles are signed by the program administrator; later, receipts by the
//! clinic and requests by the device), and the storage crypto of the device:
//!
//! - [`vault`]: the [`KeyVault`](vault::KeyVault) trait the platform implements with its keystore
//!   (the root of trust), and development/test vaults;
//! - [`field`]: the key hierarchy (vault-wrapped root key per epoch → per-draft data key) and
//!   field-blob encryption bound to table, column, record id and blob format version;
//! - [`seal`]: HPKE (RFC 9180) sealing of a finished referral to the clinic's public key.
//!
//! Everything here is ring, except HPKE, which ring cannot do (it has no static X25519 key
//! agreement, so it could seal but never open): that is the `hpke` crate, pure Rust. Nothing is
//! hand-rolled. Keys travel as base64 (standard alphabet, with padding) so that they survive JSON,
//! shells and copy-paste.

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use ring::rand::{SecureRandom as _, SystemRandom};
use ring::signature::{Ed25519KeyPair, KeyPair as _, UnparsedPublicKey, ED25519};

mod aead;
pub mod field;
pub mod seal;
pub mod vault;

pub use vault::VaultError;

/// What can go wrong with keys and signatures.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CryptoError {
    /// A key or signature is not valid base64 or has the wrong length.
    #[error("the {what} is malformed: {reason}")]
    Malformed {
        /// Which thing ("public key", "signature", …).
        what: &'static str,
        /// Why, in a few words.
        reason: String,
    },
    /// The signature does not match the bytes and the key.
    #[error("the signature does not match")]
    BadSignature,
    /// The system random number generator failed.
    #[error("the system random number generator failed")]
    Random,
    /// A ciphertext did not open: it was altered, moved to another place (row, column, record,
    /// schema, handover, key) or the key is not the one it was made with. Never a wrong plaintext.
    #[error("the {what} does not open: it was altered, moved, or the key is wrong")]
    DoesNotOpen {
        /// Which thing ("field blob", "wrapped data key", "sealed payload", …).
        what: &'static str,
    },
    /// A blob starts with a format version this build does not read.
    #[error("the {what} has format version {found}; this build reads version {expected}")]
    UnsupportedVersion {
        /// Which thing.
        what: &'static str,
        /// The version byte found.
        found: u8,
        /// The version this build reads.
        expected: u8,
    },
    /// The platform key vault failed (see [`VaultError`] for whether retrying can help).
    #[error("key vault: {0}")]
    Vault(#[from] VaultError),
}

/// `N` bytes from the operating system's random number generator (through ring).
pub(crate) fn random_array<const N: usize>() -> Result<[u8; N], CryptoError> {
    let mut out = [0u8; N];
    SystemRandom::new()
        .fill(&mut out)
        .map_err(|_| CryptoError::Random)?;
    Ok(out)
}

/// Overwrites secret bytes with zeros in a way the optimiser may not remove (the memory is about to
/// be freed or reused, which is exactly when a plain store would be elided).
pub(crate) fn wipe(bytes: &mut [u8]) {
    for b in bytes.iter_mut() {
        // SAFETY: `b` comes from a live `&mut [u8]`, so it is valid, aligned and exclusive.
        unsafe { std::ptr::write_volatile(b, 0) };
    }
    std::sync::atomic::compiler_fence(std::sync::atomic::Ordering::SeqCst);
}

/// Appends `bytes` with a 64-bit big-endian length prefix: the building block of every
/// associated-data encoding here, so that no two different tuples serialise to the same bytes.
pub(crate) fn put_field(out: &mut Vec<u8>, bytes: &[u8]) {
    out.extend_from_slice(&(bytes.len() as u64).to_be_bytes());
    out.extend_from_slice(bytes);
}

/// SHA-256 of the bytes.
pub fn sha256(bytes: &[u8]) -> [u8; 32] {
    let d = ring::digest::digest(&ring::digest::SHA256, bytes);
    let mut out = [0u8; 32];
    out.copy_from_slice(d.as_ref());
    out
}

/// SHA-256 of the bytes as lowercase hex (how bundles name consent scripts).
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex(&sha256(bytes))
}

/// Lowercase hex of bytes.
pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(DIGITS[(b >> 4) as usize] as char);
        s.push(DIGITS[(b & 0xf) as usize] as char);
    }
    s
}

/// Standard base64 with padding.
pub fn b64(bytes: &[u8]) -> String {
    B64.encode(bytes)
}

/// Decodes standard base64, naming `what` in the error.
pub fn unb64(text: &str, what: &'static str) -> Result<Vec<u8>, CryptoError> {
    B64.decode(text.trim()).map_err(|e| CryptoError::Malformed {
        what,
        reason: e.to_string(),
    })
}

/// An Ed25519 signing key (kept as its PKCS#8 document, which is what gets stored or wrapped).
pub struct SigningKey {
    pkcs8: Vec<u8>,
    pair: Ed25519KeyPair,
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKey")
            .field("public_key", &self.public_key_b64())
            .finish_non_exhaustive()
    }
}

impl SigningKey {
    /// A fresh random key.
    pub fn generate() -> Result<SigningKey, CryptoError> {
        let doc = Ed25519KeyPair::generate_pkcs8(&SystemRandom::new())
            .map_err(|_| CryptoError::Random)?;
        SigningKey::from_pkcs8(doc.as_ref())
    }

    /// Loads a key from its PKCS#8 document (v2 as [`SigningKey::generate`] makes them, whose
    /// public key is checked against the secret; or v1, which holds the secret only).
    pub fn from_pkcs8(pkcs8: &[u8]) -> Result<SigningKey, CryptoError> {
        let pair = Ed25519KeyPair::from_pkcs8_maybe_unchecked(pkcs8).map_err(|e| {
            CryptoError::Malformed {
                what: "signing key",
                reason: e.to_string(),
            }
        })?;
        Ok(SigningKey {
            pkcs8: pkcs8.to_vec(),
            pair,
        })
    }

    /// The key with a given 32-byte secret (RFC 8032 seed): for known-answer tests and published
    /// test vectors, whose keys are fixed. A real key comes from [`SigningKey::generate`].
    pub fn from_seed(seed: &[u8; 32]) -> SigningKey {
        // PKCS#8 v1 for Ed25519 (RFC 8410): a fixed 16-byte prefix, then the seed.
        const V1_PREFIX: [u8; 16] = [
            0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22,
            0x04, 0x20,
        ];
        let mut pkcs8 = V1_PREFIX.to_vec();
        pkcs8.extend_from_slice(seed);
        SigningKey::from_pkcs8(&pkcs8).expect("a 32-byte seed is always an Ed25519 key")
    }

    /// The PKCS#8 document (secret: store it wrapped or in a protected file).
    pub fn pkcs8(&self) -> &[u8] {
        &self.pkcs8
    }

    /// The 32-byte public key.
    pub fn public_key(&self) -> PublicKey {
        let mut k = [0u8; 32];
        k.copy_from_slice(self.pair.public_key().as_ref());
        PublicKey(k)
    }

    /// The public key as base64.
    pub fn public_key_b64(&self) -> String {
        self.public_key().to_b64()
    }

    /// Signs the bytes.
    pub fn sign(&self, message: &[u8]) -> [u8; 64] {
        let mut s = [0u8; 64];
        s.copy_from_slice(self.pair.sign(message).as_ref());
        s
    }
}

/// An Ed25519 public key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PublicKey(pub [u8; 32]);

impl PublicKey {
    /// Parses a base64 public key of exactly 32 bytes.
    pub fn from_b64(text: &str) -> Result<PublicKey, CryptoError> {
        let bytes = unb64(text, "public key")?;
        let k: [u8; 32] = bytes
            .as_slice()
            .try_into()
            .map_err(|_| CryptoError::Malformed {
                what: "public key",
                reason: format!("{} bytes instead of 32", bytes.len()),
            })?;
        Ok(PublicKey(k))
    }

    /// The key as base64.
    pub fn to_b64(&self) -> String {
        b64(&self.0)
    }

    /// A short, stable id for the key: the first 8 bytes of its SHA-256, as hex.
    pub fn key_id(&self) -> String {
        hex(&sha256(&self.0)[..8])
    }

    /// Checks an Ed25519 signature over the message.
    pub fn verify(&self, message: &[u8], signature: &[u8]) -> Result<(), CryptoError> {
        UnparsedPublicKey::new(&ED25519, &self.0)
            .verify(message, signature)
            .map_err(|_| CryptoError::BadSignature)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wipe_zeroes_and_fields_are_length_prefixed() {
        let mut secret = [7u8; 40];
        wipe(&mut secret);
        assert_eq!(secret, [0u8; 40]);
        let (mut a, mut b) = (Vec::new(), Vec::new());
        put_field(&mut a, b"ab");
        put_field(&mut a, b"c");
        put_field(&mut b, b"a");
        put_field(&mut b, b"bc");
        assert_ne!(a, b);
        assert_eq!(&a[..8], &2u64.to_be_bytes());
    }

    #[test]
    fn sha256_of_abc_is_the_fips_vector() {
        assert_eq!(
            sha256_hex(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn signatures_verify_and_catch_any_change() {
        let key = SigningKey::generate().unwrap();
        let pk = PublicKey::from_b64(&key.public_key_b64()).unwrap();
        let sig = key.sign(b"program bundle");
        assert_eq!(pk.verify(b"program bundle", &sig), Ok(()));
        assert_eq!(
            pk.verify(b"program bundlf", &sig),
            Err(CryptoError::BadSignature)
        );
        let mut bad = sig;
        bad[10] ^= 1;
        assert_eq!(
            pk.verify(b"program bundle", &bad),
            Err(CryptoError::BadSignature)
        );
        let other = SigningKey::generate().unwrap().public_key();
        assert_eq!(
            other.verify(b"program bundle", &sig),
            Err(CryptoError::BadSignature)
        );
    }

    #[test]
    fn keys_round_trip_through_pkcs8_and_base64() {
        let key = SigningKey::generate().unwrap();
        let again = SigningKey::from_pkcs8(key.pkcs8()).unwrap();
        assert_eq!(key.public_key(), again.public_key());
        assert_eq!(key.public_key().key_id().len(), 16);
        assert!(matches!(
            PublicKey::from_b64("AAAA"),
            Err(CryptoError::Malformed {
                what: "public key",
                ..
            })
        ));
        assert!(matches!(
            PublicKey::from_b64("not base64!"),
            Err(CryptoError::Malformed { .. })
        ));
    }
}
