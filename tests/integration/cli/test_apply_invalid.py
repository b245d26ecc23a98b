"""Files that are not valid are refused by ``kmeshctl apply`` before anything is sent.

Each file starts with a valid Mesh and then has one bad document: the error must name the file, the
document, the line and the field, the exit status is 1, and the valid Mesh must not have been stored.
"""

from __future__ import annotations

import pytest

VALID_FIRST = "type: Mesh\nname: must-not-exist\n---\n"

CASES = {
    "broken-yaml": ("type: Mesh\nname: bad: colon\n", ["line 5", "invalid YAML"]),
    "unknown-field": (
        "type: Mesh\nname: bad\nrouting:\n  zoneEgress: true\n  colour: red\n",
        ["document 2", "line 8", "routing.colour", "unknown field"],
    ),
    "wrong-type": (
        "type: Mesh\nname: bad\nrouting:\n  zoneEgress: yes-please\n",
        ["document 2", "line 7", "routing.zoneEgress", "expected bool"],
    ),
    "missing-required-field": (
        "type: Dataplane\nmesh: default\nname: dp\nnetworking:\n  address: 10.0.0.1\n  inbound:\n"
        "  - tags: {kuma.io/service: web}\n",
        ["document 2", "line 10", "networking.inbound[0].port", "required"],
    ),
}


@pytest.mark.parametrize("case", list(CASES))
def test_invalid_document_is_refused_and_nothing_is_stored(connected, tmp_path, case: str) -> None:
    bad, fragments = CASES[case]
    path = tmp_path / f"{case}.yaml"
    path.write_text(VALID_FIRST + bad)
    for extra in ([], ["--dry-run"]):
        result = connected("apply", "-f", str(path), *extra)
        assert result.returncode == 1
        assert result.stdout == ""
        assert result.stderr.startswith(f"Error: {path}, ")
        for fragment in fragments:
            assert fragment in result.stderr
        assert len(result.stderr.splitlines()) == 1
        assert "Traceback" not in result.stderr
    missing = connected("get", "mesh", "must-not-exist")
    assert missing.returncode == 1
    assert missing.stderr.startswith("Error: Not found")
    dataplanes = connected("get", "dataplanes", "-o", "json")
    assert '"dp"' not in dataplanes.stdout


def test_stdin_errors_name_stdin(connected) -> None:
    result = connected("apply", "-f", "-", stdin=VALID_FIRST + CASES["wrong-type"][0])
    assert result.returncode == 1
    assert result.stderr.startswith("Error: <stdin>, document 2, line 7")
    assert connected("get", "mesh", "must-not-exist").returncode == 1
