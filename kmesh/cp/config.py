"""The control plane's configuration: one frozen, typed ``CpConfig`` and the pure functions that build it.

Sources, in increasing precedence (a later one overrides an earlier one, setting by setting):

1. built-in defaults (the field defaults below);
2. the YAML file given with ``-c/--config`` (snake_case keys shaped like ``CpConfig``; an unknown key is an
   error naming the file and the key);
3. environment variables: every setting ``a.b_c`` is ``KMESH_A_B_C`` (``api_server.port`` is
   ``KMESH_API_SERVER_PORT``, ``store.sqlite.path`` is ``KMESH_STORE_SQLITE_PATH``); an empty value of an
   optional setting unsets it; a bad value is an error naming the variable. ``ENV_VARS`` lists them all;
4. command-line flags (``FLAGS``: ``--mode``, ``--api-port``, ...).

Two defaults depend on the environment and are filled in last: ``store.sqlite.path`` (``kmesh.db`` in
``$KMESH_DATA_DIR``, else in ``~/.local/share/kmesh``) and ``instance_id`` (``<hostname>-<pid>-<random>``).

Rules: nothing here touches files, sockets or ``os.environ``; callers pass the file text, the environment and
the flag values in (see ``kmesh.cp.main`` for the edge). Every problem raises ``ConfigError`` whose message
names the setting and where its value came from.
"""

from __future__ import annotations

import difflib
import re
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Annotated, Any, Literal, final

import msgspec
import yaml

from kmesh.cp._settings import SettingsTable
from kmesh.errors import ConfigError

__all__ = [
    "ENV_VARS",
    "FLAGS",
    "ApiServerConfig",
    "CpConfig",
    "DefaultsConfig",
    "DpServerConfig",
    "Flag",
    "KdsConfig",
    "LogConfig",
    "SqliteConfig",
    "StoreConfig",
    "config_to_yaml",
    "load_config",
    "parse_kds_address",
]

Port = Annotated[int, msgspec.Meta(ge=0, le=65535, description="a port number 0-65535 (0: any free port)")]
Mode = Literal["standalone", "global", "zone"]

DEFAULT_DB_FILE = "kmesh.db"
DEFAULT_KDS_PORT = 5685
# A zone name ends up in labels, SNI names and DNS; Kuma holds it to an RFC 1123 label for the same reason.
_ZONE_NAME = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")


class _Section(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Base of every config section; subclasses repeat the options since msgspec does not inherit them."""


@final
class SqliteConfig(_Section, frozen=True, kw_only=True, forbid_unknown_fields=True):
    path: str = ""  # "" until resolved: kmesh.db in $KMESH_DATA_DIR or ~/.local/share/kmesh


@final
class StoreConfig(_Section, frozen=True, kw_only=True, forbid_unknown_fields=True):
    type: Literal["sqlite", "memory"] = "sqlite"
    sqlite: SqliteConfig = SqliteConfig()


@final
class ApiServerConfig(_Section, frozen=True, kw_only=True, forbid_unknown_fields=True):
    # Loopback by default: the API has no authentication yet, and anyone who reaches it can change policy.
    # Set 0.0.0.0 (as Kuma does) once the port is protected by the network.
    host: str = "127.0.0.1"
    port: Port = 5681


@final
class KdsConfig(_Section, frozen=True, kw_only=True, forbid_unknown_fields=True):
    host: str = "0.0.0.0"  # the global's KDS listener; zones authenticate with tokens over TLS
    port: Port = DEFAULT_KDS_PORT
    # Global: the KDS server certificate and key (PEM files). Unset: one is generated on first start, kept
    # in the store, and its certificate written beside the SQLite file as kds-ca.pem for zones to trust.
    tls_cert_file: str | None = None
    tls_key_file: str | None = None
    # Global: refuse zones without a valid zone token. Switch off only for development.
    require_zone_token: bool = True
    heartbeat_interval_s: Annotated[float, msgspec.Meta(gt=0, description="a number of seconds > 0")] = 5.0
    global_address: str | None = None  # zone mode: kds://HOST:PORT of the global
    # Zone: how to trust the global's certificate: a CA file, or (development only) no verification.
    skip_verify: bool = False
    ca_file: str | None = None
    # Zone: the name checked against the global's certificate; default: the host of global_address.
    server_name: str | None = None
    # Zone: the file holding the zone token made by `kmeshctl generate zone-token` on the global.
    token_file: str | None = None


@final
class DpServerConfig(_Section, frozen=True, kw_only=True, forbid_unknown_fields=True):
    host: str = "0.0.0.0"  # proxies of the zone dial it; they authenticate with dataplane tokens
    port: Port = 5678
    # The DP server certificate and key (PEM files). Unset: one is generated on first start, kept in the
    # store, and its certificate written beside the SQLite file as dp-ca.pem for proxies to trust.
    tls_cert_file: str | None = None
    tls_key_file: str | None = None
    # Refuse proxies without a valid dataplane (or zone-proxy) token. Switch off only for development.
    require_token: bool = True
    # How often each side of a proxy's connection beats; a peer silent for three beats is dropped.
    heartbeat_interval_s: Annotated[float, msgspec.Meta(gt=0, description="a number of seconds > 0")] = 10.0
    # How long a proxy that left gracefully keeps its Dataplane, in case it comes back at once.
    deregister_delay_s: Annotated[float, msgspec.Meta(ge=0, description="a number of seconds >= 0")] = 10.0


@final
class LogConfig(_Section, frozen=True, kw_only=True, forbid_unknown_fields=True):
    level: Literal["debug", "info", "warning", "error"] = "info"
    format: Literal["json", "logfmt"] = "json"


@final
class DefaultsConfig(_Section, frozen=True, kw_only=True, forbid_unknown_fields=True):
    skip_mesh_creation: bool = False


@final
class CpConfig(_Section, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Everything ``kmesh-cp`` reads at start. Frozen: a running control plane never changes it."""

    mode: Mode = "standalone"
    zone: str | None = None
    instance_id: str = ""  # "" until resolved: <hostname>-<pid>-<random>
    store: StoreConfig = StoreConfig()
    api_server: ApiServerConfig = ApiServerConfig()
    kds: KdsConfig = KdsConfig()
    dp_server: DpServerConfig = DpServerConfig()
    log: LogConfig = LogConfig()
    defaults: DefaultsConfig = DefaultsConfig()
    shutdown_timeout_s: Annotated[float, msgspec.Meta(gt=0, description="a number of seconds > 0")] = 10.0


@dataclass(frozen=True, slots=True)
class Flag:
    """A command-line flag that sets one setting; ``main`` builds its argparse options from ``FLAGS``.

    A ``switch`` takes no value: giving it sets the (boolean) setting to true.
    """

    flag: str
    setting: str
    help: str
    switch: bool = False


FLAGS: tuple[Flag, ...] = (
    Flag("--mode", "mode", "standalone (default), global or zone"),
    Flag("--zone", "zone", "this zone's name (zone mode)"),
    Flag("--instance-id", "instance_id", "this replica's id (default: hostname-pid-random)"),
    Flag(
        "--kds-global-address", "kds.global_address", "the global's KDS address, kds://HOST:PORT (zone mode)"
    ),
    Flag("--kds-port", "kds.port", "KDS listener port (global mode)"),
    Flag("--kds-tls-cert-file", "kds.tls_cert_file", "KDS server certificate, PEM (global mode)"),
    Flag("--kds-tls-key-file", "kds.tls_key_file", "KDS server private key, PEM (global mode)"),
    Flag("--kds-ca-file", "kds.ca_file", "CA that signed the global's KDS certificate (zone mode)"),
    Flag(
        "--kds-skip-verify",
        "kds.skip_verify",
        "do not verify the global's KDS certificate (zone mode; development only)",
        switch=True,
    ),
    Flag("--kds-token-file", "kds.token_file", "file holding this zone's zone token (zone mode)"),
    Flag("--dp-port", "dp_server.port", "DP server port (zone and standalone modes)"),
    Flag("--dp-tls-cert-file", "dp_server.tls_cert_file", "DP server certificate, PEM (zone and standalone)"),
    Flag("--dp-tls-key-file", "dp_server.tls_key_file", "DP server private key, PEM (zone and standalone)"),
    Flag("--api-host", "api_server.host", "address the HTTP API binds to"),
    Flag("--api-port", "api_server.port", "HTTP API port (0: any free port)"),
    Flag("--store", "store.type", "sqlite (default) or memory"),
    Flag("--store-path", "store.sqlite.path", "SQLite database file"),
    Flag("--log-level", "log.level", "debug, info, warning or error"),
    Flag("--log-format", "log.format", "json (default) or logfmt"),
)

_TABLE = SettingsTable(CpConfig)
ENV_VARS: dict[str, str] = _TABLE.env_vars()
"""Every ``KMESH_*`` variable that sets a setting, mapped to that setting's dotted path."""


def load_config(
    *,
    file_text: str | None = None,
    file_name: str = "config file",
    env: Mapping[str, str] | None = None,
    flags: Mapping[str, str] | None = None,
    hostname: str = "localhost",
    pid: int = 0,
    nonce: str = "0000",
) -> CpConfig:
    """Merge defaults < YAML ``file_text`` < ``KMESH_*`` entries of ``env`` < ``flags`` and validate.

    ``flags`` maps a setting (``"api_server.port"``) to the raw string given with its flag; any setting may
    be overridden this way, also one without a flag. ``hostname``, ``pid`` and ``nonce`` make the default
    instance id. Raises ConfigError.
    """
    env = env or {}
    merged: dict[str, Any] = msgspec.to_builtins(CpConfig())
    if file_text is not None:
        for setting, value in _read_file(file_text, file_name).items():
            _assign(merged, setting, _TABLE.coerce(setting, value, from_text=False, source=file_name))
    for var, setting in ENV_VARS.items():
        if var in env:
            where = f"environment variable {var}"
            _assign(merged, setting, _TABLE.coerce(setting, env[var], from_text=True, source=where))
    for setting, raw in (flags or {}).items():
        if setting not in _TABLE.leaves:
            raise ValueError(f"no setting {setting!r}")
        where = _flag_for(setting)
        _assign(merged, setting, _TABLE.coerce(setting, raw, from_text=True, source=where))
    config = msgspec.convert(merged, CpConfig)
    config = _resolve_defaults(config, env, hostname=hostname, pid=pid, nonce=nonce)
    _validate(config)
    return config


def config_to_yaml(config: CpConfig) -> str:
    """The config as YAML that ``load_config`` reads back to an equal config."""
    return yaml.safe_dump(msgspec.to_builtins(config), sort_keys=False, default_flow_style=False)


def parse_kds_address(address: str) -> tuple[str, int]:
    """``kds://HOST[:PORT]`` as ``(host, port)``; the port defaults to 5685. Raises ConfigError."""
    parts = urllib.parse.urlsplit(address)
    try:
        port = parts.port
    except ValueError:
        port = -1
    if parts.scheme != "kds" or not parts.hostname or port == -1 or parts.path not in ("", "/"):
        raise ConfigError(f"kds.global_address: expected kds://HOST:PORT, got {address!r}")
    return parts.hostname, port if port is not None else DEFAULT_KDS_PORT


def _read_file(text: str, name: str) -> dict[str, Any]:
    """The file's settings, flattened to ``{"a.b": value}``; unknown keys and bad shapes raise ConfigError."""
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError(f"{name}: not valid YAML{where}: {problem}") from None
    if doc is None:
        return {}
    if not isinstance(doc, dict):
        raise ConfigError(f"{name}: expected a mapping of settings at the top, got {type(doc).__name__}")
    out: dict[str, Any] = {}
    _flatten(doc, "", name, out)
    return out


def _flatten(doc: dict[Any, Any], prefix: str, name: str, out: dict[str, Any]) -> None:
    for key, value in doc.items():
        setting = f"{prefix}{key}"
        if setting in _TABLE.sections:
            if not isinstance(value, dict):
                raise ConfigError(f"{name}: {setting}: expected a mapping of settings, got {value!r}")
            _flatten(value, f"{setting}.", name, out)
        elif setting in _TABLE.leaves:
            out[setting] = value
        else:
            raise ConfigError(f"{name}: unknown key {setting!r}{_suggest(prefix, str(key))}")


def _suggest(prefix: str, key: str) -> str:
    siblings = _TABLE.children(prefix.rstrip("."))
    close = difflib.get_close_matches(key, siblings, n=1)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    return f"{hint} (known keys{' in ' + prefix.rstrip('.') if prefix else ''}: {', '.join(siblings)})"


def _assign(tree: dict[str, Any], setting: str, value: object) -> None:
    *sections, leaf = setting.split(".")
    node = tree
    for section in sections:
        node = node[section]
    node[leaf] = value


def _flag_for(setting: str) -> str:
    """How the user gave an override: ``flag --api-port``, or ``override api_server.port`` when no flag sets
    that setting (a program calling ``load_config`` directly)."""
    for flag in FLAGS:
        if flag.setting == setting:
            return f"flag {flag.flag}"
    return f"override {setting}"


def _resolve_defaults(
    config: CpConfig, env: Mapping[str, str], *, hostname: str, pid: int, nonce: str
) -> CpConfig:
    if not config.instance_id:
        config = msgspec.structs.replace(config, instance_id=f"{hostname}-{pid}-{nonce}")
    if config.store.type == "sqlite":
        path = config.store.sqlite.path or str(PurePosixPath(_data_dir(env)) / DEFAULT_DB_FILE)
        if path == "~" or path.startswith("~/"):
            path = str(PurePosixPath(_home(env, why=f"{path!r} starts with ~")) / path[2:])
        if path != config.store.sqlite.path:
            sqlite = SqliteConfig(path=path)
            config = msgspec.structs.replace(
                config, store=msgspec.structs.replace(config.store, sqlite=sqlite)
            )
    return config


def _data_dir(env: Mapping[str, str]) -> str:
    if env.get("KMESH_DATA_DIR"):
        return env["KMESH_DATA_DIR"]
    return str(PurePosixPath(_home(env, why="neither it nor KMESH_DATA_DIR is set")) / ".local/share/kmesh")


def _home(env: Mapping[str, str], *, why: str) -> str:
    home = env.get("HOME")
    if not home:
        raise ConfigError(
            f"store.sqlite.path: HOME is not set and {why}; "
            "set --store-path or KMESH_STORE_SQLITE_PATH to an absolute path"
        )
    return home


def _validate(config: CpConfig) -> None:
    """Checks across settings; single values were checked as they were read."""
    if config.mode == "zone":
        if not config.zone:
            raise ConfigError("mode zone needs this zone's name: set --zone, KMESH_ZONE or zone: in the file")
        if not config.kds.global_address:
            raise ConfigError(
                "mode zone needs the global's address: set --kds-global-address, KMESH_KDS_GLOBAL_ADDRESS "
                "or kds.global_address: in the file (kds://HOST:PORT)"
            )
    else:
        if config.zone:
            raise ConfigError(f"zone: only a zone control plane has a zone name, but mode is {config.mode}")
        if config.kds.global_address:
            raise ConfigError(
                f"kds.global_address: only a zone control plane dials the global, but mode is {config.mode}"
            )
    if config.zone and not _ZONE_NAME.match(config.zone):
        raise ConfigError(
            f"zone: {config.zone!r} is not a valid zone name (lowercase letters, digits and '-', "
            "starting and ending with a letter or digit, at most 63 characters)"
        )
    if config.kds.global_address:
        parse_kds_address(config.kds.global_address)
    if (config.kds.tls_cert_file is None) != (config.kds.tls_key_file is None):
        raise ConfigError("kds.tls_cert_file and kds.tls_key_file: set both or neither")
    if (config.dp_server.tls_cert_file is None) != (config.dp_server.tls_key_file is None):
        raise ConfigError("dp_server.tls_cert_file and dp_server.tls_key_file: set both or neither")
    if config.kds.skip_verify and config.kds.ca_file:
        raise ConfigError("kds.skip_verify and kds.ca_file: choose one way to trust the global, not both")
    if not config.instance_id.strip():
        raise ConfigError("instance_id: must not be blank")
    if not config.api_server.host:
        raise ConfigError("api_server.host: must not be empty (use 0.0.0.0 for every interface)")
