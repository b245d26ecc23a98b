"""Real ``kmesh-proxy`` processes for tests and demos: ``ProxyProcess`` runs ``kmesh-proxy run ...`` (a
sidecar, a zone ingress or a zone egress) and talks to its admin endpoint.

Rules:
- Hermetic, as ``CpProcess``: the child gets its own data dir and ``HOME``, a free admin port, and none of
  the caller's ``KMESH_*`` settings (except ``KMESH_NO_EXTENSIONS``, which picks the fast path the caller
  is testing) unless passed in ``env``.
- A token given as a string is written to a file readable by the owner only and passed with
  ``--dataplane-token-file``: a secret never appears on a command line, where ``ps`` shows it.
- Every wait is bounded. Ready means ``GET /ready`` answers 200 (the proxy has its config, its listeners
  bound and, with mTLS, its certificate); when the process dies or is not ready in time, the error says so,
  quotes what ``/ready`` said last and the tail of its log.
- stdout and stderr go to one log file in the data dir, kept across restarts of the same ``ProxyProcess``;
  ``logs()`` is the current (or last) run only.
"""

from __future__ import annotations

import os
import sys
import urllib.error
import urllib.request
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Final, Literal, final

import orjson

from kmesh.errors import KmeshError
from kmesh.testing._ports import free_port
from kmesh.testing._subprocess import ManagedProcess

__all__ = ["PROXY_COMMAND", "ProxyProcess", "ProxyProcessError", "proxy_env"]

PROXY_COMMAND: Final = (sys.executable, "-m", "kmesh.proxy")
ProxyKind = Literal["sidecar", "ingress", "egress"]
_KEPT_ENV: Final = frozenset({"KMESH_NO_EXTENSIONS"})
# Loopback admin calls never go through an HTTP proxy from the caller's environment.
_OPENER: Final = urllib.request.build_opener(urllib.request.ProxyHandler({}))


class ProxyProcessError(KmeshError):
    """A ``kmesh-proxy`` started by a test died, did not become ready, or did not stop in time; or its
    admin endpoint answered something unexpected."""


def proxy_env(data_dir: Path, extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment a test's ``kmesh-proxy`` runs with: the caller's, minus its ``KMESH_*`` settings
    (``KMESH_NO_EXTENSIONS`` kept), with ``HOME`` inside ``data_dir``, then ``extra``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("KMESH_") or k in _KEPT_ENV}
    home = data_dir / "home"
    home.mkdir(parents=True, exist_ok=True)
    env["HOME"] = str(home)
    env.update(extra or {})
    return env


@final
class ProxyProcess(ManagedProcess):
    """A ``kmesh-proxy run`` subprocess with its admin endpoint on ``admin_url``.

    ``cp_address`` is the zone control plane's DP server (``dps://127.0.0.1:5678``); ``dataplane_file`` a
    Dataplane (sidecar), ZoneIngress or ZoneEgress YAML with ``{{ var }}`` placeholders filled from
    ``variables``; exactly one of ``token`` and ``token_file``; ``ca_file`` the PEM the proxy trusts for the
    DP server (the zone's ``dp-ca.pem``). ``admin_port`` defaults to a free port; ``args`` are extra flags;
    ``data_dir`` defaults to a temporary dir removed by ``close()``. Use it as a context manager, or call
    ``start()`` and ``stop()``; ``start()`` after a stop (or a kill) runs it again with the same flags and
    admin port. ``launch()`` and ``wait_ready()`` split ``start()`` so that several proxies start at once.

    ``stop()`` sends SIGTERM by default, on which the proxy leaves the mesh cleanly; after ``kill()`` (no
    clean shutdown) it stays registered. Lifecycle failures raise ProxyProcessError with the log's tail.

    Raises ValueError when both or neither of ``token`` and ``token_file`` are given.
    """

    _program = "kmesh-proxy"
    _error = ProxyProcessError

    def __init__(
        self,
        cp_address: str,
        *,
        dataplane_file: str | os.PathLike[str],
        token: str | None = None,
        token_file: str | os.PathLike[str] | None = None,
        proxy_type: ProxyKind = "sidecar",
        variables: Mapping[str, str] | None = None,
        ca_file: str | os.PathLike[str] | None = None,
        admin_port: int | None = None,
        log_level: str = "info",
        args: tuple[str, ...] = (),
        env: Mapping[str, str] | None = None,
        data_dir: str | os.PathLike[str] | None = None,
        name: str | None = None,
        start_timeout_s: float = 30.0,
    ) -> None:
        if (token is None) == (token_file is None):
            raise ValueError("pass exactly one of token and token_file")
        super().__init__(data_dir, env, start_timeout_s)
        self.name = name or Path(dataplane_file).stem
        if token is not None:
            path = self.data_dir / "dataplane.token"
            path.touch(mode=0o600)
            path.write_text(token)
            token_file = path
        assert token_file is not None
        self.token_file = Path(token_file)
        self.cp_address = cp_address
        self.dataplane_file = Path(dataplane_file)
        self.proxy_type: ProxyKind = proxy_type
        self.variables = dict(variables or {})
        self.ca_file = Path(ca_file) if ca_file is not None else None
        self.admin_port = admin_port if admin_port is not None else free_port()
        self.log_level = log_level
        self.args = args

    # -- what it is ---------------------------------------------------------------------------------------

    @property
    def admin_url(self) -> str:
        return f"http://127.0.0.1:{self.admin_port}"

    @property
    def running(self) -> bool:
        return self._alive()

    def command(self) -> list[str]:
        """The command line it runs (the token is in a file, never on it)."""
        cmd = [
            *PROXY_COMMAND,
            "run",
            "--cp-address",
            self.cp_address,
            "--dataplane-file",
            str(self.dataplane_file),
            "--dataplane-token-file",
            str(self.token_file),
            "--proxy-type",
            self.proxy_type,
            "--admin-address",
            "127.0.0.1",
            "--admin-port",
            str(self.admin_port),
            "--log-level",
            self.log_level,
        ]
        for key, value in self.variables.items():
            cmd += ["--dataplane-var", f"{key}={value}"]
        if self.ca_file is not None:
            cmd += ["--ca-cert-file", str(self.ca_file)]
        return [*cmd, *self.args]

    # -- lifecycle ----------------------------------------------------------------------------------------

    def start(self) -> ProxyProcess:
        """Start it and wait until ``GET /ready`` answers 200. Raises ProxyProcessError with the log's
        tail when it exits or is not ready within ``start_timeout_s`` (and then kills it)."""
        return super().start()

    def launch(self) -> ProxyProcess:
        """Start the process without waiting. Raises ProxyProcessError when it is already running."""
        self._launch()
        return self

    def wait_ready(self, timeout_s: float | None = None) -> None:
        """Wait until ``GET /ready`` answers 200 (at most ``timeout_s``, default ``start_timeout_s``).

        Raises ProxyProcessError, quoting the last ``/ready`` answer and the log's tail, when the process
        exits first or the time runs out (and then kills it).
        """
        limit_s = self.start_timeout_s if timeout_s is None else timeout_s
        last = "no answer yet"

        def is_ready() -> bool:
            nonlocal last
            ready, last = self.ready()
            return ready

        self._wait_until(
            is_ready,
            limit_s,
            exited=lambda status: (
                f"kmesh-proxy {self.name} exited with status {status} before it was ready (/ready: {last})."
            ),
            timed_out=lambda: (
                f"kmesh-proxy {self.name} was not ready on {self.admin_url}/ready within {limit_s:g}s; "
                f"killed it. /ready said: {last}."
            ),
        )

    def _label(self) -> str:
        return f"kmesh-proxy {self.name}"

    def _command(self) -> list[str]:
        return self.command()

    def _env(self) -> dict[str, str]:
        return proxy_env(self.data_dir, self.env)

    def _wait_ready(self) -> None:
        self.wait_ready()

    # -- the admin endpoint -------------------------------------------------------------------------------

    def admin_get(self, path: str, timeout_s: float = 5.0) -> tuple[int, bytes]:
        """``GET path`` on the admin endpoint: the status and the body (an HTTP error status is returned,
        not raised). Raises OSError (URLError, ConnectionError, TimeoutError) when nothing answers."""
        try:
            with _OPENER.open(self.admin_url + path, timeout=timeout_s) as resp:
                return int(resp.status), bytes(resp.read())
        except urllib.error.HTTPError as exc:
            with exc:
                return exc.code, exc.read()

    def ready(self) -> tuple[bool, str]:
        """Whether ``/ready`` answers 200, and what it said (the reason while it is not ready)."""
        try:
            status, body = self.admin_get("/ready", timeout_s=1.0)
        except OSError as exc:
            return False, f"no answer: {exc}"
        text = body.decode("utf-8", errors="replace").strip()
        return status == 200, f"{status} {text}"

    def admin_json(self, path: str) -> dict[str, Any]:
        """The JSON object a ``GET path`` answers with 200. Raises ProxyProcessError on another status or a
        body that is not a JSON object, and OSError when nothing answers."""
        status, body = self.admin_get(path)
        if status != 200:
            raise ProxyProcessError(f"kmesh-proxy {self.name}: GET {path} answered {status}: {body[:300]!r}")
        try:
            doc = orjson.loads(body)
        except orjson.JSONDecodeError as exc:
            raise ProxyProcessError(f"kmesh-proxy {self.name}: GET {path}: not JSON ({exc})") from None
        if not isinstance(doc, dict):
            raise ProxyProcessError(f"kmesh-proxy {self.name}: GET {path}: not a JSON object")
        return doc

    def stats(self) -> dict[str, Any]:
        """``GET /stats``: ``{"proxy": {...}, "listeners": {name: {...}}, "clusters": {name: {...}}}``."""
        return self.admin_json("/stats")

    def config_dump(self) -> dict[str, Any]:
        """``GET /config_dump``: ``{"config": <ProxyConfig>, "certificates": {mesh: {...}}}``."""
        return self.admin_json("/config_dump")

    def metrics(self) -> str:
        """``GET /metrics``: the Prometheus text. Raises ProxyProcessError on a status other than 200."""
        status, body = self.admin_get("/metrics")
        if status != 200:
            raise ProxyProcessError(f"kmesh-proxy {self.name}: GET /metrics answered {status}")
        return body.decode("utf-8", errors="replace")

    def __repr__(self) -> str:
        return (
            f"ProxyProcess(name={self.name!r}, type={self.proxy_type!r}, pid={self.pid}, "
            f"admin_url={self.admin_url!r})"
        )
