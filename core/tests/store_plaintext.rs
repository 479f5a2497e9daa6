//! No plaintext on disk: a referral whose name, phone, personnummer, note and best time are
//! unusual canary strings is edited several times, consented and finalized next to drafts that
//! are deleted, withdrawn, refused and finalized-then-withdrawn; then every byte of the database,
//! its `-wal` and `-shm` files and the development key vault is searched for every canary, as
//! UTF-8, UTF-16LE and UTF-16BE — while the store is still open (nothing checkpointed) and after
//! it is closed. A control file proves the scanner finds what it looks for.
//!
//! A second test goes past plaintext: after finalize the device must not keep an *openable* copy
//! of the draft either, i.e. the draft's wrapped data key (which the device's own root key
//! unwraps) must not survive in any of the store's files.

mod common;

use common::{clock, consent, files_under, fill_kalmar, Programs, TempDir};
use lotsa_core::crypto::field::{open_field, FieldAad, RootKey};
use lotsa_core::crypto::vault::{DevFileVault, KeyVault};
use lotsa_core::identity::compose;
use lotsa_core::store::schema::SCHEMA_VERSION;
use lotsa_core::store::{ItemState, Store, StoreError, Withdrawn};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// What one edit of the referral types in.
struct Person {
    name: &'static str,
    phone_typed: &'static str,
    phone_e164: &'static str,
    /// The 12-digit number and its birth date / serial.
    number12: String,
    note: &'static str,
    best_time: &'static str,
    language: &'static str,
}

impl Person {
    #[allow(clippy::too_many_arguments)]
    fn new(
        name: &'static str,
        phone_typed: &'static str,
        phone_e164: &'static str,
        born: (i32, u32, u32),
        serial: u16,
        note: &'static str,
        best_time: &'static str,
        language: &'static str,
    ) -> Person {
        let date = chrono::NaiveDate::from_ymd_opt(born.0, born.1, born.2).unwrap();
        Person {
            name,
            phone_typed,
            phone_e164,
            number12: compose(date, serial, false),
            note,
            best_time,
            language,
        }
    }

    /// The 10-digit form.
    fn number10(&self) -> String {
        self.number12[2..].to_string()
    }

    /// As an officer types it: `YYMMDD-NNNC`.
    fn number_typed(&self) -> String {
        format!("{}-{}", &self.number12[2..8], &self.number12[8..])
    }

    /// Every string that must never be found on disk, labelled.
    fn canaries(&self, who: &str) -> Vec<(String, String)> {
        let digits_national = self.phone_e164.trim_start_matches("+46");
        let mut out = vec![
            (format!("{who}.name"), self.name.to_string()),
            (
                format!("{who}.name.first"),
                self.name.split(' ').next().unwrap().to_string(),
            ),
            (
                format!("{who}.name.last"),
                self.name.split(' ').next_back().unwrap().to_string(),
            ),
            (format!("{who}.phone.typed"), self.phone_typed.to_string()),
            (format!("{who}.phone.e164"), self.phone_e164.to_string()),
            (format!("{who}.phone.0nsn"), format!("0{digits_national}")),
            (format!("{who}.phone.nsn"), digits_national.to_string()),
            (format!("{who}.pnr.12"), self.number12.clone()),
            (format!("{who}.pnr.10"), self.number10()),
            (format!("{who}.pnr.typed"), self.number_typed()),
            (
                format!("{who}.pnr.12typed"),
                format!("{}-{}", &self.number12[..8], &self.number12[8..]),
            ),
            (format!("{who}.note"), self.note.to_string()),
            (
                format!("{who}.note.token"),
                self.note.split(' ').nth(1).unwrap().to_string(),
            ),
            (format!("{who}.best_time"), self.best_time.to_string()),
            (
                format!("{who}.best_time.token"),
                self.best_time.split(' ').nth(1).unwrap().to_string(),
            ),
            (format!("{who}.language"), self.language.to_string()),
        ];
        out.dedup_by(|a, b| a.1 == b.1);
        out
    }

    fn update(&self) -> lotsa_core::referral::DraftUpdate {
        lotsa_core::referral::DraftUpdate {
            note: Some(self.note.into()),
            best_time: Some(self.best_time.into()),
            language: Some(self.language.into()),
            ..fill_kalmar(self.name, self.phone_typed, &self.number_typed())
        }
    }
}

/// The referral as first typed, as corrected, and as finalized.
fn edits() -> [Person; 3] {
    [
        Person::new(
            "Qwfpgjluy Earlyname",
            "073 951 74 62",
            "+46739517462",
            (1947, 3, 31),
            263,
            "Earlynote Pzzqvkx was here",
            "Earlytime Wvxqjjh please",
            "Earlylang Qvvzx",
        ),
        Person::new(
            "Vvxqzkmn Middlesson",
            "+46 (0)76-482 19 57",
            "+46764821957",
            (1952, 10, 7),
            819,
            "Middlenote Jqxzvvb again",
            "Middletime Hxqzzkw maybe",
            "Middlelang Zzkvq",
        ),
        Person::new(
            "Zqxjkvbw Canarysson",
            "0708-64 29 31",
            "+46708642931",
            (1933, 12, 29),
            587,
            "Notecanary Xylophqz Wrmbl",
            "Besttime Kvzzjqy efter 14",
            "Langcanary Qzvxw",
        ),
    ]
}

/// The three ways a string can sit in a file: UTF-8, UTF-16LE, UTF-16BE.
fn encodings(s: &str) -> Vec<(&'static str, Vec<u8>)> {
    let units: Vec<u16> = s.encode_utf16().collect();
    vec![
        ("utf8", s.as_bytes().to_vec()),
        (
            "utf16le",
            units.iter().flat_map(|u| u.to_le_bytes()).collect(),
        ),
        (
            "utf16be",
            units.iter().flat_map(|u| u.to_be_bytes()).collect(),
        ),
    ]
}

/// A needle: what it is, how it is encoded, its bytes.
struct Needle {
    label: String,
    encoding: &'static str,
    bytes: Vec<u8>,
}

fn needles(canaries: &[(String, String)]) -> Vec<Needle> {
    let mut out = Vec::new();
    for (label, text) in canaries {
        assert!(text.len() >= 6, "canary {label} is too short to be unusual");
        for (encoding, bytes) in encodings(text) {
            out.push(Needle {
                label: label.clone(),
                encoding,
                bytes,
            });
        }
    }
    out
}

/// One place a needle was found.
#[derive(Debug)]
struct Hit {
    file: PathBuf,
    label: String,
    encoding: &'static str,
    offset: usize,
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    if needle.is_empty() || haystack.len() < needle.len() {
        return None;
    }
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// Reads every file under each root byte by byte and reports every needle found.
fn scan(roots: &[&Path], needles: &[Needle]) -> (Vec<Hit>, Vec<(PathBuf, usize)>) {
    let mut hits = Vec::new();
    let mut scanned = Vec::new();
    for root in roots {
        for file in files_under(root) {
            let bytes = match std::fs::read(&file) {
                Ok(b) => b,
                // A -wal/-shm file may vanish between listing and reading only after a close.
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => panic!("reading {}: {e}", file.display()),
            };
            for n in needles {
                if let Some(offset) = find(&bytes, &n.bytes) {
                    hits.push(Hit {
                        file: file.clone(),
                        label: n.label.clone(),
                        encoding: n.encoding,
                        offset,
                    });
                }
            }
            scanned.push((file, bytes.len()));
        }
    }
    (hits, scanned)
}

fn file_len(p: &Path) -> Option<u64> {
    std::fs::metadata(p).ok().map(|m| m.len())
}

fn sidecar(db: &Path, suffix: &str) -> PathBuf {
    PathBuf::from(format!("{}{suffix}", db.display()))
}

#[test]
fn the_scanner_finds_a_canary_in_a_control_file() {
    let edits = edits();
    let canaries = edits[2].canaries("final");
    let all = needles(&canaries);
    let dir = TempDir::new("control");
    // A control file holding every canary in every encoding, between random-looking bytes.
    let mut content = Vec::new();
    for (i, n) in all.iter().enumerate() {
        content.extend((0..37).map(|j| (i * 31 + j * 7) as u8 ^ 0xA5));
        content.extend_from_slice(&n.bytes);
    }
    std::fs::write(dir.path().join("control.bin"), &content).unwrap();
    let (hits, scanned) = scan(&[dir.path()], &all);
    assert_eq!(scanned.len(), 1);
    for n in &all {
        assert!(
            hits.iter()
                .any(|h| h.label == n.label && h.encoding == n.encoding),
            "the scanner missed {} ({}) in the control file",
            n.label,
            n.encoding
        );
    }
    // And one canary alone, UTF-16BE only, deep in a larger file, is still found.
    let mut big = vec![0u8; 300_000];
    let name16 = encodings(edits[2].name).remove(2).1;
    big[250_001..250_001 + name16.len()].copy_from_slice(&name16);
    std::fs::write(dir.path().join("control.bin"), &big).unwrap();
    let (hits, _) = scan(&[dir.path()], &all);
    assert!(
        hits.iter()
            .any(|h| h.label == "final.name" && h.encoding == "utf16be" && h.offset == 250_001),
        "{hits:?}"
    );
}

#[test]
fn no_canary_reaches_the_disk_before_or_after_finalize_open_or_closed() {
    let programs = Programs::new();
    let kalmar = programs.program("kalmar");
    let dir = TempDir::new("plaintext");
    let db = dir.path().join("device.sqlite");
    let vault_dir = dir.path().join("vault");
    let vault = Arc::new(DevFileVault::open_with_warning(&vault_dir, |_| {}).unwrap());
    let mut store = Store::open(&db, vault.clone(), Arc::new(clock())).unwrap();

    let edits = edits();
    // Other people on the same device, each with their own canary, each ending differently.
    let ghost = Person::new(
        "Ghostdraft Yqqzvwk",
        "072-519 38 46",
        "+46725193846",
        (1961, 6, 13),
        347,
        "Ghostnote Qqxzvkk deleted",
        "Ghosttime Zkkqvxj never",
        "Ghostlang Xqzvv",
    );
    let withdrawn = Person::new(
        "Withdrawndraft Jjxqzpq",
        "076-308 92 15",
        "+46763089215",
        (1958, 1, 23),
        731,
        "Wdnote Vqqxzjk erased",
        "Wdtime Jqxkzzv never",
        "Wdlang Kxqzq",
    );
    let refused = Person::new(
        "Refusedfin Kkqzvxw",
        "070-12",
        "+4670-12-unused",
        (1966, 9, 2),
        155,
        "Refnote Zvxqkkj stays",
        "Reftime Qzjxvvk later",
        "Reflang Vzqxk",
    );
    let late = Person::new(
        "Withdrawnhandover Zzqvkpx",
        "073-604 81 29",
        "+46736048129",
        (1949, 4, 17),
        923,
        "Latenote Kjqzxvv sealed",
        "Latetime Xvkqzzj sealed",
        "Latelang Qkzvx",
    );

    // First a referral finalized and withdrawn before delivery (its withdrawal checkpoints and
    // truncates the WAL, so it goes first: everything after it stays in the WAL).
    let l = store.create_draft(&programs.bundle, &kalmar.id).unwrap();
    store.update_draft(&l, late.update()).unwrap();
    store
        .record_consent(&l, &programs.bundle, &consent())
        .unwrap();
    store.finalize(&l, &programs.bundle).unwrap();
    assert_eq!(
        store.withdraw(&l, Some(&common::officer())).unwrap(),
        Withdrawn::ErasedBeforeDelivery
    );

    // A draft that is deleted, one withdrawn as a draft, one whose finalize is refused (and so
    // stays an encrypted draft).
    let g = store.create_draft(&programs.bundle, &kalmar.id).unwrap();
    store.update_draft(&g, ghost.update()).unwrap();
    store.delete_draft(&g).unwrap();
    let w = store.create_draft(&programs.bundle, &kalmar.id).unwrap();
    store.update_draft(&w, withdrawn.update()).unwrap();
    store
        .record_consent(&w, &programs.bundle, &consent())
        .unwrap();
    assert_eq!(store.withdraw(&w, None).unwrap(), Withdrawn::DraftErased);
    let r = store.create_draft(&programs.bundle, &kalmar.id).unwrap();
    store.update_draft(&r, refused.update()).unwrap();
    store
        .record_consent(&r, &programs.bundle, &consent())
        .unwrap();
    let err = store.finalize(&r, &programs.bundle).unwrap_err();
    assert!(err.to_string().len() > 5);
    assert!(
        !err.to_string().contains("Refusedfin") && !err.to_string().contains("070-12"),
        "the refusal's message repeats personal data: {err}"
    );
    // The referral: typed, corrected, consented, corrected again, consented again.
    let id = store.create_draft(&programs.bundle, &kalmar.id).unwrap();
    store.update_draft(&id, edits[0].update()).unwrap();
    store.update_draft(&id, edits[1].update()).unwrap();
    store
        .record_consent(&id, &programs.bundle, &consent())
        .unwrap();
    store.update_draft(&id, edits[2].update()).unwrap();
    store.update_draft(&id, edits[2].update()).unwrap();
    store
        .record_consent(&id, &programs.bundle, &consent())
        .unwrap();
    assert_eq!(
        store.draft(&id).unwrap().draft.contact.name.as_deref(),
        Some(edits[2].name)
    );

    // Finalize the referral.
    assert_eq!(store.finalize(&id, &programs.bundle).unwrap(), id);

    // The canaries really travelled: the clinic opens exactly the last edit.
    let sealed = store.sealed_payload(&id).unwrap();
    let payload = programs.open_sealed(&id, "kalmar", &sealed);
    assert_eq!(payload.contact.name.as_deref(), Some(edits[2].name));
    assert_eq!(payload.contact.phone.as_deref(), Some(edits[2].phone_e164));
    assert_eq!(payload.contact.note.as_deref(), Some(edits[2].note));
    assert_eq!(
        payload.contact.best_time.as_deref(),
        Some(edits[2].best_time)
    );
    assert_eq!(
        payload.person.personnummer.as_deref(),
        Some(edits[2].number12.as_str())
    );
    assert_eq!(payload.person.kommunkod.as_deref(), Some("0880"));
    let clear = String::from_utf8_lossy(&sealed);
    assert!(!clear.contains(edits[2].name));

    let status = store.queue_status().unwrap();
    let states: Vec<_> = status.items.iter().map(|i| (&i.id, i.state)).collect();
    assert!(states.contains(&(&id, ItemState::Pending)), "{states:?}");
    assert!(states.contains(&(&l, ItemState::Withdrawn)), "{states:?}");
    assert_eq!(store.draft_ids().unwrap().len(), 1); // only the refused one
    assert!(matches!(store.draft(&g), Err(StoreError::NotFound { .. })));

    let mut canaries = Vec::new();
    for (i, e) in edits.iter().enumerate() {
        canaries.extend(e.canaries(&format!("edit{i}")));
    }
    canaries.extend(ghost.canaries("deleted"));
    canaries.extend(withdrawn.canaries("withdrawn_draft"));
    canaries.extend(late.canaries("withdrawn_handover"));
    // The refused draft's phone is not a real number; its other fields are canaries.
    canaries.extend(
        refused
            .canaries("refused")
            .into_iter()
            .filter(|(l, _)| !l.contains("phone")),
    );
    let all = needles(&canaries);
    eprintln!(
        "{} canaries, {} needles (UTF-8, UTF-16LE, UTF-16BE)",
        canaries.len(),
        all.len()
    );

    // 1. While the store is open. Finalize, delete and withdraw checkpoint the WAL, so it may be
    // short now; the scan covers the database, the WAL and the shared-memory file alike.
    let wal = sidecar(&db, "-wal");
    let shm = sidecar(&db, "-shm");
    let wal_len = file_len(&wal).expect("the WAL exists while the store is open");
    eprintln!("WAL while open: {wal_len} B");
    assert!(file_len(&shm).is_some(), "the -shm exists while open");
    let (hits, scanned) = scan(&[dir.path()], &all);
    eprintln!("open: scanned {scanned:?}");
    assert!(
        scanned.iter().any(|(p, _)| *p == wal) && scanned.iter().any(|(p, _)| *p == db),
        "{scanned:?}"
    );
    assert!(
        scanned.iter().any(|(p, _)| p.starts_with(&vault_dir)),
        "the vault dir holds key files: {scanned:?}"
    );
    assert!(hits.is_empty(), "plaintext on disk while open: {hits:#?}");
    // Positive control on the real files: what is stored in the clear (ids) is found.
    let id_needle = needles(&[("handover_id".to_string(), id.clone())]);
    let (id_hits, _) = scan(&[dir.path()], &id_needle);
    assert!(
        !id_hits.is_empty(),
        "the handover id is not even in the store files: the scan reads nothing: {id_hits:?}"
    );

    // 2. After an orderly close (checkpoint, WAL removed).
    drop(store);
    drop(vault);
    let (hits, scanned) = scan(&[dir.path()], &all);
    eprintln!("closed: scanned {scanned:?}");
    assert!(hits.is_empty(), "plaintext on disk after close: {hits:#?}");
    let (id_hits, _) = scan(&[dir.path()], &id_needle);
    assert!(
        id_hits.iter().any(|h| h.file == db),
        "the handover id is not in the database after close: {id_hits:?}"
    );

    // 3. Reopened, the referral is still there and still sealed; the refused draft still opens.
    let vault = Arc::new(DevFileVault::open_with_warning(&vault_dir, |_| {}).unwrap());
    let mut store = Store::open(&db, vault, Arc::new(clock())).unwrap();
    assert_eq!(store.sealed_payload(&id).unwrap(), sealed);
    assert_eq!(
        store.draft(&r).unwrap().draft.contact.name.as_deref(),
        Some(refused.name)
    );
    assert!(store.integrity_ok().unwrap());
    store.verify_audit().unwrap();
    let (hits, _) = scan(&[dir.path()], &all);
    assert!(hits.is_empty(), "plaintext on disk after reopen: {hits:#?}");
}

/// The draft's blobs and its wrapped data key as they are on disk at one moment.
struct DraftBytes {
    wrapped_key: Vec<u8>,
    body: Vec<u8>,
    consent: Option<Vec<u8>>,
}

fn draft_bytes(store: &Store, id: &str) -> DraftBytes {
    store
        .connection()
        .query_row(
            "SELECT wrapped_key, body, consent FROM drafts WHERE id = ?1",
            [id],
            |r| {
                Ok(DraftBytes {
                    wrapped_key: r.get(0)?,
                    body: r.get(1)?,
                    consent: r.get(2)?,
                })
            },
        )
        .unwrap()
}

/// Where any of the given byte strings is found under `dir`.
fn residue(dir: &Path, what: &[(String, Vec<u8>)]) -> Vec<String> {
    let mut found = Vec::new();
    for file in files_under(dir) {
        let Ok(bytes) = std::fs::read(&file) else {
            continue;
        };
        for (label, b) in what {
            if let Some(at) = find(&bytes, b) {
                found.push(format!(
                    "{label} in {} at {at}",
                    file.file_name().unwrap().to_string_lossy()
                ));
            }
        }
    }
    found
}

/// Decrypts the first version of a finalized draft's body from the bytes left in the `-wal`
/// file, the way the device itself would: root key from the vault, data key from the WAL.
fn recover_first_edit(
    db: &Path,
    vault: &dyn KeyVault,
    root_wrapped: &[u8],
    id: &str,
    versions: &[DraftBytes],
) -> Option<String> {
    let wal = std::fs::read(sidecar(db, "-wal")).ok()?;
    let k = find(&wal, &versions[0].wrapped_key)?;
    let b = find(&wal, &versions[0].body)?;
    let root = RootKey::unwrap_with(vault, 1, root_wrapped).ok()?;
    let key = root
        .unwrap_data_key(id, &wal[k..k + versions[0].wrapped_key.len()])
        .ok()?;
    let aad = FieldAad {
        table: "drafts",
        column: "body",
        record_id: id,
        schema_version: SCHEMA_VERSION,
    };
    let plain = open_field(&key, &aad, &wal[b..b + versions[0].body.len()]).ok()?;
    let draft: lotsa_core::referral::Draft = serde_json::from_slice(&plain).ok()?;
    Some(format!(
        "name {:?}, phone {:?}, number {:?}",
        draft.contact.name, draft.contact.phone, draft.identity_number
    ))
}

/// After finalize the device may keep only ciphertext it cannot open. Every version of the
/// draft's body and the draft's wrapped data key were written to the WAL; if any of them is
/// still in a file, the device's own root key (from the vault) unwraps the data key and opens the
/// draft — the "erasing the row erases the only copy of the key" promise in `store/drafts.rs`
/// does not hold until the WAL is checkpointed and truncated.
#[test]
fn after_finalize_no_openable_copy_of_the_draft_is_left_in_the_store_files() {
    let programs = Programs::new();
    let kalmar = programs.program("kalmar");
    let edits = edits();

    // Three moments: while open; after the app is killed (no close: nothing checkpoints); after
    // an orderly close.
    let mut report = Vec::new();
    for moment in ["open", "killed", "closed"] {
        let dir = TempDir::new("residue");
        let db = dir.path().join("device.sqlite");
        let vault =
            Arc::new(DevFileVault::open_with_warning(dir.path().join("v"), |_| {}).unwrap());
        let mut store = Store::open(&db, vault.clone(), Arc::new(clock())).unwrap();
        let id = store.create_draft(&programs.bundle, &kalmar.id).unwrap();
        // The root key is made (and wrapped by the vault) with the first draft.
        let root_wrapped: Vec<u8> = store
            .connection()
            .query_row("SELECT wrapped FROM root_keys WHERE epoch = 1", [], |r| {
                r.get(0)
            })
            .unwrap();
        let mut versions = Vec::new();
        for e in &edits {
            store.update_draft(&id, e.update()).unwrap();
            versions.push(draft_bytes(&store, &id));
        }
        store
            .record_consent(&id, &programs.bundle, &consent())
            .unwrap();
        versions.push(draft_bytes(&store, &id));
        store.finalize(&id, &programs.bundle).unwrap();

        let mut what = vec![(
            "wrapped data key".to_string(),
            versions[0].wrapped_key.clone(),
        )];
        for (i, v) in versions.iter().enumerate() {
            assert_eq!(v.wrapped_key, versions[0].wrapped_key);
            what.push((format!("body v{i}"), v.body.clone()));
            if let Some(c) = &v.consent {
                what.push((format!("consent v{i}"), c.clone()));
            }
        }
        match moment {
            "open" => {}
            "killed" => std::mem::forget(store),
            _ => drop(store),
        }
        let found = residue(dir.path(), &what);
        if !found.is_empty() {
            report.push(format!("{moment}: {}", found.join("; ")));
        }
        if moment == "killed" {
            // What someone holding the phone (files + key store) gets back: the store's own root
            // key unwraps the data key found in the WAL, which opens the first draft found there.
            if let Some(text) =
                recover_first_edit(&db, vault.as_ref(), &root_wrapped, &id, &versions)
            {
                report.push(format!(
                    "killed: recovered from the -wal file with the device's vault: {text}"
                ));
            }
        }
    }
    assert!(
        report.is_empty(),
        "after finalize the draft can still be opened from the store's own files (wrapped key + \
         root key from the vault + ciphertext):\n{}",
        report.join("\n")
    );
}
