"""DeviceStore: encrypted drafts, consent, finalize into the sealed outbox, withdrawal, queue,
statistics and audit log, through the generated bindings, with a KeyVault written in Python.

`TestVault` below is a TEST DOUBLE of the platform key store an app implements with Android
Keystore / iOS Keychain. Its keys live in this process's memory (a real vault keeps them in
hardware, non-exportable). It still wraps properly, so the store's contract is exercised: a
random 32-byte key per alias, encrypt-then-MAC with HMAC-SHA256 (a CTR keystream and a tag over
the alias, nonce and ciphertext), so altered bytes or another alias are refused. It can be told
to fail, the way a locked phone or a broken keystore does, to show the store reports a typed
error and loses nothing.
"""

import gc
import hashlib
import hmac
import json
import secrets
import subprocess
import sys

import lotsa_ffi
import pytest

from helpers import assert_api_error, personnummer

PROGRAM = "lots-for-livet"
ADULT = personnummer("1990-04-12")


class TestVault(lotsa_ffi.KeyVault):
    """A KeyVault in Python (test double: keys in memory). See the module docstring."""

    __test__ = False  # not a pytest test class
    VERSION = b"\x01"

    def __init__(self):
        self.keys = {}
        self.calls = []
        self.failing = {}  # operation -> a function that raises

    def fail(self, operation, raise_error):
        """From now on, `operation` ("wrap", "unwrap", "destroy") calls `raise_error()`."""
        self.failing[operation] = raise_error

    def recover(self):
        self.failing.clear()

    def _enter(self, operation, alias):
        self.calls.append((operation, alias))
        if operation in self.failing:
            self.failing[operation]()

    @staticmethod
    def _subkeys(key):
        return (
            hmac.new(key, b"encrypt", hashlib.sha256).digest(),
            hmac.new(key, b"authenticate", hashlib.sha256).digest(),
        )

    @staticmethod
    def _stream(key, nonce, length):
        out = b""
        counter = 0
        while len(out) < length:
            out += hmac.new(key, nonce + counter.to_bytes(8, "big"), hashlib.sha256).digest()
            counter += 1
        return out[:length]

    @staticmethod
    def _tag(key, alias, nonce, ciphertext):
        a = alias.encode("utf-8")
        return hmac.new(key, len(a).to_bytes(4, "big") + a + nonce + ciphertext, hashlib.sha256).digest()

    def wrap(self, alias, plaintext):
        self._enter("wrap", alias)
        enc, mac = self._subkeys(self.keys.setdefault(alias, secrets.token_bytes(32)))
        nonce = secrets.token_bytes(16)
        ct = bytes(p ^ s for p, s in zip(plaintext, self._stream(enc, nonce, len(plaintext))))
        return self.VERSION + nonce + ct + self._tag(mac, alias, nonce, ct)

    def unwrap(self, alias, wrapped):
        self._enter("unwrap", alias)
        if alias not in self.keys:
            # The platform says so explicitly: the key is gone for good (app reinstalled).
            raise lotsa_ffi.ApiError.VaultKeyGone(msg="the key store has no key under this alias")
        enc, mac = self._subkeys(self.keys[alias])
        if len(wrapped) < 1 + 16 + 32 or wrapped[:1] != self.VERSION:
            raise lotsa_ffi.ApiError.Storage(msg="the wrapped key was refused")
        nonce, ct, tag = wrapped[1:17], wrapped[17:-32], wrapped[-32:]
        if not hmac.compare_digest(tag, self._tag(mac, alias, nonce, ct)):
            raise lotsa_ffi.ApiError.Storage(msg="the wrapped key was refused")
        return bytes(c ^ s for c, s in zip(ct, self._stream(enc, nonce, len(ct))))

    def destroy(self, alias):
        self._enter("destroy", alias)
        self.keys.pop(alias, None)


def locked():
    raise lotsa_ffi.ApiError.VaultLocked(msg="the device is locked")


def broken():
    raise lotsa_ffi.ApiError.Storage(msg="the keystore failed")


def bug():
    raise RuntimeError("a bug in the app's vault")


@pytest.fixture
def vault():
    return TestVault()


@pytest.fixture
def db(tmp_path):
    return str(tmp_path / "device.db")


@pytest.fixture
def store(ffi, db, vault):
    return ffi.DeviceStore.open(db, vault)


def eligible_draft(ffi, store, bundle, **overrides):
    """A draft for lots-for-livet of an adult resident of Stockholm, name and phone given."""
    draft_id = store.create_draft(bundle, PROGRAM)
    fields = dict(
        name="Kim Testsson",
        phone="070-123 45 67",
        identity_number=ADULT,
        municipality="Stockholm",
        provenance=ffi.Provenance.DOCUMENT,
    )
    fields.update(overrides)
    store.update_draft(draft_id, ffi.DraftUpdate(**fields))
    return draft_id


def counters(store, program_id=PROGRAM):
    return {r.counter: r.count for r in store.stats() if r.program_id == program_id}


_SQL = """
import json, sqlite3, sys
conn = sqlite3.connect(sys.argv[1])
rows = conn.execute(sys.argv[2]).fetchall()
conn.commit()
conn.close()
print(json.dumps(rows))
"""


def query(db, sql):
    """Runs one SQL statement on the store's file and returns its rows (no blobs: use hex()).

    In another process, never in this one: Python's SQLite and the copy linked into liblotsa_ffi
    do not see each other's POSIX locks, so closing a Python connection here would take itself for
    the last one, checkpoint and delete the WAL file under a store that is still open (its later
    writes then land in an unlinked file).
    """
    out = subprocess.run([sys.executable, "-c", _SQL, db, sql], check=True, capture_output=True, text=True)
    return [tuple(row) for row in json.loads(out.stdout)]


def audit_kinds(db):
    return [kind for (kind,) in query(db, "SELECT kind FROM audit ORDER BY seq")]


def test_the_whole_path_draft_consent_finalize_withdraw(ffi, bundle, store, vault, consent):
    # Opening asks the vault nothing: the root key is made with the first draft.
    assert vault.calls == []

    draft_id = eligible_draft(ffi, store, bundle)
    # The first draft created the root key and had the Python vault wrap it.
    assert vault.calls == [("wrap", "lotsa.root.1")]
    assert [(d.draft_id, d.program_id) for d in store.drafts()] == [(draft_id, PROGRAM)]
    view = store.draft(draft_id)
    assert (view.draft_id, view.program_id) == (draft_id, PROGRAM)
    assert (view.name, view.phone, view.identity_number, view.municipality) == (
        "Kim Testsson",
        "070-123 45 67",
        ADULT,
        "Stockholm",
    )
    assert view.provenance == ffi.Provenance.DOCUMENT
    assert view.consent is None
    assert view.expires_at > view.created_at

    verdict = store.check_draft(bundle, draft_id)
    assert verdict.outcome == ffi.Outcome.ELIGIBLE
    assert verdict.may_refer and not verdict.provisional
    assert verdict.kommunkod == "0180"

    receipt = store.record_consent(bundle, draft_id, consent())
    assert receipt.script_id == "lfl-samtycke"
    assert receipt.recipient == "Lots för livet, mottagningen (Stockholms stad)"
    assert store.draft(draft_id).consent == receipt

    handover_id = store.finalize(bundle, draft_id)
    assert handover_id == draft_id
    # The draft is gone: only the sealed outbox item remains.
    with pytest.raises(ffi.ApiError) as excinfo:
        store.draft(draft_id)
    assert_api_error(excinfo, ffi.ApiError.InvalidInput, field="draft_id", code="not_found")
    assert store.drafts() == []

    status = store.queue_status()
    assert status.counts.pending == 1
    assert status.counts.withdrawn == status.counts.delivered == 0
    assert 0 <= status.oldest_pending_secs < 120
    [item] = status.items
    assert (item.id, item.kind, item.program_id, item.state) == (
        handover_id,
        ffi.ItemKind.REFERRAL,
        PROGRAM,
        ffi.ItemState.PENDING,
    )
    assert item.attempts == 0 and item.last_error_code is None

    assert store.withdraw(handover_id) == ffi.WithdrawResult.ERASED_BEFORE_DELIVERY()
    status = store.queue_status()
    assert (status.counts.pending, status.counts.withdrawn) == (0, 1)
    assert status.oldest_pending_secs is None
    assert status.items[0].state == ffi.ItemState.WITHDRAWN
    assert store.withdraw(handover_id) == ffi.WithdrawResult.ALREADY_WITHDRAWN()

    assert counters(store) == {"offers": 1, "consents": 1, "withdrawals": 1}
    report = store.verify_audit()
    assert report.intact and report.broken_at is None and report.problem is None
    # created, updated, consent recorded, finalized, withdrawn before delivery
    assert report.entries == 5
    assert len(report.head) == 64
    # The root key went to the Python vault once; nothing else needed it.
    assert vault.calls == [("wrap", "lotsa.root.1")]


def test_the_database_holds_the_python_vaults_wrapped_key_and_no_plaintext(ffi, bundle, store, db, vault, consent):
    canaries = ["Zebulon Qwertyfjant", "+46709876543", "0709876543", personnummer("1985-07-30", "417")]
    draft_id = eligible_draft(
        ffi, store, bundle, name=canaries[0], phone="070-987 65 43", identity_number=canaries[3]
    )
    store.update_draft(draft_id, ffi.DraftUpdate(note="ringer efter 14"))
    store.record_consent(bundle, draft_id, consent())
    store.finalize(bundle, draft_id)
    for suffix in ("", "-wal", "-shm"):
        try:
            data = open(db + suffix, "rb").read()
        except FileNotFoundError:
            continue
        for c in canaries:
            for encoding in ("utf-8", "utf-16-le", "utf-16-be"):
                assert c.encode(encoding) not in data, f"{c!r} ({encoding}) in {db + suffix}"
    [(wrapped,)] = query(db, "SELECT hex(wrapped) FROM root_keys")
    wrapped = bytes.fromhex(wrapped)
    # The stored root key is what the Python vault produced: it unwraps there to 32 bytes.
    assert wrapped[:1] == TestVault.VERSION
    assert len(vault.unwrap("lotsa.root.1", wrapped)) == 32


def test_reopening_unwraps_the_root_key_and_finds_the_draft(ffi, bundle, db, vault, consent):
    store = ffi.DeviceStore.open(db, vault)
    draft_id = eligible_draft(ffi, store, bundle)
    receipt = store.record_consent(bundle, draft_id, consent())
    del store  # the last reference: the Rust object and its SQLite connection are freed
    gc.collect()

    vault.calls.clear()
    again = ffi.DeviceStore.open(db, vault)
    assert vault.calls == []  # opening needs no key
    view = again.draft(draft_id)
    # The first draft call after the open unwrapped the root key ...
    assert vault.calls == [("unwrap", "lotsa.root.1")]
    assert view.name == "Kim Testsson" and view.consent == receipt
    assert again.finalize(bundle, draft_id) == draft_id
    # ... once: the store keeps it until it is dropped.
    assert vault.calls == [("unwrap", "lotsa.root.1")]


def test_a_first_draft_after_reopening_unwraps_the_existing_root_key(ffi, bundle, db, vault):
    store = ffi.DeviceStore.open(db, vault)
    first = store.create_draft(bundle, PROGRAM)
    del store  # the last reference: the Rust object and its SQLite connection are freed
    gc.collect()

    vault.calls.clear()
    again = ffi.DeviceStore.open(db, vault)
    second = again.create_draft(bundle, PROGRAM)
    # The root key of the first open is unwrapped, not replaced by a new one.
    assert vault.calls == [("unwrap", "lotsa.root.1")]
    assert query(db, "SELECT epoch FROM root_keys") == [(1,)]
    assert {d.draft_id for d in again.drafts()} == {first, second}
    assert again.draft(first).program_id == again.draft(second).program_id == PROGRAM


def test_update_none_keeps_a_blank_string_clears(ffi, bundle, store):
    draft_id = store.create_draft(bundle, PROGRAM)
    empty = store.draft(draft_id)
    assert (empty.name, empty.phone, empty.municipality, empty.provenance) == (None, None, None, None)

    store.update_draft(draft_id, ffi.DraftUpdate(name="Kim", phone="0701234567", postal_code="111 22"))
    store.update_draft(draft_id, ffi.DraftUpdate(phone="  "))  # blank: cleared
    store.update_draft(draft_id, ffi.DraftUpdate())  # nothing: unchanged
    view = store.draft(draft_id)
    assert (view.name, view.phone, view.postal_code) == ("Kim", None, "111 22")
    # A residence given without provenance counts as stated until told otherwise.
    assert view.provenance == ffi.Provenance.STATED
    store.update_draft(draft_id, ffi.DraftUpdate(provenance=ffi.Provenance.REGISTER, postal_code=""))
    view = store.draft(draft_id)
    assert (view.postal_code, view.provenance, view.name) == (None, ffi.Provenance.REGISTER, "Kim")


def test_check_draft_names_a_mistyped_field(ffi, bundle, store):
    draft_id = store.create_draft(bundle, PROGRAM)
    store.update_draft(draft_id, ffi.DraftUpdate(municipality="Atlantis"))
    with pytest.raises(ffi.ApiError) as excinfo:
        store.check_draft(bundle, draft_id)
    assert_api_error(excinfo, ffi.ApiError.InvalidInput, field="municipality")
    # Missing facts are an undetermined verdict, not an error.
    store.update_draft(draft_id, ffi.DraftUpdate(municipality=""))
    verdict = store.check_draft(bundle, draft_id)
    assert verdict.outcome == ffi.Outcome.UNDETERMINED and not verdict.may_refer


def test_finalize_without_consent_is_consent_missing_and_keeps_the_draft(ffi, bundle, store):
    draft_id = eligible_draft(ffi, store, bundle)
    with pytest.raises(ffi.ApiError) as excinfo:
        store.finalize(bundle, draft_id)
    assert_api_error(
        excinfo, ffi.ApiError.ConsentMissing, field="consent", code="consent_missing", message_contains="samtycke"
    )
    assert store.draft(draft_id).name == "Kim Testsson"
    assert store.queue_status().items == []


def test_finalize_refuses_an_ineligible_person_and_a_missing_field(ffi, bundle, store, consent):
    young = eligible_draft(ffi, store, bundle, identity_number=personnummer("2012-01-01"))
    store.record_consent(bundle, young, consent())
    with pytest.raises(ffi.ApiError) as excinfo:
        store.finalize(bundle, young)
    assert_api_error(excinfo, ffi.ApiError.NotEligible, code="not_eligible")

    no_phone = eligible_draft(ffi, store, bundle, phone="")
    store.record_consent(bundle, no_phone, consent())
    with pytest.raises(ffi.ApiError) as excinfo:
        store.finalize(bundle, no_phone)
    assert_api_error(excinfo, ffi.ApiError.InvalidInput, field="phone", code="missing")
    assert {d.draft_id for d in store.drafts()} == {young, no_phone}


def test_record_consent_refuses_an_incomplete_record_or_another_program(ffi, bundle, store, consent):
    draft_id = eligible_draft(ffi, store, bundle)
    with pytest.raises(ffi.ApiError) as excinfo:
        store.record_consent(bundle, draft_id, consent(told_can_withdraw=False))
    assert_api_error(excinfo, ffi.ApiError.ConsentMissing, field="told_can_withdraw")
    with pytest.raises(ffi.ApiError) as excinfo:
        store.record_consent(bundle, draft_id, consent(program_id="kalmar"))
    assert_api_error(excinfo, ffi.ApiError.ConsentMissing, field="program_id", code="consent_mismatch")
    assert store.draft(draft_id).consent is None
    assert "consents" not in counters(store)


def test_a_refusal_is_counted_and_nothing_else_is_stored(ffi, bundle, store, db, vault):
    store.record_refusal(bundle, "kalmar")
    store.record_refusal(bundle, "kalmar")
    assert counters(store, "kalmar") == {"offers": 2, "refusals": 2}
    assert store.drafts() == [] and store.queue_status().items == []
    assert store.verify_audit().entries == 0
    # Nothing personal, so no key either: the vault was never asked.
    assert vault.calls == []


def test_a_refusal_for_a_program_not_in_the_bundle_is_refused_and_not_counted(ffi, bundle, store):
    with pytest.raises(ffi.ApiError) as excinfo:
        store.record_refusal(bundle, "kalmr")
    assert_api_error(excinfo, ffi.ApiError.Configuration, code="unknown_program")
    # A typo does not invent a program in the statistics.
    assert store.stats() == []


def test_refusing_a_started_draft_erases_it_and_counts_one_refusal(ffi, bundle, store, db):
    draft_id = eligible_draft(ffi, store, bundle)
    kept = store.create_draft(bundle, PROGRAM)
    assert store.refuse_draft(draft_id) is None
    assert [d.draft_id for d in store.drafts()] == [kept]
    with pytest.raises(ffi.ApiError) as excinfo:
        store.draft(draft_id)
    assert_api_error(excinfo, ffi.ApiError.InvalidInput, field="draft_id", code="not_found")
    # The offer was counted when the draft was started: no second one.
    assert counters(store) == {"offers": 2, "refusals": 1}
    assert audit_kinds(db)[-1] == "draft_refused"
    assert store.verify_audit().intact
    # Refused once: a second refusal, or an id that names no draft, is not_found and counts nothing.
    for missing in (draft_id, "00000000-0000-4000-8000-000000000000"):
        with pytest.raises(ffi.ApiError) as excinfo:
            store.refuse_draft(missing)
        assert_api_error(excinfo, ffi.ApiError.InvalidInput, field="draft_id", code="not_found")
    assert counters(store) == {"offers": 2, "refusals": 1}


def test_closing_an_ineligible_draft_erases_it_and_counts_the_reasons_that_excluded_the_person(ffi, bundle, store, db):
    young = eligible_draft(ffi, store, bundle, identity_number=personnummer("2012-01-01"))
    expected = store.check_draft(bundle, young)
    verdict = store.close_ineligible(bundle, young)
    assert verdict == expected
    assert verdict.outcome == ffi.Outcome.NOT_ELIGIBLE and not verdict.may_refer
    assert "too_young" in [r.code for r in verdict.reasons]
    assert store.drafts() == []
    with pytest.raises(ffi.ApiError) as excinfo:
        store.draft(young)
    assert_api_error(excinfo, ffi.ApiError.InvalidInput, field="draft_id", code="not_found")
    assert counters(store) == {"offers": 1, "ineligible:too_young": 1}
    assert audit_kinds(db)[-1] == "draft_closed"

    # Only the reasons that excluded the person are counted: a missing residence is no verdict.
    no_residence = store.create_draft(bundle, PROGRAM)
    store.update_draft(no_residence, ffi.DraftUpdate(birth_date="2012-01-01"))
    verdict = store.close_ineligible(bundle, no_residence)
    assert not verdict.may_refer
    assert {"too_young", "residency_missing"} <= {r.code for r in verdict.reasons}
    assert counters(store) == {"offers": 2, "ineligible:too_young": 2}
    assert store.drafts() == []
    assert store.verify_audit().intact

    # An empty draft closed: no verdict was reached, so nothing but the offer is counted.
    empty = store.create_draft(bundle, PROGRAM)
    verdict = store.close_ineligible(bundle, empty)
    assert verdict.outcome == ffi.Outcome.UNDETERMINED
    assert counters(store) == {"offers": 3, "ineligible:too_young": 2}

    with pytest.raises(ffi.ApiError) as excinfo:
        store.close_ineligible(bundle, young)
    assert_api_error(excinfo, ffi.ApiError.InvalidInput, field="draft_id", code="not_found")
    assert counters(store) == {"offers": 3, "ineligible:too_young": 2}


def test_an_ineligible_person_is_counted_by_reason(ffi, bundle, store):
    facts = ffi.PersonFacts(
        identity_number=personnummer("2012-01-01"), municipality="Stockholm", provenance=ffi.Provenance.DOCUMENT
    )
    verdict = store.record_ineligible(bundle, PROGRAM, facts)
    assert verdict.outcome == ffi.Outcome.NOT_ELIGIBLE
    assert counters(store) == {"ineligible:too_young": 1}
    # An eligible person is not counted.
    facts.identity_number = ADULT
    assert store.record_ineligible(bundle, PROGRAM, facts).may_refer
    assert counters(store) == {"ineligible:too_young": 1}


def test_withdrawing_a_draft_erases_it_and_unknown_ids_are_typed(ffi, bundle, store):
    draft_id = eligible_draft(ffi, store, bundle)
    assert store.withdraw(draft_id) == ffi.WithdrawResult.DRAFT_ERASED()
    assert store.drafts() == []
    # Withdrawing again answers as it does for an outbox item: already withdrawn.
    assert store.withdraw(draft_id) == ffi.WithdrawResult.ALREADY_WITHDRAWN()
    with pytest.raises(ffi.ApiError) as excinfo:
        store.withdraw("00000000-0000-4000-8000-000000000000")
    assert_api_error(excinfo, ffi.ApiError.InvalidInput, field="handover_id", code="not_found")
    other = store.create_draft(bundle, PROGRAM)
    store.delete_draft(other)
    with pytest.raises(ffi.ApiError) as excinfo:
        store.delete_draft(other)
    assert_api_error(excinfo, ffi.ApiError.InvalidInput, field="draft_id", code="not_found")
    with pytest.raises(ffi.ApiError) as excinfo:
        store.create_draft(bundle, "no-such-program")
    assert_api_error(excinfo, ffi.ApiError.Configuration, code="unknown_program")
    # No consent was given, so none was withdrawn: the draft is erased and nothing is counted.
    assert counters(store) == {"offers": 2}
    assert store.purge_expired() == 0


def test_withdrawing_a_consented_draft_counts_one_withdrawal(ffi, bundle, store, db, consent):
    bare = eligible_draft(ffi, store, bundle)
    consented = eligible_draft(ffi, store, bundle)
    store.record_consent(bundle, consented, consent())
    assert store.withdraw(bare) == ffi.WithdrawResult.DRAFT_ERASED()
    assert counters(store) == {"offers": 2, "consents": 1}
    assert store.withdraw(consented) == ffi.WithdrawResult.DRAFT_ERASED()
    assert counters(store) == {"offers": 2, "consents": 1, "withdrawals": 1}
    assert store.drafts() == [] and store.queue_status().items == []
    # Both erasures are in the audit log, each once.
    assert audit_kinds(db).count("draft_withdrawn") == 2
    assert store.verify_audit().intact


def test_a_new_identity_number_or_birth_date_clears_the_consent(ffi, bundle, store, db, consent):
    draft_id = eligible_draft(ffi, store, bundle)
    receipt = store.record_consent(bundle, draft_id, consent())
    # Corrections to contact details and residence keep it: it is the same person.
    store.update_draft(
        draft_id,
        ffi.DraftUpdate(name="Kim T.", phone="070-123 45 68", language="en", best_time="kväll", note="ok"),
    )
    store.update_draft(draft_id, ffi.DraftUpdate(municipality="0180", provenance=ffi.Provenance.REGISTER))
    # The same number typed again is no change either.
    store.update_draft(draft_id, ffi.DraftUpdate(identity_number=ADULT))
    assert store.draft(draft_id).consent == receipt
    assert "consent_cleared" not in audit_kinds(db)

    # Another number may be another person: the consent must be given again.
    store.update_draft(draft_id, ffi.DraftUpdate(identity_number=personnummer("1985-07-30", "417")))
    view = store.draft(draft_id)
    assert view.consent is None
    assert view.name == "Kim T." and view.identity_number == personnummer("1985-07-30", "417")
    assert audit_kinds(db)[-2:] == ["draft_updated", "consent_cleared"]
    with pytest.raises(ffi.ApiError) as excinfo:
        store.finalize(bundle, draft_id)
    assert_api_error(excinfo, ffi.ApiError.ConsentMissing, field="consent", code="consent_missing")

    # A new consent, then a date of birth given: cleared again.
    store.record_consent(bundle, draft_id, consent())
    store.update_draft(draft_id, ffi.DraftUpdate(birth_date="1985-07-30"))
    assert store.draft(draft_id).consent is None
    assert audit_kinds(db).count("consent_cleared") == 2
    # Clearing the number (a blank string) is a change too.
    store.record_consent(bundle, draft_id, consent())
    store.update_draft(draft_id, ffi.DraftUpdate(identity_number=""))
    assert store.draft(draft_id).consent is None
    assert audit_kinds(db).count("consent_cleared") == 3

    # Consent given again for the person now on the draft: it can be finalized.
    store.update_draft(draft_id, ffi.DraftUpdate(identity_number=ADULT, birth_date=""))
    assert audit_kinds(db).count("consent_cleared") == 3  # nothing to clear
    store.record_consent(bundle, draft_id, consent())
    assert store.finalize(bundle, draft_id) == draft_id
    assert store.verify_audit().intact


def test_a_kalmar_consent_covers_the_optional_personnummer_only_when_the_person_agrees(ffi, bundle, store, consent):
    plain = store.create_draft(bundle, "kalmar")
    shared = store.create_draft(bundle, "kalmar")
    base = dict(program_id="kalmar", unit="Polisen Kalmar")
    receipt = store.record_consent(bundle, plain, consent(**base))
    assert "personnummer" not in receipt.data_items
    assert {"name", "phone", "kommunkod"} <= set(receipt.data_items)
    assert store.draft(plain).consent == receipt
    receipt = store.record_consent(bundle, shared, consent(**base, share_personnummer=True))
    assert "personnummer" in receipt.data_items
    assert store.draft(shared).consent == receipt
    assert counters(store, "kalmar") == {"offers": 2, "consents": 2}


def test_withdrawal_recorded_by_an_officer(ffi, bundle, store, consent):
    draft_id = eligible_draft(ffi, store, bundle)
    store.record_consent(bundle, draft_id, consent())
    store.finalize(bundle, draft_id)
    officer = ffi.Officer(role=ffi.Role.LOTS, officer_id="L-77", unit="Stadsmissionen")
    assert store.withdraw(draft_id, officer) == ffi.WithdrawResult.ERASED_BEFORE_DELIVERY()


def test_an_edited_audit_entry_is_reported(ffi, bundle, db, vault):
    store = ffi.DeviceStore.open(db, vault)
    for _ in range(3):
        store.create_draft(bundle, PROGRAM)
    del store  # the last reference: the Rust object and its SQLite connection are freed
    gc.collect()
    query(db, "UPDATE audit SET kind = 'draft_deleted' WHERE seq = 2")
    store = ffi.DeviceStore.open(db, vault)
    report = store.verify_audit()
    assert not report.intact
    assert (report.entries, report.broken_at, report.head) == (3, 2, None)
    assert "2" in report.problem


# A vault that fails: the store reports a typed error and loses nothing. The vault is asked only
# for drafts, so the store opens, and the outbox, statistics and audit log work, whatever it does.


def test_a_vault_failing_to_wrap_fails_the_first_draft_not_the_open(ffi, bundle, db, vault):
    vault.fail("wrap", broken)
    store = ffi.DeviceStore.open(db, vault)
    assert vault.calls == []
    assert store.verify_audit().intact and store.queue_status().items == []
    with pytest.raises(ffi.ApiError) as excinfo:
        store.create_draft(bundle, PROGRAM)
    assert_api_error(excinfo, ffi.ApiError.VaultFailed)
    # A vault that is only locked now: a temporary error.
    vault.fail("wrap", locked)
    with pytest.raises(ffi.ApiError) as excinfo:
        store.create_draft(bundle, PROGRAM)
    assert_api_error(excinfo, ffi.ApiError.VaultLocked, message_contains="lås upp")
    assert vault.calls == [("wrap", "lotsa.root.1")] * 2
    # Nothing is half made: no root key, no draft, no offer counted, no audit entry.
    assert query(db, "SELECT count(*) FROM root_keys") == [(0,)]
    assert store.drafts() == [] and store.stats() == [] and store.verify_audit().entries == 0

    vault.recover()
    draft_id = store.create_draft(bundle, PROGRAM)
    assert store.draft(draft_id).program_id == PROGRAM
    assert query(db, "SELECT count(*) FROM root_keys") == [(1,)]
    assert counters(store) == {"offers": 1}
    assert store.verify_audit().entries == 1


def test_a_python_exception_in_the_vault_is_a_typed_error_not_a_crash(ffi, bundle, db, vault):
    ffi.set_language("en")
    vault.fail("wrap", bug)
    store = ffi.DeviceStore.open(db, vault)
    with pytest.raises(ffi.ApiError) as excinfo:
        store.create_draft(bundle, PROGRAM)
    # RuntimeError → Internal (UnexpectedUniFFICallbackError) → a failed key store → VaultFailed.
    assert_api_error(excinfo, ffi.ApiError.VaultFailed, message_contains="key store failed")
    assert store.drafts() == []


def test_a_locked_vault_opens_the_store_and_loses_nothing(ffi, bundle, db, vault, consent):
    store = ffi.DeviceStore.open(db, vault)
    draft_id = eligible_draft(ffi, store, bundle)
    receipt = store.record_consent(bundle, draft_id, consent())
    sealed = eligible_draft(ffi, store, bundle)
    store.record_consent(bundle, sealed, consent())
    store.finalize(bundle, sealed)
    del store  # the last reference: the Rust object and its SQLite connection are freed
    gc.collect()
    entries = len(audit_kinds(db))

    vault.fail("unwrap", locked)
    vault.calls.clear()
    store = ffi.DeviceStore.open(db, vault)
    # The outbox, statistics and audit log need no key: the sync job works on a locked phone.
    assert [i.id for i in store.queue_status().items] == [sealed]
    assert store.verify_audit().intact
    store.record_refusal(bundle, "kalmar")
    assert counters(store, "kalmar") == {"offers": 1, "refusals": 1}
    assert [d.draft_id for d in store.drafts()] == [draft_id]
    assert vault.calls == []

    # Every call that opens or makes a draft waits for the unlock.
    draft_calls = [
        lambda: store.draft(draft_id),
        lambda: store.update_draft(draft_id, ffi.DraftUpdate(name="Someone Else")),
        lambda: store.check_draft(bundle, draft_id),
        lambda: store.record_consent(bundle, draft_id, consent()),
        lambda: store.finalize(bundle, draft_id),
        lambda: store.close_ineligible(bundle, draft_id),
        lambda: store.create_draft(bundle, PROGRAM),
    ]
    for call in draft_calls:
        with pytest.raises(ffi.ApiError) as excinfo:
            call()
        assert_api_error(excinfo, ffi.ApiError.VaultLocked, message_contains="lås upp")
    ffi.set_language("en")
    with pytest.raises(ffi.ApiError) as excinfo:
        store.draft(draft_id)
    assert_api_error(excinfo, ffi.ApiError.VaultLocked, message_contains="unlocked")
    assert vault.calls == [("unwrap", "lotsa.root.1")] * (len(draft_calls) + 1)
    # Nothing was changed, erased or flagged meanwhile.
    assert [d.draft_id for d in store.drafts()] == [draft_id]
    assert counters(store) == {"offers": 2, "consents": 2}
    assert len(audit_kinds(db)) == entries
    assert query(db, "SELECT count(*) FROM drafts WHERE damaged IS NOT NULL") == [(0,)]

    # Unlocked: the same store carries on, no reopening needed.
    vault.recover()
    view = store.draft(draft_id)
    assert (view.name, view.identity_number, view.consent) == ("Kim Testsson", ADULT, receipt)
    assert store.finalize(bundle, draft_id) == draft_id
    assert store.verify_audit().intact


def test_a_vault_that_fails_loses_nothing_and_one_that_lost_its_key_starts_anew(ffi, bundle, db, vault, consent):
    store = ffi.DeviceStore.open(db, vault)
    draft_id = eligible_draft(ffi, store, bundle)
    sealed = eligible_draft(ffi, store, bundle)
    store.record_consent(bundle, sealed, consent())
    store.finalize(bundle, sealed)
    del store  # the last reference: the Rust object and its SQLite connection are freed
    gc.collect()

    # A vault that raises anything but "key gone" on unwrap: a typed error, nothing given up.
    vault.fail("unwrap", bug)
    store = ffi.DeviceStore.open(db, vault)
    with pytest.raises(ffi.ApiError) as excinfo:
        store.draft(draft_id)
    assert_api_error(excinfo, ffi.ApiError.VaultFailed)
    vault.recover()
    assert store.draft(draft_id).name == "Kim Testsson"
    assert store.take_key_loss_notice() is None
    del store
    gc.collect()

    # Another vault (the app reinstalled): it says the key is gone. The draft under it is lost
    # (flagged, kept until it expires), new drafts work under a new key, and the app is told once.
    other = TestVault()
    store = ffi.DeviceStore.open(db, other)
    with pytest.raises(ffi.ApiError) as excinfo:
        store.draft(draft_id)
    assert_api_error(excinfo, ffi.ApiError.Damaged)
    fresh = eligible_draft(ffi, store, bundle)
    assert store.draft(fresh).name == "Kim Testsson"
    assert ("wrap", "lotsa.root.2") in other.calls
    notice = store.take_key_loss_notice()
    assert (notice.drafts_lost, "1 ofärdig remiss") == (1, notice.text[:16])
    assert store.take_key_loss_notice() is None
    assert {d.draft_id for d in store.drafts()} == {draft_id, fresh}
    # The outbox stays usable: what is sealed needs no device key.
    assert [(i.id, i.state) for i in store.queue_status().items] == [(sealed, ffi.ItemState.PENDING)]
    assert store.withdraw(sealed) == ffi.WithdrawResult.ERASED_BEFORE_DELIVERY()
    assert store.verify_audit().intact
    del store
    gc.collect()
    # Reopened with the new vault: the new key is the current one, nothing more is lost.
    store = ffi.DeviceStore.open(db, other)
    assert store.draft(fresh).name == "Kim Testsson"
    assert store.take_key_loss_notice() is None


def test_the_root_key_is_unwrapped_once_and_kept_while_the_store_is_open(ffi, bundle, store, vault):
    # The first draft makes (or unwraps) the root key and the store keeps it: a vault that locks
    # while the store is open does not stop the officer (drafts' own keys are wrapped by the root key).
    first = eligible_draft(ffi, store, bundle)
    vault.fail("wrap", locked)
    vault.fail("unwrap", locked)
    draft_id = eligible_draft(ffi, store, bundle)
    assert store.draft(draft_id).name == store.draft(first).name == "Kim Testsson"
    assert vault.calls == [("wrap", "lotsa.root.1")]


def test_the_development_file_vault(ffi, bundle, tmp_path, capfd):
    db, keys = str(tmp_path / "dev.db"), tmp_path / "vault"
    store = ffi.DeviceStore.open_with_dev_vault(db, str(keys))
    assert "DEVELOPMENT KEY VAULT" in capfd.readouterr().err
    # Asked lazily like any vault: no key until the first draft.
    assert list(keys.glob("*.key")) == []
    draft_id = store.create_draft(bundle, PROGRAM)
    del store  # the last reference: the Rust object and its SQLite connection are freed
    gc.collect()
    assert len(list(keys.glob("*.key"))) == 1
    again = ffi.DeviceStore.open_with_dev_vault(db, str(keys))
    assert "never use on a real device" in capfd.readouterr().err
    assert again.draft(draft_id).program_id == PROGRAM


def test_an_older_or_a_conflicting_bundle_is_refused_once_a_newer_one_is_in_use(
    ffi, bundle, older_bundle, pnr_required_bundle, store
):
    # The older bundle is fine on a device that has never seen the newer one …
    store.accept_bundle(older_bundle)
    store.accept_bundle(bundle)
    store.accept_bundle(bundle)
    # … but once the newer one is in use it is a rollback, refused by every call that takes it.
    with pytest.raises(ffi.ApiError) as excinfo:
        store.accept_bundle(older_bundle)
    assert_api_error(excinfo, ffi.ApiError.Configuration, code="bundle_superseded")
    with pytest.raises(ffi.ApiError) as excinfo:
        store.create_draft(older_bundle, PROGRAM)
    assert_api_error(excinfo, ffi.ApiError.Configuration, code="bundle_superseded")
    with pytest.raises(ffi.ApiError) as excinfo:
        store.record_refusal(older_bundle, PROGRAM)
    assert_api_error(excinfo, ffi.ApiError.Configuration, code="bundle_superseded")
    assert store.stats() == [] and store.drafts() == []
    # Same issue time, other content (Kalmar's personnummer made required): refused.
    with pytest.raises(ffi.ApiError) as excinfo:
        store.accept_bundle(pnr_required_bundle)
    assert_api_error(excinfo, ffi.ApiError.Configuration, code="bundle_conflict")


def test_an_update_says_when_it_cleared_the_consent(ffi, bundle, store, consent):
    draft_id = eligible_draft(ffi, store, bundle)
    store.record_consent(bundle, draft_id, consent())
    # The same number in another form is the same person.
    saved = store.update_draft(draft_id, ffi.DraftUpdate(identity_number=ADULT[2:8] + "-" + ADULT[8:]))
    assert saved == ffi.DraftSaved(consent_cleared=False, problems=[])
    assert store.draft(draft_id).consent is not None
    # A mistyped phone is kept and reported, the consent stays.
    saved = store.update_draft(draft_id, ffi.DraftUpdate(phone="070-12", municipality="Atlantis"))
    assert not saved.consent_cleared
    assert [(p.field, p.code) for p in saved.problems] == [
        ("phone", "phone_too_short"),
        ("municipality", "unknown_municipality"),
    ]
    # Another number: the consent is cleared, and the app is told.
    saved = store.update_draft(draft_id, ffi.DraftUpdate(identity_number=personnummer("1985-04-12")))
    assert saved.consent_cleared
    assert store.draft(draft_id).consent is None
