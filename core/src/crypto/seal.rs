//! A finished referral must leave the phone readable by the clinic only — not by the device that
//! wrote it, nor by anyone who takes the phone afterwards. This module exists to seal it so: HPKE
//! (RFC 9180) in base mode with DHKEM(X25519, HKDF-SHA256), HKDF-SHA256 and ChaCha20-Poly1305
//! (suite 0x0020/0x0001/0x0003), to the clinic's current public key from the signed program bundle.
//! The device never holds the clinic's secret key, so after sealing it holds ciphertext it cannot
//! open. [`open_from_device`] is the clinic side (its service, tools and tests).
//!
//! ring has no static X25519 key agreement (it can seal but could never open), so this is the
//! `hpke` crate (pure Rust). Randomness still comes from the operating system through ring: a
//! failing generator is a [`CryptoError::Random`], not a panic.
//!
//! **Binding.** [`SealBinding`] (handover id, program id, clinic key id, schema version) is encoded
//! unambiguously (length-prefixed) and used twice:
//! - in HPKE's `info` (after the fixed label [`INFO_LABEL`]): it enters the key schedule, so the
//!   derived AEAD key itself is specific to this handover, program, key and schema;
//! - as the AEAD's `aad`: the ciphertext authenticates the binding directly as well.
//!
//! Either alone would make a payload relabelled with another handover id, program or key id fail
//! to open; both cost nothing and keep the guarantee if one of them is ever changed (for example,
//! a future exporter-based scheme that keeps `info` but drops `aad`). The clinic takes the binding
//! from the clear envelope it receives and must pass the same values to open: an envelope whose
//! metadata was edited does not open. Base mode does not authenticate the sender (the device signs
//! its requests for that), and the handover id in the binding plus the clinic's dedupe cover
//! replay.

use hpke::rand_core::{TryCryptoRng, TryRng};
use hpke::{Deserializable as _, Kem, OpModeR, OpModeS, Serializable as _};

use super::{b64, put_field, random_array, unb64, wipe, CryptoError};

type SuiteKem = hpke::kem::X25519HkdfSha256;
type SuiteKdf = hpke::kdf::HkdfSha256;
type SuiteAead = hpke::aead::ChaCha20Poly1305;
type PublicKey = <SuiteKem as Kem>::PublicKey;
type PrivateKey = <SuiteKem as Kem>::PrivateKey;
type EncappedKey = <SuiteKem as Kem>::EncappedKey;

/// The fixed label that starts HPKE's `info` for every handover.
pub const INFO_LABEL: &[u8] = b"lotsa handover v1";

/// Length of the encapsulated key (`enc`): an X25519 public key.
pub const ENC_LEN: usize = 32;

/// Length of the AEAD tag the ciphertext carries after the plaintext.
pub const TAG_LEN: usize = 16;

/// What a sealed payload is bound to; the clinic must name the same values to open it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SealBinding<'a> {
    /// The handover id (also the idempotency key and the clinic's dedupe key).
    pub handover_id: &'a str,
    /// The program the referral belongs to.
    pub program_id: &'a str,
    /// The id of the clinic key the payload is sealed to (from the bundle).
    pub clinic_key_id: &'a str,
    /// The payload's schema version.
    pub schema_version: u32,
}

impl SealBinding<'_> {
    /// The unambiguous encoding (the `aad`): handover id, program id and clinic key id, each with a
    /// 64-bit big-endian length prefix, then the schema version as 32-bit big-endian.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(
            28 + self.handover_id.len() + self.program_id.len() + self.clinic_key_id.len(),
        );
        put_field(&mut out, self.handover_id.as_bytes());
        put_field(&mut out, self.program_id.as_bytes());
        put_field(&mut out, self.clinic_key_id.as_bytes());
        out.extend_from_slice(&self.schema_version.to_be_bytes());
        out
    }

    /// HPKE's `info`: [`INFO_LABEL`] followed by [`SealBinding::to_bytes`].
    pub fn info(&self) -> Vec<u8> {
        let mut out = INFO_LABEL.to_vec();
        out.extend_from_slice(&self.to_bytes());
        out
    }
}

/// A sealed payload: HPKE's encapsulated key and the ciphertext (plaintext length + 16).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sealed {
    /// The encapsulated key (the ephemeral X25519 public key), 32 bytes.
    pub enc: Vec<u8>,
    /// The ciphertext with its tag.
    pub ciphertext: Vec<u8>,
}

impl Sealed {
    /// One byte string for storage and the wire: `enc (32) ‖ ciphertext`.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.enc.len() + self.ciphertext.len());
        out.extend_from_slice(&self.enc);
        out.extend_from_slice(&self.ciphertext);
        out
    }

    /// Splits bytes made by [`Sealed::to_bytes`].
    pub fn from_bytes(bytes: &[u8]) -> Result<Sealed, CryptoError> {
        if bytes.len() < ENC_LEN + TAG_LEN {
            return Err(CryptoError::Malformed {
                what: "sealed payload",
                reason: format!(
                    "{} bytes; at least {} expected",
                    bytes.len(),
                    ENC_LEN + TAG_LEN
                ),
            });
        }
        Ok(Sealed {
            enc: bytes[..ENC_LEN].to_vec(),
            ciphertext: bytes[ENC_LEN..].to_vec(),
        })
    }
}

/// Parses a clinic HPKE public key as the bundle carries it (base64 of 32 bytes).
pub fn parse_clinic_public_key(text: &str) -> Result<[u8; 32], CryptoError> {
    let bytes = unb64(text, "clinic public key")?;
    bytes
        .as_slice()
        .try_into()
        .map_err(|_| CryptoError::Malformed {
            what: "clinic public key",
            reason: format!("{} bytes instead of 32", bytes.len()),
        })
}

/// Seals `plaintext` to the clinic's X25519 public key, bound to `binding`. Fails on a public key
/// that cannot be used (a low-order point) or a failing random number generator.
pub fn seal_to_clinic(
    clinic_public_key: &[u8; 32],
    binding: &SealBinding<'_>,
    plaintext: &[u8],
) -> Result<Sealed, CryptoError> {
    let mut rng = RingRng::default();
    let sealed = hpke_seal(
        clinic_public_key,
        &binding.info(),
        &binding.to_bytes(),
        plaintext,
        &mut rng,
    );
    if rng.failed {
        // Never let out anything computed from the zeros a failed generator left behind.
        return Err(CryptoError::Random);
    }
    sealed
}

/// [`seal_to_clinic`] with the public key as base64, as in the program bundle.
pub fn seal_to_clinic_b64(
    clinic_public_key: &str,
    binding: &SealBinding<'_>,
    plaintext: &[u8],
) -> Result<Sealed, CryptoError> {
    seal_to_clinic(
        &parse_clinic_public_key(clinic_public_key)?,
        binding,
        plaintext,
    )
}

/// Checks that a clinic public key (base64) can be sealed to: 32 bytes and not a low-order point
/// (all zeros, one, the points of small order, and their non-canonical forms), by sealing an
/// empty message to it. A program bundle with such a key is refused when it is signed or loaded,
/// long before a person consents.
pub fn check_clinic_public_key(public_key_b64: &str) -> Result<(), CryptoError> {
    let binding = SealBinding {
        handover_id: "key-check",
        program_id: "key-check",
        clinic_key_id: "key-check",
        schema_version: 0,
    };
    seal_to_clinic_b64(public_key_b64, &binding, b"").map(drop)
}

/// The clinic side: opens a payload sealed by a device to this key pair, with the binding the
/// clinic read from the envelope. Any change to `enc`, the ciphertext or the binding, or another
/// key, is [`CryptoError::DoesNotOpen`] (or `Malformed` for a wrong length), never a wrong
/// plaintext.
pub fn open_from_device(
    clinic: &ClinicKeyPair,
    binding: &SealBinding<'_>,
    sealed: &Sealed,
) -> Result<Vec<u8>, CryptoError> {
    hpke_open(
        &clinic.sk,
        &sealed.enc,
        &binding.info(),
        &binding.to_bytes(),
        &sealed.ciphertext,
    )
}

/// A clinic's HPKE key pair (X25519), for the clinic service, tools and tests. Devices only ever
/// see the public half. The secret is zeroed when dropped (by the `hpke` crate's key type).
#[derive(Clone)]
pub struct ClinicKeyPair {
    sk: PrivateKey,
    pk: PublicKey,
}

impl std::fmt::Debug for ClinicKeyPair {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClinicKeyPair")
            .field("public_key", &self.public_key_b64())
            .finish_non_exhaustive()
    }
}

impl ClinicKeyPair {
    /// A fresh random key pair (DeriveKeyPair over 32 bytes from the system generator).
    pub fn generate() -> Result<ClinicKeyPair, CryptoError> {
        let mut ikm: [u8; 32] = random_array()?;
        let pair = ClinicKeyPair::derive(&ikm);
        wipe(&mut ikm);
        Ok(pair)
    }

    /// RFC 9180 `DeriveKeyPair(ikm)` for this suite (deterministic; `ikm` needs 256 bits of
    /// entropy).
    pub fn derive(ikm: &[u8]) -> ClinicKeyPair {
        let (sk, pk) = SuiteKem::derive_keypair(ikm);
        ClinicKeyPair { sk, pk }
    }

    /// Loads a key pair from its 32 secret bytes. Any 32 bytes are a valid X25519 secret: they are
    /// clamped (RFC 7748), so [`ClinicKeyPair::secret_bytes`] may return different but equivalent
    /// bytes.
    pub fn from_secret_bytes(secret: &[u8; 32]) -> ClinicKeyPair {
        match PrivateKey::from_bytes(secret) {
            Ok(sk) => {
                let pk = SuiteKem::sk_to_pk(&sk);
                ClinicKeyPair { sk, pk }
            }
            // The only error is a wrong length, and the length is fixed by the type.
            Err(_) => unreachable!("an X25519 secret key of 32 bytes always parses"),
        }
    }

    /// The 32-byte public key.
    pub fn public_key(&self) -> [u8; 32] {
        let mut out = [0u8; 32];
        self.pk.write_exact(&mut out);
        out
    }

    /// The public key as base64 (as the program bundle carries it).
    pub fn public_key_b64(&self) -> String {
        b64(&self.public_key())
    }

    /// The 32 secret bytes, clamped (secret: keep them wrapped or in a protected file).
    pub fn secret_bytes(&self) -> [u8; 32] {
        let mut out = [0u8; 32];
        self.sk.write_exact(&mut out);
        out
    }
}

/// The seal primitive with an explicit generator (the known-answer test pins the ephemeral key).
fn hpke_seal<R: hpke::rand_core::CryptoRng>(
    public_key: &[u8; 32],
    info: &[u8],
    aad: &[u8],
    plaintext: &[u8],
    rng: &mut R,
) -> Result<Sealed, CryptoError> {
    let pk = PublicKey::from_bytes(public_key).map_err(|e| CryptoError::Malformed {
        what: "clinic public key",
        reason: e.to_string(),
    })?;
    let (enc, ciphertext) = hpke::single_shot_seal_with_rng::<SuiteAead, SuiteKdf, SuiteKem>(
        &OpModeS::Base,
        &pk,
        info,
        plaintext,
        aad,
        rng,
    )
    .map_err(|e| match e {
        hpke::HpkeError::EncapError => CryptoError::Malformed {
            what: "clinic public key",
            reason: "not a usable X25519 public key (a low-order point)".into(),
        },
        other => CryptoError::Malformed {
            what: "plaintext",
            reason: other.to_string(),
        },
    })?;
    let mut enc_bytes = vec![0u8; ENC_LEN];
    enc.write_exact(&mut enc_bytes);
    Ok(Sealed {
        enc: enc_bytes,
        ciphertext,
    })
}

/// The open primitive.
fn hpke_open(
    sk: &PrivateKey,
    enc: &[u8],
    info: &[u8],
    aad: &[u8],
    ciphertext: &[u8],
) -> Result<Vec<u8>, CryptoError> {
    let enc = EncappedKey::from_bytes(enc).map_err(|_| CryptoError::Malformed {
        what: "sealed payload",
        reason: format!(
            "the encapsulated key is {} bytes instead of {ENC_LEN}",
            enc.len()
        ),
    })?;
    hpke::single_shot_open::<SuiteAead, SuiteKdf, SuiteKem>(
        &OpModeR::Base,
        sk,
        &enc,
        info,
        ciphertext,
        aad,
    )
    .map_err(|e| match e {
        hpke::HpkeError::OpenError | hpke::HpkeError::DecapError => CryptoError::DoesNotOpen {
            what: "sealed payload",
        },
        other => CryptoError::Malformed {
            what: "sealed payload",
            reason: other.to_string(),
        },
    })
}

/// The operating system's generator through ring, in the shape `hpke` wants (rand_core 0.10's
/// infallible `CryptoRng`). ring's generator can fail; rand_core's cannot, so a failure is
/// recorded, the buffer zeroed, and the caller discards the result and reports
/// [`CryptoError::Random`].
#[derive(Default)]
struct RingRng {
    failed: bool,
}

impl TryRng for RingRng {
    type Error = core::convert::Infallible;

    fn try_next_u32(&mut self) -> Result<u32, Self::Error> {
        let mut b = [0u8; 4];
        self.try_fill_bytes(&mut b)?;
        Ok(u32::from_le_bytes(b))
    }

    fn try_next_u64(&mut self) -> Result<u64, Self::Error> {
        let mut b = [0u8; 8];
        self.try_fill_bytes(&mut b)?;
        Ok(u64::from_le_bytes(b))
    }

    fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Self::Error> {
        use ring::rand::SecureRandom as _;
        if ring::rand::SystemRandom::new().fill(dst).is_err() {
            self.failed = true;
            dst.fill(0);
        }
        Ok(())
    }
}

// Every byte comes from the operating system's CSPRNG (or the result is discarded).
impl TryCryptoRng for RingRng {}

/// A "generator" that hands out fixed bytes, to pin the ephemeral key to the RFC's ikmE.
#[cfg(test)]
pub(crate) struct Fixed(pub(crate) Vec<u8>);

#[cfg(test)]
impl TryRng for Fixed {
    type Error = core::convert::Infallible;
    fn try_next_u32(&mut self) -> Result<u32, Self::Error> {
        unreachable!("hpke only fills bytes")
    }
    fn try_next_u64(&mut self) -> Result<u64, Self::Error> {
        unreachable!("hpke only fills bytes")
    }
    fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Self::Error> {
        assert!(dst.len() <= self.0.len(), "the fixed bytes ran out");
        let rest = self.0.split_off(dst.len());
        dst.copy_from_slice(&self.0);
        self.0 = rest;
        Ok(())
    }
}

#[cfg(test)]
impl TryCryptoRng for Fixed {}

/// [`seal_to_clinic`] with the ephemeral key derived from fixed bytes (`ikmE`), for published test
/// vectors only: reusing `ikmE` for two payloads would reuse their keys.
#[cfg(test)]
pub(crate) fn seal_with_fixed_ephemeral(
    clinic_public_key: &[u8; 32],
    binding: &SealBinding<'_>,
    plaintext: &[u8],
    ikm_e: &[u8],
) -> Result<Sealed, CryptoError> {
    hpke_seal(
        clinic_public_key,
        &binding.info(),
        &binding.to_bytes(),
        plaintext,
        &mut Fixed(ikm_e.to_vec()),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn unhex(s: &str) -> Vec<u8> {
        assert_eq!(s.len() % 2, 0);
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    /// RFC 9180 Appendix A.2.1: DHKEM(X25519, HKDF-SHA256), HKDF-SHA256, ChaCha20Poly1305, base
    /// mode (mode 0, kem_id 32, kdf_id 1, aead_id 3).
    mod a_2_1 {
        pub const INFO: &str = "4f6465206f6e2061204772656369616e2055726e";
        pub const IKM_E: &str = "909a9b35d3dc4713a5e72a4da274b55d3d3821a37e5d099e74a647db583a904b";
        pub const IKM_R: &str = "1ac01f181fdf9f352797655161c58b75c656a6cc2716dcb66372da835542e1df";
        pub const PK_RM: &str = "4310ee97d88cc1f088a5576c77ab0cf5c3ac797f3d95139c6c84b5429c59662a";
        pub const SK_RM: &str = "8057991eef8f1f1af18f4a9491d16a1ce333f695d4db8e38da75975c4478e0fb";
        pub const ENC: &str = "1afa08d3dec047a643885163f1180476fa7ddb54c6a8029ea33f95796bf2ac4a";
        pub const PT: &str = "4265617574792069732074727574682c20747275746820626561757479";
        pub const AAD_0: &str = "436f756e742d30";
        pub const CT_0: &str = "1c5250d8034ec2b784ba2cfd69dbdb8af406cfe3ff938e131f0def8c8b60b4db\
                                21993c62ce81883d2dd1b51a28";
        pub const AAD_1: &str = "436f756e742d31";
        pub const CT_1: &str = "6b53c051e4199c518de79594e1c4ab18b96f081549d45ce015be002090bb119e\
                                85285337cc95ba5f59992dc98c";
    }

    #[test]
    fn rfc9180_a_2_1_known_answer() {
        use a_2_1::*;
        assert_eq!(unhex(PT), b"Beauty is truth, truth beauty");
        assert_eq!(unhex(AAD_0), b"Count-0");
        assert_eq!(unhex(INFO), b"Ode on a Grecian Urn");

        // DeriveKeyPair(ikmR) gives pkRm.
        let recipient = ClinicKeyPair::derive(&unhex(IKM_R));
        assert_eq!(recipient.public_key().to_vec(), unhex(PK_RM));
        // skRm serialises clamped: equal to the RFC's bytes after clamping, and loading the RFC's
        // bytes gives the same public key.
        let mut clamped: [u8; 32] = unhex(SK_RM).try_into().unwrap();
        clamped[0] &= 248;
        clamped[31] &= 127;
        clamped[31] |= 64;
        assert_eq!(recipient.secret_bytes(), clamped);
        let from_rfc = ClinicKeyPair::from_secret_bytes(&unhex(SK_RM).try_into().unwrap());
        assert_eq!(from_rfc.public_key().to_vec(), unhex(PK_RM));

        // Opening sequence 0 with the crate-level primitive the module uses.
        let opened = hpke_open(
            &recipient.sk,
            &unhex(ENC),
            &unhex(INFO),
            &unhex(AAD_0),
            &unhex(CT_0),
        )
        .unwrap();
        assert_eq!(opened, b"Beauty is truth, truth beauty");

        // Sequence 1 through a receiver context (a single-shot open is always sequence 0).
        let enc = EncappedKey::from_bytes(&unhex(ENC)).unwrap();
        let mut ctx = hpke::setup_receiver::<SuiteAead, SuiteKdf, SuiteKem>(
            &OpModeR::Base,
            &recipient.sk,
            &enc,
            &unhex(INFO),
        )
        .unwrap();
        assert_eq!(ctx.open(&unhex(CT_0), &unhex(AAD_0)).unwrap(), unhex(PT));
        assert_eq!(ctx.open(&unhex(CT_1), &unhex(AAD_1)).unwrap(), unhex(PT));

        // Sealing with the ephemeral key pinned to ikmE reproduces enc and the ciphertext.
        let sealed = hpke_seal(
            &recipient.public_key(),
            &unhex(INFO),
            &unhex(AAD_0),
            &unhex(PT),
            &mut Fixed(unhex(IKM_E)),
        )
        .unwrap();
        assert_eq!(sealed.enc, unhex(ENC));
        assert_eq!(sealed.ciphertext, unhex(CT_0));

        // The wrong aad or info does not open.
        assert_eq!(
            hpke_open(
                &recipient.sk,
                &unhex(ENC),
                &unhex(INFO),
                &unhex(AAD_1),
                &unhex(CT_0)
            ),
            Err(CryptoError::DoesNotOpen {
                what: "sealed payload"
            })
        );
        assert_eq!(
            hpke_open(&recipient.sk, &unhex(ENC), b"", &unhex(AAD_0), &unhex(CT_0)),
            Err(CryptoError::DoesNotOpen {
                what: "sealed payload"
            })
        );
    }

    const BINDING: SealBinding<'static> = SealBinding {
        handover_id: "0b6d7f9e-8a41-4f1c-b2d3-5e6f7a8b9c0d",
        program_id: "snackan-2026",
        clinic_key_id: "clinic-2026-1",
        schema_version: 1,
    };

    const DNE: CryptoError = CryptoError::DoesNotOpen {
        what: "sealed payload",
    };

    #[test]
    fn seal_then_open_round_trips() {
        let clinic = ClinicKeyPair::generate().unwrap();
        let payload = br#"{"name":"Kalle Anka","phone":"0701234567"}"#;
        let sealed = seal_to_clinic_b64(&clinic.public_key_b64(), &BINDING, payload).unwrap();
        assert_eq!(sealed.enc.len(), ENC_LEN);
        assert_eq!(sealed.ciphertext.len(), payload.len() + TAG_LEN);
        assert_eq!(
            open_from_device(&clinic, &BINDING, &sealed).unwrap(),
            payload
        );

        // Through the storage form.
        let again = Sealed::from_bytes(&sealed.to_bytes()).unwrap();
        assert_eq!(again, sealed);
        assert_eq!(
            open_from_device(&clinic, &BINDING, &again).unwrap(),
            payload
        );

        // A fresh ephemeral key every time.
        let other = seal_to_clinic(&clinic.public_key(), &BINDING, payload).unwrap();
        assert_ne!(other.enc, sealed.enc);
        assert_ne!(other.ciphertext, sealed.ciphertext);

        // The clinic's key survives a trip through its secret bytes.
        let reloaded = ClinicKeyPair::from_secret_bytes(&clinic.secret_bytes());
        assert_eq!(reloaded.public_key(), clinic.public_key());
        assert_eq!(
            open_from_device(&reloaded, &BINDING, &sealed).unwrap(),
            payload
        );
        assert!(!format!("{clinic:?}").contains(&b64(&clinic.secret_bytes())));
    }

    #[test]
    fn any_change_to_enc_ciphertext_binding_or_key_fails_typed() {
        let clinic = ClinicKeyPair::generate().unwrap();
        let sealed = seal_to_clinic(&clinic.public_key(), &BINDING, b"personnummer").unwrap();
        for i in 0..sealed.enc.len() {
            for bit in [0x01u8, 0x40, 0x80] {
                let mut bad = sealed.clone();
                bad.enc[i] ^= bit;
                assert_eq!(
                    open_from_device(&clinic, &BINDING, &bad),
                    Err(DNE),
                    "enc[{i}]"
                );
            }
        }
        for i in 0..sealed.ciphertext.len() {
            let mut bad = sealed.clone();
            bad.ciphertext[i] ^= 0x01;
            assert_eq!(
                open_from_device(&clinic, &BINDING, &bad),
                Err(DNE),
                "ct[{i}]"
            );
        }
        let changed = [
            SealBinding {
                handover_id: "0b6d7f9e-8a41-4f1c-b2d3-5e6f7a8b9c0e",
                ..BINDING
            },
            SealBinding {
                program_id: "snackan-2027",
                ..BINDING
            },
            SealBinding {
                clinic_key_id: "clinic-2026-2",
                ..BINDING
            },
            SealBinding {
                schema_version: 2,
                ..BINDING
            },
        ];
        for b in changed {
            assert_eq!(open_from_device(&clinic, &b, &sealed), Err(DNE), "{b:?}");
        }
        let stranger = ClinicKeyPair::generate().unwrap();
        assert_eq!(open_from_device(&stranger, &BINDING, &sealed), Err(DNE));

        // Wrong lengths are malformed, not a panic.
        let mut short = sealed.clone();
        short.enc.pop();
        assert!(matches!(
            open_from_device(&clinic, &BINDING, &short),
            Err(CryptoError::Malformed { .. })
        ));
        let mut truncated = sealed.clone();
        truncated.ciphertext.truncate(3);
        assert_eq!(open_from_device(&clinic, &BINDING, &truncated), Err(DNE));
        assert!(matches!(
            Sealed::from_bytes(&sealed.to_bytes()[..ENC_LEN + TAG_LEN - 1]),
            Err(CryptoError::Malformed { .. })
        ));
    }

    #[test]
    fn binding_encoding_is_unambiguous_and_labelled() {
        let a = SealBinding {
            handover_id: "ab",
            program_id: "c",
            ..BINDING
        };
        let b = SealBinding {
            handover_id: "a",
            program_id: "bc",
            ..BINDING
        };
        assert_ne!(a.to_bytes(), b.to_bytes());
        assert!(a.info().starts_with(b"lotsa handover v1"));
        assert_eq!(&a.info()[INFO_LABEL.len()..], a.to_bytes().as_slice());
        let clinic = ClinicKeyPair::generate().unwrap();
        let sealed = seal_to_clinic(&clinic.public_key(), &a, b"x").unwrap();
        assert_eq!(open_from_device(&clinic, &b, &sealed), Err(DNE));
    }

    #[test]
    fn unusable_clinic_keys_are_refused() {
        // The all-zero point (and other low-order points) give an all-zero DH result.
        assert!(matches!(
            seal_to_clinic(&[0u8; 32], &BINDING, b"x"),
            Err(CryptoError::Malformed {
                what: "clinic public key",
                ..
            })
        ));
        assert!(matches!(
            seal_to_clinic_b64("AAAA", &BINDING, b"x"),
            Err(CryptoError::Malformed {
                what: "clinic public key",
                ..
            })
        ));
        assert!(matches!(
            seal_to_clinic_b64("not base64!", &BINDING, b"x"),
            Err(CryptoError::Malformed { .. })
        ));
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]
        #[test]
        fn seal_open_round_trips_arbitrary_bytes(
            pt in proptest::collection::vec(any::<u8>(), 0..4096),
            handover in ".{0,40}",
            program in "[a-z0-9-]{0,20}",
            version in any::<u32>(),
        ) {
            let clinic = ClinicKeyPair::derive(&[7u8; 32]);
            let binding = SealBinding {
                handover_id: &handover,
                program_id: &program,
                clinic_key_id: "k1",
                schema_version: version,
            };
            let sealed = seal_to_clinic(&clinic.public_key(), &binding, &pt).unwrap();
            prop_assert_eq!(sealed.ciphertext.len(), pt.len() + TAG_LEN);
            prop_assert_eq!(open_from_device(&clinic, &binding, &sealed).unwrap(), pt);
        }
    }
}
