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
    # Every variant has a stable code; where it carries one as a field, the two agree.
    stable = err.error_code()
    assert isinstance(stable, str) and stable, f"no stable code on {err!r}"
    if code is not None:
        assert stable == code, f"error_code() {stable} != {code} on {err!r}"


# The Stockholm calendar date every test decides on, so ages never drift with the clock.
ON = "2026-11-23"


def luhn_digit(nine_digits):
    """The check digit of `YYMMDDNNN` by the Luhn rule (weights 2, 1, 2, ... from the left)."""
    assert len(nine_digits) == 9 and nine_digits.isdigit(), nine_digits
    total = 0
    for i, c in enumerate(nine_digits):
        v = int(c) * (2 if i % 2 == 0 else 1)
        total += v // 10 + v % 10
    return str((10 - total % 10) % 10)


def personnummer(birth, serial="123", samordningsnummer=False):
    """A valid 12-digit number `YYYYMMDDNNNC` for a birth date `YYYY-MM-DD`.

    With `samordningsnummer=True` the day is raised by 60. `birth` may also be the raw
    `YYYYMMDD` digits (to build a samordningsnummer with month 00 or day 60, or an
    impossible date that still has a valid check digit).
    """
    digits = birth.replace("-", "")
    assert len(digits) == 8 and digits.isdigit(), birth
    if samordningsnummer:
        digits = digits[:6] + f"{int(digits[6:]) + 60:02d}"
    assert len(serial) == 3 and serial.isdigit(), serial
    return digits + serial + luhn_digit(digits[2:] + serial)


def with_wrong_check_digit(number):
    """The same number with its last digit changed (always an invalid_checksum)."""
    last = int(number[-1])
    return number[:-1] + str((last + 1) % 10)


def reason_codes(verdict):
    return [r.code for r in verdict.reasons]


def route_ids(verdict):
    return [r.program_id for r in verdict.routing]
