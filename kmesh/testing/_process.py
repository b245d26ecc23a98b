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
import shutil
import signal as _signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType
from typing import Final, final

import orjson

from kmesh.cp.config import ENV_VARS
from kmesh.errors import KmeshError
from kmesh.testing._ports import free_port

__all__ = ["CpProcess", "CpProcessError", "cp_env", "run_cp"]

CP_COMMAND: Final = (sys.executable, "-m", "kmesh.cp")
_POLL_S: Final = 0.05
_TAIL_LINES: Final = 30


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
class CpProcess:
    """A ``kmesh-cp`` subprocess serving its API on ``api_url``.

    ``args`` are extra flags (not ``--api-port``: pass ``api_port``, which defaults to a free port; the DP
    server's port is ``dp_port``, a free one by default, which a ``--dp-port`` flag overrides);
    ``env`` adds variables; ``data_dir`` defaults to a temporary dir removed by ``close()``. Use it as a
    context manager, or call ``start()`` and ``stop()``; ``start()`` again after a stop restarts it on the
    same data dir and port.
    """

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
        self._own_dir = data_dir is None
        self.data_dir = Path(tempfile.mkdtemp(prefix="kmesh-cp-") if data_dir is None else data_dir)
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.api_port = api_port if api_port is not None else free_port()
        self.dp_port = dp_port if dp_port is not None else free_port()
        self.env = dict(env or {})
        self.start_timeout_s = start_timeout_s
        self.log_path = self.data_dir / "kmesh-cp.log"
        self._proc: subprocess.Popen[bytes] | None = None
        self._log_offset = 0

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.api_port}"

    @property
    def db_path(self) -> Path:
        """Where the default SQLite store lives (unless ``args``/``env`` chose another path)."""
        return self.data_dir / "kmesh.db"

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    @property
    def returncode(self) -> int | None:
        """The exit status once it has exited, else None."""
        return self._proc.poll() if self._proc is not None else None

    def start(self) -> CpProcess:
        """Start it and wait until ``GET /`` answers. Raises CpProcessError with the log's tail."""
        if self._proc is not None and self._proc.poll() is None:
            raise CpProcessError(f"kmesh-cp (pid {self._proc.pid}) is already running")
        ports = {"KMESH_API_SERVER_PORT": str(self.api_port), "KMESH_DP_SERVER_PORT": str(self.dp_port)}
        env = cp_env(self.data_dir, {**ports, **self.env})
        with open(self.log_path, "ab") as log_file:
            self._log_offset = log_file.tell()
            self._proc = subprocess.Popen(
                [*CP_COMMAND, *self.args],
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log_file,
                stderr=subprocess.STDOUT,
            )
        self._wait_ready()
        return self

    def stop(self, signal: int = _signal.SIGTERM, timeout_s: float = 30.0) -> int:
        """Send ``signal`` and wait for the exit; return the exit status (negative: killed by a signal).

        Raises CpProcessError after killing it when it has not exited within ``timeout_s``.
        """
        proc = self._require_proc()
        if proc.poll() is None:
            proc.send_signal(signal)
        try:
            return proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            raise CpProcessError(
                f"kmesh-cp did not exit within {timeout_s}s of signal {_signal.Signals(signal).name}; "
                f"killed it. Last lines of its log:\n{self.tail()}"
            ) from None

    def kill(self) -> int:
        """SIGKILL it (no clean shutdown) and return the exit status."""
        proc = self._require_proc()
        if proc.poll() is None:
            proc.kill()
        return proc.wait()

    def close(self) -> None:
        """Kill it if still running and remove the data dir if this object made it."""
        if self._proc is not None and self._proc.poll() is None:
            self.kill()
        if self._own_dir:
            shutil.rmtree(self.data_dir, ignore_errors=True)

    def logs(self) -> str:
        """Everything the current (or last) run wrote to stdout and stderr."""
        try:
            with open(self.log_path, "rb") as f:
                f.seek(self._log_offset)
                return f.read().decode("utf-8", errors="replace")
        except FileNotFoundError:
            return ""

    def log_records(self) -> list[dict[str, object]]:
        """The JSON log records of the current run (lines that are not JSON objects are skipped)."""
        records = []
        for line in self.logs().splitlines():
            try:
                record = orjson.loads(line)
            except orjson.JSONDecodeError:
                continue
            if isinstance(record, dict):
                records.append(record)
        return records

    def tail(self, lines: int = _TAIL_LINES) -> str:
        return "\n".join(self.logs().splitlines()[-lines:]) or "(empty)"

    def __enter__(self) -> CpProcess:
        try:
            return self.start()
        except BaseException:
            self.close()
            raise

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        try:
            if self._proc is not None and self._proc.poll() is None:
                self.stop()
        finally:
            self.close()

    def _require_proc(self) -> subprocess.Popen[bytes]:
        if self._proc is None:
            raise CpProcessError("kmesh-cp was never started")
        return self._proc

    def _wait_ready(self) -> None:
        proc = self._require_proc()
        deadline = time.monotonic() + self.start_timeout_s
        while True:
            status = proc.poll()
            if status is not None:
                raise CpProcessError(
                    f"kmesh-cp exited with status {status} before serving {self.api_url}. "
                    f"Last lines of its log:\n{self.tail()}"
                )
            # Ready = the API answers and the process has logged that every part started (the API is the
            # last listener, but the zone's KDS client starts after it).
            if self._answers() and self._started_logged():
                return
            if time.monotonic() > deadline:
                proc.kill()
                proc.wait()
                raise CpProcessError(
                    f"kmesh-cp did not answer on {self.api_url} within {self.start_timeout_s}s; killed it. "
                    f"Last lines of its log:\n{self.tail()}"
                )
            time.sleep(_POLL_S)

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
