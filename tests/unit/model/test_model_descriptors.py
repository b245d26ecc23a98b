"""The descriptor table: every type registered once, with the scope, sync direction, path and names that
KDS, the API and kmeshctl are generated from."""

from __future__ import annotations

from collections.abc import Iterator

import msgspec
import msgspec.inspect as mi
import pytest

from kmesh.model import (
    KdsDirection,
    ResourceDescriptor,
    Scope,
    Spec,
    all_descriptors,
    by_cli_name,
    by_path,
    descriptor,
    register,
)
from kmesh.model.types import PolicySpec

G, M = Scope.GLOBAL, Scope.MESH
DOWN, UP, NONE = KdsDirection.GLOBAL_TO_ZONES, KdsDirection.ZONE_TO_GLOBAL, KdsDirection.NONE

# name: (scope, kds, path, flat, read_only, policy)
EXPECTED = {
    "Mesh": (G, DOWN, "meshes", True, False, False),
    "Zone": (G, NONE, "zones", True, False, False),
    "ZoneInsight": (G, NONE, "zone-insights", True, True, False),
    "Dataplane": (M, UP, "dataplanes", True, False, False),
    "DataplaneInsight": (M, UP, "dataplane-insights", True, True, False),
    "ZoneIngress": (G, UP, "zoneingresses", True, False, False),
    "ZoneIngressInsight": (G, UP, "zone-ingress-insights", True, True, False),
    "ZoneEgress": (G, UP, "zoneegresses", True, False, False),
    "ZoneEgressInsight": (G, UP, "zone-egress-insights", True, True, False),
    "Secret": (M, DOWN, "secrets", True, False, False),
    "GlobalSecret": (G, NONE, "global-secrets", True, False, False),
    "MeshTrafficPermission": (M, DOWN, "meshtrafficpermissions", False, False, True),
    "MeshRetry": (M, DOWN, "meshretries", False, False, True),
    "MeshHealthCheck": (M, DOWN, "meshhealthchecks", False, False, True),
    "MeshCircuitBreaker": (M, DOWN, "meshcircuitbreakers", False, False, True),
    "MeshTimeout": (M, DOWN, "meshtimeouts", False, False, True),
    "MeshLoadBalancingStrategy": (M, DOWN, "meshloadbalancingstrategies", False, False, True),
    "MeshTCPRoute": (M, DOWN, "meshtcproutes", False, False, True),
    "MeshHTTPRoute": (M, DOWN, "meshhttproutes", False, False, True),
    "MeshFaultInjection": (M, DOWN, "meshfaultinjections", False, False, True),
    # No targetRef, so not a policy for kmeshctl's columns; still created on the global and sent down.
    "MeshExternalService": (M, DOWN, "meshexternalservices", False, False, False),
    "MeshRateLimit": (M, DOWN, "meshratelimits", False, False, True),
}


def test_every_type_is_registered_as_specified() -> None:
    table = {d.name: d for d in all_descriptors()}
    assert set(table) == set(EXPECTED)
    for name, (scope, kds, path, flat, read_only, policy) in EXPECTED.items():
        d = table[name]
        assert (d.scope, d.kds, d.path, d.flat, d.read_only, d.policy) == (
            scope,
            kds,
            path,
            flat,
            read_only,
            policy,
        ), name


def test_only_zone_ingresses_are_passed_on_to_other_zones() -> None:
    forwarded = [d.name for d in all_descriptors() if d.kds_to_other_zones]
    assert forwarded == ["ZoneIngress"]
    assert descriptor("ZoneIngress").kds is UP


def test_names_and_paths_are_unique() -> None:
    descs = list(all_descriptors())
    paths = [d.path for d in descs]
    assert len(paths) == len(set(paths))
    cli = [n for d in descs for n in (d.singular, d.plural, *d.short_names)]
    assert len(cli) == len(set(cli))
    assert all(n == n.lower() for n in cli)


def test_lookups() -> None:
    for d in all_descriptors():
        assert descriptor(d.name) is d
        assert by_path(d.path) is d
        for n in (d.singular, d.plural, *d.short_names):
            assert by_cli_name(n) is d
            assert by_cli_name(n.upper()) is d
    assert by_cli_name("dp") is descriptor("Dataplane")
    assert by_cli_name("zone-ingresses") is by_cli_name("zoneingresses") is descriptor("ZoneIngress")
    assert by_cli_name("zone-egress") is by_cli_name("zoneegress") is descriptor("ZoneEgress")
    assert by_cli_name("mtp") is descriptor("MeshTrafficPermission")
    assert by_cli_name("meshloadbalancingstrategies") is descriptor("MeshLoadBalancingStrategy")
    assert by_cli_name("nothing") is None
    assert by_path("nothing") is None
    with pytest.raises(KeyError):
        descriptor("Nothing")


def test_policies_share_the_policy_base() -> None:
    for d in all_descriptors():
        assert issubclass(d.spec_type, Spec)
        assert issubclass(d.spec_type, PolicySpec) == d.policy, d.name
        if d.policy:
            assert d.singular == d.name.lower()
            assert d.plural == d.path


def test_registering_a_taken_name_fails() -> None:
    mesh = descriptor("Mesh")
    with pytest.raises(ValueError, match="twice"):
        register(mesh)
    clash = ResourceDescriptor(
        name="Other", spec_type=Spec, scope=Scope.GLOBAL, kds=NONE, path="others", singular="dp", plural="x"
    )
    with pytest.raises(ValueError, match="taken"):
        register(clash)
    assert by_cli_name("x") is None  # nothing half-registered


def _structs(info: mi.Type, seen: set[type]) -> Iterator[mi.StructType]:
    if isinstance(info, mi.StructType):
        if info.cls in seen:
            return
        seen.add(info.cls)
        yield info
        for f in info.fields:
            yield from _structs(f.type, seen)
    elif isinstance(info, mi.Metadata):
        yield from _structs(info.type, seen)
    elif isinstance(info, mi.UnionType):
        for t in info.types:
            yield from _structs(t, seen)
    elif isinstance(info, mi.ListType | mi.VarTupleType):
        yield from _structs(info.item_type, seen)
    elif isinstance(info, mi.DictType):
        yield from _structs(info.value_type, seen)


@pytest.mark.parametrize("desc", list(all_descriptors()), ids=lambda d: d.name)
def test_every_struct_is_frozen_strict_and_camel_case(desc: ResourceDescriptor) -> None:
    for info in _structs(mi.type_info(desc.spec_type), set()):
        cls = getattr(info.cls, "__origin__", info.cls)  # From[Conf] -> From
        config = cls.__struct_config__
        assert config.frozen, info.cls
        assert config.forbid_unknown_fields, info.cls
        assert config.omit_defaults, info.cls
        for f in info.fields:
            # camelCase on the wire: no underscores (``from_`` is renamed ``from``).
            assert "_" not in f.encode_name, (info.cls, f.name)


@pytest.mark.parametrize("desc", list(all_descriptors()), ids=lambda d: d.name)
def test_empty_specs_encode_and_decode(desc: ResourceDescriptor) -> None:
    info = mi.type_info(desc.spec_type)
    assert isinstance(info, mi.StructType)
    if any(f.required for f in info.fields):
        with pytest.raises(TypeError):
            desc.spec_type()
        return
    spec = desc.spec_type()
    assert msgspec.json.decode(msgspec.json.encode(spec), type=desc.spec_type) == spec
