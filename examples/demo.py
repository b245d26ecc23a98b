"""``make demo``: a multi-zone kmesh on this machine — one global control plane, zones ``zone-a`` and
``zone-b`` — with the embedded SQLite store, printing every kmeshctl command as it runs it.

1. starts the global (``kmesh-cp --mode global``), which generates its KDS certificate and zone-token key;
2. generates a zone token for each zone on the global, and starts both zone control planes with them;
3. applies a Mesh with builtin mTLS and one of each policy on the global;
4. registers, in each zone's control plane, its zone ingress and the ``echo`` instances (1 in zone-a,
   2 in zone-b) plus a client in zone-a;
5. shows what crossed zones: the zone list, every zone's dataplanes in the global's inventory, the global's
   policies inside zone-b, and zone-b's ingress (with the instances behind it) as zone-a sees it;
6. stops every process it started (also on Ctrl-C).

Everything lives in ``.kmesh-demo/`` (fresh on each run). Proxies carrying traffic across zones come with
``kmesh-proxy``; until then the demo shows the control-plane path that traffic will follow.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import orjson

from kmesh.testing import CpProcess, free_port

ROOT = Path(__file__).resolve().parent.parent
DEMO_DIR = ROOT / ".kmesh-demo"
RESOURCES = ROOT / "examples" / "resources"
MULTIZONE = ROOT / "examples" / "multizone"
ZONES = ("zone-a", "zone-b")
ECHO_INSTANCES = {"zone-a": 1, "zone-b": 2}
WAIT_S = 20.0


def kmeshctl(config: Path, *args: str, capture: bool = False) -> str:
    shown = " ".join(("kmeshctl", *args)).replace(str(ROOT) + "/", "")
    if not capture:
        print(f"\n$ {shown}", flush=True)
    env = {**os.environ, "KMESHCTL_CONFIG": str(config)}
    result = subprocess.run(
        [sys.executable, "-m", "kmesh.cli", *args], env=env, check=False, capture_output=capture, text=True
    )
    if result.returncode != 0:
        detail = f": {result.stderr.strip()}" if capture else ""
        raise SystemExit(f"demo: `{shown}` failed with exit status {result.returncode}{detail}")
    return result.stdout if capture else ""


def wait_for(what: str, probe: object) -> None:
    """Poll ``probe()`` until it is true, for at most WAIT_S seconds."""
    assert callable(probe)
    deadline = time.monotonic() + WAIT_S
    while not probe():
        if time.monotonic() > deadline:
            raise SystemExit(f"demo: gave up waiting for {what}")
        time.sleep(0.1)


def total(url: str) -> int:
    with urllib.request.urlopen(url, timeout=5) as resp:
        return int(orjson.loads(resp.read())["total"])


def main() -> int:
    shutil.rmtree(DEMO_DIR, ignore_errors=True)
    DEMO_DIR.mkdir()
    config = DEMO_DIR / "kmeshctl.yaml"
    kds_port = free_port()
    glob = CpProcess("--mode", "global", "--kds-port", str(kds_port), data_dir=DEMO_DIR / "global")
    zones: dict[str, CpProcess] = {}
    try:
        print(f"starting the global control plane (state in {DEMO_DIR.name}/global/kmesh.db)", flush=True)
        glob.start()
        kmeshctl(config, "config", "control-planes", "add", "--name", "global", "--address", glob.api_url)
        for zone in ZONES:
            token_file = DEMO_DIR / f"{zone}.token"
            token = kmeshctl(
                config, "--cp-address", glob.api_url, "generate", "zone-token", "--zone", zone, capture=True
            )
            token_file.write_text(token)
            token_file.chmod(0o600)
            print(
                f"\n$ kmeshctl generate zone-token --zone {zone} > {DEMO_DIR.name}/{zone}.token", flush=True
            )
            zones[zone] = CpProcess(
                "--mode", "zone", "--zone", zone,
                "--kds-global-address", f"kds://127.0.0.1:{kds_port}",
                "--kds-ca-file", str(DEMO_DIR / "global" / "kds-ca.pem"),
                "--kds-token-file", str(token_file),
                data_dir=DEMO_DIR / zone,
            )  # fmt: skip
            print(f"starting {zone}'s control plane, joined to the global", flush=True)
            zones[zone].start()
            kmeshctl(
                config, "config", "control-planes", "add", "--name", zone, "--address", zones[zone].api_url
            )
        kmeshctl(config, "config", "control-planes", "switch", "--name", "global")
        kmeshctl(config, "apply", "-f", str(RESOURCES / "mesh.yaml"))
        kmeshctl(config, "apply", "-f", str(RESOURCES / "policies.yaml"))

        for zone, cp in zones.items():
            at = ("--cp-address", cp.api_url)
            kmeshctl(config, *at, "apply", "-f", str(MULTIZONE / "zoneingress.yaml"),
                     "--var", f"zone={zone}", "--var", f"port={free_port()}")  # fmt: skip
            for i in range(1, ECHO_INSTANCES[zone] + 1):
                kmeshctl(config, *at, "apply", "-f", str(MULTIZONE / "echo-dataplane.yaml"),
                         "--var", f"name=echo-{i}", "--var", f"port={free_port()}",
                         "--var", f"service_port={free_port()}")  # fmt: skip
        kmeshctl(config, "--cp-address", zones["zone-a"].api_url, "apply", "-f",
                 str(MULTIZONE / "client-dataplane.yaml"), "--var", f"port={free_port()}",
                 "--var", f"service_port={free_port()}", "--var", f"outbound_port={free_port()}")  # fmt: skip

        expected = sum(ECHO_INSTANCES.values()) + 1
        wait_for(
            "every zone's dataplanes on the global",
            lambda: total(f"{glob.api_url}/meshes/default/dataplanes") == expected,
        )
        wait_for(
            "zone-b's ingress in zone-a",
            lambda: total(f"{zones['zone-a'].api_url}/zoneingresses") == 2,
        )
        kmeshctl(config, "get", "zones")
        kmeshctl(config, "get", "dataplanes")
        kmeshctl(config, "--cp-address", zones["zone-b"].api_url, "get", "meshtrafficpermissions")
        kmeshctl(config, "--cp-address", zones["zone-a"].api_url, "get", "zone-ingresses")
        print(
            "\nThe policies applied on the global reached both zones, both zones' dataplanes are in the"
            "\nglobal's inventory, and each zone knows the other's ingress. Traffic between zones flows"
            "\nthrough these ingresses once kmesh-proxy runs beside the services.",
            flush=True,
        )
    except KeyboardInterrupt:
        print("\ninterrupted: stopping every control plane", flush=True)
    finally:
        for name, cp in [*zones.items(), ("global", glob)]:
            if cp.returncode is None and cp.pid is not None:
                status = cp.stop()
                print(f"{name} stopped (exit status {status})", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
