"""The public error enum crosses the FFI as a typed Python exception.

Each API test module asserts its own errors (variant, field, reason code and
readable text) with `helpers.assert_api_error`; this module checks the shape
of the enum itself.

Python's `str(e)` ignores the Rust Display, so every variant carries its
readable text in a field, `msg` (not `message`: that name clashes with
Throwable.message in the generated Kotlin, which then does not compile).
"""

import pytest

from helpers import assert_api_error


def _variants(error):
    return {
        name: value
        for name, value in vars(error).items()
        if isinstance(value, type) and issubclass(value, error) and value is not error
    }


def test_api_error_is_an_exception_with_variants(ffi):
    assert hasattr(ffi, "ApiError"), "lotsa_ffi exports no ApiError"
    error = ffi.ApiError
    assert issubclass(error, Exception)
    variants = _variants(error)
    assert variants, "ApiError has no variants"
    for name, variant in variants.items():
        assert issubclass(variant, Exception), name


def test_typed_error_crosses_the_ffi(ffi):
    # An unsupported language is refused with InvalidInput; the state is left as it was.
    with pytest.raises(ffi.ApiError) as excinfo:
        ffi.set_language("xx")
    assert_api_error(
        excinfo,
        ffi.ApiError.InvalidInput,
        field="language",
        code="unsupported_language",
        message_contains="sv",
    )
