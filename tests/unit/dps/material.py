"""Mesh material for unit tests: a mesh with a builtin CA kept in its Secrets, dataplane token keys, and
documents of each proxy type. Keys are made once per module import (ECDSA P-256 is fast)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from kmesh.model import Resource, parse_resource
from kmesh.pki import CaBundle, ca_secrets, generate_ca
from kmesh.tokens import SigningKey, dataplane_signing_key_secret, generate_signing_key, issue_dataplane_token

NOW = datetime(2025, 1, 1, tzinfo=UTC)
NOW_S = NOW.timestamp()
ZONE = "zone-1"


def mesh(
    name: str = "default",
    *,
    backends: list[dict[str, Any]] | None = None,
    enabled: str | None = "ca-1",
    **extra: Any,
) -> Resource:
    doc: dict[str, Any] = {"type": "Mesh", "name": name, **extra}
    if enabled is not None:
        doc["mtls"] = {
            "enabledBackend": enabled,
            "backends": backends if backends is not None else [{"name": "ca-1", "type": "builtin"}],
        }
    return parse_resource(doc)


def ca(mesh_name: str = "default", backend: str = "ca-1") -> CaBundle:
    return generate_ca(mesh_name, backend, now=NOW)


def ca_secret_resources(
    mesh_name: str = "default", backend: str = "ca-1", bundle: CaBundle | None = None
) -> list[Resource]:
    return ca_secrets(mesh_name, backend, bundle or ca(mesh_name, backend))


def signing(mesh_name: str = "default") -> tuple[SigningKey, Resource]:
    key = generate_signing_key()
    return key, dataplane_signing_key_secret(key, mesh=mesh_name, serial=1)


def token(key: SigningKey, mesh_name: str = "default", **claims: Any) -> str:
    return issue_dataplane_token(key, mesh=mesh_name, valid_for_s=3600, now=NOW_S, **claims)


def dataplane_doc(
    name: str = "web-1",
    mesh_name: str = "default",
    *,
    service: str = "web",
    tags: dict[str, str] | None = None,
) -> dict[str, Any]:
    return {
        "type": "Dataplane",
        "mesh": mesh_name,
        "name": name,
        "networking": {
            "address": "10.0.0.1",
            "inbound": [{"port": 8080, "tags": {"kuma.io/service": service, **(tags or {})}}],
        },
    }


def ingress_doc(name: str = "ingress-1", **extra: Any) -> dict[str, Any]:
    return {
        "type": "ZoneIngress",
        "name": name,
        "networking": {"address": "10.0.9.1", "port": 10001},
        **extra,
    }


def egress_doc(name: str = "egress-1") -> dict[str, Any]:
    return {"type": "ZoneEgress", "name": name, "networking": {"address": "10.0.9.2", "port": 10002}}
