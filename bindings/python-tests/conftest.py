"""pytest set-up for the Python binding tests of lotsa-ffi.

The tests import the *generated* module `lotsa_ffi` (bindings/generate.sh writes it,
with liblotsa_ffi.so beside it, to target/bindings/python; set LOTSA_BINDINGS_PYTHON
to use another folder). If the module is missing or does not load, the whole run
fails at start-up: a binding suite that silently skips is worse than none.

Layout (one file per area of the public API, each case asserting the verdict or
the typed error and its readable message):

    test_plumbing.py     the library loads, a string crosses the FFI
    test_errors.py       the public error enum crosses the FFI as a Python exception
    test_identity.py     personnummer / samordningsnummer checks          (to come)
    test_geo.py          municipality by code, name, postal code          (to come)
    test_bundle.py       signed program bundle: valid, tampered, wrong key (to come)
    test_eligibility.py  resident, routed non-resident, under 18, ...     (to come)
    test_contact.py      phone normalisation, consent record validation   (to come)

Shared assertions (assert_api_error) are in helpers.py, shared inputs (bundles,
keys) go in fixtures/ next to this file, and shared fixtures in this conftest.
"""

from __future__ import annotations

import importlib
import os
import pathlib
import sys

import pytest

REPO_ROOT = pathlib.Path(__file__).resolve().parents[2]
BINDINGS_DIR = pathlib.Path(
    os.environ.get("LOTSA_BINDINGS_PYTHON", REPO_ROOT / "target" / "bindings" / "python")
).resolve()
FIXTURES = pathlib.Path(__file__).resolve().parent / "fixtures"


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
