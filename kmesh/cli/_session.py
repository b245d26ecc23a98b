"""What every kmeshctl command gets: where its config lives, which control plane to talk to, where to print.

Rules:
- The control plane is ``--cp-address`` when given (for this one call, the config is not read), else the
  config's current one, else ``DEFAULT_ADDRESS`` — kumactl's order.
- ``--skip-verify`` on the command line adds to a configured control plane's ``skipVerify``; it never
  turns a stored ``skipVerify`` off.
- The config file is read lazily: ``version`` and ``apply --dry-run`` work with a broken config.
- "Now" is a function on the session so tests can render ages against a fixed instant.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TextIO

from kmesh.cli._client import DEFAULT_TIMEOUT_S, ApiClient
from kmesh.cli._config import (
    DEFAULT_ADDRESS,
    CliConfig,
    config_path,
    current_control_plane,
    load_config,
    normalize_address,
)

__all__ = ["Session"]


def _utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass
class Session:
    config_file: Path
    cp_address: str | None = None
    skip_verify: bool = False
    timeout_s: float = DEFAULT_TIMEOUT_S
    out: TextIO = field(default_factory=lambda: sys.stdout)
    now: Callable[[], datetime] = _utc_now

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> Session:
        """The session the global flags describe (they may be absent: parsers default them to SUPPRESS)."""
        return cls(
            config_file=config_path(getattr(args, "config", None)),
            cp_address=getattr(args, "cp_address", None),
            skip_verify=getattr(args, "skip_verify", False),
            timeout_s=getattr(args, "api_timeout", DEFAULT_TIMEOUT_S),
        )

    def config(self) -> CliConfig:
        """The stored config. Raises ConfigError if it is invalid."""
        return load_config(self.config_file)

    def address(self) -> tuple[str, bool]:
        """The control plane address to use and whether to skip TLS verification. Raises ConfigError."""
        if self.cp_address:
            return normalize_address(self.cp_address), self.skip_verify
        cp = current_control_plane(self.config())
        if cp is None:
            return DEFAULT_ADDRESS, self.skip_verify
        return cp.address, cp.skip_verify or self.skip_verify

    def client(self) -> ApiClient:
        """A client of the control plane this call talks to. Raises ConfigError."""
        address, skip_verify = self.address()
        return ApiClient(address, skip_verify=skip_verify, timeout_s=self.timeout_s)

    def print(self, text: str = "") -> None:
        self.out.write(text if text.endswith("\n") else text + "\n")

    def write(self, text: str) -> None:
        self.out.write(text)
