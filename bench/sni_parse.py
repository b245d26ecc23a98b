"""Times the two SNI parsers (``kmesh._fastpath._sni_py`` and ``_sni_c``) side by side, in one run.

Not a test: it prints a table, and checks only that the parsers agree on its inputs. Run it as
``.venv/bin/python bench/sni_parse.py [--cpu N] [--iterations I] [--repeat R]``.

The input is what the zone ingress sees first on a cross-zone connection: a real TLS 1.3 ClientHello made
by Python's ``ssl`` (OpenSSL pads it to one 517-byte record) carrying a kmesh-style SNI name and ALPN.
Also timed: the same hello cut into 5 records (the copying path), a plain HTTP request (the cheapest
rejection), and, for scale, one ``recv(MSG_PEEK)`` of the hello from a socketpair: the syscall a
parser-less ingress would make to look at the same bytes. Each figure is the median, and min-max, of
``--repeat`` interleaved rounds of ``--iterations`` calls, in ns per call made from Python (what the
ingress pays); the timing loop's own cost is printed as a row, not subtracted.
BENCH.md's reference on this kind of machine: pure Python 0.72 us, typed Cython 0.12 us, MSG_PEEK 0.85 us.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import os
import platform
import socket
import ssl
import statistics
import time
from collections.abc import Callable
from typing import Any

from kmesh._fastpath import _sni_py
from kmesh._fastpath._sni_types import SniResult, SniStatus

Parse = Callable[[bytes], SniResult]

SNI = "9f86d081884c7d65.backend-api.payments-prod.kmesh"


def client_hello() -> bytes:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    ctx.set_alpn_protocols(["h2", "http/1.1"])
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    tls = ctx.wrap_bio(incoming, outgoing, server_hostname=SNI)
    with contextlib.suppress(ssl.SSLWantReadError):  # the hello is written; now it waits for a server
        tls.do_handshake()
    return outgoing.read()


def reframe(data: bytes, records: int) -> bytes:
    message = data[5:]
    size = -(-len(message) // records)
    chunks = [message[i : i + size] for i in range(0, len(message), size)]
    return b"".join(b"\x16\x03\x01" + len(c).to_bytes(2, "big") + c for c in chunks)


def time_calls(function: Callable[[Any], object], arg: object, iterations: int) -> int:
    loop = range(iterations)
    start = time.perf_counter_ns()
    for _ in loop:
        function(arg)
    return time.perf_counter_ns() - start


def run_rounds(
    calls: list[tuple[Callable[[Any], object], object]], iterations: int, repeat: int
) -> list[tuple[float, float, float]]:
    """Median, min and max ns per call of each ``function(arg)``, over ``repeat`` rounds.

    Each round times every call once, in turn, so that a change in the machine's load during the run
    (these are shared machines) falls on all of them alike rather than on whichever ran at that moment.
    """
    for function, arg in calls:
        time_calls(function, arg, iterations // 10)  # warm up
    runs: list[list[float]] = [[] for _ in calls]
    for _ in range(repeat):
        for times, (function, arg) in zip(runs, calls, strict=True):
            times.append(time_calls(function, arg, iterations) / iterations)
    return [(statistics.median(t), min(t), max(t)) for t in runs]


def compiled_parser() -> Parse | None:
    try:
        from kmesh._fastpath import _sni_c
    except ImportError:
        return None
    return _sni_c.parse_client_hello


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--iterations", type=int, default=200_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--cpu", type=int, help="pin this process to one CPU (as BENCH.md's method asks)")
    args = parser.parse_args()
    if args.cpu is not None:
        os.sched_setaffinity(0, {args.cpu})

    hello = client_hello()
    cases = {
        f"TLS 1.3 hello, {len(hello)} B, 1 record": hello,
        "same hello in 5 records": reframe(hello, 5),
        "HTTP request (NOT_TLS)": b"GET / HTTP/1.1\r\nHost: example.com\r\n\r\n",
    }
    parsers: dict[str, Parse] = {"py": _sni_py.parse_client_hello}
    compiled = compiled_parser()
    if compiled is not None:
        parsers["c"] = compiled
    for data in cases.values():
        outcomes = {parse(data) for parse in parsers.values()}
        assert len(outcomes) == 1, outcomes
    assert parsers["py"](hello) == SniResult(SniStatus.FOUND, SNI, (b"h2", b"http/1.1"))

    left, right = socket.socketpair()
    try:
        left.sendall(hello)
        peek = functools.partial(right.recv_into, bytearray(4096), 4096)
        calls: list[tuple[Callable[[Any], object], object]] = [
            (parse, data) for data in cases.values() for parse in parsers.values()
        ]
        calls += [
            (id, None),  # the timing loop itself, with the cheapest builtin call
            (peek, socket.MSG_PEEK),
            (functools.partial(max, 0, 1), 2),  # the same partial wrapper around a call that does nothing
        ]
        figures_all = run_rounds(calls, args.iterations, args.repeat)
    finally:
        left.close()
        right.close()

    print(f"SNI parse, {time.strftime('%Y-%m-%d')}, {os.cpu_count()} CPUs, {cpu_model()}")
    print(
        f"Python {platform.python_version()}, {platform.system()} {platform.release()}, {ssl.OPENSSL_VERSION}"
    )
    pinned = f", pinned to CPU {args.cpu}" if args.cpu is not None else ""
    print(f"{args.repeat} rounds of {args.iterations} calls{pinned}; median ns/call [min-max]")
    if compiled is None:
        print("kmesh._fastpath._sni_c is not built: pure Python only")
    print(f"{'case':34s}" + "".join(f"{name:>24s}" for name in parsers) + ("     py/c" if compiled else ""))
    figures = iter(figures_all)
    for label in cases:
        row = f"{label:34s}"
        medians = {}
        for name in parsers:
            median, low, high = next(figures)
            medians[name] = median
            row += f"{median:>10.0f} [{low:5.0f}-{high:5.0f}]"
        if compiled is not None:
            row += f"{medians['py'] / medians['c']:>9.1f}x"
        print(row)
    loop, peek_figures, wrapper = next(figures), next(figures), next(figures)
    print(f"{'timing loop, id(None)':34s}{loop[0]:>10.0f} [{loop[1]:5.0f}-{loop[2]:5.0f}]   (in every row)")
    median, low, high = peek_figures
    print(
        f"{'for scale: recv_into(MSG_PEEK)':34s}{median:>10.0f} [{low:5.0f}-{high:5.0f}]"
        f"   (its partial wrapper alone: {wrapper[0]:.0f})"
    )


if __name__ == "__main__":
    main()
