"""One document per resource type in the shape Kuma documents (Universal YAML, REST output for the
read-only insights): each must parse, keep what it says, and survive a round trip."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

import pytest
import yaml

from kmesh.model import Resource, all_descriptors, load_documents, parse_resource, to_document
from kmesh.model.types import (
    DataplaneInsightSpec,
    DataplaneSpec,
    GlobalSecretSpec,
    MeshCircuitBreakerSpec,
    MeshExternalServiceSpec,
    MeshFaultInjectionSpec,
    MeshHealthCheckSpec,
    MeshHTTPRouteSpec,
    MeshLoadBalancingStrategySpec,
    MeshRateLimitSpec,
    MeshRetrySpec,
    MeshSpec,
    MeshTCPRouteSpec,
    MeshTimeoutSpec,
    MeshTrafficPermissionSpec,
    SecretSpec,
    ZoneEgressInsightSpec,
    ZoneEgressSpec,
    ZoneIngressInsightSpec,
    ZoneIngressSpec,
    ZoneInsightSpec,
    ZoneSpec,
)


def _mesh(r: Resource) -> None:
    assert isinstance(r.spec, MeshSpec)
    assert r.spec.mtls is not None
    assert r.spec.mtls.enabled_backend == "ca-1"
    backend = r.spec.mtls.backends[0]
    assert backend.conf is not None
    assert backend.conf.ca_cert is not None
    assert (backend.conf.ca_cert.rsa_bits, backend.conf.ca_cert.expiration) == (2048, "10y")
    assert r.spec.zone_egress


def _dataplane(r: Resource) -> None:
    assert isinstance(r.spec, DataplaneSpec)
    inbound = r.spec.networking.inbound[0]
    assert (inbound.address, inbound.port, inbound.service_port) == ("1.1.1.1", 80, 8080)
    assert inbound.tags["version"] == "1.0"
    assert r.spec.networking.outbound[0].service_name == "postgres"


def _zone(r: Resource) -> None:
    assert r.spec == ZoneSpec(enabled=False)


def _zone_insight(r: Resource) -> None:
    assert isinstance(r.spec, ZoneInsightSpec)
    sub = r.spec.subscriptions[0]
    assert sub.connect_time == datetime(2018, 7, 17, 16, 5, 36, 995000, tzinfo=UTC)
    assert sub.status.stat["Mesh"].responses_rejected == 1
    assert sub.status.total.responses_sent == 22
    assert sub.version.kuma_cp.git_tag == "v1.0.0"
    assert not r.spec.connected


def _dataplane_insight(r: Resource) -> None:
    assert isinstance(r.spec, DataplaneInsightSpec)
    assert r.spec.mtls is not None
    assert r.spec.mtls.supported_backends == ["ca-1", "ca-2"]
    assert r.spec.subscriptions[0].version is not None
    assert r.spec.subscriptions[0].version.kuma_dp.version == "1.0.0"
    assert r.spec.connected


def _zone_ingress(r: Resource) -> None:
    assert isinstance(r.spec, ZoneIngressSpec)
    assert r.spec.networking.public_address == ("2.2.2.2", 20002)
    assert [(s.mesh, s.instances) for s in r.spec.available_services] == [("mesh-1", 2)]
    assert r.spec.zone == "us-east"


def _zone_ingress_insight(r: Resource) -> None:
    assert isinstance(r.spec, ZoneIngressInsightSpec)
    assert r.spec.subscriptions[0].control_plane_instance_id == "cp-1"


def _zone_egress(r: Resource) -> None:
    assert isinstance(r.spec, ZoneEgressSpec)
    assert (r.spec.networking.address, r.spec.networking.port) == ("192.168.0.1", 10002)


def _zone_egress_insight(r: Resource) -> None:
    assert isinstance(r.spec, ZoneEgressInsightSpec)
    assert r.spec.subscriptions[0].disconnect_time is not None
    assert not r.spec.connected


def _secret(r: Resource) -> None:
    assert isinstance(r.spec, SecretSpec)
    assert r.spec.value == b"test\n"


def _global_secret(r: Resource) -> None:
    assert isinstance(r.spec, GlobalSecretSpec)
    assert r.spec.value == b"test\n"
    assert r.meta.mesh == ""


def _mtp(r: Resource) -> None:
    assert isinstance(r.spec, MeshTrafficPermissionSpec)
    assert r.spec.effective_target_ref.kind == "MeshService"
    assert [f.default.action for f in r.spec.from_] == ["Allow", "Deny"]


def _retry(r: Resource) -> None:
    assert isinstance(r.spec, MeshRetrySpec)
    conf = r.spec.to[0].default
    assert conf.http is not None
    assert conf.http.back_off is not None
    assert (conf.http.num_retries, conf.http.back_off.max_interval) == (10, "20m")
    assert conf.tcp is not None
    assert conf.tcp.max_connect_attempt == 5
    assert conf.grpc is not None
    assert conf.grpc.retry_on == ["Canceled", "DeadlineExceeded"]


def _health(r: Resource) -> None:
    assert isinstance(r.spec, MeshHealthCheckSpec)
    conf = r.spec.to[0].default
    assert conf.http is not None
    assert conf.http.expected_statuses == [200, 201]
    assert conf.healthy_panic_threshold == 60


def _breaker(r: Resource) -> None:
    assert isinstance(r.spec, MeshCircuitBreakerSpec)
    od = r.spec.to[0].default.outlier_detection
    assert od is not None
    assert od.detectors is not None
    assert od.detectors.total_failures is not None
    assert od.detectors.total_failures.consecutive == 10


def _timeout(r: Resource) -> None:
    assert isinstance(r.spec, MeshTimeoutSpec)
    http = r.spec.to[0].default.http
    assert http is not None
    assert http.request_timeout == "2s"


def _lbs(r: Resource) -> None:
    assert isinstance(r.spec, MeshLoadBalancingStrategySpec)
    la = r.spec.to[0].default.locality_awareness
    assert la is not None
    assert la.cross_zone is not None
    assert [f.to.type for f in la.cross_zone.failover] == ["Only", "Any"]
    first = la.cross_zone.failover[0]
    assert first.from_ is not None
    assert first.from_.zones == ["zone-1"]


def _tcp_route(r: Resource) -> None:
    assert isinstance(r.spec, MeshTCPRouteSpec)
    refs = r.spec.to[0].rules[0].default.backend_refs
    assert [(b.tags or {}).get("version") for b in refs] == ["v1", "v2"]
    assert [b.weight for b in refs] == [90, 10]


def _http_route(r: Resource) -> None:
    assert isinstance(r.spec, MeshHTTPRouteSpec)
    rule = r.spec.to[0].rules[0]
    assert rule.matches[0].path is not None
    assert rule.matches[0].path.value == "/v2"
    assert rule.default.filters[0].type == "URLRewrite"


def _fault(r: Resource) -> None:
    assert isinstance(r.spec, MeshFaultInjectionSpec)
    faults = r.spec.from_[0].default.http
    assert faults[0].abort is not None
    assert faults[0].abort.http_status == 500
    assert faults[1].response_bandwidth is not None
    assert faults[1].response_bandwidth.limit == "50kbps"


def _external(r: Resource) -> None:
    assert isinstance(r.spec, MeshExternalServiceSpec)
    assert (r.spec.match.port, r.spec.match.protocol) == (80, "http")
    assert r.spec.tls is not None
    assert r.spec.tls.verification is not None
    ca = r.spec.tls.verification.ca_cert
    assert ca is not None
    assert ca.inline_bytes() == b"test"


def _rate_limit(r: Resource) -> None:
    assert isinstance(r.spec, MeshRateLimitSpec)
    local = r.spec.from_[0].default.local
    assert local.http is not None
    assert local.http.request_rate is not None
    assert (local.http.request_rate.num, local.http.request_rate.interval) == (5, "10s")


EXAMPLES: dict[str, tuple[str, Callable[[Resource], None]]] = {
    "Mesh": (
        """
type: Mesh
name: default
mtls:
  enabledBackend: ca-1
  backends:
  - name: ca-1
    type: builtin
    dpCert:
      rotation:
        expiration: 1d
    conf:
      caCert:
        RSAbits: 2048
        expiration: 10y
routing:
  zoneEgress: true
""",
        _mesh,
    ),
    "Dataplane": (
        """
name: sample
mesh: default
type: Dataplane
networking:
  address: 2.2.2.2
  inbound:
  - address: 1.1.1.1
    port: 80
    servicePort: 8080
    tags:
      kuma.io/service: "web"
      service: web
      version: "1.0"
      env: production
  outbound:
  - port: 3000
    tags:
      kuma.io/service: postgres
""",
        _dataplane,
    ),
    "Zone": ("type: Zone\nname: zone-1\nenabled: false\n", _zone),
    "ZoneInsight": (
        """
type: ZoneInsight
name: zone-1
creationTime: "2018-07-17T16:05:36.995Z"
modificationTime: "2019-07-17T18:08:41Z"
subscriptions:
- id: "1"
  globalInstanceId: node-001
  connectTime: "2018-07-17T16:05:36.995Z"
  disconnectTime: "2018-07-17T17:05:36.995Z"
  status:
    lastUpdateTime: "2018-07-17T16:06:36Z"
    stat:
      Mesh:
        responsesSent: 2
        responsesRejected: 1
    total:
      responsesSent: 22
      responsesRejected: 11
  version:
    kumaCp:
      buildDate: "2019-08-07T11:26:06Z"
      gitCommit: 91ce236824a9d875601679aa80c63783fb0e8725
      gitTag: v1.0.0
      version: 1.0.0
""",
        _zone_insight,
    ),
    "DataplaneInsight": (
        """
type: DataplaneInsight
mesh: default
name: backend-1
mTLS:
  certificateExpirationTime: "2020-05-08T08:28:22Z"
  certificateRegenerations: 10
  issuedBackend: ca-1
  lastCertificateRegeneration: "2019-07-16T19:48:08Z"
  supportedBackends: [ca-1, ca-2]
subscriptions:
- connectTime: "2018-07-17T16:05:36.995Z"
  controlPlaneInstanceId: node-001
  id: "1"
  status:
    total:
      responsesRejected: 1
      responsesSent: 10
  version:
    dependencies:
      coredns: 1.8.3
    kumaDp:
      buildDate: "2019-08-07T11:26:06Z"
      gitCommit: 91ce236824a9d875601679aa80c63783fb0e8725
      gitTag: v1.0.0
      version: 1.0.0
""",
        _dataplane_insight,
    ),
    "ZoneIngress": (
        """
type: ZoneIngress
name: ingress-zone-2
zone: us-east
creationTime: "0001-01-01T00:00:00Z"
modificationTime: "0001-01-01T00:00:00Z"
networking:
  address: 1.1.1.1
  advertisedAddress: 2.2.2.2
  advertisedPort: 20002
  port: 10001
availableServices:
- mesh: mesh-1
  instances: 2
  tags:
    kuma.io/service: svc-1
""",
        _zone_ingress,
    ),
    "ZoneIngressInsight": (
        """
type: ZoneIngressInsight
name: ingress-zone-2
subscriptions:
- id: "7"
  controlPlaneInstanceId: cp-1
  connectTime: "2024-03-01T10:00:00Z"
""",
        _zone_ingress_insight,
    ),
    "ZoneEgress": (
        "type: ZoneEgress\nname: zoneegress-1\nnetworking:\n  address: 192.168.0.1\n  port: 10002\n",
        _zone_egress,
    ),
    "ZoneEgressInsight": (
        """
type: ZoneEgressInsight
name: zoneegress-1
subscriptions:
- id: "1"
  controlPlaneInstanceId: cp-1
  connectTime: "2024-03-01T10:00:00Z"
  disconnectTime: "2024-03-01T11:00:00Z"
""",
        _zone_egress_insight,
    ),
    "Secret": ("type: Secret\nname: sample\nmesh: default\ndata: dGVzdAo=\n", _secret),
    "GlobalSecret": ("type: GlobalSecret\nname: sample\ndata: dGVzdAo=\n", _global_secret),
    "MeshTrafficPermission": (
        """
type: MeshTrafficPermission
name: allow-orders
mesh: default
spec:
  targetRef:
    kind: MeshService
    name: payments
  from:
    - targetRef:
        kind: MeshSubset
        tags:
          kuma.io/service: orders
      default:
        action: Allow
    - targetRef:
        kind: MeshSubset
        tags:
          kuma.io/service: '*'
      default:
        action: Deny
""",
        _mtp,
    ),
    "MeshRetry": (
        """
type: MeshRetry
name: web-to-backend-retry-policy
mesh: default
spec:
  targetRef:
    kind: MeshSubset
    tags:
      kuma.io/service: web
  to:
    - targetRef:
        kind: MeshService
        name: backend
      default:
        tcp:
          maxConnectAttempt: 5
        http:
          numRetries: 10
          backOff:
            baseInterval: 15s
            maxInterval: 20m
          retryOn:
            - "5xx"
        grpc:
          numRetries: 5
          backOff:
            baseInterval: 15s
            maxInterval: 20m
          retryOn:
            - Canceled
            - DeadlineExceeded
""",
        _retry,
    ),
    "MeshHealthCheck": (
        """
type: MeshHealthCheck
name: web-to-backend-check
mesh: default
spec:
  targetRef:
    kind: MeshSubset
    tags:
      kuma.io/service: web
  to:
  - targetRef:
      kind: MeshService
      name: backend
    default:
      interval: 10s
      timeout: 2s
      unhealthyThreshold: 3
      healthyThreshold: 1
      failTrafficOnPanic: true
      noTrafficInterval: 1s
      healthyPanicThreshold: 60
      reuseConnection: true
      http:
        path: /health
        expectedStatuses: [200, 201]
        requestHeadersToAdd:
          set:
          - name: x-some-header
            value: value
""",
        _health,
    ),
    "MeshCircuitBreaker": (
        """
type: MeshCircuitBreaker
mesh: default
name: web-to-backend-circuit-breaker
spec:
  targetRef:
    kind: MeshSubset
    tags:
      kuma.io/service: web
  to:
    - targetRef:
        kind: MeshService
        name: backend
      default:
        connectionLimits:
          maxConnections: 2
          maxPendingRequests: 8
          maxRetries: 2
          maxRequests: 2
        outlierDetection:
          disabled: false
          baseEjectionTime: 30s
          maxEjectionPercent: 20
          splitExternalAndLocalErrors: true
          detectors:
            totalFailures:
              consecutive: 10
            gatewayFailures:
              consecutive: 10
            localOriginFailures:
              consecutive: 10
            successRate:
              minimumHosts: 5
              requestVolume: 10
              standardDeviationFactor: "1.9"
            failurePercentage:
              requestVolume: 10
              minimumHosts: 5
              threshold: 85
""",
        _breaker,
    ),
    "MeshTimeout": (
        """
type: MeshTimeout
name: timeout-global
mesh: default
spec:
  targetRef:
    kind: Mesh
  to:
  - targetRef:
      kind: Mesh
    default:
      idleTimeout: 20s
      connectionTimeout: 2s
      http:
        requestTimeout: 2s
        streamIdleTimeout: 1h
        maxStreamDuration: 0s
  from:
  - targetRef:
      kind: Mesh
    default:
      idleTimeout: 20s
      http:
        requestTimeout: 2s
""",
        _timeout,
    ),
    "MeshLoadBalancingStrategy": (
        """
type: MeshLoadBalancingStrategy
name: local-zone-affinity-backend
mesh: mesh-1
spec:
  targetRef:
    kind: Mesh
  to:
    - targetRef:
        kind: MeshService
        name: backend
      default:
        localityAwareness:
          localZone:
            affinityTags:
            - key: k8s.io/node
              weight: 90
            - key: k8s.io/az
              weight: 10
          crossZone:
            failover:
              - from:
                  zones: ["zone-1"]
                to:
                  type: Only
                  zones: ["zone-2"]
              - to:
                  type: Any
            failoverThreshold:
              percentage: 70
        loadBalancer:
          type: RingHash
          ringHash:
            hashPolicies:
              - type: Header
                header:
                  name: x-header
""",
        _lbs,
    ),
    "MeshTCPRoute": (
        """
type: MeshTCPRoute
name: tcp-route-1
mesh: default
spec:
  targetRef:
    kind: MeshSubset
    tags:
      kuma.io/service: frontend
  to:
  - targetRef:
      kind: MeshService
      name: backend
    rules:
    - default:
        backendRefs:
        - kind: MeshServiceSubset
          name: backend
          tags:
            version: v1
          weight: 90
        - kind: MeshServiceSubset
          name: backend
          tags:
            version: v2
          weight: 10
""",
        _tcp_route,
    ),
    "MeshHTTPRoute": (
        """
type: MeshHTTPRoute
name: http-route-1
mesh: default
spec:
  targetRef:
    kind: MeshSubset
    tags:
      kuma.io/service: frontend
  to:
  - targetRef:
      kind: MeshService
      name: backend
    rules:
    - matches:
      - path:
          type: PathPrefix
          value: /v2
      - headers:
        - type: Exact
          name: x-version
          value: v2
      default:
        filters:
        - type: URLRewrite
          urlRewrite:
            path:
              type: ReplacePrefixMatch
              replacePrefixMatch: /
        backendRefs:
        - kind: MeshServiceSubset
          name: backend
          tags:
            version: v2
""",
        _http_route,
    ),
    "MeshFaultInjection": (
        """
type: MeshFaultInjection
mesh: default
name: default-fault-injection
spec:
  targetRef:
    kind: MeshSubset
    tags:
      kuma.io/service: backend
  from:
    - targetRef:
        kind: MeshSubset
        tags:
          kuma.io/service: frontend
      default:
        http:
          - abort:
              httpStatus: 500
              percentage: "2.5"
          - responseBandwidth:
              limit: 50kbps
              percentage: 50
          - delay:
              value: 5s
              percentage: 5
""",
        _fault,
    ),
    "MeshExternalService": (
        """
type: MeshExternalService
name: mes-http
mesh: default
spec:
  match:
    type: HostnameGenerator
    port: 80
    protocol: http
  endpoints:
    - address: 1.1.1.1
      port: 12345
    - address: example.com
      port: 80
  tls:
    version:
      min: TLS12
      max: TLS13
    allowRenegotiation: false
    verification:
      serverName: "example.com"
      subjectAltNames:
        - type: Exact
          value: example.com
        - type: Prefix
          value: "spiffe://example.local/ns/local"
      caCert:
        inline: dGVzdA==
      clientCert:
        secret: "123"
      clientKey:
        secret: "123"
""",
        _external,
    ),
    "MeshRateLimit": (
        """
type: MeshRateLimit
mesh: default
name: backend-rate-limit
spec:
  targetRef:
    kind: MeshService
    name: backend
  from:
    - targetRef:
        kind: Mesh
      default:
        local:
          http:
            requestRate:
              num: 5
              interval: 10s
            onRateLimit:
              status: 423
              headers:
                set:
                  - name: "x-kuma-rate-limited"
                    value: "true"
""",
        _rate_limit,
    ),
}


def test_every_type_has_an_example() -> None:
    assert set(EXAMPLES) == {d.name for d in all_descriptors()}


@pytest.mark.parametrize("type_name", sorted(EXAMPLES))
def test_kuma_example(type_name: str) -> None:
    text, check = EXAMPLES[type_name]
    (resource,) = load_documents(text, source=f"{type_name}.yaml")
    assert resource.meta.type == type_name
    check(resource)
    again = parse_resource(to_document(resource))
    assert again.spec == resource.spec
    # The document to_document writes is plain data that YAML can carry and give back unchanged.
    dumped = yaml.safe_load(yaml.safe_dump(to_document(resource)))
    assert parse_resource(dumped).spec == resource.spec
