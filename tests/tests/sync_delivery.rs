//! The device's delivery engine end to end: a real device store (SQLite file, key vault) and a
//! real clinic service on 127.0.0.1 over HTTPS. What is recorded offline reaches the clinic
//! exactly once when it is reachable again, and then the phone forgets it.

use chrono::Utc;
use lotsa_core::clock::SystemClock;
use lotsa_core::crypto::vault::KeyVault;
use lotsa_core::store::{ItemState, Store, Withdrawn, DEVICE_KEY_ALIAS};
use lotsa_core::sync::{self, DeviceAction, SyncError, SyncOptions, Trigger};
use lotsa_tests::field::{field, options};
use std::sync::Arc;
use std::time::Duration;

#[test]
fn referrals_recorded_offline_reach_the_clinic_once_when_it_is_reachable_and_the_phone_forgets_them(
) {
    let mut f = field("offline");
    f.enrol();
    f.clinic.stop();
    let a = f.referral();
    let b = f.referral();
    let offline = f.sync(Trigger::Scheduled);
    assert_eq!(offline.retrying.len(), 2, "{offline:?}");
    assert!(offline.retrying.iter().all(|n| n.code == "network"));
    assert!(offline.next_due.is_some());
    assert_eq!(f.state(&a), ItemState::Pending);

    f.clinic.resume().unwrap();
    let back = f.sync(Trigger::ConnectivityRestored);
    let mut delivered = back.delivered.clone();
    delivered.sort();
    let mut expected = vec![a.clone(), b.clone()];
    expected.sort();
    assert_eq!(delivered, expected, "{back:?}");
    assert_eq!(f.held(), 2);
    for id in [&a, &b] {
        assert_eq!(f.state(id), ItemState::Delivered);
        assert!(
            f.store.sealed_payload(id).is_err(),
            "the phone forgot the payload"
        );
    }
    assert!(f.store.verify_audit().unwrap().entries > 0);
    // Nothing due: a run returns at once, touching nothing.
    let idle = f.sync(Trigger::Scheduled);
    assert!(idle.delivered.is_empty() && idle.retrying.is_empty() && idle.next_due.is_none());
    assert_eq!(f.held(), 2);
}

#[test]
fn a_withdrawal_after_delivery_is_sent_after_its_referral_and_the_clinic_erases_it() {
    let mut f = field("withdraw");
    f.enrol();
    let id = f.referral();
    assert_eq!(f.sync(Trigger::Manual).delivered, vec![id.clone()]);
    let Withdrawn::QueuedForClinic { withdrawal_id } = f.store.withdraw(&id, None).unwrap() else {
        panic!("a delivered referral queues a withdrawal message");
    };
    let report = f.sync(Trigger::Manual);
    assert_eq!(report.delivered, vec![withdrawal_id.clone()], "{report:?}");
    assert_eq!(f.held(), 0);
    assert!(f
        .clinic
        .storage()
        .unwrap()
        .tombstone(&id)
        .unwrap()
        .is_some());
    assert_eq!(f.state(&withdrawal_id), ItemState::Delivered);
}

#[test]
fn an_item_for_a_clinic_the_phone_is_not_enrolled_at_waits_with_a_reason_then_goes_after_enrolment()
{
    let mut f = field("enrol");
    let id = f.referral();
    let report = f.sync(Trigger::Manual);
    assert_eq!(report.waiting.len(), 1);
    assert_eq!(report.waiting[0].code, "not_enrolled");
    // Not due again for a while (a scheduler must not spin on it) …
    let due = report.next_due.unwrap();
    assert!(due >= f.store.now_unix() + 600, "{due}");
    assert!(
        matches!(&report.actions[..], [DeviceAction::Enrol { reason, .. }] if reason == "not_enrolled")
    );
    assert_eq!(f.state(&id), ItemState::Pending);
    assert_eq!(f.held(), 0);
    // … until the phone enrols: then at once.
    f.enrol();
    assert!(f.store.next_due().unwrap().unwrap() <= f.store.now_unix());
    assert_eq!(f.sync(Trigger::Manual).delivered, vec![id]);
}

#[test]
fn a_revoked_phone_keeps_its_items_and_a_lost_device_key_re_enrols_and_resumes() {
    let mut f = field("revoke");
    let device = f.enrol();
    f.clinic
        .storage()
        .unwrap()
        .revoke(&device, Utc::now().timestamp())
        .unwrap();
    let id = f.referral();
    let report = f.sync(Trigger::Manual);
    assert!(
        matches!(&report.actions[..], [DeviceAction::Enrol { reason, .. }] if reason == "device_revoked"),
        "{report:?}"
    );
    assert_eq!(f.state(&id), ItemState::Pending);

    // The vault loses the device key (app data restored, lock screen removed …): the next
    // enrolment, and the next run with something due, say so; nothing is lost.
    f.vault.destroy(DEVICE_KEY_ALIAS).unwrap();
    let code = f.clinic.enrolment_code().unwrap();
    assert!(matches!(
        sync::enrol(
            &mut f.store,
            &f.bundle,
            "lots-for-livet",
            &code,
            options().timeouts
        ),
        Err(SyncError::DeviceKeyLost)
    ));
    f.store.retry_item(&id).unwrap();
    assert!(matches!(
        sync::sync(&mut f.store, &f.bundle, &options()),
        Err(SyncError::DeviceKeyLost)
    ));
    assert_eq!(f.state(&id), ItemState::Pending, "nothing lost");
    let renewed = f.store.renew_device_key().unwrap();
    assert_ne!(renewed.device_id, device);
    assert_eq!(f.enrol(), renewed.device_id);
    let report = f.sync(Trigger::Manual);
    assert_eq!(report.delivered, vec![id], "{report:?}");
}

#[test]
fn two_syncs_at_once_never_send_an_item_twice() {
    let mut f = field("concurrent");
    f.enrol();
    let ids: Vec<String> = (0..8).map(|_| f.referral()).collect();
    let path = f.dir.0.join("device.sqlite");
    let vault: Arc<dyn KeyVault> = f.vault.clone();
    let bundle = &f.bundle;
    let reports: Vec<sync::SyncReport> = std::thread::scope(|scope| {
        let runs: Vec<_> = (0..2)
            .map(|_| {
                let (path, vault) = (path.clone(), vault.clone());
                scope.spawn(move || {
                    let mut store = Store::open(&path, vault, Arc::new(SystemClock)).unwrap();
                    sync::sync(&mut store, bundle, &options()).unwrap()
                })
            })
            .collect();
        runs.into_iter().map(|r| r.join().unwrap()).collect()
    });
    let mut sent: Vec<String> = reports.iter().flat_map(|r| r.delivered.clone()).collect();
    sent.sort();
    let mut expected = ids.clone();
    expected.sort();
    assert_eq!(sent, expected, "each item once, by one of the two runs");
    assert!(reports.iter().all(|r| r.already_delivered.is_empty()));
    assert_eq!(f.held(), 8);
}

#[test]
fn a_run_never_starts_a_request_it_cannot_finish_before_its_deadline() {
    let mut f = field("deadline");
    f.enrol();
    let id = f.referral();
    let short = SyncOptions {
        deadline: Duration::from_secs(3),
        ..options()
    };
    let report = sync::sync(&mut f.store, &f.bundle, &short).unwrap();
    assert!(report.stopped_at_deadline);
    assert!(report.delivered.is_empty());
    assert_eq!(f.state(&id), ItemState::Pending);
    assert_eq!(f.held(), 0);
}

#[test]
fn a_referral_routed_to_a_second_clinic_is_delivered_there_with_its_own_enrolment() {
    let mut f = field("routed");
    let mut snackan = lotsa_clinic::local::LocalClinic::create(
        &f.dir.0.join("snackan"),
        "Snäckan",
        "snackan-gislaved",
        Utc::now(),
    )
    .unwrap();
    let signed = lotsa_tests::field::bundle_for_programs(
        &[
            ("lots-for-livet", f.clinic.clinic()),
            ("snackan-gislaved", snackan.clinic()),
        ],
        &f.admin,
        Utc::now(),
    );
    let trust = f.admin.public_key();
    f.clinic.start(&signed, &trust).unwrap();
    snackan.start(&signed, &trust).unwrap();
    f.bundle = lotsa_core::program::verify(&signed, &trust, Utc::now()).unwrap();
    f.enrol();
    // Met at Plattan, registered in Gislaved: routed to Snäckan.
    let id = f.referral_to("snackan-gislaved", "Gislaved");
    let report = f.sync(Trigger::Manual);
    assert!(
        matches!(&report.actions[..], [DeviceAction::Enrol { clinic, .. }] if clinic == "Snäckan"),
        "{report:?}"
    );
    let code = snackan.enrolment_code().unwrap();
    sync::enrol(
        &mut f.store,
        &f.bundle,
        "snackan-gislaved",
        &code,
        options().timeouts,
    )
    .unwrap();
    assert_eq!(f.sync(Trigger::Manual).delivered, vec![id.clone()]);
    assert_eq!(snackan.storage().unwrap().handover_ids().unwrap(), vec![id]);
    assert_eq!(f.held(), 0, "nothing went to the other clinic");
}

#[test]
fn a_newer_bundle_the_clinic_serves_reaches_the_phone_and_an_older_one_is_refused() {
    let mut f = field("bundle");
    f.enrol();
    let trust = f.admin.public_key();
    let first = f.bundle.clone();
    let newer = lotsa_tests::field::bundle_for(
        f.clinic.clinic(),
        &f.admin,
        Utc::now() + chrono::Duration::minutes(1),
    );
    let with_trust = SyncOptions {
        trust: Some(trust),
        ..options()
    };
    // A newer one served: applied through the store's floor.
    f.clinic.start(&newer, &trust).unwrap();
    f.referral();
    let report = sync::sync(&mut f.store, &f.bundle, &with_trust).unwrap();
    assert_eq!(report.delivered.len(), 1);
    assert!(report.bundle_updated.is_some(), "{report:?}");
    assert_eq!(
        report.new_bundle.as_deref(),
        Some(newer.as_str()),
        "the app gets the text to keep"
    );
    assert!(matches!(
        f.store.accept_bundle(&first),
        Err(lotsa_core::store::StoreError::BundleSuperseded { .. })
    ));
    // The app now uses it; the clinic serving the older one again changes nothing.
    f.bundle = lotsa_core::program::verify(&newer, &trust, Utc::now()).unwrap();
    let older_text = lotsa_tests::field::bundle_for(f.clinic.clinic(), &f.admin, Utc::now());
    f.clinic.start(&older_text, &trust).unwrap();
    f.referral();
    let report = sync::sync(&mut f.store, &f.bundle, &with_trust).unwrap();
    assert_eq!(report.delivered.len(), 1);
    assert_eq!(report.bundle_updated, None);
}

#[test]
fn a_locked_screen_still_sends_what_is_sealed() {
    let mut f = field("locked");
    f.enrol();
    let id = f.referral();
    // Locked: the drafts' keys are out of reach, the device key ("after first unlock") is not.
    // The background job opens its own store (a new process).
    f.vault.set_screen_locked(true, &[DEVICE_KEY_ALIAS]);
    let path = f.dir.0.join("device.sqlite");
    let vault: Arc<dyn KeyVault> = f.vault.clone();
    let mut background = Store::open(&path, vault, Arc::new(SystemClock)).unwrap();
    assert!(background
        .create_draft(&f.bundle, "lots-for-livet")
        .is_err());
    let report = sync::sync(&mut background, &f.bundle, &options()).unwrap();
    assert_eq!(report.delivered, vec![id]);
    assert_eq!(f.held(), 1);
}
