"""``kmeshctl generate ...``: credentials the control plane signs, as kumactl's ``generate`` commands.

- ``generate zone-token --zone Z [--scope cp|ingress|egress ...] [--valid-for 720h]`` asks the current
  control plane (it must be the global: only the global signs zone tokens) for a zone token through
  ``POST /tokens/zone`` and prints it, alone, on standard output, so that
  ``kmeshctl generate zone-token --zone east > east.token`` gives the file a zone CP reads.

Rules:
- ``--scope`` may be repeated or comma-separated (``--scope ingress,egress``), as kumactl's; without it the
  control plane grants ``cp``. Scopes and ``--valid-for`` are checked here, before anything is sent, so a
  typo is a usage error (exit 2) naming the flag. Without ``--valid-for`` the control plane's default
  (a year) applies.
- A refusal (a zone CP, an invalid zone name) is one ``Error:`` line saying what could not be done and
  the control plane's reason. The token itself is never written anywhere but standard output.
"""

from __future__ import annotations

import argparse
from typing import Any, Final

from kmesh.cli._client import ApiError, BadResponse
from kmesh.cli._session import Session
from kmesh.model import parse_duration

__all__ = ["ZONE_TOKEN_SCOPES", "parse_scopes", "parse_valid_for", "register"]

ZONE_TOKEN_PATH: Final = "/tokens/zone"
ZONE_TOKEN_SCOPES: Final = ("cp", "ingress", "egress")


def parse_scopes(text: str) -> list[str]:
    """One ``--scope`` value: a scope or a comma-separated list of them. Raises ArgumentTypeError."""
    scopes = [part.strip() for part in text.split(",")]
    for scope in scopes:
        if scope not in ZONE_TOKEN_SCOPES:
            raise argparse.ArgumentTypeError(
                f"unknown scope {scope!r}; use one of {', '.join(ZONE_TOKEN_SCOPES)}"
            )
    return scopes


def parse_valid_for(text: str) -> str:
    """A ``--valid-for`` duration of at least one second, kept as written. Raises ArgumentTypeError."""
    try:
        seconds = parse_duration(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    if seconds < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1s, got {text!r}")
    return text


def _zone_token(args: argparse.Namespace, session: Session) -> None:
    request: dict[str, Any] = {"zone": args.zone}
    if args.scope:
        # Repeated flags, each possibly a list: flattened, duplicates dropped, order kept.
        request["scope"] = list(dict.fromkeys(scope for group in args.scope for scope in group))
    if args.valid_for is not None:
        request["validFor"] = args.valid_for
    try:
        token = session.client().post_text(ZONE_TOKEN_PATH, request)
    except ApiError as exc:
        raise exc.with_context(f'could not generate a zone token for zone "{args.zone}"') from None
    token = token.strip()
    if not token:
        raise BadResponse("the control plane answered the zone token request with an empty token")
    session.print(token)


def register(
    commands: argparse._SubParsersAction[argparse.ArgumentParser], common: argparse.ArgumentParser
) -> None:
    """Add ``generate`` and its subcommands to ``commands``."""
    generate = commands.add_parser(
        "generate", parents=[common], help="generate tokens signed by the control plane"
    )
    kinds = generate.add_subparsers(dest="generate_command", required=True, metavar="{zone-token}")

    zone_token = kinds.add_parser(
        "zone-token",
        parents=[common],
        help="a token that proves a zone control plane's (or its ingress's, egress's) zone",
        description="Generate a zone token on the global control plane and print it.",
    )
    zone_token.add_argument("--zone", required=True, help="name of the zone the token is for")
    zone_token.add_argument(
        "--scope",
        action="append",
        type=parse_scopes,
        metavar="SCOPE",
        help=f"what the token may connect as: {', '.join(ZONE_TOKEN_SCOPES)} "
        "(repeatable or comma-separated; default cp)",
    )
    zone_token.add_argument(
        "--valid-for",
        type=parse_valid_for,
        metavar="DURATION",
        help="how long the token is valid, e.g. 720h or 30d (default 8760h, set by the control plane)",
    )
    zone_token.set_defaults(handler=_zone_token)
