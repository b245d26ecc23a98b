"""The zone ingress (SNI passthrough) side by side with nginx ``stream``+``ssl_preread`` and HAProxy
``req.ssl_sni``, in one run: bulk throughput with real TLS at both ends (BENCH.md's S1) and new TLS
connections per second (S2).

Not a test: it prints tables, and exits non-zero only when the benchmark could not run (kmesh or the backend
did not start), never because of a figure. Run it as ``.venv/bin/python bench/ingress_passthrough.py
[--mib N] [--repeat R] [--seconds S] [--concurrency C] [--no-copy] [--no-raw] [--only s1|s2]``; ``make
bench`` runs it with the defaults. A peer that cannot be installed or started is named and left out; kmesh
is measured anyway.

Setup, the same for every proxy: a TLS 1.3 backend (this file, ``--role backend``: a blocking Python server,
a thread per connection, a self-signed ECDSA P-256 certificate from ``kmesh.pki``, no session tickets) and a
TLS 1.3 client (this process) that sends SNI ``x.bench.kmesh`` to the proxy, which routes it to the backend
without decrypting. The protocol on the TLS stream: the client sends an 8-byte length N, then N bytes; the
backend reads them all and answers with the 8-byte count it read; the client then closes.

Proxies, all started at once on loopback ports from private config files in one temporary folder, and
pinned (``taskset``) to CPU 0; the client and the backend run on CPU 1:
- kmesh: ``ProxyRuntime("ingress", doc)`` applying a sealed ``ProxyConfig(proxy_type="ingress")`` with one
  ``SniRoute``, on uvloop, in its own process (this file, ``--role kmesh``). ``kmesh copy``: the same with
  the relay's copying fallback (``relay_sockets(..., use_splice=False)``, patched in by the runner).
- nginx ``stream`` + ``ssl_preread`` + ``map`` on ``$ssl_preread_server_name``, 1 worker, default
  ``proxy_buffer_size`` (16 KiB) and 256 KiB.
- HAProxy ``mode tcp``, ``req.ssl_sni``, ``nbthread 1``: default ``tune.bufsize`` (16 KiB), 256 KiB, and
  forced splice (``option splice-request``/``splice-response``).
- ``direct``: the client dials the backend itself: the ceiling the load core allows.

S1: one connection pushing ``--mib`` MiB client -> backend (1 MiB ``sendall`` calls, so 16 KiB TLS records);
timed from the first data byte to the backend's answer. Gbit/s, and the proxy's CPU seconds (utime + stime
from ``/proc/PID/stat``, summed over its process tree) per GB (10^9 bytes) moved.
S2: ``--concurrency`` client threads, each in a loop: connect, full TLS 1.3 handshake (no resumption; the
client does not verify the certificate), the 8-byte exchange, close; for ``--seconds``. Connections per
second, and the proxy's CPU ms per 1000 connections.
Rounds interleave the proxies (every proxy once per round, ``--repeat`` rounds), so that drift in the
machine's load falls on all alike; figures are the median [min-max] of the rounds.

BENCH.md's targets: S1 >= 1.0x the best of nginx and HAProxy, CPU per GB <= 1.0x HAProxy with splice;
S2 >= 1.0x nginx ``ssl_preread``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import socket
import ssl
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

from _peers import (
    CHUNK,
    HEADER,
    LOAD_CPU,
    NGINX_MODULE,
    PROXY_CPU,
    BenchError,
    Processes,
    can_pin,
    ensure_installed,
    free_port,
    nginx_argv,
    own_argv,
    peer_versions,
    pinned_to,
    print_header,
    push_to_sink,
    recv_exact,
    run_bench,
    serve_proxy,
    spread,
    tree_cpu_s,
    wait_listening,
)

SNI: Final = "x.bench.kmesh"
SNI_RAW: Final = "raw.bench.kmesh"  # S1 raw: a real ClientHello, then plaintext

# -- the backend and the kmesh ingress, each run as a process of this file ----------------------------------


def sink(sock: socket.socket) -> None:
    """Reads an 8-byte N then N bytes from ``sock``; answers the count read."""
    expected = HEADER.unpack(recv_exact(sock, HEADER.size))[0]
    view = memoryview(bytearray(CHUNK))
    got = 0
    while got < expected:
        n = sock.recv_into(view, min(CHUNK, expected - got))
        if n == 0:
            break
        got += n
    sock.sendall(HEADER.pack(got))


def serve_raw(listener: socket.socket) -> None:
    """The plain sink of S1 raw: skips the client's one-record ClientHello, then ``sink``."""

    def serve_one(conn: socket.socket) -> None:
        with contextlib.suppress(OSError), conn:
            record = recv_exact(conn, 5)
            recv_exact(conn, int.from_bytes(record[3:5], "big"))
            sink(conn)

    while True:
        conn, _ = listener.accept()
        threading.Thread(target=serve_one, args=(conn,), daemon=True).start()


def serve_backend(port: int, raw_port: int, cert: Path, key: Path) -> None:
    """The TLS 1.3 sink (one thread per connection) on ``port``, the plain one on ``raw_port``."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_3
    ctx.load_cert_chain(cert, key)
    ctx.num_tickets = 0  # no resumption is measured: do not pay for tickets nobody uses
    listener = socket.create_server(("127.0.0.1", port), backlog=4096)
    raw = socket.create_server(("127.0.0.1", raw_port), backlog=4096)
    threading.Thread(target=serve_raw, args=(raw,), daemon=True).start()

    def serve_one(conn: socket.socket) -> None:
        with contextlib.suppress(OSError), conn, ctx.wrap_socket(conn, server_side=True) as tls:
            sink(tls)

    print("ready", flush=True)
    while True:
        conn, _ = listener.accept()
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        threading.Thread(target=serve_one, args=(conn,), daemon=True).start()


def serve_kmesh(port: int, backend_port: int, raw_port: int, copy: bool) -> None:
    """The kmesh zone ingress, as ``ProxyRuntime`` runs it, with one SNI route to the backend."""
    import uvloop

    import kmesh.proxy._gateway as gateway_module
    from kmesh._fastpath import splice
    from kmesh.proxy._runtime import ProxyRuntime
    from kmesh.proxyconfig import Endpoint, IngressConfig, ProxyConfig, SniRoute, seal

    if copy:
        relay = splice.relay_sockets

        async def copy_relay(
            a: socket.socket,
            b: socket.socket,
            *,
            idle_timeout_s: float | None = None,
            chunk_bytes: int = CHUNK,
            use_splice: bool | None = None,
        ) -> tuple[int, int]:
            return await relay(a, b, idle_timeout_s=idle_timeout_s, chunk_bytes=chunk_bytes, use_splice=False)

        gateway_module.relay_sockets = copy_relay

    routes = {
        sni: SniRoute(
            mesh="bench",
            service=service,
            tags={},
            endpoints=[Endpoint(address="127.0.0.1", port=p, zone="z")],
        )
        for sni, service, p in ((SNI, "x", backend_port), (SNI_RAW, "raw", raw_port))
    }
    config = seal(
        ProxyConfig(proxy_type="ingress", name="ingress-1", zone="z", ingress=IngressConfig(routes=routes))
    )
    doc = {"type": "ZoneIngress", "name": "ingress-1", "networking": {"address": "127.0.0.1", "port": port}}

    async def run() -> None:
        await serve_proxy(ProxyRuntime("ingress", doc), config, "the ingress")

    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        runner.run(run())


# -- processes ----------------------------------------------------------------------------------------------


@dataclass
class Proxy:
    """One proxy under test (``proc`` None: the client dials the backend directly)."""

    name: str
    port: int
    raw_port: int  # the same port, except for direct
    proc: subprocess.Popen[bytes] | None = None
    log: Path | None = None


def nginx_config(tmp: Path, name: str, port: int, backends: tuple[int, int], buffer: str | None) -> Path:
    buffer_line = f"proxy_buffer_size {buffer};" if buffer else ""
    text = f"""
load_module {NGINX_MODULE};
daemon off;
worker_processes 1;
pid {tmp}/{name}.pid;
error_log {tmp}/{name}.error.log warn;
events {{ worker_connections 8192; }}
stream {{
    map $ssl_preread_server_name $upstream {{
        {SNI} 127.0.0.1:{backends[0]};
        {SNI_RAW} 127.0.0.1:{backends[1]};
        default 127.0.0.1:1;
    }}
    server {{
        listen 127.0.0.1:{port} backlog=4096;
        ssl_preread on;
        proxy_pass $upstream;
        {buffer_line}
    }}
}}
"""
    path = tmp / f"{name}.conf"
    path.write_text(text)
    return path


def haproxy_config(
    tmp: Path, name: str, port: int, backends: tuple[int, int], bufsize: int | None, splice: bool
) -> Path:
    tune = f"    tune.bufsize {bufsize}\n" if bufsize else ""
    splice_lines = "    option splice-request\n    option splice-response\n" if splice else ""
    text = f"""global
    nbthread 1
    maxconn 4000
    pidfile {tmp}/{name}.pid
{tune}
defaults
    mode tcp
    timeout connect 5s
    timeout client 60s
    timeout server 60s

frontend fe
    bind 127.0.0.1:{port}
    tcp-request inspect-delay 5s
    tcp-request content accept if {{ req.ssl_hello_type 1 }}
    use_backend be if {{ req.ssl_sni -i {SNI} }}
    use_backend raw if {{ req.ssl_sni -i {SNI_RAW} }}

backend be
{splice_lines}    server s1 127.0.0.1:{backends[0]}

backend raw
{splice_lines}    server s1 127.0.0.1:{backends[1]}
"""
    path = tmp / f"{name}.cfg"
    path.write_text(text)
    return path


def start_proxies(
    args: argparse.Namespace, tmp: Path, procs: Processes, backends: tuple[int, int], pin: bool
) -> tuple[list[Proxy], list[str]]:
    """Every proxy under test, listening; and the notes on peers that could not run."""
    cpu = PROXY_CPU if pin else None
    me = own_argv(__file__)
    proxies = [Proxy("direct", backends[0], raw_port=backends[1])]
    notes: list[str] = []
    wanted: list[tuple[str, list[str] | None, str]] = []  # name, argv (None: missing), why missing
    for name, copy in (("kmesh", False), ("kmesh copy", True)):
        if copy and args.no_copy:
            continue
        port = free_port()
        argv = [*me, "--role", "kmesh", "--port", str(port)]
        argv += ["--backend-port", str(backends[0]), "--raw-port", str(backends[1])]
        wanted.append((name, [*argv, "--copy"] if copy else argv, ""))
    nginx = ensure_installed("nginx")
    for name, buffer in (("nginx", None), ("nginx 256k", "256k")):
        port = free_port()
        if nginx is None:
            wanted.append(
                (name, None, "nginx with libnginx-mod-stream is missing and could not be installed")
            )
            continue
        conf = nginx_config(tmp, name.replace(" ", "-"), port, backends, buffer)
        wanted.append((name, nginx_argv(nginx, tmp, conf, "nginx-start.log"), ""))
    haproxy = ensure_installed("haproxy")
    for name, bufsize, splice in (("haproxy", None, False), ("haproxy 256k", 262144, False),
                                  ("haproxy splice", None, True)):  # fmt: skip
        port = free_port()
        if haproxy is None:
            wanted.append((name, None, "haproxy is missing and could not be installed"))
            continue
        conf = haproxy_config(tmp, name.replace(" ", "-"), port, backends, bufsize, splice)
        wanted.append((name, [haproxy, "-db", "-f", str(conf)], ""))
    for name, argv, why in wanted:
        if argv is None:
            print(f"peer missing: {name}: {why}", flush=True)
            notes.append(f"{name}: {why}")
            continue
        port = _port_of(argv, tmp, name)
        log = tmp / f"{name.replace(' ', '-')}.log"
        proc = procs.start(argv, log, cpu)
        try:
            wait_listening(proc, port, log)
        except BenchError as exc:
            if name.startswith("kmesh"):
                raise BenchError(f"{name} did not start: {exc}") from None
            print(f"peer missing: {name} did not start: {exc}", flush=True)
            notes.append(f"{name}: did not start")
            continue
        proxies.append(Proxy(name, port, port, proc, log))
    return proxies, notes


def _port_of(argv: Sequence[str], tmp: Path, name: str) -> int:
    if "--port" in argv:
        return int(argv[list(argv).index("--port") + 1])
    conf = Path(argv[-1])
    for line in conf.read_text().splitlines():
        words = line.split()
        if words and words[0] in ("listen", "bind"):
            return int(words[1].rstrip(";").rsplit(":", 1)[1])
    raise BenchError(f"no port in the config of {name} ({tmp})")


# -- load -------------------------------------------------------------------------------------------------


def client_context() -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_3
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE  # the load core's cycles go to the proxy's work, not to verification
    return ctx


def connect(port: int, ctx: ssl.SSLContext) -> ssl.SSLSocket:
    raw = socket.create_connection(("127.0.0.1", port), timeout=30.0)
    raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    try:
        return ctx.wrap_socket(raw, server_hostname=SNI)
    except BaseException:
        raw.close()
        raise


def push(port: int, nbytes: int, ctx: ssl.SSLContext) -> float:
    """S1: send ``nbytes`` through one TLS stream; seconds from the first data byte to the answer."""
    with connect(port, ctx) as tls:
        tls.sendall(HEADER.pack(nbytes))  # the handshake is done by now
        elapsed, got = push_to_sink(tls, nbytes)
    if got != nbytes:
        raise BenchError(f"the backend read {got} of {nbytes} bytes")
    return elapsed


def client_hello(server_name: str) -> bytes:
    """The ClientHello Python's ``ssl`` sends for ``server_name`` (one record, as sni_parse.py makes it)."""
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    tls = client_context().wrap_bio(incoming, outgoing, server_hostname=server_name)
    with contextlib.suppress(ssl.SSLWantReadError):
        tls.do_handshake()
    return outgoing.read()


def push_raw(port: int, nbytes: int, hello: bytes) -> float:
    """S1 raw: a real ClientHello with ``SNI_RAW``, then ``nbytes`` in plaintext; like ``push``."""
    with socket.create_connection(("127.0.0.1", port), timeout=30.0) as sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.sendall(hello + HEADER.pack(nbytes))
        elapsed, got = push_to_sink(sock, nbytes)
    if got != nbytes:
        raise BenchError(f"the raw backend read {got} of {nbytes} bytes")
    return elapsed


def handshakes(port: int, seconds: float, concurrency: int, ctx: ssl.SSLContext) -> tuple[int, int, float]:
    """S2: ``concurrency`` threads opening full TLS connections for ``seconds``; (done, failed, elapsed)."""
    done = [0] * concurrency
    failed = [0] * concurrency
    start_gate = threading.Barrier(concurrency + 1)
    deadline = [0.0]
    request = HEADER.pack(0)

    def worker(i: int) -> None:
        start_gate.wait()
        end = deadline[0]
        while time.perf_counter() < end:
            try:
                with connect(port, ctx) as tls:
                    tls.sendall(request)
                    recv_exact(tls, HEADER.size)
                done[i] += 1
            except (OSError, ConnectionError):
                failed[i] += 1

    threads = [threading.Thread(target=worker, args=(i,), daemon=True) for i in range(concurrency)]
    for t in threads:
        t.start()
    start = time.perf_counter()
    deadline[0] = start + seconds
    start_gate.wait()
    for t in threads:
        t.join()
    return sum(done), sum(failed), time.perf_counter() - start


# -- measurement and report -------------------------------------------------------------------------------


@dataclass
class Figures:
    rate: list[float] = field(default_factory=list)  # Gbit/s (S1) or connections/s (S2)
    cpu: list[float] = field(default_factory=list)  # s per GB (S1) or ms per 1000 connections (S2)
    busy: list[float] = field(default_factory=list)  # fraction of one core the proxy used
    failed: int = 0


def measured(proxy: Proxy, action: Callable[[], float]) -> tuple[float, float]:
    """Runs ``action`` (returns its own elapsed seconds); (elapsed, proxy CPU seconds meanwhile)."""
    before = tree_cpu_s(proxy.proc.pid) if proxy.proc is not None else 0.0
    elapsed = action()
    after = tree_cpu_s(proxy.proc.pid) if proxy.proc is not None else 0.0
    return elapsed, after - before


def run_s1(proxies: Sequence[Proxy], nbytes: int, repeat: int, raw: bool) -> dict[str, Figures]:
    ctx = client_context()
    hello = client_hello(SNI_RAW)

    def once(p: Proxy, n: int) -> float:
        return push_raw(p.raw_port, n, hello) if raw else push(p.port, n, ctx)

    results = {p.name: Figures() for p in proxies}
    for p in proxies:  # warm up: one small transfer each (first connection, page faults, pipe growth)
        once(p, 64 * CHUNK)
    for _ in range(repeat):
        for p in proxies:
            elapsed, cpu = measured(p, lambda p=p: once(p, nbytes))
            f = results[p.name]
            f.rate.append(nbytes * 8 / elapsed / 1e9)
            f.cpu.append(cpu / (nbytes / 1e9))
            f.busy.append(cpu / elapsed)
    return results


def run_s2(proxies: Sequence[Proxy], seconds: float, concurrency: int, repeat: int) -> dict[str, Figures]:
    ctx = client_context()
    results = {p.name: Figures() for p in proxies}
    for p in proxies:
        handshakes(p.port, 0.2, concurrency, ctx)
    for _ in range(repeat):
        for p in proxies:
            counts: list[int] = []

            def action(p: Proxy = p, counts: list[int] = counts) -> float:
                done, failed, elapsed = handshakes(p.port, seconds, concurrency, ctx)
                counts.extend((done, failed))
                return elapsed

            elapsed, cpu = measured(p, action)
            done, failed = counts
            f = results[p.name]
            f.rate.append(done / elapsed)
            f.cpu.append(cpu * 1000 / done * 1000 if done else float("nan"))
            f.busy.append(cpu / elapsed)
            f.failed += failed
    return results


def ratio(a: float, b: float) -> str:
    return f"{a / b:.2f}x" if b > 0 and b == b else "-"


def print_table(title: str, unit: str, cpu_unit: str, results: dict[str, Figures], fmt: str) -> None:
    print(title)
    print(
        f"{'proxy':16s}{unit:>24s}{cpu_unit:>24s}{'core %':>8s}"
        f"{'kmesh/this rate':>17s}{'kmesh/this CPU':>16s}"
    )
    kmesh = results.get("kmesh")
    for name, f in results.items():
        rate, cpu = statistics.median(f.rate), statistics.median(f.cpu)
        busy = statistics.median(f.busy) * 100
        cpu_text = spread(f.cpu, ".2f" if "GB" in cpu_unit else ".0f") if name != "direct" else "-"
        busy_text = f"{busy:.0f}" if name != "direct" else "-"
        r_rate = r_cpu = ""
        if kmesh is not None and name not in ("kmesh", "direct"):
            r_rate = ratio(statistics.median(kmesh.rate), rate)
            r_cpu = ratio(statistics.median(kmesh.cpu), cpu)
        failed = f"  ({f.failed} failed)" if f.failed else ""
        print(
            f"{name:16s}{spread(f.rate, fmt):>24s}{cpu_text:>24s}{busy_text:>8s}"
            f"{r_rate:>17s}{r_cpu:>16s}{failed}"
        )
    print(flush=True)


def print_targets(s1: dict[str, Figures], s2: dict[str, Figures]) -> None:
    def med(results: dict[str, Figures], name: str, attr: str) -> float | None:
        f = results.get(name)
        return statistics.median(getattr(f, attr)) if f is not None else None

    print("Targets (BENCH.md), kmesh / peer, medians")
    k_rate = med(s1, "kmesh", "rate")
    peers = [n for n in s1 if n.startswith(("nginx", "haproxy"))]
    if peers and k_rate is not None:
        best = max(peers, key=lambda n: statistics.median(s1[n].rate))
        b = statistics.median(s1[best].rate)
        print(f"S1 throughput >= 1.0x best peer ({best}, {b:.2f} Gbit/s): {k_rate / b:.2f}x")
    k_cpu, h_cpu = med(s1, "kmesh", "cpu"), med(s1, "haproxy splice", "cpu")
    if k_cpu is not None and h_cpu is not None:
        print(f"S1 CPU per GB <= 1.0x haproxy splice ({h_cpu:.2f} s/GB): {k_cpu / h_cpu:.2f}x")
    k2, n2 = med(s2, "kmesh", "rate"), med(s2, "nginx", "rate")
    if k2 is not None and n2 is not None:
        print(f"S2 connections/s >= 1.0x nginx ({n2:.0f}/s): {k2 / n2:.2f}x", end="")
        kc, nc = med(s2, "kmesh", "cpu"), med(s2, "nginx", "cpu")
        if kc is not None and nc is not None:
            print(
                f"; proxy CPU per connection {kc / nc:.2f}x nginx's (a core's worth at that cost: "
                f"kmesh ~{1e6 / kc:.0f}/s, nginx ~{1e6 / nc:.0f}/s)",
                end="",
            )
        print()
    d1, d2 = med(s1, "direct", "rate"), med(s2, "direct", "rate")
    ceilings = [
        f"{d1:.2f} Gbit/s" if d1 is not None else "",
        f"{d2:.0f} connections/s" if d2 is not None else "",
    ]
    if d1 is not None or d2 is not None:
        print(
            f"ceiling set by the load core (direct, no proxy): {', '.join(c for c in ceilings if c)}; "
            f"a proxy below ~100% of a core is not what limits the rate"
        )
    print(flush=True)


def run(args: argparse.Namespace, tmp: Path, procs: Processes) -> None:
    from kmesh.pki import generate_self_signed_server_cert

    pin = can_pin()
    cert_pem, key_pem = generate_self_signed_server_cert([SNI], ["127.0.0.1"])
    cert, key = tmp / "backend.crt", tmp / "backend.key"
    cert.write_bytes(cert_pem)
    key.write_bytes(key_pem)
    backends = (free_port(), free_port())
    argv = [*own_argv(__file__), "--role", "backend", "--port", str(backends[0]), "--raw-port"]
    argv += [str(backends[1]), "--cert", str(cert), "--key", str(key)]
    procs.start_listening(argv, tmp / "backend.log", LOAD_CPU if pin else None, backends[0])
    proxies, notes = start_proxies(args, tmp, procs, backends, pin)
    pinned = f"proxy on CPU {PROXY_CPU}, client and backend on CPU {LOAD_CPU}" if pin else "NOT pinned"
    print_header(
        "Zone ingress passthrough (S1, S2)",
        peer_versions([p.name for p in proxies]),
        f"TLS 1.3, SNI {SNI}, loopback; {pinned}; S1 {args.mib} MiB per run; S2 {args.seconds:g} s with "
        f"{args.concurrency} connections at a time; {args.repeat} interleaved rounds, median [min-max]",
    )
    s1: dict[str, Figures] = {}
    s2: dict[str, Figures] = {}
    with pinned_to(LOAD_CPU if pin else None):
        if args.only != "s2":
            s1 = run_s1(proxies, args.mib * CHUNK, args.repeat, raw=False)
            print_table(
                f"S1: one TLS stream, {args.mib} MiB client -> backend through the proxy",
                "Gbit/s",
                "proxy CPU s/GB",
                s1,
                ".2f",
            )
        if args.only != "s2" and not args.no_raw:
            s1_raw = run_s1(proxies, args.mib * CHUNK, args.repeat, raw=True)
            print_table(
                f"S1 raw: a real ClientHello, then {args.mib} MiB of plaintext "
                "(no TLS cost on the load core)",
                "Gbit/s",
                "proxy CPU s/GB",
                s1_raw,
                ".2f",
            )
        if args.only != "s1":
            s2 = run_s2(proxies, args.seconds, args.concurrency, args.repeat)
            print_table(
                "S2: new TLS 1.3 connections (full handshake + 8-byte exchange), "
                f"{args.concurrency} at a time",
                "connections/s",
                "proxy CPU ms/1000",
                s2,
                ".0f",
            )
    print_targets(s1, s2)
    for note in notes:
        print(f"left out: {note}")
    for p in proxies:
        if p.proc is not None and p.proc.poll() is not None:
            print(f"warning: {p.name} exited during the run ({p.proc.returncode})")


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n", 1)[0])
    parser.add_argument("--mib", type=int, default=512, help="S1: MiB per transfer (default 512)")
    parser.add_argument("--repeat", type=int, default=5, help="rounds of S1 and of S2 (default 5)")
    parser.add_argument("--seconds", type=float, default=1.5, help="S2: seconds per run (default 1.5)")
    parser.add_argument("--concurrency", type=int, default=8, help="S2: connections at a time (default 8)")
    parser.add_argument("--no-copy", action="store_true", help="leave out kmesh's copying relay")
    parser.add_argument("--no-raw", action="store_true", help="leave out S1 raw (plaintext after the hello)")
    parser.add_argument("--only", choices=("s1", "s2"), help="run only S1 (with S1 raw) or only S2")
    # The processes this benchmark starts of itself:
    parser.add_argument(
        "--role", choices=("bench", "backend", "kmesh"), default="bench", help=argparse.SUPPRESS
    )
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--backend-port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--raw-port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--copy", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--cert", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--key", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.mib < 1 or args.repeat < 1 or args.seconds <= 0 or args.concurrency < 1:
        parser.error("--mib, --repeat, --seconds and --concurrency must be positive")
    return args


def main() -> int:
    args = parse_args()
    if args.role == "backend":
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        serve_backend(args.port, args.raw_port, args.cert, args.key)
        return 0
    if args.role == "kmesh":
        serve_kmesh(args.port, args.backend_port, args.raw_port, args.copy)
        return 0
    return run_bench("ingress_passthrough", run, args, "kmesh-bench-ingress-")


if __name__ == "__main__":
    sys.exit(main())
