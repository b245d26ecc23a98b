"""The codec: document shape, round trips, stored bytes, resources built in code."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from kmesh.errors import InvalidResource
from kmesh.model import (
    Meta,
    Resource,
    decode_spec,
    encode_spec,
    new_resource,
    parse_resource,
    to_document,
    validate_resource,
)
from kmesh.model.types import (
    DataplaneSpec,
    MeshRetrySpec,
    MeshSpec,
    MeshTrafficPermissionSpec,
    SecretSpec,
    ZoneSpec,
)
from kmesh.model.types.dataplane import DataplaneNetworking, Health, Inbound
from kmesh.model.types.targetref import From, TargetRef
from kmesh.model.types.traffic_permission import TrafficPermissionConf

DocError = Callable[[object], InvalidResource]

MTP_DOC = {
    "type": "MeshTrafficPermission",
    "mesh": "default",
    "name": "allow-web",
    "labels": {"team": "payments"},
    "spec": {
        "targetRef": {"kind": "MeshService", "name": "backend"},
        "from": [{"targetRef": {"kind": "Mesh"}, "default": {"action": "Allow"}}],
    },
}


def test_parse_policy_document() -> None:
    r = parse_resource(MTP_DOC)
    assert r.key.type == "MeshTrafficPermission"
    assert (r.meta.mesh, r.meta.name, r.meta.zone, r.meta.version) == ("default", "allow-web", "", 0)
    assert r.meta.labels == {"team": "payments"}
    assert isinstance(r.spec, MeshTrafficPermissionSpec)
    assert r.spec.from_[0].default.action == "Allow"


def test_document_shape_of_a_policy() -> None:
    r = parse_resource(MTP_DOC)
    created = datetime(2024, 5, 1, 12, 0, 0, tzinfo=UTC)
    stored = msgspec.structs.replace(
        r, meta=msgspec.structs.replace(r.meta, creation_time=created, modification_time=created)
    )
    doc = to_document(stored)
    assert list(doc) == ["type", "mesh", "name", "creationTime", "modificationTime", "labels", "spec"]
    assert doc["creationTime"] == "2024-05-01T12:00:00Z"
    assert doc["spec"] == MTP_DOC["spec"]
    json.dumps(doc)  # plain JSON data, nothing left for the API to convert


def test_document_shape_of_a_flat_global_type() -> None:
    doc = to_document(new_resource("Mesh", "default"))
    assert doc == {"type": "Mesh", "name": "default"}


def test_times_are_utc_rfc3339() -> None:
    east = timezone(timedelta(hours=2))
    meta = Meta(type="Zone", name="z", creation_time=datetime(2024, 1, 1, 2, 0, 0, 500, tzinfo=east))
    doc = to_document(Resource(meta=meta, spec=ZoneSpec()))
    assert doc["creationTime"] == "2024-01-01T00:00:00.000500Z"
    naive = Meta(type="Zone", name="z", modification_time=datetime(2024, 1, 1))
    assert to_document(Resource(meta=naive, spec=ZoneSpec()))["modificationTime"] == "2024-01-01T00:00:00Z"


def test_output_reapplies_times_are_ignored() -> None:
    doc = dict(
        MTP_DOC, creationTime="2024-05-01T12:00:00Z", modificationTime=datetime(2024, 5, 2, tzinfo=UTC)
    )
    r = parse_resource(doc)
    assert r.meta.creation_time is None
    assert r.meta.modification_time is None


def test_defaults_are_left_out_and_come_back() -> None:
    r = new_resource("Zone", "z")
    assert to_document(r) == {"type": "Zone", "name": "z"}
    assert parse_resource(to_document(r)).spec == ZoneSpec(enabled=True)
    off = new_resource("Zone", "z", ZoneSpec(enabled=False))
    assert to_document(off)["enabled"] is False


def test_labels_leave_the_document_when_empty() -> None:
    doc = to_document(new_resource("Secret", "s", SecretSpec(data="YQ=="), mesh="m"))
    assert doc == {"type": "Secret", "mesh": "m", "name": "s", "data": "YQ=="}


_label_name = st.from_regex(r"[a-z0-9]([a-z0-9._-]{0,20}[a-z0-9])?", fullmatch=True)
_dns_label = st.from_regex(r"[a-z0-9]([a-z0-9-]{0,10}[a-z0-9])?", fullmatch=True)
_label_key = st.one_of(_label_name, st.builds(lambda p, n: f"{p}.io/{n}", _dns_label, _label_name))
_label_value = st.from_regex(r"([A-Za-z0-9]([A-Za-z0-9._/-]{0,30}[A-Za-z0-9])?)?", fullmatch=True)


@given(labels=st.dictionaries(_label_key, _label_value, max_size=6))
def test_labels_round_trip(labels: dict[str, str]) -> None:
    r = new_resource(
        "MeshTrafficPermission", "p", parse_resource(MTP_DOC).spec, mesh="default", labels=labels
    )
    again = parse_resource(to_document(r))
    assert again.meta.labels == labels
    assert again.spec == r.spec


_service = st.from_regex(r"[a-z][a-z0-9-]{0,15}[a-z0-9]", fullmatch=True)


@given(
    ports=st.lists(st.integers(min_value=1, max_value=65535), min_size=1, max_size=5, unique=True),
    service=_service,
    ready=st.booleans(),
)
def test_dataplane_round_trip(ports: list[int], service: str, ready: bool) -> None:
    inbound = [Inbound(port=p, tags={"kuma.io/service": service}, health=Health(ready=ready)) for p in ports]
    spec = DataplaneSpec(networking=DataplaneNetworking(address="10.1.2.3", inbound=inbound))
    r = new_resource("Dataplane", "dp-1", spec, mesh="default")
    validate_resource(r)
    assert parse_resource(to_document(r)).spec == spec
    assert decode_spec("Dataplane", encode_spec(spec)) == spec


def test_encode_spec_is_compact_json_without_defaults() -> None:
    spec = MeshSpec()
    assert encode_spec(spec) == b"{}"
    retry = parse_resource(
        {
            "type": "MeshRetry",
            "mesh": "m",
            "name": "r",
            "spec": {"to": [{"targetRef": {"kind": "Mesh"}, "default": {"tcp": {"maxConnectAttempt": 3}}}]},
        }
    ).spec
    assert isinstance(retry, MeshRetrySpec)
    data = encode_spec(retry)
    assert json.loads(data) == {
        "to": [{"targetRef": {"kind": "Mesh"}, "default": {"tcp": {"maxConnectAttempt": 3}}}]
    }
    assert decode_spec("MeshRetry", data) == retry


def test_decode_spec_of_unknown_type_or_bad_bytes() -> None:
    with pytest.raises(KeyError):
        decode_spec("NoSuchType", b"{}")
    with pytest.raises(msgspec.DecodeError):
        decode_spec("Zone", b'{"enabled": "yes"}')


def test_new_resource_defaults_and_refusals() -> None:
    mesh = new_resource("Mesh", "default", labels={"a": "b"})
    assert mesh.spec == MeshSpec()
    assert mesh.meta.labels == {"a": "b"}
    with pytest.raises(ValueError, match="required fields"):
        new_resource("Dataplane", "dp", mesh="default")
    with pytest.raises(ValueError, match="mesh"):
        new_resource("Secret", "s")
    with pytest.raises(ValueError, match="mesh"):
        new_resource("Zone", "z", mesh="default")
    with pytest.raises(TypeError, match="ZoneSpec"):
        new_resource("Zone", "z", MeshSpec())
    with pytest.raises(KeyError):
        new_resource("Nope", "x")


def test_validate_resource_checks_names_labels_and_spec() -> None:
    spec = MeshTrafficPermissionSpec(
        target_ref=TargetRef(kind="Mesh", name="oops"),
        from_=[From(target_ref=TargetRef(kind="Mesh"), default=TrafficPermissionConf(action="Deny"))],
    )
    r = new_resource("MeshTrafficPermission", "bad name", spec, mesh="default", labels={"ok": "fine"})
    with pytest.raises(InvalidResource) as info:
        validate_resource(r)
    fields = [v.field for v in info.value.violations]
    assert fields == ["name", "spec.targetRef.name"]
    assert info.value.resource == 'MeshTrafficPermission "bad name"'
    validate_resource(new_resource("Zone", "fine"))


def test_validate_resource_refuses_a_spec_of_another_type() -> None:
    r = Resource(meta=Meta(type="Zone", name="z"), spec=MeshSpec())
    with pytest.raises(InvalidResource, match="expected ZoneSpec"):
        validate_resource(r)


def test_parse_collects_meta_and_spec_violations_together(doc_error: DocError) -> None:
    err = doc_error({"type": "Dataplane", "name": "", "networking": {"address": "10.0.0.1", "inbound": []}})
    fields = [v.field for v in err.violations]
    assert fields == ["name", "mesh", "networking.inbound"]
    assert err.resource == "Dataplane"


def test_parse_refuses_wrong_types_in_meta(doc_error: DocError) -> None:
    err = doc_error({"type": "Zone", "name": 7, "labels": {"a": 1}})
    assert [(v.field, v.reason) for v in err.violations] == [
        ("name", "expected str, got int"),
        ('labels["a"]', "expected str, got int"),
    ]
    err = doc_error({"type": 3, "name": "x"})
    assert err.violations[0].field == "type"
