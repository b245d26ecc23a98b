"""Golden configs for policies: MeshTrafficPermission allow/deny precedence, and the resilience policies
(MeshTimeout, MeshRetry, MeshCircuitBreaker, MeshHealthCheck, MeshLoadBalancingStrategy) merged per
cluster."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from kmesh.proxyconfig import MeshSnapshot, generate_sidecar

from .world import SERVICE, dataplane, inbound, ingress, mesh, outbound, policy, render

Golden = Callable[[str, str], None]


def mtp(name: str, target: dict[str, Any], *rules: tuple[dict[str, Any], str]) -> Any:
    entries = [{"targetRef": ref, "default": {"action": action}} for ref, action in rules]
    return policy("MeshTrafficPermission", name, {"targetRef": target, "from": entries})


def ids(*services: str) -> list[str]:
    return [f"spiffe://default/{s}" for s in services]


BACKEND = dataplane(
    "backend-1",
    "10.0.0.2",
    [inbound("backend", 9090, version="v1"), {**inbound("backend-admin", 9091), "name": "admin"}],
)


def test_traffic_permissions(golden: Golden) -> None:
    backend_svc = {"kind": "MeshService", "name": "backend"}
    snapshot = MeshSnapshot(
        mesh=mesh(),
        dataplanes=(
            BACKEND,
            dataplane("web-1", "10.0.0.1", [inbound("web", 8080)]),
            dataplane("batch-1", "10.0.0.3", [inbound("batch", 8080)]),
            dataplane("billing-1", "10.0.0.4", [inbound("billing", 8080, team="payments")]),
            dataplane("billing-2", "10.0.0.5", [inbound("billing", 8080, team="risk")]),
        ),
        zone_ingresses=(
            ingress("zi-2", "zone-2", advertised=("34.0.0.2", 10001), services=[({SERVICE: "orders"}, 1)]),
        ),
        policies=(
            mtp("mesh-default", {"kind": "Mesh"}, ({"kind": "Mesh"}, "Deny")),
            mtp(
                "payments-only",
                {"kind": "MeshService", "name": "backend-admin"},
                ({"kind": "MeshSubset", "tags": {"team": "payments"}}, "Allow"),
            ),
            # Listed first but more specific than the Mesh entry after it: web stays allowed.
            mtp(
                "allow-web",
                backend_svc,
                ({"kind": "MeshService", "name": "web"}, "Allow"),
                ({"kind": "Mesh"}, "Deny"),
            ),
            # Equally specific: the policy whose name sorts first is applied last and wins (Deny).
            mtp("a-deny-batch", backend_svc, ({"kind": "MeshService", "name": "batch"}, "Deny")),
            mtp("b-allow-batch", backend_svc, ({"kind": "MeshService", "name": "batch"}, "Allow")),
            mtp(
                "orders-trial",
                {"kind": "MeshServiceSubset", "name": "backend", "tags": {"version": "v1"}},
                ({"kind": "MeshService", "name": "orders"}, "AllowWithShadowDeny"),
            ),
        ),
    )
    config = generate_sidecar(snapshot, "zone-1", BACKEND)
    main, admin = config.inbounds
    assert main.allowed_spiffe_ids == ids("orders", "web")
    assert main.shadow_denied_spiffe_ids == ids("orders")
    assert main.denied_spiffe_ids == ids("backend", "backend-admin", "batch", "billing")
    assert main.default_action == "Deny"
    # Only some billing instances (team payments) are allowed on admin: the service is denied, with a note.
    assert admin.allowed_spiffe_ids == []
    assert "spiffe://default/billing" in admin.denied_spiffe_ids
    assert any(n.startswith("inbound admin: billing is denied") for n in config.notes)
    golden("traffic-permissions", render(config))


def test_resilience_policies(golden: Golden) -> None:
    web = dataplane(
        "web-1",
        "10.0.0.1",
        [inbound("web", 8080)],
        [outbound("backend", 10001), outbound("cache", 10002)],
        labels={"team": "a"},
    )
    to_backend = {"kind": "MeshService", "name": "backend"}
    snapshot = MeshSnapshot(
        mesh=mesh(),
        dataplanes=(
            web,
            dataplane("backend-1", "10.0.0.2", [inbound("backend", 9090)]),
            dataplane("cache-1", "10.0.0.3", [inbound("cache", 6379)]),
        ),
        policies=(
            policy(
                "MeshTimeout",
                "defaults",
                {
                    "targetRef": {"kind": "Mesh"},
                    "to": [
                        {
                            "targetRef": {"kind": "Mesh"},
                            "default": {
                                "connectionTimeout": "2s",
                                "idleTimeout": "30m",
                                "http": {"requestTimeout": "5s"},
                            },
                        }
                    ],
                },
            ),
            policy(
                "MeshTimeout",
                "backend-slow",
                {
                    "targetRef": {"kind": "MeshService", "name": "web"},
                    "to": [{"targetRef": to_backend, "default": {"http": {"requestTimeout": "1m"}}}],
                },
            ),
            policy(
                "MeshRetry",
                "retry-backend",
                {
                    "targetRef": {"kind": "Mesh"},
                    "to": [
                        {
                            "targetRef": to_backend,
                            "default": {
                                "tcp": {"maxConnectAttempt": 4},
                                "http": {
                                    "numRetries": 3,
                                    "backOff": {"baseInterval": "100ms"},
                                    "retryOn": ["5XX", 503],
                                },
                            },
                        }
                    ],
                },
            ),
            policy(
                "MeshRetry",
                "billing-only",
                {
                    "targetRef": {"kind": "MeshService", "name": "billing"},
                    "to": [{"targetRef": {"kind": "Mesh"}, "default": {"tcp": {"maxConnectAttempt": 99}}}],
                },
            ),
            policy(
                "MeshCircuitBreaker",
                "mesh-limits",
                {
                    "targetRef": {"kind": "Mesh"},
                    "to": [
                        {
                            "targetRef": {"kind": "Mesh"},
                            "default": {
                                "connectionLimits": {"maxConnections": 10},
                                "outlierDetection": {
                                    "interval": "5s",
                                    "detectors": {"totalFailures": {"consecutive": 5}},
                                },
                            },
                        }
                    ],
                },
            ),
            policy(
                "MeshCircuitBreaker",
                "team-a",
                {
                    "targetRef": {"kind": "Dataplane", "labels": {"team": "a"}},
                    "to": [
                        {
                            "targetRef": {"kind": "Mesh"},
                            "default": {"connectionLimits": {"maxConnections": 20}},
                        }
                    ],
                },
            ),
            policy(
                "MeshHealthCheck",
                "cache-check",
                {
                    "targetRef": {"kind": "Mesh"},
                    "to": [
                        {
                            "targetRef": {"kind": "MeshService", "name": "cache"},
                            "default": {
                                "interval": "10s",
                                "timeout": "2s",
                                "tcp": {"send": "UElORw==", "receive": ["UE9ORw=="]},
                                "http": {"disabled": True, "path": "/health"},
                            },
                        }
                    ],
                },
            ),
            policy(
                "MeshLoadBalancingStrategy",
                "backend-ring",
                {
                    "targetRef": {"kind": "Mesh"},
                    "to": [
                        {
                            "targetRef": to_backend,
                            "default": {
                                "loadBalancer": {
                                    "type": "RingHash",
                                    "ringHash": {
                                        "hashPolicies": [{"type": "Header", "header": {"name": "x-user"}}]
                                    },
                                }
                            },
                        }
                    ],
                },
            ),
        ),
    )
    config = generate_sidecar(snapshot, "zone-1", web)
    backend, cache = config.clusters
    assert (backend.name, cache.name) == ("backend", "cache")
    # Merged: the Mesh-wide timeouts, with the more specific request timeout for backend only.
    assert (backend.timeout.connect_timeout_s, backend.timeout.idle_timeout_s) == (2.0, 1800.0)
    assert (backend.timeout.http_request_timeout_s, cache.timeout.http_request_timeout_s) == (60.0, 5.0)
    assert backend.retry is not None
    assert backend.retry.http is not None
    assert backend.retry.tcp_max_connect_attempts == 4  # billing-only selects another proxy
    assert (backend.retry.http.num_retries, backend.retry.http.retry_on) == (3, ["5xx", "503"])
    assert (backend.retry.http.back_off_base_s, backend.retry.http.back_off_max_s) == (0.1, 1.0)
    assert cache.retry is None
    for c in (backend, cache):
        assert c.circuit_breaker is not None
        assert c.circuit_breaker.connection_limits is not None
        assert c.circuit_breaker.connection_limits.max_connections == 20  # Dataplane beats Mesh
        assert c.circuit_breaker.outlier_detection is not None
        assert c.circuit_breaker.outlier_detection.consecutive_total_failures == 5
    assert backend.health_check is None
    assert cache.health_check is not None
    assert cache.health_check.http is None
    assert cache.health_check.tcp is not None
    assert cache.health_check.tcp.send == b"PING"
    assert (cache.health_check.interval_s, cache.health_check.timeout_s) == (10.0, 2.0)
    assert backend.lb.type == "RingHash"
    assert [p.key for p in backend.lb.hash_policies] == ["x-user"]
    assert cache.lb.type == "RoundRobin"
    golden("resilience-policies", render(config))
