import pytest

from spimpact.identifiers import pseudonymise
from spimpact.io import is_valid_nhs_number


@pytest.mark.parametrize(
    ("value", "valid"),
    [
        # Test vectors of SPEC §3.1 (NHS Data Dictionary, Modulus 11).
        ("9434765919", True),
        ("943 476 5919", True),
        ("9000000009", True),
        ("3417284996", True),
        ("9876543210", True),
        ("9434765918", False),
        ("9434765910", False),
        ("0000000400", False),  # check digit would be 10
        ("9876544321", False),
        ("9111111124", False),
        ("9222222228", False),
        ("12312", False),
        ("94347659190", False),
        ("943476591X", False),
        ("", False),
    ],
)
def test_modulus_11(value, valid):
    assert is_valid_nhs_number(value) is valid


def test_pseudonym_is_keyed_stable_and_format_blind():
    a = pseudonymise("943 476 5919", "key-one")
    assert a == pseudonymise("9434765919", "key-one")
    assert a != pseudonymise("9434765919", "key-two")
    assert "9434765919" not in a and a.startswith("P-") and len(a) == 22


@pytest.mark.parametrize("bad", ["9434765918", "12312"])
def test_pseudonymise_rejects_invalid_numbers(bad):
    with pytest.raises(ValueError, match="Modulus 11"):
        pseudonymise(bad, "key")


def test_pseudonymise_needs_a_key():
    with pytest.raises(ValueError, match="key"):
        pseudonymise("9434765919", "")
