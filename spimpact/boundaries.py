"""Read area boundaries (GeoJSON) for maps of reach by neighbourhood.

A scheme may supply ``boundaries.geojson`` (or ``params.boundaries``): a
FeatureCollection of Polygon or MultiPolygon features, each carrying the area code
(e.g. ``lsoa_code``) as a property. Only the outer rings are kept; a file that cannot
be read, or a feature without the code or with another geometry, raises ``ValueError``
naming the file, the feature and what was expected.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np


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
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as error:
        raise ValueError(f"{path}: cannot read GeoJSON boundaries: {error}") from None
    shapes: dict[str, list[np.ndarray]] = {}
    for number, feature in enumerate(data.get("features", []), start=1):
        code = (feature.get("properties") or {}).get(area_property)
        geometry = feature.get("geometry") or {}
        if code is None:
            raise ValueError(f"{path}: feature {number} has no property {area_property!r}")
        if geometry.get("type") == "Polygon":
            polygons = [geometry["coordinates"]]
        elif geometry.get("type") == "MultiPolygon":
            polygons = geometry["coordinates"]
        else:
            raise ValueError(
                f"{path}: feature {number} ({code}) has geometry {geometry.get('type')!r}; "
                "expected Polygon or MultiPolygon"
            )
        # outer rings only: holes are rare in LSOAs and do not change the colouring
        shapes.setdefault(str(code), []).extend(np.asarray(poly[0], float) for poly in polygons)
    return shapes
