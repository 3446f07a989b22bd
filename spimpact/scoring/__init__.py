"""Score wellbeing questionnaires exactly, and catch modified instruments before scoring."""

from spimpact.scoring.instruments import INSTRUMENTS, ITEM_COLUMNS, Instrument, Item
from spimpact.scoring.validate import ItemCheck, validate_items

__all__ = [
    "INSTRUMENTS",
    "ITEM_COLUMNS",
    "Instrument",
    "Item",
    "ItemCheck",
    "validate_items",
]
