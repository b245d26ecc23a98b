"""``ManagedProcess``: the subprocess plumbing ``CpProcess`` and ``ProxyProcess`` share.

A subclass says what to run (``_program``, ``_command()``, ``_env()``), how to tell that it is ready
(``_wait_ready()``, usually through ``_wait_until()``), which error it raises (``_error``) and, if not
``_program``, what messages call it (``_label()``). The base starts the child with stdout and stderr
appended to ``log_path`` (``logs()`` is the current or last run only), stops it with a signal and a bounded
wait then SIGKILL, kills it, closes it (removing a data dir it made) and is a context manager. Every failure
quotes the tail of the log.
"""

from __future__ import annotations

import os
import shutil
import signal as _signal
import subprocess
import tempfile
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from pathlib import Path
from types import TracebackType
from typing import ClassVar, Final, Self

import orjson

from kmesh.errors import KmeshError

__all__ = ["ManagedProcess"]

_POLL_S: Final = 0.05
_TAIL_LINES: Final = 30


class ManagedProcess(ABC):
    """A child process with its own data dir and one log file; see the module docstring."""

    _program: ClassVar[str]
    """The command's name: the temporary data dir's prefix and the log file's stem."""
    _error: ClassVar[type[KmeshError]]

    def __init__(
        self, data_dir: str | os.PathLike[str] | None, env: Mapping[str, str] | None, start_timeout_s: float
    ) -> None:
        self._own_dir = data_dir is None
        self.data_dir = Path(tempfile.mkdtemp(prefix=f"{self._program}-") if data_dir is None else data_dir)
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.env = dict(env or {})
        self.start_timeout_s = start_timeout_s
        self.log_path = self.data_dir / f"{self._program}.log"
        self._proc: subprocess.Popen[bytes] | None = None
        self._log_offset = 0

    # -- what a subclass says -----------------------------------------------------------------------------

    def _label(self) -> str:
        """What messages call it: ``kmesh-cp``, ``kmesh-proxy web-1``."""
        return self._program

    @abstractmethod
    def _command(self) -> list[str]: ...

    @abstractmethod
    def _env(self) -> dict[str, str]: ...

    @abstractmethod
    def _wait_ready(self) -> None:
        """Return once it serves; raise ``_error`` (after killing it when the time runs out) otherwise."""

    # -- state --------------------------------------------------------------------------------------------

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    @property
    def returncode(self) -> int | None:
        """The exit status once it has exited, else None."""
        return self._proc.poll() if self._proc is not None else None

    def _alive(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    # -- lifecycle ----------------------------------------------------------------------------------------

    def start(self) -> Self:
        """Start it and wait until it is ready. Raises the class's error, with the log's tail, when it exits
        or is not ready within ``start_timeout_s`` (and then kills it)."""
        self._launch()
        self._wait_ready()
        return self

    def _launch(self) -> None:
        if self._proc is not None and self._proc.poll() is None:
            raise self._error(f"{self._label()} (pid {self._proc.pid}) is already running")
        with open(self.log_path, "ab") as log_file:
            self._log_offset = log_file.tell()
            self._proc = subprocess.Popen(
                self._command(),
                env=self._env(),
                stdin=subprocess.DEVNULL,
                stdout=log_file,
                stderr=subprocess.STDOUT,
            )

    def _wait_until(
        self,
        ready: Callable[[], bool],
        limit_s: float,
        exited: Callable[[int], str],
        timed_out: Callable[[], str],
    ) -> None:
        """Poll ``ready()`` for at most ``limit_s``. When the process exits first, raise ``_error`` with
        ``exited(status)``; when the time runs out, kill it and raise with ``timed_out()``; both followed
        by the log's tail."""
        proc = self._require_proc()
        deadline = time.monotonic() + limit_s
        while True:
            status = proc.poll()
            if status is not None:
                raise self._error(f"{exited(status)} Last lines of its log:\n{self.tail()}")
            if ready():
                return
            if time.monotonic() > deadline:
                proc.kill()
                proc.wait()
                raise self._error(f"{timed_out()} Last lines of its log:\n{self.tail()}")
            time.sleep(_POLL_S)

    def stop(self, signal: int = _signal.SIGTERM, timeout_s: float = 30.0) -> int:
        """Send ``signal`` and wait for the exit; return the exit status (negative: killed by a signal).

        Raises the class's error after killing it when it has not exited within ``timeout_s``.
        """
        proc = self._require_proc()
        if proc.poll() is None:
            proc.send_signal(signal)
        try:
            return proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            raise self._error(
                f"{self._label()} did not exit within {timeout_s}s of signal {_signal.Signals(signal).name}; "
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
        if self._alive():
            self.kill()
        if self._own_dir:
            shutil.rmtree(self.data_dir, ignore_errors=True)

    def __enter__(self) -> Self:
        try:
            return self.start()
        except BaseException:
            self.close()
            raise

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        try:
            if self._alive():
                self.stop()
        finally:
            self.close()

    def _require_proc(self) -> subprocess.Popen[bytes]:
        if self._proc is None:
            raise self._error(f"{self._label()} was never started")
        return self._proc

    # -- logs ---------------------------------------------------------------------------------------------

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
