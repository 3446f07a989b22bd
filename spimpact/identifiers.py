"""NHS number validation (Modulus 11) and keyed pseudonymisation."""

from __future__ import annotations

import hashlib
import hmac
import re

_SPACES = re.compile(r"[\s-]")
PSEUDONYM_PREFIX = "P-"


def normalise_nhs_number(value) -> str:
    """Strip the spaces or hyphens of the display format ``NNN NNN NNNN``."""
    return _SPACES.sub("", str(value))


def is_valid_nhs_number(value) -> bool:
    """Check an NHS number with the mandatory Modulus 11 algorithm.

    Notes
    -----
    NHS Data Dictionary, attribute NHS NUMBER: weights 10..2 on the first nine digits,
    check = 11 - (sum mod 11), 11 becomes 0 and 10 is invalid (SPEC §3.1).

    Examples
    --------
    >>> is_valid_nhs_number("943 476 5919"), is_valid_nhs_number("9434765918")
    (True, False)
    """
    digits = normalise_nhs_number(value)
    if len(digits) != 10 or not digits.isascii() or not digits.isdigit():
        return False
    total = sum(int(d) * w for d, w in zip(digits[:9], range(10, 1, -1), strict=True))
    check = 11 - total % 11
    if check == 11:
        check = 0
    return check != 10 and check == int(digits[9])


def pseudonymise(nhs_number: str, key: str | bytes) -> str:
    """Keyed HMAC-SHA-256 pseudonym of a valid NHS number (first 20 hex digits).

    A plain hash would not do: the space of NHS numbers (~10^9) can be enumerated.
    The key is supplied by the caller and never stored.
    """
    if not key:
        raise ValueError("a non-empty pseudonymisation key is required")
    if not is_valid_nhs_number(nhs_number):
        raise ValueError("not a valid NHS number (Modulus 11 check failed)")
    key_bytes = key.encode("utf-8") if isinstance(key, str) else key
    digest = hmac.new(key_bytes, normalise_nhs_number(nhs_number).encode("ascii"), hashlib.sha256)
    return PSEUDONYM_PREFIX + digest.hexdigest()[:20]
