//! The store's behaviour end to end on real SQLite files: drafts, consent, finalize, withdrawal,
//! audit, statistics, queue status, expiry and tampering.

use super::*;
use crate::clock::stockholm_noon;
use crate::consent::{Capacity, ConsentForm, Role};
use crate::crypto::seal::{open_from_device, ClinicKeyPair, Sealed};
use crate::crypto::vault::MemoryVault;
use crate::crypto::SigningKey;
use crate::eligibility::Provenance;
use crate::program::{verify, Bundle, HpkeKey, ProgramSet, EXAMPLE_PROGRAMS_JSON};
use crate::referral::{DraftUpdate, HandoverPayload, TypedFacts};
use chrono::{DateTime, Duration, NaiveDate, Utc};
use std::path::PathBuf;
use std::sync::Mutex;

pub(crate) struct Fixture {
    pub dir: PathBuf,
    pub bundle: Bundle,
    pub set: ProgramSet,
    pub admin: SigningKey,
    pub clinic: ClinicKeyPair,
    pub vault: Arc<MemoryVault>,
    pub clock: Arc<TestClock>,
}

/// A clock tests can move.
pub(crate) struct TestClock(Mutex<DateTime<Utc>>);

impl TestClock {
    pub fn advance(&self, d: Duration) {
        let mut t = self.0.lock().unwrap();
        *t += d;
    }
}

impl Clock for TestClock {
    fn now(&self) -> DateTime<Utc> {
        *self.0.lock().unwrap()
    }
}

fn today() -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, 11, 23).unwrap()
}

impl Fixture {
    pub fn new(name: &str) -> Fixture {
        let dir = std::env::temp_dir().join(format!(
            "lotsa-store-{name}-{}-{}",
            std::process::id(),
            uuid::Uuid::new_v4()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        let clinic = ClinicKeyPair::generate().unwrap();
        let mut set = ProgramSet::from_json(EXAMPLE_PROGRAMS_JSON).unwrap();
        set.replace_clinic_hpke_keys(&HpkeKey {
            key_id: "test-clinic-1".into(),
            public_key: clinic.public_key_b64(),
            not_before: DateTime::parse_from_rfc3339("2026-01-01T00:00:00+01:00").unwrap(),
            not_after: DateTime::parse_from_rfc3339("2027-12-31T00:00:00+01:00").unwrap(),
        });
        let admin = SigningKey::generate().unwrap();
        let now = stockholm_noon(today());
        let bundle = verify(&set.sign(&admin).unwrap(), &admin.public_key(), now).unwrap();
        Fixture {
            dir,
            bundle,
            set,
            admin,
            clinic,
            vault: Arc::new(MemoryVault::new()),
            clock: Arc::new(TestClock(Mutex::new(now))),
        }
    }

    /// The fixture's programs re-issued at `issued_at` (RFC 3339), changed by `change`, signed
    /// by the same administrator and verified on the fixture's clock.
    pub fn reissued(&self, issued_at: &str, change: impl FnOnce(&mut ProgramSet)) -> Bundle {
        let mut set = self.set.clone();
        set.issued_at = DateTime::parse_from_rfc3339(issued_at).unwrap();
        set.bundle_id = format!("test-{issued_at}");
        change(&mut set);
        let signed = set.sign(&self.admin).unwrap();
        verify(&signed, &self.admin.public_key(), self.clock.now()).unwrap()
    }

    pub fn path(&self) -> PathBuf {
        self.dir.join("device.sqlite")
    }

    pub fn open(&self) -> Store {
        Store::open(&self.path(), self.vault.clone(), self.clock.clone()).unwrap()
    }

    /// A draft for lots-for-livet, filled in, with a valid consent.
    pub fn ready_draft(&self, store: &mut Store) -> String {
        let id = store.create_draft(&self.bundle, "lots-for-livet").unwrap();
        store
            .update_draft(
                &id,
                DraftUpdate {
                    name: Some("Kim Testsson".into()),
                    phone: Some("070-123 45 67".into()),
                    language: Some("sv".into()),
                    identity_number: Some("19900412-1233".into()),
                    municipality: Some("Stockholm".into()),
                    provenance: Some(Provenance::Document),
                    ..DraftUpdate::default()
                },
            )
            .unwrap();
        store.record_consent(&id, &self.bundle, &consent()).unwrap();
        id
    }

    pub fn open_sealed(&self, id: &str, program_id: &str, sealed: &[u8]) -> HandoverPayload {
        let binding = SealBinding {
            handover_id: id,
            program_id,
            clinic_key_id: "test-clinic-1",
            schema_version: outbox::PAYLOAD_SCHEMA_VERSION,
        };
        let plain =
            open_from_device(&self.clinic, &binding, &Sealed::from_bytes(sealed).unwrap()).unwrap();
        serde_json::from_slice(&plain).unwrap()
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

use crate::crypto::seal::SealBinding;

/// A change of the typed fields `set` sets.
fn change(set: impl FnOnce(&mut DraftUpdate)) -> DraftUpdate {
    let mut update = DraftUpdate::default();
    set(&mut update);
    update
}

/// A consent form the person agrees to in full (the personnummer only where required).
pub(crate) fn consent() -> ConsentForm {
    crate::consent::tests::form()
}

/// Delivery belongs to sync; this sets the state as it will be after a verified receipt.
fn mark_delivered(store: &Store, id: &str) {
    store
        .connection()
        .execute(
            "UPDATE outbox SET state = 'delivered', payload = NULL WHERE id = ?1",
            [id],
        )
        .unwrap();
}

fn count(store: &Store, sql: &str) -> i64 {
    store.connection().query_row(sql, [], |r| r.get(0)).unwrap()
}

#[test]
fn opening_sets_the_pragmas_the_design_requires() {
    let f = Fixture::new("pragmas");
    let store = f.open();
    let c = store.connection();
    let mode: String = c
        .query_row("PRAGMA journal_mode", [], |r| r.get(0))
        .unwrap();
    let sync: i64 = c.query_row("PRAGMA synchronous", [], |r| r.get(0)).unwrap();
    let secure: i64 = c
        .query_row("PRAGMA secure_delete", [], |r| r.get(0))
        .unwrap();
    let fk: i64 = c
        .query_row("PRAGMA foreign_keys", [], |r| r.get(0))
        .unwrap();
    assert_eq!((mode.as_str(), sync, secure, fk), ("wal", 2, 1, 1));
    assert_eq!(schema::version(c).unwrap(), schema::SCHEMA_VERSION);
    assert!(store.integrity_ok().unwrap());
}

#[test]
fn drafts_round_trip_encrypted_and_can_be_deleted() {
    let f = Fixture::new("drafts");
    let mut store = f.open();
    let id = f.ready_draft(&mut store);
    drop(store);
    let mut store = f.open();
    let d = store.draft(&id).unwrap();
    assert_eq!(d.draft.contact.name.as_deref(), Some("Kim Testsson"));
    assert_eq!(d.draft.program_id, "lots-for-livet");
    assert!(d.consent.is_some());
    assert_eq!(d.expires_at, f.clock.now().timestamp() + 72 * 3600);
    // Clear times are coarse: a draft started at 12:00:17 expires at the whole minute after.
    f.clock.advance(Duration::seconds(17));
    let later = store.create_draft(&f.bundle, "kalmar").unwrap();
    let expires = store.draft(&later).unwrap().expires_at;
    assert_eq!(expires % 60, 0);
    assert_eq!(expires - (f.clock.now().timestamp() + 72 * 3600), 43);
    // An update changes what was typed, never the id or the program.
    store
        .update_draft(&id, change(|u| u.note = Some("efter 14".into())))
        .unwrap();
    let changed = store.draft(&id).unwrap().draft;
    assert_eq!(
        (changed.draft_id.as_str(), changed.program_id.as_str()),
        (id.as_str(), "lots-for-livet")
    );
    store.delete_draft(&id).unwrap();
    assert!(matches!(store.draft(&id), Err(StoreError::NotFound { .. })));
    assert!(matches!(
        store.delete_draft(&id),
        Err(StoreError::NotFound { .. })
    ));
}

#[test]
fn drafts_expire_after_the_program_lifetime() {
    let f = Fixture::new("expiry");
    let mut store = f.open();
    let stockholm = store.create_draft(&f.bundle, "lots-for-livet").unwrap(); // 72 h
    let gislaved = store.create_draft(&f.bundle, "snackan-gislaved").unwrap(); // 48 h
    f.clock.advance(Duration::hours(49));
    assert_eq!(store.purge_expired().unwrap(), 1);
    assert!(matches!(
        store.draft(&gislaved),
        Err(StoreError::NotFound { .. })
    ));
    assert!(store.draft(&stockholm).is_ok());
    f.clock.advance(Duration::hours(24));
    drop(store);
    // Purged at open.
    let mut store = f.open();
    assert_eq!(count(&store, "SELECT count(*) FROM drafts"), 0);
    assert!(matches!(
        store.draft(&stockholm),
        Err(StoreError::NotFound { .. })
    ));
    let kinds: Vec<_> = store
        .audit_entries()
        .unwrap()
        .into_iter()
        .map(|e| e.kind)
        .collect();
    assert_eq!(kinds.iter().filter(|k| *k == "draft_expired").count(), 2);
}

#[test]
fn finalize_seals_for_the_clinic_and_erases_the_draft_in_one_step() {
    let f = Fixture::new("finalize");
    let mut store = f.open();
    let id = f.ready_draft(&mut store);
    let handover = store.finalize(&id, &f.bundle).unwrap();
    assert_eq!(handover, id);
    assert_eq!(count(&store, "SELECT count(*) FROM drafts"), 0);
    let status = store.queue_status().unwrap();
    assert_eq!(status.items.len(), 1);
    assert_eq!(status.items[0].state, ItemState::Pending);
    assert_eq!(status.oldest_pending_secs, Some(0));
    // Only the clinic can open it, and it holds only what the program asks for.
    let sealed = store.sealed_payload(&id).unwrap();
    let payload = f.open_sealed(&id, "lots-for-livet", &sealed);
    assert_eq!(payload.contact.phone.as_deref(), Some("+46701234567"));
    assert_eq!(payload.person.personnummer, None);
    assert_eq!(payload.person.kommunkod.as_deref(), Some("0180"));
    assert_eq!(payload.consent.subject_ref, id);
    // Another binding (e.g. a replayed payload under another id) does not open.
    let other = SealBinding {
        handover_id: "another-id",
        program_id: "lots-for-livet",
        clinic_key_id: "test-clinic-1",
        schema_version: 1,
    };
    assert!(open_from_device(&f.clinic, &other, &Sealed::from_bytes(&sealed).unwrap()).is_err());
    // Finalizing again finds no draft.
    assert!(matches!(
        store.finalize(&id, &f.bundle),
        Err(StoreError::NotFound { .. })
    ));
    let kinds: Vec<_> = store
        .audit_entries()
        .unwrap()
        .into_iter()
        .map(|e| e.kind)
        .collect();
    assert_eq!(
        kinds,
        [
            "draft_created",
            "draft_updated",
            "consent_recorded",
            "finalized"
        ]
    );
    assert_eq!(store.verify_audit().unwrap().entries, 4);
}

#[test]
fn finalize_refuses_without_consent_with_a_bad_verdict_or_a_bad_field() {
    let f = Fixture::new("refusals");
    let mut store = f.open();
    let p = f.bundle.program("lots-for-livet").unwrap();

    let id = store.create_draft(&f.bundle, &p.id).unwrap();
    assert!(matches!(
        store.finalize(&id, &f.bundle),
        Err(StoreError::ConsentMissing { .. })
    ));

    let cases = [
        (
            change(|u| u.municipality = Some("Solna".into())),
            "not_eligible",
        ),
        (
            change(|u| u.phone = Some("070-12".into())),
            "phone_too_short",
        ),
        // A new number clears the consent; with consent given again, the number is refused.
        (
            change(|u| u.identity_number = Some("19900412-1234".into())),
            "invalid_checksum",
        ),
    ];
    for (typed, code) in cases {
        let id = f.ready_draft(&mut store);
        store.update_draft(&id, typed).unwrap();
        store.record_consent(&id, &f.bundle, &consent()).unwrap();
        let err = store.finalize(&id, &f.bundle).unwrap_err();
        assert_eq!(err.code(), code, "{err}");
    }

    // Nothing was lost: every refused draft is still there, and nothing was queued.
    assert_eq!(count(&store, "SELECT count(*) FROM drafts"), 4);
    assert_eq!(count(&store, "SELECT count(*) FROM outbox"), 0);
}

#[test]
fn consent_is_checked_before_it_is_stored() {
    let f = Fixture::new("consent");
    let mut store = f.open();
    let p = f.bundle.program("kalmar").unwrap();
    let id = store.create_draft(&f.bundle, &p.id).unwrap();
    let mut c = consent();
    c.capacity = Capacity::Doubtful;
    let err = store.record_consent(&id, &f.bundle, &c).unwrap_err();
    assert_eq!(err.code(), "consent_capacity_not_adequate");
    let other = ConsentForm {
        program_id: Some("lots-for-livet".into()),
        ..consent()
    };
    let err = store.record_consent(&id, &f.bundle, &other).unwrap_err();
    assert_eq!(err.code(), "consent_mismatch");
    // The store names the person by the draft's id itself: a form cannot name anyone else.
    let given = store.record_consent(&id, &f.bundle, &consent()).unwrap();
    assert_eq!(given.record.subject_ref, id);
    store.delete_draft(&id).unwrap();
    let id = store.create_draft(&f.bundle, &p.id).unwrap();
    assert!(store.draft(&id).unwrap().consent.is_none());
    // Withdrawing a draft nobody consented to erases it and counts no withdrawal …
    assert_eq!(store.withdraw(&id, None).unwrap(), Withdrawn::DraftErased);
    let withdrawals = |store: &Store| {
        count(
            store,
            "SELECT coalesce(sum(count), 0) FROM stats WHERE counter = 'withdrawals'",
        )
    };
    assert_eq!(withdrawals(&store), 0);
    // … a consented one counts the withdrawal in the same step.
    let id = store.create_draft(&f.bundle, &p.id).unwrap();
    store.record_consent(&id, &f.bundle, &consent()).unwrap();
    assert_eq!(store.withdraw(&id, None).unwrap(), Withdrawn::DraftErased);
    assert_eq!(withdrawals(&store), 1);
}

#[test]
fn withdrawal_before_delivery_erases_the_sealed_payload() {
    let f = Fixture::new("withdraw-early");
    let mut store = f.open();
    let id = f.ready_draft(&mut store);
    store.finalize(&id, &f.bundle).unwrap();
    assert_eq!(
        store.withdraw(&id, None).unwrap(),
        Withdrawn::ErasedBeforeDelivery
    );
    assert_eq!(
        count(
            &store,
            "SELECT count(*) FROM outbox WHERE payload IS NOT NULL"
        ),
        0
    );
    assert_eq!(
        store.queue_status().unwrap().items[0].state,
        ItemState::Withdrawn
    );
    assert_eq!(
        store.withdraw(&id, None).unwrap(),
        Withdrawn::AlreadyWithdrawn
    );
    assert!(matches!(
        store.sealed_payload(&id),
        Err(StoreError::WrongState { .. })
    ));
    // A draft can be withdrawn too: it is erased.
    let d = f.ready_draft(&mut store);
    assert_eq!(store.withdraw(&d, None).unwrap(), Withdrawn::DraftErased);
    assert!(matches!(store.draft(&d), Err(StoreError::NotFound { .. })));
    assert!(matches!(
        store.withdraw("no-such-id", None),
        Err(StoreError::NotFound { .. })
    ));
}

#[test]
fn withdrawal_after_delivery_queues_a_message_for_the_clinic() {
    let f = Fixture::new("withdraw-late");
    let mut store = f.open();
    let id = f.ready_draft(&mut store);
    store.finalize(&id, &f.bundle).unwrap();
    mark_delivered(&store, &id);
    let Withdrawn::QueuedForClinic { withdrawal_id } = store.withdraw(&id, None).unwrap() else {
        panic!("expected a queued withdrawal");
    };
    // Asking twice does not queue twice.
    assert_eq!(
        store.withdraw(&id, None).unwrap(),
        Withdrawn::QueuedForClinic {
            withdrawal_id: withdrawal_id.clone()
        }
    );
    let message: serde_json::Value =
        serde_json::from_slice(&store.sealed_payload(&withdrawal_id).unwrap()).unwrap();
    assert_eq!(message["handover_id"], id.as_str());
    assert_eq!(message["schema"], "lotsa.withdrawal/1");
    let status = store.queue_status().unwrap();
    let w = status.items.iter().find(|i| i.id == withdrawal_id).unwrap();
    assert_eq!(
        (w.kind, w.state),
        (ItemKind::Withdrawal, ItemState::Pending)
    );
    // The queue ties the two together: the referral stays delivered (it was), and says where
    // the message telling the clinic is; the message names its referral.
    assert_eq!(w.refers_to.as_deref(), Some(id.as_str()));
    assert_eq!(w.withdrawal, None);
    let r = status.items.iter().find(|i| i.id == id).unwrap();
    assert_eq!(
        (r.state, r.withdrawal, r.refers_to.as_deref()),
        (ItemState::Delivered, Some(ItemState::Pending), None)
    );
    mark_delivered(&store, &withdrawal_id);
    let status = store.queue_status().unwrap();
    let r = status.items.iter().find(|i| i.id == id).unwrap();
    assert_eq!(r.withdrawal, Some(ItemState::Delivered));
    // A referral nobody withdrew has none.
    let other = f.ready_draft(&mut store);
    store.finalize(&other, &f.bundle).unwrap();
    let status = store.queue_status().unwrap();
    let o = status.items.iter().find(|i| i.id == other).unwrap();
    assert_eq!((o.withdrawal, o.refers_to.as_deref()), (None, None));
}

#[test]
fn statistics_count_without_personal_data() {
    let f = Fixture::new("stats");
    let mut store = f.open();
    let id = f.ready_draft(&mut store);
    store.record_refusal(&f.bundle, "lots-for-livet").unwrap();
    store.record_refusal(&f.bundle, "lots-for-livet").unwrap();
    let facts = TypedFacts {
        birth_date: Some("2010-01-01".into()),
        ..TypedFacts::default()
    };
    let v = store
        .record_ineligible(&f.bundle, "lots-for-livet", &facts)
        .unwrap();
    assert!(!v.may_refer);
    store.finalize(&id, &f.bundle).unwrap();
    store.withdraw(&id, None).unwrap();
    let stats: Vec<(String, u64)> = store
        .stats()
        .unwrap()
        .into_iter()
        .map(|r| {
            assert_eq!(
                (r.day.as_str(), r.program_id.as_str()),
                ("2026-11-23", "lots-for-livet")
            );
            (r.counter, r.count)
        })
        .collect();
    assert_eq!(
        stats,
        [
            ("consents".to_string(), 1),
            ("ineligible:too_young".to_string(), 1),
            ("offers".to_string(), 3),
            ("refusals".to_string(), 2),
            ("withdrawals".to_string(), 1),
        ]
    );
}

fn flip_byte(store: &Store, sql_select: &str, sql_update: &str, id: &str) {
    let mut blob: Vec<u8> = store
        .connection()
        .query_row(sql_select, [id], |r| r.get(0))
        .unwrap();
    let i = blob.len() / 2;
    blob[i] ^= 0x01;
    store
        .connection()
        .execute(sql_update, rusqlite::params![blob, id])
        .unwrap();
}

#[test]
fn a_flipped_byte_in_a_draft_blob_flags_the_draft_and_never_gives_a_wrong_plaintext() {
    let f = Fixture::new("tamper-body");
    let mut store = f.open();
    for (select, update) in [
        (
            "SELECT body FROM drafts WHERE id = ?1",
            "UPDATE drafts SET body = ?1 WHERE id = ?2",
        ),
        (
            "SELECT consent FROM drafts WHERE id = ?1",
            "UPDATE drafts SET consent = ?1 WHERE id = ?2",
        ),
        (
            "SELECT wrapped_key FROM drafts WHERE id = ?1",
            "UPDATE drafts SET wrapped_key = ?1 WHERE id = ?2",
        ),
    ] {
        let id = f.ready_draft(&mut store);
        flip_byte(&store, select, update, &id);
        assert!(
            matches!(store.draft(&id), Err(StoreError::Damaged { .. })),
            "{select}"
        );
        // Flagged and kept, not dropped; finalize refuses it too.
        let flagged: Option<String> = store
            .connection()
            .query_row("SELECT damaged FROM drafts WHERE id = ?1", [&id], |r| {
                r.get(0)
            })
            .unwrap();
        assert!(flagged.is_some(), "{select}");
        assert!(matches!(
            store.finalize(&id, &f.bundle),
            Err(StoreError::Damaged { .. })
        ));
    }
    // A blob moved to another row does not open either.
    let a = f.ready_draft(&mut store);
    let b = f.ready_draft(&mut store);
    store
        .connection()
        .execute(
            "UPDATE drafts SET body = (SELECT body FROM drafts WHERE id = ?1) WHERE id = ?2",
            [&a, &b],
        )
        .unwrap();
    assert!(matches!(store.draft(&b), Err(StoreError::Damaged { .. })));
    assert!(store.draft(&a).is_ok());
    assert!(store.verify_audit().is_ok());
}

#[test]
fn a_flipped_byte_in_a_sealed_payload_is_caught_and_flagged() {
    let f = Fixture::new("tamper-sealed");
    let mut store = f.open();
    let id = f.ready_draft(&mut store);
    store.finalize(&id, &f.bundle).unwrap();
    flip_byte(
        &store,
        "SELECT payload FROM outbox WHERE id = ?1",
        "UPDATE outbox SET payload = ?1 WHERE id = ?2",
        &id,
    );
    assert!(matches!(
        store.sealed_payload(&id),
        Err(StoreError::Damaged { .. })
    ));
    let item = &store.queue_status().unwrap().items[0];
    assert_eq!(item.state, ItemState::Damaged);
    assert_eq!(item.last_error_code.as_deref(), Some("payload_damaged"));
}

#[test]
fn a_flipped_byte_in_the_wrapped_root_key_stops_drafts_but_not_the_outbox() {
    let f = Fixture::new("tamper-root");
    let mut store = f.open();
    let sealed = f.ready_draft(&mut store);
    store.finalize(&sealed, &f.bundle).unwrap();
    let id = f.ready_draft(&mut store);
    flip_byte(
        &store,
        "SELECT wrapped FROM root_keys WHERE epoch = ?1",
        "UPDATE root_keys SET wrapped = ?1 WHERE epoch = ?2",
        "1",
    );
    drop(store);
    // The store opens: what is already sealed needs no device key.
    let mut store = f.open();
    assert_eq!(store.queue_status().unwrap().items.len(), 1);
    assert!(store.sealed_payload(&sealed).is_ok());
    let err = store.draft(&id).unwrap_err();
    assert!(matches!(err, StoreError::Crypto(_)), "{err}");
    // Nothing was deleted or flagged: the draft is there for when the key is restored.
    assert_eq!(store.draft_ids().unwrap().len(), 1);
    assert_eq!(
        count(&store, "SELECT count(*) FROM drafts WHERE damaged IS NULL"),
        1
    );
}

#[test]
fn a_locked_vault_is_temporary_and_loses_nothing() {
    let f = Fixture::new("locked");
    let mut store = f.open();
    let id = f.ready_draft(&mut store);
    let sealed = f.ready_draft(&mut store);
    store.finalize(&sealed, &f.bundle).unwrap();
    drop(store);
    f.vault.set_unavailable(true);
    // Locked: the store opens and the outbox is usable (the sync job needs no key) …
    let mut store = f.open();
    assert!(store.sealed_payload(&sealed).is_ok());
    store.record_refusal(&f.bundle, "lots-for-livet").unwrap();
    // … while drafts wait for the unlock, untouched.
    assert_eq!(store.draft(&id).unwrap_err().code(), "vault_unavailable");
    let p = f.bundle.program("kalmar").unwrap();
    assert_eq!(
        store.create_draft(&f.bundle, &p.id).unwrap_err().code(),
        "vault_unavailable"
    );
    f.vault.set_unavailable(false);
    assert!(store.draft(&id).is_ok());
}

#[test]
fn refusing_or_closing_a_draft_erases_it_and_counts_once() {
    let f = Fixture::new("refuse-close");
    let mut store = f.open();
    let p = f.bundle.program("lots-for-livet").unwrap();
    let declined = store.create_draft(&f.bundle, &p.id).unwrap();
    store.refuse_draft(&declined).unwrap();
    let young = store.create_draft(&f.bundle, &p.id).unwrap();
    store
        .update_draft(&young, change(|u| u.birth_date = Some("2010-01-01".into())))
        .unwrap();
    let verdict = store.close_ineligible(&young, &f.bundle).unwrap();
    assert_eq!(verdict.blocking_codes(), ["too_young", "residency_missing"]);
    // An empty draft closed reaches no verdict: it counts nothing but its offer.
    let empty = store.create_draft(&f.bundle, &p.id).unwrap();
    let verdict = store.close_ineligible(&empty, &f.bundle).unwrap();
    assert_eq!(verdict.outcome, crate::eligibility::Outcome::Undetermined);
    assert_eq!(store.draft_ids().unwrap(), Vec::<(String, String)>::new());
    let stats: Vec<(String, u64)> = store
        .stats()
        .unwrap()
        .into_iter()
        .map(|r| (r.counter, r.count))
        .collect();
    assert_eq!(
        stats,
        [
            ("ineligible:too_young".to_string(), 1),
            ("offers".to_string(), 3),
            ("refusals".to_string(), 1),
        ]
    );
    let kinds: Vec<_> = store
        .audit_entries()
        .unwrap()
        .into_iter()
        .map(|e| e.kind)
        .collect();
    assert!(kinds.contains(&"draft_refused".to_string()));
    assert!(kinds.contains(&"draft_closed".to_string()));
}

#[test]
fn another_identity_number_clears_the_consent_but_a_phone_fix_keeps_it() {
    let f = Fixture::new("consent-cleared");
    let mut store = f.open();
    let id = f.ready_draft(&mut store);
    store
        .update_draft(&id, change(|u| u.phone = Some("070-123 45 68".into())))
        .unwrap();
    assert!(store.draft(&id).unwrap().consent.is_some());
    store
        .update_draft(
            &id,
            change(|u| u.identity_number = Some("19850412-1230".into())),
        )
        .unwrap();
    assert!(store.draft(&id).unwrap().consent.is_none());
    assert!(matches!(
        store.finalize(&id, &f.bundle),
        Err(StoreError::ConsentMissing { .. })
    ));
    assert!(store.verify_audit().is_ok());
    // Consenting again counts no second consent for the same person.
    store.record_consent(&id, &f.bundle, &consent()).unwrap();
    assert_eq!(
        count(&store, "SELECT count FROM stats WHERE counter = 'consents'"),
        1
    );
    // An eligible draft is not closed as ineligible: the store assesses it itself.
    assert_eq!(
        store.close_ineligible(&id, &f.bundle).unwrap_err().code(),
        "wrong_state"
    );
    assert!(store.draft(&id).is_ok());
}

#[test]
fn a_reader_on_another_connection_leaves_the_erasure_pending_not_failed() {
    let f = Fixture::new("checkpoint-busy");
    let mut store = f.open();
    let id = f.ready_draft(&mut store);
    // Another connection (a sync worker, say) in the middle of a read.
    let reader = rusqlite::Connection::open(f.path()).unwrap();
    reader
        .execute_batch("BEGIN; SELECT count(*) FROM outbox;")
        .unwrap();
    let started = std::time::Instant::now();
    store.finalize(&id, &f.bundle).unwrap();
    assert!(
        started.elapsed() < std::time::Duration::from_secs(2),
        "no long wait"
    );
    assert!(store.erasure_pending());
    reader.execute_batch("COMMIT").unwrap();
    drop(reader);
    // The next erasing step (or the next open) completes it.
    let other = f.ready_draft(&mut store);
    store.delete_draft(&other).unwrap();
    assert!(!store.erasure_pending());
    let wal = std::fs::metadata(f.dir.join("device.sqlite-wal"))
        .unwrap()
        .len();
    assert_eq!(wal, 0);
}

#[test]
fn the_withdrawal_message_holds_ids_a_minute_and_a_role_only() {
    let f = Fixture::new("withdrawal-message");
    let mut store = f.open();
    f.clock.advance(Duration::seconds(17));
    let id = f.ready_draft(&mut store);
    store.finalize(&id, &f.bundle).unwrap();
    mark_delivered(&store, &id);
    let officer = crate::consent::Recorder {
        role: Role::Lots,
        officer_id: "L-5555".into(),
        unit: "Uppsökarteamet".into(),
    };
    let Withdrawn::QueuedForClinic { withdrawal_id } = store.withdraw(&id, Some(&officer)).unwrap()
    else {
        panic!("expected a queued withdrawal");
    };
    let bytes = store.sealed_payload(&withdrawal_id).unwrap();
    let text = String::from_utf8(bytes).unwrap();
    assert!(
        !text.contains("L-5555") && !text.contains("Uppsökarteamet"),
        "{text}"
    );
    let message: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(message["recorded_by_role"], "lots");
    assert_eq!(message["withdrawn_at"], "2026-11-23T12:00:00+01:00");
    // Clear times are whole minutes.
    let odd: i64 = count(
        &store,
        "SELECT count(*) FROM outbox WHERE next_attempt_at % 60 != 0 OR queued_at % 60 != 0",
    );
    assert_eq!(odd, 0);
}

#[test]
fn errors_read_well_in_both_languages() {
    let e = StoreError::ConsentMissing { id: "x".into() };
    assert_eq!(e.code(), "consent_missing");
    assert!(e.message(Lang::Sv).contains("samtycke"));
    assert!(e.message(Lang::En).contains("consent"));
}

#[test]
fn an_unknown_stored_state_or_kind_is_an_error_never_another_state() {
    let conn = Connection::open_in_memory().unwrap();
    for known in ItemState::ALL {
        let read: ItemState = conn
            .query_row("SELECT ?1", [known.as_str()], |r| r.get(0))
            .unwrap();
        assert_eq!(read, known);
    }
    let read: rusqlite::Result<ItemState> = conn.query_row("SELECT 'shipped'", [], |r| r.get(0));
    assert!(read.is_err(), "an unknown state became {read:?}");
    let read: rusqlite::Result<ItemKind> = conn.query_row("SELECT 'parcel'", [], |r| r.get(0));
    assert!(read.is_err(), "an unknown kind became {read:?}");
    let read: rusqlite::Result<ItemState> = conn.query_row("SELECT 3", [], |r| r.get(0));
    assert!(read.is_err());
}

#[test]
fn a_full_disk_is_its_own_error_and_loses_nothing() {
    let f = Fixture::new("disk-full");
    let mut store = f.open();
    let id = f.ready_draft(&mut store);
    // SQLite reports SQLITE_FULL once the file may not grow: the store as a full phone sees it.
    let pages: i64 = store
        .connection()
        .query_row("PRAGMA page_count", [], |r| r.get(0))
        .unwrap();
    store
        .connection()
        .execute_batch(&format!("PRAGMA max_page_count = {pages}"))
        .unwrap();
    let mut full = None;
    for _ in 0..500 {
        match store.create_draft(&f.bundle, "kalmar") {
            Ok(_) => {}
            Err(e) => {
                full = Some(e);
                break;
            }
        }
    }
    let err = full.expect("the database never filled up");
    assert!(matches!(err, StoreError::StorageFull), "{err:?}");
    assert_eq!(err.code(), "storage_full");
    assert!(err.message(Lang::Sv).contains("fullt"));
    // What was there is untouched, and readable.
    assert_eq!(store.draft(&id).unwrap().draft.draft_id, id);
    assert!(store.verify_audit().is_ok());
    assert!(store.integrity_ok().unwrap());
}

#[test]
fn store_errors_name_their_field_in_the_one_vocabulary() {
    let f = Fixture::new("fields");
    let mut store = f.open();
    let missing = "00000000-0000-4000-8000-000000000000";
    assert_eq!(store.draft(missing).unwrap_err().field(), Some("draft_id"));
    assert_eq!(
        store.withdraw(missing, None).unwrap_err().field(),
        Some("handover_id")
    );
    let err = store.create_draft(&f.bundle, "kalmr").unwrap_err();
    assert_eq!(
        (err.code(), err.field()),
        ("unknown_program", Some("program_id"))
    );
    assert!(
        err.to_string().contains("kalmar"),
        "names what the bundle has: {err}"
    );
    let id = store.create_draft(&f.bundle, "lots-for-livet").unwrap();
    assert_eq!(
        store.finalize(&id, &f.bundle).unwrap_err().field(),
        Some("consent")
    );
    store
        .update_draft(&id, change(|u| u.municipality = Some("Atlantis".into())))
        .unwrap();
    let err = store.check_draft(&id, &f.bundle).unwrap_err();
    assert_eq!(
        (err.code(), err.field()),
        ("unknown_municipality", Some("municipality"))
    );
    // An update reports a contact problem at once, and keeps the value.
    let problem = store
        .update_draft(&id, change(|u| u.phone = Some("070-12".into())))
        .unwrap()
        .problems
        .remove(0);
    assert_eq!(
        (problem.field(), problem.code()),
        (Some("phone"), "phone_too_short")
    );
    assert_eq!(
        store.draft(&id).unwrap().draft.contact.phone.as_deref(),
        Some("070-12")
    );
}

#[test]
fn check_draft_says_what_is_left_before_finalize() {
    let f = Fixture::new("check");
    let mut store = f.open();
    let id = store.create_draft(&f.bundle, "lots-for-livet").unwrap();
    let check = store.check_draft(&id, &f.bundle).unwrap();
    assert!(!check.ready_to_finalize && !check.consent_recorded);
    assert_eq!(
        check.verdict.outcome,
        crate::eligibility::Outcome::Undetermined
    );
    let ready = f.ready_draft(&mut store);
    let check = store.check_draft(&ready, &f.bundle).unwrap();
    assert!(check.ready_to_finalize && check.consent_recorded && check.problem.is_none());
    assert!(check.verdict.may_refer);
}

#[test]
fn the_store_refuses_an_older_a_conflicting_or_a_future_bundle() {
    let f = Fixture::new("bundle-floor");
    let mut store = f.open();
    // The clock is 2026-11-23 12:00 Stockholm (11:00 UTC).
    let december = f.reissued("2026-11-20T00:00:00+01:00", |_| {});
    store.accept_bundle(&december).unwrap();
    // The same bundle again, and the fixture's own (older, 2026-11-01): the older is refused
    // by every call that takes a bundle, with nothing written.
    store.accept_bundle(&december).unwrap();
    let err = store.accept_bundle(&f.bundle).unwrap_err();
    assert_eq!(err.code(), "bundle_superseded", "{err}");
    assert!(err.message(Lang::Sv).contains("äldre"));
    let before = count(&store, "SELECT count(*) FROM audit");
    assert_eq!(
        store.create_draft(&f.bundle, "kalmar").unwrap_err().code(),
        "bundle_superseded"
    );
    assert_eq!(
        store
            .record_refusal(&f.bundle, "kalmar")
            .unwrap_err()
            .code(),
        "bundle_superseded"
    );
    assert_eq!(count(&store, "SELECT count(*) FROM audit"), before);
    assert!(store.stats().unwrap().is_empty());
    // Equal issue time: the same content is accepted, other content refused.
    let same_time_other = f.reissued("2026-11-20T00:00:00+01:00", |s| {
        s.programs[0].name.push_str(" (ändrad)")
    });
    assert_eq!(
        store.accept_bundle(&same_time_other).unwrap_err().code(),
        "bundle_conflict"
    );
    // A newer one becomes the floor; the one before it is then refused too.
    let newer = f.reissued("2026-11-23T08:00:00+01:00", |_| {});
    store.create_draft(&newer, "kalmar").unwrap();
    assert_eq!(
        store.accept_bundle(&december).unwrap_err().code(),
        "bundle_superseded"
    );
    // The floor survives a restart.
    drop(store);
    let mut store = f.open();
    assert_eq!(
        store.accept_bundle(&december).unwrap_err().code(),
        "bundle_superseded"
    );
    // From the future: up to an hour ahead of the phone's clock is drift, beyond is refused (and
    // the floor never passes now + an hour, so no such bundle can lock the device out).
    let in_59_minutes = f.reissued("2026-11-23T12:59:00+01:00", |_| {});
    store.accept_bundle(&in_59_minutes).unwrap();
    let in_two_hours = {
        let mut set = f.set.clone();
        set.issued_at = DateTime::parse_from_rfc3339("2026-11-23T14:00:00+01:00").unwrap();
        let signed = set.sign(&f.admin).unwrap();
        // Verified as a phone with a clock two hours ahead would, then offered to this one.
        let later = stockholm_noon(today()) + Duration::hours(3);
        verify(&signed, &f.admin.public_key(), later).unwrap()
    };
    let err = store.accept_bundle(&in_two_hours).unwrap_err();
    assert_eq!(err.code(), "bundle_from_future", "{err}");
    assert!(err.message(Lang::En).contains("clock"));
    // When the clock catches up, the same bundle is accepted.
    f.clock.advance(Duration::hours(2));
    store.accept_bundle(&in_two_hours).unwrap();
}

#[test]
fn a_consent_under_a_superseded_script_survives_a_bundle_update_unless_revoked() {
    let f = Fixture::new("script-update");
    let mut store = f.open();
    // Two people consent under lots-for-livet's script v1.
    let id = f.ready_draft(&mut store);
    let second = f.ready_draft(&mut store);
    let v2 = |s: &mut ProgramSet| {
        for script in &mut s.programs[0].consent_scripts {
            script.version = 2;
            script.text.push_str(" (2)");
            script.sha256 = crate::crypto::sha256_hex(script.text.as_bytes());
        }
    };
    let update = f.reissued("2026-11-22T00:00:00+01:00", v2);
    // A new consent must cite the current script …
    let other = store.create_draft(&update, "lots-for-livet").unwrap();
    let stale = ConsentForm {
        script_version: Some(1),
        ..consent()
    };
    assert_eq!(
        store
            .record_consent(&other, &update, &stale)
            .unwrap_err()
            .code(),
        "consent_script_not_current"
    );
    // … but the person who consented under v1 is not stranded by the update.
    assert!(store.check_draft(&id, &update).unwrap().ready_to_finalize);
    store.finalize(&id, &update).unwrap();
    // A bundle that revokes v1 stops such a consent at finalize, with the reason.
    let id = second;
    let revoking = f.reissued("2026-11-23T00:00:00+01:00", |s| {
        v2(s);
        let script_id = s.programs[0].consent_scripts[0].id.clone();
        s.programs[0]
            .revoked_consent_scripts
            .push(crate::program::ScriptVersion {
                id: script_id,
                version: 1,
            });
    });
    let err = store.finalize(&id, &revoking).unwrap_err();
    assert_eq!(
        (err.code(), err.field()),
        ("consent_script_revoked", Some("script"))
    );
    assert!(store.draft(&id).is_ok(), "nothing was lost");
}

#[test]
fn retyping_the_same_number_keeps_the_consent_and_a_new_one_says_it_cleared_it() {
    let f = Fixture::new("retype");
    let mut store = f.open();
    let id = f.ready_draft(&mut store); // 19900412-1233
    for same in [
        "900412-1233",
        "199004121233",
        "9004121233",
        " 19900412-1233 ",
    ] {
        let saved = store
            .update_draft(&id, change(|u| u.identity_number = Some(same.into())))
            .unwrap();
        assert!(!saved.consent_cleared, "{same}");
        assert!(store.draft(&id).unwrap().consent.is_some(), "{same}");
    }
    let saved = store
        .update_draft(
            &id,
            change(|u| u.identity_number = Some("19850412-1230".into())),
        )
        .unwrap();
    assert!(saved.consent_cleared);
    assert!(store.draft(&id).unwrap().consent.is_none());
    // Nothing to clear the second time.
    let saved = store
        .update_draft(
            &id,
            change(|u| u.identity_number = Some("19900412-1233".into())),
        )
        .unwrap();
    assert!(!saved.consent_cleared);
}

#[test]
fn a_key_the_platform_lost_gives_up_its_drafts_and_starts_a_new_epoch() {
    let f = Fixture::new("key-gone");
    let mut store = f.open();
    let lost = f.ready_draft(&mut store);
    let also_lost = store.create_draft(&f.bundle, "kalmar").unwrap();
    let sealed = f.ready_draft(&mut store);
    store.finalize(&sealed, &f.bundle).unwrap();
    drop(store);
    // The app was reinstalled: a new vault that has no key under the old alias.
    let reinstalled = Arc::new(MemoryVault::new());
    let mut store = Store::open(&f.path(), reinstalled.clone(), f.clock.clone()).unwrap();
    assert_eq!(
        store.take_key_loss_notice().unwrap(),
        None,
        "nothing lost yet"
    );
    let err = store.draft(&lost).unwrap_err();
    assert_eq!(err.code(), "damaged");
    assert_eq!(store.draft(&also_lost).unwrap_err().code(), "damaged");
    // New drafts work, under epoch 2; the outbox still sends (its payload needs no device key).
    let fresh = f.ready_draft(&mut store);
    assert!(store.draft(&fresh).is_ok());
    assert_eq!(
        count(
            &store,
            "SELECT max(epoch) FROM root_keys WHERE lost_day IS NULL"
        ),
        2
    );
    assert!(store.sealed_payload(&sealed).is_ok());
    // Told once, with both drafts counted; then nothing.
    let notice = store.take_key_loss_notice().unwrap().unwrap();
    assert_eq!(notice.drafts_lost, 2);
    assert!(notice.message(Lang::Sv).starts_with("2 ofärdiga remisser"));
    assert!(notice
        .message(Lang::En)
        .starts_with("2 unfinished referrals"));
    assert_eq!(store.take_key_loss_notice().unwrap(), None);
    // The lost drafts stay flagged until their normal expiry, then go.
    f.clock.advance(Duration::hours(73));
    assert_eq!(store.purge_expired().unwrap(), 3);
    assert!(store.verify_audit().is_ok());
    // A locked vault is never taken for a lost key.
    drop(store);
    reinstalled.set_unavailable(true);
    let mut store = Store::open(&f.path(), reinstalled.clone(), f.clock.clone()).unwrap();
    assert_eq!(
        store.create_draft(&f.bundle, "kalmar").unwrap_err().code(),
        "vault_unavailable"
    );
    assert_eq!(
        count(
            &store,
            "SELECT count(*) FROM root_keys WHERE lost_day IS NOT NULL"
        ),
        1
    );
}

#[test]
fn a_foreign_sqlite_file_is_never_adopted_and_store_files_are_private() {
    let f = Fixture::new("identity");
    // Someone else's database at the store's path.
    let foreign = Connection::open(f.path()).unwrap();
    foreign
        .execute_batch("CREATE TABLE notes (t TEXT); INSERT INTO notes VALUES ('x');")
        .unwrap();
    drop(foreign);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(f.path(), std::fs::Permissions::from_mode(0o644)).unwrap();
    }
    let err = Store::open(&f.path(), f.vault.clone(), f.clock.clone()).unwrap_err();
    assert_eq!(err.code(), "not_a_store");
    // Refused before anything changed it: not switched to WAL, its permissions left alone.
    let mode: String = Connection::open(f.path())
        .unwrap()
        .query_row("PRAGMA journal_mode", [], |r| r.get(0))
        .unwrap();
    assert_eq!(mode, "delete");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(f.path()).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o644);
    }
    // One that carries another application's id, even if empty.
    let other = f.dir.join("other.sqlite");
    Connection::open(&other)
        .unwrap()
        .execute_batch("PRAGMA application_id = 42;")
        .unwrap();
    let err = Store::open(&other, f.vault.clone(), f.clock.clone()).unwrap_err();
    assert_eq!(err.code(), "not_a_store");
    // A new store claims its file; its files are the owner's alone.
    let path = f.dir.join("mine.sqlite");
    let mut store = Store::open(&path, f.vault.clone(), f.clock.clone()).unwrap();
    store.create_draft(&f.bundle, "kalmar").unwrap();
    let id: i32 = store
        .connection()
        .query_row("PRAGMA application_id", [], |r| r.get(0))
        .unwrap();
    assert_eq!(id, schema::APPLICATION_ID);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        for suffix in ["", "-wal", "-shm", "-reserve"] {
            let file = PathBuf::from(format!("{}{suffix}", path.display()));
            let mode = std::fs::metadata(&file).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600, "{}", file.display());
        }
    }
}

#[test]
fn a_changed_clear_program_column_flags_the_draft_instead_of_moving_it() {
    let f = Fixture::new("program-column");
    let mut store = f.open();
    let id = f.ready_draft(&mut store);
    store
        .connection()
        .execute(
            "UPDATE drafts SET program_id = 'kalmar' WHERE id = ?1",
            [&id],
        )
        .unwrap();
    let err = store.draft(&id).unwrap_err();
    assert_eq!(err.code(), "damaged");
    let err = store
        .update_draft(&id, change(|u| u.note = Some("x".into())))
        .unwrap_err();
    assert_eq!(err.code(), "damaged");
    assert!(store.finalize(&id, &f.bundle).is_err());
    assert_eq!(count(&store, "SELECT count(*) FROM outbox"), 0);
}

#[test]
fn what_became_of_a_draft_is_said_and_withdrawing_twice_answers_the_same() {
    let f = Fixture::new("gone");
    let mut store = f.open();
    let finalized = f.ready_draft(&mut store);
    store.finalize(&finalized, &f.bundle).unwrap();
    let msg = |e: StoreError| (e.code(), e.message(Lang::En));
    let (code, text) = msg(store.draft(&finalized).unwrap_err());
    assert_eq!(code, "not_found");
    assert!(text.contains("already finalized"), "{text}");
    let expiring = store.create_draft(&f.bundle, "snackan-gislaved").unwrap();
    let withdrawn = f.ready_draft(&mut store);
    assert_eq!(
        store.withdraw(&withdrawn, None).unwrap(),
        Withdrawn::DraftErased
    );
    f.clock.advance(Duration::hours(49));
    let (_, text) = msg(store.draft(&expiring).unwrap_err());
    assert!(text.contains("expired"), "{text}");
    let (_, text) = msg(store
        .draft("00000000-0000-4000-8000-000000000009")
        .unwrap_err());
    assert!(text.contains("no draft"), "{text}");
    // Withdrawn as a draft, withdrawn again: the same answer as for an outbox item.
    assert_eq!(
        store.withdraw(&withdrawn, None).unwrap(),
        Withdrawn::AlreadyWithdrawn
    );
    assert_eq!(
        store.withdraw(&finalized, None).unwrap(),
        Withdrawn::ErasedBeforeDelivery
    );
    assert_eq!(
        store.withdraw(&finalized, None).unwrap(),
        Withdrawn::AlreadyWithdrawn
    );
}
