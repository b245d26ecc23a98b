"""``make demo``: a kmesh control plane on this machine, Kuma's example resources applied, and read back.

What it does, step by step, printing each command as it runs it:
1. starts a standalone ``kmesh-cp`` with its SQLite store in ``.kmesh-demo/`` (fresh on every run);
2. points ``kmeshctl`` at it (its own config file inside ``.kmesh-demo/``);
3. ``kmeshctl apply -f`` each file under ``examples/resources/``;
4. ``kmeshctl get`` every type back as tables, and one resource as YAML;
5. stops the control plane with SIGTERM.

The multi-zone demo (global, two zones, ingresses, cross-zone traffic) grows out of this one as the KDS
and proxy work lands.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from kmesh.testing import CpProcess

ROOT = Path(__file__).resolve().parent.parent
DEMO_DIR = ROOT / ".kmesh-demo"
RESOURCES = ROOT / "examples" / "resources"
APPLY_ORDER = ("mesh", "secret", "zone", "zoneingress", "zoneegress", "dataplane", "policies")
GET_TYPES = (
    ("meshes",),
    ("zones",),
    ("zone-ingresses",),
    ("zoneegresses",),
    ("dataplanes",),
    ("secrets",),
    ("meshtrafficpermissions",),
    ("meshretries",),
    ("meshtimeouts",),
    ("meshloadbalancingstrategies",),
    ("dataplane", "web-1", "-o", "yaml"),
)


def kmeshctl(config: Path, *args: str) -> None:
    shown = " ".join(("kmeshctl", *args)).replace(str(ROOT) + "/", "")
    print(f"\n$ {shown}", flush=True)
    env = {**os.environ, "KMESHCTL_CONFIG": str(config)}
    result = subprocess.run([sys.executable, "-m", "kmesh.cli", *args], env=env, check=False)
    if result.returncode != 0:
        raise SystemExit(f"demo: `{shown}` failed with exit status {result.returncode}")


def main() -> int:
    shutil.rmtree(DEMO_DIR, ignore_errors=True)
    DEMO_DIR.mkdir()
    config = DEMO_DIR / "kmeshctl.yaml"
    print(f"starting kmesh-cp (standalone, SQLite store in {DEMO_DIR.relative_to(ROOT)}/)", flush=True)
    with CpProcess(data_dir=DEMO_DIR / "cp") as cp:
        print(f"control plane API at {cp.api_url}", flush=True)
        kmeshctl(config, "config", "control-planes", "add", "--name", "demo", "--address", cp.api_url)
        for name in APPLY_ORDER:
            kmeshctl(config, "apply", "-f", str(RESOURCES / f"{name}.yaml"))
        for args in GET_TYPES:
            kmeshctl(config, "get", *args)
        kmeshctl(config, "version")
        status = cp.stop()
    where = DEMO_DIR.relative_to(ROOT)
    print(f"\nkmesh-cp stopped (exit status {status}); its store and log are in {where}/")
    return 0 if status == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
