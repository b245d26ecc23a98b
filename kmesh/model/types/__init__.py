"""Spec structs of every resource type, one module per family; importing this registers them all.

The registration order below is the order ``all_descriptors()`` lists types in (and so the order of
``kmeshctl`` help and the API index): meshes and zones first, then what lives in zones, then policies.
"""

# ruff: noqa: I001 - the module imports below run in registration order, which is deliberate.
from __future__ import annotations

from kmesh.model.types import mesh, zone
from kmesh.model.types import dataplane, zoneingress, zoneegress, secret
from kmesh.model.types import (
    traffic_permission,
    retry,
    health_check,
    circuit_breaker,
    timeout,
    load_balancing,
    routes,
    fault_injection,
    external_service,
    rate_limit,
)
from kmesh.model.types.circuit_breaker import MeshCircuitBreakerSpec
from kmesh.model.types.dataplane import DataplaneInsightSpec, DataplaneSpec
from kmesh.model.types.external_service import MeshExternalServiceSpec
from kmesh.model.types.fault_injection import MeshFaultInjectionSpec
from kmesh.model.types.health_check import MeshHealthCheckSpec
from kmesh.model.types.load_balancing import MeshLoadBalancingStrategySpec
from kmesh.model.types.mesh import MeshSpec
from kmesh.model.types.rate_limit import MeshRateLimitSpec
from kmesh.model.types.retry import MeshRetrySpec
from kmesh.model.types.routes import MeshHTTPRouteSpec, MeshTCPRouteSpec
from kmesh.model.types.secret import GlobalSecretSpec, SecretSpec
from kmesh.model.types.targetref import BackendRef, From, PolicySpec, Rule, TargetRef, To
from kmesh.model.types.timeout import MeshTimeoutSpec
from kmesh.model.types.traffic_permission import MeshTrafficPermissionSpec
from kmesh.model.types.zone import ZoneInsightSpec, ZoneSpec
from kmesh.model.types.zoneegress import ZoneEgressInsightSpec, ZoneEgressSpec
from kmesh.model.types.zoneingress import ZoneIngressInsightSpec, ZoneIngressSpec

__all__ = [
    "BackendRef",
    "DataplaneInsightSpec",
    "DataplaneSpec",
    "From",
    "GlobalSecretSpec",
    "MeshCircuitBreakerSpec",
    "MeshExternalServiceSpec",
    "MeshFaultInjectionSpec",
    "MeshHTTPRouteSpec",
    "MeshHealthCheckSpec",
    "MeshLoadBalancingStrategySpec",
    "MeshRateLimitSpec",
    "MeshRetrySpec",
    "MeshSpec",
    "MeshTCPRouteSpec",
    "MeshTimeoutSpec",
    "MeshTrafficPermissionSpec",
    "PolicySpec",
    "Rule",
    "SecretSpec",
    "TargetRef",
    "To",
    "ZoneEgressInsightSpec",
    "ZoneEgressSpec",
    "ZoneIngressInsightSpec",
    "ZoneIngressSpec",
    "ZoneInsightSpec",
    "ZoneSpec",
    "circuit_breaker",
    "dataplane",
    "external_service",
    "fault_injection",
    "health_check",
    "load_balancing",
    "mesh",
    "rate_limit",
    "retry",
    "routes",
    "secret",
    "timeout",
    "traffic_permission",
    "zone",
    "zoneegress",
    "zoneingress",
]
