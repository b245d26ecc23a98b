"""``kmesh-proxy``: the data-plane proxy command — NOT BUILT YET.

The sidecar, zone ingress and zone egress arrive with issue 5. Until then this command accepts any
arguments (so scripts written against the documented ``kmesh-proxy run ...`` fail with a clear reason, not
a usage error), says on stderr that the proxy is not built yet, and exits with status 2. ``--help`` works.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from kmesh._version import __version__

__all__ = ["NOT_BUILT", "main"]

NOT_BUILT = "kmesh-proxy: the data-plane proxy is not built yet; it arrives with issue 5"
EXIT_NOT_BUILT = 2


def main(argv: Sequence[str] | None = None) -> int:
    """Print why nothing runs yet and return 2; ``--help`` and ``--version`` exit 0."""
    parser = argparse.ArgumentParser(
        prog="kmesh-proxy",
        description="The kmesh data-plane proxy (sidecar, zone ingress, zone egress). "
        "Not built yet: it arrives with issue 5.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument("command", nargs="?", help="what to run (run); not available yet")
    parser.parse_known_args(argv)
    print(NOT_BUILT, file=sys.stderr)
    return EXIT_NOT_BUILT
