"""Every file in examples/resources is a valid stream that kmeshctl apply -f would take."""

from __future__ import annotations

from pathlib import Path

import pytest

from kmesh.model import all_descriptors, load_documents, parse_resource, to_document
from kmesh.model.types import DataplaneSpec, MeshSpec, ZoneIngressSpec

EXAMPLES = Path(__file__).resolve().parents[3] / "examples" / "resources"
EXAMPLE_FILES = sorted(EXAMPLES.glob("*.yaml"))


def test_the_promised_examples_exist() -> None:
    names = {p.name for p in EXAMPLE_FILES}
    assert {
        "mesh.yaml",
        "dataplane.yaml",
        "zone.yaml",
        "zoneingress.yaml",
        "zoneegress.yaml",
        "policies.yaml",
        "secret.yaml",
    } <= names


@pytest.mark.parametrize("path", EXAMPLE_FILES, ids=lambda p: p.name)
def test_example_parses_and_round_trips(path: Path) -> None:
    resources = load_documents(path.read_text(), source=path.name)
    assert resources
    for resource in resources:
        again = parse_resource(to_document(resource))
        assert again.spec == resource.spec
        assert again.meta.labels == resource.meta.labels
        assert again.key == resource.key


def test_policies_example_has_one_of_each_policy_in_mesh_default() -> None:
    resources = load_documents((EXAMPLES / "policies.yaml").read_text(), source="policies.yaml")
    types = [r.meta.type for r in resources]
    wanted = [
        "MeshTrafficPermission",
        "MeshRetry",
        "MeshHealthCheck",
        "MeshCircuitBreaker",
        "MeshTimeout",
        "MeshLoadBalancingStrategy",
        "MeshTCPRoute",
        "MeshHTTPRoute",
        "MeshFaultInjection",
        "MeshExternalService",
        "MeshRateLimit",
    ]
    assert sorted(types) == sorted(wanted)
    assert {r.meta.mesh for r in resources} == {"default"}
    spec_form = {d.name for d in all_descriptors() if not d.flat}
    assert set(types) == spec_form


def test_mesh_example_has_builtin_ca_with_rotation_and_locality() -> None:
    (mesh,) = load_documents((EXAMPLES / "mesh.yaml").read_text(), source="mesh.yaml")
    spec = mesh.spec
    assert isinstance(spec, MeshSpec)
    backend = spec.mtls_backend
    assert backend is not None
    assert (backend.name, backend.type) == ("ca-1", "builtin")
    assert backend.dp_cert is not None
    assert backend.dp_cert.rotation is not None
    assert backend.dp_cert.rotation.expiration == "1d"
    assert backend.conf is not None
    assert backend.conf.ca_cert is not None
    assert backend.conf.ca_cert.rsa_bits == 4096
    assert spec.locality_aware


def test_dataplane_example_has_inbound_and_outbound() -> None:
    (dp,) = load_documents((EXAMPLES / "dataplane.yaml").read_text(), source="dataplane.yaml")
    assert isinstance(dp.spec, DataplaneSpec)
    assert [i.service for i in dp.spec.networking.inbound] == ["web"]
    assert [o.service_name for o in dp.spec.networking.outbound] == ["backend"]


def test_zoneingress_example_advertises_its_public_address() -> None:
    (ingress,) = load_documents((EXAMPLES / "zoneingress.yaml").read_text(), source="zoneingress.yaml")
    assert isinstance(ingress.spec, ZoneIngressSpec)
    assert ingress.spec.networking.public_address == ("203.0.113.10", 443)
