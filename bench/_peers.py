"""What the benchmarks that put kmesh side by side with its peers (``ingress_passthrough.py``,
``sidecar_pair.py``) share: starting, waiting for and stopping their processes, ``taskset`` pinning, CPU and
process trees from ``/proc``, installing nginx and HAProxy, the bytes-to-a-sink stream, the kmesh proxy
process's life, the run header and the ``main`` wrapper. Not a benchmark itself: ``bench/run.py`` does not
run it; the benchmarks import it as a sibling (their folder is on ``sys.path`` when run as scripts).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import platform
import shutil
import signal
import socket
import ssl
import statistics
import struct
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:  # the proxy processes import kmesh themselves, nothing more than they need
    from kmesh.dps import Certificate
    from kmesh.proxy._runtime import ProxyRuntime
    from kmesh.proxyconfig import ProxyConfig

HEADER: Final = struct.Struct("!Q")
CHUNK: Final = 1 << 20
PROXY_CPU: Final = 0
LOAD_CPU: Final = 1
START_TIMEOUT_S: Final = 20.0
CLK_TCK: Final = os.sysconf("SC_CLK_TCK")
NGINX_MODULE: Final = Path("/usr/lib/nginx/modules/ngx_stream_module.so")
APT_PACKAGES: Final = {"nginx": ("nginx", "libnginx-mod-stream"), "haproxy": ("haproxy",)}


class BenchError(Exception):
    """The benchmark could not run."""


# -- processes ----------------------------------------------------------------------------------------------


def own_argv(file: str) -> list[str]:
    """The command line that runs the benchmark ``file`` again (for its ``--role`` processes)."""
    return [sys.executable, str(Path(file).resolve())]


@dataclass
class Processes:
    """Every process this benchmark started; ``stop_all`` ends them, whatever happened."""

    procs: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def start(self, argv: Sequence[str], log: Path, cpu: int | None) -> subprocess.Popen[bytes]:
        if cpu is not None and shutil.which("taskset"):
            argv = ["taskset", "-c", str(cpu), *argv]
        with log.open("wb") as out:
            # Own session: a Ctrl-C in the terminal reaches this process only, which then stops them in order.
            proc = subprocess.Popen(
                argv, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
            )
        self.procs.append(proc)
        return proc

    def start_listening(
        self, argv: Sequence[str], log: Path, cpu: int | None, port: int
    ) -> subprocess.Popen[bytes]:
        """``start``, then ``wait_listening`` on ``port``."""
        proc = self.start(argv, log, cpu)
        wait_listening(proc, port, log)
        return proc

    def stop_all(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.terminate()
        deadline = time.monotonic() + 5.0
        for proc in self.procs:
            try:
                proc.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def wait_listening(proc: subprocess.Popen[bytes], port: int, log: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise BenchError(f"exited {proc.returncode}: {log.read_text(errors='replace')[-2000:]}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1.0):
                return
        except OSError:
            time.sleep(0.05)
    raise BenchError(f"not listening on {port} after {START_TIMEOUT_S:g} s")


def tree_pids(pid: int) -> list[int]:
    """``pid`` and its live descendants (nginx's worker), from ``/proc``."""
    pids, todo = [], [pid]
    while todo:
        p = todo.pop()
        pids.append(p)
        with contextlib.suppress(OSError):
            for task in Path(f"/proc/{p}/task").iterdir():
                with contextlib.suppress(OSError):
                    todo.extend(int(c) for c in (task / "children").read_text().split())
    return pids


def tree_cpu_s(pid: int) -> float:
    """utime + stime of ``pid`` and of its live descendants (nginx's worker), in seconds."""
    total = 0
    for p in tree_pids(pid):
        with contextlib.suppress(OSError):
            stat = Path(f"/proc/{p}/stat").read_text()
            fields = stat[stat.rindex(")") + 2 :].split()
            total += int(fields[11]) + int(fields[12])
    return total / CLK_TCK


# -- pinning --------------------------------------------------------------------------------------------


def can_pin() -> bool:
    """Whether both ``PROXY_CPU`` and ``LOAD_CPU`` are ours to pin to."""
    return {PROXY_CPU, LOAD_CPU} <= os.sched_getaffinity(0)


@contextlib.contextmanager
def pinned_to(cpu: int | None) -> Iterator[None]:
    if cpu is None:
        yield
        return
    before = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {cpu})
    try:
        yield
    finally:
        os.sched_setaffinity(0, before)


# -- peers: nginx and HAProxy ---------------------------------------------------------------------------


def ensure_installed(binary: str) -> str | None:
    """The path of ``binary``, installing its apt packages when it is missing; None when impossible."""
    packages = APT_PACKAGES[binary]
    found = shutil.which(binary) or shutil.which(binary, path="/usr/sbin:/usr/local/sbin")
    if found and (binary != "nginx" or NGINX_MODULE.exists()):
        return found
    if shutil.which("apt-get") is None:
        return None
    command = ["apt-get", "install", "-y", "--no-install-recommends", *packages]
    if os.geteuid() != 0:
        if shutil.which("sudo") is None:
            return None
        command = ["sudo", "-n", *command]
    print(f"installing {' '.join(packages)} ...", flush=True)
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    done = subprocess.run(command, env=env, capture_output=True, check=False)
    if done.returncode != 0:
        tail = done.stderr.decode(errors="replace").strip().splitlines()[-1:]
        print(f"apt-get install {' '.join(packages)} failed: {' '.join(tail)}", flush=True)
        return None
    found = shutil.which(binary) or shutil.which(binary, path="/usr/sbin:/usr/local/sbin")
    if binary == "nginx" and not NGINX_MODULE.exists():
        return None
    return found


def nginx_argv(nginx: str, tmp: Path, conf: Path, start_log: str) -> list[str]:
    """nginx in the foreground on ``conf``, its prefix ``tmp``, its early errors in ``tmp/start_log``."""
    return [nginx, "-p", f"{tmp}/", "-e", f"{tmp}/{start_log}", "-c", str(conf)]


def peer_versions(names: Sequence[str]) -> list[str]:
    """The version lines of nginx and HAProxy, for those among ``names`` (by prefix)."""
    out = []
    for binary, flag in (("nginx", "-v"), ("haproxy", "-v")):
        if any(name.startswith(binary) for name in names):
            path = shutil.which(binary) or shutil.which(binary, path="/usr/sbin")
            if path:
                done = subprocess.run([path, flag], capture_output=True, text=True, check=False)
                text = (done.stdout + done.stderr).strip().splitlines()
                out.append(text[0] if text else binary)
    return out


# -- the kmesh proxy process ----------------------------------------------------------------------------


async def serve_proxy(
    proxy: ProxyRuntime, config: ProxyConfig, what: str, certificate: Certificate | None = None
) -> None:
    """Applies ``config`` (after ``certificate``, if any) to ``proxy``, says ``ready`` on stdout, and serves
    until SIGTERM/SIGINT; ``what`` names it when it does not become ready."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    try:
        if certificate is not None:
            await proxy.on_certificate(certificate)
        await proxy.apply(config)
        ready, why = proxy.ready()
        if not ready:
            raise BenchError(f"{what} is not ready: {why}")
        print("ready", flush=True)
        await stop.wait()
    finally:
        await proxy.close()


# -- load -----------------------------------------------------------------------------------------------


def recv_exact(sock: socket.socket, n: int) -> bytes:
    data = bytearray()
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        if not chunk:
            raise ConnectionError(f"the stream ended after {len(data)} of {n} bytes")
        data += chunk
    return bytes(data)


def push_to_sink(sock: socket.socket, nbytes: int) -> tuple[float, int]:
    """Sends ``nbytes`` (1 MiB ``sendall`` calls) to a sink already told to expect them, and reads its
    8-byte count; (seconds from the first byte to the count, the count)."""
    chunk = memoryview(os.urandom(CHUNK))
    start = time.perf_counter()
    sent = 0
    while sent < nbytes:
        n = min(CHUNK, nbytes - sent)
        sock.sendall(chunk[:n])
        sent += n
    got: int = HEADER.unpack(recv_exact(sock, HEADER.size))[0]
    return time.perf_counter() - start, got


# -- report ---------------------------------------------------------------------------------------------


def spread(values: Sequence[float], fmt: str) -> str:
    return f"{format(statistics.median(values), fmt)} [{format(min(values), fmt)}-{format(max(values), fmt)}]"


def cpu_model() -> str:
    with contextlib.suppress(OSError), open("/proc/cpuinfo", encoding="ascii", errors="replace") as f:
        for line in f:
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def print_header(title: str, versions: Sequence[str], setup: str) -> None:
    """The run's title and time, the machine, the software, ``setup`` and the command line."""
    print(f"{title}, {time.strftime('%Y-%m-%d %H:%M %Z')}")
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    print(
        f"machine: nproc {os.cpu_count()}, {cpu_model()}, {platform.system()} {platform.release()}; "
        f"load {load}"
    )
    print(f"Python {platform.python_version()}, {ssl.OPENSSL_VERSION}; {'; '.join(versions)}")
    print(setup)
    print(f"command: {' '.join([os.path.relpath(sys.executable), *sys.argv])}")
    print(flush=True)


# -- main -----------------------------------------------------------------------------------------------


def run_bench(
    name: str,
    run: Callable[[argparse.Namespace, Path, Processes], None],
    args: argparse.Namespace,
    tmp_prefix: str,
) -> int:
    """Runs ``run`` in a temporary folder and stops every process it started, whatever happened; the exit
    status: 0, 1 when the benchmark could not run, 130 when interrupted."""
    # SIGTERM unwinds like Ctrl-C, so every process started is stopped on the way out; SIGINT too when this
    # runs in the background of a shell, which starts it with SIGINT ignored.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    procs = Processes()
    with tempfile.TemporaryDirectory(prefix=tmp_prefix) as tmp:
        try:
            run(args, Path(tmp), procs)
        except (BenchError, OSError) as exc:  # OSError includes TimeoutError
            print(f"{name}: could not run: {exc}", file=sys.stderr)
            return 1
        except KeyboardInterrupt:
            print(f"{name}: interrupted", file=sys.stderr)
            return 130
        finally:
            procs.stop_all()
    return 0
