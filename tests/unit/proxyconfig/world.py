"""Builders for the resources a zone control plane holds, written as Kuma Universal documents and parsed
(and so validated) by ``parse_resource``, plus the golden-file renderer of generated configs."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import msgspec
import yaml

from kmesh.model import Resource, parse_resource
from kmesh.proxyconfig import ProxyConfig

MESH = "default"
SERVICE = "kuma.io/service"
ZONE_TAG = "kuma.io/zone"


def from_zone(resource: Resource, zone: str) -> Resource:
    """``resource`` as a zone CP stores it when it came from another zone (through the global)."""
    return msgspec.structs.replace(resource, meta=msgspec.structs.replace(resource.meta, zone=zone))


def mesh(
    *,
    name: str = MESH,
    mtls: bool = True,
    locality: bool = False,
    zone_egress: bool = False,
    forbid_external: bool = False,
) -> Resource:
    doc: dict[str, Any] = {"type": "Mesh", "name": name}
    if mtls:
        doc["mtls"] = {"enabledBackend": "ca-1", "backends": [{"name": "ca-1", "type": "builtin"}]}
    routing = {
        "localityAwareLoadBalancing": locality,
        "zoneEgress": zone_egress,
        "defaultForbidMeshExternalServiceAccess": forbid_external,
    }
    doc["routing"] = {k: v for k, v in routing.items() if v}
    return parse_resource(doc)


def inbound(service: str, port: int, *, ready: bool | None = True, **tags: str) -> dict[str, Any]:
    """An inbound document; ``ready=None`` leaves health out (healthy by Kuma's rule)."""
    doc: dict[str, Any] = {"port": port, "tags": {SERVICE: service, **tags}}
    if ready is not None:
        doc["health"] = {"ready": ready}
    return doc


def outbound(service: str, port: int, **tags: str) -> dict[str, Any]:
    return {"port": port, "tags": {SERVICE: service, **tags}}


def dataplane(
    name: str,
    address: str,
    inbounds: Sequence[Mapping[str, Any]],
    outbounds: Sequence[Mapping[str, Any]] = (),
    *,
    mesh_name: str = MESH,
    labels: Mapping[str, str] | None = None,
) -> Resource:
    doc: dict[str, Any] = {
        "type": "Dataplane",
        "mesh": mesh_name,
        "name": name,
        "networking": {"address": address, "inbound": list(inbounds), "outbound": list(outbounds)},
    }
    if labels:
        doc["labels"] = dict(labels)
    return parse_resource(doc)


def ingress(
    name: str,
    zone: str,
    *,
    advertised: tuple[str, int] | None,
    services: Iterable[tuple[Mapping[str, str], int]] = (),
    mesh_name: str = MESH,
) -> Resource:
    """A ZoneIngress of another ``zone`` as relayed by the global; ``services`` are (tags, instances)."""
    networking: dict[str, Any] = {"address": "192.168.0.1", "port": 10001}
    if advertised is not None:
        networking["advertisedAddress"], networking["advertisedPort"] = advertised
    doc = {
        "type": "ZoneIngress",
        "name": name,
        "zone": zone,
        "networking": networking,
        "availableServices": [
            {"mesh": mesh_name, "tags": {ZONE_TAG: zone, **tags}, "instances": count}
            for tags, count in services
        ],
    }
    return from_zone(parse_resource(doc), zone)


def local_ingress(name: str = "zi-1") -> Resource:
    return parse_resource(
        {"type": "ZoneIngress", "name": name, "networking": {"address": "10.0.9.1", "port": 10001}}
    )


def egress(name: str = "ze-1", address: str = "10.0.8.1") -> Resource:
    return parse_resource(
        {"type": "ZoneEgress", "name": name, "networking": {"address": address, "port": 10002}}
    )


def policy(type_name: str, name: str, spec: Mapping[str, Any], *, mesh_name: str = MESH) -> Resource:
    return parse_resource({"type": type_name, "mesh": mesh_name, "name": name, "spec": dict(spec)})


def allow_all() -> Resource:
    return policy(
        "MeshTrafficPermission",
        "allow-all",
        {
            "targetRef": {"kind": "Mesh"},
            "from": [{"targetRef": {"kind": "Mesh"}, "default": {"action": "Allow"}}],
        },
    )


def render(config: ProxyConfig) -> str:
    """The golden form: YAML of the builtins, keys sorted, block style."""
    return yaml.safe_dump(msgspec.to_builtins(config), sort_keys=True, default_flow_style=False)
