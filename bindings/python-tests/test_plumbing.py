"""The library loads and values cross the FFI in both directions."""

import re


def test_core_version_is_the_crate_version(ffi):
    version = ffi.core_version()
    assert isinstance(version, str)
    assert re.fullmatch(r"\d+\.\d+\.\d+([-+].*)?", version), version


def test_library_is_the_one_beside_the_generated_module(ffi):
    # uniffi's Python loader opens the library from the module's own folder,
    # so the tests never run against a stale copy elsewhere on the system.
    import pathlib

    folder = pathlib.Path(ffi.__file__).parent
    assert any(folder.glob("liblotsa_ffi.*"))
