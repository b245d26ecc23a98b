"""``{{ name }}`` placeholders in YAML files, shared by ``kmeshctl apply --var`` and ``kmesh-proxy
--dataplane-var`` (kumactl's and kuma-dp's templating).

Rules:
- A placeholder is ``{{ name }}`` with optional blanks, ``name`` matching ``[A-Za-z_][A-Za-z0-9_.-]*``; a Go
  template action such as ``{{ .Name }}`` is not one and is left as written.
- Substitution is one pass: a value that itself looks like a placeholder is not expanded again.
- A placeholder without a value is an error naming the source, the line and the flag that sets it — never
  an empty string that would slip through validation.
"""

from __future__ import annotations

import argparse
import re
from collections.abc import Mapping
from typing import Final

from kmesh.errors import KmeshError

__all__ = ["UnsetVariable", "parse_var", "substitute"]

_NAME: Final = r"[A-Za-z_][A-Za-z0-9_.-]*"
_PLACEHOLDER: Final = re.compile(r"\{\{\s*(" + _NAME + r")\s*\}\}")
_VAR_NAME: Final = re.compile(_NAME)


class UnsetVariable(KmeshError):
    """A ``{{ name }}`` placeholder has no value."""


def parse_var(text: str) -> tuple[str, str]:
    """``k=v`` from the command line as ``(k, v)``.

    Raises argparse.ArgumentTypeError (which argparse turns into a usage error) for text that is not
    ``NAME=VALUE``.
    """
    name, sep, value = text.partition("=")
    if not sep or not _VAR_NAME.fullmatch(name):
        raise argparse.ArgumentTypeError(f"{text!r} is not NAME=VALUE")
    return name, value


def substitute(text: str, variables: Mapping[str, str], *, source: str, flag: str = "--var") -> str:
    """``text`` with every ``{{ name }}`` replaced by ``variables[name]``.

    Raises UnsetVariable naming ``source``, the line and the variable when a placeholder has no value;
    the message tells the user to pass ``{flag} name=VALUE``.
    """

    def replace(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in variables:
            line = text.count("\n", 0, match.start()) + 1
            raise UnsetVariable(
                f'{source}, line {line}: variable "{name}" is not set; pass {flag} {name}=VALUE'
            )
        return variables[name]

    return _PLACEHOLDER.sub(replace, text)
