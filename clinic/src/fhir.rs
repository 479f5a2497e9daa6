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
    let (patient, consent, request, task) = match held {
        Held::Open {
            payload,
            received_at,
            attempts,
            first_contact,
        } => {
            let given = payload.consent.given_at.with_timezone(&Utc);
            let due = deadline(given, program.callback_within.unwrap_or(DEFAULT_PROMISE));
            (
                patient(&ids, program, payload),
                consent(&ids, program, Some(payload), "active"),
                service_request(&ids, program, Some((payload, due)), first_contact.is_some()),
                task(
                    &ids,
                    program,
                    Some((*received_at, due, attempts, *first_contact)),
                    None,
                ),
            )
        }
        Held::Withdrawn { at } => (
            json!({"resourceType": "Patient", "id": ids.patient}),
            consent(&ids, program, None, "inactive"),
            service_request(&ids, program, None, false),
            task(&ids, program, None, Some(*at)),
        ),
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
        "entry": [entry(patient), entry(consent), entry(request), entry(task)],
    })
}

/// A short human-readable summary of a resource, made from its status alone (no personal
/// data is repeated in it): what a care record system shows before it reads the elements.
fn narrative(resource: &Value, program: &Program) -> Value {
    let status = resource["status"].as_str().unwrap_or_default();
    let text = match resource["resourceType"].as_str().unwrap_or_default() {
        "Patient" if resource.get("telecom").is_none() && resource.get("name").is_none() => {
            "Personen som hänvisades; uppgifterna är raderade.".to_string()
        }
        "Patient" => "Personen som hänvisades, med de uppgifter programmet tar emot.".to_string(),
        "Consent" if status == "active" => "Samtycke till en första kontakt: gällande.".to_string(),
        "Consent" => "Samtycke till en första kontakt: återkallat.".to_string(),
        "ServiceRequest" => {
            let state = match status {
                "active" => "väntar på första kontakt",
                "completed" => "första kontakten avslutad",
                _ => "återkallad",
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

    fn reference(id: &str) -> Value {
        json!({"reference": format!("urn:uuid:{id}")})
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
        let name = lotsa_core::geo::municipality_by_code(code).map_or(code, |m| m.name);
        p.insert(
            "address".into(),
            json!([{"use": "home", "text": format!("{name} kommun ({code})"), "district": name, "country": "SE"}]),
        );
    }
    if let Some(language) = contact
        .language
        .as_deref()
        .filter(|_| allowed(Field::Language))
    {
        p.insert(
            "communication".into(),
            json!([{"language": {"text": language}, "preferred": true}]),
        );
    }
    Value::Object(p)
}

/// The identifier system of a 12-digit identity number: a samordningsnummer has 60 added to
/// its day of birth.
pub fn identifier_system(number: &str, payload: &HandoverPayload) -> &'static str {
    match identity::parse(number, payload.created_at.date_naive()).map(|n| n.kind()) {
        Ok(IdKind::Samordningsnummer) => SAMORDNINGSNUMMER_SYSTEM,
        _ => PERSONNUMMER_SYSTEM,
    }
}

fn consent(ids: &Ids, program: &Program, payload: Option<&HandoverPayload>, status: &str) -> Value {
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
        "data": [{"meaning": "related", "reference": Ids::reference(&ids.request)}],
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
        "patient": Ids::reference(&ids.patient),
        "performer": [Ids::reference(&ids.patient)],
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
    c
}

fn service_request(
    ids: &Ids,
    program: &Program,
    open: Option<(&HandoverPayload, DateTime<Utc>)>,
    settled: bool,
) -> Value {
    let status = match (open, settled) {
        (None, _) => "revoked",
        (Some(_), true) => "completed",
        (Some(_), false) => "active",
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
        "subject": Ids::reference(&ids.patient),
        "performer": [{"display": program.clinic.name}],
        "supportingInfo": [Ids::reference(&ids.consent)],
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
        "focus": Ids::reference(&ids.request),
        "basedOn": [Ids::reference(&ids.request)],
        "for": Ids::reference(&ids.patient),
        "owner": {"display": program.clinic.name},
    });
    match (open, withdrawn_at) {
        (Some((received, due, attempts, first_contact)), _) => {
            let (status, business) = task_state(first_contact.map(|(o, _)| o), attempts);
            t["status"] = json!(status);
            t["businessStatus"] = json!({"text": business});
            t["authoredOn"] = json!(datetime(received));
            t["restriction"] = json!({"period": {"end": datetime(due)}});
            let mut period = json!({"start": datetime(received)});
            let mut last = received;
            if let Some((_, at)) = first_contact {
                period["end"] = json!(datetime(at));
                last = at;
            }
            if let Some(a) = attempts.last() {
                // The last attempt is the one that settled the first contact, if it is settled.
                t["statusReason"] = json!({"text": format!("{} ({})", a.outcome, a.reason)});
                last = last.max(DateTime::from_timestamp(a.at, 0).unwrap_or(last));
            }
            t["executionPeriod"] = period;
            t["lastModified"] = json!(datetime(last));
            let notes: Vec<Value> = attempts
                .iter()
                .map(|a| {
                    let at = DateTime::from_timestamp(a.at, 0).unwrap_or(received);
                    json!({"time": datetime(at), "text": format!("{} ({})", a.outcome, a.reason)})
                })
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
        for held in [open(&payload), Held::Withdrawn { at: Utc::now() }] {
            let b = bundle("h-1", &kalmar, &held, Utc::now());
            let mut full_urls = Vec::new();
            for e in b["entry"].as_array().unwrap() {
                let r = &e["resource"];
                let id = r["id"].as_str().unwrap();
                assert_eq!(id, id.to_lowercase());
                assert_eq!(e["fullUrl"], format!("urn:uuid:{id}"));
                assert_eq!(e["request"]["method"], "PUT");
                assert_eq!(
                    e["request"]["url"],
                    format!("{}/{id}", r["resourceType"].as_str().unwrap())
                );
                full_urls.push(e["fullUrl"].as_str().unwrap().to_string());
            }
            let mut refs = Vec::new();
            references(&b, &mut refs);
            assert!(refs.len() >= 6);
            for r in refs.iter().filter(|r| r.starts_with("urn:")) {
                assert!(full_urls.contains(r), "{r} is not in the bundle");
            }
        }
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
        for kind in ["Patient", "Consent", "ServiceRequest", "Task"] {
            assert_eq!(
                resource(&before, kind)["id"],
                resource(&after, kind)["id"],
                "{kind}"
            );
        }
        assert_eq!(resource(&before, "Consent")["status"], "active");
        assert_eq!(resource(&after, "Consent")["status"], "inactive");
        assert_eq!(resource(&before, "ServiceRequest")["status"], "active");
        assert_eq!(resource(&after, "ServiceRequest")["status"], "revoked");
        assert_eq!(resource(&after, "Task")["status"], "cancelled");
        let patient = resource(&after, "Patient").as_object().unwrap();
        let keys: Vec<&str> = patient.keys().map(String::as_str).collect();
        assert_eq!(keys, ["id", "resourceType", "text"], "no data: {patient:?}");
        let text = after.to_string();
        for personal in ["199004121233", "Alex", "+46701234567", "0180"] {
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
