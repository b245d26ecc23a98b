"""Helpers shipped for users' and kmesh's own tests: free ports, real ``kmesh-cp`` and ``kmesh-proxy``
processes, and a fault-injecting TCP proxy.

``CpProcess`` runs a control plane as a subprocess with a private data dir and a free API port and waits
until it serves; ``run_cp`` runs the command to completion; ``ProxyProcess`` runs ``kmesh-proxy run`` (a
sidecar, zone ingress or zone egress) and waits until its admin endpoint says it is ready; ``free_port``
finds a port nothing listens on; ``FaultProxy`` sits between two peers on loopback and cuts, blocks, delays
or throttles what passes, for partition and slow-link tests.
"""

from __future__ import annotations

from kmesh.testing._ports import free_port
from kmesh.testing._process import CpProcess, CpProcessError, cp_env, run_cp
from kmesh.testing._proxyprocess import ProxyProcess, ProxyProcessError, proxy_env
from kmesh.testing.faultproxy import FaultProxy, FaultProxyStats

__all__ = [
    "CpProcess",
    "CpProcessError",
    "FaultProxy",
    "FaultProxyStats",
    "ProxyProcess",
    "ProxyProcessError",
    "cp_env",
    "free_port",
    "proxy_env",
    "run_cp",
]
