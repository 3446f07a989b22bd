"""The pseudonymisation key fed through every params error path never reaches an output."""

from __future__ import annotations

import json
import os

import pytest
from hostile import KEY, leaks

from spimpact.files import MAX_PARAMS_BYTES
from spimpact.params import (
    MAX_YAML_ALIASES,
    ParamsError,
    SchemeParams,
    check_key_allowed,
    load_params,
)
from spimpact.paths import SYNTHETIC_MARKER
from spimpact.runner import run_reports

HEAD = "scheme_id: {name}\ntitle: T\ndata_dir: d\n"
BOMB = "".join(f"l{k}: &l{k} [{', '.join([f'*l{k - 1}'] * 9) if k else KEY}]\n" for k in range(10))
# One params file per way a key can go wrong, each named after the error path it takes.
ERROR_PATHS = {
    "misspelt_key": HEAD + f'pseudonym-key: "{KEY}"\n',
    "misspelt_nested": HEAD + f"measures:\n  pseudonym_key: {KEY}\n",
    "unclosed_quote": HEAD + f'pseudonym_key: "{KEY}\nseed: 1\n',
    "colon_in_value": HEAD + f"pseudonym_key: {KEY}: x\n",
    "tab_indent": HEAD + f"\tpseudonym_key: {KEY}\n",
    "flow_error": HEAD + f"pseudonym_key: [{KEY}\n",
    "not_a_string": HEAD + f"pseudonym_key: [{KEY}, 1]\n",
    "mapping_value": HEAD + f"pseudonym_key: {{{KEY}: 1}}\n",
    "key_as_unknown_key": HEAD + f"{KEY}: true\n",
    "key_as_nested_key": HEAD + f"measures:\n  timepoints: {{{KEY}: x, 0: b}}\n",
    "key_in_integer": HEAD + f"seed: {KEY}\n",
    "key_in_choice": HEAD + f"measures:\n  eq5d_value_set: {KEY}\n",
    "key_in_scheme_id": f"scheme_id: {KEY}\ntitle: T\ndata_dir: d\n",
    "key_in_long_title": f"scheme_id: x\ntitle: {KEY * 6}\ndata_dir: d\n",
    "key_in_boolean": HEAD + f"comparison:\n  enabled: {KEY}\n",
    "key_in_variant": HEAD
    + f"measures:\n  variants:\n    swemwbs: {{observed_min: {KEY}, observed_max: 10}}\n",
    "alias_bomb": HEAD + BOMB,
    "oversized": HEAD + f"# {KEY}\n" * (MAX_PARAMS_BYTES // 40),
    "not_a_mapping": f"- {KEY}\n",
    "duplicate_document": HEAD + f"---\npseudonym_key: {KEY}\n",
}


def _write(folder, name, text):
    path = folder / f"{name}.yaml"
    path.write_text(text.replace("{name}", name), encoding="utf-8")
    return path


@pytest.mark.parametrize("name", sorted(ERROR_PATHS))
def test_params_errors_never_echo_the_key_or_the_folder(tmp_path, name):
    path = _write(tmp_path, name, ERROR_PATHS[name])
    with pytest.raises(ParamsError) as error:
        load_params(path)
    message = str(error.value)
    assert message.startswith(path.name), message  # names the file ...
    assert KEY not in message and KEY[:12] not in message, message  # ... never the value
    assert str(tmp_path) not in message, message


def test_misspelt_key_still_says_which_key(tmp_path):
    path = _write(tmp_path, "misspelt_key", ERROR_PATHS["misspelt_key"])
    with pytest.raises(ParamsError, match=r"line 4, key 'pseudonym-key' is not allowed") as error:
        load_params(path)
    assert "did you mean 'pseudonym_key'" in str(error.value)


def test_alias_bomb_is_refused_before_it_expands(tmp_path):
    path = _write(tmp_path, "alias_bomb", ERROR_PATHS["alias_bomb"])
    with pytest.raises(ParamsError, match=rf"at most {MAX_YAML_ALIASES} are allowed"):
        load_params(path)


@pytest.mark.parametrize("target", ["/dev/zero", "folder"])
def test_params_must_be_a_regular_file(tmp_path, target):
    (tmp_path / "folder").mkdir()
    link = tmp_path / "zero.yaml"
    os.symlink(target if target.startswith("/") else tmp_path / target, link)
    with pytest.raises(ParamsError, match="zero.yaml: params file is not a regular file"):
        load_params(link)


def test_every_error_path_run_writes_no_key_anywhere(tmp_path):
    """`spimpact run` on every broken params file: status, summary, nothing else carries it."""
    params = [_write(tmp_path / "params", n, t) for n, t in _in_folder(tmp_path / "params")]
    outputs = tmp_path / "outputs"
    outcomes = run_reports(params, output_root=outputs, progress=lambda _: None)
    assert {o.status for o in outcomes} == {"failed"}
    assert leaks(outputs) == []
    for outcome in outcomes:
        reason = outcome.reason or ""
        assert KEY not in reason and str(tmp_path) not in reason, reason
    statuses = [json.loads(p.read_text()) for p in outputs.glob("*/status.json")]
    assert len(statuses) == len(ERROR_PATHS)
    assert "Content-Security-Policy" in (outputs / "index.html").read_text(encoding="utf-8")


def _in_folder(folder):
    folder.mkdir(parents=True, exist_ok=True)
    # the params file's name is its scheme id, as `spimpact run` requires
    return [(n, t.replace("scheme_id: x\n", f"scheme_id: {n}\n")) for n, t in ERROR_PATHS.items()]


def test_key_in_params_is_refused_for_real_data(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    params = SchemeParams(scheme_id="s", title="S", data_dir=data, pseudonym_key=KEY)
    with pytest.raises(ParamsError, match="allowed only for synthetic example data") as error:
        check_key_allowed(params)
    assert KEY not in str(error.value)
    (data / SYNTHETIC_MARKER).write_text('{"written_by": "someone else"}')
    with pytest.raises(ParamsError):
        check_key_allowed(params)
    (data / SYNTHETIC_MARKER).write_text('{"written_by": "spimpact example-data"}')
    check_key_allowed(params)  # synthetic data: the key is public anyway
    check_key_allowed(params.model_copy(update={"pseudonym_key": None, "data_dir": tmp_path}))


def test_example_data_is_marked_synthetic(example_data):
    marker = json.loads((example_data / "riverside" / SYNTHETIC_MARKER).read_text())
    assert marker["written_by"] == "spimpact example-data"
