"""The questionnaires spimpact scores: their items, codings and which items are required.

Item order and coding follow ``docs/data-contract.md`` (the instrument's own order and
coding); the rules and their sources are in SPEC §1.
"""

from __future__ import annotations

from dataclasses import dataclass

N_ITEM_COLUMNS = 14
ITEM_COLUMNS = tuple(f"item_{number}" for number in range(1, N_ITEM_COLUMNS + 1))


@dataclass(frozen=True)
class Item:
    """One item: its position (``item_<number>``), coding and whether it is required."""

    number: int
    label: str
    low: int
    high: int
    required: bool = True

    @property
    def column(self) -> str:
        """Column of the measures table holding this item."""
        return f"item_{self.number}"


@dataclass(frozen=True)
class Instrument:
    """A questionnaire as recorded in the measures table.

    Attributes
    ----------
    name
        Machine name used in the ``measure`` column.
    label
        Name for people.
    items
        The items in the instrument's own order.
    low, high
        The instrument's main response coding (the range a modified scale is compared
        with and mapped onto); items with another coding (EQ-VAS) say so themselves.
    min_answered
        Fewest answered items for a row to be usable when items are individually
        optional (ONS4 reports each item separately); ``None`` means every required
        item must be answered.
    """

    name: str
    label: str
    items: tuple[Item, ...]
    low: int
    high: int
    min_answered: int | None = None

    @property
    def columns(self) -> tuple[str, ...]:
        """Item columns of the measures table, in the instrument's order."""
        return tuple(item.column for item in self.items)

    @property
    def main_items(self) -> tuple[Item, ...]:
        """Items on the instrument's main coding (those a scale variant applies to)."""
        return tuple(i for i in self.items if (i.low, i.high) == (self.low, self.high))

    @property
    def coding(self) -> str:
        """The main coding as people write it, e.g. ``1–5``."""
        return f"{self.low}–{self.high}"


def _items(labels, low, high, optional=()):
    return tuple(
        Item(number, label, low, high, required=number not in optional)
        for number, label in enumerate(labels, start=1)
    )


_WEMWBS_ITEMS = (
    "optimistic about the future",
    "feeling useful",
    "feeling relaxed",
    "interested in other people",
    "energy to spare",
    "dealing with problems well",
    "thinking clearly",
    "feeling good about myself",
    "feeling close to other people",
    "feeling confident",
    "able to make up my own mind",
    "feeling loved",
    "interested in new things",
    "feeling cheerful",
)

INSTRUMENTS: dict[str, Instrument] = {
    instrument.name: instrument
    for instrument in (
        Instrument(
            "swemwbs",
            "SWEMWBS",
            _items([_WEMWBS_ITEMS[i - 1] for i in (1, 2, 3, 6, 7, 9, 11)], 1, 5),
            1,
            5,
        ),
        Instrument("wemwbs", "WEMWBS", _items(_WEMWBS_ITEMS, 1, 5), 1, 5),
        Instrument(
            "ons4",
            "ONS4 personal wellbeing",
            _items(
                ["life satisfaction", "worthwhile", "happiness", "anxiety"],
                0,
                10,
                optional=(1, 2, 3, 4),
            ),
            0,
            10,
            min_answered=1,
        ),
        Instrument(
            "who5",
            "WHO-5 Well-Being Index",
            _items(
                [
                    "cheerful",
                    "calm and relaxed",
                    "active and vigorous",
                    "fresh and rested",
                    "daily life filled with interesting things",
                ],
                0,
                5,
            ),
            0,
            5,
        ),
        Instrument(
            "eq5d5l",
            "EQ-5D-5L",
            (
                *_items(
                    [
                        "mobility",
                        "self-care",
                        "usual activities",
                        "pain/discomfort",
                        "anxiety/depression",
                    ],
                    1,
                    5,
                ),
                Item(6, "EQ-VAS", 0, 100, required=False),
            ),
            1,
            5,
        ),
        Instrument(
            "mycaw",
            "MYCaW",
            _items(["concern 1", "concern 2", "wellbeing"], 0, 6, optional=(2,)),
            0,
            6,
        ),
        Instrument(
            "ucla3",
            "UCLA 3-item loneliness",
            _items(["lack companionship", "left out", "isolated"], 1, 3),
            1,
            3,
        ),
        Instrument(
            "ons_loneliness",
            "ONS direct loneliness question",
            _items(["how often do you feel lonely"], 1, 5),
            1,
            5,
        ),
    )
}
