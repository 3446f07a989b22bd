"""Read area boundaries (GeoJSON) for maps of reach by neighbourhood.

A scheme may supply ``boundaries.geojson`` (or ``params.boundaries``): a
FeatureCollection of Polygon or MultiPolygon features, each carrying the area code
(e.g. ``lsoa_code``) as a property. Only the outer rings are kept; a file that cannot
be read, or a feature without the code or with another geometry, raises ``ValueError``
naming the file, the feature and what was expected, never a property's value (messages
can reach the report). Only a regular file of at most ``MAX_GEOJSON_BYTES`` is read.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from spimpact.files import MAX_GEOJSON_BYTES, FileRefused, read_bytes_limited


def read_boundaries(path, area_property: str) -> dict[str, list[np.ndarray]]:
    """Polygon rings per area from a GeoJSON FeatureCollection (Polygon/MultiPolygon).

    Parameters
    ----------
    path
        The GeoJSON file.
    area_property
        Feature property that holds the area code (the scheme's ``area_column``).

    Returns
    -------
    dict
        Area code to a list of outer rings, each an ``(n, 2)`` array of coordinates;
        a MultiPolygon gives one ring per polygon.

    Examples
    --------
    >>> import json, tempfile
    >>> square = [[[0, 0], [1, 0], [1, 1], [0, 1], [0, 0]]]
    >>> feature = {"properties": {"lsoa_code": "E01000001"},
    ...            "geometry": {"type": "Polygon", "coordinates": square}}
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     path = Path(folder) / "areas.geojson"
    ...     _ = path.write_text(json.dumps({"features": [feature]}))
    ...     shapes = read_boundaries(path, "lsoa_code")
    >>> shapes["E01000001"][0].shape
    (5, 2)
    """
    path = Path(path)
    name = path.name
    try:
        raw = read_bytes_limited(
            path, MAX_GEOJSON_BYTES, what="GeoJSON boundaries file", follow_symlinks=True
        )
        data = json.loads(raw.decode("utf-8"))
    except FileRefused as error:
        raise ValueError(str(error)) from None
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as error:
        line = f" (line {error.lineno})" if isinstance(error, json.JSONDecodeError) else ""
        raise ValueError(f"{name}: cannot read GeoJSON boundaries: not valid JSON{line}") from None
    features = data.get("features") if isinstance(data, dict) else None
    if not isinstance(features, list):
        raise ValueError(f"{name}: expected a GeoJSON FeatureCollection with a 'features' list")
    shapes: dict[str, list[np.ndarray]] = {}
    for number, feature in enumerate(features, start=1):
        feature = feature if isinstance(feature, dict) else {}
        properties = feature.get("properties")
        code = properties.get(area_property) if isinstance(properties, dict) else None
        geometry = feature.get("geometry")
        geometry = geometry if isinstance(geometry, dict) else {}
        if not isinstance(code, str | int) or isinstance(code, bool):
            raise ValueError(
                f"{name}: feature {number} has no text property {area_property!r} (the area code)"
            )
        kind = geometry.get("type")
        if kind not in ("Polygon", "MultiPolygon"):
            raise ValueError(
                f"{name}: feature {number} has another geometry; expected Polygon or MultiPolygon"
            )
        polygons = (
            [geometry.get("coordinates")] if kind == "Polygon" else geometry.get("coordinates")
        )
        try:
            # outer rings only: holes are rare in LSOAs and do not change the colouring
            rings = [np.asarray(polygon[0], float) for polygon in polygons]
        except (TypeError, ValueError, IndexError, KeyError):
            rings = []
        if not rings or any(ring.ndim != 2 or ring.shape[1] < 2 for ring in rings):
            raise ValueError(
                f"{name}: feature {number} has coordinates that are not rings of [x, y] pairs"
            )
        shapes.setdefault(str(code), []).extend(ring[:, :2] for ring in rings)
    return shapes
