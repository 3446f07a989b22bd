from pathlib import Path

import pytest

from spimpact.params import ParamsError, load_params

PROJECT_DIR = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize(
    "path", sorted((PROJECT_DIR / "params").glob("*.yaml")), ids=lambda p: p.stem
)
def test_example_params_validate(path):
    params = load_params(path)
    assert params.scheme_id == path.stem
    assert params.data_dir.is_absolute()


def test_misspelt_key_is_rejected_with_file_and_key(tmp_path):
    path = tmp_path / "x.yaml"
    path.write_text(
        "scheme_id: x\ntitle: X\ndata_dir: d\nmeasures:\n  primry: swemwbs\n", encoding="utf-8"
    )
    with pytest.raises(
        ParamsError,
        match=r"x.yaml: line 5, key 'measures.primry' is not allowed \(did you mean 'primary'\?\)",
    ):
        load_params(path)


def test_wrong_type_names_key_and_line_but_not_the_value(tmp_path):
    path = tmp_path / "y.yaml"
    path.write_text("scheme_id: y\ntitle: Y\ndata_dir: d\nseed: many\n", encoding="utf-8")
    with pytest.raises(ParamsError, match=r"y.yaml: line 4, key 'seed': Input should be") as error:
        load_params(path)
    assert "many" not in str(error.value) and str(tmp_path) not in str(error.value)


def test_missing_required_key(tmp_path):
    path = tmp_path / "z.yaml"
    path.write_text("scheme_id: z\ndata_dir: d\n", encoding="utf-8")
    with pytest.raises(ParamsError, match=r"key 'title': Field required"):
        load_params(path)


def test_relative_paths_resolve_from_project_root(tmp_path):
    (tmp_path / "params").mkdir()
    path = tmp_path / "params" / "s.yaml"
    path.write_text("scheme_id: s\ntitle: S\ndata_dir: data/s\n", encoding="utf-8")
    assert load_params(path).data_dir == tmp_path / "data" / "s"
