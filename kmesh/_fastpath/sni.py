"""Reads the server name (SNI) and ALPN protocols from a TLS ClientHello, without decrypting.

The selector for the two twins: ``_sni_c`` (compiled) unless ``KMESH_NO_EXTENSIONS=1`` is set or it cannot
be imported, else ``_sni_py``, the reference whose docstring states every rule. ``COMPILED`` says which.

Usage, by the zone ingress, on the bytes received so far on a new connection::

    result = parse_client_hello(buffered, max_bytes=16384)
    if result.status is SniStatus.NEED_MORE: keep reading
    elif result.status is SniStatus.FOUND: route by result.server_name (and result.alpn)
    else: close (NO_SNI, NOT_TLS, TOO_LARGE)
"""

from __future__ import annotations

from kmesh._fastpath import NO_EXTENSIONS
from kmesh._fastpath._sni_py import parse_client_hello as _parse_client_hello_py
from kmesh._fastpath._sni_types import SniResult, SniStatus

__all__ = ["COMPILED", "SniResult", "SniStatus", "parse_client_hello"]

parse_client_hello = _parse_client_hello_py
COMPILED: bool = False

if not NO_EXTENSIONS:
    try:
        from kmesh._fastpath._sni_c import parse_client_hello as _parse_client_hello_c
    except ImportError:  # not built: the reference is a complete substitute
        pass
    else:
        parse_client_hello = _parse_client_hello_c
        COMPILED = True
