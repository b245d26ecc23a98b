"""kmeshctl's own configuration: the control planes it knows and which one is current.

The file is ``--config PATH``, else ``$KMESHCTL_CONFIG``, else ``~/.kmeshctl/config.yaml``::

    currentControlPlane: prod
    controlPlanes:
    - name: prod
      address: https://cp.example.com:5681
      skipVerify: false

Rules:
- The file may come to hold credentials, so it is written with mode 0600, and any directory kmeshctl creates
  for it with mode 0700. Writes are atomic (a temp file in the same directory, then ``os.replace``): a
  crash never leaves half a config.
- A missing or empty file is an empty config; then commands talk to ``DEFAULT_ADDRESS``, as kumactl does.
- A file that is not valid is a ConfigError naming the file and the field; it is never silently rewritten.
- Config values are frozen; the operations here return a new config, and only ``save_config`` writes.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Final, final
from urllib.parse import urlsplit

import msgspec
import msgspec.yaml
import yaml

from kmesh.errors import ConfigError

__all__ = [
    "CONFIG_ENV",
    "DEFAULT_ADDRESS",
    "CliConfig",
    "ControlPlane",
    "add_control_plane",
    "config_path",
    "current_control_plane",
    "dump_config",
    "load_config",
    "normalize_address",
    "save_config",
    "switch_control_plane",
]

CONFIG_ENV: Final = "KMESHCTL_CONFIG"
DEFAULT_ADDRESS: Final = "http://127.0.0.1:5681"


@final
class ControlPlane(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True, rename="camel"):
    name: str
    address: str
    skip_verify: bool = False


@final
class CliConfig(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True, rename="camel"):
    current_control_plane: str = ""
    control_planes: tuple[ControlPlane, ...] = ()


def config_path(explicit: str | None = None) -> Path:
    """Where the config lives: the ``--config`` flag, else ``$KMESHCTL_CONFIG``, else the default."""
    chosen = explicit or os.environ.get(CONFIG_ENV)
    if chosen:
        return Path(chosen).expanduser()
    return Path.home() / ".kmeshctl" / "config.yaml"


def normalize_address(address: str) -> str:
    """``address`` checked to be an http(s) URL with a host, without a trailing slash. Raises ConfigError."""
    parts = urlsplit(address.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(f'control plane address "{address}" must be an http:// or https:// URL with a host')
    try:
        parts.port  # noqa: B018 - urlsplit checks the port only when it is read
    except ValueError as exc:
        raise ConfigError(f'control plane address "{address}": {exc}') from None
    return address.strip().rstrip("/")


def load_config(path: Path) -> CliConfig:
    """The config stored at ``path`` (empty when there is no file). Raises ConfigError if it is invalid."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return CliConfig()
    except OSError as exc:
        raise ConfigError(f"cannot read kmeshctl config {path}: {exc.strerror or exc}") from None
    if not raw.strip():
        return CliConfig()
    try:
        config = msgspec.yaml.decode(raw, type=CliConfig)
    except (msgspec.ValidationError, msgspec.DecodeError, yaml.YAMLError) as exc:
        raise ConfigError(f"kmeshctl config {path} is not valid: {exc}") from None
    names = [cp.name for cp in config.control_planes]
    for name in names:
        if names.count(name) > 1:
            raise ConfigError(f'kmeshctl config {path} is not valid: control plane "{name}" appears twice')
    if config.current_control_plane and config.current_control_plane not in names:
        raise ConfigError(
            f'kmeshctl config {path} is not valid: currentControlPlane "{config.current_control_plane}" '
            "is not one of controlPlanes"
        )
    return config


def _make_private_dirs(directory: Path) -> None:
    """Create ``directory`` and any missing parents with mode 0700; existing directories are left alone."""
    missing = []
    for parent in (directory, *directory.parents):
        if parent.exists():
            break
        missing.append(parent)
    for path in reversed(missing):
        path.mkdir(mode=0o700)
        os.chmod(path, 0o700)  # mkdir's mode is masked by the umask


def save_config(path: Path, config: CliConfig) -> None:
    """Write ``config`` to ``path`` atomically with mode 0600. Raises ConfigError if it cannot."""
    try:
        _make_private_dirs(path.parent)
        # mkstemp creates the file with mode 0600 whatever the umask.
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as out:
                out.write(dump_config(config))
                out.flush()
                os.fsync(out.fileno())
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
    except OSError as exc:
        raise ConfigError(f"cannot write kmeshctl config {path}: {exc.strerror or exc}") from None


def dump_config(config: CliConfig) -> str:
    """``config`` as the YAML stored in the file (and shown by ``config view``)."""
    return yaml.safe_dump(msgspec.to_builtins(config), sort_keys=False, default_flow_style=False)


def current_control_plane(config: CliConfig) -> ControlPlane | None:
    """The control plane commands talk to, or None when none is configured."""
    for cp in config.control_planes:
        if cp.name == config.current_control_plane:
            return cp
    return None


def add_control_plane(config: CliConfig, cp: ControlPlane, *, overwrite: bool = False) -> CliConfig:
    """``config`` with ``cp`` added (or replaced, with ``overwrite``) and made current.

    Raises ConfigError when the name is taken and ``overwrite`` is not set.
    """
    exists = any(known.name == cp.name for known in config.control_planes)
    if exists and not overwrite:
        raise ConfigError(
            f'Control Plane with name "{cp.name}" already exists. Use --overwrite to replace an existing one.'
        )
    if exists:
        planes = tuple(cp if known.name == cp.name else known for known in config.control_planes)
    else:
        planes = (*config.control_planes, cp)
    return CliConfig(current_control_plane=cp.name, control_planes=planes)


def switch_control_plane(config: CliConfig, name: str) -> CliConfig:
    """``config`` with ``name`` made current. Raises ConfigError if there is no such control plane."""
    if not any(cp.name == name for cp in config.control_planes):
        known = ", ".join(f'"{cp.name}"' for cp in config.control_planes) or "none"
        raise ConfigError(f'there is no Control Plane with name "{name}" (known: {known})')
    return msgspec.structs.replace(config, current_control_plane=name)
