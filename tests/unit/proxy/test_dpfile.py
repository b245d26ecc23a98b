"""``kmesh-proxy --dataplane-file``: the proxy's own resource, read, templated and validated."""

from __future__ import annotations

from pathlib import Path

import pytest

from kmesh._template import UnsetVariable
from kmesh.errors import ConfigError, InvalidResource, KmeshError
from kmesh.model import parse_resource
from kmesh.proxy import _dpfile
from kmesh.proxy._dpfile import dataplane_document, load_dataplane_file

DATAPLANE = """\
type: Dataplane
mesh: default
name: {{ name }}
networking:
  address: {{ address }}
  inbound:
    - port: 10001
      servicePort: 8080
      tags:
        kuma.io/service: web
        kuma.io/protocol: http
  outbound:
    - port: 20001
      tags:
        kuma.io/service: backend
"""

ZONE_INGRESS = """\
type: ZoneIngress
name: ingress-1
networking:
  address: 10.0.0.5
  port: 10001
  advertisedAddress: 203.0.113.7
  advertisedPort: 30001
"""

ZONE_EGRESS = """\
type: ZoneEgress
name: egress-1
networking:
  address: 10.0.0.6
  port: 10002
"""

VARS = {"name": "web-1", "address": "10.0.0.4"}


def test_dataplane_with_inbound_and_outbound_and_variables(tmp_path: Path) -> None:
    path = tmp_path / "dp.yaml"
    path.write_text(DATAPLANE, encoding="utf-8")

    doc = load_dataplane_file(path, VARS, proxy_type="sidecar")

    assert doc["type"] == "Dataplane"
    assert doc["mesh"] == "default"
    assert doc["name"] == "web-1"
    networking = doc["networking"]
    assert networking["address"] == "10.0.0.4"
    assert networking["inbound"] == [
        {
            "port": 10001,
            "servicePort": 8080,
            "tags": {"kuma.io/service": "web", "kuma.io/protocol": "http"},
        }
    ]
    assert networking["outbound"] == [{"port": 20001, "tags": {"kuma.io/service": "backend"}}]
    # What the proxy sends in its Hello is what the control plane's admission parses.
    assert parse_resource(doc).meta.name == "web-1"


def test_zone_ingress() -> None:
    doc = dataplane_document(ZONE_INGRESS, {}, source="ingress.yaml", proxy_type="ingress")
    assert doc["type"] == "ZoneIngress"
    assert doc["name"] == "ingress-1"
    assert "mesh" not in doc
    assert doc["networking"] == {
        "address": "10.0.0.5",
        "port": 10001,
        "advertisedAddress": "203.0.113.7",
        "advertisedPort": 30001,
    }


def test_zone_egress() -> None:
    doc = dataplane_document(ZONE_EGRESS, {}, source="egress.yaml", proxy_type="egress")
    assert doc == {
        "type": "ZoneEgress",
        "name": "egress-1",
        "networking": {"address": "10.0.0.6", "port": 10002},
    }


def test_leading_and_trailing_empty_documents_are_ignored() -> None:
    text = "---\n" + ZONE_EGRESS + "---\n"
    doc = dataplane_document(text, {}, source="egress.yaml", proxy_type="egress")
    assert doc["name"] == "egress-1"


def test_placeholders_without_blanks_and_unused_variables() -> None:
    text = ZONE_EGRESS.replace("egress-1", "{{name}}")
    doc = dataplane_document(text, {"name": "egress-7", "unused": "x"}, source="e.yaml", proxy_type="egress")
    assert doc["name"] == "egress-7"


# --- errors: each a KmeshError naming the file and the problem -------------------------------------------


def test_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "nope.yaml"
    with pytest.raises(ConfigError) as info:
        load_dataplane_file(path, {}, proxy_type="sidecar")
    message = str(info.value)
    assert message.startswith(f"{path}: no such file")
    assert "--dataplane-file" in message
    assert "Dataplane" in message


def test_a_directory_is_not_a_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="is a directory"):
        load_dataplane_file(tmp_path, {}, proxy_type="sidecar")


def test_read_error_is_translated(monkeypatch: pytest.MonkeyPatch) -> None:
    # The same branch as a file without read permission, which root (CI containers) cannot provoke.
    def refuse(*_args: object, **_kwargs: object) -> None:
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(_dpfile, "open", refuse, raising=False)
    with pytest.raises(ConfigError) as info:
        load_dataplane_file("dp.yaml", {}, proxy_type="egress")
    assert str(info.value) == "dp.yaml: cannot read it: Permission denied"


def test_file_that_is_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "dp.yaml"
    path.write_bytes(b"type: ZoneEgress\nname: \xff\n")
    with pytest.raises(ConfigError) as info:
        load_dataplane_file(path, {}, proxy_type="egress")
    assert str(info.value).startswith(f"{path}: cannot read it: it is not UTF-8 text")
    assert "at byte 23" in str(info.value)


def test_unset_variable_names_file_line_and_flag(tmp_path: Path) -> None:
    path = tmp_path / "dp.yaml"
    path.write_text(DATAPLANE, encoding="utf-8")
    with pytest.raises(UnsetVariable) as info:
        load_dataplane_file(path, {"name": "web-1"}, proxy_type="sidecar")
    assert str(info.value) == (
        f'{path}, line 5: variable "address" is not set; pass --dataplane-var address=VALUE'
    )
    assert isinstance(info.value, KmeshError)


def test_yaml_syntax_error_names_the_line() -> None:
    text = "type: ZoneEgress\nname: egress-1\nnetworking:\n  address: [10.0.0.6\n  port: 1\n"
    with pytest.raises(InvalidResource) as info:
        dataplane_document(text, {}, source="egress.yaml", proxy_type="egress")
    assert info.value.source == "egress.yaml"
    assert info.value.line is not None
    assert str(info.value).startswith(f"egress.yaml, line {info.value.line}: invalid YAML")


def test_empty_file_holds_no_resource() -> None:
    with pytest.raises(ConfigError) as info:
        dataplane_document("# nothing\n---\n", {}, source="dp.yaml", proxy_type="sidecar")
    assert str(info.value) == "dp.yaml: holds no resource; it must describe this proxy as one Dataplane"


def test_more_than_one_document() -> None:
    text = ZONE_EGRESS + "---\n" + ZONE_EGRESS.replace("egress-1", "egress-2")
    with pytest.raises(ConfigError) as info:
        dataplane_document(text, {}, source="egress.yaml", proxy_type="egress")
    assert str(info.value) == (
        "egress.yaml: holds 2 resources (ZoneEgress, ZoneEgress); it must hold exactly one, "
        "the proxy's ZoneEgress"
    )


@pytest.mark.parametrize(
    ("text", "proxy_type", "expected"),
    [
        (ZONE_INGRESS, "sidecar", "dp.yaml: a ZoneIngress needs --proxy-type ingress, not sidecar"),
        (ZONE_EGRESS, "ingress", "dp.yaml: a ZoneEgress needs --proxy-type egress, not ingress"),
        (DATAPLANE, "egress", "dp.yaml: a Dataplane needs --proxy-type sidecar, not egress"),
        (
            "type: Mesh\nname: default\n",
            "sidecar",
            "dp.yaml: a Mesh does not describe a proxy; a sidecar proxy is described by a Dataplane",
        ),
    ],
)
def test_wrong_type_for_the_proxy_type(text: str, proxy_type: str, expected: str) -> None:
    with pytest.raises(ConfigError) as info:
        dataplane_document(text, VARS, source="dp.yaml", proxy_type=proxy_type)
    assert str(info.value) == expected


def test_unknown_proxy_type() -> None:
    with pytest.raises(ConfigError, match=r"--proxy-type 'gateway' is not one of sidecar, ingress, egress"):
        dataplane_document(ZONE_EGRESS, {}, source="dp.yaml", proxy_type="gateway")


def test_invalid_field_names_document_line_and_field() -> None:
    text = DATAPLANE.replace("servicePort: 8080", "servicePort: 70000")
    with pytest.raises(InvalidResource) as info:
        dataplane_document(text, VARS, source="dp.yaml", proxy_type="sidecar")
    assert info.value.source == "dp.yaml, document 1"
    assert info.value.line == 8
    assert info.value.resource == 'Dataplane "web-1"'
    assert "networking.inbound[0].servicePort" in str(info.value)


def test_unknown_field_is_refused() -> None:
    text = ZONE_EGRESS + "  bogus: 1\n"
    with pytest.raises(InvalidResource) as info:
        dataplane_document(text, {}, source="egress.yaml", proxy_type="egress")
    assert "networking.bogus" in str(info.value)
    assert info.value.line == 6


def test_missing_inbound_is_refused() -> None:
    text = "type: Dataplane\nmesh: default\nname: web-1\nnetworking:\n  address: 10.0.0.4\n"
    with pytest.raises(InvalidResource, match=r"networking\.inbound: at least one inbound is required"):
        dataplane_document(text, {}, source="dp.yaml", proxy_type="sidecar")


def test_duplicate_key_is_refused() -> None:
    text = ZONE_EGRESS + "name: egress-2\n"
    with pytest.raises(InvalidResource) as info:
        dataplane_document(text, {}, source="egress.yaml", proxy_type="egress")
    assert "name: duplicate key" in str(info.value)
    assert info.value.line == 6


def test_a_scalar_document_is_refused() -> None:
    with pytest.raises(InvalidResource, match="expected a mapping"):
        dataplane_document("just text\n", {}, source="dp.yaml", proxy_type="sidecar")
