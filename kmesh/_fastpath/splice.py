"""Relays two connected sockets in the kernel (splice(2)), for SNI passthrough: the selector.

Picks the compiled twin ``_splice_c`` unless ``KMESH_NO_EXTENSIONS=1`` is set or it cannot be imported
(none is built yet), else ``_splice_py``, the reference whose docstring states every rule. ``COMPILED`` says
which; ``SPLICE`` says whether ``os.splice`` is used (Linux) or the copying fallback.

Usage, by the zone ingress once the SNI picked an upstream and both sockets are connected::

    a_to_b, b_to_a = await relay_sockets(downstream, upstream, idle_timeout_s=3600)
    # both sockets are closed now, whatever happened
"""

from __future__ import annotations

import importlib

from kmesh._fastpath import NO_EXTENSIONS
from kmesh._fastpath._splice_py import SPLICE as _SPLICE_PY
from kmesh._fastpath._splice_py import relay_sockets as _relay_sockets_py

__all__ = ["COMPILED", "SPLICE", "relay_sockets"]

relay_sockets = _relay_sockets_py
SPLICE: bool = _SPLICE_PY
COMPILED: bool = False

if not NO_EXTENSIONS:
    try:
        # By name: the twin does not exist yet, and mypy must not require it.
        _c = importlib.import_module("kmesh._fastpath._splice_c")
    except ImportError:  # not built: the reference is a complete substitute
        pass
    else:
        relay_sockets = _c.relay_sockets
        SPLICE = _c.SPLICE
        COMPILED = True
