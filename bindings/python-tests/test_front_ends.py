"""One field workflow, two front ends: the same cases run through the `lotsa field` CLI and
through the Python bindings, and must end the same way — the same outcome, the same error code
and the same field name, and for a recorded consent the same data items and notes.

Both front ends are thin translations of the core's workflow (the store computes verdicts and
builds consent records itself), so a difference here is a domain rule written twice. Each case
is one referral: a draft is created, filled in, consented (or not) and finalized; the outcome is
the first step that is refused, with its code and field, or the handover when it goes through.

The CLI is the real binary (`LOTSA_CLI`, default target/debug/lotsa, which bindings/test.sh
builds); the bindings use the development file vault, as the CLI does. Nothing is skipped: a
missing binary fails the run.
"""

from __future__ import annotations

import json
import os
import pathlib
import subprocess

import pytest

from helpers import personnummer

REPO_ROOT = pathlib.Path(__file__).resolve().parents[2]
CLI = pathlib.Path(os.environ.get("LOTSA_CLI", REPO_ROOT / "target" / "debug" / "lotsa"))

STOCKHOLM = dict(
    name="Kim Testsson",
    phone="070-123 45 67",
    identity_number=personnummer("1990-04-12"),
    municipality="Stockholm",
    provenance="document",
)
KALMAR = dict(STOCKHOLM, municipality="Kalmar")
CONSENT = dict(
    witness="P-4711",
    officer="P-1234",
    unit="Polisen City",
    told_no_effect=True,
    told_withdrawal=True,
    capacity="adequate",
    language="sv",
    script_version=None,  # the program's current one
    share_personnummer=False,
)

# (name, program, bundle file, draft fields, consent options or None for no consent)
CASES = [
    ("a valid referral", "lots-for-livet", "bundle.json", STOCKHOLM, {}),
    ("a missing witness", "lots-for-livet", "bundle.json", STOCKHOLM, dict(witness="")),
    ("no word that refusing has no effect", "lots-for-livet", "bundle.json", STOCKHOLM, dict(told_no_effect=False)),
    ("no word that consent can be withdrawn", "lots-for-livet", "bundle.json", STOCKHOLM, dict(told_withdrawal=False)),
    ("doubtful capacity", "lots-for-livet", "bundle.json", STOCKHOLM, dict(capacity="doubtful")),
    ("lacking capacity", "lots-for-livet", "bundle.json", STOCKHOLM, dict(capacity="lacking")),
    ("an old script version", "lots-for-livet", "bundle.json", STOCKHOLM, dict(script_version=7)),
    ("a script language the core has no texts in", "lots-for-livet", "bundle.json", STOCKHOLM, dict(language="fi")),
    ("a missing unit", "lots-for-livet", "bundle.json", STOCKHOLM, dict(unit=" ")),
    ("no consent at all", "lots-for-livet", "bundle.json", STOCKHOLM, None),
    ("a person registered elsewhere", "lots-for-livet", "bundle.json", dict(STOCKHOLM, municipality="Solna"), {}),
    ("a person under 18", "lots-for-livet", "bundle.json", dict(STOCKHOLM, identity_number=personnummer("2010-01-01")), {}),
    ("a mistyped number", "lots-for-livet", "bundle.json", dict(STOCKHOLM, identity_number="19900412-1234"), {}),
    ("a bad municipality", "lots-for-livet", "bundle.json", dict(STOCKHOLM, municipality="Atlantis"), {}),
    ("a bad phone", "lots-for-livet", "bundle.json", dict(STOCKHOLM, phone="070-12"), {}),
    ("a missing phone", "lots-for-livet", "bundle.json", dict(STOCKHOLM, phone=""), {}),
    ("share the number where it is optional", "kalmar", "bundle.json", KALMAR, dict(share_personnummer=True)),
    ("keep the number where it is optional", "kalmar", "bundle.json", KALMAR, {}),
    ("share the number where it is required", "kalmar", "pnr-required-bundle.json", KALMAR, dict(share_personnummer=True)),
    ("keep the number where it is required", "kalmar", "pnr-required-bundle.json", KALMAR, {}),
    ("share the number where it is never taken", "lots-for-livet", "bundle.json", STOCKHOLM, dict(share_personnummer=True)),
    ("the witness is the recording officer", "lots-for-livet", "bundle.json", STOCKHOLM, dict(witness="p 1234")),
    ("an officer id of zero-width spaces", "lots-for-livet", "bundle.json", STOCKHOLM, dict(officer="\u200b\u200b")),
    ("a name of zero-width characters", "lots-for-livet", "bundle.json", dict(STOCKHOLM, name="\u200b\u2060"), {}),
    ("a bidi override in the name", "lots-for-livet", "bundle.json", dict(STOCKHOLM, name="Kim \u202enna"), {}),
    ("a premium-rate phone", "lots-for-livet", "bundle.json", dict(STOCKHOLM, phone="0900-123 456"), {}),
    ("a trunk zero after +46", "lots-for-livet", "bundle.json", dict(STOCKHOLM, phone="+46 070-123 45 67"), {}),
    ("a region for a municipality", "lots-for-livet", "bundle.json", dict(STOCKHOLM, municipality="Region Stockholm"), {}),
    ("a century typo", "lots-for-livet", "bundle.json", dict(STOCKHOLM, identity_number=personnummer("1909-06-01")), {}),
]


def current_script_version(ffi, bundle, program, language):
    try:
        return bundle.consent_script(program, language).version
    except ffi.ApiError:
        return 1  # no script in that language: the consent step refuses it


class CliDevice:
    """`lotsa --json field …` on one device database and development vault."""

    def __init__(self, tmp, bundle_file, trust_file):
        if not CLI.is_file():
            pytest.fail(f"the lotsa CLI is missing at {CLI}: run bindings/test.sh or set LOTSA_CLI", pytrace=False)
        self.base = [str(CLI), "--json", "field", "--db", str(tmp / "cli.db"), "--vault", str(tmp / "cli-vault"),
                     "--bundle", str(bundle_file), "--trust", str(trust_file)]

    def run(self, *args):
        out = subprocess.run(self.base + list(args), capture_output=True, text=True, timeout=60)
        lines = [line for line in out.stdout.splitlines() if line.strip()]
        assert len(lines) == 1, f"{args}: {out.stdout!r} {out.stderr!r}"
        value = json.loads(lines[0])
        assert (out.returncode == 0) == ("error" not in value), f"{args}: exit {out.returncode}: {value}"
        return value

    def referral(self, ffi, bundle, program, fields, consent):
        """The case's outcome as (step, code, field) for a refusal, or a summary when it goes through."""
        created = self.run("new", "--program", program)
        if "error" in created:
            return refused("new", created)
        draft = created["draft_id"]
        args = ["set", draft]
        for key, value in fields.items():
            args += [f"--{key.replace('_', '-')}", value]
        saved = self.run(*args)
        if "error" in saved:
            return refused("set", saved)
        notes, items = [], []
        if consent is not None:
            c = dict(CONSENT, **consent)
            version = c["script_version"] or current_script_version(ffi, bundle, program, c["language"])
            args = ["consent", draft, "--witness", c["witness"], "--officer", c["officer"], "--unit", c["unit"],
                    "--capacity", c["capacity"], "--language", c["language"], "--script-version", str(version)]
            args += ["--told-no-effect"] if c["told_no_effect"] else []
            args += ["--told-withdrawal"] if c["told_withdrawal"] else []
            args += ["--share-personnummer"] if c["share_personnummer"] else []
            given = self.run(*args)
            if "error" in given:
                return refused("consent", given)
            notes = sorted(n["code"] for n in given["notes"])
            items = sorted(given["data_items"])
        finalized = self.run("finalize", draft)
        if "error" in finalized:
            return refused("finalize", finalized)
        assert finalized["handover_id"] == draft
        return ("finalized", notes, items)


def refused(step, value):
    error = value["error"]
    return (step, error["code"], error.get("field"))


class FfiDevice:
    """The same device through the generated bindings."""

    def __init__(self, ffi, tmp):
        self.ffi = ffi
        self.store = ffi.DeviceStore.open_with_dev_vault(str(tmp / "ffi.db"), str(tmp / "ffi-vault"))

    def referral(self, bundle, program, fields, consent):
        ffi = self.ffi
        try:
            draft = self.store.create_draft(bundle, program)
        except ffi.ApiError as e:
            return ffi_refused("new", e)
        typed = dict(fields)
        typed["provenance"] = getattr(ffi.Provenance, typed["provenance"].upper())
        try:
            self.store.update_draft(draft, ffi.DraftUpdate(**typed))
        except ffi.ApiError as e:
            return ffi_refused("set", e)
        notes, items = [], []
        if consent is not None:
            c = dict(CONSENT, **consent)
            version = c["script_version"] or current_script_version(ffi, bundle, program, c["language"])
            form = ffi.ConsentInput(
                program_id=program,
                subject_ref=draft,
                language=c["language"],
                script_version=version,
                method=ffi.ConsentMethod.VERBAL(witness=c["witness"]),
                role=ffi.Role.POLICE,
                officer_id=c["officer"],
                unit=c["unit"],
                told_no_effect_on_police_matter=c["told_no_effect"],
                told_can_withdraw=c["told_withdrawal"],
                capacity=getattr(ffi.Capacity, c["capacity"].upper()),
                share_personnummer=c["share_personnummer"],
            )
            try:
                receipt = self.store.record_consent(bundle, draft, form)
            except ffi.ApiError as e:
                return ffi_refused("consent", e)
            notes = sorted(n.code for n in receipt.notes)
            items = sorted(receipt.data_items)
        try:
            assert self.store.finalize(bundle, draft) == draft
        except ffi.ApiError as e:
            return ffi_refused("finalize", e)
        return ("finalized", notes, items)


def ffi_refused(step, e):
    return (step, e.error_code(), getattr(e, "field", None))


@pytest.mark.parametrize("name, program, bundle_file, fields, consent", CASES, ids=[c[0] for c in CASES])
def test_the_cli_and_the_bindings_end_a_referral_the_same_way(
    ffi, fixtures_dir, trust_key, tmp_path, name, program, bundle_file, fields, consent
):
    ffi.set_language("en")
    bundle = ffi.ProgramBundle.load((fixtures_dir / bundle_file).read_text(encoding="utf-8"), trust_key)
    cli = CliDevice(tmp_path, fixtures_dir / bundle_file, fixtures_dir / "admin.pub").referral(
        ffi, bundle, program, fields, consent
    )
    app = FfiDevice(ffi, tmp_path).referral(bundle, program, fields, consent)
    assert cli == app, f"{name}: the CLI says {cli}, the bindings say {app}"


def test_the_cases_cover_each_outcome_the_core_gives(ffi, fixtures_dir, trust_key, tmp_path):
    """The table is not vacuous: the expected outcomes, as the core's rules give them."""
    ffi.set_language("en")
    items = ["best_time", "kommunkod", "language", "name", "note", "phone"]
    with_number = sorted(items + ["personnummer"])
    expected = {
        "a valid referral": ("finalized", [], items),
        "a missing witness": ("consent", "consent_incomplete", "method.witness"),
        "no word that refusing has no effect": ("consent", "consent_disclosure_missing", "told_no_effect_on_police_matter"),
        "no word that consent can be withdrawn": ("consent", "consent_disclosure_missing", "told_can_withdraw"),
        "doubtful capacity": ("consent", "consent_capacity_not_adequate", "capacity"),
        "lacking capacity": ("consent", "consent_capacity_not_adequate", "capacity"),
        "an old script version": ("consent", "consent_script_not_current", "script"),
        "a script language the core has no texts in": ("consent", "unsupported_language", "language"),
        "a missing unit": ("consent", "consent_incomplete", "recorded_by.unit"),
        "no consent at all": ("finalize", "consent_missing", "consent"),
        "a person registered elsewhere": ("finalize", "not_eligible", None),
        "a person under 18": ("finalize", "not_eligible", None),
        "a mistyped number": ("finalize", "invalid_checksum", "identity_number"),
        "a bad municipality": ("finalize", "unknown_municipality", "municipality"),
        "a bad phone": ("finalize", "phone_too_short", "phone"),
        "a missing phone": ("finalize", "missing", "phone"),
        "share the number where it is optional": ("finalized", [], with_number),
        "keep the number where it is optional": ("finalized", [], items),
        "share the number where it is required": ("finalized", [], with_number),
        "keep the number where it is required": ("finalized", [], with_number),
        "share the number where it is never taken": ("finalized", ["personnummer_never_taken"], items),
        "the witness is the recording officer": ("consent", "consent_witness_is_recorder", "method.witness"),
        "an officer id of zero-width spaces": ("consent", "consent_incomplete", "recorded_by.officer_id"),
        "a name of zero-width characters": ("finalize", "missing", "name"),
        "a bidi override in the name": ("finalize", "bidi_control", "name"),
        "a premium-rate phone": ("finalize", "phone_premium_rate", "phone"),
        "a trunk zero after +46": ("finalized", [], items),
        "a region for a municipality": ("finalize", "region_not_municipality", "municipality"),
        "a century typo": ("finalize", "undetermined", None),
    }
    assert set(expected) == {c[0] for c in CASES}
    for name, program, bundle_file, fields, consent in CASES:
        bundle = ffi.ProgramBundle.load((fixtures_dir / bundle_file).read_text(encoding="utf-8"), trust_key)
        case_dir = tmp_path / name.replace(" ", "-")
        case_dir.mkdir()
        got = FfiDevice(ffi, case_dir).referral(bundle, program, fields, consent)
        assert got == expected[name], f"{name}: {got}"
