//! `lotsa demo`: the main job, end to end, on embedded defaults. A shift at Sergels torg
//! ("Plattan"): the example programs are signed with a throw-away administrator key and verified as
//! the app does at start; then the officer meets six people, and for each the account shows the
//! verdict, its reasons, the routing, and the consent script the officer reads — and, for those who
//! consent, the handover payload the clinic would receive (only the fields the program needs).

use crate::eligibility_cmd::{verdict_json, verdict_text};
use crate::out::{Ctx, Failure};
use crate::CmdResult;
use chrono::{Duration, Months, NaiveDate};
use lotsa_core::clock::{to_stockholm, Clock, SystemClock};
use lotsa_core::consent::{Capacity, ConsentRecord, Method, Recorder, Role};
use lotsa_core::crypto::SigningKey;
use lotsa_core::eligibility::{self, Outcome, Provenance};
use lotsa_core::identity;
use lotsa_core::program::{self, Bundle, ProgramSet, EXAMPLE_PROGRAMS_JSON};
use lotsa_core::referral::{
    build_handover, new_referral_id, ContactDetails, Draft, ResidenceInput,
};
use lotsa_core::text::{Lang, Reasoned};
use serde_json::json;

/// One person the officer meets.
struct Person {
    who: &'static str,
    typed_number: String,
    corrected_number: Option<String>,
    municipality: &'static str,
    provenance: Provenance,
    name: &'static str,
    phone: &'static str,
    consents: bool,
    script_lang: Lang,
}

fn years_ago(today: NaiveDate, years: u32, days: i64) -> NaiveDate {
    today
        .checked_sub_months(Months::new(12 * years))
        .expect("date in range")
        - Duration::days(days)
}

fn people(today: NaiveDate) -> Vec<Person> {
    let pnr = |born, serial| identity::compose(born, serial, false);
    let alex = pnr(years_ago(today, 36, 40), 123);
    // A typo: two digits swapped in the serial, which the check digit catches.
    let sam = pnr(years_ago(today, 41, 3), 457);
    let mut typo: Vec<char> = sam.chars().collect();
    typo.swap(9, 10);
    vec![
        Person {
            who: "Alex, lives in Stockholm, shows an ID card",
            typed_number: alex,
            corrected_number: None,
            municipality: "Stockholm",
            provenance: Provenance::Document,
            name: "Alex",
            phone: "070-123 45 67",
            consents: true,
            script_lang: Lang::Sv,
        },
        Person {
            who: "Robin, in town for the day, registered in Gislaved",
            typed_number: pnr(years_ago(today, 29, 100), 662),
            corrected_number: None,
            municipality: "gislaved kommun",
            provenance: Provenance::Document,
            name: "Robin",
            phone: "+46 (0)72-555 01 02",
            consents: true,
            script_lang: Lang::En,
        },
        Person {
            who: "Kim, says they live in Solna",
            typed_number: pnr(years_ago(today, 45, 0), 184),
            corrected_number: None,
            municipality: "Solna",
            provenance: Provenance::Stated,
            name: "Kim",
            phone: "073 000 11 22",
            consents: false,
            script_lang: Lang::Sv,
        },
        Person {
            who: "Mika, 17, turns 18 in twelve days",
            typed_number: pnr(years_ago(today, 18, -12), 345),
            corrected_number: None,
            municipality: "Stockholm",
            provenance: Provenance::Register,
            name: "Mika",
            phone: "076-111 22 33",
            consents: false,
            script_lang: Lang::Sv,
        },
        Person {
            who: "Jo, has a samordningsnummer, sleeps in Stockholm",
            typed_number: identity::compose(years_ago(today, 31, 7), 228, true),
            corrected_number: None,
            municipality: "Stockholm",
            provenance: Provenance::Stated,
            name: "Jo",
            phone: "070-999 88 77",
            consents: false,
            script_lang: Lang::Sv,
        },
        Person {
            who: "Sam, lives in Stockholm (says so); the officer mistypes the number",
            typed_number: typo.into_iter().collect(),
            corrected_number: Some(sam),
            municipality: "0180",
            provenance: Provenance::Stated,
            name: "Sam",
            phone: "08-123 456 78",
            consents: true,
            script_lang: Lang::Sv,
        },
    ]
}

/// Signs the embedded example programs with a throw-away key, valid from today for a year, and
/// verifies the result exactly as the app verifies a bundle at start.
fn example_bundle(now: chrono::DateTime<chrono::Utc>) -> Result<(Bundle, String), Failure> {
    let mut set = ProgramSet::from_json(EXAMPLE_PROGRAMS_JSON)
        .map_err(|e| Failure::other("bundle", e.to_string()))?;
    set.issued_at = to_stockholm(now);
    set.expires_at = to_stockholm(now + Duration::days(365));
    let key = SigningKey::generate().map_err(|e| Failure::other("crypto", e.to_string()))?;
    let signed = set
        .sign(&key)
        .map_err(|e| Failure::other("bundle", e.to_string()))?;
    let bundle = program::verify(&signed, &key.public_key(), now)
        .map_err(|e| Failure::other("bundle", e.to_string()))?;
    Ok((bundle, key.public_key().key_id()))
}

pub fn run(ctx: &Ctx) -> CmdResult {
    let clock = SystemClock;
    let now = clock.now();
    let today = clock.today();
    let lang = ctx.lang;
    let (bundle, key_id) = example_bundle(now)?;
    let home = bundle
        .program("lots-for-livet")
        .ok_or_else(|| Failure::other("bundle", "the example has no lots-for-livet"))?;
    let officer = Recorder {
        role: Role::Police,
        officer_id: "P-1234".into(),
        unit: "City polisområde, Plattan".into(),
    };
    let mut log = Vec::new();
    let say = |line: String| {
        if !ctx.json {
            println!("{line}");
        }
    };
    say(format!(
        "Lotsa demo — a shift at Sergels torg (\"Plattan\"), Stockholm, {}",
        to_stockholm(now).format("%Y-%m-%d %H:%M %:z")
    ));
    say(format!(
        "Program bundle: the example programs, signed with a throw-away administrator key {key_id} and verified as the app does at start ({} programs).",
        bundle.programs().len()
    ));
    say(format!(
        "Officer {} ({}) offers {}.\n",
        officer.officer_id, officer.unit, home.name
    ));

    let (mut offers, mut eligible, mut routed, mut handovers) = (0, 0, 0, 0);
    for (i, p) in people(today).into_iter().enumerate() {
        say(format!("{}. {}", i + 1, p.who));
        let mut number = p.typed_number.clone();
        let parsed = match identity::parse(&number, today) {
            Ok(n) => n,
            Err(e) => {
                say(format!(
                    "   number {number}: refused — {} [{}]",
                    e.message(lang),
                    e.code()
                ));
                let Some(fixed) = &p.corrected_number else {
                    log.push(json!({"person": i + 1, "error": e.code()}));
                    continue;
                };
                say(format!("   The officer asks again and retypes it: {fixed}"));
                number = fixed.clone();
                identity::parse(&number, today).map_err(|e| ctx.fail(&e))?
            }
        };
        let age = parsed.age_on(today);
        say(format!(
            "   number {number}: a valid {}, age {}",
            parsed.kind().as_str(),
            age.exact()
                .map(|a| a.to_string())
                .unwrap_or_else(|| format!("{}–{}", age.min, age.max))
        ));
        let mut draft = Draft::new(new_referral_id(), home.id.clone(), to_stockholm(now));
        draft.identity_number = Some(number.clone());
        draft.residence = Some(ResidenceInput {
            municipality: Some(p.municipality.to_string()),
            postal_code: None,
            provenance: p.provenance,
        });
        let facts = draft.facts(today).map_err(|e| ctx.fail(&e))?;
        let verdict = eligibility::assess(&facts, &bundle, home, today);
        offers += 1;
        for line in verdict_text(&verdict, &home.name, lang).lines() {
            say(format!("   {line}"));
        }
        // Where the person can go: this program, or the first route.
        let target = if verdict.may_refer {
            eligible += 1;
            Some((home, verdict.clone()))
        } else if let Some(route) = verdict.routing.first() {
            routed += 1;
            let other = bundle
                .program(&route.program_id)
                .expect("routes name bundle programs");
            draft.program_id = other.id.clone();
            Some((other, eligibility::assess(&facts, &bundle, other, today)))
        } else {
            None
        };
        let mut entry = json!({"person": i + 1, "verdict": verdict_json(&verdict, lang)});
        if let Some((program, v)) = target {
            let script = program
                .consent_script(p.script_lang)
                .ok_or_else(|| Failure::other("bundle", "no consent script"))?;
            say(format!(
                "   The officer reads {}'s consent script ({} v{}, {}):",
                program.name,
                script.id,
                script.version,
                p.script_lang.code()
            ));
            for line in wrap(&script.text, 92) {
                say(format!("     │ {line}"));
            }
            if p.consents && v.may_refer {
                draft.contact = ContactDetails {
                    name: Some(p.name.into()),
                    phone: Some(p.phone.into()),
                    language: Some(p.script_lang.code().into()),
                    best_time: Some("efter kl. 14".into()),
                    note: None,
                };
                let consent = ConsentRecord::for_program(
                    program,
                    p.script_lang,
                    new_referral_id(),
                    draft.draft_id.clone(),
                    to_stockholm(now),
                    Method::Verbal {
                        witness: "P-4711".into(),
                    },
                    officer.clone(),
                    true,
                    true,
                    Capacity::Adequate,
                )
                .map_err(|e| ctx.fail(&e))?;
                let payload =
                    build_handover(&draft, program, &v, &consent, to_stockholm(now), today)
                        .map_err(|e| ctx.fail(&e))?;
                handovers += 1;
                let passed: Vec<String> = consent
                    .data_items
                    .iter()
                    .map(|f| f.as_str().to_string())
                    .collect();
                say(format!(
                    "   Consents (verbal, witness P-4711). Handover for {}: {} — the clinic receives only: {}",
                    program.clinic.name,
                    program.callback_promise.get(lang),
                    passed.join(", ")
                ));
                say(format!(
                    "   contact {} | person {} | eligibility {}{}",
                    serde_json::to_string(&payload.contact).unwrap_or_default(),
                    serde_json::to_string(&payload.person).unwrap_or_default(),
                    payload.eligibility.outcome.as_str(),
                    if payload.eligibility.provisional {
                        " (provisional: the clinic confirms residency)"
                    } else {
                        ""
                    }
                ));
                entry["handover"] = serde_json::to_value(&payload).unwrap_or_default();
            } else if !p.consents {
                say("   Declines for now; nothing about the person is kept.".into());
            }
        } else if verdict.outcome != Outcome::Eligible {
            say("   Nothing to offer today; the officer explains why. Nothing about the person is kept.".into());
        }
        log.push(entry);
        say(String::new());
    }
    say(format!(
        "End of shift: {offers} offers made, {eligible} eligible here, {routed} routed to another program, {handovers} referrals ready to hand over."
    ));
    if ctx.json {
        ctx.print_json(&json!({
            "date": today,
            "bundle_signer": key_id,
            "people": log,
            "totals": {"offers": offers, "eligible": eligible, "routed": routed, "handovers": handovers},
        }));
    }
    Ok(())
}

fn wrap(text: &str, width: usize) -> Vec<String> {
    let mut lines = Vec::new();
    let mut line = String::new();
    for word in text.split_whitespace() {
        if !line.is_empty() && line.chars().count() + 1 + word.chars().count() > width {
            lines.push(std::mem::take(&mut line));
        }
        if !line.is_empty() {
            line.push(' ');
        }
        line.push_str(word);
    }
    if !line.is_empty() {
        lines.push(line);
    }
    lines
}
