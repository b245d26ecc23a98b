"""kmeshctl's command line without a control plane: config commands, flags, exit statuses, messages."""

from __future__ import annotations

import pytest

from kmesh.cli._config import CliConfig, ControlPlane, add_control_plane, load_config, save_config
from kmesh.cli.main import main


@pytest.fixture
def config_file(tmp_path, monkeypatch):
    path = tmp_path / "kmeshctl.yaml"
    monkeypatch.setenv("KMESHCTL_CONFIG", str(path))
    config = add_control_plane(CliConfig(), ControlPlane(name="one", address="http://one:5681"))
    config = add_control_plane(config, ControlPlane(name="two", address="https://two:5681", skip_verify=True))
    save_config(path, config)
    return path


def test_list_marks_the_current_control_plane(config_file, capsys) -> None:
    assert main(["config", "control-planes", "list"]) == 0
    assert capsys.readouterr().out == (
        "ACTIVE   NAME   ADDRESS\n         one    http://one:5681\n*        two    https://two:5681\n"
    )


def test_switch_through_env_config(config_file, capsys) -> None:
    assert main(["config", "control-planes", "switch", "--name", "one"]) == 0
    assert capsys.readouterr().out == 'switched active Control Plane to "one"\n'
    assert load_config(config_file).current_control_plane == "one"


def test_switch_to_unknown_fails_and_leaves_the_file(config_file, capsys) -> None:
    before = config_file.read_bytes()
    assert main(["config", "control-planes", "switch", "--name", "three"]) == 1
    err = capsys.readouterr().err
    assert err == 'Error: there is no Control Plane with name "three" (known: "one", "two")\n'
    assert config_file.read_bytes() == before


def test_config_flag_after_the_command_wins_over_env(config_file, tmp_path, capsys) -> None:
    other = tmp_path / "other.yaml"
    save_config(other, add_control_plane(CliConfig(), ControlPlane(name="x", address="http://x:1")))
    assert main(["config", "view", "--config", str(other)]) == 0
    assert capsys.readouterr().out == (
        "currentControlPlane: x\ncontrolPlanes:\n- name: x\n  address: http://x:1\n  skipVerify: false\n"
    )
    assert main(["--config", str(other), "config", "control-planes", "list"]) == 0
    assert "x      http://x:1" in capsys.readouterr().out


def test_remove_current_falls_back_to_default(config_file, capsys) -> None:
    assert main(["config", "control-planes", "remove", "--name", "two"]) == 0
    assert capsys.readouterr().out == (
        'removed Control Plane "two"\n'
        "no active Control Plane; commands talk to http://127.0.0.1:5681 until you switch\n"
    )
    config = load_config(config_file)
    assert config.current_control_plane == ""
    assert [cp.name for cp in config.control_planes] == ["one"]


def test_list_without_config_names_the_default_address(tmp_path, monkeypatch, capsys) -> None:
    monkeypatch.setenv("KMESHCTL_CONFIG", str(tmp_path / "absent.yaml"))
    assert main(["config", "control-planes", "list"]) == 0
    assert "commands talk to http://127.0.0.1:5681" in capsys.readouterr().out
    assert not (tmp_path / "absent.yaml").exists()


def test_unknown_type_is_exit_1_listing_valid_types(config_file, capsys) -> None:
    assert main(["get", "meshez"]) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.startswith('Error: unknown resource type "meshez"; valid types: ')
    assert "meshes" in captured.err
    assert "secrets" in captured.err


def test_invalid_config_is_reported_before_any_request(tmp_path, monkeypatch, capsys) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("controlPlanes:\n- name: a\n")
    monkeypatch.setenv("KMESHCTL_CONFIG", str(bad))
    assert main(["get", "meshes"]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"Error: kmeshctl config {bad} is not valid: ")
    assert "address" in err


def test_bad_cp_address_flag_is_a_clear_error(config_file, capsys) -> None:
    assert main(["get", "meshes", "--cp-address", "localhost:5681"]) == 1
    assert capsys.readouterr().err == (
        'Error: control plane address "localhost:5681" must be an http:// or https:// URL with a host\n'
    )


def test_version_client_only(config_file, capsys) -> None:
    from kmesh import __version__

    assert main(["version", "--client"]) == 0
    assert capsys.readouterr().out == f"Client: kmesh {__version__}\n"


@pytest.mark.parametrize(
    "argv",
    [
        [],
        ["get"],
        ["frobnicate"],
        ["get", "meshes", "-o", "xml"],
        ["get", "meshes", "--size", "0"],
        ["get", "meshes", "--offset", "-1"],
        ["apply"],
        ["apply", "-f", "x.yaml", "--var", "novalue"],
        ["delete", "mesh"],
        ["config", "control-planes", "add", "--name", "x"],
        ["--api-timeout", "0", "version"],
    ],
)
def test_usage_errors_exit_2(argv, config_file, capsys) -> None:
    with pytest.raises(SystemExit) as info:
        main(argv)
    assert info.value.code == 2
    assert "usage: kmeshctl" in capsys.readouterr().err


def test_apply_of_a_missing_file(config_file, tmp_path, capsys) -> None:
    missing = tmp_path / "nope.yaml"
    assert main(["apply", "-f", str(missing)]) == 1
    assert capsys.readouterr().err == f"Error: cannot read {missing}: No such file or directory\n"


def test_apply_of_a_file_without_documents(config_file, tmp_path, capsys) -> None:
    path = tmp_path / "empty.yaml"
    path.write_text("# only a comment\n---\n")
    assert main(["apply", "-f", str(path)]) == 1
    assert capsys.readouterr().err == f"Error: {path}: no resources found\n"


def test_apply_of_a_file_that_is_not_text(config_file, tmp_path, capsys) -> None:
    path = tmp_path / "binary.yaml"
    path.write_bytes(b"type: Mesh\nname: \xff\xfe\n")
    assert main(["apply", "-f", str(path)]) == 1
    assert capsys.readouterr().err.startswith(f"Error: cannot read {path}: it is not UTF-8 text")


def test_dry_run_needs_no_control_plane(config_file, tmp_path, capsys) -> None:
    path = tmp_path / "mixed.yaml"
    path.write_text(
        "type: Mesh\nname: {{ mesh }}\n---\ntype: Secret\nmesh: {{ mesh }}\nname: s\ndata: c2VjcmV0\n"
    )
    # The configured control planes do not exist; a dry run must not try to reach them.
    assert main(["apply", "-f", str(path), "--dry-run", "--var", "mesh=prod"]) == 0
    assert capsys.readouterr().out == (
        'Mesh "prod" valid (dry run)\nSecret "s" in mesh "prod" valid (dry run)\n'
    )
