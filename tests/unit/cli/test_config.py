"""kmeshctl's config file: where it is, its permissions, and the control-plane operations."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from kmesh.cli._config import (
    CliConfig,
    ControlPlane,
    add_control_plane,
    config_path,
    current_control_plane,
    load_config,
    normalize_address,
    save_config,
    switch_control_plane,
)
from kmesh.errors import ConfigError

A = ControlPlane(name="a", address="http://a:5681")
B = ControlPlane(name="b", address="https://b:5681", skip_verify=True)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_path_precedence_flag_then_env_then_home(monkeypatch, tmp_path) -> None:
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.delenv("KMESHCTL_CONFIG", raising=False)
    assert config_path() == tmp_path / "home" / ".kmeshctl" / "config.yaml"
    monkeypatch.setenv("KMESHCTL_CONFIG", str(tmp_path / "env.yaml"))
    assert config_path() == tmp_path / "env.yaml"
    assert config_path(str(tmp_path / "flag.yaml")) == tmp_path / "flag.yaml"


def test_missing_or_empty_file_is_an_empty_config(tmp_path) -> None:
    assert load_config(tmp_path / "nope.yaml") == CliConfig()
    (tmp_path / "empty.yaml").write_text("\n")
    assert load_config(tmp_path / "empty.yaml") == CliConfig()
    assert current_control_plane(CliConfig()) is None


def test_saved_file_is_0600_in_new_0700_dirs_and_round_trips(tmp_path) -> None:
    old_umask = os.umask(0o022)
    try:
        path = tmp_path / "deep" / "kmeshctl" / "config.yaml"
        config = add_control_plane(add_control_plane(CliConfig(), A), B)
        save_config(path, config)
    finally:
        os.umask(old_umask)
    assert _mode(path) == 0o600
    assert _mode(path.parent) == 0o700
    assert _mode(path.parent.parent) == 0o700
    assert load_config(path) == config
    # No temp file is left beside it.
    assert [p.name for p in path.parent.iterdir()] == ["config.yaml"]


def test_existing_directory_keeps_its_mode(tmp_path) -> None:
    os.chmod(tmp_path, 0o755)
    save_config(tmp_path / "c.yaml", CliConfig())
    assert _mode(tmp_path) == 0o755
    assert _mode(tmp_path / "c.yaml") == 0o600


def test_rewrite_tightens_a_loose_file(tmp_path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text("")
    os.chmod(path, 0o644)
    save_config(path, add_control_plane(CliConfig(), A))
    assert _mode(path) == 0o600


def test_file_shape(tmp_path) -> None:
    path = tmp_path / "c.yaml"
    save_config(path, add_control_plane(CliConfig(), B))
    assert path.read_text() == (
        "currentControlPlane: b\ncontrolPlanes:\n- name: b\n  address: https://b:5681\n  skipVerify: true\n"
    )


def test_add_makes_current_and_refuses_a_taken_name() -> None:
    config = add_control_plane(CliConfig(), A)
    config = add_control_plane(config, B)
    assert current_control_plane(config) == B
    with pytest.raises(ConfigError) as info:
        add_control_plane(config, ControlPlane(name="a", address="http://other:1"))
    assert str(info.value) == (
        'Control Plane with name "a" already exists. Use --overwrite to replace an existing one.'
    )


def test_overwrite_replaces_in_place_and_makes_current() -> None:
    config = add_control_plane(add_control_plane(CliConfig(), A), B)
    replaced = ControlPlane(name="a", address="http://a2:5681")
    config = add_control_plane(config, replaced, overwrite=True)
    assert config.control_planes == (replaced, B)
    assert current_control_plane(config) == replaced


def test_switch() -> None:
    config = add_control_plane(add_control_plane(CliConfig(), A), B)
    assert current_control_plane(switch_control_plane(config, "a")) == A
    with pytest.raises(ConfigError, match='there is no Control Plane with name "c"'):
        switch_control_plane(config, "c")


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("controlPlanes:\n- name: a\n", "missing required field `address`"),
        ("controlPlanes:\n- name: a\n  address: x\n  colour: red\n", "unknown field `colour`"),
        ("currentControlPlane: [1]\n", "Expected `str`"),
        ("controlPlanes: [\n", "not valid"),
        ("currentControlPlane: z\ncontrolPlanes: []\n", 'currentControlPlane "z" is not one of'),
        (
            "controlPlanes:\n- {name: a, address: 'http://x'}\n- {name: a, address: 'http://y'}\n",
            'control plane "a" appears twice',
        ),
    ],
)
def test_invalid_file_names_the_file_and_the_problem(tmp_path, text: str, fragment: str) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert str(path) in str(info.value)
    assert fragment in str(info.value)


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("http://127.0.0.1:5681", "http://127.0.0.1:5681"),
        ("https://cp.example.com:5682/", "https://cp.example.com:5682"),
        (" http://cp/prefix/ ", "http://cp/prefix"),
    ],
)
def test_normalize_address(given: str, expected: str) -> None:
    assert normalize_address(given) == expected


@pytest.mark.parametrize("bad", ["127.0.0.1:5681", "ftp://cp", "http://", "http://cp:notaport"])
def test_normalize_address_refuses_what_is_not_an_http_url(bad: str) -> None:
    with pytest.raises(ConfigError, match="control plane address"):
        normalize_address(bad)
