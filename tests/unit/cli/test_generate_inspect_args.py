"""``generate zone-token`` and ``inspect`` on the command line, before anything is sent."""

from __future__ import annotations

import argparse

import pytest

from kmesh.cli._cmd_generate import parse_scopes, parse_tag, parse_valid_for
from kmesh.cli.main import build_parser, main


@pytest.mark.parametrize(
    ("text", "scopes"),
    [("cp", ["cp"]), ("ingress,egress", ["ingress", "egress"]), (" egress , cp", ["egress", "cp"])],
)
def test_scopes_one_or_comma_separated(text: str, scopes: list[str]) -> None:
    assert parse_scopes(text) == scopes


@pytest.mark.parametrize("text", ["admin", "cp,root", "", "CP"])
def test_unknown_scope_is_refused(text: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError, match="use one of cp, ingress, egress"):
        parse_scopes(text)


@pytest.mark.parametrize("text", ["720h", "30d", "1s", "1h30m"])
def test_valid_for_is_kept_as_written(text: str) -> None:
    assert parse_valid_for(text) == text


@pytest.mark.parametrize(("text", "reason"), [("0", "at least 1s"), ("999ms", "at least 1s"), ("1x", "unit")])
def test_bad_valid_for(text: str, reason: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError, match=reason):
        parse_valid_for(text)


def test_repeated_scopes_are_collected() -> None:
    args = build_parser().parse_args(
        ["generate", "zone-token", "--zone", "z", "--scope", "cp", "--scope", "ingress,egress"]
    )
    assert args.zone == "z"
    assert args.scope == [["cp"], ["ingress", "egress"]]
    assert args.valid_for is None


def test_generate_needs_a_kind(capsys) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["generate"])
    assert exited.value.code == 2
    assert "zone-token" in capsys.readouterr().err


def test_inspect_offers_zones_and_its_output_formats(capsys) -> None:
    args = build_parser().parse_args(["inspect", "zones", "-o", "yaml"])
    assert args.output == "yaml"
    with pytest.raises(SystemExit) as exited:
        main(["inspect", "meshez"])
    assert exited.value.code == 2
    assert "invalid choice: 'meshez'" in capsys.readouterr().err


def test_get_and_delete_take_a_zone() -> None:
    parser = build_parser()
    assert parser.parse_args(["get", "dataplanes", "-z", "east"]).zone == "east"
    assert parser.parse_args(["delete", "dataplane", "web-1", "--zone", "west"]).zone == "west"
    assert parser.parse_args(["get", "dataplanes"]).zone is None


@pytest.mark.parametrize(
    ("text", "parsed"),
    [
        ("kuma.io/service=web", ("kuma.io/service", ["web"])),
        (" version = v1 ", ("version", ["v1"])),
        ("kuma.io/service=web,web-api", ("kuma.io/service", ["web", "web-api"])),
    ],
)
def test_tag(text: str, parsed: tuple[str, list[str]]) -> None:
    assert parse_tag(text) == parsed


@pytest.mark.parametrize("text", ["web", "=web", "kuma.io/service=", "a=b,,c"])
def test_bad_tag(text: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError, match="expected NAME=VALUE"):
        parse_tag(text)
