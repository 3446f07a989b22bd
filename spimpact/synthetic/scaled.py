"""A scheme of any size, written as Parquet, for benchmarks (``spimpact example-data --scale``).

The scheme is north_shore's (SWEMWBS, GP appointments, a comparison pool twice the
clients) with ``n_clients`` clients and areas and practices in proportion; about 75
GP appointment rows are written per client (clients and their comparison pool).
A scheme of more than ``BLOCK_CLIENTS`` clients is simulated and written block by block
(each block a north_shore-like scheme of its own), so only one block is in memory.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from spimpact.paths import SYNTHETIC_MARKER
from spimpact.synthetic.schemes import EXAMPLE_SCHEMES
from spimpact.synthetic.writing import simulate_scheme

# Clients per area and per practice in the north_shore example (8,000 clients).
CLIENTS_PER_AREA = 8000 / 120
CLIENTS_PER_PRACTICE = 8000 / 48
# Most clients simulated at once: a larger scheme is written in blocks of at most this many
# (a 100,000-client block peaks at a few GB; 500,000 at once ran out of 24 GB).
BLOCK_CLIENTS = 100_000
# Columns holding a person's or a record's identifier: tagged with the block in a scheme
# of several blocks, so that no identifier repeats between blocks.
ID_COLUMNS = ("client_id", "patient_id", "feedback_id")
# truth.json values realised over a block's own clients (not the spec): listed per block.
PER_BLOCK_GP_TRUTH = ("gp_att_per_person_month", "gp_rate_ratio_post")


def write_scaled_scheme(root: str | Path, n_clients: int, *, seed: int = 20261130) -> Path:
    """Write a north_shore-like scheme of ``n_clients`` clients to ``root/scale_<n>/``.

    Every table is a Parquet file (``<table>.parquet``, the contract's columns, dates
    as ``YYYY-MM-DD`` text as a CSV export holds them), beside ``truth.json`` and the
    synthetic-data marker. Deterministic given ``n_clients`` and ``seed``.

    Up to ``BLOCK_CLIENTS`` clients the scheme is simulated at once from ``seed``. A
    larger one is simulated as blocks of as equal size as possible, block ``k`` from
    ``SeedSequence(seed).spawn(n_blocks)[k]``, each with its own areas, practices and
    comparison pool; so its tables differ from a one-block simulation of the same size.
    Identifiers are tagged with the block (``SC-B2-…``, ``CP-B2-…``, ``FB-B2-…``) and
    area and practice codes numbered on from the earlier blocks', so none repeats; the
    activity organisations (``ORG-001`` to ``ORG-040``) are the same in every block.
    Rows are in block order, sorted within each block.

    Examples
    --------
    >>> import tempfile
    >>> folder = write_scaled_scheme(tempfile.mkdtemp(), 60)
    >>> folder.name, sorted(p.name for p in folder.glob("*.parquet"))[:3]
    ('scale_60', ['clients.parquet', 'comparison_pool.parquet', 'contacts.parquet'])
    """
    if isinstance(n_clients, bool) or int(n_clients) != n_clients or n_clients < 50:
        raise ValueError(f"--scale must be a whole number of clients >= 50, got {n_clients!r}")
    n_clients = int(n_clients)
    scheme_id = f"scale_{n_clients}"
    folder = Path(root) / scheme_id
    folder.mkdir(parents=True, exist_ok=True)
    sizes = block_sizes(n_clients)
    if len(sizes) == 1:
        rngs = [np.random.default_rng(seed)]
    else:
        rngs = [np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(len(sizes))]
    writers: dict[str, pq.ParquetWriter] = {}
    populations, truths = [], []
    n_areas = n_practices = 0
    try:
        for block, (size, rng) in enumerate(zip(sizes, rngs, strict=True)):
            spec = _block_spec(scheme_id, n_clients, size)
            tables, truth = simulate_scheme(spec, rng)
            if len(sizes) > 1:
                _tag_block(tables, block, n_areas, n_practices)
                n_areas, n_practices = n_areas + spec.n_areas, n_practices + spec.n_practices
            populations.append(tables.pop("population"))
            truths.append(truth)
            for name in list(tables):  # each table freed once written
                _append(writers, folder / f"{name}.parquet", tables.pop(name), len(sizes) > 1)
        _append(writers, folder / "population.parquet", _combine_populations(populations))
    finally:
        for writer in writers.values():
            writer.close()
    truth = truths[0] if len(truths) == 1 else _combine_truths(truths, sizes)
    (folder / "truth.json").write_text(json.dumps(truth, indent=2, sort_keys=True), "utf-8")
    marker = {"written_by": "spimpact example-data", "scheme_id": scheme_id, "seed": seed}
    marker["scale"] = n_clients
    if len(sizes) > 1:
        marker["blocks"] = sizes
    (folder / SYNTHETIC_MARKER).write_text(
        json.dumps(marker, indent=2, sort_keys=True) + "\n", encoding="utf-8"
    )
    return folder


def block_sizes(n_clients: int) -> list[int]:
    """Clients in each block: as few blocks of at most ``BLOCK_CLIENTS`` as equal as can be.

    Examples
    --------
    >>> block_sizes(250_001)
    [83334, 83334, 83333]
    """
    n_blocks = -(-n_clients // BLOCK_CLIENTS)
    base, extra = divmod(n_clients, n_blocks)
    return [base + 1] * extra + [base] * (n_blocks - extra)


def _block_spec(scheme_id: str, n_clients: int, size: int):
    """The spec of one block of ``size`` clients: north_shore's, areas in proportion."""
    base = next(s for s in EXAMPLE_SCHEMES if s.scheme_id == "north_shore")
    return replace(
        base,
        scheme_id=scheme_id,
        title=f"Synthetic scheme of {n_clients:,} clients",
        n_clients=size,
        n_areas=max(10, round(size / CLIENTS_PER_AREA)),
        n_practices=max(4, round(size / CLIENTS_PER_PRACTICE)),
        boundaries=False,
    )


def _tag_block(tables: dict, block: int, n_areas: int, n_practices: int) -> None:
    """Make a block's identifiers and codes distinct from every other block's, in place.

    Identifiers get ``B<block + 1>-`` after their prefix; LSOA and practice codes (numbered
    from the same start in every block) are moved on by the areas and practices of the
    blocks before.
    """

    def renamed(column: pd.Series, rename) -> pd.Series:
        codes, values = pd.factorize(column)  # missing values stay missing (code -1)
        new = np.array([rename(v) for v in values] + [None], dtype=object)
        return pd.Series(new[codes], index=column.index, name=column.name)

    def tag(value: str) -> str:
        prefix, _, rest = value.partition("-")
        return f"{prefix}-B{block + 1}-{rest}"

    def lsoa(code: str) -> str:
        return f"{code[:3]}{int(code[3:]) + n_areas:06d}"

    def practice(code: str) -> str:
        return f"{code[0]}{int(code[1:]) + n_practices:05d}"

    for name, frame in tables.items():
        for column in ID_COLUMNS:
            if column in frame:
                frame[column] = renamed(frame[column], tag)
        if "lsoa_code" in frame:
            frame["lsoa_code"] = renamed(frame["lsoa_code"], lsoa)
        if "practice_code" in frame:
            frame["practice_code"] = renamed(frame["practice_code"], practice)
        if name == "population":
            rows = frame["dimension"] == "lsoa_code"
            frame.loc[rows, "category"] = renamed(frame.loc[rows, "category"], lsoa)


def _append(writers: dict, path: Path, frame: pd.DataFrame, several: bool = False) -> None:
    """Append ``frame`` to the Parquet file at ``path``, its dates made text in place.

    Dates are written as ``YYYY-MM-DD`` text. The first block fixes the file's schema;
    with ``several`` blocks a column no value of the first block typed (all missing) is
    text, as every such column is.
    """
    for column in frame.columns:
        if pd.api.types.is_datetime64_any_dtype(frame[column]):
            frame[column] = frame[column].dt.strftime("%Y-%m-%d")
    if path not in writers:
        schema = pa.Schema.from_pandas(frame, preserve_index=False)
        if several:
            for k, field in enumerate(schema):
                if pa.types.is_null(field.type):
                    schema = schema.set(k, field.with_type(pa.string()))
        writers[path] = pq.ParquetWriter(path, schema)
    writer = writers[path]
    writer.write_table(pa.Table.from_pandas(frame, schema=writer.schema, preserve_index=False))


def _combine_populations(populations: list[pd.DataFrame]) -> pd.DataFrame:
    """One population table: every block's areas once, each other category summed."""
    if len(populations) == 1:
        return populations[0]
    rows = pd.concat(populations, ignore_index=True)
    areas = rows[rows["dimension"] == "lsoa_code"]
    summed = (
        rows[rows["dimension"] != "lsoa_code"]
        .groupby(["dimension", "category"], sort=False, as_index=False)["population"]
        .sum()
    )
    combined = pd.concat([summed, areas], ignore_index=True)
    order = {d: k for k, d in enumerate(pd.unique(populations[0]["dimension"]))}
    combined = combined.sort_values("dimension", key=lambda d: d.map(order), kind="stable")
    return combined.reset_index(drop=True)


def _combine_truths(truths: list[dict], sizes: list[int]) -> dict:
    """The truth of a scheme of several blocks: the spec's effects once, the rest per block.

    Every block has the same spec, so the true effects (rate ratios, the expected change
    in wellbeing) are kept once, from the first block; the GP effect realised over each
    block's own clients (``PER_BLOCK_GP_TRUTH``) is listed per block.
    """
    truth = dict(truths[0])
    truth["n_clients"] = sum(t["n_clients"] for t in truths)
    truth["gp_attendance"] = {
        k: v for k, v in truths[0]["gp_attendance"].items() if k not in PER_BLOCK_GP_TRUTH
    }
    truth["blocks"] = [
        {
            "block": k + 1,
            "n_clients": size,
            **{key: t["gp_attendance"][key] for key in PER_BLOCK_GP_TRUTH},
        }
        for k, (t, size) in enumerate(zip(truths, sizes, strict=True))
    ]
    truth["blocks_note"] = (
        f"simulated as {len(sizes)} blocks, each a north_shore-like scheme with the same "
        "spec: the true effects are the same in every block and kept once (the expected "
        "wellbeing change from the first block's Monte Carlo); "
        + ", ".join(PER_BLOCK_GP_TRUTH)
        + " are realised over each block's clients and listed per block"
    )
    return truth
