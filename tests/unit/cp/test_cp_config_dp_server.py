"""The DP server's settings: defaults, flags, environment, file, and the certificate pair set together."""

from __future__ import annotations

import pytest

from kmesh.cp.config import FLAGS, load_config
from kmesh.cp.main import build_parser, read_config
from kmesh.errors import ConfigError

ENV = {"HOME": "/home/op"}


def test_defaults() -> None:
    dp = load_config(env=ENV).dp_server
    assert (dp.host, dp.port) == ("0.0.0.0", 5678)
    assert dp.tls_cert_file is None
    assert dp.tls_key_file is None
    assert dp.require_token is True
    assert dp.heartbeat_interval_s == 10.0
    assert dp.deregister_delay_s == 10.0


def test_flags_set_the_certificate_pair() -> None:
    args = build_parser().parse_args(
        ["--dp-tls-cert-file", "/etc/dp.crt", "--dp-tls-key-file", "/etc/dp.key"]
    )
    dp = read_config(args, dict(ENV)).dp_server
    assert (dp.tls_cert_file, dp.tls_key_file) == ("/etc/dp.crt", "/etc/dp.key")
    assert {f.flag: f.setting for f in FLAGS}["--dp-tls-cert-file"] == "dp_server.tls_cert_file"


def test_environment_and_file() -> None:
    env = {**ENV, "KMESH_DP_SERVER_REQUIRE_TOKEN": "false", "KMESH_DP_SERVER_HEARTBEAT_INTERVAL_S": "2.5"}
    text = "dp_server:\n  deregister_delay_s: 0\n  port: 15678\n"
    dp = load_config(file_text=text, env=env).dp_server
    assert dp.require_token is False
    assert dp.heartbeat_interval_s == 2.5
    assert dp.deregister_delay_s == 0
    assert dp.port == 15678


@pytest.mark.parametrize(
    "flags",
    [{"dp_server.tls_cert_file": "/etc/dp.crt"}, {"dp_server.tls_key_file": "/etc/dp.key"}],
)
def test_certificate_and_key_come_together(flags: dict[str, str]) -> None:
    with pytest.raises(
        ConfigError, match=r"dp_server\.tls_cert_file and dp_server\.tls_key_file: set both or neither"
    ):
        load_config(env=ENV, flags=flags)


@pytest.mark.parametrize(
    ("var", "value", "message"),
    [
        ("KMESH_DP_SERVER_HEARTBEAT_INTERVAL_S", "0", "a number of seconds > 0"),
        ("KMESH_DP_SERVER_DEREGISTER_DELAY_S", "-1", "a number of seconds >= 0"),
        ("KMESH_DP_SERVER_REQUIRE_TOKEN", "maybe", "true or false"),
    ],
)
def test_bad_values_name_the_variable(var: str, value: str, message: str) -> None:
    with pytest.raises(ConfigError, match=f"environment variable {var}: .* must be {message}"):
        load_config(env={**ENV, var: value})
