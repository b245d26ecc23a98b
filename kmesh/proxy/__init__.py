"""The data-plane proxy: sidecar, zone ingress and zone egress (``kmesh-proxy``), and the same proxy embedded
in an asyncio application (:class:`Sidecar`).

- ``_app``: one proxy put together (DP client, runtime, admin); ``main``: the command.
- ``_runtime``: configs and certificates → listeners, upstreams, probes.
- ``_sidecar``: outbound and inbound listeners; ``_gateway``: the SNI-routed ingress/egress listener.
- ``_upstream``: one cluster at run time and how a connection reaches it; ``_lb``: the balancers.
- ``_relay``: the Protocol-pair relay; ``kmesh._fastpath.splice``: the passthrough relay; ``_sniff``: the
  ClientHello peek.
- ``_tls``: mesh certificates and contexts; ``_authz``: MeshTrafficPermission; ``_probe``: app health;
  ``_healthcheck``: MeshHealthCheck's active probes of a cluster's endpoints.
- ``_admin``: ``/ready``, ``/stats``, ``/metrics``, ``/config_dump``; ``_stats``: the counters.
"""

from __future__ import annotations

from kmesh.proxy._embedded import Sidecar
from kmesh.proxy._upstream import UpstreamUnavailable

__all__ = ["Sidecar", "UpstreamUnavailable"]
