//! The one place the storage crypto calls ring's ChaCha20-Poly1305, so that every symmetric blob
//! (field blobs, wrapped data keys, development-vault wraps) has the same layout and the same
//! checks, and a fix lands everywhere at once.
//!
//! Layout: `version (1) ‖ nonce (12, fresh random) ‖ ciphertext ‖ tag (16)`. The associated data
//! given to the AEAD is `version ‖ aad`, so the version byte is authenticated too. Random 96-bit
//! nonces are safe far below 2^32 messages per key; every key here seals a handful of blobs.

use ring::aead::{Aad, LessSafeKey, Nonce, UnboundKey, CHACHA20_POLY1305, NONCE_LEN};

use super::{random_array, wipe, CryptoError};

/// Length of the Poly1305 tag.
pub(crate) const TAG_LEN: usize = 16;

/// Bytes a blob adds to its plaintext: version, nonce and tag.
pub(crate) const OVERHEAD: usize = 1 + NONCE_LEN + TAG_LEN;

fn key(key: &[u8; 32]) -> Result<LessSafeKey, CryptoError> {
    let unbound = UnboundKey::new(&CHACHA20_POLY1305, key).map_err(|_| CryptoError::Malformed {
        what: "key",
        reason: "not a ChaCha20-Poly1305 key".into(),
    })?;
    Ok(LessSafeKey::new(unbound))
}

fn full_aad(version: u8, aad: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(1 + aad.len());
    out.push(version);
    out.extend_from_slice(aad);
    out
}

/// Encrypts `plaintext` under `key` with a fresh random nonce, binding `aad`.
pub(crate) fn seal(
    key_bytes: &[u8; 32],
    version: u8,
    aad: &[u8],
    plaintext: &[u8],
) -> Result<Vec<u8>, CryptoError> {
    let key = key(key_bytes)?;
    let nonce: [u8; NONCE_LEN] = random_array()?;
    // Reserve everything up front: the plaintext is encrypted in place and must never be left
    // behind in a buffer freed by a reallocation.
    let mut out = Vec::with_capacity(OVERHEAD + plaintext.len());
    out.push(version);
    out.extend_from_slice(&nonce);
    out.extend_from_slice(plaintext);
    let tag = key
        .seal_in_place_separate_tag(
            Nonce::assume_unique_for_key(nonce),
            Aad::from(full_aad(version, aad)),
            &mut out[1 + NONCE_LEN..],
        )
        .map_err(|_| CryptoError::Malformed {
            what: "plaintext",
            reason: "too long to encrypt".into(),
        })?;
    out.extend_from_slice(tag.as_ref());
    Ok(out)
}

/// Decrypts a blob made by [`seal`] with the same key, version and `aad`. `what` names the blob in
/// errors. A changed byte anywhere, another `aad` or another key gives
/// [`CryptoError::DoesNotOpen`], never a wrong plaintext.
pub(crate) fn open(
    key_bytes: &[u8; 32],
    version: u8,
    aad: &[u8],
    blob: &[u8],
    what: &'static str,
) -> Result<Vec<u8>, CryptoError> {
    if blob.len() < OVERHEAD {
        return Err(CryptoError::Malformed {
            what,
            reason: format!("{} bytes; at least {OVERHEAD} expected", blob.len()),
        });
    }
    if blob[0] != version {
        return Err(CryptoError::UnsupportedVersion {
            what,
            found: blob[0],
            expected: version,
        });
    }
    let key = key(key_bytes)?;
    let nonce = Nonce::try_assume_unique_for_key(&blob[1..1 + NONCE_LEN])
        .map_err(|_| CryptoError::DoesNotOpen { what })?;
    let mut buf = blob[1 + NONCE_LEN..].to_vec();
    match key.open_in_place(nonce, Aad::from(full_aad(version, aad)), &mut buf) {
        Ok(plaintext) => {
            let len = plaintext.len();
            wipe(&mut buf[len..]);
            buf.truncate(len);
            Ok(buf)
        }
        Err(_) => {
            // The buffer's contents are unspecified after a failed open: never leave them around.
            wipe(&mut buf);
            Err(CryptoError::DoesNotOpen { what })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout_round_trip_and_every_flipped_byte_fails() {
        let k = [9u8; 32];
        let blob = seal(&k, 1, b"aad", b"hello").unwrap();
        assert_eq!(blob.len(), OVERHEAD + 5);
        assert_eq!(blob[0], 1);
        assert_eq!(open(&k, 1, b"aad", &blob, "blob").unwrap(), b"hello");
        for i in 0..blob.len() {
            let mut bad = blob.clone();
            bad[i] ^= 0x01;
            let err = open(&k, 1, b"aad", &bad, "blob").unwrap_err();
            if i == 0 {
                assert!(matches!(
                    err,
                    CryptoError::UnsupportedVersion { found: 0, .. }
                ));
            } else {
                assert_eq!(err, CryptoError::DoesNotOpen { what: "blob" });
            }
        }
        assert_eq!(
            open(&k, 1, b"aaD", &blob, "blob"),
            Err(CryptoError::DoesNotOpen { what: "blob" })
        );
        assert!(matches!(
            open(&k, 1, b"aad", &blob[..OVERHEAD - 1], "blob"),
            Err(CryptoError::Malformed { what: "blob", .. })
        ));
        // Same plaintext twice: different nonces, different blobs.
        assert_ne!(blob, seal(&k, 1, b"aad", b"hello").unwrap());
    }
}
