//! `lotsa program`: the program administrator's tools — make a signing key, sign a program set,
//! verify a signed bundle as an app would.

use crate::out::{self, Ctx, Failure};
use crate::CmdResult;
use clap::Subcommand;
use lotsa_core::clock::{Clock, SystemClock};
use lotsa_core::crypto::{self, PublicKey, SigningKey};
use lotsa_core::program::{self, Bundle, BundleError, ProgramSet};
use lotsa_core::text::{printable, Lang};
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
        /// Replace key files that already exist (the old secret key is lost for good).
        #[arg(long)]
        force: bool,
    },
    /// Sign an unsigned program set (checked first) into a bundle.
    Sign {
        /// The unsigned program set (JSON, see schemas/program-bundle.schema.json).
        unsigned: PathBuf,
        /// The secret key file from `keygen`.
        #[arg(long)]
        key: PathBuf,
        /// Where to write the signed bundle (never over an existing file without --force).
        #[arg(short, long)]
        out: PathBuf,
        /// Replace the output file if it exists.
        #[arg(long)]
        force: bool,
        /// A clinic's clinic.json (from `lotsa clinic init`): it replaces the `clinic` of every
        /// program that names its endpoint. May be given once per clinic.
        #[arg(long)]
        clinic: Vec<PathBuf>,
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
        ProgramCommand::Keygen { out, force } => keygen(ctx, &out, force),
        ProgramCommand::Sign {
            unsigned,
            key,
            out,
            force,
            clinic,
        } => sign(ctx, &unsigned, &key, &out, force, &clinic),
        ProgramCommand::Verify { bundle, trust } => {
            let b = load_bundle(ctx, &bundle, &trust)?;
            print_bundle(ctx, &b)
        }
    }
}

/// A path as it is shown in a message (a path is not personal data; its control characters are
/// escaped all the same).
fn shown(path: &Path) -> String {
    printable(&path.display().to_string()).into_owned()
}

/// Refuses an existing file (without --force), naming it.
fn file_exists(ctx: &Ctx, path: &Path) -> Failure {
    let p = shown(path);
    Failure::other(
        "file_exists",
        ctx.lang.pick(
            format!("{p} finns redan; den skrivs inte över utan --force"),
            format!("{p} exists; it is not overwritten without --force"),
        ),
    )
    .on_field("out")
}

fn cannot_write(ctx: &Ctx, path: &Path, e: &std::io::Error) -> Failure {
    let p = shown(path);
    Failure::other(
        "file",
        ctx.lang.pick(
            format!("{p} går inte att skriva: {}", out::io_reason(e, Lang::Sv)),
            format!("cannot write {p}: {}", out::io_reason(e, Lang::En)),
        ),
    )
}

/// Writes a new file, readable by its owner only when `secret` (mode 0600 on unix). Without
/// `force` an existing file is refused (`file_exists`) and never touched: the file is created
/// with `create_new`, so not even a file made a moment ago is overwritten. With `force` the text
/// goes to a fresh file beside it that then replaces it in one rename.
fn write_new(ctx: &Ctx, path: &Path, text: &str, secret: bool, force: bool) -> CmdResult {
    use std::io::Write;
    let open = |p: &Path| {
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(if secret { 0o600 } else { 0o644 });
        }
        options.open(p)
    };
    let write = |p: &Path| -> std::io::Result<()> {
        let mut f = open(p)?;
        f.write_all(text.as_bytes())?;
        f.sync_all()
    };
    if !force {
        return write(path).map_err(|e| {
            if e.kind() == std::io::ErrorKind::AlreadyExists {
                file_exists(ctx, path)
            } else {
                cannot_write(ctx, path, &e)
            }
        });
    }
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let temp = path.with_file_name(format!(".{name}.{}.tmp", std::process::id()));
    let _ = std::fs::remove_file(&temp);
    let result = write(&temp).and_then(|()| std::fs::rename(&temp, path));
    if let Err(e) = result {
        let _ = std::fs::remove_file(&temp);
        return Err(cannot_write(ctx, path, &e));
    }
    Ok(())
}

fn keygen(ctx: &Ctx, out: &Path, force: bool) -> CmdResult {
    let lang = ctx.lang;
    let key = SigningKey::generate().map_err(|_| {
        Failure::other(
            "crypto",
            lang.pick(
                "nyckeln gick inte att skapa: systemets slumptalskälla svarar inte",
                "cannot make a key: the system's random number generator failed",
            ),
        )
    })?;
    let secret = out.with_extension("key");
    let public = out.with_extension("pub");
    if !force {
        // Neither file is written if either exists.
        if let Some(existing) = [&secret, &public].into_iter().find(|p| p.exists()) {
            return Err(file_exists(ctx, existing));
        }
    }
    let secret_text = format!("{SECRET_HEADER}\n{}\n", crypto::b64(key.pkcs8()));
    write_new(ctx, &secret, &secret_text, true, force)?;
    let public_text = format!("{}\n", key.public_key_b64());
    if let Err(f) = write_new(ctx, &public, &public_text, false, force) {
        if !force {
            // Made a moment ago by this run: a secret key without its public half is no use.
            let _ = std::fs::remove_file(&secret);
        }
        return Err(f);
    }
    if ctx.json {
        ctx.print_json(&json!({
            "public_key": key.public_key_b64(),
            "key_id": key.public_key().key_id(),
            "secret_key_file": secret,
            "public_key_file": public,
        }))
    } else {
        ctx.line(lang.pick(
            format!(
                "hemlig nyckel: {} (förvara den offline; den avgör vart remisser går)",
                secret.display()
            ),
            format!(
                "secret key: {} (keep it offline; it decides where referrals go)",
                secret.display()
            ),
        ))?;
        ctx.line(format!(
            "{} {} = {}",
            lang.pick("publik nyckel:", "public key:"),
            public.display(),
            key.public_key_b64()
        ))?;
        ctx.line(format!(
            "{} {}",
            lang.pick("nyckel-id:    ", "key id:     "),
            key.public_key().key_id()
        ))
    }
}

/// Reads a secret key file written by `keygen`.
pub fn read_secret_key(ctx: &Ctx, path: &Path) -> Result<SigningKey, Failure> {
    let text = ctx.read_file(path).map_err(|f| f.on_field("key"))?;
    let not_a_key = || {
        let p = shown(path);
        Failure::other(
            "key",
            ctx.lang.pick(
                format!("{p} är ingen hemlig nyckel från `lotsa program keygen`"),
                format!("{p} is not a secret key file from `lotsa program keygen`"),
            ),
        )
        .on_field("key")
    };
    let mut lines = text.lines();
    if lines.next().map(str::trim) != Some(SECRET_HEADER) {
        return Err(not_a_key());
    }
    let bytes = crypto::unb64(lines.next().unwrap_or(""), "secret key").map_err(|_| not_a_key())?;
    SigningKey::from_pkcs8(&bytes).map_err(|_| not_a_key())
}

/// Merges one clinic.json into the set, refusing a file that is not one or whose endpoint no
/// program names.
fn merge_clinic(ctx: &Ctx, set: &mut ProgramSet, path: &Path) -> CmdResult {
    let p = shown(path);
    let text = ctx.read_file(path).map_err(|f| f.on_field("clinic"))?;
    let clinic: program::Clinic = serde_json::from_str(&text).map_err(|_| {
        Failure::other(
            "clinic",
            ctx.lang.pick(
                format!("{p} är ingen clinic.json från `lotsa clinic init`"),
                format!("{p} is not a clinic.json from `lotsa clinic init`"),
            ),
        )
        .on_field("clinic")
    })?;
    if set.merge_clinic(&clinic) == 0 {
        let e = printable(&clinic.endpoint).into_owned();
        return Err(Failure::other(
            "clinic",
            ctx.lang.pick(
                format!("inget program i uppsättningen har mottagningens adress {e} ({p})"),
                format!("no program in the set names the endpoint {e} of {p}"),
            ),
        )
        .on_field("clinic"));
    }
    Ok(())
}

/// A trust key given as a file or as base64.
pub fn read_trust(ctx: &Ctx, trust: &str) -> Result<PublicKey, Failure> {
    let path = Path::new(trust);
    let text = if path.exists() {
        ctx.read_file(path).map_err(|f| f.on_field("trust"))?
    } else {
        trust.to_string()
    };
    // The decoder's own words would name the offending character: they are left out.
    PublicKey::from_b64(text.trim()).map_err(|_| {
        let err = BundleError::Key {
            reason: "the trust key is neither a key file nor an Ed25519 public key in base64"
                .into(),
        };
        ctx.fail(&err).on_field("trust")
    })
}

/// Loads and verifies a signed bundle, as the app does at start.
pub fn load_bundle(ctx: &Ctx, path: &Path, trust: &str) -> Result<Bundle, Failure> {
    let key = read_trust(ctx, trust)?;
    let text = ctx.read_file(path).map_err(|f| f.on_field("bundle"))?;
    program::verify(&text, &key, SystemClock.now()).map_err(|e| ctx.fail(&e))
}

fn sign(
    ctx: &Ctx,
    unsigned: &Path,
    key: &Path,
    out_path: &Path,
    force: bool,
    clinics: &[PathBuf],
) -> CmdResult {
    if !force && out_path.exists() {
        // Before anything else: a mistyped -o never costs the file it names.
        return Err(file_exists(ctx, out_path));
    }
    let key = read_secret_key(ctx, key)?;
    let text = ctx
        .read_file(unsigned)
        .map_err(|f| f.on_field("unsigned"))?;
    let mut set = ProgramSet::from_json(&text).map_err(|e| ctx.fail(&e))?;
    for path in clinics {
        merge_clinic(ctx, &mut set, path)?;
    }
    let signed = set.sign(&key).map_err(|e| ctx.fail(&e))?;
    write_new(ctx, out_path, &signed, false, force)?;
    if ctx.json {
        ctx.print_json(&json!({
            "bundle": out_path,
            "bundle_id": set.bundle_id,
            "key_id": key.public_key().key_id(),
            "programs": set.programs.iter().map(|p| &p.id).collect::<Vec<_>>(),
        }))
    } else {
        let (id, n, key_id, to) = (
            &set.bundle_id,
            set.programs.len(),
            key.public_key().key_id(),
            out_path.display(),
        );
        ctx.line(ctx.lang.pick(
            format!("{id} ({n} program) signerad med nyckeln {key_id} → {to}"),
            format!("signed {id} ({n} programs) with key {key_id} → {to}"),
        ))
    }
}

fn print_bundle(ctx: &Ctx, b: &Bundle) -> CmdResult {
    let set = b.set();
    let lang = ctx.lang;
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
        return ctx.print_json(&json!({
            "valid": true,
            "bundle_id": set.bundle_id,
            "example": set.example,
            "signer_key_id": b.signer().key_id(),
            "expires_at": set.expires_at.to_rfc3339(),
            "payload_sha256": b.payload_sha256(),
            "programs": programs,
        }));
    }
    let (id, signer, until) = (
        &set.bundle_id,
        b.signer().key_id(),
        set.expires_at.format("%Y-%m-%d"),
    );
    let example = if set.example {
        lang.pick(" (EXEMPELDATA)", " (EXAMPLE DATA)")
    } else {
        ""
    };
    ctx.line(lang.pick(
        format!("programfil {id} signerad av {signer} — giltig till {until}{example}"),
        format!("bundle {id} signed by {signer} — valid until {until}{example}"),
    ))?;
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
    ctx.table(
        &lang.pick(
            ["PROGRAM", "NAMN", "KOMMUNKODER", "ÅLDER", "MOTTAGNING"],
            ["PROGRAM", "NAME", "KOMMUNKODER", "AGE", "CLINIC"],
        ),
        &rows,
    )
}
