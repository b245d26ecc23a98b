"""``make demo``: a multi-zone kmesh on this machine carrying traffic between zones.

1. starts the global (``kmesh-cp --mode global``) and zones ``zone-a`` and ``zone-b`` joined to it with zone
   tokens, each with its SQLite store under ``.kmesh-demo/``;
2. applies, on the global, a Mesh with builtin mTLS, one of each policy, and a MeshTrafficPermission that
   lets ``client`` call ``echo``;
3. starts a zone ingress (``kmesh-proxy --proxy-type ingress``) in each zone, and the ``echo`` service: one
   instance in zone-a, two in zone-b, each an echo app (``examples/apps/echo.py``) with its
   ``kmesh-proxy`` sidecar; and a sidecar for the client in zone-a;
4. is the client app itself: it calls ``echo`` through its sidecar's outbound, one connection and one line
   per call, and prints which instance in which zone answered, with running totals per zone. zone-b has
   twice the instances, so it answers about two calls in three: zone-a's are direct mTLS, zone-b's go
   through zone-b's ingress, which routes on the TLS SNI without decrypting;
5. shows ``kmeshctl get zones`` and the dataplanes, and stops every process it started.

``DEMO_CALLS`` sets the number of calls (60, about 4 a second); ``DEMO_CALLS=0`` calls until Ctrl-C.
Ctrl-C at any point stops every process. Logs stay in ``.kmesh-demo/`` (fresh on each run).
"""

from __future__ import annotations

import functools
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

from kmesh.dps import DP_CA_FILE
from kmesh.errors import KmeshError
from kmesh.testing import CpProcess, ProxyProcess, free_port

ROOT = Path(__file__).resolve().parent.parent
DEMO_DIR = ROOT / ".kmesh-demo"
RESOURCES = ROOT / "examples" / "resources"
MULTIZONE = ROOT / "examples" / "multizone"
ECHO_APP = ROOT / "examples" / "apps" / "echo.py"
ZONES = ("zone-a", "zone-b")
ECHO_INSTANCES = {"zone-a": 1, "zone-b": 2}
MESH = "default"
WAIT_S = 30.0
CALL_INTERVAL_S = 0.25
CALL_TIMEOUT_S = 5.0


class Stoppable(Protocol):
    def stop(self) -> object: ...


class App:
    """An app process (here: an echo instance) with its log in the demo dir."""

    def __init__(self, name: str, argv: list[str]) -> None:
        self.name = name
        self.log_path = DEMO_DIR / "apps" / f"{name}.log"
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.terminate()
        try:
            return self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.wait()


def shown(argv: list[str]) -> str:
    """A command as a user would type it: ``kmesh-proxy``/``kmeshctl``, paths relative to the repo."""
    text = " ".join(argv).replace(f"{sys.executable} -m kmesh.proxy", "kmesh-proxy")
    text = text.replace(f"{sys.executable} -m kmesh.cli", "kmeshctl").replace(sys.executable, "python")
    return text.replace(str(ROOT) + "/", "")


def without_defaults(argv: list[str]) -> list[str]:
    """A kmesh-proxy command without the flags that only repeat a default, to keep it short on screen."""
    defaults = {("--proxy-type", "sidecar"), ("--admin-address", "127.0.0.1"), ("--log-level", "info")}
    out: list[str] = []
    for arg in argv:
        if out and (out[-1], arg) in defaults:
            out.pop()
        else:
            out.append(arg)
    return out


def kmeshctl(config: Path, *args: str, capture: bool = False) -> str:
    argv = [sys.executable, "-m", "kmesh.cli", *args]
    if not capture:
        print(f"\n$ {shown(argv)}", flush=True)
    env = {**os.environ, "KMESHCTL_CONFIG": str(config)}
    result = subprocess.run(argv, env=env, check=False, capture_output=capture, text=True)
    if result.returncode != 0:
        detail = f": {result.stderr.strip()}" if capture else ""
        raise SystemExit(f"demo: `{shown(argv)}` failed with exit status {result.returncode}{detail}")
    return result.stdout if capture else ""


def secret_file(config: Path, name: str, *args: str) -> Path:
    """Run a ``kmeshctl generate ...`` and keep what it prints in ``.kmesh-demo/<name>`` (owner only)."""
    path = DEMO_DIR / name
    path.touch(mode=0o600)
    path.write_text(kmeshctl(config, *args, capture=True))
    print(f"\n$ {shown([sys.executable, '-m', 'kmesh.cli', *args])} > {DEMO_DIR.name}/{name}", flush=True)
    return path


def wait_for(what: str, probe: Callable[[], bool]) -> None:
    """Poll ``probe()`` until it is true, for at most WAIT_S seconds."""
    deadline = time.monotonic() + WAIT_S
    while True:
        try:
            if probe():
                return
        except (OSError, KeyError, ValueError):
            pass  # not there yet
        if time.monotonic() > deadline:
            raise SystemExit(f"demo: gave up waiting for {what}")
        time.sleep(0.1)


def answers_200(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=5) as resp:
            return bool(resp.status == 200)
    except urllib.error.HTTPError:
        return False


def start_proxy(proxy: ProxyProcess) -> ProxyProcess:
    print(f"$ {shown(proxy.command())} &", flush=True)
    proxy.launch()
    return proxy


def remote_instances(client: ProxyProcess, outbound_port: int) -> dict[str, int]:
    """Instances per zone behind the client's outbound, as its sidecar's config says."""
    config: dict[str, Any] = client.config_dump()["config"]
    name = next(o["cluster"] for o in config["outbounds"] if o["port"] == outbound_port)
    cluster = next(c for c in config["clusters"] if c["name"] == name)
    counts: Counter[str] = Counter()
    for endpoint in cluster["endpoints"]:
        counts[endpoint["zone"]] += endpoint["weight"] // cluster["weight_scale"]
    return dict(counts)


def call_echo(port: int, line: str) -> str | None:
    """One connection to the sidecar's outbound, one line out and one back (None: no answer)."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=CALL_TIMEOUT_S) as sock:
            sock.sendall(f"{line}\n".encode())
            with sock.makefile("rb") as answers:
                answer = answers.readline().decode(errors="replace").strip()
    except OSError:
        return None
    return answer or None


def run_calls(port: int, calls: int) -> None:
    totals: Counter[str] = Counter()
    print(f"\ncalling echo through the client's sidecar on 127.0.0.1:{port}", end="", flush=True)
    print(" (Ctrl-C to stop)" if calls == 0 else f" ({calls} calls)", flush=True)
    i = 0
    while calls == 0 or i < calls:
        i += 1
        answer = call_echo(port, f"hello {i}")
        if answer is None:
            totals["no answer"] += 1
            who = "(no answer)"
        else:
            instance, zone, _ = answer.split(" ", 2)
            totals[zone] += 1
            who = f"{instance:<9} {zone}"
        running = "  ".join(f"{zone} {n:>3}" for zone, n in sorted(totals.items()))
        print(f"call {i:>3}  {who:<18}  totals: {running}", flush=True)
        time.sleep(CALL_INTERVAL_S)
    share = totals["zone-b"] / max(i, 1)
    print(
        f"zone-b answered {totals['zone-b']} of {i} calls ({share:.0%}): its ingress weighs its 2 instances "
        f"against zone-a's 1",
        flush=True,
    )


class Demo:
    """The processes of the demo, started in order and stopped in reverse."""

    def __init__(self) -> None:
        self.config = DEMO_DIR / "kmeshctl.yaml"
        self.started: list[tuple[str, Stoppable]] = []
        self.zones: dict[str, CpProcess] = {}
        self.global_url = ""

    def ctl(self, *args: str, capture: bool = False) -> str:
        return kmeshctl(self.config, *args, capture=capture)

    def control_planes(self) -> None:
        kds_port = free_port()
        glob = CpProcess("--mode", "global", "--kds-port", str(kds_port), data_dir=DEMO_DIR / "global")
        print(f"starting the global control plane (state in {DEMO_DIR.name}/global/kmesh.db)", flush=True)
        self.started.append(("global", glob))  # before start: Ctrl-C while it starts still stops it
        glob.start()
        self.global_url = glob.api_url
        self.ctl("config", "control-planes", "add", "--name", "global", "--address", glob.api_url)
        # Tokens first: adding a control plane to kmeshctl's config makes it the active one.
        tokens = {
            zone: secret_file(self.config, f"{zone}.token", "generate", "zone-token", "--zone", zone)
            for zone in ZONES
        }
        for zone, token in tokens.items():
            cp = CpProcess(
                "--mode", "zone", "--zone", zone,
                "--kds-global-address", f"kds://127.0.0.1:{kds_port}",
                "--kds-ca-file", str(DEMO_DIR / "global" / "kds-ca.pem"),
                "--kds-token-file", str(token),
                data_dir=DEMO_DIR / zone,
            )  # fmt: skip
            print(f"starting {zone}'s control plane, joined to the global", flush=True)
            self.started.append((zone, cp))
            cp.start()
            self.zones[zone] = cp
            self.ctl("config", "control-planes", "add", "--name", zone, "--address", cp.api_url)
        self.ctl("config", "control-planes", "switch", "--name", "global")

    def policies(self) -> None:
        self.ctl("apply", "-f", str(MULTIZONE / "mesh.yaml"))
        self.ctl("apply", "-f", str(RESOURCES / "policies.yaml"))
        self.ctl("apply", "-f", str(MULTIZONE / "permissions.yaml"))
        for zone, cp in self.zones.items():
            url = f"{cp.api_url}/meshes/{MESH}/secrets/{MESH}.ca-builtin-cert-ca-1"
            wait_for(f"the mesh CA in {zone}", functools.partial(answers_200, url))

    def proxy(self, zone: str, name: str, file: str, token: Path, variables: dict[str, str]) -> ProxyProcess:
        """Start a kmesh-proxy of ``zone`` (an ingress when ``name`` ends so) without waiting."""
        cp = self.zones[zone]
        proxy = ProxyProcess(
            f"dps://127.0.0.1:{cp.dp_port}",
            ca_file=cp.data_dir / DP_CA_FILE,
            dataplane_file=MULTIZONE / file,
            token_file=token,
            proxy_type="ingress" if name.endswith("-ingress") else "sidecar",
            variables=variables,
            data_dir=DEMO_DIR / "proxies" / name,
            name=name,
        )
        print(f"$ {shown(without_defaults(proxy.command()))} &", flush=True)
        proxy.launch()
        self.started.append((name if proxy.proxy_type == "ingress" else f"{name} sidecar", proxy))
        return proxy

    def echo_app(self, zone: str, name: str, port: int) -> None:
        argv = [sys.executable, str(ECHO_APP), "--port", str(port), "--name", name, "--zone", zone]
        print(f"$ {shown(argv)} &", flush=True)
        self.started.append((f"{name} app", App(name, argv)))

    def mesh(self) -> tuple[ProxyProcess, int]:
        """Ingresses, echo instances and the client's sidecar; the sidecar and its outbound port."""
        tokens = {
            service: secret_file(
                self.config, f"{service}.token",
                "generate", "dataplane-token", "--mesh", MESH, "--tag", f"kuma.io/service={service}",
            )
            for service in ("echo", "client")
        }  # fmt: skip
        print("\nstarting a zone ingress per zone, the echo instances and the client's sidecar", flush=True)
        proxies: list[ProxyProcess] = []
        for zone in ZONES:
            name = f"{zone}-ingress"
            token = secret_file(
                self.config, f"{name}.token", "generate", "zone-token", "--zone", zone, "--scope", "ingress"
            )
            ingress_vars = {"zone": zone, "port": str(free_port())}
            proxies.append(self.proxy(zone, name, "zoneingress.yaml", token, ingress_vars))
            for i in range(1, ECHO_INSTANCES[zone] + 1):
                name, app_port = f"echo-{zone[-1]}-{i}", free_port()
                self.echo_app(zone, name, app_port)
                echo_vars = {"mesh": MESH, "name": name, "service": "echo", "port": str(free_port()),
                             "service_port": str(app_port)}  # fmt: skip
                proxies.append(self.proxy(zone, name, "service-dataplane.yaml", tokens["echo"], echo_vars))
        outbound_port = free_port()
        client_vars = {"mesh": MESH, "name": "client", "service": "client", "port": str(free_port()),
                       "service_port": str(free_port()), "outbound_service": "echo",
                       "outbound_port": str(outbound_port)}  # fmt: skip
        client = self.proxy("zone-a", "client", "caller-dataplane.yaml", tokens["client"], client_vars)
        for proxy in [*proxies, client]:
            proxy.wait_ready()
        wait_for(
            "the client's sidecar to know every echo instance",
            lambda: remote_instances(client, outbound_port) == ECHO_INSTANCES,
        )
        return client, outbound_port

    def show(self) -> None:
        self.ctl("get", "zones")
        self.ctl("get", "dataplanes")
        self.ctl("--cp-address", self.zones["zone-a"].api_url, "get", "zone-ingresses")

    def stop(self) -> None:
        print("\nstopping every process the demo started", flush=True)
        for name, process in reversed(self.started):
            if isinstance(process, CpProcess) and process.pid is None:
                continue  # never started
            try:
                status = process.stop()
                print(f"{name} stopped (exit status {status})", flush=True)
            except Exception as exc:
                print(f"{name}: {exc}", flush=True)


def interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def main() -> int:
    calls = int(os.environ.get("DEMO_CALLS", "60"))
    # Ctrl-C (and a SIGTERM) stop the demo wherever it is, even when started from a shell that ignores
    # SIGINT in background jobs.
    signal.signal(signal.SIGINT, interrupt)
    signal.signal(signal.SIGTERM, interrupt)
    shutil.rmtree(DEMO_DIR, ignore_errors=True)
    DEMO_DIR.mkdir()
    demo = Demo()
    try:
        demo.control_planes()
        demo.policies()
        _, outbound_port = demo.mesh()
        run_calls(outbound_port, calls)
        demo.show()
    except KeyboardInterrupt:
        print("\ninterrupted", flush=True)
    except KmeshError as exc:  # a process that did not start: its log's tail says why
        print(f"demo: {exc}", flush=True)
        return 1
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C must not leave processes behind
        demo.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
