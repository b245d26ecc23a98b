"""``make bench``: runs every benchmark in this folder, one after the other, and stops at the first failure.

Each benchmark is a standalone script that prints its own table of figures and ratios; results worth
keeping go to ``docs/performance.md`` with the date, the machine and the command.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

BENCHMARKS = ("sni_parse.py", "kds_propagation.py", "ingress_passthrough.py", "sidecar_pair.py")


def main() -> int:
    here = Path(__file__).resolve().parent
    for name in BENCHMARKS:
        print(f"== {name}", flush=True)
        status = subprocess.run([sys.executable, str(here / name)], check=False).returncode
        if status != 0:
            print(f"bench: {name} failed with exit status {status}", file=sys.stderr)
            return status
    return 0


if __name__ == "__main__":
    sys.exit(main())
