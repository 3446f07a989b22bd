import hashlib

from spimpact.report.provenance import build_provenance, rebuild_key, sha256_file


def test_hashes_and_redaction(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    (data / "clients.csv").write_text("a\n")
    params = tmp_path / "s.yaml"
    params.write_text("scheme_id: s\npseudonym_key: hush\n")
    provenance = build_provenance(params, data)
    assert provenance["inputs_sha256"] == {"clients.csv": hashlib.sha256(b"a\n").hexdigest()}
    assert provenance["params_sha256"] == sha256_file(params)
    assert provenance["params"]["pseudonym_key"] == "(redacted)"
    assert "hush" not in str(provenance)
    before = rebuild_key(provenance)
    (data / "clients.csv").write_text("b\n")
    assert rebuild_key(build_provenance(params, data)) != before
