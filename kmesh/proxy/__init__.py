"""The data-plane proxy: sidecar, zone ingress and zone egress. Only the command's placeholder exists yet
(``kmesh.proxy.main``); the proxy itself arrives with issue 5."""

from __future__ import annotations

__all__: list[str] = []
