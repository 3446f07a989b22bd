"""Scrubbing free text before it is quoted: names, places, dates, contact details."""

import re

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from spimpact.publish.scrub import scrub_text

# Phone numbers, postcodes and NHS numbers below are from ranges reserved for
# fiction and testing (Ofcom drama numbers 07700 900xxx, 020 7946 0xxx, 0113 496 0xxx,
# 01632 960xxx) or are made up; 943 476 5919 is the NHS Digital documentation example.


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # titles and capitalised names
        ("Mrs Jane Smith rang me.", "[name] rang me."),
        (
            "Dr. J. R. Patel-Hughes at the surgery referred me.",
            "[name] at the surgery referred me.",
        ),
        ("On Friday I met Mr O'Neil.", "On Friday I met [name]."),
        ("Prof McDonald and Cllr Begum came.", "[name] and [name] came."),
        ("Margaret told us: I feel better.", "[name] told us: I feel better."),
        (
            "My friend Aisha O'Connor-Begum and Tomasz come to the CBT group.",
            "My friend [name] and [name] come to the CBT group.",
        ),
        ("Sian's daughter came along.", "[name]'s daughter came along."),
        ("Walking helped. John helped too.", "Walking helped. [name] helped too."),
        # an unknown capitalised word opening a sentence is removed: it may be a name
        ("Kwame helped. Sewing helped.", "[name] helped. [name] helped."),
        # UK phone formats
        ("Ring 07700 900123 today", "Ring [phone] today"),
        ("Ring 07700900123.", "Ring [phone]."),
        ("Ring 07700-900-123.", "Ring [phone]."),
        ("Call +44 (0)20 7946 0958 now", "Call [phone] now"),
        ("Call +447700900123 now", "Call [phone] now"),
        ("Call (01632) 960 001 now", "Call [phone] now"),
        ("Call 0113 496 0000 2 times.", "Call [phone] 2 times."),
        ("Call 0113.496.0000 please", "Call [phone] please"),
        # dates in many formats
        ("Seen 12/03/2024.", "Seen [date]."),
        ("Seen 1.2.24 and 2024-05-01.", "Seen [date] and [date]."),
        ("Seen on 3rd March 2024.", "Seen on [date]."),
        ("Seen on Tuesday 4th of June.", "Seen on [date]."),
        ("Seen on March 12th, 2023.", "Seen on [date]."),
        ("Seen on 12 Mar 24 again.", "Seen on [date] again."),
        ("Started in April 2023.", "Started in [date]."),
        ("Seen on Sept. 5th.", "Seen on [date]."),
        # postcodes
        ("I live in LS6 2QT.", "I live in [postcode]."),
        ("Postcode ls62qt please", "Postcode [postcode] please"),
        ("Near M1 1AE and in LS6 too.", "Near [postcode] and in [postcode] too."),
        # e-mails and links
        ("Email jane.o'neil@example.co.uk now.", "Email [email] now."),
        ("See www.example.org/page.", "See [link]."),
        # NHS numbers
        ("My NHS number is 943 476 5919.", "My NHS number is [NHS number]."),
        ("NHS no 9434765919", "NHS no [NHS number]"),
        ("NHS no 943-476-5919", "NHS no [NHS number]"),
        # street addresses and places
        ("I live at Flat 3, 27 Hyde Park Road.", "I live at [address]."),
        ("Post to 4a Elm St. please", "Post to [address] please"),
        ("She lives on Elm Grove near Otley.", "She lives on [address] near [place]."),
        ("I went to St Mark's Church Hall.", "I went to [place]."),
        ("Thanks to all at Riverside Community Centre.", "Thanks to all at [place]."),
    ],
)
def test_scrub_text_removes_identifiers(text, expected):
    assert scrub_text(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "I feel more confident going out on my own now.",
        "I went to the NHS walk on Monday with my GP's advice, in May.",
        "I scored 14 and came to 3 of 7 sessions in 2019.",
        "The walking group got me moving again.",
        "My EQ5D and SF36 scores went up.",
        "Before this I hardly spoke to anyone from one week to the next.",
    ],
)
def test_scrub_text_keeps_harmless_text(text):
    assert scrub_text(text) == text


@pytest.mark.parametrize("missing", [None, np.nan])
def test_scrub_text_missing_gives_empty_string(missing):
    assert scrub_text(missing) == ""


def test_scrub_text_leaves_no_digits_of_identifiers():
    text = (
        "Mrs Grace Mensah (NHS 943 476 5919, tel 07700 900456, grace@example.com) of "
        "12 Acacia Avenue, Leeds LS6 2QT first came on 02/03/2024."
    )
    scrubbed = scrub_text(text)
    assert not re.search(r"\d", scrubbed)
    for leaked in ("Grace", "Mensah", "Acacia", "Leeds", "example"):
        assert leaked not in scrubbed


_UK_NUMBER_PREFIXES = ("07700 900", "020 7946 0", "0113 496 0", "01632 960", "+44 7700 900")


@settings(max_examples=200, deadline=None, derandomize=True)
@given(
    prefix=st.sampled_from(_UK_NUMBER_PREFIXES),
    tail=st.integers(min_value=0, max_value=999),
    separator=st.sampled_from([" ", "-", "", "."]),
    before=st.sampled_from(["Call me on", "ring", "My number:", "(tel."]),
    after=st.sampled_from([".", " today.", ", thanks", ")", " or email me"]),
)
def test_scrub_text_removes_any_uk_phone_layout(prefix, tail, separator, before, after):
    number = (prefix + f"{tail:03d}").replace(" ", separator)
    scrubbed = scrub_text(f"{before} {number}{after}")
    assert "[phone]" in scrubbed
    assert not re.search(r"\d{3}", scrubbed)


@settings(max_examples=100, deadline=None, derandomize=True)
@given(digits=st.from_regex(r"[1-9]\d{9}", fullmatch=True), layout=st.sampled_from([0, 1, 2]))
def test_scrub_text_removes_any_ten_digit_nhs_number(digits, layout):
    number = [
        digits,
        f"{digits[:3]} {digits[3:6]} {digits[6:]}",
        f"{digits[:3]}-{digits[3:6]}-{digits[6:]}",
    ][layout]
    scrubbed = scrub_text(f"NHS number {number} on file")
    assert scrubbed == "NHS number [NHS number] on file"
