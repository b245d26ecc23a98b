"""Real ``kmesh-cp`` processes for tests: ``CpProcess`` (a server to talk to) and ``run_cp`` (a command that
exits, such as ``--print-config``).

Rules:
- Hermetic: the child gets its own data dir (``KMESH_DATA_DIR``) and ``HOME``, a free API port and a free
  DP server port, and none of the caller's ``KMESH_*`` settings unless passed in ``env``; so a developer's
  shell cannot change a test.
- Every wait is bounded. When the process dies or does not answer in time, the error says so and quotes
  the tail of its log, which is where the reason is.
- The process's stdout and stderr go to one log file in its data dir, kept across restarts of the same
  ``CpProcess``; ``logs()`` is the current (or last) run only.
"""

from __future__ import annotations

import os
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Mapping
from pathlib import Path
from typing import Final, final

from kmesh.cp.config import ENV_VARS
from kmesh.errors import KmeshError
from kmesh.testing._ports import free_port
from kmesh.testing._subprocess import ManagedProcess

__all__ = ["CpProcess", "CpProcessError", "cp_env", "run_cp"]

CP_COMMAND: Final = (sys.executable, "-m", "kmesh.cp")


class CpProcessError(KmeshError):
    """A ``kmesh-cp`` started by a test died, did not become ready, or did not stop in time."""


def cp_env(data_dir: Path, extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment a test's ``kmesh-cp`` runs with: the caller's, minus its ``KMESH_*`` settings, with
    ``HOME`` and ``KMESH_DATA_DIR`` inside ``data_dir``, then ``extra``."""
    env = {k: v for k, v in os.environ.items() if k not in ENV_VARS and k != "KMESH_DATA_DIR"}
    home = data_dir / "home"
    home.mkdir(parents=True, exist_ok=True)
    env["HOME"] = str(home)
    env["KMESH_DATA_DIR"] = str(data_dir)
    env.update(extra or {})
    return env


def run_cp(
    *args: str,
    data_dir: str | os.PathLike[str],
    env: Mapping[str, str] | None = None,
    timeout_s: float = 60.0,
) -> subprocess.CompletedProcess[str]:
    """Run ``kmesh-cp args...`` to completion and return its status, stdout and stderr.

    Raises subprocess.TimeoutExpired (after killing it) when it runs longer than ``timeout_s``.
    """
    return subprocess.run(
        [*CP_COMMAND, *args],
        env=cp_env(Path(data_dir), env),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=timeout_s,
        check=False,
    )


@final
class CpProcess(ManagedProcess):
    """A ``kmesh-cp`` subprocess serving its API on ``api_url``.

    ``args`` are extra flags (not ``--api-port``: pass ``api_port``, which defaults to a free port; the DP
    server's port is ``dp_port``, a free one by default, which a ``--dp-port`` flag overrides);
    ``env`` adds variables; ``data_dir`` defaults to a temporary dir removed by ``close()``. Use it as a
    context manager, or call ``start()`` and ``stop()``; ``start()`` again after a stop restarts it on the
    same data dir and port. ``start()``, ``stop()`` and a failed wait raise CpProcessError with the log's
    tail.
    """

    _program = "kmesh-cp"
    _error = CpProcessError

    def __init__(
        self,
        *args: str,
        env: Mapping[str, str] | None = None,
        data_dir: str | os.PathLike[str] | None = None,
        api_port: int | None = None,
        dp_port: int | None = None,
        start_timeout_s: float = 30.0,
    ) -> None:
        self.args: tuple[str, ...] = args
        super().__init__(data_dir, env, start_timeout_s)
        self.api_port = api_port if api_port is not None else free_port()
        self.dp_port = dp_port if dp_port is not None else free_port()

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.api_port}"

    @property
    def db_path(self) -> Path:
        """Where the default SQLite store lives (unless ``args``/``env`` chose another path)."""
        return self.data_dir / "kmesh.db"

    def start(self) -> CpProcess:
        """Start it and wait until ``GET /`` answers. Raises CpProcessError with the log's tail."""
        return super().start()

    def _command(self) -> list[str]:
        return [*CP_COMMAND, *self.args]

    def _env(self) -> dict[str, str]:
        ports = {"KMESH_API_SERVER_PORT": str(self.api_port), "KMESH_DP_SERVER_PORT": str(self.dp_port)}
        return cp_env(self.data_dir, {**ports, **self.env})

    def _wait_ready(self) -> None:
        # Ready = the API answers and the process has logged that every part started (the API is the last
        # listener, but the zone's KDS client starts after it).
        self._wait_until(
            lambda: self._answers() and self._started_logged(),
            self.start_timeout_s,
            exited=lambda status: f"kmesh-cp exited with status {status} before serving {self.api_url}.",
            timed_out=lambda: (
                f"kmesh-cp did not answer on {self.api_url} within {self.start_timeout_s}s; killed it."
            ),
        )

    def _started_logged(self) -> bool:
        return any(r.get("msg") == "control plane started" for r in self.log_records())

    def _answers(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.api_url}/", timeout=1.0) as resp:
                return bool(resp.status == 200)
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            return False

    def __repr__(self) -> str:
        return f"CpProcess(pid={self.pid}, api_url={self.api_url!r}, data_dir={str(self.data_dir)!r})"
