"""``kmeshctl``: the command line of kmesh, in the style of kumactl.

Commands: ``config`` (control planes), ``get``, ``inspect``, ``apply``, ``delete``, ``generate``,
``version``. Global flags, accepted before or after the command: ``--config PATH`` (else
``$KMESHCTL_CONFIG``, else ``~/.kmeshctl/config.yaml``), ``--cp-address URL`` (this call only),
``--skip-verify`` (accept any TLS certificate), ``--api-timeout S``.

Rules:
- Exit status 0 on success, 1 on any error, 2 on a usage error (argparse's own).
- Every error a user can cause or meet reaches them as one ``Error: ...`` message on stderr — the server's
  title, details and invalid parameters when it refused, the file, document, line and field when a file is
  invalid, the address when the control plane does not answer — never as a traceback.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from kmesh import __version__
from kmesh.cli import _cmd_apply, _cmd_config, _cmd_generate, _cmd_get, _cmd_inspect
from kmesh.cli._client import ApiClient
from kmesh.cli._session import Session
from kmesh.errors import KmeshError

__all__ = ["build_parser", "main"]


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if value <= 0:
        raise argparse.ArgumentTypeError("must be more than 0 seconds")
    return value


def _common_flags(config_flags: Sequence[str] = ("--config", "--config-file")) -> argparse.ArgumentParser:
    """The global flags, as a parent of every parser so they may come anywhere on the line.

    Their defaults are SUPPRESS: a subcommand's parser would otherwise overwrite a value given before the
    subcommand with its own default. ``config_flags`` names the config file's flag: ``inspect dataplane``
    takes ``--config`` for the proxy config (as its brief and kumactl users expect), so after that
    subcommand the file is ``--config-file`` only (``--config PATH`` before the command still works).
    """
    common = argparse.ArgumentParser(add_help=False, argument_default=argparse.SUPPRESS)
    common.add_argument(*config_flags, dest="config", metavar="PATH", help="kmeshctl config file")
    common.add_argument("--cp-address", metavar="URL", help="control plane API to use for this call")
    common.add_argument(
        "--skip-verify", action="store_true", help="do not verify the control plane's TLS certificate"
    )
    common.add_argument(
        "--api-timeout", type=_positive_float, metavar="SECONDS", help="timeout of each API request (30)"
    )
    return common


def _version(args: argparse.Namespace, session: Session) -> None:
    session.print(f"Client: kmesh {__version__}")
    if args.client:
        return
    try:
        address, skip_verify = session.address()
        index = ApiClient(address, skip_verify=skip_verify, timeout_s=session.timeout_s).get("/")
    except KmeshError as exc:
        # The client version is still worth printing; the reason the server's is missing goes with it.
        session.print(f"Control Plane: unknown ({exc})")
        return
    info = index if isinstance(index, dict) else {}
    product = info.get("product") or info.get("tagline") or "kmesh"
    session.print(f"Control Plane: {product} {info.get('version', 'unknown')}")


def build_parser() -> argparse.ArgumentParser:
    common = _common_flags()
    parser = argparse.ArgumentParser(
        prog="kmeshctl",
        parents=[common],
        description="Manage a kmesh service mesh through its control plane's API.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _cmd_config.register(commands, common)
    _cmd_get.register(commands, common)
    _cmd_inspect.register(commands, common, common_without_config=_common_flags(("--config-file",)))
    _cmd_apply.register(commands, common)
    _cmd_generate.register(commands, common)
    version = commands.add_parser("version", parents=[common], help="print client and control plane versions")
    version.add_argument("--client", action="store_true", help="print only the client's version")
    version.set_defaults(handler=_version)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run kmeshctl with ``argv`` (default ``sys.argv[1:]``); returns the exit status."""
    args = build_parser().parse_args(argv)
    try:
        args.handler(args, Session.from_args(args))
        sys.stdout.flush()
    except KmeshError as exc:
        print(f"Error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # The reader went away (``kmeshctl get dataplanes | head``): not an error worth a message. Point
        # stdout at /dev/null so the interpreter's final flush does not fail again.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    return 0
