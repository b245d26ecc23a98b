"""kmesh-cp as a real process: serves its API, keeps state in SQLite across restarts, stops cleanly on
SIGTERM and SIGINT, and reports bad settings and startup failures in one line without a traceback."""

from __future__ import annotations

import signal
import socket
import sqlite3
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import orjson
import pytest
import yaml

from kmesh.cp.config import load_config
from kmesh.testing import CpProcess, CpProcessError, free_port, run_cp

SECRET = {"type": "Secret", "mesh": "default", "name": "s1", "data": "c2VjcmV0"}


def http(method: str, url: str, body: dict[str, Any] | None = None) -> tuple[int, Any]:
    """One request; the status and the decoded JSON body (None when empty)."""
    data = orjson.dumps(body) if body is not None else None
    req = urllib.request.Request(url, data=data, method=method, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            status, raw = resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        status, raw = exc.code, exc.read()
        exc.close()
    return status, orjson.loads(raw) if raw else None


def _record(cp: CpProcess, msg: str) -> dict[str, Any]:
    matches = [r for r in cp.log_records() if r.get("msg") == msg]
    assert matches, f"no {msg!r} log line in:\n{cp.logs()}"
    return matches[-1]


def test_state_survives_a_restart(tmp_path: Path) -> None:
    cp = CpProcess(data_dir=tmp_path)
    with cp:
        status, index = http("GET", f"{cp.api_url}/")
        assert status == 200
        assert isinstance(index, dict)

        started = _record(cp, "control plane started")
        assert started["mode"] == "standalone"
        assert started["api_address"] == f"127.0.0.1:{cp.api_port}"
        assert started["store_path"] == str(cp.db_path)
        assert started["instance_id"]

        status, mesh_before = http("GET", f"{cp.api_url}/meshes/default")
        assert status == 200
        status, _ = http("PUT", f"{cp.api_url}/meshes/default/secrets/s1", SECRET)
        assert status == 201
        status, secret_before = http("GET", f"{cp.api_url}/meshes/default/secrets/s1")
        assert status == 200
        assert secret_before["data"] == SECRET["data"]

        assert cp.stop(signal.SIGTERM) == 0
        _record(cp, "control plane stopped")
        assert "Traceback" not in cp.logs()

        # The store was closed cleanly: the WAL was checkpointed into the database (SQLite removes it when
        # the last connection closes), and the file is consistent.
        wal = cp.db_path.with_name(cp.db_path.name + "-wal")
        assert not wal.exists() or wal.stat().st_size == 0
        _assert_integrity(cp.db_path)

        cp.start()
        status, secret_after = http("GET", f"{cp.api_url}/meshes/default/secrets/s1")
        assert status == 200
        assert secret_after == secret_before
        status, mesh_after = http("GET", f"{cp.api_url}/meshes/default")
        assert status == 200
        assert mesh_after == mesh_before
        # The restart found the default Mesh and did not write it again.
        assert "created the default Mesh" not in [r.get("msg") for r in cp.log_records()]


def _assert_integrity(db_path: Path) -> None:
    db = sqlite3.connect(db_path)
    try:
        assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    finally:
        db.close()


def test_committed_writes_survive_sigkill(tmp_path: Path) -> None:
    with CpProcess(data_dir=tmp_path) as cp:
        status, _ = http("PUT", f"{cp.api_url}/meshes/default/secrets/s1", SECRET)
        assert status == 201
        status, secret_before = http("GET", f"{cp.api_url}/meshes/default/secrets/s1")
        assert cp.kill() == -signal.SIGKILL
        assert "control plane stopped" not in cp.logs()

        cp.start()
        status, secret_after = http("GET", f"{cp.api_url}/meshes/default/secrets/s1")
        assert status == 200
        assert secret_after == secret_before
        assert cp.stop() == 0
    _assert_integrity(tmp_path / "kmesh.db")


def test_existing_default_mesh_is_never_overwritten(tmp_path: Path) -> None:
    with CpProcess(data_dir=tmp_path) as cp:
        status, mesh = http("GET", f"{cp.api_url}/meshes/default")
        assert status == 200
        changed = {k: v for k, v in mesh.items() if k not in ("creationTime", "modificationTime")}
        changed["labels"] = {"team": "core"}
        status, _ = http("PUT", f"{cp.api_url}/meshes/default", changed)
        assert status == 200
        status, mesh_changed = http("GET", f"{cp.api_url}/meshes/default")
        assert mesh_changed["labels"] == {"team": "core"}

        assert cp.stop() == 0
        cp.start()
        status, mesh_again = http("GET", f"{cp.api_url}/meshes/default")
        assert status == 200
        assert mesh_again == mesh_changed


def test_sigint_stops_cleanly(tmp_path: Path) -> None:
    with CpProcess(data_dir=tmp_path) as cp:
        assert cp.stop(signal.SIGINT) == 0
        _record(cp, "control plane stopped")
        assert "Traceback" not in cp.logs()
        assert "KeyboardInterrupt" not in cp.logs()


def test_skip_mesh_creation(tmp_path: Path) -> None:
    with CpProcess(data_dir=tmp_path, env={"KMESH_DEFAULTS_SKIP_MESH_CREATION": "true"}) as cp:
        status, _ = http("GET", f"{cp.api_url}/meshes/default")
        assert status == 404


def test_memory_store_writes_no_file(tmp_path: Path) -> None:
    with CpProcess("--store", "memory", data_dir=tmp_path) as cp:
        status, _ = http("GET", f"{cp.api_url}/meshes/default")
        assert status == 200
        assert _record(cp, "control plane started")["store_type"] == "memory"
        assert not cp.db_path.exists()


def test_print_config(tmp_path: Path) -> None:
    port = str(free_port())
    result = run_cp(
        "--print-config", "--log-format", "logfmt", data_dir=tmp_path, env={"KMESH_API_SERVER_PORT": port}
    )
    assert result.returncode == 0, result.stderr
    printed = yaml.safe_load(result.stdout)
    assert printed["api_server"]["port"] == int(port)
    assert printed["log"]["format"] == "logfmt"
    assert printed["store"]["sqlite"]["path"] == str(tmp_path / "kmesh.db")
    assert not (tmp_path / "kmesh.db").exists()  # printing starts nothing

    # What it prints is a valid config file that gives the same config back.
    config_file = tmp_path / "printed.yaml"
    config_file.write_text(result.stdout)
    again = run_cp("--print-config", "-c", str(config_file), data_dir=tmp_path)
    assert again.returncode == 0, again.stderr
    assert yaml.safe_load(again.stdout) == printed
    assert load_config(file_text=result.stdout, env={}).api_server.port == int(port)


def test_bad_config_file_names_file_and_key(tmp_path: Path) -> None:
    config_file = tmp_path / "cp.yaml"
    config_file.write_text("api_server:\n  port: 5681\n  bind: 0.0.0.0\n")
    result = run_cp("-c", str(config_file), data_dir=tmp_path)
    assert result.returncode == 2
    assert str(config_file) in result.stderr
    assert "unknown key 'api_server.bind'" in result.stderr
    assert "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1

    missing = run_cp("-c", str(tmp_path / "nope.yaml"), data_dir=tmp_path)
    assert missing.returncode == 2
    assert f"config file {tmp_path / 'nope.yaml'}: No such file or directory" in missing.stderr


def test_bad_env_value_and_bad_flag(tmp_path: Path) -> None:
    bad_env = run_cp(data_dir=tmp_path, env={"KMESH_API_SERVER_PORT": "http"})
    assert bad_env.returncode == 2
    assert "environment variable KMESH_API_SERVER_PORT" in bad_env.stderr
    assert "Traceback" not in bad_env.stderr

    bad_flag = run_cp("--log-level", "loud", data_dir=tmp_path)
    assert bad_flag.returncode == 2
    assert "flag --log-level: log.level must be one of debug, error, info, warning" in bad_flag.stderr

    unknown_flag = run_cp("--api-prot", "1", data_dir=tmp_path)
    assert unknown_flag.returncode == 2
    assert "unrecognized arguments: --api-prot" in unknown_flag.stderr


def test_zone_mode_settings_are_checked_before_start(tmp_path: Path) -> None:
    zone_without_name = run_cp("--mode", "zone", "--kds-global-address", "kds://g:5685", data_dir=tmp_path)
    assert zone_without_name.returncode == 2
    assert "mode zone needs this zone's name" in zone_without_name.stderr

    zone_without_global = run_cp("--mode", "zone", "--zone", "east", data_dir=tmp_path)
    assert zone_without_global.returncode == 2
    assert "mode zone needs the global's address" in zone_without_global.stderr

    both_trusts = run_cp(
        "--mode", "zone", "--zone", "east", "--kds-global-address", "kds://g:5685",
        "--kds-skip-verify", "--kds-ca-file", "ca.pem", data_dir=tmp_path,
    )  # fmt: skip
    assert both_trusts.returncode == 2
    assert "choose one way to trust the global" in both_trusts.stderr
    assert "Traceback" not in zone_without_name.stderr + zone_without_global.stderr + both_trusts.stderr
    assert not (tmp_path / "kmesh.db").exists()


def test_port_in_use_is_one_clear_error(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = run_cp(data_dir=tmp_path, env={"KMESH_API_SERVER_PORT": str(port)})

        # CpProcess reports the same failure, quoting the tail of the process's log.
        cp = CpProcess(data_dir=tmp_path / "second", api_port=port)
        with pytest.raises(CpProcessError, match=r"exited with status 1 before serving") as err:
            cp.start()
        cp.close()
    assert "address already in use" in str(err.value)

    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    [failure] = [orjson.loads(line) for line in result.stderr.splitlines() if '"level":"error"' in line]
    assert f"api_server: cannot listen on 127.0.0.1:{port}: address already in use" in failure["msg"]


def test_unwritable_store_path_is_one_clear_error(tmp_path: Path) -> None:
    not_a_dir = tmp_path / "file"
    not_a_dir.write_text("")
    result = run_cp("--store-path", str(not_a_dir / "kmesh.db"), data_dir=tmp_path)
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    expected = f"store.sqlite.path: cannot create directory {not_a_dir}: it exists and is not a directory"
    assert expected in result.stderr


def test_corrupt_store_file_is_one_clear_error(tmp_path: Path) -> None:
    (tmp_path / "kmesh.db").write_bytes(b"this is not an SQLite database, but a file of the same name" * 100)
    result = run_cp(data_dir=tmp_path)
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    [failure] = [orjson.loads(line) for line in result.stderr.splitlines() if '"level":"error"' in line]
    assert failure["msg"].startswith(
        f"control plane failed to start: store: cannot open the sqlite store {tmp_path}"
    )
