import hashlib

from spimpact.params import load_params
from spimpact.report.provenance import build_provenance, rebuild_key, sha256_file


def test_hashes_and_redaction(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    (data / "clients.csv").write_text("a\n")
    params_dir = tmp_path / "params"
    params_dir.mkdir()
    path = params_dir / "s.yaml"
    path.write_text(f"scheme_id: s\ntitle: S\ndata_dir: {data}\npseudonym_key: hush\n")
    params = load_params(path)
    provenance = build_provenance(path, params)
    assert provenance["inputs_sha256"] == {"clients.csv": hashlib.sha256(b"a\n").hexdigest()}
    assert provenance["params_sha256"] == sha256_file(path)
    assert provenance["params"]["pseudonym_key"] == "(redacted)"
    assert provenance["params"]["conf_level"] == 0.95  # defaults are recorded too
    assert "hush" not in str(provenance)
    before = rebuild_key(provenance)
    (data / "clients.csv").write_text("b\n")
    assert rebuild_key(build_provenance(path, params)) != before
