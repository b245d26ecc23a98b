"""``kmeshctl apply``, ``get`` and ``delete`` against a real kmesh-cp, with the project's example files."""

from __future__ import annotations

import json
from pathlib import Path

import yaml

from kmesh.model import descriptor, parse_resource, to_document

EXAMPLES = Path(__file__).resolve().parents[3] / "examples" / "resources"

# Meshes first: everything else lives in one.
EXAMPLE_FILES = [
    "mesh.yaml",
    "zone.yaml",
    "secret.yaml",
    "dataplane.yaml",
    "zoneingress.yaml",
    "zoneegress.yaml",
    "policies.yaml",
]


def _docs(path: Path) -> list[dict]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc]


def _described(doc: dict) -> str:
    text = f'{doc["type"]} "{doc["name"]}"'
    if descriptor(doc["type"]).mesh_scoped:
        text += f' in mesh "{doc["mesh"]}"'
    return text


def _mesh_args(desc, mesh: str | None) -> list[str]:
    return ["-m", mesh] if desc.mesh_scoped and mesh else []


def _listing(run, desc, mesh: str | None) -> dict:
    result = run("get", desc.plural, *_mesh_args(desc, mesh), "-o", "json", "--size", "1000")
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def _groups(docs: list[dict]) -> dict[tuple[str, str | None], list[dict]]:
    """``docs`` by type and mesh: what one listing shows."""
    groups: dict[tuple[str, str | None], list[dict]] = {}
    for doc in docs:
        groups.setdefault((doc["type"], doc.get("mesh")), []).append(doc)
    return groups


def _stored(item: dict) -> dict:
    """A server document without what the server adds (times, and a ZoneIngress's ``availableServices``,
    which the DP server of the control plane keeps current); what was applied should equal it."""
    added = ("creationTime", "modificationTime", "availableServices")
    return {k: v for k, v in item.items() if k not in added}


def test_examples_apply_and_read_back_in_every_format(connected) -> None:
    applied: list[dict] = []
    for file_name in EXAMPLE_FILES:
        path = EXAMPLES / file_name
        docs = _docs(path)
        assert docs, f"{path} has no documents"
        existing = {
            (type_name, mesh): {
                item["name"] for item in _listing(connected, descriptor(type_name), mesh)["items"]
            }
            for type_name, mesh in _groups(docs)
        }
        expected = [
            f"{_described(d)} {'updated' if d['name'] in existing[d['type'], d.get('mesh')] else 'created'}"
            for d in docs
        ]
        result = connected("apply", "-f", str(path))
        assert result.returncode == 0, f"{file_name}: {result.stderr}"
        assert result.stdout.splitlines() == expected
        applied += docs

    for (type_name, mesh), docs in _groups(applied).items():
        desc = descriptor(type_name)
        # JSON: each resource is stored exactly as the client's codec sent it.
        listing = _listing(connected, desc, mesh)
        items = {item["name"]: item for item in listing["items"]}
        for doc in docs:
            assert _stored(items[doc["name"]]) == to_document(parse_resource(doc))

        as_yaml = connected("get", desc.plural, *_mesh_args(desc, mesh), "-o", "yaml", "--size", "1000")
        assert yaml.safe_load(as_yaml.stdout) == listing

        table = connected("get", desc.plural, *_mesh_args(desc, mesh))
        assert table.returncode == 0, table.stderr
        header, *rows = table.stdout.splitlines()
        # Every table ends with the age, but a Zone's, which has kumactl's ``inspect zones`` columns.
        assert header.split()[-1] == ("VERSION" if type_name == "Zone" else "AGE")
        name_column = 1 if desc.mesh_scoped else 0
        shown = {row.split()[name_column] for row in rows}
        assert {doc["name"] for doc in docs} <= shown, table.stdout

        for doc in docs:
            one = connected("get", desc.singular, doc["name"], *_mesh_args(desc, mesh), "-o", "yaml")
            assert one.returncode == 0, one.stderr
            assert yaml.safe_load(one.stdout) == items[doc["name"]]
        one_table = connected("get", desc.singular, docs[0]["name"], *_mesh_args(desc, mesh))
        # The same columns; their widths follow the rows shown (the mesh's CA and token key Secrets, made by
        # the control plane, widen the listing's NAME column).
        assert one_table.stdout.splitlines()[0].split() == header.split()
        assert len(one_table.stdout.splitlines()) == 2
        assert docs[0]["name"] in one_table.stdout.splitlines()[1].split()

    # Everything exists now: applying again updates each resource.
    for file_name in EXAMPLE_FILES:
        path = EXAMPLES / file_name
        again = connected("apply", "-f", str(path))
        assert again.returncode == 0, again.stderr
        assert again.stdout.splitlines() == [f"{_described(d)} updated" for d in _docs(path)]


def test_dry_run_validates_and_stores_nothing(connected, tmp_path) -> None:
    path = tmp_path / "mesh.yaml"
    path.write_text("type: Mesh\nname: dry-one\n---\ntype: Mesh\nname: dry-two\n")
    result = connected("apply", "-f", str(path), "--dry-run")
    assert result.returncode == 0, result.stderr
    assert result.stdout == 'Mesh "dry-one" valid (dry run)\nMesh "dry-two" valid (dry run)\n'
    for name in ("dry-one", "dry-two"):
        missing = connected("get", "mesh", name)
        assert missing.returncode == 1
        assert missing.stderr.startswith("Error: Not found")


def test_stdin_and_variables(connected) -> None:
    text = "type: Mesh\nname: {{ name }}\n"
    result = connected("apply", "-f", "-", "--var", "name=from-stdin", stdin=text)
    assert result.returncode == 0, result.stderr
    assert result.stdout == 'Mesh "from-stdin" created\n'
    assert connected("get", "mesh", "from-stdin").returncode == 0

    unset = connected("apply", "-f", "-", stdin=text)
    assert unset.returncode == 1
    assert unset.stderr == 'Error: <stdin>, line 2: variable "name" is not set; pass --var name=VALUE\n'


def test_delete_then_delete_again_is_the_servers_404(connected) -> None:
    assert connected("apply", "-f", "-", stdin="type: Mesh\nname: doomed\n").returncode == 0
    first = connected("delete", "mesh", "doomed")
    assert first.returncode == 0, first.stderr
    assert first.stdout == 'deleted Mesh "doomed"\n'
    assert connected("get", "mesh", "doomed").returncode == 1

    second = connected("delete", "mesh", "doomed")
    assert second.returncode == 1
    assert second.stdout == ""
    assert second.stderr.startswith("Error: Not found: ")
    assert "doomed" in second.stderr
    assert "Traceback" not in second.stderr


def test_server_refusal_prints_title_details_and_parameters(connected) -> None:
    # Valid on the client; refused by the server because the mesh does not exist.
    secret = {"type": "Secret", "mesh": "no-such-mesh", "name": "orphan", "data": "c2VjcmV0"}
    result = connected("apply", "-f", "-", stdin=yaml.safe_dump(secret))
    assert result.returncode == 1
    first, *params = result.stderr.splitlines()
    assert first.startswith(
        'Error: Secret "orphan" in mesh "no-such-mesh" was refused: Resource is not valid: '
    )
    assert params
    assert params[0].startswith("  * mesh: ")


def test_paging_prints_the_command_for_the_rest(connected) -> None:
    stream = "".join(f"---\ntype: Mesh\nname: page-{i}\n" for i in range(3))
    assert connected("apply", "-f", "-", stdin=stream).returncode == 0
    total = json.loads(connected("get", "meshes", "-o", "json").stdout)["total"]
    assert total >= 3
    first = connected("get", "meshes", "--size", "1")
    assert first.returncode == 0, first.stderr
    lines = first.stdout.splitlines()
    assert len(lines) == 4
    assert lines[2:] == ["", "Rest of the resources: kmeshctl get meshes --offset 1 --size 1"]
    last = connected("get", "meshes", "--size", "1", "--offset", str(total - 1))
    assert len(last.stdout.splitlines()) == 2


def test_unknown_type_lists_valid_ones(connected) -> None:
    result = connected("get", "meshez")
    assert result.returncode == 1
    assert result.stderr.startswith('Error: unknown resource type "meshez"; valid types: ')
    assert "dataplanes" in result.stderr
