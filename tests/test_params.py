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


def test_engine_defaults_to_duckdb_and_the_environment_overrides_it(tmp_path, monkeypatch):
    from spimpact.params import ENGINE_ENV

    params_dir = tmp_path / "params"
    params_dir.mkdir()
    path = params_dir / "tiny.yaml"
    path.write_text(
        "scheme_id: tiny\ntitle: Tiny\ndata_dir: data\nspark: {master: 'local[1]'}\n",
        encoding="utf-8",
    )
    monkeypatch.delenv(ENGINE_ENV, raising=False)
    params = load_params(path)
    assert (params.engine, params.spark.master) == ("duckdb", "local[1]")
    monkeypatch.setenv(ENGINE_ENV, "spark")
    assert load_params(path).engine == "spark"
    monkeypatch.setenv(ENGINE_ENV, "polars")
    with pytest.raises(ParamsError, match="SPIMPACT_ENGINE: expected duckdb or spark"):
        load_params(path)
    path.write_text("scheme_id: tiny\ntitle: Tiny\ndata_dir: data\nengine: pandas\n", "utf-8")
    monkeypatch.delenv(ENGINE_ENV)
    with pytest.raises(ParamsError, match="engine"):
        load_params(path)
