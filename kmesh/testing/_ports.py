"""Free TCP ports for tests and local runs.

The kernel picks the port (bind to port 0), so two callers never get the same one at the same moment; the
port is released again before returning, so a busy machine can in rare cases hand it to someone else
before the caller binds it — good enough for tests, which is what this is for.
"""

from __future__ import annotations

import socket

__all__ = ["free_port"]


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port on ``host`` that nothing listens on right now. Raises OSError if ``host`` is not local."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port
