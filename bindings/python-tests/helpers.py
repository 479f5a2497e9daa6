"""Assertions shared by the binding tests (import with `from helpers import ...`)."""


def assert_api_error(excinfo, variant, *, field=None, code=None, message_contains=None):
    """Check a caught ApiError: its variant, field, reason code and readable `msg`.

    Usage in an API test:
        with pytest.raises(ffi.ApiError) as excinfo:
            ffi.check_phone("not a number")
        assert_api_error(excinfo, ffi.ApiError.InvalidInput, field="phone", code="phone_format")
    """
    err = excinfo.value
    assert isinstance(err, variant), f"expected {variant.__name__}, got {type(err).__name__}: {err!r}"
    message = getattr(err, "msg", None)
    assert isinstance(message, str) and message.strip(), f"no readable msg on {err!r}"
    if message_contains is not None:
        assert message_contains in message, message
    if field is not None:
        assert getattr(err, "field", None) == field
    if code is not None:
        assert getattr(err, "code", None) == code
