"""Mapping a scheme's own exports onto the data contract.

A mapping file (YAML, one per scheme, versioned with its params; ``docs/mapping.md``)
says which source file or sheet fills which contract table, which source column
fills which contract column and how labels become contract codes.
:func:`load_mapping` validates it, :func:`apply_mapping` reads the sources and gives
the contract tables with an account of every label mapped or not
(:data:`MAPPING_REPORT_COLUMNS`), and :func:`propose_mapping` writes a first
proposal for the analyst to edit (``spimpact map``).
"""

from spimpact.mapping.apply import ACTIONS, MAPPING_REPORT_COLUMNS, MappedTables, apply_mapping
from spimpact.mapping.codelists import builtin_codelists, read_codelist
from spimpact.mapping.model import (
    MappingError,
    MappingFile,
    load_mapping,
    mapping_sha256,
    source_files,
)

__all__ = [
    "ACTIONS",
    "MAPPING_REPORT_COLUMNS",
    "MappedTables",
    "MappingError",
    "MappingFile",
    "apply_mapping",
    "builtin_codelists",
    "load_mapping",
    "mapping_sha256",
    "read_codelist",
    "source_files",
]
