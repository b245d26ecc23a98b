"""``kmeshctl apply -f FILE|- [--var k=v ...] [--dry-run]``: create or update resources from YAML.

Steps, in this order:
1. read the file (``-`` is standard input);
2. replace each ``{{ name }}`` with the value given by ``--var name=value`` (kumactl's templating, shared
   with ``kmesh-proxy --dataplane-var`` in :mod:`kmesh._template`); a placeholder without a value is an
   error naming the line, never an empty string that would slip through;
3. parse and validate every document with the model's ``load_documents`` — if any document is invalid,
   nothing is sent, and the error names the file, the document, the line and the field;
4. PUT each resource to its REST path, in file order, printing ``Mesh "default" created`` (201) or
   ``... updated`` (200). ``--dry-run`` stops after step 3 and prints ``... valid (dry run)``.

Rules: step 4 is not a transaction — the API has none across resources — so when the server refuses one
resource, those before it stay applied, and the error says which resource was refused.
"""

from __future__ import annotations

import argparse
import sys

from kmesh._template import UnsetVariable, parse_var, substitute
from kmesh.cli._client import ApiError
from kmesh.cli._session import Session
from kmesh.cli._types import describe_resource, resource_path
from kmesh.errors import KmeshError
from kmesh.model import load_documents, to_document

__all__ = ["UnsetVariable", "parse_var", "register", "substitute"]

STDIN = "-"


def _read(path: str) -> tuple[str, str]:
    """The text to apply and the name errors give its source by."""
    if path == STDIN:
        return sys.stdin.read(), "<stdin>"
    try:
        with open(path, encoding="utf-8") as f:
            return f.read(), path
    except OSError as exc:
        raise KmeshError(f"cannot read {path}: {exc.strerror or exc}") from None
    except UnicodeDecodeError as exc:
        raise KmeshError(
            f"cannot read {path}: it is not UTF-8 text ({exc.reason} at byte {exc.start})"
        ) from None


def _apply(args: argparse.Namespace, session: Session) -> None:
    text, source = _read(args.file)
    text = substitute(text, dict(args.var or []), source=source)
    resources = load_documents(text, source=source)
    if not resources:
        raise KmeshError(f"{source}: no resources found")
    if args.dry_run:
        for resource in resources:
            session.print(f"{describe_resource(resource)} valid (dry run)")
        return
    client = session.client()
    for resource in resources:
        try:
            response = client.put(resource_path(resource), to_document(resource))
        except ApiError as exc:
            raise exc.with_context(f"{describe_resource(resource)} was refused") from None
        session.print(f"{describe_resource(resource)} {'created' if response.status == 201 else 'updated'}")


def register(
    commands: argparse._SubParsersAction[argparse.ArgumentParser], common: argparse.ArgumentParser
) -> None:
    """Add ``apply`` to ``commands``."""
    apply = commands.add_parser(
        "apply",
        parents=[common],
        help="create or update resources from a YAML file",
        description="Create or update the resources of a (multi-document) YAML file.",
    )
    apply.add_argument("-f", "--file", required=True, help="YAML file to apply, or - for standard input")
    apply.add_argument(
        "-v",
        "--var",
        action="append",
        type=parse_var,
        metavar="NAME=VALUE",
        help="value for a {{ NAME }} placeholder in the file (repeatable)",
    )
    apply.add_argument("--dry-run", action="store_true", help="validate only; send nothing")
    apply.set_defaults(handler=_apply)
