"""Run a command in a child process, sampling the peak resident memory of its process tree.

Shared by the benchmarks that compare jobs run one after another in fresh processes
(for Spark the tree holds the Python driver and its JVM).
"""

from __future__ import annotations

import subprocess
import tempfile
import time
from dataclasses import dataclass

import psutil


@dataclass(frozen=True)
class Measured:
    """A finished child: exit code, its output, peak resident bytes of its tree, seconds."""

    returncode: int
    stdout: str
    stderr: str
    peak_bytes: int
    seconds: float


def run_with_peak(command: list[str], *, interval: float = 0.1) -> Measured:
    """Run ``command``; the resident memory of it and its children summed every ``interval`` s.

    Output goes to temporary files, so a child writing much cannot fill a pipe and stall.
    """
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        started = time.perf_counter()
        child = subprocess.Popen(command, stdout=out, stderr=err, text=True)
        parent, peak = psutil.Process(child.pid), 0
        while child.poll() is None:
            try:
                tree = [parent, *parent.children(recursive=True)]
                peak = max(peak, sum(p.memory_info().rss for p in tree if p.is_running()))
            except psutil.Error:
                pass
            time.sleep(interval)
        seconds = time.perf_counter() - started
        out.seek(0)
        err.seek(0)
        return Measured(child.returncode, out.read(), err.read(), peak, seconds)
