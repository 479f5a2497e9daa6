//! Delivery through a real TCP proxy that misbehaves, to a real clinic that sheds load: whatever
//! happens on the way, every referral reaches the clinic exactly once, and a withdrawal after a
//! lost answer leaves the clinic holding nothing of that person.

use lotsa_clinic::server::Limits;
use lotsa_core::crypto::SigningKey;
use lotsa_core::program;
use lotsa_core::store::{ItemState, Withdrawn};
use lotsa_core::sync::{self, Trigger};
use lotsa_tests::field::{bundle_for, field_behind_proxy, options};
use lotsa_tests::liar::Liar;
use lotsa_tests::proxy::Fault;
use std::time::Duration;

/// What the phone last reported to the clinic about its queue (as the clinic keeps it).
fn backlog(f: &lotsa_tests::field::Field) -> serde_json::Value {
    let devices = f.clinic.storage().unwrap().devices().unwrap();
    assert_eq!(devices.len(), 1);
    assert!(devices[0].last_seen_at.is_some());
    serde_json::from_str(devices[0].backlog.as_deref().unwrap()).unwrap()
}

#[test]
fn an_answer_lost_after_the_clinic_stored_the_referral_is_fetched_again_as_the_same_receipt() {
    let mut f = field_behind_proxy("dropped");
    f.enrol();
    let id = f.referral();
    f.proxy.as_ref().unwrap().next(&[Fault::DropResponse]);
    let lost = f.sync(Trigger::Manual);
    assert_eq!(lost.retrying.len(), 1, "{lost:?}");
    assert_eq!(f.held(), 1, "the clinic stored it; the phone never heard");
    assert_eq!(f.state(&id), ItemState::Pending);
    f.store.retry_item(&id).unwrap();
    let again = f.sync(Trigger::Manual);
    assert_eq!(again.already_delivered, vec![id.clone()], "{again:?}");
    assert_eq!(f.held(), 1, "exactly one copy");
    assert_eq!(f.state(&id), ItemState::Delivered);
}

#[test]
fn hangups_shed_load_slow_answers_and_a_clinic_down_for_a_while_end_with_everything_delivered_once()
{
    let mut f = field_behind_proxy("faults");
    f.enrol();
    let ids: Vec<String> = (0..3).map(|_| f.referral()).collect();
    let proxy = f.proxy.as_ref().unwrap();

    // Hung up on before the handshake: network failures, nothing stored.
    proxy.next(&[Fault::Hangup, Fault::Hangup, Fault::Hangup]);
    let report = f.sync(Trigger::Manual);
    assert_eq!(report.retrying.len(), 3, "{report:?}");
    assert!(report.retrying.iter().all(|n| n.code == "network"));
    assert_eq!(f.held(), 0);

    // The clinic sheds load: 503 with Retry-After, honoured.
    f.clinic
        .set_limits(Limits {
            max_in_flight: 0,
            ..Limits::default()
        })
        .unwrap();
    let before = f.store.now_unix();
    let report = f.sync(Trigger::ConnectivityRestored);
    assert!(
        report.retrying.iter().all(|n| n.code == "overloaded"),
        "{report:?}"
    );
    let due = f.store.next_due().unwrap().unwrap();
    assert!(
        due >= before + 5,
        "Retry-After honoured: due in {} s",
        due - before
    );
    f.clinic.set_limits(Limits::default()).unwrap();

    // Slower than the phone waits: the clinic stores it, the phone times out and tries again.
    for id in &ids {
        f.store.retry_item(id).unwrap();
    }
    let proxy = f.proxy.as_ref().unwrap();
    proxy.next(&[Fault::Delay(Duration::from_secs(7))]);
    let report = f.sync(Trigger::Manual);
    assert!(
        report.retrying.iter().any(|n| n.code == "timeout"),
        "{report:?}"
    );

    // Down for a while, then back.
    f.clinic.stop();
    for id in &ids {
        let _ = f.store.retry_item(id);
    }
    let report = f.sync(Trigger::Manual);
    assert!(report.delivered.is_empty() && report.already_delivered.is_empty());
    f.clinic.resume().unwrap();
    let waiting_before = ids
        .iter()
        .filter(|id| f.state(id) == ItemState::Pending)
        .count();
    assert!(
        waiting_before >= 1,
        "the timed-out one waited out the outage"
    );
    let mut settled = 0;
    for _ in 0..3 {
        for id in &ids {
            let _ = f.store.retry_item(id);
        }
        let r = f.sync(Trigger::ConnectivityRestored);
        settled += r.delivered.len() + r.already_delivered.len();
    }
    assert_eq!(settled, waiting_before, "each waiting item settled once");
    for id in &ids {
        assert_eq!(f.state(id), ItemState::Delivered, "{id}");
    }
    assert_eq!(f.held(), 3, "each exactly once");
}

#[test]
fn a_withdrawal_after_a_lost_answer_leaves_the_clinic_holding_nothing_of_that_person() {
    let mut f = field_behind_proxy("lost-then-withdrawn");
    f.enrol();
    let id = f.referral();
    f.proxy.as_ref().unwrap().next(&[Fault::DropResponse]);
    f.sync(Trigger::Manual);
    assert_eq!(f.held(), 1);
    // Tried without a receipt: withdrawing erases the phone's copy and tells the clinic.
    let Withdrawn::QueuedForClinic { withdrawal_id } = f.store.withdraw(&id, None).unwrap() else {
        panic!("an item that was tried queues a withdrawal message");
    };
    assert!(f.store.sealed_payload(&id).is_err());
    let report = f.sync(Trigger::Manual);
    assert_eq!(report.delivered, vec![withdrawal_id], "{report:?}");
    assert_eq!(f.held(), 0);
    assert!(f
        .clinic
        .storage()
        .unwrap()
        .tombstone(&id)
        .unwrap()
        .is_some());
}

#[test]
fn a_2xx_whose_receipt_does_not_verify_erases_nothing_and_flags_the_item() {
    let mut f = field_behind_proxy("forged");
    f.enrol();
    let id = f.referral();
    // The phone's bundle names another receipt key than the clinic signs with (a clinic, or a
    // proxy, that cannot produce the receipt the bundle expects).
    let mut other = f.clinic.clinic().clone();
    other.receipt_key.public_key = SigningKey::generate().unwrap().public_key_b64();
    let signed = bundle_for(&other, &f.admin, chrono::Utc::now());
    let expecting_other =
        program::verify(&signed, &f.admin.public_key(), chrono::Utc::now()).unwrap();
    let report = sync::sync(&mut f.store, &expecting_other, &options()).unwrap();
    assert_eq!(report.retrying.len(), 1, "{report:?}");
    assert_eq!(report.retrying[0].code, "receipt_invalid");
    assert_eq!(f.state(&id), ItemState::Pending);
    assert!(f.store.sealed_payload(&id).is_ok(), "nothing erased");
    let item = f
        .store
        .queue_status()
        .unwrap()
        .items
        .into_iter()
        .find(|i| i.id == id)
        .unwrap();
    assert_eq!(item.last_error_code.as_deref(), Some("receipt_invalid"));
    // With the right bundle the repeat's original receipt verifies.
    f.store.retry_item(&id).unwrap();
    let report = f.sync(Trigger::Manual);
    assert_eq!(report.already_delivered, vec![id], "{report:?}");
}

#[test]
fn the_clinic_learns_how_many_referrals_a_phone_still_holds_for_it() {
    let mut f = field_behind_proxy("backlog");
    f.enrol();
    let ids = [f.referral(), f.referral()];
    // The first connection is hung up on: the item tried on it waits, the other goes through on
    // a new connection, and the phone then reports its queue to the clinic it reached.
    f.proxy.as_ref().unwrap().next(&[Fault::Hangup]);
    let report = f.sync(Trigger::Manual);
    assert_eq!(report.delivered.len(), 1, "{report:?}");
    assert_eq!(report.retrying.len(), 1);
    let stuck = report.retrying[0].id.clone();
    assert!(ids.contains(&stuck) && !report.delivered.contains(&stuck));
    let status = backlog(&f);
    assert_eq!(status["counts"]["pending"], 1, "{status}");
    assert!(status["oldest_pending_secs"].as_u64().is_some());
    assert_eq!(status["schema"], "lotsa.device-status/1");
    f.store.retry_item(&stuck).unwrap();
    f.sync(Trigger::Manual);
    let status = backlog(&f);
    assert_eq!(status["counts"]["pending"], 0);
    assert_eq!(status["oldest_pending_secs"], serde_json::Value::Null);
}

#[test]
fn a_2xx_with_no_receipt_erases_nothing_and_a_clinic_failure_is_retried() {
    let mut f = field_behind_proxy("no-receipt");
    f.enrol();
    let id = f.referral();
    // A server with the clinic's own certificate that answers 200 and nothing else.
    let liar = Liar::start(f.clinic.home().dir());
    f.proxy.as_ref().unwrap().point_at(liar.addr());
    let report = f.sync(Trigger::Manual);
    assert_eq!(report.retrying.len(), 1, "{report:?}");
    assert_eq!(report.retrying[0].code, "receipt_invalid");
    assert!(f.store.sealed_payload(&id).is_ok(), "nothing erased");
    assert_eq!(f.state(&id), ItemState::Pending);

    // The real clinic, with its database locked past the busy timeout: 500, retried.
    f.proxy.as_ref().unwrap().point_at(f.clinic.addr());
    let lock = rusqlite::Connection::open(f.clinic.home().database()).unwrap();
    lock.execute_batch("BEGIN IMMEDIATE").unwrap();
    f.store.retry_item(&id).unwrap();
    let patient = lotsa_core::sync::SyncOptions {
        timeouts: lotsa_core::sync::Timeouts {
            connect: Duration::from_secs(2),
            request: Duration::from_secs(12),
        },
        ..options()
    };
    let report = sync::sync(&mut f.store, &f.bundle, &patient).unwrap();
    lock.execute_batch("ROLLBACK").unwrap();
    assert_eq!(report.retrying.len(), 1, "{report:?}");
    assert_eq!(report.retrying[0].code, "internal");
    assert_eq!(f.held(), 0);
    f.store.retry_item(&id).unwrap();
    assert_eq!(f.sync(Trigger::Manual).delivered, vec![id]);
    assert_eq!(f.held(), 1);
}

#[test]
fn on_a_slow_link_a_run_gives_back_the_rest_of_its_batch_before_its_lease_runs_out_and_no_item_goes_twice(
) {
    let mut f = field_behind_proxy("slow-link");
    f.enrol();
    let ids: Vec<String> = (0..6).map(|_| f.referral()).collect();
    // Every answer takes 400 ms; a lease lasts 2 s and a request may take 1.5 s: a run can send
    // about two items of a batch under one lease, then must lease the rest again.
    f.proxy
        .as_ref()
        .unwrap()
        .next(&[Fault::SlowAnswers(Duration::from_millis(400)); 32]);
    let slow = sync::SyncOptions {
        lease: Duration::from_secs(2),
        timeouts: sync::Timeouts {
            connect: Duration::from_secs(1),
            request: Duration::from_millis(1500),
        },
        ..options()
    };
    let path = f.dir.0.join("device.sqlite");
    let vault: std::sync::Arc<dyn lotsa_core::crypto::vault::KeyVault> = f.vault.clone();
    let bundle = &f.bundle;
    let open = || {
        lotsa_core::store::Store::open(
            &path,
            vault.clone(),
            std::sync::Arc::new(lotsa_core::clock::SystemClock),
        )
        .unwrap()
    };
    let reports: Vec<sync::SyncReport> = std::thread::scope(|scope| {
        // The foreground app syncs once; the background job keeps looking for what is due.
        let foreground = scope.spawn(|| vec![sync::sync(&mut open(), bundle, &slow).unwrap()]);
        let background = scope.spawn(|| {
            let mut store = open();
            let mut reports = Vec::new();
            let started = std::time::Instant::now();
            while started.elapsed() < Duration::from_secs(10) {
                let report = sync::sync(&mut store, bundle, &slow).unwrap();
                let all_settled = report.next_due.is_none();
                reports.push(report);
                if all_settled {
                    break;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            reports
        });
        let mut all = foreground.join().unwrap();
        all.extend(background.join().unwrap());
        all
    });
    let mut sent: Vec<String> = reports.iter().flat_map(|r| r.delivered.clone()).collect();
    sent.sort();
    let mut expected = ids.clone();
    expected.sort();
    assert_eq!(sent, expected, "each item delivered once");
    for r in &reports {
        assert!(
            r.already_delivered.is_empty() && r.retrying.is_empty() && r.failed.is_empty(),
            "no item was sent by both runs: {r:?}"
        );
    }
    assert_eq!(f.held(), 6);
    for id in &ids {
        assert_eq!(f.state(id), ItemState::Delivered);
    }
}
