"""Reading GeoJSON area boundaries."""

import json

import pytest

from spimpact.boundaries import read_boundaries
from spimpact.synthetic import EXAMPLE_SCHEMES, write_example_data


@pytest.fixture(scope="module")
def hillcrest_boundaries(tmp_path_factory):
    root = tmp_path_factory.mktemp("boundaries")
    spec = next(s for s in EXAMPLE_SCHEMES if s.scheme_id == "hillcrest")
    (folder,) = write_example_data(root, schemes=(spec,))
    return folder / "boundaries.geojson"


def test_read_boundaries_rejects_other_geometries(tmp_path):
    path = tmp_path / "b.geojson"
    path.write_text(
        json.dumps(
            {
                "features": [
                    {
                        "properties": {"lsoa_code": "E01000001"},
                        "geometry": {"type": "Point", "coordinates": [0, 0]},
                    }
                ]
            }
        )
    )
    with pytest.raises(ValueError, match="expected Polygon"):
        read_boundaries(path, "lsoa_code")


def test_read_boundaries_reads_polygons(hillcrest_boundaries):
    shapes = read_boundaries(hillcrest_boundaries, "lsoa_code")
    assert len(shapes) == 30
    assert all(ring.shape[1] == 2 for rings in shapes.values() for ring in rings)
