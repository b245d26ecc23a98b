"""Fixtures for running the real ``kmeshctl`` (``python -m kmesh.cli``) against a real ``kmesh-cp``."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from kmesh.testing import CpProcess

Run = Callable[..., subprocess.CompletedProcess[str]]


@pytest.fixture
def cp() -> Iterator[CpProcess]:
    with CpProcess() as process:
        yield process


@pytest.fixture
def config_file(tmp_path: Path) -> Path:
    # A directory kmeshctl must create itself, so its mode is kmeshctl's doing.
    return tmp_path / "kmeshctl" / "config.yaml"


@pytest.fixture
def kmeshctl(tmp_path: Path, config_file: Path) -> Run:
    """Run kmeshctl with a private config file and HOME; returns the completed process."""
    env = {k: v for k, v in os.environ.items() if k != "KMESHCTL_CONFIG"}
    env["KMESHCTL_CONFIG"] = str(config_file)
    env["HOME"] = str(tmp_path / "home")

    def run(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "kmesh.cli", *args],
            env=env,
            input=stdin if stdin is not None else "",
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
            cwd=tmp_path,
        )

    return run


@pytest.fixture
def connected(cp: CpProcess, kmeshctl: Run) -> Run:
    """``kmeshctl`` with the test's control plane added and current."""
    result = kmeshctl("config", "control-planes", "add", "--name", "test", "--address", cp.api_url)
    assert result.returncode == 0, result.stderr
    return kmeshctl
