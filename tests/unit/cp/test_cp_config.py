"""kmesh.cp.config: defaults < file < environment < flags, and a clear error for each kind of bad input."""

from __future__ import annotations

import msgspec
import pytest
import yaml

from kmesh.cp.config import ENV_VARS, FLAGS, CpConfig, config_to_yaml, load_config, parse_kds_address
from kmesh.errors import ConfigError

ENV = {"HOME": "/home/op"}


def test_defaults() -> None:
    cfg = load_config(env=ENV, hostname="cp-host", pid=42, nonce="beef")
    assert cfg.mode == "standalone"
    assert cfg.zone is None
    assert cfg.api_server.host == "127.0.0.1"
    assert cfg.api_server.port == 5681
    assert cfg.kds.port == 5685
    assert cfg.dp_server.port == 5678
    assert cfg.store.type == "sqlite"
    assert cfg.store.sqlite.path == "/home/op/.local/share/kmesh/kmesh.db"
    assert cfg.log.level == "info"
    assert cfg.log.format == "json"
    assert cfg.defaults.skip_mesh_creation is False
    assert cfg.instance_id == "cp-host-42-beef"


def test_data_dir_env_sets_default_store_path() -> None:
    cfg = load_config(env={"HOME": "/home/op", "KMESH_DATA_DIR": "/var/lib/kmesh"})
    assert cfg.store.sqlite.path == "/var/lib/kmesh/kmesh.db"


def test_store_path_expands_home() -> None:
    cfg = load_config(env=ENV, flags={"store.sqlite.path": "~/db/k.db"})
    assert cfg.store.sqlite.path == "/home/op/db/k.db"


def test_no_home_and_no_data_dir_is_a_clear_error() -> None:
    with pytest.raises(ConfigError, match=r"store\.sqlite\.path.*KMESH_DATA_DIR"):
        load_config(env={})
    # A memory store needs no path at all.
    assert load_config(env={}, flags={"store.type": "memory"}).store.sqlite.path == ""


def test_precedence_defaults_file_env_flags() -> None:
    file_text = "api_server:\n  port: 6001\n  host: 0.0.0.0\nlog:\n  level: warning\n  format: logfmt\n"
    env = {**ENV, "KMESH_API_SERVER_PORT": "6002", "KMESH_LOG_LEVEL": "error"}
    flags = {"log.level": "debug"}

    only_file = load_config(file_text=file_text, env=ENV)
    assert (only_file.api_server.port, only_file.log.level) == (6001, "warning")

    file_env = load_config(file_text=file_text, env=env)
    assert (file_env.api_server.port, file_env.log.level) == (6002, "error")

    all_layers = load_config(file_text=file_text, env=env, flags=flags)
    assert (all_layers.api_server.port, all_layers.log.level) == (6002, "debug")
    # Settings no later layer touches keep the value of the earliest one that set them.
    assert all_layers.api_server.host == "0.0.0.0"
    assert all_layers.log.format == "logfmt"
    assert all_layers.kds.port == 5685


def test_env_var_names_follow_the_setting_paths() -> None:
    assert ENV_VARS["KMESH_API_SERVER_PORT"] == "api_server.port"
    assert ENV_VARS["KMESH_STORE_TYPE"] == "store.type"
    assert ENV_VARS["KMESH_STORE_SQLITE_PATH"] == "store.sqlite.path"
    assert ENV_VARS["KMESH_MODE"] == "mode"
    assert ENV_VARS["KMESH_LOG_LEVEL"] == "log.level"
    assert ENV_VARS["KMESH_DEFAULTS_SKIP_MESH_CREATION"] == "defaults.skip_mesh_creation"
    cfg = load_config(
        env={
            **ENV,
            "KMESH_STORE_TYPE": "memory",
            "KMESH_DEFAULTS_SKIP_MESH_CREATION": "true",
            "KMESH_SHUTDOWN_TIMEOUT_S": "2.5",
            "KMESH_KDS_SKIP_VERIFY": "1",
        }
    )
    assert cfg.store.type == "memory"
    assert cfg.defaults.skip_mesh_creation is True
    assert cfg.shutdown_timeout_s == 2.5
    assert cfg.kds.skip_verify is True


def test_every_flag_sets_an_existing_setting() -> None:
    settings = set(ENV_VARS.values())
    for flag in FLAGS:
        assert flag.setting in settings, flag


def test_unknown_key_in_file_names_file_and_key() -> None:
    with pytest.raises(ConfigError) as err:
        load_config(file_text="api_server:\n  prot: 5681\n", file_name="/etc/kmesh/cp.yaml", env=ENV)
    msg = str(err.value)
    assert msg.startswith("/etc/kmesh/cp.yaml: unknown key 'api_server.prot'")
    assert "did you mean 'port'" in msg

    with pytest.raises(ConfigError, match=r"cp\.yaml: unknown key 'apiServer'"):
        load_config(file_text="apiServer: {}\n", file_name="cp.yaml", env=ENV)


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("api_server:\n  port: '5681'\n", r"c\.yaml: api_server\.port must be a port number"),
        ("api_server:\n  port: 99999\n", r"c\.yaml: api_server\.port must be a port number 0-65535"),
        ("api_server: 5681\n", r"c\.yaml: api_server: expected a mapping"),
        ("mode: mesh\n", r"c\.yaml: mode must be one of global, standalone, zone, got 'mesh'"),
        ("- mode\n", r"c\.yaml: expected a mapping of settings at the top"),
        ("mode: [\n", r"c\.yaml: not valid YAML at line 2"),
        ("shutdown_timeout_s: 0\n", r"c\.yaml: shutdown_timeout_s must be a number of seconds > 0"),
    ],
)
def test_bad_file_values(text: str, match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        load_config(file_text=text, file_name="c.yaml", env=ENV)


def test_empty_file_is_all_defaults() -> None:
    assert load_config(file_text="", env=ENV) == load_config(env=ENV)


@pytest.mark.parametrize(
    ("var", "value", "match"),
    [
        (
            "KMESH_API_SERVER_PORT",
            "http",
            r"environment variable KMESH_API_SERVER_PORT: api_server\.port must be",
        ),
        ("KMESH_API_SERVER_PORT", "-1", r"KMESH_API_SERVER_PORT: .* got '-1'"),
        ("KMESH_STORE_TYPE", "postgres", r"KMESH_STORE_TYPE: store\.type must be one of memory, sqlite"),
        ("KMESH_DEFAULTS_SKIP_MESH_CREATION", "maybe", r"must be true or false, got 'maybe'"),
        ("KMESH_LOG_FORMAT", "xml", r"KMESH_LOG_FORMAT: log\.format must be one of json, logfmt"),
    ],
)
def test_bad_env_value_names_the_variable(var: str, value: str, match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        load_config(env={**ENV, var: value})


def test_bad_flag_value_names_the_flag() -> None:
    with pytest.raises(ConfigError, match=r"flag --api-port: api_server\.port must be a port number"):
        load_config(env=ENV, flags={"api_server.port": "70000"})
    with pytest.raises(ConfigError, match=r"flag --log-level: log\.level must be one of"):
        load_config(env=ENV, flags={"log.level": "loud"})


def test_unknown_kmesh_variables_are_ignored() -> None:
    # Other components read their own KMESH_* variables (KMESH_NO_EXTENSIONS); they are not config errors.
    assert load_config(env={**ENV, "KMESH_NO_EXTENSIONS": "1"}) == load_config(env=ENV)


def test_empty_env_value_unsets_an_optional_setting() -> None:
    cfg = load_config(file_text="kds:\n  ca_file: /ca.pem\n", env={**ENV, "KMESH_KDS_CA_FILE": ""})
    assert cfg.kds.ca_file is None


def test_zone_mode_needs_zone_and_global_address() -> None:
    with pytest.raises(ConfigError, match=r"mode zone needs this zone's name: set --zone"):
        load_config(env=ENV, flags={"mode": "zone", "kds.global_address": "kds://g:5685"})
    with pytest.raises(ConfigError, match=r"mode zone needs the global's address: set --kds-global-address"):
        load_config(env=ENV, flags={"mode": "zone", "zone": "east"})
    cfg = load_config(env=ENV, flags={"mode": "zone", "zone": "east", "kds.global_address": "kds://g:7000"})
    assert (cfg.mode, cfg.zone, cfg.kds.global_address) == ("zone", "east", "kds://g:7000")


@pytest.mark.parametrize("zone", ["East", "east_1", "-east", "e" * 64])
def test_zone_name_must_be_a_dns_label(zone: str) -> None:
    with pytest.raises(ConfigError, match=r"zone: .* is not a valid zone name"):
        load_config(env=ENV, flags={"mode": "zone", "zone": zone, "kds.global_address": "kds://g:1"})


def test_zone_settings_outside_zone_mode_are_refused() -> None:
    with pytest.raises(
        ConfigError, match=r"zone: only a zone control plane has a zone name, but mode is global"
    ):
        load_config(env=ENV, flags={"mode": "global", "zone": "east"})
    with pytest.raises(ConfigError, match=r"kds\.global_address: only a zone control plane dials the global"):
        load_config(env={**ENV, "KMESH_KDS_GLOBAL_ADDRESS": "kds://g:5685"})


@pytest.mark.parametrize(
    ("address", "expected"),
    [("kds://global.example:7000", ("global.example", 7000)), ("kds://10.0.0.1", ("10.0.0.1", 5685))],
)
def test_parse_kds_address(address: str, expected: tuple[str, int]) -> None:
    assert parse_kds_address(address) == expected


@pytest.mark.parametrize(
    "address", ["grpcs://g:5685", "kds://:5685", "kds://g:99999", "g:5685", "kds://g:1/x"]
)
def test_bad_kds_address(address: str) -> None:
    with pytest.raises(ConfigError, match=r"kds\.global_address: expected kds://HOST:PORT"):
        load_config(env=ENV, flags={"mode": "zone", "zone": "east", "kds.global_address": address})


def test_printed_config_parses_back_to_the_same_config() -> None:
    cfg = load_config(
        env={**ENV, "KMESH_KDS_CA_FILE": "/ca.pem"},
        flags={"mode": "zone", "zone": "east", "kds.global_address": "kds://g:5685", "api_server.port": "0"},
        hostname="h",
        pid=1,
        nonce="abcd",
    )
    text = config_to_yaml(cfg)
    assert yaml.safe_load(text)["kds"]["ca_file"] == "/ca.pem"
    again = load_config(file_text=text, env={}, hostname="other", pid=2, nonce="ffff")
    assert again == cfg


def test_config_is_frozen() -> None:
    cfg = load_config(env=ENV)
    assert isinstance(cfg, CpConfig)
    with pytest.raises(AttributeError):
        cfg.mode = "zone"  # type: ignore[misc]
    assert msgspec.structs.replace(cfg, mode="global").mode == "global"
