"""Helpers of the end-to-end tests: a real global and zone control planes, the API and CLI as a user drives
them, the stores as they are on disk, and a wait that turns a hang into a clear failure.

- ``Cluster`` runs one global ``kmesh-cp`` and two zones (``zone-a`` dials the global directly, ``zone-b``
  through a ``FaultProxy``), each with its own data dir and SQLite store; the zones hold zone tokens made
  through the global's ``POST /tokens/zone`` and trust the ``kds-ca.pem`` the global wrote beside its store.
- ``Api`` is plain HTTP to a control plane's REST API; ``kmeshctl`` runs the real CLI as a subprocess.
- ``stored_rows`` reads a store's rows (version and times, which the REST documents do not all carry)
  through a read-only SQLite connection, so a test can prove that a resource was not rewritten.
- ``eventually`` polls a probe until it stops failing; its deadline only turns a hang into a failure, and
  no test asserts how long anything took.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Coroutine, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, Literal, TypeVar

import orjson

from kmesh.model import LABEL_ORIGIN, LABEL_ZONE, KdsDirection, all_descriptors
from kmesh.testing import CpProcess, FaultProxy, free_port

T = TypeVar("T")

TIMEOUT_S: Final = 45.0
POLL_S: Final = 0.1
# The global tells both ends to beat every second, so a silent peer (a partition) is noticed after three.
HEARTBEAT_S: Final = "1"
ZONE_A: Final = "zone-a"
ZONE_B: Final = "zone-b"
ZONE_DELETE_REFUSED: Final = (
    "zone: unable to delete Zone, Zone CP is still connected, please shut it down first"
)
# Types whose rows change by design while a control plane runs (connection and proxy bookkeeping); every
# other row must keep its version and times unless the test changed that resource.
BOOKKEEPING_TYPES: Final = frozenset(
    {"ZoneInsight", "DataplaneInsight", "ZoneIngressInsight", "ZoneEgressInsight"}
)
# Resources made on the global and synced to every zone; from the descriptor table, as KDS itself does.
GLOBAL_TYPES: Final = tuple(d for d in all_descriptors() if d.kds is KdsDirection.GLOBAL_TO_ZONES)


# -- waiting ------------------------------------------------------------------------------------------------


def eventually(probe: Callable[[], T], what: str, timeout_s: float = TIMEOUT_S) -> T:
    """Call ``probe`` until it returns without raising AssertionError (or OSError: a control plane that is
    restarting); return its value. After ``timeout_s`` raise AssertionError naming ``what`` and the last
    failure."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            return probe()
        except (AssertionError, OSError) as exc:
            last: BaseException = exc
        if time.monotonic() > deadline:
            raise AssertionError(
                f"timed out after {timeout_s:g}s waiting for {what}; last observed: {last!s}"
            ) from last
        time.sleep(POLL_S)


# -- the REST API and the CLI -------------------------------------------------------------------------------

_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # loopback: never via a proxy


@dataclass(frozen=True)
class Api:
    """The REST API of one control plane."""

    url: str

    def request(self, method: str, path: str, body: Any = None, **query: str) -> tuple[int, Any]:
        """One request; the status and the decoded body (JSON, or the text of a text answer)."""
        target = self.url + path + (f"?{urllib.parse.urlencode(query)}" if query else "")
        data = orjson.dumps(body) if body is not None else None
        req = urllib.request.Request(
            target, data=data, method=method, headers={"Content-Type": "application/json"}
        )
        try:
            with _OPENER.open(req, timeout=10) as resp:
                status, raw, kind = resp.status, resp.read(), resp.headers.get_content_type()
        except urllib.error.HTTPError as exc:
            status, raw, kind = exc.code, exc.read(), exc.headers.get_content_type()
            exc.close()
        if kind == "application/json":
            return status, orjson.loads(raw) if raw else None
        return status, raw.decode()

    def get(self, path: str, **query: str) -> tuple[int, Any]:
        return self.request("GET", path, **query)

    def put(self, path: str, body: dict[str, Any]) -> tuple[int, Any]:
        return self.request("PUT", path, body)

    def delete(self, path: str, **query: str) -> tuple[int, Any]:
        return self.request("DELETE", path, **query)

    def ok(self, path: str, **query: str) -> Any:
        """The body of a GET that must answer 200."""
        status, body = self.get(path, **query)
        assert status == 200, f"GET {path} {query}: {status} {body}"
        return body

    def items(self, path: str, **query: str) -> list[dict[str, Any]]:
        """Every item of a listing (one page of the largest size: tests hold far fewer)."""
        body = self.ok(path, size="1000", **query)
        assert body["next"] is None, f"GET {path}: more than one page"
        assert body["total"] == len(body["items"]), f"GET {path}: total {body['total']} != items"
        items: list[dict[str, Any]] = body["items"]
        return items

    def put_ok(self, path: str, body: dict[str, Any], expect: int = 201) -> dict[str, Any]:
        status, answer = self.put(path, body)
        assert status == expect, f"PUT {path}: {status} {answer}"
        stored: dict[str, Any] = answer
        return stored


def kmeshctl(home: Path, api_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    """Run the real ``kmeshctl`` against ``api_url`` with a private HOME; its status and output."""
    env = {
        "PATH": "/usr/bin:/bin",
        "HOME": str(home),
        "KMESHCTL_CONFIG": str(home / "kmeshctl.yaml"),
        "NO_PROXY": "*",
    }
    return subprocess.run(
        [sys.executable, "-m", "kmesh.cli", "--cp-address", api_url, *args],
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def table(output: str) -> list[dict[str, str]]:
    """The rows of a ``kmeshctl get`` table, keyed by column header. A column starts where the header has
    a word after two or more blanks (a header such as ``LAST CONNECTED AGO`` holds single blanks)."""
    lines = [line for line in output.splitlines() if line.strip()]
    assert lines, f"no table in {output!r}"
    header = lines[0]
    starts = [i for i, ch in enumerate(header) if ch != " " and (i == 0 or header[max(0, i - 2) : i] == "  ")]
    bounds = list(zip(starts, [*starts[1:], None], strict=True))
    names = [header[start:end].strip() for start, end in bounds]
    return [
        {name: line[start:end].strip() for name, (start, end) in zip(names, bounds, strict=True)}
        for line in lines[1:]
    ]


# -- documents and stored rows ------------------------------------------------------------------------------


def comparable(doc: dict[str, Any]) -> dict[str, Any]:
    """A REST document without what differs between a resource and its synced copy: the times each store
    stamps and the origin labels KDS adds."""
    out = {k: v for k, v in doc.items() if k not in ("creationTime", "modificationTime")}
    labels = {k: v for k, v in doc.get("labels", {}).items() if k not in (LABEL_ORIGIN, LABEL_ZONE)}
    out.pop("labels", None)
    if labels:
        out["labels"] = labels
    return out


def keyed(docs: list[dict[str, Any]]) -> dict[tuple[str, str], dict[str, Any]]:
    """Documents by (mesh, name); fails on a duplicate, which would mean a resource was synced twice."""
    out: dict[tuple[str, str], dict[str, Any]] = {}
    for doc in docs:
        key = (doc.get("mesh", ""), doc["name"])
        assert key not in out, f"duplicate {doc['type']} {key}: {out.get(key)} and {doc}"
        out[key] = doc
    return out


def own(docs: list[dict[str, Any]], zone: str) -> list[dict[str, Any]]:
    """The documents a zone control plane made itself (copies from other zones carry ``kuma.io/zone``)."""
    return [d for d in docs if d.get("labels", {}).get(LABEL_ZONE, zone) == zone]


@dataclass(frozen=True)
class Row:
    version: int
    creation_time: str
    modification_time: str


RowKey = tuple[str, str, str, str]  # (type, mesh, name, zone of origin)


def stored_rows(db_path: Path) -> dict[RowKey, Row]:
    """Every resource row of a SQLite store except bookkeeping types, read through a read-only connection
    (a running control plane keeps writing; WAL lets a reader in beside it)."""
    conn = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True, timeout=10)
    try:
        rows = conn.execute(
            "SELECT type, mesh, name, zone, version, creation_time, modification_time FROM resources"
        ).fetchall()
    finally:
        conn.close()
    return {
        (type_, mesh, name, zone): Row(version, created, modified)
        for type_, mesh, name, zone, version, created, modified in rows
        if type_ not in BOOKKEEPING_TYPES
    }


def assert_untouched(
    before: dict[RowKey, Row], after: dict[RowKey, Row], changed: set[RowKey], where: str
) -> None:
    """Every row of ``before`` that the test did not change is in ``after`` with the same version and
    times: nothing was rewritten by a reconnect or a restart."""
    rewritten = {
        key: (row, after.get(key))
        for key, row in before.items()
        if key not in changed and after.get(key) != row
    }
    assert not rewritten, f"{where}: rows rewritten or lost (before, after): {rewritten}"


# -- a fault proxy on its own event loop --------------------------------------------------------------------


class ThreadedFaultProxy:
    """A ``FaultProxy`` running on an event loop in a background thread, driven from synchronous tests."""

    def __init__(self, target_host: str, target_port: int) -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="fault-proxy", daemon=True)
        self.proxy = FaultProxy(target_host, target_port)

    def _call(self, coro: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout=30)

    def _run(self, fn: Callable[[], T]) -> T:
        async def call() -> T:
            return fn()

        return self._call(call())

    def start(self) -> ThreadedFaultProxy:
        self._thread.start()
        self._call(self.proxy.start())
        return self

    @property
    def port(self) -> int:
        return self.proxy.port

    def cut(self) -> int:
        return self._run(self.proxy.cut)

    def block(self, new_connections: Literal["hold", "refuse"] = "hold") -> None:
        self._run(lambda: self.proxy.block(new_connections))

    def unblock(self) -> None:
        self._run(self.proxy.unblock)

    def stop(self) -> None:
        if not self._thread.is_alive():
            if not self._loop.is_closed():
                self._loop.close()
            return
        try:
            self._call(self.proxy.stop())
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=30)
            self._loop.close()


# -- the cluster --------------------------------------------------------------------------------------------


@dataclass
class Cluster:
    """A global and two zone control planes; ``zone-b`` reaches the global through ``link_b``."""

    root: Path
    kds_port: int
    glob: CpProcess
    zones: dict[str, CpProcess] = field(default_factory=dict)
    link_b: ThreadedFaultProxy | None = None
    extra: list[CpProcess] = field(default_factory=list)

    @property
    def ca_file(self) -> Path:
        return self.glob.data_dir / "kds-ca.pem"

    @property
    def home(self) -> Path:
        """HOME of kmeshctl runs."""
        home = self.root / "cli-home"
        home.mkdir(exist_ok=True)
        return home

    @property
    def g(self) -> Api:
        return Api(self.glob.api_url)

    def api(self, zone: str) -> Api:
        return Api(self.zones[zone].api_url)

    def ctl(self, cp: CpProcess, *args: str) -> subprocess.CompletedProcess[str]:
        return kmeshctl(self.home, cp.api_url, *args)

    def zone_token(self, zone: str) -> Path:
        """A zone token for ``zone`` made through the global's API, in a file for ``--kds-token-file``."""
        status, token = self.g.request("POST", "/tokens/zone", {"zone": zone})
        assert status == 200, f"POST /tokens/zone {zone}: {status} {token}"
        assert isinstance(token, str)
        path = self.root / f"{zone}-{time.monotonic_ns()}.token"
        path.write_text(token)
        return path

    def zone_cp(self, zone: str, *, token_file: Path, kds_port: int | None = None) -> CpProcess:
        """A zone control plane (not started) dialling the global, or whatever listens on ``kds_port``."""
        port = self.kds_port if kds_port is None else kds_port
        cp = CpProcess(
            "--mode",
            "zone",
            "--zone",
            zone,
            "--kds-global-address",
            f"kds://127.0.0.1:{port}",
            "--kds-ca-file",
            str(self.ca_file),
            "--kds-token-file",
            str(token_file),
            data_dir=self.root / f"cp-{zone}-{time.monotonic_ns()}",
        )
        return cp

    @classmethod
    def start(cls, root: Path) -> Cluster:
        """Start the global, then the zones. On failure, stops what it started and raises."""
        kds_port = free_port()
        glob = CpProcess(
            "--mode",
            "global",
            "--kds-port",
            str(kds_port),
            data_dir=root / "global",
            env={"KMESH_KDS_HOST": "127.0.0.1", "KMESH_KDS_HEARTBEAT_INTERVAL_S": HEARTBEAT_S},
        )
        cluster = cls(root=root, kds_port=kds_port, glob=glob)
        try:
            glob.start()
            cluster.link_b = ThreadedFaultProxy("127.0.0.1", kds_port).start()
            for zone, port in ((ZONE_A, None), (ZONE_B, cluster.link_b.port)):
                cluster.zones[zone] = cluster.zone_cp(
                    zone, token_file=cluster.zone_token(zone), kds_port=port
                )
                cluster.zones[zone].start()
        except BaseException:
            cluster.close()
            raise
        return cluster

    def close(self) -> None:
        """Stop every process and the proxy; keeps going past failures and raises the first at the end."""
        errors: list[BaseException] = []
        for cp in [*self.extra, *self.zones.values(), self.glob]:
            try:
                if cp.returncode is None and cp.pid is not None:
                    cp.stop()
            except BaseException as exc:
                errors.append(exc)
            finally:
                cp.close()
        if self.link_b is not None:
            try:
                self.link_b.stop()
            except BaseException as exc:
                errors.append(exc)
        if errors:
            raise errors[0]

    @contextlib.contextmanager
    def extra_zone(self, zone: str, token_file: Path) -> Iterator[CpProcess]:
        """One more zone control plane for a test, stopped (and forgotten) when the block ends."""
        cp = self.zone_cp(zone, token_file=token_file)
        self.extra.append(cp)
        try:
            cp.start()
            yield cp
        finally:
            try:
                if cp.returncode is None and cp.pid is not None:
                    cp.stop()
            finally:
                cp.close()
                self.extra.remove(cp)

    # -- zone state on the global ---------------------------------------------------------------------------

    def newest_subscription(self, zone: str) -> dict[str, Any]:
        status, insight = self.g.get(f"/zone-insights/{zone}")
        assert status == 200, f"no ZoneInsight of {zone} on the global: {status} {insight}"
        subscriptions = insight.get("subscriptions") or []
        assert subscriptions, f"ZoneInsight of {zone} lists no subscription: {insight}"
        newest: dict[str, Any] = subscriptions[-1]
        return newest

    def online(self, zone: str, newest: dict[str, Any] | None = None) -> bool:
        """Online as the global records it: the Zone is enabled and its newest subscription (``newest``,
        when the caller read it already) is open."""
        status, found = self.g.get(f"/zones/{zone}")
        assert status == 200, f"no Zone {zone} on the global: {status} {found}"
        if newest is None:
            newest = self.newest_subscription(zone)
        return found.get("enabled", True) is not False and "disconnectTime" not in newest

    def global_instance_id(self) -> str:
        """The instance id of the global's current run (it changes with every start)."""
        started = [r for r in self.glob.log_records() if r.get("msg") == "control plane started"]
        assert started, f"the global did not log its start:\n{self.glob.tail()}"
        return str(started[-1]["instance_id"])

    def wait_online(self, zone: str) -> dict[str, Any]:
        """Wait until ``zone`` is Online through a connection to the global's current run (an entry left
        open by a killed run says nothing) and return that subscription."""
        instance = self.global_instance_id()

        def probe() -> dict[str, Any]:
            newest = self.newest_subscription(zone)
            assert self.online(zone, newest), f"{zone} offline: {newest}"
            assert newest["globalInstanceId"] == instance, f"{zone} not yet connected to {instance}: {newest}"
            return newest

        return eventually(probe, f"{zone} Online on the global")

    def wait_offline(self, zone: str) -> dict[str, Any]:
        def probe() -> dict[str, Any]:
            newest = self.newest_subscription(zone)
            assert "disconnectTime" in newest, f"{zone} still connected: {newest}"
            return newest

        return eventually(probe, f"{zone} Offline on the global (newest subscription closed)")

    def zone_statuses(self) -> dict[str, str]:
        """NAME -> STATUS of ``kmeshctl get zones`` against the global."""
        result = self.ctl(self.glob, "get", "zones")
        assert result.returncode == 0, result.stderr
        return {row["NAME"]: row["STATUS"] for row in table(result.stdout)}

    # -- health and convergence -----------------------------------------------------------------------------

    def ensure_healthy(self) -> None:
        """Bring the cluster back to its normal state after any test: every process running, the link
        open, both zones enabled and Online, and everything synced."""
        assert self.link_b is not None
        self.link_b.unblock()
        for cp in [self.glob, *self.zones.values()]:
            if cp.returncode is not None or cp.pid is None:
                cp.start()
        for zone in self.zones:
            status, found = self.g.get(f"/zones/{zone}")
            if status == 200 and found.get("enabled", True) is False:
                self.g.put_ok(f"/zones/{zone}", {"type": "Zone", "name": zone, "enabled": True}, expect=200)
        for zone in self.zones:
            self.wait_online(zone)
        self.converge()

    def check_converged(self) -> None:
        """What each side holds matches the other's, with nothing duplicated (see ``converge``)."""
        g = self.g
        for desc in GLOBAL_TYPES:
            path = f"/{desc.path}"
            made_here = keyed(g.items(path))
            wanted = {k: comparable(d) for k, d in made_here.items()}
            for zone in self.zones:
                copies = keyed(self.api(zone).items(path))
                assert {k: comparable(d) for k, d in copies.items()} == wanted, f"{desc.name} in {zone}"
                origins = {k: d.get("labels", {}).get(LABEL_ORIGIN) for k, d in copies.items()}
                assert set(origins.values()) <= {"global"}, f"{desc.name} origins in {zone}: {origins}"
        total = 0
        for zone in self.zones:
            for path in ("/dataplanes", "/zoneingresses"):
                mine = keyed(own(self.api(zone).items(path), zone))
                on_global = keyed(g.items(path, zone=zone))
                assert {k: comparable(d) for k, d in on_global.items()} == {
                    k: comparable(d) for k, d in mine.items()
                }, f"{path} of {zone} on the global"
                labels = [
                    (d["labels"].get(LABEL_ORIGIN), d["labels"].get(LABEL_ZONE)) for d in on_global.values()
                ]
                assert set(labels) <= {("zone", zone)}, f"{path} of {zone} on the global: labels {labels}"
                if path == "/dataplanes":
                    total += len(mine)
            for other in self.zones:
                if other == zone:
                    continue
                ingresses = self.api(zone).items("/zoneingresses")
                relayed = keyed([d for d in ingresses if d.get("labels", {}).get(LABEL_ZONE) == other])
                theirs = keyed(g.items("/zoneingresses", zone=other))
                assert {k: comparable(d) for k, d in relayed.items()} == {
                    k: comparable(d) for k, d in theirs.items()
                }, f"ingresses of {other} in {zone}"
        assert len(g.items("/dataplanes")) == total, "the global holds dataplanes no running zone has"

    def converge(self) -> None:
        """Wait until every zone holds exactly the global's meshes and policies (labelled as coming from
        the global), the global holds exactly each zone's dataplanes and ingresses (pinned to that zone),
        and each zone holds exactly the other zone's ingresses."""
        eventually(self.check_converged, "the global and the zones to converge")

    def snapshot(self) -> dict[str, dict[RowKey, Row]]:
        """The stored rows of the global and each zone, by name ("global", "zone-a", "zone-b")."""
        rows = {"global": stored_rows(self.glob.db_path)}
        for zone, cp in self.zones.items():
            rows[zone] = stored_rows(cp.db_path)
        return rows

    def assert_untouched_since(
        self, before: dict[str, dict[RowKey, Row]], changed: dict[str, set[RowKey]]
    ) -> None:
        after = self.snapshot()
        for side, rows in before.items():
            assert_untouched(rows, after[side], changed.get(side, set()), side)


async def eventually_async(probe: Callable[[], T], what: str, timeout_s: float = TIMEOUT_S) -> T:
    """``eventually`` for a test that runs in-process clients on the event loop: the same probe and
    deadline, but it sleeps with ``asyncio.sleep`` so the loop (and the clients on it) keeps running."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            return probe()
        except (AssertionError, OSError) as exc:
            last: BaseException = exc
        if time.monotonic() > deadline:
            raise AssertionError(
                f"timed out after {timeout_s:g}s waiting for {what}; last observed: {last!s}"
            ) from last
        await asyncio.sleep(POLL_S)


def dp_port_of(cp: CpProcess) -> int:
    """The port a control plane's DP server listens on (``CpProcess`` gives each a free one)."""
    return cp.dp_port
