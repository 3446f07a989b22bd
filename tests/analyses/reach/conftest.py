"""Example schemes for the reach tests: the two small ones keep these fixtures quick."""

import pytest

from spimpact.io import load_scheme
from spimpact.params import SchemeParams
from spimpact.synthetic import EXAMPLE_SCHEMES, write_example_data


@pytest.fixture(scope="session")
def example_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("reach_example")
    # the two small example schemes keep this fixture quick
    write_example_data(
        root, schemes=[s for s in EXAMPLE_SCHEMES if s.scheme_id in ("valley", "hillcrest")]
    )
    return root


@pytest.fixture(scope="session")
def schemes(example_root):
    loaded = {}
    for scheme_id in ("valley", "hillcrest"):
        data = load_scheme(example_root / scheme_id, pseudonym_key="reach-test-key")
        params = SchemeParams(
            scheme_id=scheme_id, title=scheme_id, data_dir=example_root / scheme_id
        )
        loaded[scheme_id] = (data, params)
    return loaded
