//! The clinic keeps little, briefly: a settled referral is erased when its program's retention
//! runs out, a withdrawn one at once, tombstones after their period; only anonymous outcome
//! counters stay. Run with a controlled clock against referrals a real phone delivered.

use chrono::{Duration, Utc};
use lotsa_clinic::retention;
use lotsa_clinic::storage::{iso_week, Erased};
use lotsa_clinic::worklist::Action;
use lotsa_core::sync::Trigger;
use lotsa_tests::field::field;

/// Whether `needle` appears in the clinic database or its -wal or -shm file.
fn in_database_files(db: &std::path::Path, needle: &[u8]) -> bool {
    ["", "-wal", "-shm"].iter().any(|suffix| {
        std::fs::read(format!("{}{suffix}", db.display()))
            .unwrap_or_default()
            .windows(needle.len())
            .any(|w| w == needle)
    })
}

#[test]
fn retention_erases_exactly_what_is_due_and_leaves_no_byte_of_it_and_the_counters_stay() {
    let mut f = field("retention");
    f.enrol();
    let ids: Vec<String> = (0..4).map(|_| f.referral()).collect();
    assert_eq!(f.sync(Trigger::Manual).delivered.len(), 4);
    let (contacted, declined, waiting, withdrawn) = (&ids[0], &ids[1], &ids[2], &ids[3]);
    f.store.withdraw(withdrawn, None).unwrap();
    assert_eq!(f.sync(Trigger::Manual).delivered.len(), 1);
    let storage = f.clinic.storage().unwrap();
    let secrets = f.clinic_secrets();
    let list = secrets.worklist(&storage, &f.bundle);
    let now = Utc::now();
    for (id, action, reason) in [
        (contacted, Action::Contacted, "talked"),
        (declined, Action::Declined, "not_now"),
    ] {
        list.claim("anna", id, now).unwrap();
        list.record("anna", id, action, reason, now).unwrap();
    }
    // Canaries: a run of each settled referral's sealed bytes, there before the erasure.
    let canaries: Vec<Vec<u8>> = [contacted, declined]
        .iter()
        .map(|id| storage.handover(id).unwrap().unwrap().sealed[40..80].to_vec())
        .collect();
    let db = f.clinic.home().database();
    storage.checkpoint().unwrap();
    assert!(canaries.iter().all(|c| in_database_files(&db, c)));

    // Lots för livet keeps a settled referral 30 days: day 29, nothing goes.
    let day = |n: i64| now + Duration::days(n);
    assert_eq!(
        retention::run(&storage, &f.bundle, day(29)).unwrap(),
        Erased::default()
    );
    assert_eq!(storage.handover_count().unwrap(), 3);
    // Day 31: the two settled ones go; the one nobody has phoned yet stays.
    let erased = retention::run(&storage, &f.bundle, day(31)).unwrap();
    assert_eq!(
        erased,
        Erased {
            referrals: 2,
            tombstones: 0
        }
    );
    assert_eq!(storage.handover_ids().unwrap(), vec![waiting.clone()]);
    for id in [contacted, declined] {
        assert!(
            storage.tombstone(id).unwrap().is_some(),
            "a late copy is refused"
        );
        assert!(storage.attempts(id).unwrap().is_empty());
        assert!(storage.first_contact(id).unwrap().is_none());
    }
    for canary in &canaries {
        assert!(
            !in_database_files(&db, canary),
            "an erased referral's bytes remain"
        );
    }
    // Day 61: the withdrawal's tombstone (day 0) has had its 60 days; the newer ones stay.
    let erased = retention::run(&storage, &f.bundle, day(61)).unwrap();
    assert_eq!(erased.tombstones, 1);
    assert!(storage.tombstone(withdrawn).unwrap().is_none());
    assert!(storage.tombstone(contacted).unwrap().is_some());
    assert_eq!(storage.handover_ids().unwrap(), vec![waiting.clone()]);

    // What stays: anonymous counters for the week.
    let week = iso_week(now.timestamp());
    let mut counts: Vec<(String, i64)> = storage
        .outcomes()
        .unwrap()
        .into_iter()
        .map(|o| {
            assert_eq!(
                (o.program_id.as_str(), o.week.as_str()),
                ("lots-for-livet", week.as_str())
            );
            (o.outcome, o.count)
        })
        .collect();
    counts.sort();
    assert_eq!(
        counts,
        vec![
            ("contacted_in_time".to_string(), 1),
            ("declined".to_string(), 1),
            ("withdrawn".to_string(), 1)
        ]
    );
}

#[test]
fn a_call_after_the_deadline_counts_as_late() {
    let mut f = field("retention-late");
    f.enrol();
    let id = f.referral();
    assert_eq!(f.sync(Trigger::Manual).delivered.len(), 1);
    let storage = f.clinic.storage().unwrap();
    let secrets = f.clinic_secrets();
    let list = secrets.worklist(&storage, &f.bundle);
    // Two working days are over long before ten days have passed.
    let late = Utc::now() + Duration::days(10);
    list.claim("anna", &id, late).unwrap();
    list.record("anna", &id, Action::Contacted, "talked", late)
        .unwrap();
    let outcomes = storage.outcomes().unwrap();
    assert_eq!(outcomes.len(), 1);
    assert_eq!(
        (
            outcomes[0].outcome.as_str(),
            outcomes[0].count,
            outcomes[0].week.clone()
        ),
        ("contacted_late", 1, iso_week(late.timestamp()))
    );
}

#[test]
fn the_figures_of_a_scripted_week_match_what_happened_and_small_cells_are_suppressed() {
    let mut f = field("figures");
    f.enrol();
    let ids: Vec<String> = (0..9).map(|_| f.referral()).collect();
    // One withdrawn from the phone after delivery.
    assert_eq!(f.sync(Trigger::Manual).delivered.len(), 9);
    f.store.withdraw(&ids[8], None).unwrap();
    assert_eq!(f.sync(Trigger::Manual).delivered.len(), 1);
    let storage = f.clinic.storage().unwrap();
    let secrets = f.clinic_secrets();
    let list = secrets.worklist(&storage, &f.bundle);
    let now = Utc::now();
    // Six phoned in time, two declined.
    for (i, id) in ids[..8].iter().enumerate() {
        let (action, reason) = if i < 6 {
            (Action::Contacted, "talked")
        } else {
            (Action::Declined, "not_now")
        };
        list.claim("anna", id, now).unwrap();
        list.record("anna", id, action, reason, now).unwrap();
    }
    use lotsa_clinic::figures::{rows, Cell};
    let table = rows(
        &storage.outcomes().unwrap(),
        Some("lots-for-livet"),
        None,
        None,
    );
    assert_eq!(table.len(), 1);
    assert_eq!(table[0].week, iso_week(now.timestamp()));
    assert_eq!(
        table[0].cells,
        [
            Cell::Count(6),
            Cell::Count(0),
            Cell::Count(0),
            Cell::Suppressed,
            Cell::Count(0),
            Cell::Suppressed
        ],
        "6 in time; 2 declined and 1 withdrawn are under 5"
    );
    // The raw counters behind them are exact.
    let raw: i64 = storage.outcomes().unwrap().iter().map(|o| o.count).sum();
    assert_eq!(raw, 9);
}

#[test]
fn a_phone_silent_on_waiting_referrals_past_the_promise_is_flagged() {
    use lotsa_clinic::backlog::{view, waiting};
    use lotsa_tests::proxy::Fault;
    let mut f = lotsa_tests::field::field_behind_proxy("backlog");
    f.enrol();
    f.referral();
    f.referral();
    // The clinic's answer to the first is lost (it waits on the phone); the second goes through
    // on a new connection; the phone tells the clinic one is waiting.
    f.proxy.as_ref().unwrap().next(&[Fault::DropResponse]);
    let report = f.sync(Trigger::Manual);
    assert_eq!(
        (report.retrying.len(), report.delivered.len()),
        (1, 1),
        "{report:?}"
    );
    let waiting_one = report.retrying[0].id.clone();
    let storage = f.clinic.storage().unwrap();
    let endpoint = f.clinic.clinic().endpoint.clone();
    let now = Utc::now();
    let devices = view(storage.devices().unwrap(), Some(&f.bundle), &endpoint, now);
    assert_eq!(devices.len(), 1);
    let phone = &devices[0];
    assert!(phone.last_seen_at.is_some());
    assert!(waiting(phone.backlog.as_ref().unwrap()) >= 1, "{phone:?}");
    assert!(!phone.silent_with_backlog, "just seen");
    // Lots för livet promises two working days: a week of silence is past it.
    let later = now + Duration::days(7);
    let devices = view(
        storage.devices().unwrap(),
        Some(&f.bundle),
        &endpoint,
        later,
    );
    assert!(devices[0].silent_with_backlog);
    // Once it has sent everything and reported an empty queue, it is not flagged, however silent.
    f.store.retry_item(&waiting_one).unwrap();
    let report = f.sync(Trigger::Manual);
    assert_eq!(
        report.already_delivered.len() + report.delivered.len(),
        1,
        "{report:?}"
    );
    let devices = view(
        storage.devices().unwrap(),
        Some(&f.bundle),
        &endpoint,
        later,
    );
    assert_eq!(waiting(devices[0].backlog.as_ref().unwrap()), 0);
    assert!(!devices[0].silent_with_backlog);
}
