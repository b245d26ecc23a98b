"""ProxyConfig as a wire message: versions are content digests, newer fields are ignored by older readers,
and the batch generator gives exactly the per-proxy results."""

from __future__ import annotations

import msgspec

from kmesh.proxyconfig import Endpoint, MeshSnapshot, ProxyConfig, generate_sidecar, generate_sidecars, seal

from .world import SERVICE, allow_all, dataplane, inbound, ingress, mesh, outbound

DATAPLANES = (
    dataplane("web-1", "10.0.0.1", [inbound("web", 8080)], [outbound("backend", 10001)]),
    dataplane("backend-1", "10.0.0.2", [inbound("backend", 9090)], [outbound("db", 10002)]),
    dataplane("db-1", "10.0.0.3", [inbound("db", 5432, ready=False)]),
)
SNAPSHOT = MeshSnapshot(
    mesh=mesh(),
    dataplanes=DATAPLANES,
    zone_ingresses=(
        ingress("zi-2", "zone-2", advertised=("34.0.0.2", 10001), services=[({SERVICE: "db"}, 2)]),
    ),
    policies=(allow_all(),),
)


def test_the_version_is_a_digest_of_the_content() -> None:
    config = generate_sidecar(SNAPSHOT, "zone-1", DATAPLANES[0])
    assert len(config.version) == 16
    assert seal(config) == config  # resealing an unchanged config keeps its version
    changed = seal(msgspec.structs.replace(config, notes=["something changed"]))
    assert changed.version != config.version


def test_an_older_reader_ignores_fields_it_does_not_know() -> None:
    config = generate_sidecar(SNAPSHOT, "zone-1", DATAPLANES[1])
    doc = msgspec.to_builtins(config)
    doc["future_field"] = {"anything": [1, 2]}
    doc["clusters"][0]["endpoints"][0]["future_endpoint_field"] = True
    assert msgspec.msgpack.decode(msgspec.msgpack.encode(doc), type=ProxyConfig) == config


def test_a_minimal_message_decodes_with_defaults() -> None:
    minimal = {"proxy_type": "ingress", "name": "zi-1", "zone": "zone-1"}
    config = msgspec.msgpack.decode(msgspec.msgpack.encode(minimal), type=ProxyConfig)
    assert (config.clusters, config.ingress, config.notes) == ([], None, [])
    assert msgspec.convert({"address": "10.0.0.1", "port": 1}, Endpoint) == Endpoint(
        address="10.0.0.1", port=1
    )


def test_batch_generation_matches_one_by_one() -> None:
    batch = generate_sidecars(SNAPSHOT, "zone-1")
    assert sorted(batch) == ["backend-1", "db-1", "web-1"]
    for resource in DATAPLANES:
        assert batch[resource.meta.name] == generate_sidecar(SNAPSHOT, "zone-1", resource)
    assert list(generate_sidecars(SNAPSHOT, "zone-1", DATAPLANES[:1])) == ["web-1"]
