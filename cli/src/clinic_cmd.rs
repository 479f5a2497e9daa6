//! `lotsa clinic`: the clinic administrator's tools. Each arm translates arguments and output;
//! the work is in `lotsa-clinic` (directory, service, storage, backup). The administration
//! speaks English: its readers are IT staff and its messages name files and settings.

use crate::out::{Ctx, Failure};
use crate::program_cmd::read_trust;
use crate::CmdResult;
use chrono::{DateTime, Duration, SecondsFormat, Utc};
use clap::{ArgGroup, Subcommand};
use lotsa_clinic::home::{Home, HomeError, InitOptions, ProvidedTls};
use lotsa_clinic::intake::{code_hash, new_enrolment_code, DeviceRate};
use lotsa_clinic::serve::prepare;
use lotsa_clinic::server::{start, Limits};
use lotsa_clinic::storage::Storage;
use lotsa_clinic::{backup, export, serve, staff};
use serde_json::json;
use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

/// Where the passphrase of a backup comes from when no file is named.
const PASSPHRASE_ENV: &str = "LOTSA_BACKUP_PASSPHRASE";

#[derive(Subcommand)]
pub enum ClinicCommand {
    /// Make a new clinic: HPKE and receipt keys, a TLS certificate (a development CA unless IT
    /// provides one) and clinic.json, all owner-only.
    Init {
        /// The clinic's directory (created; must be empty).
        #[arg(long)]
        dir: PathBuf,
        /// The clinic's name, as officers see it.
        #[arg(long)]
        name: String,
        /// The base URL devices use: `https://host[:port][/path]`.
        #[arg(long)]
        endpoint: String,
        /// IT's certificate chain (PEM) instead of a development CA; needs --tls-key and --tls-ca.
        #[arg(long, requires_all = ["tls_key", "tls_ca"])]
        tls_cert: Option<PathBuf>,
        /// The private key of --tls-cert (PEM).
        #[arg(long, requires = "tls_cert")]
        tls_key: Option<PathBuf>,
        /// The CA devices trust for --tls-cert (PEM).
        #[arg(long, requires = "tls_cert")]
        tls_ca: Option<PathBuf>,
    },
    /// Run the intake service until SIGINT or SIGTERM.
    Serve {
        /// The clinic's directory.
        #[arg(long)]
        dir: PathBuf,
        /// The signed program bundle (from `lotsa program sign --clinic …/clinic.json`).
        #[arg(long)]
        bundle: PathBuf,
        /// The program administrator's public key: a .pub file or the base64 key.
        #[arg(long)]
        trust: String,
        /// Address to listen on (loopback unless told otherwise).
        #[arg(long, default_value = "127.0.0.1:8443")]
        bind: SocketAddr,
        /// Requests in progress at once before 503.
        #[arg(long, default_value_t = Limits::default().max_in_flight)]
        max_in_flight: usize,
        /// Requests per minute one device may make after its burst.
        #[arg(long, default_value_t = DeviceRate::default().per_minute)]
        device_rate: u32,
        /// A program to run when referrals are new, due soon or overdue (counts only: in
        /// LOTSA_NEW, LOTSA_DUE_SOON, LOTSA_OVERDUE and as JSON on stdin).
        #[arg(long)]
        notify_command: Option<PathBuf>,
        /// How often the counts are taken for --notify-command, in minutes.
        #[arg(long, default_value_t = 15, value_parser = clap::value_parser!(u64).range(1..=1440))]
        notify_every_minutes: u64,
        /// Years the access log is kept (it outlives the referrals it names).
        #[arg(long, default_value_t = lotsa_clinic::worklist::ACCESS_LOG_YEARS,
              value_parser = clap::value_parser!(u32).range(1..=50))]
        access_log_years: u32,
        /// Serve the staff pages on this address only (not on the devices' listener), with the
        /// certificate given by --staff-tls-cert and --staff-tls-key.
        #[arg(long, requires_all = ["staff_tls_cert", "staff_tls_key"])]
        staff_bind: Option<SocketAddr>,
        /// The staff listener's certificate chain (PEM), one that staff browsers trust.
        #[arg(long, requires = "staff_bind")]
        staff_tls_cert: Option<PathBuf>,
        /// The private key of --staff-tls-cert (PEM).
        #[arg(long, requires = "staff_bind")]
        staff_tls_key: Option<PathBuf>,
    },
    /// Issue a one-time enrolment code for one phone (shown once).
    EnrolCode {
        /// The clinic's directory.
        #[arg(long)]
        dir: PathBuf,
        /// Hours the code stays valid.
        #[arg(long, default_value_t = 24, value_parser = clap::value_parser!(u32).range(1..=168))]
        valid_hours: u32,
    },
    /// List enrolled devices, with what each last said waits on it; with the served bundle, a
    /// phone silent on waiting referrals for longer than the shortest callback promise is
    /// flagged (without it, 24 hours is the promise).
    Devices {
        /// The clinic's directory.
        #[arg(long)]
        dir: PathBuf,
        /// The signed program bundle the service serves.
        #[arg(long, requires = "trust")]
        bundle: Option<PathBuf>,
        /// The program administrator's public key: a .pub file or the base64 key.
        #[arg(long, requires = "bundle")]
        trust: Option<String>,
    },
    /// Revoke a device: its next request is refused (also on the running service).
    Revoke {
        /// The clinic's directory.
        #[arg(long)]
        dir: PathBuf,
        /// The device id (from `devices`).
        device: String,
    },
    /// Staff accounts for the worklist.
    Staff {
        #[command(subcommand)]
        command: StaffCommand,
    },
    /// Who looked at or acted on referrals: by referral, staff member or the person's phone
    /// number (matched by its keyed hash; the number itself is never stored).
    AccessLog {
        /// The clinic's directory.
        #[arg(long)]
        dir: PathBuf,
        /// One referral's handover id.
        #[arg(long)]
        referral: Option<String>,
        /// Who: a staff member's login name, `console`, or `api:NAME` for an API client.
        #[arg(long)]
        staff: Option<String>,
        /// The person's phone number, in any form people type it.
        #[arg(long)]
        phone: Option<String>,
    },
    /// The outcome figures per program and ISO week (cells from 1 to 4 suppressed).
    Outcomes {
        /// The clinic's directory.
        #[arg(long)]
        dir: PathBuf,
        /// One program.
        #[arg(long)]
        program: Option<String>,
        /// The first week, as 2026-W49.
        #[arg(long)]
        from: Option<String>,
        /// The last week, as 2026-W52.
        #[arg(long)]
        to: Option<String>,
        /// Comma-separated values with a header line, for a spreadsheet.
        #[arg(long)]
        csv: bool,
    },
    /// One referral as a FHIR R4 Bundle (Patient, Consent, ServiceRequest, Task), for a care
    /// record system; only for a program that allows it (`fhir_export`). Logged in the access
    /// log as `console`.
    Export {
        /// The clinic's directory.
        #[arg(long)]
        dir: PathBuf,
        /// The referral's handover id.
        handover: String,
        /// As FHIR R4 JSON (the one format there is).
        #[arg(long, required = true)]
        fhir: bool,
        /// The signed program bundle the service serves (it says which programs allow export).
        #[arg(long)]
        bundle: PathBuf,
        /// The program administrator's public key: a .pub file or the base64 key.
        #[arg(long)]
        trust: String,
        /// Write the bundle to this new owner-only file instead of standard output.
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// The systems allowed to fetch FHIR exports over HTTPS, each with an API token of its own.
    ApiClient {
        #[command(subcommand)]
        command: ApiClientCommand,
    },
    /// Add a new HPKE key for sealing; old keys stay to open what was sealed to them.
    RotateKey {
        /// The clinic's directory.
        #[arg(long)]
        dir: PathBuf,
    },
    /// Move the server to its spare TLS key with a new certificate from the development CA
    /// (phones already trust that key's pin) and make a new spare; also how a certificate is
    /// renewed before it expires. Sign the bundle again with --clinic clinic.json and restart.
    RotateTls {
        /// The clinic's directory.
        #[arg(long)]
        dir: PathBuf,
        /// The certificate chain (PEM, leaf first) IT issued for the request `tls-request`
        /// printed; without it the development CA issues one.
        #[arg(long)]
        cert: Option<PathBuf>,
    },
    /// Print a certificate signing request (PKCS#10, PEM) for the spare TLS key, naming the
    /// endpoint's host: give it to IT, then run rotate-tls --cert with what IT issues.
    TlsRequest {
        /// The clinic's directory.
        #[arg(long)]
        dir: PathBuf,
    },
    /// Write an encrypted backup of the database and every key (passphrase from
    /// --passphrase-file or LOTSA_BACKUP_PASSPHRASE).
    Backup {
        /// The clinic's directory.
        #[arg(long)]
        dir: PathBuf,
        /// The backup file to write (never over an existing one).
        #[arg(long)]
        out: PathBuf,
        /// A file whose first line is the passphrase.
        #[arg(long)]
        passphrase_file: Option<PathBuf>,
    },
    /// Restore a backup into a new directory.
    Restore {
        /// The backup file.
        #[arg(long)]
        from: PathBuf,
        /// The directory to restore into (created; must be empty).
        #[arg(long)]
        dir: PathBuf,
        /// A file whose first line is the passphrase.
        #[arg(long)]
        passphrase_file: Option<PathBuf>,
    },
}

#[derive(Subcommand)]
pub enum StaffCommand {
    /// Add an account; its one-time initial password is printed once and must be changed at
    /// the first login.
    Add {
        /// The clinic's directory.
        #[arg(long)]
        dir: PathBuf,
        /// The login name: 1 to 64 of a-z, 0-9, '.', '_', '-'.
        name: String,
    },
    /// List the accounts (never their passwords).
    List {
        /// The clinic's directory.
        #[arg(long)]
        dir: PathBuf,
    },
    /// Disable an account at once: it can no longer log in.
    Disable {
        /// The clinic's directory.
        #[arg(long)]
        dir: PathBuf,
        /// The login name.
        name: String,
    },
}

#[derive(Subcommand)]
pub enum ApiClientCommand {
    /// Add a system; its API token is printed once (send it as `Authorization: Bearer …`).
    /// Name the programs it may fetch with --program, or give it every program that allows the
    /// export with --all-programs.
    #[command(group(ArgGroup::new("scope").required(true).args(["program", "all_programs"])))]
    Add {
        /// The clinic's directory.
        #[arg(long)]
        dir: PathBuf,
        /// Its name: 1 to 64 of a-z, 0-9, '.', '_', '-'.
        name: String,
        /// A program whose referrals it may fetch (its id; repeat for more).
        #[arg(long)]
        program: Vec<String>,
        /// Every program that allows the export, also those added to the bundle later.
        #[arg(long)]
        all_programs: bool,
    },
    /// List the systems (never their tokens), with when each last fetched an export.
    List {
        /// The clinic's directory.
        #[arg(long)]
        dir: PathBuf,
    },
    /// Revoke a system's token at once.
    Revoke {
        /// The clinic's directory.
        #[arg(long)]
        dir: PathBuf,
        /// Its name.
        name: String,
    },
}

fn client_failed(e: export::ClientError) -> Failure {
    let code = match &e {
        export::ClientError::BadName => "bad_name",
        export::ClientError::Exists => "api_client_exists",
        export::ClientError::BadProgram => "bad_program",
        export::ClientError::Unknown => "unknown_api_client",
        export::ClientError::Random => "random",
        export::ClientError::Storage(_) => "storage",
    };
    let field = match e {
        export::ClientError::Random | export::ClientError::Storage(_) => None,
        export::ClientError::BadProgram => Some("program"),
        _ => Some("name"),
    };
    let failure = Failure::other(code, e.to_string());
    match field {
        Some(field) => failure.on_field(field),
        None => failure,
    }
}

fn export_failed(e: export::ExportError) -> Failure {
    let code = match &e {
        export::ExportError::NotAllowed => "export_not_allowed",
        export::ExportError::NotFound | export::ExportError::NotItsProgram => "unknown_referral",
        export::ExportError::Erased => "erased",
        export::ExportError::Unreadable(_) => "unreadable",
        export::ExportError::OlderBundle(_) => "bundle_older_than_served",
        export::ExportError::Storage(_) => "storage",
    };
    let field = match e {
        export::ExportError::OlderBundle(_) => "bundle",
        _ => "handover",
    };
    Failure::other(code, e.to_string()).on_field(field)
}

fn rotate_failed(e: HomeError) -> Failure {
    let code = match &e {
        HomeError::NotOurCa => "not_our_ca",
        HomeError::NotForSpare => "tls_not_for_spare",
        HomeError::Untrusted(_) => "tls_untrusted",
        _ => "rotate_tls",
    };
    let failure = Failure::other(code, e.to_string());
    match e {
        HomeError::NotForSpare | HomeError::Untrusted(_) => failure.on_field("cert"),
        _ => failure,
    }
}

/// The served bundle, verified against the administrator's key.
fn served_bundle(
    ctx: &Ctx,
    bundle: &Path,
    trust: &str,
    now: DateTime<Utc>,
) -> Result<lotsa_core::program::Bundle, Failure> {
    let text = ctx.read_file(bundle).map_err(|f| f.on_field("bundle"))?;
    let key = read_trust(ctx, trust)?;
    lotsa_core::program::verify(&text, &key, now).map_err(|e| ctx.fail(&e).on_field("bundle"))
}

fn staff_failed(e: staff::StaffError) -> Failure {
    let code = match &e {
        staff::StaffError::BadName => "bad_name",
        staff::StaffError::Exists => "staff_exists",
        staff::StaffError::Reserved => "reserved_name",
        staff::StaffError::Unknown => "unknown_staff",
        staff::StaffError::Crypto(_) => "random",
        staff::StaffError::Storage(_) => "storage",
    };
    let failure = Failure::other(code, e.to_string());
    match e {
        staff::StaffError::BadName
        | staff::StaffError::Exists
        | staff::StaffError::Reserved
        | staff::StaffError::Unknown => failure.on_field("name"),
        _ => failure,
    }
}

fn failed(code: &str) -> impl Fn(&dyn std::fmt::Display) -> Failure + '_ {
    move |e| Failure::other(code, e.to_string())
}

fn stamp(at: i64) -> String {
    DateTime::from_timestamp(at, 0)
        .map(|t| t.to_rfc3339_opts(SecondsFormat::Secs, true))
        .unwrap_or_default()
}

fn storage(dir: &Path) -> Result<Storage, Failure> {
    let home = Home::new(dir);
    home.clinic().map_err(|e| failed("clinic")(&e))?;
    Storage::open(&home.database()).map_err(|e| failed("storage")(&e))
}

pub fn run(ctx: &Ctx, cmd: ClinicCommand) -> CmdResult {
    let now = Utc::now();
    match cmd {
        ClinicCommand::Init {
            dir,
            name,
            endpoint,
            tls_cert,
            tls_key,
            tls_ca,
        } => {
            let provided_tls = match (tls_cert, tls_key, tls_ca) {
                (Some(cert), Some(key), Some(ca)) => Some(ProvidedTls { cert, key, ca }),
                _ => None,
            };
            let options = InitOptions {
                name,
                endpoint,
                provided_tls,
            };
            let home = Home::new(&dir);
            let clinic = home.init(&options, now).map_err(|e| failed("init")(&e))?;
            let json = json!({
                "clinic_json": home.clinic_json(),
                "endpoint": clinic.endpoint,
                "spki_sha256_pins": clinic.tls.spki_sha256_pins,
                "hpke_key_id": clinic.hpke_keys[0].key_id,
                "receipt_key_id": clinic.receipt_key.key_id,
            });
            if ctx.json {
                return ctx.print_json(&json);
            }
            ctx.line(format!("made a clinic in {}", dir.display()))?;
            ctx.line(format!(
                "clinic.json: {} (sign it into the bundle: lotsa program sign … --clinic {})",
                home.clinic_json().display(),
                home.clinic_json().display()
            ))?;
            ctx.line(format!(
                "TLS pins (current, spare): {}",
                clinic.tls.spki_sha256_pins.join(", ")
            ))
        }
        ClinicCommand::Serve {
            dir,
            bundle,
            trust,
            bind,
            max_in_flight,
            device_rate,
            notify_command,
            notify_every_minutes,
            access_log_years,
            staff_bind,
            staff_tls_cert,
            staff_tls_key,
        } => {
            let trust = read_trust(ctx, &trust)?;
            let bundle = ctx.read_file(&bundle).map_err(|f| f.on_field("bundle"))?;
            let limits = Limits {
                max_in_flight,
                ..Limits::default()
            };
            let rate = DeviceRate {
                burst: device_rate,
                per_minute: device_rate,
            };
            let ready = prepare(&Home::new(&dir), &bundle, &trust, now, limits, rate)
                .map_err(|e| failed("serve")(&e))?;
            let notify = notify_command.map(|command| lotsa_clinic::notify::Notifier {
                command,
                every: std::time::Duration::from_secs(notify_every_minutes * 60),
            });
            let staff = match (staff_bind, staff_tls_cert, staff_tls_key) {
                (Some(addr), Some(cert), Some(key)) => Some((
                    addr,
                    serve::staff_tls(&cert, &key).map_err(|e| failed("staff_tls")(&e))?,
                )),
                _ => None,
            };
            serve_until_signal(ctx, ready, bind, staff, notify, access_log_years)
        }
        ClinicCommand::EnrolCode { dir, valid_hours } => {
            let storage = storage(&dir)?;
            let code = new_enrolment_code().ok_or_else(|| {
                Failure::other("random", "the system's random number generator failed")
            })?;
            let expires = now + Duration::hours(i64::from(valid_hours));
            storage
                .add_enrolment_code(code_hash(&code), expires.timestamp())
                .map_err(|e| failed("storage")(&e))?;
            let until = stamp(expires.timestamp());
            if ctx.json {
                ctx.print_json(&json!({"code": code, "expires_at": until}))
            } else {
                ctx.line(format!("{code}  (one phone, once, until {until})"))
            }
        }
        ClinicCommand::Devices { dir, bundle, trust } => {
            let home = Home::new(&dir);
            let served = match (bundle, trust) {
                (Some(b), Some(t)) => Some(served_bundle(ctx, &b, &t, now)?),
                _ => None,
            };
            let endpoint = home.clinic().map_err(|e| failed("clinic")(&e))?.endpoint;
            let devices = storage(&dir)?
                .devices()
                .map_err(|e| failed("storage")(&e))?;
            let devices = lotsa_clinic::backlog::view(devices, served.as_ref(), &endpoint, now);
            let waiting = |d: &lotsa_clinic::backlog::DeviceView| {
                d.backlog.as_ref().map(lotsa_clinic::backlog::waiting)
            };
            if ctx.json {
                let list: Vec<_> = devices
                    .iter()
                    .map(|d| {
                        json!({"device_id": d.device_id, "enrolled_at": stamp(d.enrolled_at),
                               "revoked_at": d.revoked_at.map(stamp), "held": d.held,
                               "last_seen_at": d.last_seen_at.map(stamp),
                               "backlog": d.backlog, "waiting": waiting(d),
                               "silent_with_backlog": d.silent_with_backlog})
                    })
                    .collect();
                return ctx.print_json(&json!({ "devices": list }));
            }
            let rows: Vec<Vec<String>> = devices
                .iter()
                .map(|d| {
                    vec![
                        d.device_id.clone(),
                        stamp(d.enrolled_at),
                        d.revoked_at.map(stamp).unwrap_or_else(|| "-".into()),
                        d.held.to_string(),
                        d.last_seen_at.map(stamp).unwrap_or_else(|| "-".into()),
                        waiting(d).map_or_else(|| "-".into(), |n| n.to_string()),
                        if d.silent_with_backlog { "SILENT" } else { "" }.to_string(),
                    ]
                })
                .collect();
            ctx.table(
                &[
                    "device",
                    "enrolled",
                    "revoked",
                    "referrals held",
                    "last report",
                    "waiting on phone",
                    "flag",
                ],
                &rows,
            )
        }
        ClinicCommand::Revoke { dir, device } => {
            let revoked = storage(&dir)?
                .revoke(&device, now.timestamp())
                .map_err(|e| failed("storage")(&e))?;
            if !revoked {
                return Err(Failure::other(
                    "unknown_device",
                    "no enrolled, unrevoked device has that id",
                )
                .on_field("device"));
            }
            if ctx.json {
                ctx.print_json(&json!({"revoked": device}))
            } else {
                ctx.line(format!("revoked {device}: its next request is refused"))
            }
        }
        ClinicCommand::Staff { command } => staff_cmd(ctx, command, now.timestamp()),
        ClinicCommand::ApiClient { command } => api_client_cmd(ctx, command, now),
        ClinicCommand::Export {
            dir,
            handover,
            fhir: _,
            bundle,
            trust,
            out,
        } => {
            // Refused before the export, so that the access log holds only what was handed out.
            if out.as_deref().is_some_and(Path::exists) {
                return Err(Failure::other("exists", "the --out file exists").on_field("out"));
            }
            let served = served_bundle(ctx, &bundle, &trust, now)?;
            let home = Home::new(&dir);
            let keys = home.load().map_err(|e| failed("clinic")(&e))?.keys;
            let log_key = home.access_log_key().map_err(|e| failed("clinic")(&e))?;
            let storage = storage(&dir)?;
            export::check_current(&storage, &served).map_err(export_failed)?;
            let exporter = export::Exporter {
                storage: &storage,
                keys: &keys,
                bundle: &served,
                log_key: &log_key,
            };
            let fhir = exporter
                .export(&handover, &export::Reader::console(), now)
                .map_err(export_failed)?;
            match out {
                None => ctx.print_json(&fhir),
                Some(path) => {
                    lotsa_clinic::home::write_private(&path, fhir.to_string().as_bytes())
                        .map_err(|e| failed("write")(&e).on_field("out"))?;
                    if ctx.json {
                        return ctx.print_json(&json!({"written": path}));
                    }
                    ctx.line(format!("wrote the FHIR bundle to {}", path.display()))
                }
            }
        }
        ClinicCommand::Outcomes {
            dir,
            program,
            from,
            to,
            csv,
        } => {
            use lotsa_clinic::figures;
            for (field, week) in [("from", &from), ("to", &to)] {
                if week.as_deref().is_some_and(|w| !figures::is_week(w)) {
                    return Err(
                        Failure::other("bad_week", "a week is written as 2026-W49").on_field(field)
                    );
                }
            }
            let counts = storage(&dir)?
                .outcomes()
                .map_err(|e| failed("storage")(&e))?;
            let rows = figures::rows(&counts, program.as_deref(), from.as_deref(), to.as_deref());
            let cells = |r: &figures::Row| -> Vec<String> {
                let mut line = vec![r.week.clone(), r.program_id.clone()];
                line.extend(r.cells.iter().map(|c| c.text()));
                line
            };
            if ctx.json {
                let list: Vec<_> = rows
                    .iter()
                    .map(|r| {
                        let mut row = json!({"week": r.week, "program_id": r.program_id});
                        for (name, cell) in figures::OUTCOMES.iter().zip(r.cells) {
                            row[*name] = match cell {
                                figures::Cell::Count(n) => json!(n),
                                figures::Cell::Suppressed => json!("suppressed"),
                            };
                        }
                        row
                    })
                    .collect();
                return ctx.print_json(&json!({ "outcomes": list }));
            }
            let mut header = vec!["week", "program"];
            header.extend(figures::OUTCOMES);
            if csv {
                ctx.line(header.join(","))?;
                for r in &rows {
                    ctx.line(cells(r).join(","))?;
                }
                return Ok(());
            }
            let header: Vec<String> = header.iter().map(|h| h.to_uppercase()).collect();
            let header: Vec<&str> = header.iter().map(String::as_str).collect();
            ctx.table(&header, &rows.iter().map(cells).collect::<Vec<_>>())
        }
        ClinicCommand::AccessLog {
            dir,
            referral,
            staff: name,
            phone,
        } => {
            let phone_hmac = match phone {
                Some(p) => {
                    let number = lotsa_core::referral::normalize_phone(&p)
                        .map_err(|e| Failure::from_reason(&e, ctx.lang).on_field("phone"))?;
                    let key = Home::new(&dir)
                        .access_log_key()
                        .map_err(|e| failed("clinic")(&e))?;
                    Some(lotsa_clinic::worklist::phone_hmac(&key, &number))
                }
                None => None,
            };
            let staff_name = match name {
                Some(n) => {
                    Some(export::logged_name(&n).map_err(|e| staff_failed(e).on_field("staff"))?)
                }
                None => None,
            };
            let filter = lotsa_clinic::storage::AccessFilter {
                handover_id: referral,
                staff: staff_name,
                phone_hmac,
            };
            let lines = storage(&dir)?
                .access_log(&filter)
                .map_err(|e| failed("storage")(&e))?;
            if ctx.json {
                let list: Vec<_> = lines
                    .iter()
                    .map(|l| json!({"at": stamp(l.at), "staff": l.staff, "referral": l.handover_id, "action": l.action}))
                    .collect();
                return ctx.print_json(&json!({ "access_log": list }));
            }
            let rows: Vec<Vec<String>> = lines
                .iter()
                .map(|l| {
                    vec![
                        stamp(l.at),
                        l.staff.clone(),
                        l.handover_id.clone().unwrap_or_default(),
                        l.action.clone(),
                    ]
                })
                .collect();
            ctx.table(&["AT", "STAFF", "REFERRAL", "ACTION"], &rows)
        }
        ClinicCommand::RotateKey { dir } => {
            let home = Home::new(&dir);
            let key = home.rotate_key(now).map_err(|e| failed("rotate_key")(&e))?;
            if ctx.json {
                return ctx.print_json(
                    &json!({"hpke_key_id": key.key_id, "clinic_json": home.clinic_json()}),
                );
            }
            ctx.line(format!(
                "added HPKE key {}; sign the bundle again with --clinic {} and restart the service",
                key.key_id,
                home.clinic_json().display()
            ))
        }
        ClinicCommand::TlsRequest { dir } => {
            let home = Home::new(&dir);
            let csr = home
                .tls_request(now)
                .map_err(|e| failed("tls_request")(&e))?;
            if ctx.json {
                return ctx.print_json(&json!({ "csr": csr }));
            }
            ctx.line(csr.trim_end())
        }
        ClinicCommand::RotateTls { dir, cert } => {
            let home = Home::new(&dir);
            let trust = home
                .rotate_tls(cert.as_deref(), now)
                .map_err(rotate_failed)?;
            let pins = &trust.spki_sha256_pins;
            if ctx.json {
                return ctx
                    .print_json(&json!({"spki_pins": pins, "clinic_json": home.clinic_json()}));
            }
            ctx.line(format!(
                "the server uses its spare key now; TLS pins (current, new spare): {}",
                pins.join(", ")
            ))?;
            ctx.line(format!(
                "sign the bundle again with --clinic {} and restart the service",
                home.clinic_json().display()
            ))
        }
        ClinicCommand::Backup {
            dir,
            out,
            passphrase_file,
        } => {
            let passphrase = passphrase(ctx, passphrase_file.as_deref())?;
            let home = Home::new(&dir);
            let storage = storage(&dir)?;
            backup::write(&home, &storage, &out, &passphrase, now)
                .map_err(|e| failed("backup")(&e))?;
            if ctx.json {
                ctx.print_json(&json!({"backup": out}))
            } else {
                ctx.line(format!(
                    "wrote {} (keep it offline; it holds the keys)",
                    out.display()
                ))
            }
        }
        ClinicCommand::Restore {
            from,
            dir,
            passphrase_file,
        } => {
            let passphrase = passphrase(ctx, passphrase_file.as_deref())?;
            let files =
                backup::restore(&from, &dir, &passphrase).map_err(|e| failed("restore")(&e))?;
            if ctx.json {
                ctx.print_json(&json!({"restored": dir, "files": files}))
            } else {
                ctx.line(format!(
                    "restored {} files into {}",
                    files.len(),
                    dir.display()
                ))
            }
        }
    }
}

fn passphrase(ctx: &Ctx, file: Option<&Path>) -> Result<String, Failure> {
    let text = match file {
        Some(path) => ctx
            .read_file(path)
            .map_err(|f| f.on_field("passphrase_file"))?,
        None => std::env::var(PASSPHRASE_ENV).map_err(|_| {
            Failure::other(
                "passphrase",
                format!("give the passphrase with --passphrase-file or {PASSPHRASE_ENV}"),
            )
        })?,
    };
    Ok(text.lines().next().unwrap_or("").to_string())
}

fn serve_until_signal(
    ctx: &Ctx,
    mut ready: serve::Ready,
    bind: SocketAddr,
    staff: Option<(SocketAddr, serve::TlsConfig)>,
    notify: Option<lotsa_clinic::notify::Notifier>,
    access_log_years: u32,
) -> CmdResult {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| failed("serve")(&e))?;
    runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind(bind).await.map_err(|e| {
            Failure::other("bind", format!("cannot listen on {bind}: {}", e.kind()))
        })?;
        let addr = listener.local_addr().unwrap_or(bind);
        let s = &ready.summary;
        if ctx.json {
            ctx.print_json(&json!({
                "listening": format!("https://{addr}"), "endpoint": s.endpoint,
                "programs": s.programs, "bundle_id": s.bundle_id,
                "certificate_sha256": s.certificate_sha256, "spki_pin": s.spki_pin,
                "receipt_key_id": s.receipt_key_id, "hpke_key_ids": s.hpke_key_ids,
            }))?;
        } else {
            ctx.line(format!("listening on https://{addr} for {}", s.endpoint))?;
            ctx.line(format!(
                "programs: {} (bundle {})",
                s.programs.join(", "),
                s.bundle_id
            ))?;
            ctx.line(format!("certificate SHA-256: {}", s.certificate_sha256))?;
            ctx.line(format!("SPKI pin: {}", s.spki_pin))?;
            ctx.line(format!(
                "receipt key: {}; HPKE keys: {}",
                s.receipt_key_id,
                s.hpke_key_ids.join(", ")
            ))?;
        }
        let housekeeping = ready
            .service
            .staff
            .clone()
            .map(|site| lotsa_clinic::housekeeping::spawn(site, access_log_years));
        let notifying = match (notify, ready.service.staff.clone()) {
            (Some(notifier), Some(site)) => Some(lotsa_clinic::notify::spawn(site, notifier)),
            _ => None,
        };
        // With a staff listener of their own, the devices' listener serves no staff page.
        let staff_running = match (staff, ready.service.staff.clone()) {
            (Some((staff_addr, tls)), Some(site)) => {
                ready.service.staff = None;
                let listener = tokio::net::TcpListener::bind(staff_addr)
                    .await
                    .map_err(|e| {
                        Failure::other(
                            "bind",
                            format!("cannot listen on {staff_addr}: {}", e.kind()),
                        )
                    })?;
                let at = listener.local_addr().unwrap_or(staff_addr);
                if ctx.json {
                    ctx.print_json(&json!({"staff_pages": format!("https://{at}/staff/login")}))?;
                } else {
                    ctx.line(format!("staff pages on https://{at}/staff/login"))?;
                }
                Some(lotsa_clinic::server::start_staff(listener, tls, site))
            }
            _ => None,
        };
        let running = start(listener, ready.tls, ready.service);
        stop_signal().await;
        if let Some(task) = housekeeping {
            task.abort();
        }
        if let Some(task) = notifying {
            task.abort();
        }
        if let Some(staff) = staff_running {
            staff.stop().await;
        }
        running.stop().await;
        Ok(())
    })
}

/// SIGINT or SIGTERM (systemd stops a service with SIGTERM).
async fn stop_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        if let Ok(mut term) = signal(SignalKind::terminate()) {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
            return;
        }
    }
    let _ = tokio::signal::ctrl_c().await;
}

fn staff_cmd(ctx: &Ctx, command: StaffCommand, now: i64) -> CmdResult {
    match command {
        StaffCommand::Add { dir, name } => {
            let (name, password) = staff::add(&storage(&dir)?, &name, now).map_err(staff_failed)?;
            if ctx.json {
                return ctx.print_json(&json!({"added": name, "initial_password": password}));
            }
            ctx.line(format!(
                "added {name}; initial password (shown once, to be changed at the first login): {password}"
            ))
        }
        StaffCommand::List { dir } => {
            let members = storage(&dir)?.staff().map_err(|e| failed("storage")(&e))?;
            if ctx.json {
                let list: Vec<_> = members
                    .iter()
                    .map(|m| {
                        json!({"name": m.name, "created_at": stamp(m.created_at),
                               "last_login_at": m.last_login_at.map(stamp),
                               "disabled_at": m.disabled_at.map(stamp),
                               "must_change_password": m.must_change_password})
                    })
                    .collect();
                return ctx.print_json(&json!({ "staff": list }));
            }
            let rows: Vec<Vec<String>> = members
                .iter()
                .map(|m| {
                    let state = match (m.disabled_at, m.must_change_password) {
                        (Some(_), _) => "disabled",
                        (None, true) => "initial password",
                        (None, false) => "active",
                    };
                    vec![
                        m.name.clone(),
                        stamp(m.created_at),
                        m.last_login_at.map(stamp).unwrap_or_else(|| "never".into()),
                        state.to_string(),
                    ]
                })
                .collect();
            ctx.table(&["NAME", "ADDED", "LAST LOGIN", "STATE"], &rows)
        }
        StaffCommand::Disable { dir, name } => {
            let name = staff::disable(&storage(&dir)?, &name, now).map_err(staff_failed)?;
            if ctx.json {
                ctx.print_json(&json!({"disabled": name}))
            } else {
                ctx.line(format!("disabled {name}: it can no longer log in"))
            }
        }
    }
}

/// An API client's programs, for people.
fn scope(programs: Option<&[String]>) -> String {
    programs.map_or_else(|| "all programs".to_string(), |p| p.join(", "))
}

fn api_client_cmd(ctx: &Ctx, command: ApiClientCommand, now: DateTime<Utc>) -> CmdResult {
    match command {
        ApiClientCommand::Add {
            dir,
            name,
            program,
            all_programs,
        } => {
            let programs: Option<BTreeSet<String>> =
                (!all_programs).then(|| program.into_iter().collect());
            let (name, token) = export::add_client(&storage(&dir)?, &name, programs.as_ref(), now)
                .map_err(client_failed)?;
            if ctx.json {
                return ctx
                    .print_json(&json!({"added": name, "programs": programs, "token": token}));
            }
            ctx.line(format!(
                "added {name}, for {}; its API token (shown once, sent as Authorization: Bearer …): {token}",
                scope(programs.map(Vec::from_iter).as_deref())
            ))
        }
        ApiClientCommand::List { dir } => {
            let clients = storage(&dir)?
                .api_clients()
                .map_err(|e| failed("storage")(&e))?;
            if ctx.json {
                let list: Vec<_> = clients
                    .iter()
                    .map(|c| {
                        json!({"name": c.name, "programs": c.programs,
                               "created_at": stamp(c.created_at),
                               "revoked_at": c.revoked_at.map(stamp),
                               "last_used_at": c.last_used_at.map(stamp)})
                    })
                    .collect();
                return ctx.print_json(&json!({ "api_clients": list }));
            }
            let rows: Vec<Vec<String>> = clients
                .iter()
                .map(|c| {
                    vec![
                        c.name.clone(),
                        scope(c.programs.as_deref()),
                        stamp(c.created_at),
                        c.last_used_at.map(stamp).unwrap_or_else(|| "never".into()),
                        if c.revoked_at.is_some() {
                            "revoked"
                        } else {
                            "active"
                        }
                        .to_string(),
                    ]
                })
                .collect();
            ctx.table(&["NAME", "PROGRAMS", "ADDED", "LAST USED", "STATE"], &rows)
        }
        ApiClientCommand::Revoke { dir, name } => {
            let name = export::revoke_client(&storage(&dir)?, &name, now).map_err(client_failed)?;
            if ctx.json {
                ctx.print_json(&json!({"revoked": name}))
            } else {
                ctx.line(format!("revoked {name}: its token is refused from now on"))
            }
        }
    }
}
