"""Bounded inputs: devices, pipes, links and oversized files end in a clear message.

Each hostile input is tried in a child process whose peak memory (``ru_maxrss``) is
measured; a generous timeout only guards against a hang (a pipe or ``/dev/zero`` read
for ever), it is not a speed assertion.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pandas as pd
import pytest

from spimpact.files import MAX_GEOJSON_BYTES, MAX_TABLE_BYTES
from spimpact.io import load_scheme
from spimpact.readers import DataValidationError
from spimpact.report.provenance import input_hashes

HANG_GUARD_SECONDS = 600
# A Python with pandas, pyarrow and matplotlib imported uses about 200 MB; reading any of
# the hostile files below would take gigabytes.
MEMORY_BOUND_MB = 600

PROBE = textwrap.dedent(
    """
    import json, sys
    from pathlib import Path
    from spimpact.boundaries import read_boundaries
    from spimpact.io import load_scheme
    from spimpact.readers import DataValidationError

    messages = {}
    for name in sys.argv[2:]:
        path = Path(sys.argv[1]) / name
        try:
            if name.endswith(".geojson"):
                read_boundaries(path, "lsoa_code")
            else:
                load_scheme(path)
            messages[name] = "no error"
        except (ValueError, DataValidationError) as error:
            messages[name] = str(error)
    print(json.dumps(messages))
    """
)


def _run_measured(code: str, *args) -> tuple[dict, float]:
    """Run ``code`` in a child Python; its JSON output and its own peak RSS in MB (Linux)."""
    # VmHWM is this process's own peak: ru_maxrss would carry the parent's over fork
    measured = code + (
        "\nprint(next(line.split()[1] for line in open('/proc/self/status') "
        "if line.startswith('VmHWM:')))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", measured, *map(str, args)],
        capture_output=True,
        text=True,
        timeout=HANG_GUARD_SECONDS,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    *_, output, peak_kb = result.stdout.strip().splitlines()
    return json.loads(output), int(peak_kb) / 1024


def _sparse(path, size):
    with open(path, "wb") as handle:
        handle.truncate(size)  # no disk used: a hole the size of a huge file


@pytest.fixture
def hostile_files(tmp_path, contract_example_data):
    """GeoJSON files and scheme folders that each hold one thing spimpact must not read."""
    valley = contract_example_data / "valley"
    os.symlink("/dev/zero", tmp_path / "zero.geojson")
    _sparse(tmp_path / "huge.geojson", MAX_GEOJSON_BYTES + 1)
    (tmp_path / "deep.geojson").write_text("[" * 200_000)
    plants = {
        "pipe": lambda d: os.mkfifo(d / "measures.csv"),  # a read would block for ever
        "link": lambda d: os.symlink("/etc/hostname", d / "clients.csv"),
        "folder": lambda d: (d / "contacts.csv").mkdir(),
        "huge_table": lambda d: _sparse(d / "gp_appointments.csv", MAX_TABLE_BYTES + 1),
    }
    for name, plant in plants.items():
        folder = tmp_path / name
        folder.mkdir()
        for table in ("clients.csv", "measures.csv"):
            if (name, table) not in (("pipe", "measures.csv"), ("link", "clients.csv")):
                (folder / table).write_bytes((valley / table).read_bytes())
        plant(folder)
    expected = {
        "zero.geojson": "zero.geojson: GeoJSON boundaries file is not a regular file",
        "huge.geojson": "huge.geojson: GeoJSON boundaries file is larger than 256 MiB",
        "deep.geojson": "deep.geojson: cannot read GeoJSON boundaries: not valid JSON",
        "pipe": "measures.csv: table is not a regular file",
        "link": "clients.csv: table is a symbolic link",
        "folder": "contacts.csv: table is not a regular file",
        "huge_table": "gp_appointments.csv: table is larger than 2048 MiB",
    }
    return tmp_path, expected


def test_hostile_files_end_in_a_clear_message_in_bounded_memory(hostile_files):
    folder, expected = hostile_files
    messages, peak_mb = _run_measured(PROBE, folder, *sorted(expected))
    for name, fragment in expected.items():
        assert fragment in messages[name], (name, messages[name])
        assert str(folder) not in messages[name], messages[name]  # file names, not paths
    assert peak_mb < MEMORY_BOUND_MB, peak_mb


def test_root_as_data_folder_reads_and_hashes_nothing():
    assert input_hashes("/") == {}
    with pytest.raises(DataValidationError, match="required table 'clients' missing"):
        load_scheme("/")


LOADER = textwrap.dedent(
    """
    import json, sys
    from spimpact.io import load_scheme
    scheme = load_scheme(sys.argv[1])
    counts = scheme.reconciliation.set_index("table").loc["measures"].tolist()
    print(json.dumps({"counts": [int(c) for c in counts]}))
    """
)


def _hostile_measures(folder, example_valley, n_rows: int) -> None:
    """A measures table of ``n_rows`` rows for 10 clients: almost all duplicates."""
    folder.mkdir()
    clients = pd.read_csv(example_valley / "clients.csv", dtype=str).head(10)
    clients.to_csv(folder / "clients.csv", index=False)
    rng = np.random.default_rng(19)
    measures = pd.DataFrame(
        {
            "client_id": clients["client_id"].to_numpy()[rng.integers(0, 10, n_rows)],
            "measure": "swemwbs",
            "timepoint": rng.integers(0, 21, n_rows),
            "date": "2023-06-01",
        }
    )
    for k in range(1, 8):
        measures[f"item_{k}"] = rng.integers(1, 6, n_rows)
    measures.to_csv(folder / "measures.csv", index=False)


def test_loader_memory_grows_by_a_bounded_amount_per_row(tmp_path, contract_example_data):
    """Peak memory per row of a hostile measures table stays small (rows are not Python lists).

    The old reader held every row as a Python list and checked duplicates with one
    ``.loc`` per row: about 1.7 KB a row at this size (8 GB and over 120 s for 5 million
    rows). The whole load, item validation and exclusion log included, now peaks at about
    1.2 KB a row.
    """
    peaks = {}
    for n_rows in (20_000, 200_000):
        folder = tmp_path / f"rows_{n_rows}"
        _hostile_measures(folder, contract_example_data / "valley", n_rows)
        output, peaks[n_rows] = _run_measured(LOADER, folder)
        n_read, n_used, n_excluded = output["counts"]
        assert n_read == n_rows and n_used + n_excluded == n_rows and n_used <= 10 * 21
    bytes_per_row = (peaks[200_000] - peaks[20_000]) * 2**20 / 180_000
    assert bytes_per_row < 1500, bytes_per_row
