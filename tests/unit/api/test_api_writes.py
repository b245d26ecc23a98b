"""What a write must pass: body decoding, identity against the URL, and who may write what."""

from __future__ import annotations

import pytest

from kmesh.api._responses import ApiError
from kmesh.api._writes import Mode, decode_body, parse_mode, reconcile_identity, write_refusal
from kmesh.errors import ConfigError
from kmesh.model import KdsDirection, ResourceDescriptor, Scope, Spec, descriptor


class _Spec(Spec, frozen=True, kw_only=True, forbid_unknown_fields=True):
    pass


def _desc(
    *, scope: Scope = Scope.MESH, kds: KdsDirection = KdsDirection.NONE, read_only: bool = False
) -> ResourceDescriptor:
    # Not registered: a descriptor value is enough for these pure functions.
    return ResourceDescriptor(
        name="Thing",
        spec_type=_Spec,
        scope=scope,
        kds=kds,
        path="things",
        singular="thing",
        plural="things",
        read_only=read_only,
    )


def test_decode_json_and_yaml() -> None:
    assert decode_body(b'{"type": "Mesh", "name": "a"}', "application/json") == {"type": "Mesh", "name": "a"}
    doc = decode_body(b"type: Mesh\nname: a\ncreationTime: 2024-01-02T03:04:05Z\n", "application/yaml")
    # Timestamps stay strings, as they would be in JSON.
    assert doc == {"type": "Mesh", "name": "a", "creationTime": "2024-01-02T03:04:05Z"}


@pytest.mark.parametrize(
    ("raw", "content_type", "reason"),
    [
        (b"", "application/json", "empty"),
        (b"{not json", "application/json", "not valid JSON"),
        (b"[1, 2]", "application/json", "must be an object"),
        (b"a: [1\n", "application/yaml", "not valid YAML"),
        (b"a: 1\n---\nb: 2\n", "text/yaml", "exactly one"),
        (b"\xff\xfe: x", "application/yaml", "not UTF-8"),
    ],
)
def test_decode_refusals_name_the_body(raw: bytes, content_type: str, reason: str) -> None:
    with pytest.raises(ApiError) as exc:
        decode_body(raw, content_type)
    assert exc.value.status == 400
    [violation] = exc.value.invalid_parameters
    assert violation.field == "body"
    assert reason in violation.reason


def test_identity_is_filled_from_the_url() -> None:
    doc = reconcile_identity({"spec": {}}, _desc(), "web", "default")
    assert doc == {"type": "Thing", "name": "web", "mesh": "default", "spec": {}}


def test_identity_mismatches_name_each_field() -> None:
    with pytest.raises(ApiError) as exc:
        reconcile_identity({"type": "Other", "name": "db", "mesh": "prod"}, _desc(), "web", "default")
    assert exc.value.status == 400
    assert {v.field for v in exc.value.invalid_parameters} == {"type", "name", "mesh"}


def test_global_type_with_a_mesh_is_refused_and_empty_mesh_dropped() -> None:
    desc = _desc(scope=Scope.GLOBAL)
    assert reconcile_identity({"mesh": ""}, desc, "z1", None) == {"type": "Thing", "name": "z1"}
    with pytest.raises(ApiError) as exc:
        reconcile_identity({"mesh": "default"}, desc, "z1", None)
    assert [v.field for v in exc.value.invalid_parameters] == ["mesh"]


def test_read_only_types_are_405_everywhere() -> None:
    for mode in Mode:
        refusal = write_refusal(_desc(read_only=True), mode, "x")
        assert refusal is not None
        assert refusal.status == 405
        assert refusal.headers == {"Allow": "GET"}


def test_zone_refuses_global_to_zones_types() -> None:
    desc = _desc(kds=KdsDirection.GLOBAL_TO_ZONES)
    refusal = write_refusal(desc, Mode.ZONE, "allow-all")
    assert refusal is not None
    assert refusal.status == 400
    assert "is managed by the global control plane; apply it there" in refusal.details
    assert write_refusal(desc, Mode.GLOBAL, "allow-all") is None
    assert write_refusal(desc, Mode.STANDALONE, "allow-all") is None


def test_global_refuses_zone_owned_types() -> None:
    desc = _desc(kds=KdsDirection.ZONE_TO_GLOBAL)
    refusal = write_refusal(desc, Mode.GLOBAL, "web-1")
    assert refusal is not None
    assert refusal.status == 400
    assert "managed by zone control planes" in refusal.details
    assert write_refusal(desc, Mode.ZONE, "web-1") is None
    assert write_refusal(desc, Mode.STANDALONE, "web-1") is None


def test_the_real_mesh_type_is_refused_on_a_zone() -> None:
    assert write_refusal(descriptor("Mesh"), Mode.ZONE, "default") is not None


def test_parse_mode() -> None:
    assert parse_mode("global") is Mode.GLOBAL
    with pytest.raises(ConfigError, match="remote"):
        parse_mode("remote")
