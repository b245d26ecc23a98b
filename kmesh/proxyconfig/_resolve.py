"""The resilience settings of one cluster: the ``to[]`` entries of MeshTimeout, MeshRetry,
MeshCircuitBreaker, MeshHealthCheck and MeshLoadBalancingStrategy that apply to one proxy and one
destination, merged (``_targeting``) and normalized (``_normalize``).

Rules:
- An entry applies when its policy's top-level ``targetRef`` selects the proxy and its own ``targetRef``
  reaches the destination; entries merge least specific first, so the most specific one wins per field.
- Locality awareness: when the merged MeshLoadBalancingStrategy sets ``localityAwareness``, it decides
  (enabled unless ``disabled: true``, with its ``crossZone.failover`` order and ``failoverThreshold``);
  otherwise the mesh's ``routing.localityAwareLoadBalancing`` does, with every other zone at priority 1.
- External services get the same policies (``to`` kind Mesh or MeshExternalService) but no locality.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypeVar, final

from kmesh.model import Spec
from kmesh.model._fields import percentage_value
from kmesh.model.types import (
    MeshCircuitBreakerSpec,
    MeshHealthCheckSpec,
    MeshLoadBalancingStrategySpec,
    MeshRetrySpec,
    MeshTimeoutSpec,
    PolicySpec,
)
from kmesh.model.types.circuit_breaker import CircuitBreakerConf
from kmesh.model.types.health_check import HealthCheckConf
from kmesh.model.types.load_balancing import LoadBalancingConf
from kmesh.model.types.retry import RetryConf
from kmesh.model.types.timeout import TimeoutConf
from kmesh.proxyconfig._endpoints import Locality
from kmesh.proxyconfig._normalize import (
    circuit_breaker_config,
    health_check_config,
    lb_config,
    retry_config,
    timeout_config,
)
from kmesh.proxyconfig._resilience import (
    CircuitBreakerConfig,
    HealthCheckConfig,
    LbConfig,
    RetryConfig,
    TimeoutConfig,
)
from kmesh.proxyconfig._snapshot import MeshSnapshot
from kmesh.proxyconfig._targeting import Destination, Subject, merged, ordered_defaults, reaches, selects

__all__ = ["ClusterPolicies", "resolve"]

ConfT = TypeVar("ConfT", bound=Spec)


@final
@dataclass(frozen=True, slots=True)
class ClusterPolicies:
    """What the policies make of one cluster."""

    timeout: TimeoutConfig
    retry: RetryConfig | None
    circuit_breaker: CircuitBreakerConfig | None
    health_check: HealthCheckConfig | None
    lb: LbConfig
    locality: Locality


def _merged(
    snapshot: MeshSnapshot,
    subject: Subject,
    destination: Destination,
    policy: tuple[str, type[PolicySpec]],
    conf_type: type[ConfT],
) -> ConfT | None:
    type_name, spec_type = policy
    defaults = ordered_defaults(
        snapshot.policies_of(type_name, spec_type),
        "to",
        lambda ref: selects(ref, subject),
        lambda ref: reaches(ref, destination),
    )
    return merged(defaults, conf_type)


def resolve(snapshot: MeshSnapshot, subject: Subject, destination: Destination) -> ClusterPolicies:
    """The merged, normalized policies of the cluster ``destination`` on the proxy ``subject``."""
    timeout = _merged(snapshot, subject, destination, ("MeshTimeout", MeshTimeoutSpec), TimeoutConf)
    retry = _merged(snapshot, subject, destination, ("MeshRetry", MeshRetrySpec), RetryConf)
    breaker = _merged(
        snapshot, subject, destination, ("MeshCircuitBreaker", MeshCircuitBreakerSpec), CircuitBreakerConf
    )
    health = _merged(
        snapshot, subject, destination, ("MeshHealthCheck", MeshHealthCheckSpec), HealthCheckConf
    )
    balancing = _merged(
        snapshot,
        subject,
        destination,
        ("MeshLoadBalancingStrategy", MeshLoadBalancingStrategySpec),
        LoadBalancingConf,
    )
    awareness = balancing.locality_awareness if balancing else None
    threshold: float | None = None
    if destination.external:
        locality = Locality()
    elif awareness is None:
        locality = Locality(aware=snapshot.spec.locality_aware)
    else:
        cross = awareness.cross_zone
        locality = Locality(aware=not awareness.disabled, failover=tuple(cross.failover) if cross else ())
        if cross is not None and cross.failover_threshold is not None:
            threshold = float(percentage_value(cross.failover_threshold.percentage))
    return ClusterPolicies(
        timeout=timeout_config(timeout),
        retry=retry_config(retry),
        circuit_breaker=circuit_breaker_config(breaker),
        health_check=health_check_config(health),
        lb=lb_config(
            balancing.load_balancer if balancing else None,
            locality_aware=locality.aware,
            failover_threshold=threshold,
        ),
        locality=locality,
    )
