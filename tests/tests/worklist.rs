//! The clinic's worklist fed by real deliveries: a phone records and syncs referrals to a clinic
//! on loopback, and staff members list, claim and settle them through `lotsa_clinic::worklist`.
//! Every look and every action lands in the access log with a keyed hash of the phone number and
//! never the number.

use chrono::{Duration, TimeZone, Utc};
use lotsa_clinic::deadline::{deadline, Urgency};
use lotsa_clinic::storage::AccessFilter;
use lotsa_clinic::worklist::{phone_hmac, Action, WorklistError, CLAIM_SECS};
use lotsa_core::program::CallbackWithin;
use lotsa_core::sync::Trigger;
use lotsa_tests::field::{field, field_serving, Field};

/// A field with `n` referrals delivered to its clinic.
fn delivered(name: &str, n: usize) -> (Field, Vec<String>) {
    let mut f = field(name);
    f.enrol();
    let ids: Vec<String> = (0..n).map(|_| f.referral()).collect();
    let report = f.sync(Trigger::Manual);
    assert_eq!(report.delivered.len(), n, "{report:?}");
    (f, ids)
}

#[test]
fn delivered_referrals_wait_by_deadline_opened_for_staff_and_each_look_is_logged_without_the_number(
) {
    let (f, ids) = delivered("worklist-list", 2);
    let c = f.clinic_secrets();
    let storage = f.clinic.storage().unwrap();
    let list = c.worklist(&storage, &f.bundle);
    let now = Utc::now();
    let entries = list.waiting("anna", now).unwrap();
    assert_eq!(entries.len(), 2);
    for e in &entries {
        assert!(ids.contains(&e.handover_id));
        assert_eq!(e.payload.contact.name.as_deref(), Some("Kim Testsson"));
        assert_eq!(e.payload.contact.phone.as_deref(), Some("+46701234567"));
        assert_eq!(e.program_name, "Lots för livet");
        // Two working days from the consent, not from the arrival.
        assert_eq!(
            e.deadline,
            deadline(e.consented_at, CallbackWithin::WorkingDays(2))
        );
        assert_eq!(e.urgency, Urgency::InTime);
        assert!(e.claimed_by.is_none() && e.attempts.is_empty());
    }
    assert!(entries[0].deadline <= entries[1].deadline);

    let log = storage.access_log(&AccessFilter::default()).unwrap();
    assert_eq!(log.len(), 2);
    let hash = phone_hmac(&c.log_key, "+46701234567");
    for line in &log {
        assert_eq!(
            (line.staff.as_str(), line.action.as_str()),
            ("anna", "view")
        );
        assert_eq!(line.phone_hmac.as_deref(), Some(hash.as_slice()));
    }
    // The database files hold no clear phone number or name.
    let db = f.clinic.home().database();
    for suffix in ["", "-wal"] {
        let bytes = std::fs::read(format!("{}{suffix}", db.display())).unwrap_or_default();
        for clear in ["+46701234567", "Kim Testsson"] {
            assert!(
                !bytes.windows(clear.len()).any(|w| w == clear.as_bytes()),
                "{clear} in clinic.db{suffix}"
            );
        }
    }
}

#[test]
fn two_staff_members_never_claim_the_same_referral_and_a_claim_runs_out() {
    let (f, ids) = delivered("worklist-claim", 2);
    let c = f.clinic_secrets();
    let storage = f.clinic.storage().unwrap();
    let list = c.worklist(&storage, &f.bundle);
    let now = Utc::now();
    list.claim("anna", &ids[0], now).unwrap();
    assert!(matches!(
        list.claim("bertil", &ids[0], now),
        Err(WorklistError::ClaimedBy(who)) if who == "anna"
    ));
    // Bertil cannot record a call on Anna's referral.
    assert!(matches!(
        list.record("bertil", &ids[0], Action::Contacted, "talked", now),
        Err(WorklistError::NotClaimed)
    ));
    let shown = list.waiting("bertil", now).unwrap();
    let first = shown.iter().find(|e| e.handover_id == ids[0]).unwrap();
    assert_eq!(
        first.claimed_by.as_ref().map(|(w, _)| w.as_str()),
        Some("anna")
    );

    // Anna reaches the person: the referral leaves the list, and nobody can claim it again.
    list.record(
        "anna",
        &ids[0],
        Action::Contacted,
        "appointment_booked",
        now,
    )
    .unwrap();
    assert!(matches!(
        list.claim("bertil", &ids[0], now),
        Err(WorklistError::NotWaiting)
    ));
    let left: Vec<String> = list
        .waiting("anna", now)
        .unwrap()
        .into_iter()
        .map(|e| e.handover_id)
        .collect();
    assert_eq!(left, vec![ids[1].clone()]);
    assert_eq!(
        storage.first_contact(&ids[0]).unwrap().map(|(o, _)| o),
        Some("contacted".to_string())
    );

    // A claim runs out: after it, a colleague may take the referral.
    list.claim("anna", &ids[1], now).unwrap();
    let later = now + Duration::seconds(CLAIM_SECS + 1);
    list.claim("bertil", &ids[1], later).unwrap();
    // Released and reassigned, only by the one holding it.
    assert!(matches!(
        list.release("anna", &ids[1], later),
        Err(WorklistError::NotClaimed)
    ));
    assert!(matches!(
        list.reassign("bertil", &ids[1], "cecilia", later),
        Err(WorklistError::NoSuchColleague)
    ));
    lotsa_clinic::staff::add(&storage, "cecilia", later.timestamp()).unwrap();
    list.reassign("bertil", &ids[1], "cecilia", later).unwrap();
    list.record("cecilia", &ids[1], Action::Declined, "not_now", later)
        .unwrap();
    assert!(list.waiting("anna", later).unwrap().is_empty());
    // A reason that does not go with the action is refused, and nothing is recorded.
    assert!(matches!(
        list.record("cecilia", &ids[1], Action::Contacted, "no_answer", later),
        Err(WorklistError::BadReason)
    ));
    let actions: Vec<String> = storage
        .access_log(&AccessFilter {
            handover_id: Some(ids[1].clone()),
            ..AccessFilter::default()
        })
        .unwrap()
        .into_iter()
        .map(|e| format!("{}:{}", e.staff, e.action))
        .collect();
    assert!(
        actions.contains(&"bertil:reassign".to_string()),
        "{actions:?}"
    );
    assert!(
        actions.contains(&"cecilia:declined".to_string()),
        "{actions:?}"
    );
}

#[test]
fn not_reached_keeps_the_referral_until_the_program_gives_up() {
    let (f, ids) = delivered("worklist-unreached", 1);
    let c = f.clinic_secrets();
    let storage = f.clinic.storage().unwrap();
    let list = c.worklist(&storage, &f.bundle);
    let id = &ids[0];
    // Lots för livet gives up after five unanswered calls.
    for attempt in 1..=5 {
        let at = Utc::now() + Duration::hours(attempt);
        list.claim("anna", id, at).unwrap();
        list.record("anna", id, Action::NotReached, "no_answer", at)
            .unwrap();
        let waiting = list.waiting("anna", at).unwrap();
        if attempt < 5 {
            assert_eq!(waiting.len(), 1, "attempt {attempt}");
            assert_eq!(waiting[0].attempts.len(), attempt as usize);
        } else {
            assert!(waiting.is_empty(), "given up after the fifth");
        }
    }
    assert_eq!(
        storage.first_contact(id).unwrap().map(|(o, _)| o),
        Some("never_reached".to_string())
    );
    let history = storage.attempts(id).unwrap();
    assert_eq!(history.len(), 5);
    assert!(history
        .iter()
        .all(|a| a.outcome == "not_reached" && a.reason == "no_answer" && a.staff == "anna"));
}

#[test]
fn a_program_that_gives_up_after_days_settles_the_first_unanswered_call_after_them_as_never_reached(
) {
    let mut f = field_serving("worklist-days", &["lots-for-livet", "snackan-gislaved"]);
    f.enrol();
    let id = f.referral_to("snackan-gislaved", "Gislaved");
    assert_eq!(f.sync(Trigger::Manual).delivered.len(), 1);
    let c = f.clinic_secrets();
    let storage = f.clinic.storage().unwrap();
    let list = c.worklist(&storage, &f.bundle);
    let arrived = Utc
        .timestamp_opt(storage.received_at(&id).unwrap().unwrap(), 0)
        .unwrap();
    // Snäckan gives up 7 days after the referral arrived, however many calls went unanswered.
    let call = |at| {
        list.claim("anna", &id, at).unwrap();
        list.record("anna", &id, Action::NotReached, "phone_off", at)
            .unwrap();
        storage.first_contact(&id).unwrap().map(|(o, _)| o)
    };
    assert_eq!(call(arrived + Duration::hours(1)), None);
    assert_eq!(
        call(arrived + Duration::days(7) - Duration::minutes(1)),
        None
    );
    assert_eq!(
        call(arrived + Duration::days(7)),
        Some("never_reached".to_string())
    );
    assert_eq!(storage.attempts(&id).unwrap().len(), 3);
    let counted: i64 = storage
        .outcomes()
        .unwrap()
        .iter()
        .filter(|o| o.program_id == "snackan-gislaved" && o.outcome == "never_reached")
        .map(|o| o.count)
        .sum();
    assert_eq!(counted, 1);
}

#[test]
fn a_withdrawal_by_phone_or_from_the_phone_erases_the_referral_and_the_log_still_answers_for_the_number(
) {
    let (mut f, ids) = delivered("worklist-withdraw", 2);
    let c = f.clinic_secrets();
    let now = Utc::now();
    {
        let storage = f.clinic.storage().unwrap();
        let list = c.worklist(&storage, &f.bundle);
        list.waiting("anna", now).unwrap();
        list.claim("anna", &ids[1], now).unwrap();
        list.record("anna", &ids[1], Action::NotReached, "no_answer", now)
            .unwrap();
        list.claim("anna", &ids[0], now).unwrap();
        list.record("anna", &ids[0], Action::NotReached, "voicemail", now)
            .unwrap();
        list.claim("anna", &ids[0], now).unwrap();
        list.record("anna", &ids[0], Action::WithdrewByPhone, "withdrew", now)
            .unwrap();
        assert!(storage.handover(&ids[0]).unwrap().is_none(), "erased");
        assert!(storage.tombstone(&ids[0]).unwrap().is_some(), "tombstone");
        assert_eq!(list.waiting("anna", now).unwrap().len(), 1);
    }
    // The officer's phone sends the other person's withdrawal: gone from the list at once.
    f.store.withdraw(&ids[1], None).unwrap();
    let report = f.sync(Trigger::Manual);
    assert_eq!(report.delivered.len(), 1, "{report:?}");
    let storage = f.clinic.storage().unwrap();
    let list = c.worklist(&storage, &f.bundle);
    assert!(list.waiting("anna", now).unwrap().is_empty());
    assert!(matches!(
        list.claim("anna", &ids[1], now),
        Err(WorklistError::NotWaiting)
    ));
    // Nothing of either is left but the tombstone and the access log: no attempt, no first
    // contact, no claim.
    for id in &ids {
        assert!(storage.attempts(id).unwrap().is_empty(), "{id}");
        assert_eq!(storage.first_contact(id).unwrap(), None, "{id}");
    }

    // "Who looked at my data?" is answered from the number, after both referrals are erased.
    let seen = storage
        .access_log(&AccessFilter {
            phone_hmac: Some(phone_hmac(&c.log_key, "+46701234567")),
            ..AccessFilter::default()
        })
        .unwrap();
    let lines: Vec<String> = seen
        .iter()
        .map(|e| format!("{}:{}", e.staff, e.action))
        .collect();
    assert!(lines.contains(&"anna:view".to_string()), "{lines:?}");
    assert!(
        lines.contains(&"anna:withdrew_by_phone".to_string()),
        "{lines:?}"
    );
    assert!(seen.iter().all(|e| e.handover_id.is_some()));
}

#[test]
fn the_on_call_notification_carries_counts_and_nothing_else() {
    let (f, _) = delivered("worklist-notify", 2);
    let signed = lotsa_tests::field::bundle_for(f.clinic.clinic(), &f.admin, Utc::now());
    let ready = lotsa_clinic::serve::prepare(
        f.clinic.home(),
        &signed,
        &f.admin.public_key(),
        Utc::now(),
        lotsa_clinic::server::Limits::default(),
        lotsa_clinic::intake::DeviceRate::default(),
    )
    .unwrap();
    let site = ready.service.staff.unwrap();
    let out = f.dir.0.join("told.txt");
    let script = f.dir.0.join("page-oncall.sh");
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\n{{ env | grep '^LOTSA_' | sort; cat; echo; }} >> '{}'\n",
            out.display()
        ),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o700)).unwrap();
    let notifier = lotsa_clinic::notify::Notifier {
        command: script.clone(),
        every: std::time::Duration::from_secs(60),
    };
    use lotsa_clinic::notify::{run_once, Sent};
    use lotsa_clinic::worklist::Counts;
    let now = Utc::now();
    let sent = run_once(&site, &notifier, 0, now).unwrap();
    assert_eq!(
        sent,
        Sent::Told(Counts {
            new: 2,
            due_soon: 0,
            overdue: 0
        })
    );
    // Ten days later nobody has called: both overdue, none new since the last round.
    let later = now + Duration::days(10);
    let sent = run_once(&site, &notifier, now.timestamp() + 1, later).unwrap();
    assert_eq!(
        sent,
        Sent::Told(Counts {
            new: 0,
            due_soon: 0,
            overdue: 2
        })
    );
    let told = std::fs::read_to_string(&out).unwrap();
    assert!(
        told.contains("LOTSA_NEW=2") && told.contains("LOTSA_OVERDUE=2"),
        "{told}"
    );
    assert!(
        told.contains("\"schema\":\"lotsa.worklist-counts/1\""),
        "{told}"
    );
    for personal in ["Kim", "+4670", "070", "19900412"] {
        assert!(!told.contains(personal), "{personal} in {told}");
    }
    // Nobody looked: counting for a notification is not a view.
    let storage = f.clinic.storage().unwrap();
    assert!(storage
        .access_log(&AccessFilter::default())
        .unwrap()
        .is_empty());
    // A command that fails is reported, so the next round tries again.
    let failing = lotsa_clinic::notify::Notifier {
        command: "/bin/false".into(),
        ..notifier
    };
    assert!(matches!(
        run_once(&site, &failing, 0, now).unwrap(),
        Sent::CommandFailed(_)
    ));
}

#[test]
fn the_access_log_is_kept_five_years_and_then_forgotten() {
    let f = field("worklist-log-years");
    let storage = f.clinic.storage().unwrap();
    let now = Utc::now();
    let year = 365 * 86_400;
    let line = |age_secs: i64, referral: &str| lotsa_clinic::storage::AccessEntry {
        at: now.timestamp() - age_secs,
        staff: "anna".into(),
        handover_id: Some(referral.into()),
        action: "view".into(),
        phone_hmac: None,
    };
    storage
        .log_access(vec![
            line(5 * year + 86_400, "older-than-five-years"),
            line(5 * year - 86_400, "just-under-five-years"),
            line(3600, "this-morning"),
        ])
        .unwrap();
    let pruned = lotsa_clinic::worklist::prune_access_log(
        &storage,
        lotsa_clinic::worklist::ACCESS_LOG_YEARS,
        now,
    )
    .unwrap();
    assert_eq!(pruned, 1);
    let left: Vec<String> = storage
        .access_log(&AccessFilter::default())
        .unwrap()
        .into_iter()
        .filter_map(|l| l.handover_id)
        .collect();
    assert_eq!(left, ["just-under-five-years", "this-morning"]);
}
