"""``kmeshctl config control-planes`` and ``version`` against a real kmesh-cp and a dead address."""

from __future__ import annotations

import stat

import yaml

from kmesh import __version__
from kmesh.testing import free_port


def _mode(path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_add_checks_the_address_saves_privately_and_makes_current(cp, kmeshctl, config_file) -> None:
    result = kmeshctl("config", "control-planes", "add", "--name", "local", "--address", cp.api_url + "/")
    assert result.returncode == 0, result.stderr
    assert result.stdout == 'added Control Plane "local"\nswitched active Control Plane to "local"\n'
    assert _mode(config_file) == 0o600
    assert _mode(config_file.parent) == 0o700
    stored = yaml.safe_load(config_file.read_text())
    assert stored == {
        "currentControlPlane": "local",
        "controlPlanes": [{"name": "local", "address": cp.api_url, "skipVerify": False}],
    }

    listing = kmeshctl("config", "control-planes", "list")
    assert listing.returncode == 0
    assert listing.stdout.splitlines() == ["ACTIVE   NAME    ADDRESS", f"*        local   {cp.api_url}"]

    view = kmeshctl("config", "view")
    assert yaml.safe_load(view.stdout) == stored

    # The current control plane is the one commands use.
    meshes = kmeshctl("get", "meshes")
    assert meshes.returncode == 0, meshes.stderr
    assert meshes.stdout.splitlines()[0].split() == ["NAME", "mTLS", "LOCALITY", "ZONEEGRESS", "AGE"]


def test_add_of_a_taken_name_needs_overwrite(cp, connected, config_file) -> None:
    before = config_file.read_bytes()
    again = connected("config", "control-planes", "add", "--name", "test", "--address", cp.api_url)
    assert again.returncode == 1
    assert again.stderr == (
        'Error: Control Plane with name "test" already exists. Use --overwrite to replace an existing one.\n'
    )
    assert config_file.read_bytes() == before

    second = connected("config", "control-planes", "add", "--name", "other", "--address", cp.api_url)
    assert second.returncode == 0, second.stderr
    overwrite = connected(
        "config", "control-planes", "add", "--name", "test", "--address", cp.api_url, "--overwrite"
    )
    assert overwrite.returncode == 0, overwrite.stderr
    assert connected("config", "control-planes", "list").stdout.splitlines() == [
        "ACTIVE   NAME    ADDRESS",
        f"*        test    {cp.api_url}",
        f"         other   {cp.api_url}",
    ]
    switch = connected("config", "control-planes", "switch", "--name", "other")
    assert switch.stdout == 'switched active Control Plane to "other"\n'
    assert yaml.safe_load(config_file.read_text())["currentControlPlane"] == "other"


def test_add_of_an_address_that_does_not_answer_fails_and_saves_nothing(kmeshctl, config_file) -> None:
    address = f"http://127.0.0.1:{free_port()}"
    result = kmeshctl("config", "control-planes", "add", "--name", "gone", "--address", address)
    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr == f"Error: could not reach the control plane at {address}: Connection refused\n"
    assert not config_file.exists()


def test_unreachable_control_plane_is_named(kmeshctl) -> None:
    address = f"http://127.0.0.1:{free_port()}"
    for argv in (["get", "meshes"], ["get", "mesh", "default"], ["delete", "mesh", "x"]):
        result = kmeshctl(*argv, "--cp-address", address)
        assert result.returncode == 1
        assert result.stderr == f"Error: could not reach the control plane at {address}: Connection refused\n"
        assert "Traceback" not in result.stderr


def test_cp_address_flag_overrides_the_config_for_one_call(cp, kmeshctl, config_file) -> None:
    # The configured control plane does not answer; the flag points at the real one.
    dead = f"http://127.0.0.1:{free_port()}"
    config_file.parent.mkdir(mode=0o700)
    config_file.write_text(f"currentControlPlane: dead\ncontrolPlanes:\n- name: dead\n  address: {dead}\n")
    assert kmeshctl("get", "meshes").returncode == 1
    result = kmeshctl("--cp-address", cp.api_url, "get", "meshes")
    assert result.returncode == 0, result.stderr


def test_version_shows_client_and_control_plane(connected) -> None:
    result = connected("version")
    assert result.returncode == 0, result.stderr
    assert result.stdout == f"Client: kmesh {__version__}\nControl Plane: kmesh {__version__}\n"


def test_version_without_a_control_plane_still_shows_the_client(kmeshctl) -> None:
    address = f"http://127.0.0.1:{free_port()}"
    result = kmeshctl("version", "--cp-address", address)
    assert result.returncode == 0
    assert result.stdout == (
        f"Client: kmesh {__version__}\n"
        f"Control Plane: unknown (could not reach the control plane at {address}: Connection refused)\n"
    )
