"""Helpers of the traffic tests: apps as real processes, a mesh of real ``kmesh-proxy`` processes on top of
the e2e ``Cluster``, and the one piece of test code on the data path, the client that opens connections
to a sidecar's outbound.

- ``AppProcess`` runs an app (``examples/apps/echo.py``, ``python -m http.server``) and waits until its
  port accepts connections.
- ``Traffic`` holds the mesh of the module: its ingresses, sidecars and apps by name, the callers' outbound
  ports, and the files the proxies were started with; ``Traffic.close`` stops every process.
- ``call`` / ``calls`` make one-line calls through an outbound; ``None`` stands for a call that got no
  answer (refused, reset, closed, timed out).
- ``cluster_of`` reads the config a sidecar holds (its ``/config_dump``) for the cluster of one outbound.
- ``echo_mesh`` builds a module's mesh: the mesh and its permission on the global, an ingress in each zone,
  echo instances (and any other services), and callers; ``ProxyFactory`` makes the proxies it starts.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from kmesh.dps import DP_CA_FILE
from kmesh.testing import CpProcess, ProxyProcess, free_port

from .support import TIMEOUT_S, ZONE_A, ZONE_B, Cluster, eventually

ROOT: Final = Path(__file__).resolve().parents[2]
EXAMPLES: Final = ROOT / "examples"
ECHO_APP: Final = EXAMPLES / "apps" / "echo.py"
EMBEDDED_CLIENT: Final = EXAMPLES / "embedded" / "client.py"
SERVICE_DATAPLANE: Final = EXAMPLES / "multizone" / "service-dataplane.yaml"
CALLER_DATAPLANE: Final = EXAMPLES / "multizone" / "caller-dataplane.yaml"
ZONE_INGRESS: Final = EXAMPLES / "multizone" / "zoneingress.yaml"
CALL_TIMEOUT_S: Final = 5.0
CA_BACKEND: Final = "ca-1"  # the builtin CA of every module's mesh
ECHO_INSTANCES: Final = {"echo-a-1": ZONE_A, "echo-b-1": ZONE_B, "echo-b-2": ZONE_B}  # name: zone


# -- apps ---------------------------------------------------------------------------------------------------


class AppProcess:
    """An app as a subprocess, logging to ``log_path``; ``start`` waits until ``port`` accepts connections
    (bounded), ``stop`` sends SIGTERM, ``kill`` SIGKILL. ``start`` again runs it anew on the same port."""

    def __init__(self, name: str, argv: Sequence[str], port: int, log_path: Path) -> None:
        self.name = name
        self.argv = list(argv)
        self.port = port
        self.log_path = log_path
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def start(self, timeout_s: float = 15.0) -> AppProcess:
        assert not self.running, f"{self.name} is already running"
        with open(self.log_path, "ab") as log:
            self._proc = subprocess.Popen(
                self.argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, cwd=ROOT
            )
        deadline = time.monotonic() + timeout_s
        while True:
            status = self._proc.poll()
            assert status is None, f"{self.name} exited with {status}:\n{self.tail()}"
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", self.port), 0.5):
                return self
            assert time.monotonic() < deadline, f"{self.name} not listening on {self.port}:\n{self.tail()}"
            time.sleep(0.05)

    def stop(self) -> None:
        if self._proc is not None and self._proc.poll() is None:
            self._proc.send_signal(signal.SIGTERM)
            try:
                self._proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()

    def kill(self) -> None:
        if self._proc is not None and self._proc.poll() is None:
            self._proc.kill()
            self._proc.wait()

    def tail(self, lines: int = 20) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:]) or "(empty)"


def echo_app(name: str, zone: str, port: int, log_dir: Path) -> AppProcess:
    argv = [sys.executable, str(ECHO_APP), "--port", str(port), "--name", name, "--zone", zone]
    return AppProcess(name, argv, port, log_dir / f"{name}.log")


def http_app(name: str, port: int, directory: Path, log_dir: Path) -> AppProcess:
    argv = [sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1"]
    argv += ["--directory", str(directory)]
    return AppProcess(name, argv, port, log_dir / f"{name}.log")


# -- the mesh on real processes -----------------------------------------------------------------------------


def dp_address(cp: CpProcess) -> str:
    return f"dps://127.0.0.1:{cp.dp_port}"


def dp_ca(cp: CpProcess) -> Path:
    return cp.data_dir / DP_CA_FILE


@dataclass
class Traffic:
    """The module's mesh: processes by name, each caller's outbound port, the sidecars' token file."""

    cluster: Cluster
    mesh: str
    root: Path
    token_file: Path
    ingresses: dict[str, ProxyProcess] = field(default_factory=dict)
    sidecars: dict[str, ProxyProcess] = field(default_factory=dict)
    apps: dict[str, AppProcess] = field(default_factory=dict)
    outbound_ports: dict[str, int] = field(default_factory=dict)

    def proxies(self) -> list[ProxyProcess]:
        return [*self.sidecars.values(), *self.ingresses.values()]

    def close(self) -> None:
        """Stop every sidecar (SIGTERM, so each leaves the mesh), then the ingresses and the apps; keeps
        going past failures and raises the first at the end."""
        errors: list[BaseException] = []
        for proxy in self.proxies():
            try:
                if proxy.running:
                    proxy.stop()
            except BaseException as exc:
                errors.append(exc)
            finally:
                proxy.close()
        for app in self.apps.values():
            try:
                app.stop()
            except BaseException as exc:
                errors.append(exc)
        if errors:
            raise errors[0]

    def diagnostics(self) -> str:
        """The last lines of every proxy's log, for a failure message."""
        return "\n".join(f"--- {p.name} ({p.proxy_type}) pid {p.pid}:\n{p.tail(15)}" for p in self.proxies())


def start_all(proxies: Iterable[ProxyProcess]) -> None:
    """Launch the proxies at once, then wait until each is ready (each wait bounded)."""
    started = [p.launch() for p in proxies]
    for proxy in started:
        proxy.wait_ready()


def cluster_of(proxy: ProxyProcess, outbound_port: int) -> dict[str, Any]:
    """The cluster a sidecar sends its outbound on ``outbound_port`` to, from its ``/config_dump``."""
    config = proxy.config_dump()["config"]
    outbound = [o for o in config["outbounds"] if o["port"] == outbound_port]
    assert outbound, f"{proxy.name}: no outbound on port {outbound_port} in {config['outbounds']}"
    clusters = {c["name"]: c for c in config["clusters"]}
    cluster: dict[str, Any] = clusters[outbound[0]["cluster"]]
    return cluster


def endpoint_summary(cluster: dict[str, Any]) -> list[tuple[str, str, int, int]]:
    """``(via, zone, weight, priority)`` of each endpoint of a cluster, in its order."""
    return [(e["via"], e["zone"], e["weight"], e["priority"]) for e in cluster["endpoints"]]


# -- the client on the data path ----------------------------------------------------------------------------


async def call(port: int, line: str, timeout_s: float = CALL_TIMEOUT_S) -> str | None:
    """One connection to ``127.0.0.1:port``, ``line`` out, the one-line answer back; None when the
    connection was refused, reset, closed or timed out without an answer."""
    writer: asyncio.StreamWriter | None = None
    try:
        async with asyncio.timeout(timeout_s):
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(f"{line}\n".encode())
            await writer.drain()
            answer = await reader.readline()
    except (OSError, TimeoutError):
        return None
    finally:
        if writer is not None:
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()
    text = answer.decode(errors="replace").rstrip("\n")
    return text or None


async def calls(
    port: int, count: int, parallel: int = 20, timeout_s: float = CALL_TIMEOUT_S
) -> list[str | None]:
    """``count`` calls through ``port``, at most ``parallel`` at a time; the answers in call order."""
    gate = asyncio.Semaphore(parallel)

    async def one(i: int) -> str | None:
        async with gate:
            return await call(port, f"call-{i}", timeout_s)

    return list(await asyncio.gather(*(one(i) for i in range(count))))


def answered_by(answer: str) -> tuple[str, str]:
    """``(instance, zone)`` of an echo answer ``<name> <zone> <line>``."""
    name, zone, _ = answer.split(" ", 2)
    return name, zone


def tally(answers: Sequence[str | None]) -> tuple[Counter[str], Counter[str], int]:
    """Answers per zone, per instance, and the number of calls without an answer."""
    zones: Counter[str] = Counter()
    instances: Counter[str] = Counter()
    for answer in answers:
        if answer is not None:
            name, zone = answered_by(answer)
            zones[zone] += 1
            instances[name] += 1
    return zones, instances, sum(a is None for a in answers)


@dataclass
class Takeover:
    """What a failover looked like from the caller: seconds from the fault to the first answer from the
    wanted zone, and what the calls in between got."""

    seconds: float
    unanswered: int
    other_zone: int


async def first_answer_from(
    port: int, zone: str, since: float, *, every_s: float = 0.05, timeout_s: float = 60.0
) -> Takeover:
    """Start a call every ``every_s`` until one is answered from ``zone``; the time of that answer since
    ``since`` (a ``time.monotonic()``). Raises AssertionError after ``timeout_s``."""
    found: asyncio.Future[float] = asyncio.get_running_loop().create_future()
    unanswered = other = 0

    async def attempt(i: int) -> None:
        nonlocal unanswered, other
        answer = await call(port, f"failover-{i}")
        if answer is None:
            unanswered += 1
        elif answered_by(answer)[1] == zone:
            if not found.done():
                found.set_result(time.monotonic() - since)
        else:
            other += 1

    tasks: set[asyncio.Task[None]] = set()
    deadline = time.monotonic() + timeout_s
    i = 0
    try:
        while not found.done():
            assert time.monotonic() < deadline, (
                f"no answer from {zone} within {timeout_s:g}s ({unanswered} unanswered, {other} from "
                f"elsewhere)"
            )
            if len(tasks) < 100:
                task = asyncio.create_task(attempt(i))
                tasks.add(task)
                task.add_done_callback(tasks.discard)
                i += 1
            await asyncio.sleep(every_s)
    finally:
        for task in list(tasks):
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    return Takeover(found.result(), unanswered, other)


async def until_all_from(port: int, zone: str, *, count: int = 20, timeout_s: float = TIMEOUT_S) -> None:
    """Wait until ``count`` calls in a row are all answered from ``zone``. Raises AssertionError naming what
    the last round got after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while True:
        answers = await calls(port, count, parallel=5)
        zones, _, unanswered = tally(answers)
        if zones[zone] == count:
            return
        assert time.monotonic() < deadline, (
            f"calls not all answered from {zone} within {timeout_s:g}s; last round: {dict(zones)}, "
            f"{unanswered} unanswered"
        )
        await asyncio.sleep(0.2)


def clean_env() -> dict[str, str]:
    """The environment for a subprocess of the test: the caller's without ``KMESH_*`` settings (except
    ``KMESH_NO_EXTENSIONS``)."""
    return {k: v for k, v in os.environ.items() if not k.startswith("KMESH_") or k == "KMESH_NO_EXTENSIONS"}


# -- building a mesh of proxies (any mesh name) -------------------------------------------------------------


def issue_dataplane_token(cluster: Cluster, mesh: str, valid_for: str = "4h") -> str:
    """A dataplane token for ``mesh`` made through the global's ``POST /tokens/dataplane``."""
    status, issued = cluster.g.request("POST", "/tokens/dataplane", {"mesh": mesh, "validFor": valid_for})
    assert status == 200, f"POST /tokens/dataplane {mesh}: {status} {issued}"
    assert isinstance(issued, str)
    return issued


def issue_ingress_token(cluster: Cluster, zone: str) -> str:
    """A zone token of scope ``ingress`` for ``zone`` made through the global's ``POST /tokens/zone``."""
    body = {"zone": zone, "scope": ["ingress"]}
    status, issued = cluster.g.request("POST", "/tokens/zone", body)
    assert status == 200, f"POST /tokens/zone {body}: {status} {issued}"
    assert isinstance(issued, str)
    return issued


class ProxyFactory:
    """Makes proxies (not started) of ``traffic.mesh``, each registered in ``traffic`` as it is made: a
    zone's ingress, a service instance's sidecar, a caller's sidecar with one outbound. The ingress tokens
    are made on the global as each ingress is made."""

    def __init__(self, traffic: Traffic) -> None:
        self.t = traffic

    def ingress(self, zone: str) -> ProxyProcess:
        cp = self.t.cluster.zones[zone]
        proxy = ProxyProcess(
            dp_address(cp),
            dataplane_file=ZONE_INGRESS,
            token=issue_ingress_token(self.t.cluster, zone),
            proxy_type="ingress",
            variables={"zone": zone, "port": str(free_port())},
            ca_file=dp_ca(cp),
            data_dir=self.t.root / f"{zone}-ingress",
            name=f"{zone}-ingress",
        )
        self.t.ingresses[zone] = proxy
        return proxy

    def service(self, zone: str, name: str, service: str, app_port: int) -> ProxyProcess:
        return self._sidecar(zone, name, SERVICE_DATAPLANE, service=service, service_port=app_port)

    def caller(self, zone: str, name: str, service: str, to: str) -> ProxyProcess:
        port = free_port()
        self.t.outbound_ports[name] = port
        return self._sidecar(
            zone,
            name,
            CALLER_DATAPLANE,
            service=service,
            service_port=free_port(),
            outbound_service=to,
            outbound_port=port,
        )

    def _sidecar(self, zone: str, name: str, file: Path, **variables: str | int) -> ProxyProcess:
        cp = self.t.cluster.zones[zone]
        proxy = ProxyProcess(
            dp_address(cp),
            dataplane_file=file,
            token_file=self.t.token_file,
            variables={
                "mesh": self.t.mesh,
                "name": name,
                "port": str(free_port()),
                **{k: str(v) for k, v in variables.items()},
            },
            ca_file=dp_ca(cp),
            data_dir=self.t.root / name,
            name=name,
        )
        self.t.sidecars[name] = proxy
        return proxy


# -- a module's mesh ----------------------------------------------------------------------------------------


def mesh_doc(mesh: str) -> dict[str, Any]:
    """A Mesh with builtin mTLS (CA backend ``CA_BACKEND``) and locality awareness off."""
    backend = CA_BACKEND
    return {
        "type": "Mesh",
        "name": mesh,
        "mtls": {"enabledBackend": backend, "backends": [{"name": backend, "type": "builtin"}]},
        "routing": {"localityAwareLoadBalancing": False},
    }


def permission_doc(mesh: str, callers: Iterable[str]) -> dict[str, Any]:
    """The MeshTrafficPermission ``callers`` of ``mesh``: the services ``callers`` allowed in."""
    allow = [
        {"targetRef": {"kind": "MeshService", "name": caller}, "default": {"action": "Allow"}}
        for caller in callers
    ]
    return {
        "type": "MeshTrafficPermission",
        "mesh": mesh,
        "name": "callers",
        "spec": {"targetRef": {"kind": "Mesh"}, "from": allow},
    }


def locality_doc(mesh: str, name: str) -> dict[str, Any]:
    """A MeshLoadBalancingStrategy ``name`` by which echo's callers prefer their own zone."""
    return {
        "type": "MeshLoadBalancingStrategy",
        "mesh": mesh,
        "name": name,
        "spec": {
            "targetRef": {"kind": "Mesh"},
            "to": [
                {
                    "targetRef": {"kind": "MeshService", "name": "echo"},
                    "default": {"localityAwareness": {"disabled": False}},
                }
            ],
        },
    }


def wait_for_mesh(cluster: Cluster, mesh: str) -> None:
    """Wait until both zones hold ``mesh``'s CA and its permission ``callers``."""
    secret = f"/meshes/{mesh}/secrets/{mesh}.ca-builtin-cert-{CA_BACKEND}"

    def in_zones() -> None:
        for zone in (ZONE_A, ZONE_B):
            api = cluster.api(zone)
            assert api.get(secret)[0] == 200, f"the CA of {mesh} not yet in {zone}"
            status, _ = api.get(f"/meshes/{mesh}/meshtrafficpermissions/callers")
            assert status == 200, f"the permission not yet in {zone}"

    eventually(in_zones, f"mesh {mesh}, its CA and its permission in both zones")


@contextlib.contextmanager
def echo_mesh(
    cluster: Cluster,
    root: Path,
    mesh: str,
    *,
    allowed: Sequence[str],
    callers: Sequence[tuple[str, str, str, str]],
    ready: Callable[[Traffic], None],
    more_services: Callable[[Traffic, ProxyFactory], list[ProxyProcess]] | None = None,
) -> Iterator[Traffic]:
    """A module's mesh on real processes, stopped on leaving: with the cluster healthy, ``mesh``
    (``mesh_doc``) and its permission (``allowed`` in) put on the global and waited for in both zones;
    the dataplane token in ``root``; an ingress in each zone; an echo app and its sidecar for each of
    ``ECHO_INSTANCES``, started with what ``more_services`` makes; then the ``callers``
    (``(zone, name, service, to)``: ``ProxyFactory.caller``); then ``ready`` (a wait for the routes).
    When anything fails before the mesh is handed over, every proxy's last log lines are printed."""
    cluster.ensure_healthy()
    cluster.g.put_ok(f"/meshes/{mesh}", mesh_doc(mesh))
    cluster.g.put_ok(f"/meshes/{mesh}/meshtrafficpermissions/callers", permission_doc(mesh, allowed))
    wait_for_mesh(cluster, mesh)

    token_file = root / "dataplane.token"
    token_file.touch(mode=0o600)
    token_file.write_text(issue_dataplane_token(cluster, mesh))

    t = Traffic(cluster=cluster, mesh=mesh, root=root, token_file=token_file)
    make = ProxyFactory(t)
    try:
        start_all([make.ingress(ZONE_A), make.ingress(ZONE_B)])
        services = []
        for name, zone in ECHO_INSTANCES.items():
            app = t.apps[name] = echo_app(name, zone, free_port(), root).start()
            services.append(make.service(zone, name, "echo", app.port))
        if more_services is not None:
            services += more_services(t, make)
        start_all(services)
        start_all([make.caller(*caller) for caller in callers])
        ready(t)
        yield t
    except BaseException:
        print(t.diagnostics())
        raise
    finally:
        t.close()


# -- a steady stream of calls -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Outcome:
    """One call of a ``CallStream``: when it started (``time.monotonic()``) and its answer (None: none)."""

    started: float
    answer: str | None

    @property
    def zone(self) -> str | None:
        return None if self.answer is None else answered_by(self.answer)[1]


class CallStream:
    """Calls through an outbound at a steady pace in the background, each outcome kept with its start time,
    so a test can see what callers got while a fault hit: ``async with CallStream(port) as stream:``.
    At most ``max_in_flight`` calls run at once (a hung path does not pile up connections)."""

    def __init__(self, port: int, *, every_s: float = 0.02, max_in_flight: int = 50) -> None:
        self.port = port
        self.every_s = every_s
        self.max_in_flight = max_in_flight
        self.outcomes: list[Outcome] = []
        self._task: asyncio.Task[None] | None = None
        self._calls: set[asyncio.Task[None]] = set()

    async def __aenter__(self) -> CallStream:
        self._task = asyncio.create_task(self._run())
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._task is not None
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        # Let the calls in flight finish (each is bounded by CALL_TIMEOUT_S) so every outcome is counted.
        await asyncio.gather(*self._calls, return_exceptions=True)

    async def _run(self) -> None:
        i = 0
        while True:
            if len(self._calls) < self.max_in_flight:
                task = asyncio.create_task(self._one(i))
                self._calls.add(task)
                task.add_done_callback(self._calls.discard)
                i += 1
            await asyncio.sleep(self.every_s)

    async def _one(self, i: int) -> None:
        started = time.monotonic()
        answer = await call(self.port, f"stream-{i}")
        self.outcomes.append(Outcome(started, answer))

    def since(self, moment: float) -> list[Outcome]:
        """The finished calls that started at or after ``moment``, in start order."""
        return sorted((o for o in self.outcomes if o.started >= moment), key=lambda o: o.started)
