"""``apply --var k=v``: ``{{ k }}`` placeholders, as kumactl's templating."""

from __future__ import annotations

import argparse

import pytest

from kmesh.cli._cmd_apply import UnsetVariable, parse_var, substitute


def test_placeholders_with_and_without_blanks_are_replaced() -> None:
    text = "type: Mesh\nname: {{ name }}\nlabels:\n  team: '{{team}}'\n  both: {{name}}-{{  team  }}\n"
    assert substitute(text, {"name": "prod", "team": "a-team"}, source="m.yaml") == (
        "type: Mesh\nname: prod\nlabels:\n  team: 'a-team'\n  both: prod-a-team\n"
    )


def test_values_are_inserted_verbatim_once() -> None:
    # A value that itself looks like a placeholder is not expanded again.
    assert substitute("a: {{ x }}", {"x": "{{ y }}"}, source="f") == "a: {{ y }}"


def test_unset_variable_names_source_line_and_variable() -> None:
    text = "type: Mesh\n\nname: {{ mesh_name }}\n"
    with pytest.raises(UnsetVariable) as info:
        substitute(text, {"other": "x"}, source="mesh.yaml")
    assert str(info.value) == (
        'mesh.yaml, line 3: variable "mesh_name" is not set; pass --var mesh_name=VALUE'
    )


def test_text_that_is_not_a_placeholder_is_left_alone() -> None:
    text = "a: '{{ .Name }}'\nb: '{ x }'\nc: '{{ }}'\n"
    assert substitute(text, {}, source="f") == text


@pytest.mark.parametrize(
    ("arg", "expected"),
    [("a=b", ("a", "b")), ("a=", ("a", "")), ("x.y-z=1=2", ("x.y-z", "1=2")), ("_k=v w", ("_k", "v w"))],
)
def test_parse_var(arg: str, expected: tuple[str, str]) -> None:
    assert parse_var(arg) == expected


@pytest.mark.parametrize("arg", ["novalue", "=v", "1a=v", "a b=v"])
def test_parse_var_refuses_what_is_not_name_value(arg: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError):
        parse_var(arg)
