"""pytest set-up for the Python binding tests of lotsa-ffi.

The tests import the *generated* module `lotsa_ffi` (bindings/generate.sh writes it,
with liblotsa_ffi.so beside it, to target/bindings/python; set LOTSA_BINDINGS_PYTHON
to use another folder). If the module is missing or does not load, the whole run
fails at start-up: a binding suite that silently skips is worse than none.

Layout (one file per area of the public API, each case asserting the verdict or
the typed error and its readable message):

    test_plumbing.py     the library loads, a string crosses the FFI
    test_errors.py       the public error enum crosses the FFI as a Python exception
    test_identity.py     personnummer / samordningsnummer checks, ages, refusals
    test_geo.py          municipality by code, name, postal code
    test_bundle.py       signed program bundle: valid, tampered, wrong key, programs, scripts
    test_eligibility.py  resident, routed non-resident, under 18, samordningsnummer, ...
    test_consent.py      consent record validation against the current script
    test_contact.py      phone normalisation, contact details
    test_store.py        the device store with a KeyVault written in Python
    test_sync.py         enrol, sync, withdraw, retry, cancel against a real clinic service
    test_front_ends.py   the same referrals through the CLI and the bindings end the same way

Shared assertions and inputs (assert_api_error, the Luhn personnummer generator,
the fixed date ON) are in helpers.py, shared fixtures in this conftest.

The signed program bundle and its trust keys are made by the real CLI
(`lotsa program keygen` / `lotsa program sign schemas/examples/programs.example.json`):
bundle.json signed with admin.key (trust key admin.pub), other-bundle.json signed with
other.key (other.pub), pnr-required-bundle.json: the same set with Kalmar's personnummer
required instead of optional, signed with admin.key, and older-bundle.json: the same set issued a
month earlier, signed with admin.key.
bindings/test.sh writes them to target/bindings/fixtures and passes the folder in
LOTSA_FIXTURES. Nothing secret is committed. If they are missing, every test that needs
them errors with instructions (never a skip).

The language (`set_language`) is process-wide state in the library: the autouse
fixture `swedish` resets it to `sv`, the default, around every test.
"""

from __future__ import annotations

import importlib
import json
import os
import pathlib
import sys

import pytest

REPO_ROOT = pathlib.Path(__file__).resolve().parents[2]
BINDINGS_DIR = pathlib.Path(
    os.environ.get("LOTSA_BINDINGS_PYTHON", REPO_ROOT / "target" / "bindings" / "python")
).resolve()
FIXTURES = pathlib.Path(
    os.environ.get("LOTSA_FIXTURES", REPO_ROOT / "target" / "bindings" / "fixtures")
).resolve()
FIXTURE_FILES = (
    "bundle.json",
    "admin.pub",
    "other-bundle.json",
    "other.pub",
    "pnr-required-bundle.json",
    "older-bundle.json",
)


def _load_generated_module():
    module_file = BINDINGS_DIR / "lotsa_ffi.py"
    libraries = list(BINDINGS_DIR.glob("liblotsa_ffi.*")) + list(BINDINGS_DIR.glob("lotsa_ffi.dll"))
    if not module_file.is_file():
        raise pytest.UsageError(
            f"generated Python bindings not found: {module_file} does not exist.\n"
            "Run bindings/generate.sh first (bindings/test.sh does it for you)."
        )
    if not libraries:
        raise pytest.UsageError(
            f"liblotsa_ffi shared library not found beside {module_file}.\n"
            "Run bindings/generate.sh again: it copies the library next to the module."
        )
    sys.path.insert(0, str(BINDINGS_DIR))
    try:
        module = importlib.import_module("lotsa_ffi")
    except Exception as exc:  # a load failure must stop the run, not skip it
        raise pytest.UsageError(f"generated module lotsa_ffi failed to load: {exc!r}") from exc
    loaded_from = pathlib.Path(module.__file__).resolve().parent
    if loaded_from != BINDINGS_DIR:
        raise pytest.UsageError(f"lotsa_ffi was imported from {loaded_from}, expected {BINDINGS_DIR}")
    return module


def pytest_configure(config):
    config.lotsa_ffi = _load_generated_module()


def pytest_report_header(config):
    return f"lotsa_ffi: {BINDINGS_DIR} (core {config.lotsa_ffi.core_version()})"


@pytest.fixture(scope="session")
def ffi(pytestconfig):
    """The generated `lotsa_ffi` module."""
    return pytestconfig.lotsa_ffi


@pytest.fixture(autouse=True)
def swedish(ffi):
    """Every test starts and ends with the default language, Swedish."""
    ffi.set_language("sv")
    yield
    ffi.set_language("sv")


@pytest.fixture(scope="session")
def fixtures_dir():
    """The folder with the signed bundle and the trust keys made by the real CLI."""
    missing = [name for name in FIXTURE_FILES if not (FIXTURES / name).is_file()]
    if missing:
        pytest.fail(
            f"binding test fixtures missing in {FIXTURES}: {', '.join(missing)}.\n"
            "Run bindings/test.sh (it builds the lotsa CLI and signs "
            "schemas/examples/programs.example.json into target/bindings/fixtures), "
            f"or point LOTSA_FIXTURES at a folder with {', '.join(FIXTURE_FILES)}.",
            pytrace=False,
        )
    return FIXTURES


@pytest.fixture(scope="session")
def signed_bundle(fixtures_dir):
    """The signed bundle file's text, as an app receives it."""
    return (fixtures_dir / "bundle.json").read_text(encoding="utf-8")


@pytest.fixture(scope="session")
def trust_key(fixtures_dir):
    """The administrator's public key (base64) that signed the bundle."""
    return (fixtures_dir / "admin.pub").read_text(encoding="utf-8").strip()


@pytest.fixture(scope="session")
def other_trust_key(fixtures_dir):
    """A second administrator key that did not sign the bundle."""
    return (fixtures_dir / "other.pub").read_text(encoding="utf-8").strip()


@pytest.fixture(scope="session")
def other_signed_bundle(fixtures_dir):
    """The same program set signed by the other administrator key (other.pub)."""
    return (fixtures_dir / "other-bundle.json").read_text(encoding="utf-8")


@pytest.fixture(scope="session")
def bundle(ffi, signed_bundle, trust_key):
    """The verified example bundle (lots-for-livet, snackan-gislaved, snackan-ggvv, kalmar)."""
    return ffi.ProgramBundle.load(signed_bundle, trust_key)


@pytest.fixture(scope="session")
def pnr_required_bundle(ffi, fixtures_dir, trust_key):
    """The example set with Kalmar's personnummer *required*, signed with admin.key."""
    return ffi.ProgramBundle.load((fixtures_dir / "pnr-required-bundle.json").read_text(encoding="utf-8"), trust_key)


@pytest.fixture(scope="session")
def older_bundle(ffi, fixtures_dir, trust_key):
    """The example set issued a month before bundle.json, signed with admin.key."""
    return ffi.ProgramBundle.load((fixtures_dir / "older-bundle.json").read_text(encoding="utf-8"), trust_key)


@pytest.fixture(scope="session")
def example_programs():
    """schemas/examples/programs.example.json, the unsigned set the bundle was signed from."""
    return json.loads((REPO_ROOT / "schemas" / "examples" / "programs.example.json").read_text("utf-8"))


@pytest.fixture
def consent(ffi):
    """A builder of complete consent inputs for lots-for-livet; keyword arguments override.
    (The device store names the person by the draft id itself; `subject_ref` matters only to
    `ProgramBundle.validate_consent`.)"""

    def build(**overrides):
        fields = dict(
            program_id="lots-for-livet",
            subject_ref="referral-0001",
            language="sv",
            script_version=1,
            method=ffi.ConsentMethod.VERBAL(witness="P-4711"),
            role=ffi.Role.POLICE,
            officer_id="P-1234",
            unit="Polisen City, Sergels torg",
            told_no_effect_on_police_matter=True,
            told_can_withdraw=True,
            capacity=ffi.Capacity.ADEQUATE,
        )
        fields.update(overrides)
        return ffi.ConsentInput(**fields)

    return build
