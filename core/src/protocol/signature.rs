//! Who sent a request, and that nobody changed or replayed it: RFC 9421 HTTP Message Signatures
//! with the device's Ed25519 key, over RFC 9530 `Content-Digest`.
//!
//! A device signs every delivery over `@method`, `@target-uri`, `content-digest` and
//! `lotsa-audit-head`, with the parameters `created`, `nonce`, `keyid` and `alg="ed25519"`. The
//! signature base is one line per covered component, `"<name>": <value>`, then
//! `"@signature-params": <the inner list with its parameters>`, joined by LF with no trailing
//! newline. Structured fields are read and written with `sfv` (RFC 9651); the rest is a few lines.
//!
//! The verifier rebuilds `@signature-params` from the `Signature-Input` it received (other
//! signers order components and parameters differently), never from a template, and then checks,
//! in this order: the components the endpoint requires are covered, the key is known and not
//! revoked, the signature verifies, the digest matches the body, `created` is within the clock
//! skew. Nonce replay needs memory and is the clinic's last check ([`Verified::nonce`]).

use super::wire::AuditHead;
use super::{ProblemType, AUDIT_HEAD_HEADER, CLOCK_SKEW_SECS};
use crate::crypto::{sha256, CryptoError, PublicKey, SigningKey};
use sfv::{FieldType as _, KeyRef, ListEntry, Parser, StringRef};

/// The algorithm name in `alg`.
pub const ALG: &str = "ed25519";
/// The label a Lotsa device gives its signature (a verifier accepts any one label).
pub const LABEL: &str = "sig1";
/// What a delivery (`POST /v1/handovers`, `POST /v1/withdrawals`) must cover.
pub const DELIVERY_COMPONENTS: [&str; 4] = [
    "@method",
    "@target-uri",
    "content-digest",
    AUDIT_HEAD_HEADER,
];
/// What an enrolment (`POST /v1/devices`) must cover.
pub const ENROLMENT_COMPONENTS: [&str; 3] = ["@method", "@target-uri", "content-digest"];

/// Why a request's signature or digest is refused. Each maps to one problem type.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    /// `Signature-Input` or `Signature` is missing or not what RFC 9421 describes.
    #[error("the request signature is missing or malformed: {0}")]
    Malformed(&'static str),
    /// A component the endpoint requires is not covered.
    #[error("the signature does not cover {0}")]
    NotCovered(String),
    /// A covered component is absent from the request.
    #[error("the signature covers {0}, which the request does not carry")]
    ComponentAbsent(String),
    /// The signature does not verify with the device's key.
    #[error("the signature does not verify")]
    DoesNotVerify,
    /// No device with this key id.
    #[error("no device with this key id is enrolled")]
    UnknownDevice,
    /// The device was revoked.
    #[error("this device was revoked")]
    DeviceRevoked,
    /// `created` (or `expires`) is outside the window.
    #[error("the signature was created {0} s away from the clinic's clock (at most {CLOCK_SKEW_SECS} s allowed)")]
    Stale(i64),
    /// `Content-Digest` is missing or wrong.
    #[error("Content-Digest {0}")]
    Digest(&'static str),
    /// The audit-head header is not valid.
    #[error("the Lotsa-Audit-Head header is not valid")]
    AuditHead,
}

impl SignatureError {
    /// The problem type a clinic answers with.
    pub fn problem_type(&self) -> ProblemType {
        match self {
            SignatureError::Malformed(_)
            | SignatureError::NotCovered(_)
            | SignatureError::ComponentAbsent(_)
            | SignatureError::DoesNotVerify => ProblemType::BadSignature,
            SignatureError::UnknownDevice => ProblemType::UnknownDevice,
            SignatureError::DeviceRevoked => ProblemType::DeviceRevoked,
            SignatureError::Stale(_) => ProblemType::SignatureStale,
            SignatureError::Digest(_) => ProblemType::DigestMismatch,
            SignatureError::AuditHead => ProblemType::MalformedBody,
        }
    }
}

/// `Content-Digest` of a body (RFC 9530): `sha-256=:<base64 of SHA-256>:`.
pub fn content_digest(body: &[u8]) -> String {
    format!("sha-256=:{}:", crate::crypto::b64(&sha256(body)))
}

/// Checks a received `Content-Digest` against the body: its `sha-256` member must be the
/// body's SHA-256 (other algorithms listed beside it are ignored).
pub fn check_content_digest(header: Option<&str>, body: &[u8]) -> Result<(), SignatureError> {
    let header = header.ok_or(SignatureError::Digest("is missing"))?;
    let dict: sfv::Dictionary = Parser::new(header)
        .parse()
        .map_err(|_| SignatureError::Digest("is not an RFC 9651 dictionary"))?;
    let Some(ListEntry::Item(item)) = dict.get("sha-256") else {
        return Err(SignatureError::Digest("has no sha-256 member"));
    };
    match item.bare_item.as_byte_sequence() {
        Some(d) if d == sha256(body) => Ok(()),
        Some(_) => Err(SignatureError::Digest("does not match the body")),
        None => Err(SignatureError::Digest("sha-256 is not a byte sequence")),
    }
}

/// A fresh nonce: 16 random bytes as 22 characters of unpadded base64url.
pub fn new_nonce() -> Result<String, CryptoError> {
    use base64::Engine as _;
    let bytes: [u8; 16] = crate::crypto::random_array()?;
    Ok(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes))
}

/// A signature parameter's value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Param<'a> {
    /// An integer (`created`, `expires`).
    Integer(i64),
    /// A string (`nonce`, `keyid`, `alg`, `tag`).
    String(&'a str),
}

/// The serialized `@signature-params` value (also the `Signature-Input` member value): the
/// covered component names as an inner list, with the parameters in the order given. Fails only
/// on a name or string that RFC 9651 cannot carry (non-ASCII, control characters).
pub fn signature_params(components: &[&str], params: &[(&str, Param<'_>)]) -> Option<String> {
    let mut ser = sfv::ListSerializer::new();
    {
        let mut inner = ser.inner_list();
        for name in components {
            let _ = inner.bare_item(StringRef::from_str(name).ok()?);
        }
        let mut p = inner.finish();
        for (key, value) in params {
            let key = KeyRef::from_str(key).ok()?;
            p = match value {
                Param::Integer(n) => p.parameter(key, sfv::Integer::try_from(*n).ok()?),
                Param::String(s) => p.parameter(key, StringRef::from_str(s).ok()?),
            };
        }
    }
    ser.finish()
}

/// The signature base (RFC 9421 §2.5): `"<name>": <value>` per covered component, then
/// `"@signature-params": <params_value>`, joined by LF.
pub fn signature_base(components: &[(&str, &str)], params_value: &str) -> String {
    let mut base = String::new();
    for (name, value) in components {
        base.push_str(&format!("\"{name}\": {value}\n"));
    }
    base.push_str(&format!("\"@signature-params\": {params_value}"));
    base
}

/// The headers a device adds to a signed request, in the order it sends them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedHeaders {
    /// `(name, value)` pairs: `content-digest`, `lotsa-audit-head` (when given),
    /// `signature-input`, `signature`.
    pub headers: Vec<(&'static str, String)>,
    /// The signature base that was signed (for logs of test vectors; it holds no secret).
    pub base: String,
}

/// Signs a device request: `Content-Digest` of `body`, the audit head (for deliveries), and the
/// signature over them with `created`, `nonce`, `keyid` (the key's device id) and `alg`.
pub fn sign_request(
    key: &SigningKey,
    method: &str,
    target_uri: &str,
    body: &[u8],
    audit_head: Option<&AuditHead>,
    created: i64,
    nonce: &str,
) -> Result<SignedHeaders, SignatureError> {
    let digest = content_digest(body);
    let head = audit_head.map(AuditHead::to_header);
    let mut components: Vec<(&str, &str)> = vec![
        ("@method", method),
        ("@target-uri", target_uri),
        ("content-digest", &digest),
    ];
    if let Some(head) = &head {
        components.push((AUDIT_HEAD_HEADER, head));
    }
    let names: Vec<&str> = components.iter().map(|(n, _)| *n).collect();
    let key_id = super::device_id(&key.public_key());
    let params = signature_params(
        &names,
        &[
            ("created", Param::Integer(created)),
            ("nonce", Param::String(nonce)),
            ("keyid", Param::String(&key_id)),
            ("alg", Param::String(ALG)),
        ],
    )
    .ok_or(SignatureError::Malformed(
        "the nonce or a component is not ASCII",
    ))?;
    let base = signature_base(&components, &params);
    let signature = crate::crypto::b64(&key.sign(base.as_bytes()));
    let mut headers = vec![("content-digest", digest.clone())];
    if let Some(head) = head {
        headers.push((AUDIT_HEAD_HEADER, head));
    }
    headers.push(("signature-input", format!("{LABEL}={params}")));
    headers.push(("signature", format!("{LABEL}=:{signature}:")));
    Ok(SignedHeaders { headers, base })
}

/// A received signature, parsed from `Signature-Input` and `Signature` (exactly one label each,
/// the same in both), before anything in it is believed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceivedSignature {
    /// The covered component names, in the signer's order.
    pub components: Vec<String>,
    /// `created`, if given.
    pub created: Option<i64>,
    /// `expires`, if given.
    pub expires: Option<i64>,
    /// `nonce`, if given.
    pub nonce: Option<String>,
    /// `keyid`, if given.
    pub key_id: Option<String>,
    /// `alg`, if given.
    pub alg: Option<String>,
    /// `@signature-params` as re-serialized from what was received.
    pub params_value: String,
    /// The signature bytes.
    pub signature: Vec<u8>,
}

impl ReceivedSignature {
    /// Parses the two headers. Component names must be plain (no `;sf`, `;key`, … parameters);
    /// the parameters may be `created`, `expires`, `nonce`, `keyid`, `alg` and `tag`.
    pub fn parse(
        signature_input: Option<&str>,
        signature: Option<&str>,
    ) -> Result<ReceivedSignature, SignatureError> {
        use SignatureError::Malformed;
        let input = signature_input.ok_or(Malformed("Signature-Input is missing"))?;
        let sig = signature.ok_or(Malformed("Signature is missing"))?;
        let inputs: sfv::Dictionary = Parser::new(input)
            .parse()
            .map_err(|_| Malformed("Signature-Input is not an RFC 9651 dictionary"))?;
        let sigs: sfv::Dictionary = Parser::new(sig)
            .parse()
            .map_err(|_| Malformed("Signature is not an RFC 9651 dictionary"))?;
        if inputs.len() != 1 || sigs.len() != 1 {
            return Err(Malformed(
                "Signature-Input and Signature must each hold exactly one signature",
            ));
        }
        let Some((label, ListEntry::InnerList(list))) = inputs.first() else {
            return Err(Malformed("the Signature-Input member is not an inner list"));
        };
        let mut components = Vec::with_capacity(list.items.len());
        for item in &list.items {
            let name = item
                .bare_item
                .as_string()
                .filter(|_| item.params.is_empty())
                .ok_or(Malformed("a covered component is not a plain string"))?
                .as_str()
                .to_string();
            if components.contains(&name) {
                return Err(Malformed("a component is covered twice"));
            }
            components.push(name);
        }
        let mut out = ReceivedSignature {
            components,
            created: None,
            expires: None,
            nonce: None,
            key_id: None,
            alg: None,
            params_value: String::new(),
            signature: Vec::new(),
        };
        for (key, value) in &list.params {
            let int = || value.as_integer().map(i64::from);
            let text = || value.as_string().map(|s| s.as_str().to_string());
            let ok = match key.as_str() {
                "created" => int().map(|n| out.created = Some(n)),
                "expires" => int().map(|n| out.expires = Some(n)),
                "nonce" => text().map(|s| out.nonce = Some(s)),
                "keyid" => text().map(|s| out.key_id = Some(s)),
                "alg" => text().map(|s| out.alg = Some(s)),
                "tag" => text().map(drop),
                _ => return Err(Malformed("Signature-Input has an unknown parameter")),
            };
            ok.ok_or(Malformed("a signature parameter has the wrong type"))?;
        }
        out.params_value = vec![ListEntry::InnerList(list.clone())]
            .serialize()
            .ok_or(Malformed("Signature-Input cannot be serialized"))?;
        out.signature = match sigs.get(label.as_str()) {
            Some(ListEntry::Item(item)) => item
                .bare_item
                .as_byte_sequence()
                .map(<[u8]>::to_vec)
                .ok_or(Malformed("the Signature member is not a byte sequence"))?,
            _ => {
                return Err(Malformed(
                    "Signature has no member with the Signature-Input's label",
                ))
            }
        };
        Ok(out)
    }

    /// Refuses a signature that does not cover every component in `required`.
    pub fn require(&self, required: &[&str]) -> Result<(), SignatureError> {
        match required
            .iter()
            .find(|r| !self.components.iter().any(|c| c == *r))
        {
            Some(missing) => Err(SignatureError::NotCovered(missing.to_string())),
            None => Ok(()),
        }
    }

    /// The signature base, with each covered component's value from `value_of` (derived
    /// components by their `@` name; fields by lowercase name, the field lines' values trimmed
    /// and joined with `", "` as RFC 9421 §2.1 says).
    pub fn base(
        &self,
        value_of: impl Fn(&str) -> Option<String>,
    ) -> Result<String, SignatureError> {
        let values = self
            .components
            .iter()
            .map(|name| {
                value_of(name)
                    .map(|v| (name.as_str(), v))
                    .ok_or_else(|| SignatureError::ComponentAbsent(name.clone()))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let pairs: Vec<(&str, &str)> = values.iter().map(|(n, v)| (*n, v.as_str())).collect();
        Ok(signature_base(&pairs, &self.params_value))
    }

    /// Checks the signature over the base with an Ed25519 key.
    pub fn verify(
        &self,
        key: &PublicKey,
        value_of: impl Fn(&str) -> Option<String>,
    ) -> Result<(), SignatureError> {
        let base = self.base(value_of)?;
        key.verify(base.as_bytes(), &self.signature)
            .map_err(|_| SignatureError::DoesNotVerify)
    }

    /// Refuses a signature created more than [`CLOCK_SKEW_SECS`] from `now` (either way), or
    /// past its `expires`.
    pub fn check_fresh(&self, now: i64) -> Result<(), SignatureError> {
        let created = self
            .created
            .ok_or(SignatureError::Malformed("created is missing"))?;
        let off = created.saturating_sub(now);
        if off.saturating_abs() > CLOCK_SKEW_SECS {
            return Err(SignatureError::Stale(off));
        }
        if let Some(expires) = self.expires {
            if now > expires {
                return Err(SignatureError::Stale(now.saturating_sub(expires)));
            }
        }
        Ok(())
    }
}

/// What a device's key can be at a clinic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeviceKey {
    /// Enrolled and not revoked.
    Active(PublicKey),
    /// Revoked by the administrator.
    Revoked,
    /// Not known.
    Unknown,
}

/// A request as the clinic received it.
#[derive(Debug, Clone, Copy)]
pub struct Incoming<'a> {
    /// The method, as sent (`POST`).
    pub method: &'a str,
    /// The target URI rebuilt from the clinic's configured public origin and the request's path
    /// and query (behind a TLS-terminating proxy the Host the service sees is not the one signed).
    pub target_uri: &'a str,
    /// The header lines, names in any case.
    pub headers: &'a [(&'a str, &'a str)],
    /// The body.
    pub body: &'a [u8],
}

impl Incoming<'_> {
    /// A header's value: every line with that name, trimmed and joined with `", "`.
    pub fn header(&self, name: &str) -> Option<String> {
        let values: Vec<&str> = self
            .headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.trim())
            .collect();
        (!values.is_empty()).then(|| values.join(", "))
    }

    fn component(&self, name: &str) -> Option<String> {
        match name {
            "@method" => Some(self.method.to_string()),
            "@target-uri" => Some(self.target_uri.to_string()),
            n if n.starts_with('@') => None,
            n => self.header(n),
        }
    }
}

/// What a verified request proves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    /// The device (its `keyid`).
    pub device_id: String,
    /// The nonce: the clinic must refuse it if this device used it within the nonce window.
    pub nonce: String,
    /// `created`.
    pub created: i64,
    /// The audit head the device signed, when covered.
    pub audit_head: Option<AuditHead>,
}

/// The clinic's check of a signed request, in the protocol's order: signature headers parse and
/// carry `created`, `nonce`, `keyid` and `alg="ed25519"`; the `required` components are covered;
/// `key_for(keyid)` knows the device and it is not revoked; the signature verifies; the digest
/// matches the body; `created` is within the skew of `now` (unix seconds); the audit head, when
/// covered, is valid. What is left to the caller is the nonce replay check.
pub fn verify_request(
    req: &Incoming<'_>,
    required: &[&str],
    now: i64,
    key_for: impl FnOnce(&str) -> DeviceKey,
) -> Result<Verified, SignatureError> {
    use SignatureError::Malformed;
    let sig = ReceivedSignature::parse(
        req.header("signature-input").as_deref(),
        req.header("signature").as_deref(),
    )?;
    if sig.alg.as_deref() != Some(ALG) {
        return Err(Malformed("alg must be \"ed25519\""));
    }
    let key_id = sig.key_id.clone().ok_or(Malformed("keyid is missing"))?;
    let nonce = sig.nonce.clone().ok_or(Malformed("nonce is missing"))?;
    let created = sig.created.ok_or(Malformed("created is missing"))?;
    if !(16..=64).contains(&nonce.len()) || !nonce.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(Malformed(
            "the nonce must be 16–64 visible ASCII characters",
        ));
    }
    sig.require(required)?;
    let key = match key_for(&key_id) {
        DeviceKey::Active(key) => key,
        DeviceKey::Revoked => return Err(SignatureError::DeviceRevoked),
        DeviceKey::Unknown => return Err(SignatureError::UnknownDevice),
    };
    sig.verify(&key, |name| req.component(name))?;
    if sig.components.iter().any(|c| c == "content-digest") {
        check_content_digest(req.header("content-digest").as_deref(), req.body)?;
    } else {
        // A body the signature does not bind is not believed.
        return Err(SignatureError::NotCovered("content-digest".into()));
    }
    sig.check_fresh(now)?;
    let audit_head = if sig.components.iter().any(|c| c == AUDIT_HEAD_HEADER) {
        let value = req
            .header(AUDIT_HEAD_HEADER)
            .ok_or(SignatureError::AuditHead)?;
        Some(AuditHead::from_header(&value).map_err(|_| SignatureError::AuditHead)?)
    } else {
        None
    };
    Ok(Verified {
        device_id: key_id,
        nonce,
        created,
        audit_head,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::{b64, unb64};

    /// RFC 9421 appendix B.1.4: the test key `test-key-ed25519` (PKCS#8 v1 and SPKI, base64 DER).
    const RFC_PRIVATE: &str = "MC4CAQAwBQYDK2VwBCIEIJ+DYvh6SEqVTm50DFtMDoQikTmiCqirVv9mWG9qfSnF";
    const RFC_PUBLIC: &str = "MCowBQYDK2VwAyEAJrQLj5P/89iXES9+vFgrIy29clF9CC/oPPsw3c5D0bs=";

    fn rfc_key() -> (SigningKey, PublicKey) {
        let der = unb64(RFC_PRIVATE, "key").unwrap();
        let seed: [u8; 32] = der[der.len() - 32..].try_into().unwrap();
        let spki = unb64(RFC_PUBLIC, "key").unwrap();
        let public = PublicKey(spki[spki.len() - 32..].try_into().unwrap());
        (SigningKey::from_seed(&seed), public)
    }

    #[test]
    fn rfc_9421_appendix_b_2_6_is_reproduced_byte_for_byte() {
        let (key, public) = rfc_key();
        assert_eq!(key.public_key(), public);
        let components = [
            ("date", "Tue, 20 Apr 2021 02:07:55 GMT"),
            ("@method", "POST"),
            ("@path", "/foo"),
            ("@authority", "example.com"),
            ("content-type", "application/json"),
            ("content-length", "18"),
        ];
        let names: Vec<&str> = components.iter().map(|(n, _)| *n).collect();
        let params = signature_params(
            &names,
            &[
                ("created", Param::Integer(1618884473)),
                ("keyid", Param::String("test-key-ed25519")),
            ],
        )
        .unwrap();
        assert_eq!(
            params,
            r#"("date" "@method" "@path" "@authority" "content-type" "content-length");created=1618884473;keyid="test-key-ed25519""#
        );
        let base = signature_base(&components, &params);
        assert_eq!(
            base,
            "\"date\": Tue, 20 Apr 2021 02:07:55 GMT\n\"@method\": POST\n\"@path\": /foo\n\
             \"@authority\": example.com\n\"content-type\": application/json\n\
             \"content-length\": 18\n\"@signature-params\": (\"date\" \"@method\" \"@path\" \
             \"@authority\" \"content-type\" \"content-length\");created=1618884473;keyid=\"test-key-ed25519\""
        );
        let signature = b64(&key.sign(base.as_bytes()));
        assert_eq!(
            signature,
            "wqcAqbmYJ2ji2glfAMaRy4gruYYnx2nEFN2HN6jrnDnQCK1u02Gb04v9EDgwUPiu4A0w6vuQv5lIp5WPpBKRCw=="
        );

        // And the verifier, from the RFC's headers as received.
        let received = ReceivedSignature::parse(
            Some(&format!("sig-b26={params}")),
            Some(&format!("sig-b26=:{signature}:")),
        )
        .unwrap();
        assert_eq!(received.params_value, params);
        let value = |n: &str| {
            components
                .iter()
                .find(|(c, _)| *c == n)
                .map(|(_, v)| v.to_string())
        };
        received.verify(&public, value).unwrap();
        let wrong = |n: &str| {
            if n == "@path" {
                Some("/bar".to_string())
            } else {
                value(n)
            }
        };
        assert_eq!(
            received.verify(&public, wrong),
            Err(SignatureError::DoesNotVerify)
        );
    }

    #[test]
    fn rfc_9530_content_digest_example_is_reproduced() {
        assert_eq!(
            content_digest(b"{\"hello\": \"world\"}"),
            "sha-256=:X48E9qOokqqrvdts8nOJRJN3OWDUoyWxBf7kbu9DBPE=:"
        );
        let body = b"{\"hello\": \"world\"}";
        check_content_digest(Some(&content_digest(body)), body).unwrap();
        // Another algorithm beside it is ignored; sha-256 decides.
        let both = format!("sha-512=:AAAA:, {}", content_digest(body));
        check_content_digest(Some(&both), body).unwrap();
        for (header, expected) in [
            (None, "is missing"),
            (Some("sha-512=:AAAA:"), "has no sha-256 member"),
            (Some("sha-256=:AAAA:"), "does not match the body"),
            (Some("sha-256=\"x\""), "sha-256 is not a byte sequence"),
            (Some("(((("), "is not an RFC 9651 dictionary"),
        ] {
            assert_eq!(
                check_content_digest(header, body),
                Err(SignatureError::Digest(expected))
            );
        }
    }

    struct Device {
        key: SigningKey,
    }

    const URI: &str = "https://clinic.example:8443/v1/handovers";
    const NOW: i64 = 1_796_119_200;

    impl Device {
        fn new() -> Device {
            Device {
                key: SigningKey::generate().unwrap(),
            }
        }

        fn sign(&self, body: &[u8], created: i64, nonce: &str) -> Vec<(&'static str, String)> {
            let head = AuditHead {
                seq: 3,
                sha256: sha256(b"head"),
            };
            let mut h = sign_request(&self.key, "POST", URI, body, Some(&head), created, nonce)
                .unwrap()
                .headers;
            h.push(("content-type", super::super::JSON.to_string()));
            h
        }

        fn lookup(&self) -> impl FnOnce(&str) -> DeviceKey + '_ {
            move |id| {
                if id == super::super::device_id(&self.key.public_key()) {
                    DeviceKey::Active(self.key.public_key())
                } else {
                    DeviceKey::Unknown
                }
            }
        }
    }

    fn check(
        headers: &[(&'static str, String)],
        body: &[u8],
        uri: &str,
        now: i64,
        key_for: impl FnOnce(&str) -> DeviceKey,
    ) -> Result<Verified, SignatureError> {
        let pairs: Vec<(&str, &str)> = headers.iter().map(|(n, v)| (*n, v.as_str())).collect();
        let req = Incoming {
            method: "POST",
            target_uri: uri,
            headers: &pairs,
            body,
        };
        verify_request(&req, &DELIVERY_COMPONENTS, now, key_for)
    }

    #[test]
    fn a_signed_delivery_verifies_and_yields_the_device_nonce_and_audit_head() {
        let device = Device::new();
        let nonce = new_nonce().unwrap();
        assert_eq!(nonce.len(), 22);
        let body = br#"{"schema":"lotsa.envelope/1"}"#;
        let headers = device.sign(body, NOW, &nonce);
        let v = check(&headers, body, URI, NOW + 10, device.lookup()).unwrap();
        assert_eq!(
            v.device_id,
            super::super::device_id(&device.key.public_key())
        );
        assert_eq!(v.nonce, nonce);
        assert_eq!(v.created, NOW);
        assert_eq!(v.audit_head.unwrap().seq, 3);
    }

    #[test]
    fn every_tampering_is_refused_with_its_own_reason() {
        let device = Device::new();
        let nonce = new_nonce().unwrap();
        let body = br#"{"schema":"lotsa.envelope/1"}"#;
        let headers = device.sign(body, NOW, &nonce);
        let set = |name: &str, value: &str| -> Vec<(&'static str, String)> {
            headers
                .iter()
                .map(|(n, v)| {
                    (
                        *n,
                        if *n == name {
                            value.to_string()
                        } else {
                            v.clone()
                        },
                    )
                })
                .collect()
        };
        let without = |name: &str| -> Vec<(&'static str, String)> {
            headers
                .iter()
                .filter(|(n, _)| *n != name)
                .cloned()
                .collect()
        };
        // Another body with the original digest: the digest check catches it.
        assert_eq!(
            check(&headers, b"{}", URI, NOW, device.lookup()).unwrap_err(),
            SignatureError::Digest("does not match the body")
        );
        // Another body with its own digest: the signature no longer verifies.
        let forged = set("content-digest", &content_digest(b"{}"));
        assert_eq!(
            check(&forged, b"{}", URI, NOW, device.lookup()).unwrap_err(),
            SignatureError::DoesNotVerify
        );
        // Another target (a request replayed to another endpoint).
        assert_eq!(
            check(
                &headers,
                body,
                "https://clinic.example:8443/v1/withdrawals",
                NOW,
                device.lookup()
            )
            .unwrap_err(),
            SignatureError::DoesNotVerify
        );
        // Another audit head.
        let head = AuditHead {
            seq: 4,
            sha256: sha256(b"head"),
        }
        .to_header();
        assert_eq!(
            check(
                &set(AUDIT_HEAD_HEADER, &head),
                body,
                URI,
                NOW,
                device.lookup()
            )
            .unwrap_err(),
            SignatureError::DoesNotVerify
        );
        assert_eq!(
            check(&without(AUDIT_HEAD_HEADER), body, URI, NOW, device.lookup()).unwrap_err(),
            SignatureError::ComponentAbsent(AUDIT_HEAD_HEADER.into())
        );
        // Stale either way.
        assert_eq!(
            check(
                &headers,
                body,
                URI,
                NOW + CLOCK_SKEW_SECS + 1,
                device.lookup()
            )
            .unwrap_err(),
            SignatureError::Stale(-(CLOCK_SKEW_SECS + 1))
        );
        assert!(check(&headers, body, URI, NOW - CLOCK_SKEW_SECS, device.lookup()).is_ok());
        assert_eq!(
            check(
                &headers,
                body,
                URI,
                NOW - CLOCK_SKEW_SECS - 1,
                device.lookup()
            )
            .unwrap_err(),
            SignatureError::Stale(CLOCK_SKEW_SECS + 1)
        );
        // Unknown and revoked devices.
        assert_eq!(
            check(&headers, body, URI, NOW, |_| DeviceKey::Unknown).unwrap_err(),
            SignatureError::UnknownDevice
        );
        assert_eq!(
            check(&headers, body, URI, NOW, |_| DeviceKey::Revoked).unwrap_err(),
            SignatureError::DeviceRevoked
        );
        // Another device's key under this keyid.
        let other = SigningKey::generate().unwrap().public_key();
        assert_eq!(
            check(&headers, body, URI, NOW, |_| DeviceKey::Active(other)).unwrap_err(),
            SignatureError::DoesNotVerify
        );
        // No signature at all.
        assert!(matches!(
            check(&without("signature"), body, URI, NOW, device.lookup()).unwrap_err(),
            SignatureError::Malformed(_)
        ));
        // Every one of these is a 401 except the digest (400) and the audit head (400).
        assert_eq!(SignatureError::DoesNotVerify.problem_type().status(), 401);
        assert_eq!(SignatureError::Digest("x").problem_type().status(), 400);
    }

    #[test]
    fn a_signature_covering_too_little_or_with_odd_parameters_is_refused() {
        let device = Device::new();
        let body = b"{}";
        let digest = content_digest(body);
        let key_id = super::super::device_id(&device.key.public_key());
        let sign_with = |names: &[&str], params: &[(&str, Param<'_>)]| {
            let p = signature_params(names, params).unwrap();
            let values: Vec<(&str, &str)> = names
                .iter()
                .map(|n| match *n {
                    "@method" => (*n, "POST"),
                    "@target-uri" => (*n, URI),
                    _ => (*n, digest.as_str()),
                })
                .collect();
            let sig = b64(&device.key.sign(signature_base(&values, &p).as_bytes()));
            vec![
                ("content-digest", digest.clone()),
                ("signature-input", format!("x={p}")),
                ("signature", format!("x=:{sig}:")),
            ]
        };
        let full = [
            ("created", Param::Integer(NOW)),
            ("nonce", Param::String("0123456789abcdef")),
            ("keyid", Param::String(&key_id)),
            ("alg", Param::String("ed25519")),
        ];
        let pairs = |h: &Vec<(&'static str, String)>| -> Result<Verified, SignatureError> {
            let p: Vec<(&str, &str)> = h.iter().map(|(n, v)| (*n, v.as_str())).collect();
            verify_request(
                &Incoming {
                    method: "POST",
                    target_uri: URI,
                    headers: &p,
                    body,
                },
                &ENROLMENT_COMPONENTS,
                NOW,
                device.lookup(),
            )
        };
        // Any label, and the enrolment set of components: fine.
        pairs(&sign_with(&ENROLMENT_COMPONENTS, &full)).unwrap();
        // Parameters in another order (as other libraries emit them): still fine, because the
        // verifier rebuilds @signature-params from what it received.
        let reordered = [full[0], full[2], full[3], full[1]];
        pairs(&sign_with(&ENROLMENT_COMPONENTS, &reordered)).unwrap();
        assert_eq!(
            pairs(&sign_with(&["@method", "content-digest"], &full)).unwrap_err(),
            SignatureError::NotCovered("@target-uri".into())
        );
        for (params, _why) in [
            (&full[..3], "no alg"),
            (
                &[
                    full[0],
                    full[1],
                    full[2],
                    ("alg", Param::String("rsa-pss-sha512")),
                ][..],
                "alg",
            ),
            (&[full[1], full[2], full[3]][..], "no created"),
            (&[full[0], full[2], full[3]][..], "no nonce"),
            (
                &[full[0], ("nonce", Param::String("short")), full[2], full[3]][..],
                "nonce",
            ),
            (
                &[
                    full[0],
                    full[1],
                    full[2],
                    full[3],
                    ("context", Param::String("x")),
                ][..],
                "unknown",
            ),
        ] {
            assert!(
                matches!(
                    pairs(&sign_with(&ENROLMENT_COMPONENTS, params)),
                    Err(SignatureError::Malformed(_))
                ),
                "{_why}"
            );
        }
        // Expired by its own `expires`.
        let mut expiring = full.to_vec();
        expiring.push(("expires", Param::Integer(NOW - 1)));
        assert_eq!(
            pairs(&sign_with(&ENROLMENT_COMPONENTS, &expiring)).unwrap_err(),
            SignatureError::Stale(1)
        );
        // Two signatures at once are refused rather than half-checked.
        let mut two = sign_with(&ENROLMENT_COMPONENTS, &full);
        two[1].1 = format!("{}, y={}", two[1].1, two[1].1.trim_start_matches("x="));
        assert!(matches!(pairs(&two), Err(SignatureError::Malformed(_))));
    }
}
