//! `lotsa program`: the program administrator's tools — make a signing key, sign a program set,
//! verify a signed bundle as an app would.

use crate::out::{self, Ctx, Failure};
use crate::CmdResult;
use clap::Subcommand;
use lotsa_core::clock::{Clock, SystemClock};
use lotsa_core::crypto::{self, PublicKey, SigningKey};
use lotsa_core::program::{self, Bundle, BundleError, ProgramSet};
use lotsa_core::text::printable;
use serde_json::json;
use std::path::{Path, PathBuf};

/// First line of a secret key file, so nobody mistakes it for something harmless.
const SECRET_HEADER: &str = "lotsa-ed25519-pkcs8-v1";

#[derive(Subcommand)]
pub enum ProgramCommand {
    /// Make an Ed25519 key pair for signing program bundles: OUT.key (secret) and OUT.pub.
    Keygen {
        /// Path prefix of the two files.
        #[arg(short, long, default_value = "program-admin")]
        out: PathBuf,
    },
    /// Sign an unsigned program set (checked first) into a bundle.
    Sign {
        /// The unsigned program set (JSON, see schemas/program-bundle.schema.json).
        unsigned: PathBuf,
        /// The secret key file from `keygen`.
        #[arg(long)]
        key: PathBuf,
        /// Where to write the signed bundle.
        #[arg(short, long)]
        out: PathBuf,
    },
    /// Verify a signed bundle against the administrator's public key, and list its programs.
    Verify {
        /// The signed bundle.
        bundle: PathBuf,
        /// The administrator's public key: a .pub file or the base64 key itself.
        #[arg(long)]
        trust: String,
    },
}

pub fn run(ctx: &Ctx, cmd: ProgramCommand) -> CmdResult {
    match cmd {
        ProgramCommand::Keygen { out } => keygen(ctx, &out),
        ProgramCommand::Sign { unsigned, key, out } => sign(ctx, &unsigned, &key, &out),
        ProgramCommand::Verify { bundle, trust } => {
            let b = load_bundle(ctx, &bundle, &trust)?;
            print_bundle(ctx, &b);
            Ok(())
        }
    }
}

fn keygen(ctx: &Ctx, out: &Path) -> CmdResult {
    let key = SigningKey::generate().map_err(|e| Failure::other("crypto", e.to_string()))?;
    let secret = out.with_extension("key");
    let public = out.with_extension("pub");
    for path in [&secret, &public] {
        if path.exists() {
            return Err(Failure::other(
                "exists",
                format!(
                    "{} exists; refusing to overwrite a key file",
                    path.display()
                ),
            ));
        }
    }
    write_secret(
        &secret,
        &format!("{SECRET_HEADER}\n{}\n", crypto::b64(key.pkcs8())),
    )?;
    std::fs::write(&public, format!("{}\n", key.public_key_b64()))
        .map_err(|e| Failure::other("file", format!("cannot write {}: {e}", public.display())))?;
    if ctx.json {
        ctx.print_json(&json!({
            "public_key": key.public_key_b64(),
            "key_id": key.public_key().key_id(),
            "secret_key_file": secret,
            "public_key_file": public,
        }));
    } else {
        println!(
            "secret key: {} (keep it offline; it decides where referrals go)",
            secret.display()
        );
        println!(
            "public key: {} = {}",
            public.display(),
            key.public_key_b64()
        );
        println!("key id:     {}", key.public_key().key_id());
    }
    Ok(())
}

fn write_secret(path: &Path, text: &str) -> Result<(), Failure> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut f = options
        .open(path)
        .map_err(|e| Failure::other("file", format!("cannot create {}: {e}", path.display())))?;
    f.write_all(text.as_bytes())
        .map_err(|e| Failure::other("file", format!("cannot write {}: {e}", path.display())))
}

/// Reads a secret key file written by `keygen`.
pub fn read_secret_key(path: &Path) -> Result<SigningKey, Failure> {
    let text = out::read_file(path)?;
    let mut lines = text.lines();
    if lines.next().map(str::trim) != Some(SECRET_HEADER) {
        return Err(Failure::other(
            "key",
            format!(
                "{} is not a secret key file from `lotsa program keygen`",
                path.display()
            ),
        ));
    }
    let bytes = crypto::unb64(lines.next().unwrap_or(""), "secret key")
        .map_err(|e| Failure::other("key", e.to_string()))?;
    SigningKey::from_pkcs8(&bytes).map_err(|e| Failure::other("key", e.to_string()))
}

/// A trust key given as a file or as base64.
pub fn read_trust(ctx: &Ctx, trust: &str) -> Result<PublicKey, Failure> {
    let path = Path::new(trust);
    let text = if path.exists() {
        out::read_file(path)?
    } else {
        trust.to_string()
    };
    PublicKey::from_b64(text.trim()).map_err(|e| {
        let err = BundleError::Key {
            reason: format!("the trust key is not an Ed25519 public key ({e})"),
        };
        ctx.fail(&err).on_field("trust")
    })
}

/// Loads and verifies a signed bundle, as the app does at start.
pub fn load_bundle(ctx: &Ctx, path: &Path, trust: &str) -> Result<Bundle, Failure> {
    let key = read_trust(ctx, trust)?;
    let text = out::read_file(path)?;
    program::verify(&text, &key, SystemClock.now()).map_err(|e| ctx.fail(&e))
}

fn sign(ctx: &Ctx, unsigned: &Path, key: &Path, out_path: &Path) -> CmdResult {
    let key = read_secret_key(key)?;
    let set = ProgramSet::from_json(&out::read_file(unsigned)?).map_err(|e| ctx.fail(&e))?;
    let signed = set.sign(&key).map_err(|e| ctx.fail(&e))?;
    std::fs::write(out_path, signed)
        .map_err(|e| Failure::other("file", format!("cannot write {}: {e}", out_path.display())))?;
    if ctx.json {
        ctx.print_json(&json!({
            "bundle": out_path,
            "bundle_id": set.bundle_id,
            "key_id": key.public_key().key_id(),
            "programs": set.programs.iter().map(|p| &p.id).collect::<Vec<_>>(),
        }));
    } else {
        println!(
            "signed {} ({} programs) with key {} → {}",
            printable(&set.bundle_id),
            set.programs.len(),
            key.public_key().key_id(),
            out_path.display()
        );
    }
    Ok(())
}

fn print_bundle(ctx: &Ctx, b: &Bundle) {
    let set = b.set();
    if ctx.json {
        let programs: Vec<_> = b
            .programs()
            .iter()
            .map(|p| {
                json!({
                    "id": p.id,
                    "name": p.name,
                    "kommunkoder": p.eligibility.kommunkoder,
                    "minimum_age": p.eligibility.minimum_age,
                    "clinic": p.clinic.name,
                    "endpoint": p.clinic.endpoint,
                })
            })
            .collect();
        ctx.print_json(&json!({
            "valid": true,
            "bundle_id": set.bundle_id,
            "example": set.example,
            "signer_key_id": b.signer().key_id(),
            "expires_at": set.expires_at.to_rfc3339(),
            "payload_sha256": b.payload_sha256(),
            "programs": programs,
        }));
        return;
    }
    println!(
        "bundle {} signed by {} — valid until {}{}",
        printable(&set.bundle_id),
        b.signer().key_id(),
        set.expires_at.format("%Y-%m-%d"),
        if set.example { " (EXAMPLE DATA)" } else { "" }
    );
    let rows: Vec<_> = b
        .programs()
        .iter()
        .map(|p| {
            vec![
                p.id.clone(),
                p.name.clone(),
                p.eligibility.kommunkoder.join(" "),
                format!("{}+", p.eligibility.minimum_age),
                p.clinic.name.clone(),
            ]
        })
        .collect();
    let _ = out::table(
        &mut std::io::stdout(),
        &["PROGRAM", "NAME", "KOMMUNKODER", "AGE", "CLINIC"],
        &rows,
    );
}
