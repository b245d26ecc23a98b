"""``kmeshctl generate ...``: credentials the control plane signs, as kumactl's ``generate`` commands.

- ``generate zone-token --zone Z [--scope cp|ingress|egress ...] [--valid-for 720h]`` asks the current
  control plane (it must be the global: only the global signs zone tokens) for a zone token through
  ``POST /tokens/zone`` and prints it, alone, on standard output, so that
  ``kmeshctl generate zone-token --zone east > east.token`` gives the file a zone CP reads.
- ``generate dataplane-token --mesh M [--name N] [--tag k=v ...] [--valid-for 24h]`` asks a global (or
  standalone) control plane for a sidecar's dataplane token through ``POST /tokens/dataplane`` (Kuma's
  endpoint and fields). ``--tag kuma.io/service=web`` binds the token to that tag value; kumactl's
  ``k=v1,v2`` form is sent as Kuma sends it, and refused by the control plane (one value per tag).
- ``generate zone-proxy-token --type ingress|egress [--name N] [--valid-for D]`` asks a zone (or
  standalone) control plane for the token of one of its zone ingresses or egresses through
  ``POST /tokens/zone-proxy``. Kuma issues these on the global from the zone-token key; in kmesh that key
  never leaves the global, so the zone CP that verifies the token is the one that signs it.

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

__all__ = ["ZONE_TOKEN_SCOPES", "parse_scopes", "parse_tag", "parse_valid_for", "register"]

ZONE_TOKEN_PATH: Final = "/tokens/zone"
DATAPLANE_TOKEN_PATH: Final = "/tokens/dataplane"
ZONE_PROXY_TOKEN_PATH: Final = "/tokens/zone-proxy"
ZONE_TOKEN_SCOPES: Final = ("cp", "ingress", "egress")
ZONE_PROXY_TYPES: Final = ("ingress", "egress")


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


def parse_tag(text: str) -> tuple[str, list[str]]:
    """One ``--tag NAME=VALUE[,VALUE...]``. Raises ArgumentTypeError for a missing name or value."""
    name, sep, values = text.partition("=")
    parts = [v.strip() for v in values.split(",")]
    if not sep or not name.strip() or not all(parts):
        raise argparse.ArgumentTypeError(f"expected NAME=VALUE, such as kuma.io/service=web, got {text!r}")
    return name.strip(), parts


def _post_token(session: Session, path: str, request: dict[str, Any], what: str) -> None:
    try:
        token = session.client().post_text(path, request)
    except ApiError as exc:
        raise exc.with_context(f"could not generate {what}") from None
    token = token.strip()
    if not token:
        raise BadResponse(f"the control plane answered the request for {what} with an empty token")
    session.print(token)


def _dataplane_token(args: argparse.Namespace, session: Session) -> None:
    request: dict[str, Any] = {"mesh": args.mesh, "type": "dataplane"}
    if args.name is not None:
        request["name"] = args.name
    if args.tag:
        tags: dict[str, list[str]] = {}
        for name, values in args.tag:
            tags.setdefault(name, [])
            tags[name].extend(v for v in values if v not in tags[name])
        request["tags"] = tags
    if args.valid_for is not None:
        request["validFor"] = args.valid_for
    _post_token(session, DATAPLANE_TOKEN_PATH, request, f'a dataplane token for mesh "{args.mesh}"')


def _zone_proxy_token(args: argparse.Namespace, session: Session) -> None:
    request: dict[str, Any] = {"type": args.type}
    if args.name is not None:
        request["name"] = args.name
    if args.valid_for is not None:
        request["validFor"] = args.valid_for
    _post_token(session, ZONE_PROXY_TOKEN_PATH, request, f"a zone {args.type} token")


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
    kinds = generate.add_subparsers(
        dest="generate_command",
        required=True,
        metavar="{zone-token,dataplane-token,zone-proxy-token}",
    )

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

    dataplane_token = kinds.add_parser(
        "dataplane-token",
        parents=[common],
        help="a token that lets a sidecar join a mesh (signed by the global or a standalone CP)",
        description="Generate a dataplane token on the global (or a standalone) control plane and print it. "
        "It is signed with the mesh's key, which every zone control plane of the mesh holds, so it is "
        "accepted by any zone.",
    )
    dataplane_token.add_argument(
        "--mesh", default="default", help="mesh the token is valid in (default: default)"
    )
    dataplane_token.add_argument("--name", help="bind the token to the dataplane of this name")
    dataplane_token.add_argument(
        "--tag",
        action="append",
        type=parse_tag,
        metavar="NAME=VALUE",
        help="bind the token to this tag value, e.g. kuma.io/service=web (repeatable; one value per tag)",
    )
    dataplane_token.add_argument(
        "--valid-for",
        type=parse_valid_for,
        metavar="DURATION",
        help="how long the token is valid, e.g. 24h (default 8760h, set by the control plane)",
    )
    dataplane_token.set_defaults(handler=_dataplane_token)

    zone_proxy_token = kinds.add_parser(
        "zone-proxy-token",
        parents=[common],
        help="a token for a zone ingress or egress (signed by its zone CP)",
        description="Generate the token of a zone ingress or zone egress and print it. In kmesh these "
        "tokens are issued by the zone control plane (or a standalone one), not the global: the zone-token "
        "signing key never leaves the global, so the zone control plane that admits the ingress or egress "
        "signs and verifies its token with its own key. Point --cp-address at the zone's API.",
    )
    zone_proxy_token.add_argument(
        "--type", required=True, choices=ZONE_PROXY_TYPES, help="the kind of zone proxy: ingress or egress"
    )
    zone_proxy_token.add_argument("--name", help="bind the token to the ZoneIngress/ZoneEgress of this name")
    zone_proxy_token.add_argument(
        "--valid-for",
        type=parse_valid_for,
        metavar="DURATION",
        help="how long the token is valid, e.g. 720h (default 8760h, set by the control plane)",
    )
    zone_proxy_token.set_defaults(handler=_zone_proxy_token)
