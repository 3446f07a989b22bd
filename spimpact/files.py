"""Bounded reads of input files: only regular files, never more than a stated size.

Every file spimpact reads whole (params YAML, CSV and Parquet tables, GeoJSON
boundaries) goes through :func:`read_bytes_limited`, so a symbolic link to a system
file, a device such as ``/dev/zero``, a pipe or a folder is refused with a clear message
instead of being read until memory runs out. Messages name the file (not its folder,
which can reveal local paths) and the rule broken; they never quote its content.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

MIB = 1 << 20
# Largest params file: real ones are a few hundred bytes.
MAX_PARAMS_BYTES = 64 * 1024
# Largest table file (CSV or Parquet): a 5-million-row measures table is about 300 MiB.
MAX_TABLE_BYTES = 2048 * MIB
# Largest GeoJSON boundaries file: a scheme's catchment is a few MiB; all LSOAs of
# England at full resolution are about 500 MiB, so simplify or clip them first.
MAX_GEOJSON_BYTES = 256 * MIB


class FileRefused(ValueError):
    """An input file that spimpact will not read (not a regular file, or too large)."""


def describe_size(n_bytes: int) -> str:
    """Sizes for people: ``64 KiB``, ``256 MiB``.

    Examples
    --------
    >>> describe_size(65536), describe_size(256 * MIB)
    ('64 KiB', '256 MiB')
    """
    if n_bytes >= MIB:
        return f"{n_bytes / MIB:g} MiB"
    if n_bytes >= 1024:
        return f"{n_bytes / 1024:g} KiB"
    return f"{n_bytes} bytes"


def check_regular_file(path: str | Path, *, what: str = "file", follow_symlinks=False) -> int:
    """Refuse anything but a regular file; return its size in bytes.

    Parameters
    ----------
    path
        The file.
    what
        What the file is, for the message ("params file", "table").
    follow_symlinks
        Whether a symbolic link to a regular file is accepted. Tables in a scheme
        folder are read by name and never through a link (the default); a path given
        explicitly in params may be a link to a regular file.

    Raises
    ------
    FileRefused
        When the path is missing, a folder, a device, a pipe or socket, or (unless
        ``follow_symlinks``) a symbolic link.
    """
    path = Path(path)
    try:
        info = os.stat(path, follow_symlinks=follow_symlinks)
    except OSError:
        raise FileRefused(f"{path.name}: {what} not found or not readable") from None
    if stat.S_ISLNK(info.st_mode):
        raise FileRefused(
            f"{path.name}: {what} is a symbolic link; spimpact reads only regular files "
            "(copy the file into place)"
        )
    if not stat.S_ISREG(info.st_mode):
        raise FileRefused(
            f"{path.name}: {what} is not a regular file (a folder, device, pipe or socket); "
            "spimpact reads only regular files"
        )
    return info.st_size


def read_bytes_limited(
    path: str | Path, limit: int, *, what: str = "file", follow_symlinks=False
) -> bytes:
    """The bytes of a regular file of at most ``limit`` bytes.

    The size is checked before reading and the read itself stops one byte past the
    limit, so a file that grows while it is read is refused too.

    Examples
    --------
    >>> import tempfile
    >>> path = Path(tempfile.mkdtemp()) / "a.txt"
    >>> _ = path.write_bytes(b"12345")
    >>> read_bytes_limited(path, 10)
    b'12345'
    >>> read_bytes_limited(path, 4, what="note")
    Traceback (most recent call last):
    ...
    spimpact.files.FileRefused: a.txt: note is larger than 4 bytes (the limit for a note)
    """
    path = Path(path)
    size = check_regular_file(path, what=what, follow_symlinks=follow_symlinks)
    too_large = FileRefused(
        f"{path.name}: {what} is larger than {describe_size(limit)} (the limit for a {what})"
    )
    if size > limit:
        raise too_large
    flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) * (not follow_symlinks)
    try:
        descriptor = os.open(path, flags)
    except OSError:
        raise FileRefused(f"{path.name}: {what} not found or not readable") from None
    with os.fdopen(descriptor, "rb") as handle:
        data = handle.read(limit + 1)
    if len(data) > limit:
        raise too_large
    return data
