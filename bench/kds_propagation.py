"""KDS on real control-plane processes: how fast a policy change on the global reaches three zones, and how
fast a zone holding 10,000 dataplanes is re-verified after its link to the global was cut.

Not a test: it prints tables, and exits non-zero only when the benchmark could not run, never because of
a figure. Run it as ``.venv/bin/python bench/kds_propagation.py [--changes N] [--interval-ms MS]
[--dataplanes N] [--resync-rounds R] [--cut-s S] [--poll-ms MS] [--py-spy DIR]``; ``make bench`` runs it
with the defaults. ``--py-spy DIR`` samples the global and one zone with py-spy (not a dependency: install it
into the venv) during each measurement and prints where their CPU went.

Setup: ``kmesh-cp --mode global`` and three ``kmesh-cp --mode zone`` processes (``kmesh.testing.CpProcess``),
each with its own SQLite store in one temporary folder and every listener on 127.0.0.1. The zones trust the
global's generated ``kds-ca.pem`` and present zone tokens from its ``POST /tokens/zone``. zone-3 dials the
global through a ``FaultProxy`` run by this process (one more loopback hop, in Python), so that its link
can be cut; zone-1 and zone-2 dial it directly.

How a commit is seen: a thread of this process opens the stores read-only (SQLite WAL: readers never block
the control plane's writer) and reads the watched rows every ``--poll-ms``; the moment a new row version is
first read is an upper bound of its commit, late by at most one poll gap plus a read (the gaps actually
achieved are printed). The row's ``modification_time``, stamped by the store just before it runs the
commit's transaction, is a lower bound on the same (wall) clock; both are printed.

Propagation: ``--changes`` PUTs of the MeshTimeout ``bench-propagation`` on the global's API, one every
``--interval-ms`` on a fixed schedule (open loop: a slow answer does not delay the next change), each with a
new ``connectionTimeout``. The latency of change i in a zone runs from just before its PUT to the first
read of that zone's row holding change i or a later one (a later one has superseded it: KDS coalesces);
"all 3 zones" takes, per change, the slowest zone.

Resync: zone-3 is stopped, 10,000 Dataplanes are committed into its store with ``kmesh.store.SqliteStore``
and it is started again; once the global holds them all, each round (``--resync-rounds``) cuts the link
(``FaultProxy.block()`` then ``cut()``: both ends get a reset, the zone's redial is held) for ``--cut-s``
and, during the cut, creates a marker Dataplane on zone-3 (named to sort after every other, so it travels in
the last Dataplane chunk of the resync) and changes the MeshTimeout on the global. The time from
``unblock()`` to "re-verified" is the later of: the global's store holds the marker (the global has applied
the zone's whole Dataplane listing: nothing else of the zone's state is pending, the other zone-to-global
types are empty here) and zone-3's store holds the changed policy (the other direction). The global's
ZoneInsight getting a new subscription (the zone was admitted) is printed as a milestone. No control plane
exposes "initial sync complete" yet; the markers are the proxy for it. Before and after each round the
versions and modification times of every resource the global holds of zone-3 (and of every global resource
zone-3 holds) are compared: a resync must not rewrite an unchanged one.

BENCH.md's targets: propagation p99 <= 100 ms with three zones; resync of 10,000 dataplanes <= 1 s with no
unchanged resource rewritten. Peer: Kuma's 1 s refresh ticks put its cross-zone propagation at ~1-3 s.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import math
import os
import platform
import shutil
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Final

import aiohttp
import orjson

from kmesh.model import parse_resource
from kmesh.store import Create, SqliteStore
from kmesh.testing import CpProcess, CpProcessError, FaultProxy, free_port

ZONES: Final = ("zone-1", "zone-2", "zone-3")
RESYNC_ZONE: Final = "zone-3"
MESH: Final = "default"
POLICY: Final = "bench-propagation"
POLICY_KEY: Final = ("MeshTimeout", MESH, POLICY, "")
MARKER_PREFIX: Final = "zzzz-resync-marker-"
TIMEOUT_BASE_MS: Final = 1000  # change i sets connectionTimeout to (TIMEOUT_BASE_MS + i) ms
TARGET_PROPAGATION_P99_MS: Final = 100.0
TARGET_RESYNC_S: Final = 1.0
TARGET_RESYNC_DATAPLANES: Final = 10_000  # the resync target is for this many
PEER_PROPAGATION_S: Final = (1.0, 3.0)  # Kuma, BENCH.md
WAIT_S: Final = 120.0  # the longest any single wait may take before the benchmark gives up

RowKey = tuple[str, str, str, str]  # (type, mesh, name, zone) as the SQLite store keys a row


class BenchError(Exception):
    """The benchmark could not run (a process did not start, something never arrived)."""


# -- reading stores ---------------------------------------------------------------------------------------


def open_ro(path: Path) -> sqlite3.Connection:
    """A read-only connection to a control plane's SQLite store (WAL: it never blocks the writer)."""
    return sqlite3.connect(f"file:{path}?mode=ro", uri=True, isolation_level=None)


def parse_time(text: str) -> float:
    return datetime.fromisoformat(text).timestamp()


@dataclass(frozen=True, slots=True)
class Seen:
    """A row version as first read: when (perf_counter), its version, spec and modification time (epoch)."""

    at: float
    version: int
    spec: bytes
    modified: float


@dataclass(frozen=True, slots=True)
class Watched:
    label: str
    db: Path
    key: RowKey


class RowWatch:
    """Reads rows of SQLite stores from a thread, every ``interval_s``, and records each new version."""

    def __init__(self, targets: Sequence[Watched], interval_s: float) -> None:
        self._targets = list(targets)
        self._interval = interval_s
        self.seen: dict[str, list[Seen]] = {t.label: [] for t in targets}
        self.gaps: list[float] = []  # seconds between the starts of two consecutive rounds of reads
        self._stop = threading.Event()
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="row-watch", daemon=True)

    def start(self) -> None:
        """Start reading; returns once every row has been read once (its current version is known)."""
        self._thread.start()
        if not self._ready.wait(30.0):
            self.stop()
            raise BenchError("the store reader did not start")
        if self._error is not None:
            raise BenchError(f"cannot read the stores: {self._error}")

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(10.0)
        if self._error is not None:
            raise BenchError(f"reading the stores failed: {self._error}")

    def latest(self, label: str) -> Seen | None:
        seen = self.seen[label]
        return seen[-1] if seen else None

    def _run(self) -> None:
        conns: list[sqlite3.Connection] = []
        try:
            conns = [open_ro(t.db) for t in self._targets]
            query = (
                "SELECT version, spec, modification_time FROM resources "
                "WHERE type = ? AND mesh = ? AND name = ? AND zone = ?"
            )
            last: list[int | None] = [None] * len(conns)
            previous = 0.0
            while not self._stop.is_set():
                start = time.perf_counter()
                if previous:
                    self.gaps.append(start - previous)
                previous = start
                for index, (target, conn) in enumerate(zip(self._targets, conns, strict=True)):
                    row = conn.execute(query, target.key).fetchone()
                    if row is not None and row[0] != last[index]:
                        now = time.perf_counter()
                        last[index] = row[0]
                        self.seen[target.label].append(Seen(now, row[0], bytes(row[1]), parse_time(row[2])))
                self._ready.set()
                time.sleep(self._interval)
        except BaseException as exc:
            self._error = exc
        finally:
            self._ready.set()
            for conn in conns:
                conn.close()


def count_rows(db: Path, type_: str, zone: str) -> int:
    conn = open_ro(db)
    try:
        (n,) = conn.execute(
            "SELECT count(*) FROM resources WHERE type = ? AND zone = ?", (type_, zone)
        ).fetchone()
        return int(n)
    finally:
        conn.close()


Snapshot = dict[tuple[str, str, str], tuple[int, str]]


def snapshot(db: Path, where: str, params: Sequence[str]) -> Snapshot:
    """(type, mesh, name) -> (version, modification_time) of the rows matching ``where``."""
    conn = open_ro(db)
    try:
        rows = conn.execute(
            f"SELECT type, mesh, name, version, modification_time FROM resources WHERE {where}", params
        ).fetchall()
    finally:
        conn.close()
    return {(t, m, n): (v, mt) for t, m, n, v, mt in rows}


def global_snapshot(db: Path, zone: str) -> Snapshot:
    """Everything the global holds of ``zone`` (Dataplanes and anything else it sent)."""
    return snapshot(db, "zone = ?", (zone,))


def zone_snapshot(db: Path) -> Snapshot:
    """Everything a zone holds that came from the global (meshes, policies)."""
    return snapshot(db, "zone = '' AND labels LIKE ?", ('%"kuma.io/origin":"global"%',))


def subscription_ids(spec: bytes) -> list[str]:
    doc = orjson.loads(spec)
    return [str(s.get("id")) for s in doc.get("subscriptions", [])]


def last_subscription_open(spec: bytes) -> bool:
    subs = orjson.loads(spec).get("subscriptions", [])
    return bool(subs) and "disconnectTime" not in subs[-1]


def insight_spec(db: Path, zone: str) -> bytes | None:
    conn = open_ro(db)
    try:
        row = conn.execute(
            "SELECT spec FROM resources WHERE type = 'ZoneInsight' AND mesh = '' AND name = ? AND zone = ''",
            (zone,),
        ).fetchone()
    finally:
        conn.close()
    return None if row is None else bytes(row[0])


# -- machine and processes --------------------------------------------------------------------------------


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def cpu_seconds(pid: int | None) -> float:
    """User + system CPU seconds of a running process, from /proc; 0 when it cannot be read."""
    if pid is None:
        return 0.0
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@dataclass(slots=True)
class Cluster:
    root: Path
    kds_port: int
    global_cp: CpProcess | None = None
    zones: dict[str, CpProcess] = field(default_factory=dict)

    def processes(self) -> list[CpProcess]:
        return [*self.zones.values(), *([self.global_cp] if self.global_cp else [])]

    def cpu(self) -> dict[str, float]:
        out = {"global": cpu_seconds(self.global_cp.pid if self.global_cp else None)}
        out.update({name: cpu_seconds(cp.pid) for name, cp in self.zones.items()})
        # This process too: its store reader thread and zone-3's proxy compete for the same 2 cores.
        times = os.times()
        out["bench"] = times.user + times.system
        return out

    @property
    def gcp(self) -> CpProcess:
        if self.global_cp is None:
            raise BenchError("the global is not started")
        return self.global_cp


def loopback_env() -> dict[str, str]:
    # Every listener on loopback (the KDS and DP listeners default to 0.0.0.0).
    return {"KMESH_KDS_HOST": "127.0.0.1", "KMESH_DP_SERVER_HOST": "127.0.0.1"}


def stop_all(cluster: Cluster) -> None:
    """Stop every process started, zones first; a process that does not stop in time is killed."""
    for cp in cluster.processes():
        try:
            if cp.returncode is None and cp.pid is not None:
                cp.stop(timeout_s=15.0)
        except CpProcessError as exc:
            print(f"kds_propagation: {exc}", file=sys.stderr)
        finally:
            cp.close()


# -- profiles (optional: --py-spy DIR) -------------------------------------------------------------------


def py_spy() -> str | None:
    """The py-spy executable: beside this Python (a venv's bin) or on PATH."""
    beside = Path(sys.executable).with_name("py-spy")
    return str(beside) if beside.exists() else shutil.which("py-spy")


@contextlib.contextmanager
def profiled(out_dir: Path | None, phase: str, targets: Mapping[str, int | None]) -> Iterator[list[Path]]:
    """Sample each target process with ``py-spy record`` (raw collapsed stacks, without pausing it) while
    the block runs; yields the files written. Does nothing when ``out_dir`` is None."""
    files: list[Path] = []
    if out_dir is None:
        yield files
        return
    exe = py_spy()
    if exe is None:
        raise BenchError("--py-spy: py-spy is not installed (pip install py-spy into the venv)")
    out_dir.mkdir(parents=True, exist_ok=True)
    procs: list[subprocess.Popen[bytes]] = []
    try:
        for name, pid in targets.items():
            if pid is None:
                continue
            path = out_dir / f"{phase}-{name}.txt"
            cmd = [exe, "record", "--pid", str(pid), "--rate", "250", "--format", "raw", "--nonblocking"]
            with open(out_dir / f"{phase}-{name}.log", "wb") as log:
                procs.append(
                    subprocess.Popen([*cmd, "--output", str(path)], stdout=log, stderr=subprocess.STDOUT)
                )
            files.append(path)
        # py-spy says nothing until it exits (its messages are buffered when not on a terminal): give it
        # time to attach, and check that it did not give up.
        time.sleep(1.0)
        for proc, path in zip(procs, files, strict=True):
            if proc.poll() is not None:
                raise BenchError(
                    f"py-spy exited with status {proc.returncode}: see {path.with_suffix('.log')}"
                )
        yield files
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGINT)  # py-spy writes its file on Ctrl-C
        for proc in procs:
            try:
                proc.wait(timeout=30.0)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def profile_summary(path: Path, top: int = 12) -> str:
    """The functions with the most samples in a py-spy raw file: on-CPU (the innermost frame) and
    inclusive (anywhere in the stack, kmesh functions only)."""
    own: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    total = 0
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError as exc:
        return f"{path.name}: not written ({exc})"
    for line in text.splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        total += count
        frames = [_frame(f) for f in stack.split(";")]
        own[frames[-1]] += count
        for frame in set(frames):
            if "kmesh/" in frame:
                inclusive[frame] += count
    lines = [f"{path.name}: {total} samples at 250 Hz (about {total / 250:.2f} s on CPU)"]
    lines.append("  innermost frame (where the CPU was):")
    lines += [f"    {n * 100 / max(total, 1):5.1f}%  {f}" for f, n in own.most_common(top)]
    lines.append("  kmesh functions on the stack (inclusive):")
    lines += [f"    {n * 100 / max(total, 1):5.1f}%  {f}" for f, n in inclusive.most_common(top)]
    return "\n".join(lines)


def _frame(frame: str) -> str:
    """``func (path/to/file.py:123)`` without the line number, with the path from the package on."""
    name, _, where = frame.partition(" (")
    where = where.rstrip(")").rsplit(":", 1)[0]
    for anchor in ("/kmesh/", "/site-packages/", "/lib/python"):
        if anchor in where:
            where = where.split(anchor, 1)[1]
            where = f"kmesh/{where}" if anchor == "/kmesh/" else where
            break
    return f"{name} ({where})"


# -- the API ----------------------------------------------------------------------------------------------


async def api(
    http: aiohttp.ClientSession, method: str, url: str, body: Mapping[str, Any] | None = None
) -> bytes:
    data = None if body is None else orjson.dumps(body)
    headers = {"Content-Type": "application/json"}
    async with http.request(method, url, data=data, headers=headers) as resp:
        payload = await resp.read()
        if resp.status >= 300:
            raise BenchError(f"{method} {url}: HTTP {resp.status}: {payload[:300]!r}")
        return payload


def policy_doc(timeout_ms: int) -> dict[str, Any]:
    return {
        "type": "MeshTimeout",
        "name": POLICY,
        "mesh": MESH,
        "spec": {
            "targetRef": {"kind": "Mesh"},
            "to": [{"targetRef": {"kind": "Mesh"}, "default": {"connectionTimeout": f"{timeout_ms}ms"}}],
        },
    }


def policy_url(cluster: Cluster) -> str:
    return f"{cluster.gcp.api_url}/meshes/{MESH}/meshtimeouts/{POLICY}"


def policy_value(spec: bytes) -> int | None:
    """The connectionTimeout in ms that a stored MeshTimeout spec holds (None: not one of ours)."""
    try:
        value = orjson.loads(spec)["to"][0]["default"]["connectionTimeout"]
    except (orjson.JSONDecodeError, KeyError, IndexError, TypeError):
        return None
    if isinstance(value, str) and value.endswith("ms") and value[:-2].isdigit():
        return int(value[:-2])
    return None


def dataplane_doc(name: str, index: int) -> dict[str, Any]:
    return {
        "type": "Dataplane",
        "name": name,
        "mesh": MESH,
        "networking": {
            "address": f"10.{(index >> 16) & 255}.{(index >> 8) & 255}.{index & 255}",
            "inbound": [{"port": 8080, "tags": {"kuma.io/service": f"svc-{index % 100}"}}],
        },
    }


async def until(check: Callable[[], Awaitable[bool] | bool], what: str, within_s: float = WAIT_S) -> None:
    """Poll ``check`` every 10 ms until it is true; raise BenchError after ``within_s``."""
    deadline = time.monotonic() + within_s
    while True:
        result = check()
        if not isinstance(result, bool):
            result = await result
        if result:
            return
        if time.monotonic() > deadline:
            raise BenchError(f"timed out after {within_s:.0f} s waiting for {what}")
        await asyncio.sleep(0.01)


# -- setup ------------------------------------------------------------------------------------------------


async def start_cluster(cluster: Cluster, http: aiohttp.ClientSession, proxy: FaultProxy) -> None:
    gcp = CpProcess(
        "--mode",
        "global",
        "--kds-port",
        str(cluster.kds_port),
        env=loopback_env(),
        data_dir=cluster.root / "global",
    )
    cluster.global_cp = gcp
    await asyncio.to_thread(gcp.start)
    ca_file = gcp.data_dir / "kds-ca.pem"
    await until(ca_file.exists, "the global's kds-ca.pem")
    for zone in ZONES:
        token = await api(http, "POST", f"{gcp.api_url}/tokens/zone", {"zone": zone})
        token_file = cluster.root / f"{zone}.token"
        token_file.write_bytes(token)
        port = proxy.port if zone == RESYNC_ZONE else cluster.kds_port
        cp = CpProcess(
            "--mode", "zone", "--zone", zone,
            "--kds-global-address", f"kds://127.0.0.1:{port}",
            "--kds-ca-file", str(ca_file),
            "--kds-token-file", str(token_file),
            "--dp-port", str(free_port()),
            env=loopback_env(),
            data_dir=cluster.root / zone,
        )  # fmt: skip
        cluster.zones[zone] = cp
        await asyncio.to_thread(cp.start)

    async def all_online() -> bool:
        doc = orjson.loads(await api(http, "GET", f"{gcp.api_url}/global-insight"))
        return bool(doc["zones"]["controlPlanes"]["online"] == len(ZONES))

    await until(all_online, "three zones Online on the global")
    for zone, cp in cluster.zones.items():

        def has_mesh(db: Path = cp.db_path) -> bool:
            return count_rows(db, "Mesh", "") >= 1

        await until(has_mesh, f"the default Mesh in {zone}")


# -- propagation ------------------------------------------------------------------------------------------


@dataclass(slots=True)
class Propagation:
    changes: int
    per_zone_ms: dict[str, list[float]]  # first read of the change (upper bound)
    per_zone_stamp_ms: dict[str, list[float]]  # the store's modification_time (lower bound)
    all_ms: list[float]
    put_ms: list[float]
    schedule_slip_ms: float
    gaps_ms: list[float]
    cpu_s: dict[str, float]
    duration_s: float
    profiles: list[Path]


async def measure_propagation(
    cluster: Cluster,
    http: aiohttp.ClientSession,
    changes: int,
    interval_s: float,
    poll_s: float,
    profile_dir: Path | None = None,
) -> Propagation:
    url = policy_url(cluster)
    # A first version, in place everywhere before the clock starts: every measured change is an update.
    await api(http, "PUT", url, policy_doc(TIMEOUT_BASE_MS - 1))
    for zone, cp in cluster.zones.items():

        def present(db: Path = cp.db_path) -> bool:
            conn = open_ro(db)
            try:
                row = conn.execute(
                    "SELECT spec FROM resources WHERE type = ? AND mesh = ? AND name = ? AND zone = ?",
                    POLICY_KEY,
                ).fetchone()
            finally:
                conn.close()
            return row is not None and policy_value(bytes(row[0])) == TIMEOUT_BASE_MS - 1

        await until(present, f"the first MeshTimeout in {zone}")

    watch = RowWatch([Watched(z, cp.db_path, POLICY_KEY) for z, cp in cluster.zones.items()], poll_s)
    targets = {"global": cluster.gcp.pid, "zone-1": cluster.zones["zone-1"].pid}
    with profiled(profile_dir, "propagation", targets) as profiles:
        watch.start()
        cpu_before = cluster.cpu()
        started, put_ms, slip = await _changes(cluster, http, watch, changes, interval_s)
    duration = time.perf_counter() - started[0][0]
    cpu_after = cluster.cpu()

    per_zone: dict[str, list[float]] = {}
    per_zone_stamp: dict[str, list[float]] = {}
    for zone in cluster.zones:
        seen = [(policy_value(s.spec), s) for s in watch.seen[zone]]
        lat: list[float] = []
        stamp: list[float] = []
        for i, (t0, wall0) in enumerate(started):
            first = next((s for value, s in seen if value is not None and value >= TIMEOUT_BASE_MS + i), None)
            if first is None:
                raise BenchError(f"change {i} never reached {zone}")
            lat.append((first.at - t0) * 1000)
            stamp.append((first.modified - wall0) * 1000)
        per_zone[zone], per_zone_stamp[zone] = lat, stamp
    all_ms = [max(per_zone[z][i] for z in per_zone) for i in range(changes)]
    return Propagation(
        changes=changes,
        per_zone_ms=per_zone,
        per_zone_stamp_ms=per_zone_stamp,
        all_ms=all_ms,
        put_ms=put_ms,
        schedule_slip_ms=slip * 1000,
        gaps_ms=[g * 1000 for g in watch.gaps],
        cpu_s={k: cpu_after[k] - cpu_before.get(k, 0.0) for k in cpu_after},
        duration_s=duration,
        profiles=profiles,
    )


async def _changes(
    cluster: Cluster, http: aiohttp.ClientSession, watch: RowWatch, changes: int, interval_s: float
) -> tuple[list[tuple[float, float]], list[float], float]:
    """PUT the changes on their schedule and wait until the last is in every zone; returns (perf_counter,
    wall time) just before each PUT, each PUT's round trip (ms) and the largest slip from the schedule."""
    url = policy_url(cluster)
    started: list[tuple[float, float]] = []
    put_ms: list[float] = []
    slip = 0.0
    t_start = time.perf_counter()
    try:
        for i in range(changes):
            due = t_start + i * interval_s
            delay = due - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            slip = max(slip, time.perf_counter() - due)
            body = policy_doc(TIMEOUT_BASE_MS + i)
            started.append((time.perf_counter(), time.time()))
            await api(http, "PUT", url, body)
            put_ms.append((time.perf_counter() - started[-1][0]) * 1000)
        last = TIMEOUT_BASE_MS + changes - 1

        def arrived() -> bool:
            for zone in cluster.zones:
                seen = watch.latest(zone)
                if seen is None or policy_value(seen.spec) != last:
                    return False
            return True

        await until(arrived, "the last change in every zone", within_s=60.0)
    finally:
        watch.stop()
    return started, put_ms, slip


# -- resync -----------------------------------------------------------------------------------------------


@dataclass(slots=True)
class Prefill:
    dataplanes: int
    fill_s: float
    upload_s: float  # zone-3 started again -> the global holds every dataplane


@dataclass(slots=True)
class ResyncRound:
    admitted_s: float | None  # restore -> the global's ZoneInsight has a new, open subscription
    marker_s: float  # restore -> the global's store holds the zone's marker Dataplane
    marker_stamp_s: float  # same, from the global store's modification_time
    policy_s: float  # restore -> zone-3's store holds the policy changed during the cut
    verified_s: float  # the later of marker_s and policy_s
    global_rows: int
    rewritten_on_global: list[str]
    missing_on_global: list[str]
    added_on_global: list[str]
    zone_rows: int
    rewritten_on_zone: list[str]
    cpu_s: dict[str, float]
    profiles: list[Path]


async def prefill(cluster: Cluster, dataplanes: int) -> Prefill:
    """Stop zone-3, commit ``dataplanes`` Dataplanes into its store, start it again, and wait until the
    global holds them all."""
    zone = cluster.zones[RESYNC_ZONE]
    await asyncio.to_thread(zone.stop)
    started = time.perf_counter()
    store = SqliteStore(zone.db_path)
    try:
        batch = 1000
        for first in range(0, dataplanes, batch):
            last = min(first + batch, dataplanes)
            writes = [Create(parse_resource(dataplane_doc(f"dp-{i:05d}", i))) for i in range(first, last)]
            await store.commit(writes)
    finally:
        await store.close()
    fill_s = time.perf_counter() - started
    started = time.perf_counter()
    await asyncio.to_thread(zone.start)
    global_db = cluster.gcp.db_path
    await until(
        lambda: count_rows(global_db, "Dataplane", RESYNC_ZONE) >= dataplanes,
        f"{dataplanes} dataplanes of {RESYNC_ZONE} on the global",
    )
    return Prefill(dataplanes=dataplanes, fill_s=fill_s, upload_s=time.perf_counter() - started)


def diff(before: Snapshot, after: Snapshot) -> tuple[list[str], list[str], list[str]]:
    """Names of the rows rewritten (version or modification time changed), missing and added."""

    def name(key: tuple[str, str, str]) -> str:
        return "/".join(part for part in key if part)

    rewritten = [name(k) for k, v in before.items() if k in after and after[k] != v]
    missing = [name(k) for k in before if k not in after]
    added = [name(k) for k in after if k not in before]
    return rewritten, missing, added


async def resync_round(
    cluster: Cluster,
    http: aiohttp.ClientSession,
    proxy: FaultProxy,
    round_no: int,
    cut_s: float,
    poll_s: float,
    profile_dir: Path | None = None,
) -> ResyncRound:
    zone = cluster.zones[RESYNC_ZONE]
    global_db = cluster.gcp.db_path
    marker = f"{MARKER_PREFIX}{round_no}"
    new_timeout = TIMEOUT_BASE_MS + 100_000 + round_no
    # Settled: the global holds the zone's subscription open and nothing is in flight.
    await until(
        lambda: (s := insight_spec(global_db, RESYNC_ZONE)) is not None and last_subscription_open(s),
        f"{RESYNC_ZONE} connected",
    )
    await asyncio.sleep(1.0)
    global_before = global_snapshot(global_db, RESYNC_ZONE)
    zone_before = zone_snapshot(zone.db_path)
    spec = insight_spec(global_db, RESYNC_ZONE)
    old_ids = set(subscription_ids(spec)) if spec is not None else set()

    proxy.block()  # the zone's redial is accepted and held, not forwarded
    if proxy.cut() < 1:
        raise BenchError(f"no live connection of {RESYNC_ZONE} went through the proxy")
    cut_at = time.perf_counter()
    await until(
        lambda: (s := insight_spec(global_db, RESYNC_ZONE)) is not None and not last_subscription_open(s),
        f"the global to see {RESYNC_ZONE} disconnected",
        within_s=30.0,
    )
    # Changes on both sides while the link is down: each must cross once the link is back.
    await api(
        http,
        "PUT",
        f"{zone.api_url}/meshes/{MESH}/dataplanes/{marker}",
        dataplane_doc(marker, 60_000 + round_no),
    )
    await api(http, "PUT", policy_url(cluster), policy_doc(new_timeout))
    remaining = cut_s - (time.perf_counter() - cut_at)
    if remaining > 0:
        await asyncio.sleep(remaining)

    watch = RowWatch(
        [
            Watched("marker", global_db, ("Dataplane", MESH, marker, RESYNC_ZONE)),
            Watched("insight", global_db, ("ZoneInsight", "", RESYNC_ZONE, "")),
            Watched("policy", zone.db_path, POLICY_KEY),
        ],
        poll_s,
    )
    targets = {"global": cluster.gcp.pid, RESYNC_ZONE: zone.pid}
    with profiled(profile_dir, f"resync-{round_no}", targets) as profiles:
        watch.start()
        cpu_before = cluster.cpu()
        restored, restored_wall = await _restore(proxy, watch, new_timeout)
    cpu_after = cluster.cpu()
    marker_seen = watch.seen["marker"][0]
    policy_seen = next(s for s in watch.seen["policy"] if policy_value(s.spec) == new_timeout)
    admitted = next(
        (
            s
            for s in watch.seen["insight"]
            if last_subscription_open(s.spec) and subscription_ids(s.spec)[-1] not in old_ids
        ),
        None,
    )
    await asyncio.sleep(0.5)
    global_after = global_snapshot(global_db, RESYNC_ZONE)
    zone_after = zone_snapshot(zone.db_path)
    rewritten, missing, added = diff(global_before, global_after)
    zone_rewritten, _, _ = diff(zone_before, zone_after)
    policy_name = f"MeshTimeout/{MESH}/{POLICY}"
    return ResyncRound(
        admitted_s=None if admitted is None else admitted.at - restored,
        marker_s=marker_seen.at - restored,
        marker_stamp_s=marker_seen.modified - restored_wall,
        policy_s=policy_seen.at - restored,
        verified_s=max(marker_seen.at, policy_seen.at) - restored,
        global_rows=len(global_before),
        rewritten_on_global=rewritten,
        missing_on_global=missing,
        added_on_global=added,
        zone_rows=len(zone_before),
        # The policy was changed on purpose: its rewrite is the expected one.
        rewritten_on_zone=[n for n in zone_rewritten if n != policy_name],
        cpu_s={k: cpu_after[k] - cpu_before.get(k, 0.0) for k in cpu_after},
        profiles=profiles,
    )


async def _restore(proxy: FaultProxy, watch: RowWatch, new_timeout: int) -> tuple[float, float]:
    """Unblock the link and wait until both markers crossed; returns when it was unblocked (perf_counter,
    wall time)."""
    try:
        restored_wall = time.time()
        restored = time.perf_counter()
        proxy.unblock()

        def verified() -> bool:
            policy = watch.latest("policy")
            return (
                watch.latest("marker") is not None
                and policy is not None
                and policy_value(policy.spec) == new_timeout
            )

        await until(verified, f"{RESYNC_ZONE} and the global to resync", within_s=60.0)
        await asyncio.sleep(0.5)  # anything rewritten by the resync would be written by now
    finally:
        watch.stop()
    return restored, restored_wall


# -- report -----------------------------------------------------------------------------------------------


def pct(values: Sequence[float], p: float) -> float:
    """The nearest-rank percentile (p99 of 100 values is the 99th smallest)."""
    ordered = sorted(values)
    return ordered[max(1, math.ceil(p / 100 * len(ordered))) - 1]


def row(label: str, values: Sequence[float], extra: str = "") -> str:
    figures = "".join(f"{pct(values, p):>9.1f}" for p in (50, 90, 99, 100))
    return f"{label:22s}{len(values):>5d}{figures}{extra}"


def print_header(args: argparse.Namespace) -> None:
    print(f"KDS propagation and resync, {time.strftime('%Y-%m-%d %H:%M %Z')}")
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    print(
        f"machine: {os.cpu_count()} CPUs (nproc {len(os.sched_getaffinity(0))}), {cpu_model()}; load {load}"
    )
    print(
        f"kernel {platform.system()} {platform.release()}, Python {platform.python_version()}, "
        f"SQLite {sqlite3.sqlite_version}"
    )
    print(
        f"1 global + 3 zone kmesh-cp processes, SQLite stores, loopback, unpinned; {args.changes} changes "
        f"every {args.interval_ms:g} ms; {args.dataplanes} dataplanes; {args.resync_rounds} resync rounds, "
        f"cut {args.cut_s:g} s; stores read every {args.poll_ms:g} ms"
    )
    print(f"command: {' '.join([os.path.relpath(sys.executable), *sys.argv])}")
    print(flush=True)


def print_propagation(p: Propagation) -> None:
    print(f"Propagation: PUT on the global -> committed in the zone's store ({p.changes} changes), ms")
    print(f"{'':22s}{'n':>5s}{'p50':>9s}{'p90':>9s}{'p99':>9s}{'max':>9s}   store stamp p50 / p99")
    for zone, values in p.per_zone_ms.items():
        stamp = p.per_zone_stamp_ms[zone]
        via = " (via proxy)" if zone == RESYNC_ZONE else ""
        print(row(f"{zone}{via}", values, f"   {pct(stamp, 50):>6.1f} / {pct(stamp, 99):.1f}"))
    print(row("all 3 zones (slowest)", p.all_ms))
    print(row("PUT round trip", p.put_ms))
    gaps = p.gaps_ms
    print(
        f"store reads: a round every {statistics.median(gaps):.2f} ms median, p99 {pct(gaps, 99):.2f}, "
        f"max {max(gaps):.2f} ms (the resolution of the figures above); "
        f"schedule slip max {p.schedule_slip_ms:.1f} ms"
    )
    cpu = ", ".join(f"{k} {v * 1000 / p.changes:.1f}" for k, v in p.cpu_s.items())
    print(f"CPU ms per change: {cpu} ({p.duration_s:.1f} s phase)")
    print(flush=True)


def print_resync(pre: Prefill, rounds: Sequence[ResyncRound], cut_s: float) -> None:
    print(
        f"Resync of {RESYNC_ZONE} holding {pre.dataplanes} dataplanes (filled in {pre.fill_s:.1f} s; "
        f"initial upload after its restart {pre.upload_s:.2f} s)"
    )
    print(f"each round: link cut {cut_s:g} s, then restored; seconds from the restore")
    print(f"{'round':>5s}{'admitted':>10s}{'zone->global':>14s}{'(stamp)':>9s}{'global->zone':>14s}{'verified':>10s}"
          f"{'rewritten':>11s}  CPU s global/zone-3/bench")  # fmt: skip
    for n, r in enumerate(rounds, 1):
        admitted = f"{r.admitted_s:.3f}" if r.admitted_s is not None else "-"
        print(
            f"{n:>5d}{admitted:>10s}{r.marker_s:>14.3f}{r.marker_stamp_s:>9.3f}{r.policy_s:>14.3f}{r.verified_s:>10.3f}"
            f"{len(r.rewritten_on_global) + len(r.rewritten_on_zone):>11d}"
            f"  {r.cpu_s.get('global', 0.0):.2f}/{r.cpu_s.get(RESYNC_ZONE, 0.0):.2f}"
            f"/{r.cpu_s.get('bench', 0.0):.2f}"
        )
    for n, r in enumerate(rounds, 1):
        print(
            f"round {n}: global holds {r.global_rows} resources of {RESYNC_ZONE}: "
            f"{len(r.rewritten_on_global)} rewritten, {len(r.missing_on_global)} missing, "
            f"added {r.added_on_global or 'nothing'}; "
            f"{RESYNC_ZONE} holds {r.zone_rows} global resources: {len(r.rewritten_on_zone)} rewritten "
            f"besides the policy changed during the cut"
        )
        for label, names in (
            ("rewritten on the global", r.rewritten_on_global),
            ("rewritten on the zone", r.rewritten_on_zone),
        ):
            if names:
                print(f"  {label}: {', '.join(names[:10])}{' ...' if len(names) > 10 else ''}")
    print(
        "admitted: the global's ZoneInsight shows a new open subscription; zone->global: the global's store "
        "holds the marker Dataplane made during the cut (it travels in the zone's last Dataplane chunk); "
        "global->zone: the zone's store holds the policy changed during the cut; verified: the later of both"
    )
    print(flush=True)


def print_summary(p: Propagation, rounds: Sequence[ResyncRound], dataplanes: int) -> None:
    p99 = pct(p.all_ms, 99)
    verified = [r.verified_s for r in rounds]
    resync = statistics.median(verified)
    rewritten = sum(len(r.rewritten_on_global) + len(r.rewritten_on_zone) for r in rounds)
    low, high = PEER_PROPAGATION_S
    print("Summary (kmesh vs BENCH.md's targets and peer)")
    print(f"{'what':44s}{'kmesh':>16s}{'target':>12s}{'holds':>7s}   peer (Kuma), kmesh/peer")
    holds = _yes(p99 <= TARGET_PROPAGATION_P99_MS)
    print(
        f"{'policy change -> 3 zones, p99':44s}{p99:>13.1f} ms{'<= 100 ms':>12s}{holds:>7s}"
        f"   ~{low:g}-{high:g} s: {p99 / 1000 / low:.3f}-{p99 / 1000 / high:.3f}x"
        f" ({low * 1000 / p99:.0f}-{high * 1000 / p99:.0f}x faster)"
    )
    p50 = pct(p.all_ms, 50)
    print(f"{'policy change -> 3 zones, p50':44s}{p50:>13.1f} ms{'':>12s}{'':>7s}   ~{low:g}-{high:g} s: "
          f"{p50 / 1000 / low:.3f}-{p50 / 1000 / high:.3f}x")  # fmt: skip
    spread = f" [{min(verified):.3f}-{max(verified):.3f}]" if len(verified) > 1 else ""
    holds = _yes(max(verified) <= TARGET_RESYNC_S)  # every round, not only the median
    if dataplanes != TARGET_RESYNC_DATAPLANES:
        holds = "n/a"
    print(
        f"{f'resync of {dataplanes} dataplanes, median of {len(rounds)}':44s}{resync:>14.3f} s{'<= 1 s':>12s}"
        f"{holds:>7s}   -{spread}"
    )
    print(
        f"{'unchanged resources rewritten by a resync':44s}{rewritten:>16d}{'0':>12s}"
        f"{_yes(rewritten == 0):>7s}"
    )


def print_profiles(files: Sequence[Path]) -> None:
    for path in files:
        print(profile_summary(path))
    if files:
        print(flush=True)


def _yes(ok: bool) -> str:
    return "yes" if ok else "NO"


# -- main -------------------------------------------------------------------------------------------------


async def run(args: argparse.Namespace, cluster: Cluster) -> None:
    poll_s = args.poll_ms / 1000
    timeout = aiohttp.ClientTimeout(total=30.0)
    async with (
        aiohttp.ClientSession(timeout=timeout) as http,
        FaultProxy("127.0.0.1", cluster.kds_port) as proxy,
    ):
        await start_cluster(cluster, http, proxy)
        propagation = await measure_propagation(
            cluster, http, args.changes, args.interval_ms / 1000, poll_s, args.py_spy
        )
        print_propagation(propagation)
        print_profiles(propagation.profiles)
        pre = await prefill(cluster, args.dataplanes)
        rounds = [
            await resync_round(cluster, http, proxy, n, args.cut_s, poll_s, args.py_spy)
            for n in range(1, args.resync_rounds + 1)
        ]
        print_resync(pre, rounds, args.cut_s)
        for r in rounds:
            print_profiles(r.profiles)
        print_summary(propagation, rounds, args.dataplanes)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n", 1)[0])
    parser.add_argument("--changes", type=int, default=100, help="policy changes to time (default 100)")
    parser.add_argument("--interval-ms", type=float, default=50.0, help="between two changes (default 50)")
    parser.add_argument("--dataplanes", type=int, default=10_000, help="dataplanes of the resync zone")
    parser.add_argument("--resync-rounds", type=int, default=3, help="link cuts to time (default 3)")
    parser.add_argument("--cut-s", type=float, default=3.0, help="how long each cut lasts (default 3 s)")
    parser.add_argument(
        "--poll-ms", type=float, default=0.5, help="how often the stores are read (default 0.5)"
    )
    parser.add_argument(
        "--py-spy",
        type=Path,
        metavar="DIR",
        help="sample the global and one zone with py-spy during each phase; raw stacks go to DIR",
    )
    args = parser.parse_args()
    if args.changes < 1 or args.resync_rounds < 1 or args.dataplanes < 1 or args.poll_ms <= 0:
        parser.error("--changes, --resync-rounds, --dataplanes and --poll-ms must be positive")
    return args


def main() -> int:
    args = parse_args()
    # SIGTERM unwinds like Ctrl-C, so every process started is stopped on the way out; SIGINT too when this
    # runs in the background of a shell, which starts it with SIGINT ignored.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    print_header(args)
    with tempfile.TemporaryDirectory(prefix="kmesh-bench-kds-") as tmp:
        cluster = Cluster(root=Path(tmp), kds_port=free_port())
        try:
            loop_factory: Callable[[], asyncio.AbstractEventLoop] | None = None
            with contextlib.suppress(ImportError):
                import uvloop

                loop_factory = uvloop.new_event_loop
            with asyncio.Runner(loop_factory=loop_factory) as runner:
                runner.run(run(args, cluster))
        except (BenchError, CpProcessError, aiohttp.ClientError, OSError) as exc:
            print(f"kds_propagation: could not run: {exc}", file=sys.stderr)
            for cp in cluster.processes():
                if cp.returncode is not None:
                    print(
                        f"--- {cp.data_dir.name} exited {cp.returncode}; its log ends:\n{cp.tail()}",
                        file=sys.stderr,
                    )
            return 1
        except KeyboardInterrupt:
            print("kds_propagation: interrupted", file=sys.stderr)
            return 130
        finally:
            stop_all(cluster)
    return 0


if __name__ == "__main__":
    sys.exit(main())
