//! One referral as a FHIR R4 Bundle, for a care record system: who the person is (only what
//! the program lets the clinic have and the person agreed to pass on), the consent, the
//! referral itself and the first contact with its outcome. A pure mapping from what the clinic
//! holds; [`crate::export`] decides whether a referral may be exported at all and logs who
//! fetched it.
//!
//! - `Patient`: name, phone, language, date of birth, municipality and the personnummer or
//!   samordningsnummer, each only when the program's field policy passes it on and the consent
//!   covers it. Identity numbers carry the identifier systems of HL7 Sweden's base profiles.
//! - `Consent` (LOINC 64292-6, release of information): its provision permits disclosure to
//!   the clinic for a first contact; `inactive` once withdrawn.
//! - `ServiceRequest`: the referral, due by the program's callback promise; `revoked` once
//!   withdrawn, `completed` once the first contact is settled.
//! - `Task`: the first contact: requested, in progress (calls without an answer), completed
//!   (reached, declined, or the person called first), failed (never reached) or cancelled
//!   (withdrawn), with the outcome and reason codes of the worklist.
//!
//! The bundle is a `transaction` of `PUT`s whose resource ids are derived from the handover
//! id, so fetching it again (after a call, after a withdrawal) updates the same resources in the
//! receiving system instead of adding new ones. A withdrawn referral's bundle is made from its
//! tombstone: the same ids, Consent inactive, ServiceRequest revoked, Task cancelled, and a
//! Patient with no data at all, because the clinic erased it.
//!
//! No profile is declared: the bundles are checked against base R4 (HL7 Sweden's profile
//! package cannot be fetched where the tests run).

use crate::deadline::deadline;
use crate::storage::Attempt;
use chrono::{DateTime, SecondsFormat, Utc};
use lotsa_core::identity::{self, IdKind};
use lotsa_core::program::{CallbackWithin, Field, Need, Program};
use lotsa_core::referral::HandoverPayload;
use serde_json::{json, Map, Value};

/// HL7 Sweden's identifier system for a personnummer (SEBasePatient).
pub const PERSONNUMMER_SYSTEM: &str = "http://electronichealth.se/identifier/personnummer";
/// HL7 Sweden's identifier system for a samordningsnummer (SEBasePatient).
pub const SAMORDNINGSNUMMER_SYSTEM: &str =
    "http://electronichealth.se/identifier/samordningsnummer";
/// The identifier system of Lotsa's handover ids (the referral and its first-contact task).
pub const HANDOVER_SYSTEM: &str = "urn:lotsa:handover";
/// The regulation the consent is given under (GDPR, art. 6(1)(a) and 9(2)(a)).
const GDPR: &str = "https://eur-lex.europa.eu/eli/reg/2016/679/oj";

/// A referral's promise when the bundle gives none (a v1 bundle; the service requires v2).
const DEFAULT_PROMISE: CallbackWithin = CallbackWithin::Hours(24);

/// What the clinic holds of one referral.
pub enum Held<'a> {
    /// The referral is held: opened, with its worklist history.
    Open {
        /// The opened payload.
        payload: &'a HandoverPayload,
        /// When it arrived.
        received_at: DateTime<Utc>,
        /// Call attempts and actions, oldest first.
        attempts: &'a [Attempt],
        /// The settled first contact (outcome code, when), if settled.
        first_contact: Option<(&'a str, DateTime<Utc>)>,
    },
    /// Withdrawn: only the tombstone is left, from this moment.
    Withdrawn {
        /// When it was withdrawn.
        at: DateTime<Utc>,
    },
}

/// The Bundle of one referral of `program`, made at `now`.
pub fn bundle(handover_id: &str, program: &Program, held: &Held<'_>, now: DateTime<Utc>) -> Value {
    let ids = Ids::of(handover_id);
    let resources = match held {
        Held::Open {
            payload,
            received_at,
            attempts,
            first_contact,
        } => {
            let given = payload.consent.given_at.with_timezone(&Utc);
            let due = deadline(given, program.callback_within.unwrap_or(DEFAULT_PROMISE));
            let outcome = first_contact.map(|(o, _)| o);
            vec![
                patient(&ids, program, payload),
                consent(&ids, program, Some(payload), None),
                service_request(&ids, program, Some((payload, due)), outcome),
                task(
                    &ids,
                    program,
                    Some((*received_at, due, attempts, *first_contact)),
                    None,
                ),
            ]
        }
        // No Patient: the clinic holds nothing of the person any more, and a PUT of an empty
        // one would wipe what the receiving system knows.
        Held::Withdrawn { at } => vec![
            consent(&ids, program, None, Some(*at)),
            service_request(&ids, program, None, Some("withdrawn")),
            task(&ids, program, None, Some(*at)),
        ],
    };
    let entry = |mut resource: Value| {
        resource["text"] = narrative(&resource, program);
        let kind = resource["resourceType"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let id = resource["id"].as_str().unwrap_or_default().to_string();
        json!({
            "fullUrl": format!("urn:uuid:{id}"),
            "resource": resource,
            "request": {"method": "PUT", "url": format!("{kind}/{id}")},
        })
    };
    json!({
        "resourceType": "Bundle",
        "type": "transaction",
        "timestamp": datetime(now),
        "entry": resources.into_iter().map(entry).collect::<Vec<_>>(),
    })
}

/// A short human-readable summary of a resource, made from its status alone (no personal
/// data is repeated in it): what a care record system shows before it reads the elements.
fn narrative(resource: &Value, program: &Program) -> Value {
    let status = resource["status"].as_str().unwrap_or_default();
    let text = match resource["resourceType"].as_str().unwrap_or_default() {
        "Patient" => "Personen som hänvisades, med de uppgifter programmet tar emot.".to_string(),
        "Consent" if status == "active" => "Samtycke till en första kontakt: gällande.".to_string(),
        "Consent" => "Samtycke till en första kontakt: återkallat.".to_string(),
        "ServiceRequest" => {
            let state = match status {
                "active" => "väntar på första kontakt",
                "completed" => "första kontakten tagen",
                _ => "avslutad utan kontakt",
            };
            format!("Hänvisning till {}: {state}.", program.name)
        }
        _ => format!(
            "Första kontakt: {}.",
            resource["businessStatus"]["text"]
                .as_str()
                .unwrap_or(status)
        ),
    };
    json!({
        "status": "generated",
        "div": format!("<div xmlns=\"http://www.w3.org/1999/xhtml\"><p>{}</p></div>", escape(&text)),
    })
}

/// Text as XHTML character data.
fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// The resource ids of one referral: UUIDs derived from its handover id, one per resource.
struct Ids {
    handover_id: String,
    patient: String,
    consent: String,
    request: String,
    task: String,
}

impl Ids {
    fn of(handover_id: &str) -> Ids {
        let derive = |kind: &str| {
            let digest = ring::digest::digest(
                &ring::digest::SHA256,
                format!("lotsa.fhir/{kind}/{handover_id}").as_bytes(),
            );
            let mut bytes = [0u8; 16];
            bytes.copy_from_slice(&digest.as_ref()[..16]);
            uuid::Builder::from_custom_bytes(bytes)
                .into_uuid()
                .to_string()
        };
        Ids {
            handover_id: handover_id.to_string(),
            patient: derive("Patient"),
            consent: derive("Consent"),
            request: derive("ServiceRequest"),
            task: derive("Task"),
        }
    }

    /// A reference to one of the referral's resources by its REST identity (`Patient/<id>`):
    /// it resolves in the bundle and, after the transaction, in the receiving system.
    fn reference(kind: &str, id: &str) -> Value {
        json!({"reference": format!("{kind}/{id}")})
    }
}

/// Whether the clinic may pass a field on: the program passes it on and the person agreed.
fn passes_on(program: &Program, payload: &HandoverPayload, field: Field) -> bool {
    program.fields.need(field) != Need::Never && payload.consent.data_items.contains(&field)
}

fn patient(ids: &Ids, program: &Program, payload: &HandoverPayload) -> Value {
    let allowed = |field| passes_on(program, payload, field);
    let contact = &payload.contact;
    let person = &payload.person;
    let mut p = Map::new();
    p.insert("resourceType".into(), json!("Patient"));
    p.insert("id".into(), json!(ids.patient));
    if let Some(number) = person
        .personnummer
        .as_deref()
        .filter(|_| allowed(Field::Personnummer))
    {
        p.insert(
            "identifier".into(),
            json!([{"use": "official", "system": identifier_system(number, payload), "value": number}]),
        );
    }
    if let Some(name) = contact.name.as_deref().filter(|_| allowed(Field::Name)) {
        p.insert("name".into(), json!([{"use": "usual", "text": name}]));
    }
    if let Some(phone) = contact.phone.as_deref().filter(|_| allowed(Field::Phone)) {
        p.insert(
            "telecom".into(),
            json!([{"system": "phone", "value": phone, "use": "mobile"}]),
        );
    }
    if let Some(born) = person
        .birth_date
        .as_deref()
        .filter(|_| allowed(Field::BirthDate))
    {
        p.insert("birthDate".into(), json!(born));
    }
    if let Some(code) = person
        .kommunkod
        .as_deref()
        .filter(|_| allowed(Field::Kommunkod))
    {
        // The kommun as the district (a county's subdivision), its län as the state.
        let mut address =
            json!({"use": "home", "text": format!("kommunkod {code}"), "country": "SE"});
        if let Some(m) = lotsa_core::geo::municipality_by_code(code) {
            address["text"] = json!(format!("{} kommun ({code})", m.name));
            address["district"] = json!(m.name);
            address["state"] = json!(m.county().name);
        }
        p.insert("address".into(), json!([address]));
    }
    if let Some(language) = contact
        .language
        .as_deref()
        .filter(|_| allowed(Field::Language))
    {
        // A language tag as people write one (`sv`, `ar`, `fa-AF`) is coded as BCP 47 so that
        // a receiving system can match it; anything else stays text.
        let mut concept = json!({"text": language});
        if is_language_tag(language) {
            concept["coding"] = json!([{"system": "urn:ietf:bcp:47", "code": language}]);
        }
        p.insert(
            "communication".into(),
            json!([{"language": concept, "preferred": true}]),
        );
    }
    Value::Object(p)
}

/// Whether text looks like a plain BCP 47 language tag: a two- or three-letter lowercase
/// language, optionally with a region (`sv`, `ckb`, `fa-AF`).
fn is_language_tag(text: &str) -> bool {
    let mut parts = text.split('-');
    let language = parts.next().unwrap_or_default();
    let region = parts.next();
    (2..=3).contains(&language.len())
        && language.bytes().all(|b| b.is_ascii_lowercase())
        && region.is_none_or(|r| r.len() == 2 && r.bytes().all(|b| b.is_ascii_uppercase()))
        && parts.next().is_none()
}

/// The identifier system of a 12-digit identity number: a samordningsnummer has 60 added to
/// its day of birth.
fn identifier_system(number: &str, payload: &HandoverPayload) -> &'static str {
    match identity::parse(number, payload.created_at.date_naive()).map(|n| n.kind()) {
        Ok(IdKind::Samordningsnummer) => SAMORDNINGSNUMMER_SYSTEM,
        _ => PERSONNUMMER_SYSTEM,
    }
}

/// The Consent: given (from the payload), or withdrawn at a time (from the tombstone: no
/// personal data, the same id, inactive).
fn consent(
    ids: &Ids,
    program: &Program,
    payload: Option<&HandoverPayload>,
    withdrawn_at: Option<DateTime<Utc>>,
) -> Value {
    let status = if withdrawn_at.is_some() {
        "inactive"
    } else {
        "active"
    };
    let clinic = json!({"display": program.clinic.name});
    let provision = json!({
        "type": "permit",
        "actor": [{
            "role": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ParticipationType",
                                 "code": "IRCP", "display": "information recipient"}]},
            "reference": clinic,
        }],
        "action": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/consentaction",
                                "code": "disclose", "display": "Disclose"}],
                    "text": "Lämna ut uppgifter till mottagningen för en första kontakt"}],
        "purpose": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ActReason",
                     "code": "TREAT", "display": "treatment"}],
        "data": [{"meaning": "related", "reference": Ids::reference("ServiceRequest", &ids.request)}],
    });
    let policy = match payload {
        Some(p) => format!(
            "urn:lotsa:consent-script:{}:{}",
            p.consent.script.id, p.consent.script.version
        ),
        None => format!("urn:lotsa:program:{}", program.id),
    };
    let mut c = json!({
        "resourceType": "Consent",
        "id": ids.consent,
        "status": status,
        "scope": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/consentscope",
                              "code": "patient-privacy", "display": "Privacy Consent"}]},
        "category": [{"coding": [{"system": "http://loinc.org", "code": "64292-6",
                                  "display": "Release of information consent"}]}],
        "patient": Ids::reference("Patient", &ids.patient),
        "performer": [Ids::reference("Patient", &ids.patient)],
        "organization": [clinic],
        "policy": [{"authority": GDPR, "uri": policy}],
        "provision": provision,
    });
    if let Some(p) = payload {
        let given = datetime(p.consent.given_at.with_timezone(&Utc));
        c["identifier"] = json!([{"system": "urn:ietf:rfc:3986", "value": format!("urn:uuid:{}", p.consent.consent_id)}]);
        c["dateTime"] = json!(given);
        c["provision"]["period"] = json!({"start": given});
    }
    if let Some(at) = withdrawn_at {
        c["provision"]["period"] = json!({"end": datetime(at)});
    }
    c
}

fn service_request(
    ids: &Ids,
    program: &Program,
    open: Option<(&HandoverPayload, DateTime<Utc>)>,
    first_contact: Option<&str>,
) -> Value {
    // Done when the person was reached; revoked when there is to be no contact (withdrawn, or
    // the clinic gave up): "completed" would say the contact took place.
    let status = match first_contact {
        None => "active",
        Some("never_reached" | "withdrawn") => "revoked",
        Some(_) => "completed",
    };
    let mut r = json!({
        "resourceType": "ServiceRequest",
        "id": ids.request,
        "identifier": [{"system": HANDOVER_SYSTEM, "value": ids.handover_id}],
        "status": status,
        "intent": "order",
        "category": [{"coding": [{"system": "http://snomed.info/sct", "code": "3457005",
                                  "display": "Patient referral"}]}],
        "code": {"text": format!("Första kontakt: {}", program.name)},
        "subject": Ids::reference("Patient", &ids.patient),
        "performer": [{"display": program.clinic.name}],
        "supportingInfo": [Ids::reference("Consent", &ids.consent)],
    });
    if let Some((payload, due)) = open {
        let given = payload.consent.given_at.with_timezone(&Utc);
        r["authoredOn"] = json!(datetime(payload.created_at.with_timezone(&Utc)));
        r["occurrencePeriod"] = json!({"start": datetime(given), "end": datetime(due)});
        let recorder = &payload.consent.recorded_by;
        let role = match recorder.role {
            lotsa_core::consent::Role::Police => "Polis",
            lotsa_core::consent::Role::Lots => "Lots",
        };
        r["requester"] = json!({"display": format!("{role}, {}", recorder.unit)});
        let mut notes = Vec::new();
        if let Some(t) = payload
            .contact
            .best_time
            .as_deref()
            .filter(|_| passes_on(program, payload, Field::BestTime))
        {
            notes.push(json!({"text": format!("Bästa tid att ringa: {t}")}));
        }
        if let Some(t) = payload
            .contact
            .note
            .as_deref()
            .filter(|_| passes_on(program, payload, Field::Note))
        {
            notes.push(json!({"text": format!("Anteckning: {t}")}));
        }
        if payload.eligibility.provisional {
            notes.push(json!({"text": "Folkbokföringen är uppgiven, inte styrkt: bekräfta den."}));
        }
        if !notes.is_empty() {
            r["note"] = Value::Array(notes);
        }
    }
    r
}

/// The Task's status, business status and reason from the first contact's outcome.
fn task_state(first_contact: Option<&str>, attempts: &[Attempt]) -> (&'static str, &'static str) {
    match first_contact {
        Some("contacted") => ("completed", "Nådd"),
        Some("declined") => ("completed", "Nådd, tackade nej"),
        Some("called_us_first") => ("completed", "Personen ringde själv"),
        Some("never_reached") => ("failed", "Aldrig nådd"),
        Some("withdrawn") => ("cancelled", "Samtycket återkallat"),
        Some(_) => ("completed", "Avslutad"),
        None if attempts.is_empty() => ("requested", "Väntar på första samtal"),
        None => ("in-progress", "Inte nådd än"),
    }
}

type TaskHistory<'a> = (
    DateTime<Utc>,
    DateTime<Utc>,
    &'a [Attempt],
    Option<(&'a str, DateTime<Utc>)>,
);

fn task(
    ids: &Ids,
    program: &Program,
    open: Option<TaskHistory<'_>>,
    withdrawn_at: Option<DateTime<Utc>>,
) -> Value {
    let mut t = json!({
        "resourceType": "Task",
        "id": ids.task,
        "identifier": [{"system": HANDOVER_SYSTEM, "value": ids.handover_id}],
        "intent": "order",
        "code": {"coding": [{"system": "http://hl7.org/fhir/CodeSystem/task-code",
                             "code": "fulfill", "display": "Fulfill the focal request"}],
                 "text": "Första kontakt"},
        "description": format!("Ring personen inom löftet: {}", program.callback_promise.sv),
        "focus": Ids::reference("ServiceRequest", &ids.request),
        "basedOn": [Ids::reference("ServiceRequest", &ids.request)],
        "for": Ids::reference("Patient", &ids.patient),
        "owner": {"display": program.clinic.name},
    });
    match (open, withdrawn_at) {
        (Some((received, due, attempts, first_contact)), _) => {
            let (status, business) = task_state(first_contact.map(|(o, _)| o), attempts);
            t["status"] = json!(status);
            t["businessStatus"] = json!({"text": business});
            t["authoredOn"] = json!(datetime(received));
            t["restriction"] = json!({"period": {"end": datetime(due)}});
            let at = |a: &Attempt| DateTime::from_timestamp(a.at, 0).unwrap_or(received);
            // The work starts with the first call and ends when the first contact settles.
            let mut last = received;
            if let Some(first) = attempts.first() {
                let mut period = json!({"start": datetime(at(first))});
                if let Some((_, settled)) = first_contact {
                    period["end"] = json!(datetime(settled));
                }
                t["executionPeriod"] = period;
            }
            if let Some(a) = attempts.last() {
                // The last attempt is the one that settled the first contact, if it is settled.
                t["statusReason"] = json!({"text": format!("{} ({})", a.outcome, a.reason)});
                last = last.max(at(a));
            }
            if let Some((_, settled)) = first_contact {
                last = last.max(settled);
            }
            t["lastModified"] = json!(datetime(last));
            let notes: Vec<Value> = attempts
                .iter()
                .map(|a| json!({"time": datetime(at(a)), "text": format!("{} ({})", a.outcome, a.reason)}))
                .collect();
            if !notes.is_empty() {
                t["note"] = Value::Array(notes);
            }
        }
        (None, at) => {
            let (status, business) = task_state(Some("withdrawn"), &[]);
            t["status"] = json!(status);
            t["businessStatus"] = json!({"text": business});
            t["statusReason"] = json!({"text": "withdrawn"});
            if let Some(at) = at {
                t["lastModified"] = json!(datetime(at));
            }
        }
    }
    t
}

fn datetime(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Secs, true)
}

#[cfg(test)]
mod tests {
    use super::*;
    use lotsa_core::program::ProgramSet;

    const PROGRAMS: &str = include_str!("../../schemas/examples/programs.example.json");
    const PAYLOAD: &str = include_str!("../tests/handover.json");

    fn program(id: &str) -> Program {
        let set = ProgramSet::from_json(PROGRAMS).unwrap();
        set.programs.into_iter().find(|p| p.id == id).unwrap()
    }

    /// The fixture payload, for `program`, with an identity number the person agreed to pass on.
    fn payload_with_number(program: &str, number: &str) -> HandoverPayload {
        let mut p: HandoverPayload = serde_json::from_str(PAYLOAD).unwrap();
        p.program_id = program.into();
        p.consent.program_id = program.into();
        p.person.personnummer = Some(number.into());
        p.consent.data_items.push(Field::Personnummer);
        p
    }

    fn resource<'a>(bundle: &'a Value, kind: &str) -> &'a Value {
        bundle["entry"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| &e["resource"])
            .find(|r| r["resourceType"] == kind)
            .unwrap()
    }

    fn open(payload: &HandoverPayload) -> Held<'_> {
        Held::Open {
            payload,
            received_at: Utc::now(),
            attempts: &[],
            first_contact: None,
        }
    }

    #[test]
    fn identity_numbers_carry_the_identifier_systems_of_hl7_swedens_base_profiles() {
        assert_eq!(
            PERSONNUMMER_SYSTEM,
            "http://electronichealth.se/identifier/personnummer"
        );
        assert_eq!(
            SAMORDNINGSNUMMER_SYSTEM,
            "http://electronichealth.se/identifier/samordningsnummer"
        );
        let kalmar = program("kalmar");
        for (number, system) in [
            ("199004121233", PERSONNUMMER_SYSTEM),
            ("199004721230", SAMORDNINGSNUMMER_SYSTEM),
        ] {
            let payload = payload_with_number("kalmar", number);
            let b = bundle("h-1", &kalmar, &open(&payload), Utc::now());
            let ids = &resource(&b, "Patient")["identifier"];
            assert_eq!(ids[0]["system"], system, "{number}");
            assert_eq!(ids[0]["value"], number);
        }
    }

    #[test]
    fn a_field_the_program_never_passes_on_stays_out_of_the_patient_even_when_the_payload_has_it() {
        // Lots för livet never takes a personnummer: a payload that carries one (a program
        // changed since) still exports none.
        let payload = payload_with_number("lots-for-livet", "199004121233");
        let lfl = program("lots-for-livet");
        let b = bundle("h-1", &lfl, &open(&payload), Utc::now());
        let patient = resource(&b, "Patient");
        assert!(patient.get("identifier").is_none());
        assert!(!b.to_string().contains("199004121233"));
        assert_eq!(patient["telecom"][0]["value"], "+46701234567");
        // …and a field the person did not agree to pass on stays out too.
        let mut payload = payload;
        payload.consent.data_items.retain(|f| *f != Field::Name);
        let b = bundle("h-1", &lfl, &open(&payload), Utc::now());
        assert!(resource(&b, "Patient").get("name").is_none());
        assert!(!b.to_string().contains("Alex"));
    }

    /// Every `urn:uuid:` reference in a value.
    fn references(v: &Value, out: &mut Vec<String>) {
        match v {
            Value::Object(m) => {
                if let Some(Value::String(r)) = m.get("reference") {
                    out.push(r.clone());
                }
                m.values().for_each(|v| references(v, out));
            }
            Value::Array(a) => a.iter().for_each(|v| references(v, out)),
            _ => {}
        }
    }

    #[test]
    fn every_entry_is_put_under_its_own_id_and_every_reference_resolves_inside_the_bundle() {
        // What the validator does not check: ids, URLs and references agree.
        let payload = payload_with_number("kalmar", "199004121233");
        let kalmar = program("kalmar");
        let open_bundle = bundle("h-1", &kalmar, &open(&payload), Utc::now());
        let withdrawn = bundle(
            "h-1",
            &kalmar,
            &Held::Withdrawn { at: Utc::now() },
            Utc::now(),
        );
        let put_urls = |b: &Value| -> Vec<String> {
            b["entry"]
                .as_array()
                .unwrap()
                .iter()
                .map(|e| {
                    let r = &e["resource"];
                    let id = r["id"].as_str().unwrap();
                    assert_eq!(id, id.to_lowercase());
                    assert_eq!(e["fullUrl"], format!("urn:uuid:{id}"));
                    assert_eq!(e["request"]["method"], "PUT");
                    let url = format!("{}/{id}", r["resourceType"].as_str().unwrap());
                    assert_eq!(e["request"]["url"], url);
                    url
                })
                .collect()
        };
        let in_open = put_urls(&open_bundle);
        let mut refs = Vec::new();
        references(&open_bundle, &mut refs);
        assert!(refs.len() >= 7);
        for r in &refs {
            assert!(in_open.contains(r), "{r} is not in the bundle");
        }
        // The withdrawn bundle has no Patient; it refers to the one the first export PUT.
        let in_withdrawn = put_urls(&withdrawn);
        assert_eq!(in_withdrawn.len(), 3);
        let mut refs = Vec::new();
        references(&withdrawn, &mut refs);
        for r in &refs {
            assert!(in_withdrawn.contains(r) || *r == in_open[0], "{r}");
        }
    }

    #[test]
    fn the_bundle_carries_the_codes_the_clinic_and_the_issue_name() {
        let payload = payload_with_number("kalmar", "199004121233");
        let b = bundle("h-1", &program("kalmar"), &open(&payload), Utc::now());
        assert_eq!(
            (&b["resourceType"], &b["type"]),
            (&json!("Bundle"), &json!("transaction"))
        );
        let consent = resource(&b, "Consent");
        assert_eq!(
            consent["category"][0]["coding"][0]["system"],
            "http://loinc.org"
        );
        assert_eq!(consent["category"][0]["coding"][0]["code"], "64292-6");
        assert_eq!(consent["scope"]["coding"][0]["code"], "patient-privacy");
        let provision = &consent["provision"];
        assert_eq!(provision["type"], "permit");
        assert_eq!(provision["action"][0]["coding"][0]["code"], "disclose");
        assert_eq!(provision["actor"][0]["role"]["coding"][0]["code"], "IRCP");
        assert_eq!(
            provision["actor"][0]["reference"]["display"],
            "Kalmar kommun, öppenvården"
        );
        assert_eq!(provision["period"]["start"], consent["dateTime"]);
        assert_eq!(
            consent["identifier"][0]["value"],
            format!("urn:uuid:{}", payload.consent.consent_id)
        );
        let request = resource(&b, "ServiceRequest");
        assert_eq!(
            (&request["intent"], &request["status"]),
            (&json!("order"), &json!("active"))
        );
        assert_eq!(
            request["identifier"][0],
            json!({"system": HANDOVER_SYSTEM, "value": "h-1"})
        );
        let task = resource(&b, "Task");
        assert_eq!(task["code"]["coding"][0]["code"], "fulfill");
        assert_eq!(task["status"], "requested");
        assert!(task.get("executionPeriod").is_none(), "no call yet");
        // Kalmar promises three working days: the deadline is both the request's occurrence end
        // and the task's restriction.
        assert_eq!(
            request["occurrencePeriod"]["end"],
            task["restriction"]["period"]["end"]
        );
        let patient = resource(&b, "Patient");
        assert_eq!(
            patient["communication"][0]["language"]["coding"][0]["code"],
            "sv"
        );
        assert_eq!(patient["address"][0]["district"], "Stockholm");
        assert_eq!(patient["address"][0]["state"], "Stockholms län");
    }

    #[test]
    fn the_request_is_completed_when_the_person_was_reached_and_revoked_when_the_clinic_gave_up() {
        let payload = payload_with_number("kalmar", "199004121233");
        let kalmar = program("kalmar");
        let call = |outcome: &str| Attempt {
            at: Utc::now().timestamp(),
            staff: "anna".into(),
            outcome: outcome.into(),
            reason: "x".into(),
        };
        for (outcome, request, task) in [
            ("contacted", "completed", "completed"),
            ("declined", "completed", "completed"),
            ("called_us_first", "completed", "completed"),
            ("never_reached", "revoked", "failed"),
        ] {
            let attempts = [call(if outcome == "never_reached" {
                "not_reached"
            } else {
                outcome
            })];
            let held = Held::Open {
                payload: &payload,
                received_at: Utc::now(),
                attempts: &attempts,
                first_contact: Some((outcome, Utc::now())),
            };
            let b = bundle("h-1", &kalmar, &held, Utc::now());
            assert_eq!(
                resource(&b, "ServiceRequest")["status"],
                request,
                "{outcome}"
            );
            assert_eq!(resource(&b, "Task")["status"], task, "{outcome}");
            assert!(resource(&b, "Task")["executionPeriod"]["end"].is_string());
        }
        assert!(!is_language_tag("svenska") && !is_language_tag("SV") && is_language_tag("fa-AF"));
    }

    #[test]
    fn a_withdrawn_referral_keeps_its_resource_ids_and_carries_no_personal_data() {
        let payload = payload_with_number("kalmar", "199004121233");
        let kalmar = program("kalmar");
        let before = bundle("h-1", &kalmar, &open(&payload), Utc::now());
        let after = bundle(
            "h-1",
            &kalmar,
            &Held::Withdrawn { at: Utc::now() },
            Utc::now(),
        );
        for kind in ["Consent", "ServiceRequest", "Task"] {
            assert_eq!(
                resource(&before, kind)["id"],
                resource(&after, kind)["id"],
                "{kind}"
            );
        }
        assert_eq!(resource(&before, "Consent")["status"], "active");
        assert_eq!(resource(&after, "Consent")["status"], "inactive");
        assert!(resource(&after, "Consent")["provision"]["period"]["end"].is_string());
        assert_eq!(resource(&before, "ServiceRequest")["status"], "active");
        assert_eq!(resource(&after, "ServiceRequest")["status"], "revoked");
        assert_eq!(resource(&after, "Task")["status"], "cancelled");
        // No Patient is PUT over what the receiving system knows; the others still point at it.
        let kinds: Vec<&Value> = after["entry"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| &e["resource"]["resourceType"])
            .collect();
        assert_eq!(kinds, ["Consent", "ServiceRequest", "Task"]);
        assert_eq!(
            resource(&after, "Consent")["patient"]["reference"],
            format!(
                "Patient/{}",
                resource(&before, "Patient")["id"].as_str().unwrap()
            )
        );
        let text = after.to_string();
        for personal in [
            "199004121233",
            "Alex",
            "+46701234567",
            "0180",
            "efter kl. 14",
        ] {
            assert!(!text.contains(personal), "{personal}");
        }
        // Another referral gets other ids.
        let other = bundle("h-2", &kalmar, &open(&payload), Utc::now());
        assert_ne!(
            resource(&other, "Patient")["id"],
            resource(&before, "Patient")["id"]
        );
    }
}
