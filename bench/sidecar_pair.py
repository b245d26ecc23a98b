"""A kmesh sidecar pair with mTLS side by side with an nginx ``stream`` mTLS pair and with no proxy at all,
in one run (BENCH.md's S5): keep-alive requests/s and the proxies' CPU per request, latency added at a
fixed open-loop rate, bulk throughput of one stream, and each sidecar's memory.

Not a test: it prints tables and exits non-zero only when the benchmark could not run (a kmesh sidecar or
the backend did not start), never because of a figure. Run it as ``.venv/bin/python bench/sidecar_pair.py
[--repeat R] [--seconds S] [--latency-seconds S] [--rate N] [--connections C] [--mib N]``; ``make bench``
runs it with the defaults. nginx is installed with apt when missing; if it cannot run it is named and left
out, and kmesh is measured anyway.

The path, all on loopback: load generator -> client sidecar's outbound (plain TCP) -> mTLS (TLS 1.3, both
sides present mesh certificates) -> server sidecar's inbound -> backend app (plain TCP).
- kmesh: two processes of this file (``--role client`` / ``--role server``), each a
  ``ProxyRuntime("sidecar", ...)`` on uvloop fed a sealed sidecar ``ProxyConfig`` and its workload
  certificate directly (no control plane): the client has one outbound and one mTLS cluster whose endpoint
  is the server's inbound (``spiffe_id`` checked), the server one inbound allowing the client's SPIFFE id.
- nginx: two nginx processes (1 worker each), ``stream``: the client side ``proxy_ssl on`` with the client
  certificate and ``proxy_ssl_verify on`` against the mesh CA, the server side ``listen ... ssl`` with
  ``ssl_verify_client on``; TLS 1.3 only, no session tickets. nginx checks the chain but, unlike kmesh,
  no SPIFFE id (its ``stream`` module cannot read URI SANs), and ``proxy_ssl_verify`` always checks a DNS
  name, so the bench's workload certificates (issued by ``kmesh.pki`` from CSRs, as a control plane
  does) are re-signed by the same mesh CA with one extra DNS SAN; kmesh and nginx use the same files.
- direct: the load generator dials the backend: the baseline.
The two proxies of a pair are pinned (``taskset``) together to CPU 0; the load generator (this process,
uvloop) and the backend (this file, ``--role backend``: an asyncio echo/sink Protocol on uvloop) to CPU 1.

Measured per path, rounds interleaving the paths (direct, kmesh, nginx, then the next measurement), median
[min-max] of ``--repeat`` rounds:
(a) keep-alive: ``--connections`` connections, each in a closed loop sending 64 bytes and waiting for the
    64-byte echo, for ``--seconds`` (after 0.3 s of warm-up). Requests/s, and both proxies' CPU (``/proc``
    schedstat of every thread, ns resolution, summed over the pair) per 1000 requests, which is also the
    vCPU the pair needs per 1000 req/s at that closed-loop load (on this VM it does not fill the proxy
    core: the round trip is bound by cross-core wakeups; see docs/performance.md).
(b) latency: the same connections, open loop: sends scheduled by the clock at ``--rate`` req/s in all,
    round-robin over the connections, each reply's latency from its send to its echo (replies are matched
    to sends in order per connection). p50/p90/p99 and the share of replies later than 1 ms per round;
    *added* = proxied minus direct of the same round. Latency runs from the actual send, so the driver's
    own lateness (uvloop timers tick in ms; "send lag p99") is not counted in it. Also the pair's CPU
    during it: vCPU per 1000 req/s at that fixed rate (the figure S5's CPU target speaks of).
(c) bulk: one connection pushing ``--mib`` MiB client -> backend (1 MiB ``sendall`` calls), timed from the
    first byte to the backend's 8-byte count: Gbit/s, and the pair's CPU s/GB.
(d) RSS: VmRSS of each sidecar process right after start and after the runs, and VmHWM (nginx: master +
    worker); and, for scale, a fresh interpreter's VmRSS after importing uvloop and the proxy runtime.

BENCH.md's S5 target: CPU <= 0.20 vCPU per 1000 req/s (both proxies); added p99 <= 0.30 ms at 1000 req/s;
RSS <= 30 MB each; bulk >= 1.0x an nginx mTLS pair.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import os
import signal
import socket
import ssl
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Final, cast

import _peers as peers  # shared with ingress_passthrough.py: processes, pinning, nginx install, /proc CPU

if TYPE_CHECKING:  # the sidecar processes import kmesh themselves, nothing more than a sidecar needs
    from kmesh.dps import Certificate
    from kmesh.proxyconfig import ProxyConfig

MESH: Final = "m"
REQUEST: Final = 64
CHUNK: Final = peers.CHUNK
HEADER: Final = peers.HEADER
ECHO: Final = b"E"
SINK: Final = b"S"
WARMUP_S: Final = 0.3
PATHS: Final = ("direct", "kmesh", "nginx")


def dns_name(service: str) -> str:
    return f"{service}.{MESH}.mesh"


# -- the processes of this file: backend and sidecars --------------------------------------------------------


class BackendProtocol(asyncio.Protocol):
    """The app: the first byte picks the mode. ``E``: echo every byte. ``S``: read an 8-byte N, then N
    bytes, answer the 8-byte count read."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.mode = b""
        self.head = b""
        self.need = -1
        self.got = 0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's are not asyncio.Transport subclasses

    def data_received(self, data: bytes) -> None:
        assert self.transport is not None
        if self.mode == ECHO:
            self.transport.write(data)
            return
        if not self.mode:
            self.mode, data = data[:1], data[1:]
            if self.mode == ECHO:
                if data:
                    self.transport.write(data)
                return
        if self.need < 0:
            self.head += data
            if len(self.head) < HEADER.size:
                return
            self.need = HEADER.unpack(self.head[: HEADER.size])[0]
            data, self.head = self.head[HEADER.size :], b""
        self.got += len(data)
        if self.got >= self.need:
            self.transport.write(HEADER.pack(self.got))
            self.need, self.got, self.mode = -1, 0, b""


def serve_backend(port: int) -> None:
    import uvloop

    async def run() -> None:
        loop = asyncio.get_running_loop()
        server = await loop.create_server(BackendProtocol, "127.0.0.1", port, backlog=1024)
        print("ready", flush=True)
        async with server:
            await asyncio.Event().wait()

    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    uvloop.run(run())


def read_certificate(certs: Path, service: str) -> Certificate:
    from kmesh.dps import Certificate

    return Certificate(
        mesh=MESH,
        cert_pem=(certs / f"{service}.crt").read_bytes(),
        key_pem=(certs / f"{service}.key").read_bytes(),
        ca_bundle_pem=(certs / "ca.crt").read_bytes(),
        not_after=time.time() + 3600,
        renew_at=time.time() + 2880,
        backend="ca-1",
        request_id="r1",
    )


def sidecar_config(role: str, port: int, target_port: int) -> ProxyConfig:
    """The sealed config of the client sidecar (outbound on ``port`` -> cluster ``echo`` at the server's
    inbound ``target_port``) or of the server sidecar (inbound ``port`` -> the app at ``target_port``)."""
    from kmesh.proxyconfig import (
        Cluster,
        Endpoint,
        InboundConfig,
        OutboundConfig,
        ProxyConfig,
        seal,
        spiffe_id,
    )

    if role == "client":
        endpoint = Endpoint(address="127.0.0.1", port=target_port, spiffe_id=spiffe_id(MESH, "echo"))
        cluster = Cluster(
            name="echo", service="echo", tags={"kuma.io/service": "echo"}, mtls=True, endpoints=[endpoint]
        )
        outbound = OutboundConfig(
            address="127.0.0.1", port=port, service="echo", tags=cluster.tags, cluster=cluster.name
        )
        inbounds, outbounds, clusters = [], [outbound], [cluster]
    else:
        inbound = InboundConfig(
            address="127.0.0.1",
            port=port,
            service_address="127.0.0.1",
            service_port=target_port,
            service="echo",
            tags={"kuma.io/service": "echo"},
            allowed_spiffe_ids=[spiffe_id(MESH, "client")],
        )
        inbounds, outbounds, clusters = [inbound], [], []
    service = "client" if role == "client" else "echo"
    return seal(
        ProxyConfig(
            proxy_type="sidecar",
            mesh=MESH,
            name=f"{service}-1",
            zone="z",
            mtls_enabled=True,
            identity=spiffe_id(MESH, service),
            inbounds=inbounds,
            outbounds=outbounds,
            clusters=clusters,
        )
    )


def serve_sidecar(role: str, port: int, target_port: int, certs: Path) -> None:
    """One kmesh sidecar, as ``ProxyRuntime`` runs it, until SIGTERM/SIGINT."""
    import uvloop

    from kmesh.proxy._runtime import ProxyRuntime

    config = sidecar_config(role, port, target_port)
    certificate = read_certificate(certs, "client" if role == "client" else "echo")

    async def run() -> None:
        proxy = ProxyRuntime("sidecar", {"type": "Dataplane", "name": config.name, "mesh": MESH})
        await peers.serve_proxy(proxy, config, f"the {role} sidecar", certificate)

    uvloop.run(run())


# -- mesh material and nginx configs -------------------------------------------------------------------------


def write_mesh_material(directory: Path) -> None:
    """``ca.crt`` and, for ``client`` and ``echo``, ``<service>.crt``/``.key``: workload certificates issued
    by ``kmesh.pki`` from a CSR, then re-signed by the same CA with one extra DNS SAN (see the docstring)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    from kmesh.pki import generate_ca, generate_workload_key, key_to_pem, make_csr, sign_workload_csr

    now = datetime.now(UTC)
    ca = generate_ca(MESH, "ca-1", now=now)
    ca_key = serialization.load_pem_private_key(ca.key_pem, password=None)
    assert isinstance(ca_key, ec.EllipticCurvePrivateKey)
    (directory / "ca.crt").write_bytes(ca.cert_pem)
    for service in ("client", "echo"):
        key = generate_workload_key()
        csr = make_csr(key, mesh=MESH, service=service)
        issued = sign_workload_csr(csr, ca, mesh=MESH, services=[service], tags={}, now=now, valid_for_s=3600)
        cert = x509.load_pem_x509_certificate(issued)
        builder = (
            x509.CertificateBuilder()
            .subject_name(cert.subject)
            .issuer_name(cert.issuer)
            .public_key(cert.public_key())
            .serial_number(cert.serial_number)
            .not_valid_before(cert.not_valid_before_utc)
            .not_valid_after(cert.not_valid_after_utc)
        )
        for ext in cert.extensions:
            value = ext.value
            if isinstance(value, x509.SubjectAlternativeName):
                value = x509.SubjectAlternativeName([*value, x509.DNSName(dns_name(service))])
            builder = builder.add_extension(value, critical=ext.critical)
        hash_algorithm = cert.signature_hash_algorithm
        assert hash_algorithm is not None
        resigned = builder.sign(ca_key, hash_algorithm)  # type: ignore[arg-type]
        (directory / f"{service}.crt").write_bytes(resigned.public_bytes(serialization.Encoding.PEM))
        key_file = directory / f"{service}.key"
        key_file.write_bytes(key_to_pem(key))
        key_file.chmod(0o600)


def nginx_configs(tmp: Path, certs: Path, out_port: int, in_port: int, app_port: int) -> tuple[Path, Path]:
    head = f"""load_module {peers.NGINX_MODULE};
daemon off;
worker_processes 1;
events {{ worker_connections 1024; }}
"""
    client = f"""{head}pid {tmp}/nginx-client.pid;
error_log {tmp}/nginx-client.error.log warn;
stream {{
    server {{
        listen 127.0.0.1:{out_port} backlog=1024;
        proxy_pass 127.0.0.1:{in_port};
        proxy_ssl on;
        proxy_ssl_protocols TLSv1.3;
        proxy_ssl_certificate {certs}/client.crt;
        proxy_ssl_certificate_key {certs}/client.key;
        proxy_ssl_trusted_certificate {certs}/ca.crt;
        proxy_ssl_verify on;
        proxy_ssl_name {dns_name("echo")};
    }}
}}
"""
    server = f"""{head}pid {tmp}/nginx-server.pid;
error_log {tmp}/nginx-server.error.log warn;
stream {{
    log_format tls '$ssl_protocol $ssl_cipher $ssl_client_verify';
    server {{
        listen 127.0.0.1:{in_port} ssl backlog=1024;
        access_log {tmp}/nginx-server.access.log tls;
        ssl_protocols TLSv1.3;
        ssl_certificate {certs}/echo.crt;
        ssl_certificate_key {certs}/echo.key;
        ssl_client_certificate {certs}/ca.crt;
        ssl_verify_client on;
        ssl_session_tickets off;
        proxy_pass 127.0.0.1:{app_port};
    }}
}}
"""
    paths = tmp / "nginx-client.conf", tmp / "nginx-server.conf"
    paths[0].write_text(client)
    paths[1].write_text(server)
    return paths


# -- processes -----------------------------------------------------------------------------------------------


@dataclass
class Pair:
    """One path: the port the load generator dials and the proxy processes on it (none for direct)."""

    name: str
    port: int
    client: subprocess.Popen[bytes] | None = None
    server: subprocess.Popen[bytes] | None = None
    inbound_port: int = 0  # the server side's mTLS port
    rss_ready: dict[str, int] = field(default_factory=dict)  # kB right after start

    @property
    def procs(self) -> list[subprocess.Popen[bytes]]:
        return [p for p in (self.client, self.server) if p is not None]


def tree_cpu_ns(pid: int) -> int:
    """CPU time of every thread of ``pid`` and its descendants, from ``/proc/.../schedstat`` (ns);
    falls back to utime + stime (clock ticks) when schedstat is missing."""
    total = 0
    for p in peers.tree_pids(pid):
        try:
            for task in Path(f"/proc/{p}/task").iterdir():
                with contextlib.suppress(OSError):
                    total += int((task / "schedstat").read_text().split()[0])
        except OSError:
            continue
    if total == 0:
        return int(peers.tree_cpu_s(pid) * 1e9)
    return total


def cpu_of(pair: Pair) -> list[int]:
    return [tree_cpu_ns(p.pid) for p in pair.procs]


def status_kb(pid: int, key: str) -> int:
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1])
    return 0


def rss_kb(proc: subprocess.Popen[bytes], key: str = "VmRSS") -> int:
    return sum(status_kb(p, key) for p in peers.tree_pids(proc.pid))


def import_rss_mb(modules: str) -> float:
    """VmRSS of a fresh interpreter once it imported ``modules``: what a sidecar process holds before any
    config or connection."""
    code = f"import {modules}; print(open('/proc/self/status').read())"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    for line in done.stdout.splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def start_pairs(
    tmp: Path, certs: Path, procs: peers.Processes, app_port: int, pin: bool
) -> tuple[list[Pair], str]:
    """direct, kmesh and (when it can run) nginx, listening; and a note when nginx is left out."""
    cpu = peers.PROXY_CPU if pin else None
    me = peers.own_argv(__file__)
    pairs = [Pair("direct", app_port)]
    in_port, out_port = peers.free_port(), peers.free_port()
    server_argv = [*me, "--role", "server", "--port", str(in_port), "--target-port", str(app_port)]
    server_argv += ["--certs", str(certs)]
    server = procs.start_listening(server_argv, tmp / "kmesh-server.log", cpu, in_port)
    client_argv = [*me, "--role", "client", "--port", str(out_port), "--target-port", str(in_port)]
    client_argv += ["--certs", str(certs)]
    client = procs.start_listening(client_argv, tmp / "kmesh-client.log", cpu, out_port)
    pairs.append(Pair("kmesh", out_port, client, server, in_port))
    nginx = peers.ensure_installed("nginx")
    if nginx is None:
        return pairs, "nginx: nginx with libnginx-mod-stream is missing and could not be installed"
    in_port, out_port = peers.free_port(), peers.free_port()
    client_conf, server_conf = nginx_configs(tmp, certs, out_port, in_port, app_port)
    started = []
    try:
        for conf, port in ((server_conf, in_port), (client_conf, out_port)):
            argv = peers.nginx_argv(nginx, tmp, conf, f"{conf.stem}.start.log")
            started.append(procs.start_listening(argv, tmp / f"{conf.stem}.log", cpu, port))
    except peers.BenchError as exc:
        print(f"peer missing: nginx did not start: {exc}", flush=True)
        return pairs, "nginx: did not start"
    pairs.append(Pair("nginx", out_port, started[1], started[0], in_port))
    return pairs, ""


# -- load ----------------------------------------------------------------------------------------------------


class Pinger(asyncio.Protocol):
    """Closed loop: one 64-byte request outstanding; the next one goes when its echo is complete."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.payload = os.urandom(REQUEST)
        self.got = 0
        self.count = 0
        self.running = False
        self.idle: asyncio.Future[None] | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's are not asyncio.Transport subclasses
        transport.write(ECHO)

    def start(self) -> None:
        assert self.transport is not None
        self.running = True
        self.transport.write(self.payload)

    def data_received(self, data: bytes) -> None:
        self.got += len(data)
        if self.got >= REQUEST:
            self.got -= REQUEST
            self.count += 1
            if self.running:
                assert self.transport is not None
                self.transport.write(self.payload)
            elif self.idle is not None and not self.idle.done():
                self.idle.set_result(None)

    def connection_lost(self, exc: Exception | None) -> None:
        if self.idle is not None and not self.idle.done():
            self.idle.set_exception(ConnectionError(f"the connection closed ({exc})"))


class Timed(asyncio.Protocol):
    """Open loop: ``send()`` whenever the clock says; replies matched to sends in order."""

    def __init__(self, latencies: list[float]) -> None:
        self.transport: asyncio.Transport | None = None
        self.payload = os.urandom(REQUEST)
        self.sent: collections.deque[float] = collections.deque()
        self.got = 0
        self.latencies = latencies
        self.lost = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's are not asyncio.Transport subclasses
        transport.write(ECHO)

    def send(self) -> None:
        assert self.transport is not None
        self.sent.append(time.perf_counter())
        self.transport.write(self.payload)

    def data_received(self, data: bytes) -> None:
        now = time.perf_counter()
        self.got += len(data)
        while self.got >= REQUEST:
            self.got -= REQUEST
            self.latencies.append(now - self.sent.popleft())

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = True


@dataclass
class Figures:
    rps: list[float] = field(default_factory=list)  # (a) requests/s
    cpu_per_k: list[float] = field(default_factory=list)  # (a) pair CPU s per 1000 requests
    cpu_split: list[tuple[float, float]] = field(default_factory=list)  # (a) client, server s per 1000
    p50: list[float] = field(default_factory=list)  # (b) us
    p90: list[float] = field(default_factory=list)  # (b) us
    p99: list[float] = field(default_factory=list)  # (b) us
    added50: list[float] = field(default_factory=list)  # (b) us, minus direct of the same round
    added90: list[float] = field(default_factory=list)
    added99: list[float] = field(default_factory=list)
    vcpu_fixed: list[float] = field(default_factory=list)  # (b) pair vCPU per 1000 req/s at the fixed rate
    late99: list[float] = field(default_factory=list)  # (b) us, how late the driver's sends were (p99)
    slow: list[float] = field(default_factory=list)  # (b) % of replies later than 1 ms
    gbps: list[float] = field(default_factory=list)  # (c)
    s_per_gb: list[float] = field(default_factory=list)  # (c) pair CPU


async def open_all(port: int, n: int, factory: type[asyncio.Protocol] | object) -> list[asyncio.Protocol]:
    loop = asyncio.get_running_loop()
    out = []
    for _ in range(n):
        _, proto = await loop.create_connection(factory, "127.0.0.1", port)  # type: ignore[arg-type]
        out.append(proto)
    return out


def close_all(protos: Sequence[asyncio.Protocol]) -> None:
    for p in protos:
        transport = getattr(p, "transport", None)
        if transport is not None:
            transport.close()


async def keepalive(pair: Pair, connections: int, seconds: float, f: Figures) -> None:
    """(a): closed loop over ``connections``; requests/s and the pair's CPU per 1000 requests."""
    pingers: list[Pinger] = await open_all(pair.port, connections, Pinger)  # type: ignore[assignment]
    try:
        for p in pingers:
            p.start()
        await asyncio.sleep(WARMUP_S)
        count0, cpu0, t0 = sum(p.count for p in pingers), cpu_of(pair), time.perf_counter()
        await asyncio.sleep(seconds)
        count1, cpu1, t1 = sum(p.count for p in pingers), cpu_of(pair), time.perf_counter()
        loop = asyncio.get_running_loop()
        for p in pingers:
            p.running = False
            p.idle = loop.create_future()
        await asyncio.wait_for(asyncio.gather(*(p.idle for p in pingers if p.idle is not None)), 10.0)
    finally:
        close_all(pingers)
    done = count1 - count0
    f.rps.append(done / (t1 - t0))
    if cpu0:
        used = [(b - a) / 1e9 for a, b in zip(cpu0, cpu1, strict=True)]
        f.cpu_per_k.append(sum(used) / done * 1000)
        f.cpu_split.append((used[0] / done * 1000, used[1] / done * 1000))


async def fixed_rate(pair: Pair, connections: int, rate: float, seconds: float, f: Figures) -> list[float]:
    """(b): open loop at ``rate`` req/s in all; returns the latencies (s) after the warm-up."""
    latencies: list[float] = []
    timed: list[Timed] = await open_all(pair.port, connections, lambda: Timed(latencies))  # type: ignore[assignment]
    loop = asyncio.get_running_loop()
    late: list[float] = []
    try:
        await asyncio.sleep(0.05)
        warm = int(WARMUP_S * rate)
        total = warm + int(seconds * rate)
        clock = time.perf_counter
        start = clock() + 0.01
        cpu0 = t0 = None
        for k in range(total):
            if k == warm:
                latencies.clear()
                cpu0, t0 = cpu_of(pair), clock()
            target = start + k / rate
            delay = target - clock()
            if delay > 0:
                await asyncio.sleep(delay)  # uvloop's timers tick in ms: sends leave on the next tick
            late.append(max(0.0, clock() - target))
            timed[k % connections].send()
        deadline = loop.time() + 5.0
        while any(t.sent for t in timed) and loop.time() < deadline:
            if any(t.lost for t in timed):
                raise peers.BenchError(f"{pair.name}: a connection closed during the latency run")
            await asyncio.sleep(0.005)
        cpu1, t1 = cpu_of(pair), time.perf_counter()
    finally:
        close_all(timed)
    if any(t.sent for t in timed):
        raise peers.BenchError(f"{pair.name}: replies missing after the latency run")
    lat_us = sorted(x * 1e6 for x in latencies)
    f.p50.append(percentile(lat_us, 50))
    f.p90.append(percentile(lat_us, 90))
    f.slow.append(sum(1 for x in lat_us if x > 1000) / len(lat_us) * 100)
    f.p99.append(percentile(lat_us, 99))
    f.late99.append(percentile(sorted(x * 1e6 for x in late[warm:]), 99))
    if cpu0 and t0 is not None:
        used = sum(b - a for a, b in zip(cpu0, cpu1, strict=True)) / 1e9
        achieved = len(latencies) / (t1 - t0)
        f.vcpu_fixed.append(used / (t1 - t0) / achieved * 1000)
    return latencies


def percentile(sorted_values: Sequence[float], q: float) -> float:
    if not sorted_values:
        return float("nan")
    i = min(len(sorted_values) - 1, max(0, round(q / 100 * len(sorted_values)) - 1))
    return sorted_values[i]


def bulk(pair: Pair, nbytes: int, f: Figures) -> None:
    """(c): one connection pushing ``nbytes`` to the backend's sink (blocking socket, this thread)."""
    with socket.create_connection(("127.0.0.1", pair.port), timeout=60.0) as sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.sendall(SINK + HEADER.pack(nbytes))
        cpu0 = cpu_of(pair)
        elapsed, got = peers.push_to_sink(sock, nbytes)
        cpu1 = cpu_of(pair)
    if got != nbytes:
        raise peers.BenchError(f"{pair.name}: the backend read {got} of {nbytes} bytes")
    f.gbps.append(nbytes * 8 / elapsed / 1e9)
    if cpu0:
        f.s_per_gb.append(sum(b - a for a, b in zip(cpu0, cpu1, strict=True)) / 1e9 / (nbytes / 1e9))


async def measure(args: argparse.Namespace, pairs: Sequence[Pair]) -> dict[str, Figures]:
    results = {p.name: Figures() for p in pairs}
    for p in pairs:  # warm up: first connections (mTLS handshakes), page faults, buffers
        await keepalive(p, args.connections, 0.2, Figures())
        bulk(p, 32 * CHUNK, Figures())
    for _ in range(args.repeat):
        for p in pairs:
            await keepalive(p, args.connections, args.seconds, results[p.name])
        direct = None
        for p in pairs:
            f = results[p.name]
            await fixed_rate(p, args.connections, args.rate, args.latency_seconds, f)
            if p.name == "direct":
                direct = f
            elif direct is not None:
                f.added50.append(f.p50[-1] - direct.p50[-1])
                f.added90.append(f.p90[-1] - direct.p90[-1])
                f.added99.append(f.p99[-1] - direct.p99[-1])
        for p in pairs:
            bulk(p, args.mib * CHUNK, results[p.name])
    return results


# -- report --------------------------------------------------------------------------------------------------


def med(values: Sequence[float]) -> float:
    return statistics.median(values) if values else float("nan")


def spread(values: Sequence[float], fmt: str) -> str:
    return peers.spread(values, fmt) if values else "-"


def ratio(a: float, b: float) -> str:
    return f"{a / b:.2f}x" if b and b == b and a == a else "-"


def print_tables(args: argparse.Namespace, results: dict[str, Figures], pairs: Sequence[Pair]) -> None:
    k, n = results.get("kmesh"), results.get("nginx")
    print(
        f"(a) keep-alive: {args.connections} connections, {REQUEST} B request / {REQUEST} B echo, "
        f"closed loop, {args.seconds:g} s"
    )
    print(
        f"{'path':8s}{'req/s':>24s}{'pair CPU s/1000 req':>26s}{'client / server':>18s}{'kmesh/nginx':>13s}"
    )
    for name, f in results.items():
        split = ""
        if f.cpu_split:
            split = f"{med([c for c, _ in f.cpu_split]):.3f} / {med([s for _, s in f.cpu_split]):.3f}"
        r = ""
        if name == "nginx" and k is not None:
            r = f"{ratio(med(k.rps), med(f.rps))} rate, {ratio(med(k.cpu_per_k), med(f.cpu_per_k))} CPU"
        print(f"{name:8s}{spread(f.rps, '.0f'):>24s}{spread(f.cpu_per_k, '.3f'):>26s}{split:>18s}  {r}")
    print(flush=True)
    print(
        f"(b) open loop at {args.rate:g} req/s over {args.connections} connections, "
        f"{args.latency_seconds:g} s; latency us; added = this minus direct, same round"
    )
    print(
        f"{'path':8s}{'p50':>15s}{'p90':>18s}{'p99':>20s}{'added p50':>16s}{'added p90':>18s}"
        f"{'added p99':>20s}{'>1 ms %':>8s}{'pair vCPU/1000 req/s':>23s}{'send lag p99':>13s}"
    )
    for name, f in results.items():
        print(
            f"{name:8s}{spread(f.p50, '.0f'):>15s}{spread(f.p90, '.0f'):>18s}{spread(f.p99, '.0f'):>20s}"
            f"{spread(f.added50, '.0f'):>16s}{spread(f.added90, '.0f'):>18s}{spread(f.added99, '.0f'):>20s}"
            f"{med(f.slow):>8.1f}{spread(f.vcpu_fixed, '.3f'):>23s}{med(f.late99):>13.0f}"
        )
    if k is not None and n is not None:
        print(
            f"kmesh/nginx: added p50 {ratio(med(k.added50), med(n.added50))}, added p90 "
            f"{ratio(med(k.added90), med(n.added90))}, added p99 "
            f"{ratio(med(k.added99), med(n.added99))}, vCPU at the fixed rate "
            f"{ratio(med(k.vcpu_fixed), med(n.vcpu_fixed))}"
        )
    print(flush=True)
    print(f"(c) bulk: one connection, {args.mib} MiB client -> backend")
    print(f"{'path':8s}{'Gbit/s':>24s}{'pair CPU s/GB':>24s}{'kmesh/nginx':>22s}")
    for name, f in results.items():
        r = ""
        if name == "nginx" and k is not None:
            r = f"{ratio(med(k.gbps), med(f.gbps))} rate, {ratio(med(k.s_per_gb), med(f.s_per_gb))} CPU"
        print(f"{name:8s}{spread(f.gbps, '.2f'):>24s}{spread(f.s_per_gb, '.2f'):>24s}  {r}")
    print(flush=True)
    print("(d) memory of each sidecar process, MB (nginx: master + worker); at start / after the runs / peak")
    for p in pairs:
        for side, proc in (("client", p.client), ("server", p.server)):
            if proc is None:
                continue
            start = p.rss_ready.get(side, 0) / 1024
            now, peak = rss_kb(proc) / 1024, rss_kb(proc, "VmHWM") / 1024
            workers = ""
            if p.name == "nginx":
                pids = peers.tree_pids(proc.pid)
                workers = (
                    "  (worker alone "
                    + ", ".join(f"{status_kb(x, 'VmRSS') / 1024:.1f}" for x in pids[1:])
                    + ")"
                )
            print(f"{p.name + ' ' + side:14s}{start:8.1f}{now:8.1f}{peak:8.1f}{workers}")
    print(
        f"for scale, a fresh interpreter: {import_rss_mb('uvloop'):.1f} MB with uvloop imported, "
        f"{import_rss_mb('uvloop, kmesh.proxy._runtime'):.1f} MB with kmesh.proxy._runtime, "
        f"{import_rss_mb('uvloop, kmesh.proxy.main'):.1f} MB with kmesh.proxy.main (the kmesh-proxy command)"
    )
    print(flush=True)
    if k is None:
        return
    print("Targets (BENCH.md S5), medians")
    nan = float("nan")
    print(
        f"CPU <= 0.20 vCPU per 1000 req/s, both proxies: {med(k.vcpu_fixed):.3f} at a fixed "
        f"{args.rate:g} req/s (nginx {med(n.vcpu_fixed) if n else nan:.3f}); {med(k.cpu_per_k):.3f} in the "
        "closed loop (a)"
    )
    print(
        f"added p99 <= 300 us at {args.rate:g} req/s: {med(k.added99):.0f} us "
        f"(nginx {med(n.added99) if n else nan:.0f}); added p50 {med(k.added50):.0f} us, p90 "
        f"{med(k.added90):.0f} us (nginx {med(n.added50) if n else nan:.0f}, "
        f"{med(n.added90) if n else nan:.0f})"
    )
    kmesh_pair = next(p for p in pairs if p.name == "kmesh")
    rss = [rss_kb(x) / 1024 for x in kmesh_pair.procs]
    print(f"RSS <= 30 MB each: client {rss[0]:.1f} MB, server {rss[1]:.1f} MB")
    if n is not None:
        print(
            f"bulk >= 1.0x the nginx mTLS pair: {med(k.gbps) / med(n.gbps):.2f}x "
            f"({med(k.gbps):.2f} / {med(n.gbps):.2f} Gbit/s)"
        )
    d = results.get("direct")
    if d is not None:
        print(
            f"load-core ceilings (direct, no proxy): {med(d.rps):.0f} req/s closed loop, "
            f"{med(d.gbps):.2f} Gbit/s; a path near these is limited by the Python load generator and "
            "backend on CPU 1, not by its proxies"
        )
    print(flush=True)


def tls_facts(tmp: Path, certs: Path, pairs: Sequence[Pair]) -> list[str]:
    """What TLS the server sides negotiate: a probe of kmesh's inbound with the client certificate (the
    client sidecar uses the same Python ssl defaults), and nginx's access log of its mTLS connections."""
    out = []
    kmesh = next((p for p in pairs if p.name == "kmesh"), None)
    if kmesh is not None and kmesh.server is not None:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_3
        ctx.check_hostname = False
        ctx.load_verify_locations(certs / "ca.crt")
        ctx.load_cert_chain(certs / "client.crt", certs / "client.key")
        with (
            contextlib.suppress(OSError),
            socket.create_connection(("127.0.0.1", kmesh.inbound_port), timeout=5) as raw,
            ctx.wrap_socket(raw, server_hostname=dns_name("echo")) as tls,
        ):
            out.append(f"kmesh inbound: {tls.version()} {tls.cipher()[0]}")
    log = tmp / "nginx-server.access.log"
    if log.exists():
        lines = log.read_text().splitlines()
        if lines:
            out.append(f"nginx server side: {collections.Counter(lines).most_common(1)[0][0]}")
    return out


def run(args: argparse.Namespace, tmp: Path, procs: peers.Processes) -> None:
    import uvloop

    pin = peers.can_pin()
    certs = tmp / "certs"
    certs.mkdir(mode=0o700)
    write_mesh_material(certs)
    app_port = peers.free_port()
    argv = [*peers.own_argv(__file__), "--role", "backend", "--port", str(app_port)]
    procs.start_listening(argv, tmp / "backend.log", peers.LOAD_CPU if pin else None, app_port)
    pairs, note = start_pairs(tmp, certs, procs, app_port, pin)
    for p in pairs:
        if p.client is not None and p.server is not None:
            p.rss_ready = {"client": rss_kb(p.client), "server": rss_kb(p.server)}
    pinned = (
        f"both proxies of a pair on CPU {peers.PROXY_CPU}, load generator and backend on CPU {peers.LOAD_CPU}"
        if pin
        else "NOT pinned"
    )
    peers.print_header(
        "Sidecar pair with mTLS (S5)",
        peers.peer_versions([p.name for p in pairs]),
        f"loopback, TLS 1.3 mTLS between the proxies; {pinned}; {args.repeat} interleaved rounds, "
        "median [min-max]",
    )
    with peers.pinned_to(peers.LOAD_CPU if pin else None):
        results = uvloop.run(measure(args, pairs))
    print_tables(args, results, pairs)
    for fact in tls_facts(tmp, certs, pairs):
        print(f"TLS: {fact}")
    if note:
        print(f"left out: {note}")
    for p in pairs:
        for proc in p.procs:
            if proc.poll() is not None:
                print(f"warning: a {p.name} proxy exited during the run ({proc.returncode})")


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n", 1)[0])
    parser.add_argument("--repeat", type=int, default=5, help="interleaved rounds (default 5)")
    parser.add_argument("--seconds", type=float, default=2.0, help="(a) seconds per run (default 2)")
    parser.add_argument("--latency-seconds", type=float, default=3.0, help="(b) seconds per run (default 3)")
    parser.add_argument("--rate", type=float, default=1000.0, help="(b) requests/s in all (default 1000)")
    parser.add_argument("--connections", type=int, default=8, help="(a), (b) connections (default 8)")
    parser.add_argument("--mib", type=int, default=512, help="(c) MiB per transfer (default 512)")
    # The processes this benchmark starts of itself:
    parser.add_argument(
        "--role", choices=("bench", "backend", "client", "server"), default="bench", help=argparse.SUPPRESS
    )
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--target-port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--certs", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if min(args.repeat, args.seconds, args.latency_seconds, args.rate, args.connections, args.mib) <= 0:
        parser.error("every option must be positive")
    return args


def main() -> int:
    args = parse_args()
    if args.role == "backend":
        serve_backend(args.port)
        return 0
    if args.role in ("client", "server"):
        serve_sidecar(args.role, args.port, args.target_port, args.certs)
        return 0
    return peers.run_bench("sidecar_pair", run, args, "kmesh-bench-sidecar-")


if __name__ == "__main__":
    sys.exit(main())
