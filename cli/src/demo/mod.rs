//! `lotsa demo`: the main job, end to end, on embedded defaults. It plays a whole shift at
//! Sergels torg ("Plattan"):
//!
//! 1. two clinics start on 127.0.0.1 in-process, the Stockholm reception and Snäckan, each with
//!    its own keys and development CA; the example programs are signed for them and verified as
//!    the app does at start; a temporary phone enrols at both;
//! 2. the clinics become unreachable, and the officer meets seven people: the verdict, its
//!    reasons, the routing and the consent script for each; those who consent are sealed into the
//!    outbox, and a sync without coverage delivers nothing and loses nothing;
//! 3. coverage returns: one sync delivers to both clinics, the receipts are verified and the
//!    phone forgets the payloads;
//! 4. one person withdraws after delivery, and the clinic erases the referral;
//! 5. what each clinic holds, the phone's queue, the anonymous statistics and the audit check.
//!
//! Every step checks that it did what it should; the run exits 0 only if all did, and it leaves
//! nothing behind in the temp folder.

mod clinics;
mod people;
mod temp;

use crate::eligibility_cmd::{verdict_json, verdict_text};
use crate::field_cmd::{self, print_stats, print_status};
use crate::out::{Ctx, Failure};
use crate::CmdResult;
use chrono::NaiveDate;
use clinics::{clinic_failed, Clinics};
use lotsa_core::clock::{to_stockholm, Clock, SystemClock};
use lotsa_core::consent::{Capacity, ConsentForm, Method, Recorder, Role};
use lotsa_core::crypto::vault::DevFileVault;
use lotsa_core::crypto::CryptoError;
use lotsa_core::identity;
use lotsa_core::referral::{assess_typed, find_program, DraftUpdate, HandoverPayload, TypedFacts};
use lotsa_core::store::{ItemKind, Store, StoreError, Withdrawn};
use lotsa_core::sync::{self, SyncOptions, SyncReport, Timeouts, Trigger};
use lotsa_core::text::Reasoned;
use people::{people, Person};
use serde_json::{json, Value};
use std::collections::BTreeSet;
use std::sync::Arc;
use temp::TempFolder;

/// How many stages the account has (each starts with a progress line).
const STAGES: u32 = 5;

/// A referral sealed during the shift.
struct Sealed {
    id: String,
    program_id: String,
    name: &'static str,
    /// The person's entry in the log.
    entry: usize,
}

/// One run of the demo: the phone, the clinics, and what happened so far.
struct Demo<'a> {
    ctx: &'a Ctx,
    today: NaiveDate,
    store: Store,
    clinics: Clinics,
    officer: Recorder,
    /// One entry per person met (the JSON's `people`).
    log: Vec<Value>,
    sealed: Vec<Sealed>,
    /// The shift's counts (the JSON's `totals`).
    totals: Value,
}

pub fn run(ctx: &Ctx) -> CmdResult {
    let clock = SystemClock;
    let now = clock.now();
    // Declared first, so it is removed last: after the clinics have stopped.
    let folder = TempFolder::new(ctx)?;
    let lang = ctx.lang;
    let started = to_stockholm(now).format("%Y-%m-%d %H:%M %:z");
    say(
        ctx,
        lang.pick(
            format!("Lotsa-demo — ett pass på Sergels torg (\"Plattan\"), Stockholm, {started}"),
            format!("Lotsa demo — a shift at Sergels torg (\"Plattan\"), Stockholm, {started}"),
        ),
    )?;
    stage(
        ctx,
        1,
        "Mottagningarna startar på den här datorn (127.0.0.1), var och en med egna nycklar, en egen utvecklings-CA och ett eget TLS-certifikat.",
        "The clinics start on this machine (127.0.0.1), each with its own keys, development CA and TLS certificate.",
    )?;
    let clinics = Clinics::start(ctx, &folder.dir.join("clinics"), now)?;
    let mut vault_warning = String::new();
    let vault_dir = folder.dir.join("phone-vault");
    let vault = DevFileVault::open_with_warning(&vault_dir, |w| {
        vault_warning = field_cmd::vault_warning(lang, &vault_dir, w)
    })
    .map_err(|e| ctx.fail(&StoreError::Crypto(CryptoError::Vault(e))))?;
    let store = Store::open(
        &folder.dir.join("phone.sqlite"),
        Arc::new(vault),
        Arc::new(clock),
    )
    .map_err(|e| ctx.fail(&e))?;
    let mut demo = Demo {
        ctx,
        today: clock.today(),
        store,
        clinics,
        officer: Recorder {
            role: Role::Police,
            officer_id: "P-1234".into(),
            unit: "City polisområde, Plattan".into(),
        },
        log: Vec::new(),
        sealed: Vec::new(),
        totals: Value::Null,
    };
    demo.set_up(&folder, vault_warning.trim())?;
    let offline = demo.shift()?;
    let restored = demo.coverage_returns()?;
    let (withdrawals, withdrawal_sync) = demo.withdraw_after_delivery()?;
    demo.where_things_stand(
        json!({
            "offline": offline,
            "restored": restored,
            "withdrawal": withdrawal_sync,
        }),
        withdrawals,
    )
}

/// A line of the account (nothing with `--json`: the JSON comes at the end).
fn say(ctx: &Ctx, line: String) -> CmdResult {
    if ctx.json {
        Ok(())
    } else {
        ctx.line(line)
    }
}

/// A stage's progress line.
fn stage(ctx: &Ctx, n: u32, sv: &str, en: &str) -> CmdResult {
    say(ctx, format!("\n[{n}/{STAGES}] {}", ctx.lang.pick(sv, en)))
}

impl Demo<'_> {
    fn say(&self, line: String) -> CmdResult {
        say(self.ctx, line)
    }

    fn pick(&self, sv: String, en: String) -> String {
        self.ctx.lang.pick(sv, en)
    }

    /// A step that did not do what it should: the run fails with what was expected.
    fn check(&self, ok: bool, step: u32, sv: &str, en: &str) -> CmdResult {
        if ok {
            return Ok(());
        }
        Err(Failure::other(
            "demo_step_failed",
            self.pick(
                format!("steg {step} gjorde inte det det skulle: {sv}"),
                format!("step {step} did not do what it should: {en}"),
            ),
        ))
    }

    fn store_failed(&self, e: StoreError) -> Failure {
        self.ctx.fail(&e)
    }

    /// Stage 1 (after the clinics started): the bundle, the phone, and its enrolment at both.
    fn set_up(&mut self, folder: &TempFolder, vault_warning: &str) -> CmdResult {
        for c in &self.clinics.all {
            self.say(format!(
                "  {}: {} ({})",
                c.name(),
                c.local.clinic().endpoint,
                c.programs.join(", ")
            ))?;
        }
        let (key, n) = (
            self.clinics.admin.key_id(),
            self.clinics.bundle.programs().len(),
        );
        self.say(self.pick(
            format!("  Programfil: exempelprogrammen med mottagningarnas nycklar och certifikat, signerade med en tillfällig administratörsnyckel {key} och kontrollerade som appen gör vid start ({n} program)."),
            format!("  Program bundle: the example programs with the clinics' keys and certificates, signed with a throw-away administrator key {key} and verified as the app does at start ({n} programs)."),
        ))?;
        let dir = folder.dir.display();
        self.say(self.pick(
            format!("  Telefon: en tillfällig lagring i {dir}"),
            format!("  Phone: a temporary store in {dir}"),
        ))?;
        self.say(format!("  ({vault_warning})"))?;
        let mut device = String::new();
        for i in 0..self.clinics.all.len() {
            let clinic = &self.clinics.all[i];
            let code = clinic
                .local
                .enrolment_code()
                .map_err(|e| clinic_failed(self.ctx, e))?;
            let program = clinic.programs[0];
            device = sync::enrol(
                &mut self.store,
                &self.clinics.bundle,
                program,
                &code,
                Timeouts::default(),
            )
            .map_err(|e| self.ctx.fail(&e))?;
        }
        let endpoints: Vec<bool> = self
            .clinics
            .all
            .iter()
            .map(|c| self.store.is_enrolled(&c.local.clinic().endpoint))
            .collect::<Result<_, _>>()
            .map_err(|e| self.store_failed(e))?;
        self.check(
            endpoints.iter().all(|e| *e),
            1,
            "telefonen är inte registrerad hos båda mottagningarna",
            "the phone is not enrolled at both clinics",
        )?;
        self.say(self.pick(
            format!("  På stationen, med täckning, registreras telefonen hos båda med engångskoder (enhet {device})."),
            format!("  At the station, with coverage, the phone enrols at both with one-time codes (device {device})."),
        ))
    }

    /// Stage 2: the clinics are unreachable; the officer meets everyone; a sync without coverage
    /// delivers nothing and keeps everything.
    fn shift(&mut self) -> Result<SyncReport, Failure> {
        self.clinics.go_offline();
        stage(
            self.ctx,
            2,
            "Passet, utan täckning: mottagningarna går inte att nå härifrån, så allt som registreras väntar förseglat i telefonen.",
            "The shift, offline: the clinics cannot be reached from here, so everything recorded waits, sealed, on the phone.",
        )?;
        let home = find_program(&self.clinics.bundle, "lots-for-livet")
            .map_err(|e| self.ctx.fail(&e))?
            .clone();
        self.say(self.pick(
            format!(
                "Polis {} ({}) erbjuder {}.\n",
                self.officer.officer_id, self.officer.unit, home.name
            ),
            format!(
                "Officer {} ({}) offers {}.\n",
                self.officer.officer_id, self.officer.unit, home.name
            ),
        ))?;
        let (mut offers, mut eligible, mut routed) = (0, 0, 0);
        for (i, person) in people(self.today).into_iter().enumerate() {
            match self.meet(i + 1, &person, &home)? {
                Met::Eligible => eligible += 1,
                Met::Routed => routed += 1,
                Met::Nothing => {}
                Met::NumberRefused => continue,
            }
            offers += 1;
        }
        let n = self.sealed.len();
        self.say(self.pick(
            format!("Passet är slut: {offers} personer mötta, {eligible} kan erbjudas här, {routed} hänvisade till ett annat program, {n} remisser förseglade för leverans."),
            format!("End of shift: {offers} people met, {eligible} eligible here, {routed} routed to another program, {n} referrals sealed for delivery."),
        ))?;
        self.totals =
            json!({"offers": offers, "eligible": eligible, "routed": routed, "handovers": n});
        let report = self.sync(Trigger::Manual)?;
        let waiting = report.retrying.len();
        let all_network = report.retrying.iter().all(|r| r.code == "network");
        self.say(self.pick(
            format!("Telefonen försöker synka: {} levererade, {waiting} väntar på täckning (network); inget går förlorat.", report.delivered.len()),
            format!("The phone tries to sync: {} delivered, {waiting} wait for coverage (network); nothing is lost.", report.delivered.len()),
        ))?;
        self.check(
            report.delivered.is_empty() && waiting == n && all_network,
            2,
            "utan täckning ska allt vänta med skälet network",
            "without coverage everything must wait, with the reason network",
        )?;
        Ok(report)
    }

    /// One person: the number, the verdict, the routing, the script, and their answer.
    fn meet(
        &mut self,
        i: usize,
        p: &Person,
        home: &lotsa_core::program::Program,
    ) -> Result<Met, Failure> {
        let (ctx, lang, today) = (self.ctx, self.ctx.lang, self.today);
        self.say(format!("{i}. {}", lang.pick(p.who[0], p.who[1])))?;
        let mut number = p.typed_number.clone();
        let parsed = match identity::parse(&number, today) {
            Ok(n) => n,
            Err(e) => {
                self.say(self.pick(
                    format!(
                        "   nummer {number}: avvisat — {} [{}]",
                        e.message(lang),
                        e.code()
                    ),
                    format!(
                        "   number {number}: refused — {} [{}]",
                        e.message(lang),
                        e.code()
                    ),
                ))?;
                let Some(fixed) = &p.corrected_number else {
                    self.log.push(json!({"person": i, "error": e.code()}));
                    return Ok(Met::NumberRefused);
                };
                self.say(self.pick(
                    format!("   Polisen frågar igen och skriver om det: {fixed}"),
                    format!("   The officer asks again and retypes it: {fixed}"),
                ))?;
                number = fixed.clone();
                identity::parse(&number, today).map_err(|e| ctx.fail(&e))?
            }
        };
        let age = parsed.age_on(today);
        let age = age
            .exact()
            .map(|a| a.to_string())
            .unwrap_or_else(|| format!("{}–{}", age.min, age.max));
        let kind = parsed.kind().as_str();
        self.say(self.pick(
            format!("   nummer {number}: ett giltigt {kind}, ålder {age}"),
            format!("   number {number}: a valid {kind}, age {age}"),
        ))?;
        // What the officer has typed so far, checked on the street before anything is stored.
        let typed = TypedFacts {
            identity_number: Some(number.clone()),
            municipality: Some(p.municipality.to_string()),
            provenance: p.provenance,
            ..TypedFacts::default()
        };
        let bundle = &self.clinics.bundle;
        let street_check = |program_id: &str| {
            assess_typed(bundle, program_id, &typed, today).map_err(|e| ctx.fail(&e))
        };
        let verdict = street_check(&home.id)?;
        for line in verdict_text(&verdict, &home.name, lang).lines() {
            self.say(format!("   {line}"))?;
        }
        let (met, target) = if verdict.may_refer {
            (Met::Eligible, Some((home.clone(), verdict.clone())))
        } else if let Some(route) = verdict.routing.first() {
            let other = find_program(bundle, &route.program_id).map_err(|e| ctx.fail(&e))?;
            (Met::Routed, Some((other.clone(), street_check(&other.id)?)))
        } else {
            (Met::Nothing, None)
        };
        let mut entry = json!({"person": i, "verdict": verdict_json(&verdict, lang)});
        match target {
            Some((program, v)) if v.may_refer => {
                let script = program.consent_script(p.script_lang).ok_or_else(|| {
                    Failure::other(
                        "bundle",
                        lang.pick("ingen samtyckestext", "no consent script"),
                    )
                })?;
                let (sid, version, code) = (&script.id, script.version, p.script_lang.code());
                self.say(self.pick(
                    format!(
                        "   Polisen läser samtyckestexten för {} ({sid} v{version}, {code}):",
                        program.name
                    ),
                    format!(
                        "   The officer reads {}'s consent script ({sid} v{version}, {code}):",
                        program.name
                    ),
                ))?;
                for line in wrap(&script.text, 92) {
                    self.say(format!("     │ {line}"))?;
                }
                if !p.consents {
                    self.store
                        .record_refusal(bundle, &program.id)
                        .map_err(|e| self.store_failed(e))?;
                    self.say(self.pick(
                        "   Tackar nej just nu. Nejet räknas; inget om personen sparas.".into(),
                        "   Declines for now. The refusal is counted; nothing about the person is kept.".into(),
                    ))?;
                    entry["refused"] = json!(true);
                } else {
                    let consent = ConsentForm {
                        program_id: Some(program.id.clone()),
                        language: code.into(),
                        script_version: Some(version),
                        method: Method::Verbal {
                            witness: "P-4711".into(),
                        },
                        recorded_by: self.officer.clone(),
                        told_no_effect_on_police_matter: true,
                        told_can_withdraw: true,
                        capacity: Capacity::Adequate,
                        share_personnummer: false,
                    };
                    let handover = self.seal(p, &program.id, &typed, &consent)?;
                    entry["handover_id"] = json!(handover);
                    self.sealed.push(Sealed {
                        id: handover,
                        program_id: program.id.clone(),
                        name: p.name,
                        entry: self.log.len(),
                    });
                }
            }
            _ => {
                self.store
                    .record_ineligible(bundle, &home.id, &typed)
                    .map_err(|e| self.store_failed(e))?;
                self.say(self.pick(
                    "   Inget att erbjuda i dag; polisen förklarar varför. Bara skälet räknas.".into(),
                    "   Nothing to offer today; the officer explains why. Only the reason is counted.".into(),
                ))?;
            }
        }
        self.log.push(entry);
        self.say(String::new())?;
        Ok(met)
    }

    /// Draft → consent → finalize: the referral sealed in the outbox; its handover id.
    fn seal(
        &mut self,
        p: &Person,
        program_id: &str,
        typed: &TypedFacts,
        consent: &ConsentForm,
    ) -> Result<String, Failure> {
        let bundle = &self.clinics.bundle;
        let sf = |e: StoreError| self.ctx.fail(&e);
        let id = self.store.create_draft(bundle, program_id).map_err(sf)?;
        let typed_in = DraftUpdate {
            name: Some(p.name.into()),
            phone: Some(p.phone.into()),
            language: Some(p.script_lang.code().into()),
            best_time: Some("efter kl. 14".into()),
            identity_number: typed.identity_number.clone(),
            municipality: typed.municipality.clone(),
            provenance: Some(typed.provenance),
            ..DraftUpdate::default()
        };
        self.store.update_draft(&id, typed_in).map_err(sf)?;
        self.store
            .record_consent(&id, bundle, consent)
            .map_err(sf)?;
        let handover = self.store.finalize(&id, bundle).map_err(sf)?;
        let bytes = self.store.sealed_payload(&handover).map_err(sf)?.len();
        let clinic = self
            .clinics
            .of(program_id)
            .map(|c| c.name().to_string())
            .unwrap_or_default();
        self.say(self.pick(
            format!("   Samtycker (muntligt, vittne P-4711). Utkast → samtycke → slutför: remiss {handover} är förseglad till {clinic} ({bytes} byte som telefonen inte kan öppna); utkastet och dess nyckel är raderade."),
            format!("   Consents (verbal, witness P-4711). Draft → consent → finalize: handover {handover} is sealed to {clinic} ({bytes} bytes the phone cannot open); the draft and its key are erased."),
        ))?;
        Ok(handover)
    }

    /// One sync run, as the app's job runs it (bundles the clinics serve verified against the
    /// administrator's key).
    fn sync(&mut self, trigger: Trigger) -> Result<SyncReport, Failure> {
        let options = SyncOptions {
            trigger,
            trust: Some(self.clinics.admin),
            ..SyncOptions::default()
        };
        sync::sync(&mut self.store, &self.clinics.bundle, &options).map_err(|e| self.ctx.fail(&e))
    }

    /// How many sealed payloads the phone still holds.
    fn payloads_held(&mut self) -> Result<usize, Failure> {
        let status = self
            .store
            .queue_status()
            .map_err(|e| self.store_failed(e))?;
        Ok(status
            .items
            .iter()
            .filter(|i| i.kind == ItemKind::Referral)
            .filter(|i| self.store.sealed_payload(&i.id).is_ok())
            .count())
    }

    /// Stage 3: the clinics can be reached; one sync delivers everything; what each clinic reads.
    fn coverage_returns(&mut self) -> Result<SyncReport, Failure> {
        self.clinics.come_back(self.ctx)?;
        stage(
            self.ctx,
            3,
            "Täckningen är tillbaka: telefonen synkar (ConnectivityRestored).",
            "Coverage returns: the phone syncs (ConnectivityRestored).",
        )?;
        let report = self.sync(Trigger::ConnectivityRestored)?;
        let held = self.payloads_held()?;
        let delivered: BTreeSet<&str> = report.delivered.iter().map(String::as_str).collect();
        let expected: BTreeSet<&str> = self.sealed.iter().map(|s| s.id.as_str()).collect();
        let mut per_clinic = Vec::new();
        for c in &self.clinics.all {
            let n = self
                .sealed
                .iter()
                .filter(|s| c.programs.contains(&s.program_id.as_str()))
                .count();
            per_clinic.push(format!("{n} → {}", c.name()));
        }
        self.say(self.pick(
            format!("  {} levererade ({}). Varje kvitto är kontrollerat: mottagningens kvittonyckel och de förseglade bytens SHA-256. Telefonen har raderat de förseglade uppgifterna: {held} kvar.", delivered.len(), per_clinic.join(", ")),
            format!("  {} delivered ({}). Every receipt is verified: the clinic's receipt key and the sealed bytes' SHA-256. The phone has erased the sealed payloads: {held} left.", delivered.len(), per_clinic.join(", ")),
        ))?;
        self.check(
            delivered == expected
                && report.failed.is_empty()
                && report.retrying.is_empty()
                && report.waiting.is_empty(),
            3,
            "varje förseglad remiss ska levereras en gång",
            "every sealed referral must be delivered once",
        )?;
        self.check(
            held == 0,
            3,
            "telefonen har kvar förseglade uppgifter",
            "the phone still holds sealed payloads",
        )?;
        for s in 0..self.sealed.len() {
            let (id, program_id, entry) = {
                let s = &self.sealed[s];
                (s.id.clone(), s.program_id.clone(), s.entry)
            };
            let Some(clinic) = self.clinics.of(&program_id) else {
                continue;
            };
            let payload = clinic.read(self.ctx, &id)?;
            self.check(
                payload.is_some(),
                3,
                "mottagningen har inte remissen",
                "the clinic does not hold the referral",
            )?;
            let Some(payload) = payload else { continue };
            let name = clinic.name().to_string();
            self.say(self.reads(&name, &payload, &program_id))?;
            self.log[entry]["handover"] = serde_json::to_value(&payload).unwrap_or_default();
        }
        Ok(report)
    }

    /// What a clinic's staff read of a delivered referral: only what the program needs.
    fn reads(&self, clinic: &str, payload: &HandoverPayload, program_id: &str) -> String {
        let lang = self.ctx.lang;
        let contact = serde_json::to_string(&payload.contact).unwrap_or_default();
        let person = serde_json::to_string(&payload.person).unwrap_or_default();
        let outcome = payload.eligibility.outcome.as_str();
        let provisional = if payload.eligibility.provisional {
            lang.pick(
                " (preliminärt: mottagningen kontrollerar folkbokföringen)",
                " (provisional: the clinic confirms residency)",
            )
        } else {
            ""
        };
        let promise = self
            .clinics
            .bundle
            .program(program_id)
            .map(|p| p.callback_promise.get(lang).to_string())
            .unwrap_or_default();
        self.pick(
            format!("  {clinic} läser: kontakt {contact} | person {person} | bedömning {outcome}{provisional} — {promise}"),
            format!("  {clinic} reads: contact {contact} | person {person} | eligibility {outcome}{provisional} — {promise}"),
        )
    }

    /// Stage 4: one person withdraws after delivery; the next sync erases them at the clinic.
    fn withdraw_after_delivery(&mut self) -> Result<(Vec<Value>, SyncReport), Failure> {
        let Some(sam) = self.sealed.iter().find(|s| s.name == "Sam") else {
            return Err(Failure::other(
                "demo_step_failed",
                "no referral to withdraw",
            ));
        };
        let (id, program_id, name) = (sam.id.clone(), sam.program_id.clone(), sam.name);
        stage(
            self.ctx,
            4,
            &format!("Återkallelse efter leverans: senare samma kväll kommer {name} tillbaka till Plattan och tar tillbaka sitt samtycke."),
            &format!("Withdrawal after delivery: later that evening {name} comes back to Plattan and withdraws consent."),
        )?;
        let result = self
            .store
            .withdraw(&id, Some(&self.officer))
            .map_err(|e| self.store_failed(e))?;
        let Withdrawn::QueuedForClinic { withdrawal_id } = &result else {
            return Err(Failure::other(
                "demo_step_failed",
                self.pick(
                    "steg 4: en levererad remiss ska ge ett återkallelsemeddelande".into(),
                    "step 4: a delivered referral must queue a withdrawal message".into(),
                ),
            ));
        };
        let report = self.sync(Trigger::Manual)?;
        let clinic = self
            .clinics
            .of(&program_id)
            .ok_or_else(|| Failure::other("demo_step_failed", "no clinic"))?;
        let erased =
            clinic.read(self.ctx, &id)?.is_none() && clinic.has_tombstone(self.ctx, &id)?;
        let clinic_name = clinic.name().to_string();
        self.say(self.pick(
            format!("  Telefonen köar återkallelsen {withdrawal_id} och synkar: {clinic_name} har raderat remissen och sparar bara en gravsten (id och tid), så att en sen kopia vägras."),
            format!("  The phone queues withdrawal {withdrawal_id} and syncs: {clinic_name} has erased the referral and keeps only a tombstone (id and time), so a late copy is refused."),
        ))?;
        self.check(
            report.delivered.contains(withdrawal_id) && erased,
            4,
            "mottagningen ska ha raderat remissen",
            "the clinic must have erased the referral",
        )?;
        let withdrawals = vec![json!({"handover_id": id, "result": result})];
        Ok((withdrawals, report))
    }

    /// Stage 5: what each clinic holds, the phone's queue and statistics, the audit check.
    fn where_things_stand(mut self, syncs: Value, withdrawals: Vec<Value>) -> CmdResult {
        stage(
            self.ctx,
            5,
            "Läget efter passet.",
            "Where things stand after the shift.",
        )?;
        let mut clinics = Vec::new();
        for c in &self.clinics.all {
            let held = c.held(self.ctx)?;
            let mut withdrawn = Vec::new();
            for s in self
                .sealed
                .iter()
                .filter(|s| c.programs.contains(&s.program_id.as_str()))
            {
                if c.has_tombstone(self.ctx, &s.id)? {
                    withdrawn.push(s.id.clone());
                }
            }
            let expected: Vec<&str> = self
                .sealed
                .iter()
                .filter(|s| {
                    c.programs.contains(&s.program_id.as_str()) && !withdrawn.contains(&s.id)
                })
                .map(|s| s.id.as_str())
                .collect();
            let (h, w, ids) = (held.len(), withdrawn.len(), held.join(", "));
            self.say(self.pick(
                format!(
                    "  {} har {h} {} ({ids}); återkallade och raderade: {w}.",
                    c.name(),
                    if h == 1 { "remiss" } else { "remisser" }
                ),
                format!(
                    "  {} holds {h} {} ({ids}); withdrawn and erased: {w}.",
                    c.name(),
                    if h == 1 { "referral" } else { "referrals" }
                ),
            ))?;
            let mut held_sorted: Vec<&str> = held.iter().map(String::as_str).collect();
            held_sorted.sort();
            let mut expected = expected;
            expected.sort();
            self.check(
                held_sorted == expected,
                5,
                "en mottagning har andra remisser än de som levererades och inte återkallades",
                "a clinic holds other referrals than those delivered and not withdrawn",
            )?;
            clinics.push(json!({
                "name": c.name(),
                "endpoint": c.local.clinic().endpoint,
                "programs": c.programs,
                "held": held,
                "withdrawn": withdrawn,
            }));
        }
        let fhir = self.fhir_exports()?;
        let held = self.payloads_held()?;
        self.check(
            held == 0,
            5,
            "telefonen har kvar förseglade uppgifter",
            "the phone still holds sealed payloads",
        )?;
        let status = self
            .store
            .queue_status()
            .map_err(|e| self.store_failed(e))?;
        let stats = self.store.stats().map_err(|e| self.store_failed(e))?;
        let audit = self
            .store
            .verify_audit()
            .map_err(|e| self.store_failed(e))?;
        let ctx = self.ctx;
        if ctx.json {
            return ctx.print_json(&json!({
                "date": self.today,
                "bundle_signer": self.clinics.admin.key_id(),
                "clinics": clinics,
                "people": self.log,
                "totals": self.totals,
                "sync": syncs,
                "withdrawals": withdrawals,
                "fhir": fhir,
                "phone": {"payloads_held": held},
                "queue": status,
                "stats": stats,
                "audit": {"ok": true, "entries": audit.entries, "head": audit.head},
            }));
        }
        let lang = ctx.lang;
        self.say(lang.pick(
            "\nUtkorgen (det appen visar; inga personuppgifter):".into(),
            "\nQueue (what the app shows; no personal data):".into(),
        ))?;
        print_status(ctx, &self.store)?;
        self.say(lang.pick(
            "\nStatistik (anonyma räknare):".into(),
            "\nStatistics (anonymous counters):".into(),
        ))?;
        print_stats(ctx, &self.store)?;
        let (n, head) = (audit.entries, audit.head.get(..16).unwrap_or(&audit.head));
        self.say(self.pick(
            format!("\nHändelseloggen: {n} poster, hashkedjan är hel (senaste {head})."),
            format!("\nAudit log: {n} entries, hash chain intact (head {head})."),
        ))?;
        self.say(lang.pick(
            "Alla steg gjorde det de skulle. Den tillfälliga mappen tas bort nu.".into(),
            "Every step did what it should. The temporary folder is removed now.".into(),
        ))
    }

    /// Each delivered referral exported as FHIR for the clinic's care record system: Lots för
    /// livet allows it (a withdrawn referral's Consent shows inactive), Snäckan's anonymous
    /// programs never do.
    fn fhir_exports(&self) -> Result<Vec<Value>, Failure> {
        let mut exports = Vec::new();
        for s in &self.sealed {
            let Some(clinic) = self.clinics.of(&s.program_id) else {
                continue;
            };
            let allowed = self
                .clinics
                .bundle
                .program(&s.program_id)
                .and_then(|p| p.fhir_export)
                == Some(true);
            let exported = clinic.export_fhir(self.ctx, &s.id, &self.clinics.bundle)?;
            let (name, who) = (clinic.name().to_string(), s.name);
            match exported {
                Ok(fhir) => {
                    let resource = |kind: &str| {
                        fhir["entry"]
                            .as_array()
                            .and_then(|e| e.iter().find(|e| e["resource"]["resourceType"] == kind))
                            .map(|e| &e["resource"])
                    };
                    let status = |kind: &str| {
                        resource(kind)
                            .and_then(|r| r["status"].as_str())
                            .unwrap_or("-")
                            .to_string()
                    };
                    let (consent, request, task) =
                        (status("Consent"), status("ServiceRequest"), status("Task"));
                    let patient = match resource("Patient") {
                        Some(_) => "Patient, ".to_string(),
                        None => self.pick(
                            "ingen Patient (raderad), ".into(),
                            "no Patient (erased), ".into(),
                        ),
                    };
                    self.say(self.pick(
                        format!("  {name} → journalsystemet (FHIR R4) för {who}: {patient}Consent {consent}, ServiceRequest {request}, Task {task}."),
                        format!("  {name} → the care record system (FHIR R4) for {who}: {patient}Consent {consent}, ServiceRequest {request}, Task {task}."),
                    ))?;
                    let withdrawn = clinic.has_tombstone(self.ctx, &s.id)?;
                    self.check(
                        allowed && (consent == "inactive") == withdrawn,
                        5,
                        "FHIR-exporten visar inte samtyckets läge",
                        "the FHIR export does not show the consent's state",
                    )?;
                    exports.push(json!({"handover_id": s.id, "clinic": name, "exported": true,
                                        "consent": consent, "service_request": request, "task": task}));
                }
                Err(refused) => {
                    self.say(self.pick(
                        format!("  {name} exporterar inte {who} till något journalsystem: programmet lovar anonymitet."),
                        format!("  {name} does not export {who} to any care record system: the program promises anonymity."),
                    ))?;
                    self.check(
                        !allowed
                            && matches!(refused, lotsa_clinic::export::ExportError::NotAllowed),
                        5,
                        "FHIR-exporten vägrades för ett program som tillåter den",
                        "the FHIR export was refused for a program that allows it",
                    )?;
                    exports.push(json!({"handover_id": s.id, "clinic": name, "exported": false}));
                }
            }
        }
        Ok(exports)
    }
}

/// What meeting a person came to.
enum Met {
    /// Eligible for the officer's own program.
    Eligible,
    /// Routed to another program that accepts them.
    Routed,
    /// No configured program can take them today.
    Nothing,
    /// The number was refused and not typed again: no verdict.
    NumberRefused,
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
