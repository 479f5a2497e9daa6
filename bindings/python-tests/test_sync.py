"""Delivery through the bindings, against a real clinic service: `lotsa clinic serve` on
127.0.0.1 (made with the CLI: init, a bundle signed with `--clinic`, a one-time code), and a
device store with a key vault written in Python. Enrol, record and finalize, sync (the receipt is
verified and the payload erased), withdraw after delivery, retry and cancel, the errors an app acts
on."""

from __future__ import annotations

import datetime
import json
import os
import pathlib
import socket
import subprocess
import time

import pytest

from test_store import TestVault, eligible_draft

REPO_ROOT = pathlib.Path(__file__).resolve().parents[2]
CLI = pathlib.Path(os.environ.get("LOTSA_CLI", REPO_ROOT / "target" / "debug" / "lotsa"))
EXAMPLE = REPO_ROOT / "schemas" / "examples" / "programs.example.json"


def cli(*args: str) -> dict:
    out = subprocess.run([str(CLI), "--json", *args], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stdout + out.stderr
    return json.loads(out.stdout)


@pytest.fixture(scope="module")
def clinic(tmp_path_factory):
    """A clinic serving a bundle in which lots-for-livet is its program."""
    if not CLI.exists():
        pytest.fail(f"the lotsa CLI is missing at {CLI}: run bindings/test.sh or set LOTSA_CLI", pytrace=False)
    tmp = tmp_path_factory.mktemp("clinic")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    endpoint = f"https://127.0.0.1:{port}/lots-for-livet"
    home = tmp / "clinic"
    cli("clinic", "init", "--dir", str(home), "--name", "Mottagningen", "--endpoint", endpoint)
    cli("program", "keygen", "-o", str(tmp / "admin"))
    programs = json.loads(EXAMPLE.read_text(encoding="utf-8"))
    programs["issued_at"] = datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0).isoformat()
    for p in programs["programs"]:
        if p["id"] == "lots-for-livet":
            p["clinic"]["endpoint"] = endpoint
    (tmp / "set.json").write_text(json.dumps(programs), encoding="utf-8")
    cli("program", "sign", str(tmp / "set.json"), "--key", str(tmp / "admin.key"), "-o", str(tmp / "bundle.json"),
        "--clinic", str(home / "clinic.json"))
    serve = subprocess.Popen(
        [str(CLI), "--json", "clinic", "serve", "--dir", str(home), "--bundle", str(tmp / "bundle.json"),
         "--trust", str(tmp / "admin.pub"), "--bind", f"127.0.0.1:{port}"],
        stdout=subprocess.PIPE, text=True,
    )
    started = json.loads(serve.stdout.readline())
    assert started["programs"] == ["lots-for-livet"]
    try:
        yield {
            "home": home,
            "bundle": (tmp / "bundle.json").read_text(encoding="utf-8"),
            "trust": (tmp / "admin.pub").read_text(encoding="utf-8").strip(),
        }
    finally:
        serve.terminate()
        serve.wait(timeout=30)


def code(clinic) -> str:
    return cli("clinic", "enrol-code", "--dir", str(clinic["home"]))["code"]


def held(clinic) -> list[dict]:
    return cli("clinic", "devices", "--dir", str(clinic["home"]))["devices"]


@pytest.fixture
def phone(ffi, clinic, tmp_path):
    vault = TestVault()
    store = ffi.DeviceStore.open(str(tmp_path / "phone.db"), vault)
    bundle = ffi.ProgramBundle.load(clinic["bundle"], clinic["trust"])
    return store, bundle, vault, tmp_path


def referral(ffi, store, bundle, consent) -> str:
    draft_id = eligible_draft(ffi, store, bundle)
    store.record_consent(bundle, draft_id, consent())
    return store.finalize(bundle, draft_id)


def request(ffi, **overrides):
    fields = dict(deadline_secs=30, connectivity_restored=False, trust_key=None)
    fields.update(overrides)
    return ffi.SyncRequest(**fields)


def test_a_phone_enrols_delivers_and_forgets_then_withdraws_through_the_bindings(ffi, clinic, phone, consent):
    store, bundle, _, _ = phone
    device_id = store.enrol(bundle, "lots-for-livet", code(clinic))
    assert any(d["device_id"] == device_id for d in held(clinic))
    handover_id = referral(ffi, store, bundle, consent)
    due = store.next_sync_due()
    assert due is not None

    report = store.sync(bundle, request(ffi))
    assert report.delivered == [handover_id]
    assert report.failed == [] and report.retrying == [] and report.actions == []
    assert report.next_due is None and store.next_sync_due() is None
    item = next(i for i in store.queue_status().items if i.id == handover_id)
    assert item.state == ffi.ItemState.DELIVERED
    mine = next(d for d in held(clinic) if d["device_id"] == device_id)
    assert mine["held"] == 1
    assert mine["backlog"]["counts"]["pending"] == 0

    withdrawn = store.withdraw(handover_id)
    assert isinstance(withdrawn, ffi.WithdrawResult.QUEUED_FOR_CLINIC)
    # The queue screen can say so: the referral was delivered, and its withdrawal is on its way.
    items = {i.id: i for i in store.queue_status().items}
    assert items[handover_id].state == ffi.ItemState.DELIVERED
    assert items[handover_id].withdrawal == ffi.ItemState.PENDING
    assert items[withdrawn.withdrawal_id].refers_to == handover_id
    report = store.sync(bundle, request(ffi))
    assert report.delivered == [withdrawn.withdrawal_id]
    mine = next(d for d in held(clinic) if d["device_id"] == device_id)
    assert mine["held"] == 0
    items = {i.id: i for i in store.queue_status().items}
    assert items[handover_id].withdrawal == ffi.ItemState.DELIVERED


def test_a_phone_that_is_not_enrolled_is_told_to_enrol_and_a_used_code_is_refused(ffi, clinic, phone, consent):
    store, bundle, _, tmp_path = phone
    handover_id = referral(ffi, store, bundle, consent)
    report = store.sync(bundle, request(ffi))
    assert [n.code for n in report.waiting] == ["not_enrolled"]
    assert len(report.actions) == 1 and isinstance(report.actions[0], ffi.DeviceAction.ENROL)
    assert report.actions[0].reason == "not_enrolled"

    used = code(clinic)
    store.enrol(bundle, "lots-for-livet", used)
    other = ffi.DeviceStore.open(str(tmp_path / "other.db"), TestVault())
    with pytest.raises(ffi.ApiError.Enrolment) as refused:
        other.enrol(bundle, "lots-for-livet", used)
    assert refused.value.error_code() == "enrolment_code_refused"

    # Enrolled now: due at once, and it goes.
    assert store.sync(bundle, request(ffi)).delivered == [handover_id]


def test_cancel_and_retry_are_queue_actions_and_a_lost_device_key_says_enrol_again(ffi, clinic, phone, consent):
    store, bundle, vault, _ = phone
    store.enrol(bundle, "lots-for-livet", code(clinic))
    never_sent = referral(ffi, store, bundle, consent)
    assert isinstance(store.cancel(never_sent), ffi.WithdrawResult.ERASED_BEFORE_DELIVERY)
    with pytest.raises(ffi.ApiError.InvalidInput) as wrong:
        store.retry(never_sent)
    assert wrong.value.field == "handover_id"

    # The key store loses the device key: the next enrolment says so; a new key enrols again.
    vault.keys.pop("lotsa.device-key")
    with pytest.raises(ffi.ApiError.Enrolment) as lost:
        store.enrol(bundle, "lots-for-livet", code(clinic))
    assert lost.value.error_code() == "device_key_lost"
    new_id = store.renew_device_key()
    assert store.enrol(bundle, "lots-for-livet", code(clinic)) == new_id
    handover_id = referral(ffi, store, bundle, consent)
    assert store.sync(bundle, request(ffi)).delivered == [handover_id]

