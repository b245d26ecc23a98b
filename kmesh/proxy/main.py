"""``kmesh-proxy``: the data-plane proxy command (sidecar, zone ingress, zone egress).

``kmesh-proxy run --cp-address dps://HOST:5678 --dataplane-file F --dataplane-token-file T
[--proxy-type sidecar|ingress|egress] [--admin-port 9901] [--dataplane-var k=v ...] [--ca-cert-file PEM]``

Rules:
- Bad input (a missing or invalid dataplane file, an unset ``{{ var }}``, an unreadable token, a bad
  address) is one line on stderr naming the problem, exit status 2; never a traceback.
- The proxy runs on uvloop; SIGTERM and SIGINT stop it in order: it leaves the mesh (its control plane
  deregisters it), stops accepting, and exits 0. Connections still open are closed by the exit.
- Logs are structured lines on stderr (``--log-format json|logfmt``); the token is never logged.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
from collections.abc import Sequence

import uvloop

from kmesh._template import parse_var
from kmesh._version import __version__
from kmesh.errors import ConfigError, KmeshError
from kmesh.log import setup_logging
from kmesh.proxy._app import ProxyApp, read_token_file
from kmesh.proxy._dpfile import load_dataplane_file

__all__ = ["build_parser", "main"]

PROG = "kmesh-proxy"
EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
PROXY_TYPES = ("sidecar", "ingress", "egress")
log = logging.getLogger("kmesh.proxy")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG, description="The kmesh data-plane proxy: sidecar, zone ingress or zone egress."
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="{run}")
    run = commands.add_parser("run", help="join the zone control plane and carry traffic")
    run.add_argument(
        "--cp-address", required=True, help="the zone control plane's DP server, dps://HOST:PORT"
    )
    run.add_argument(
        "--dataplane-file",
        required=True,
        help="the proxy's Dataplane (sidecar), ZoneIngress or ZoneEgress in Kuma's Universal YAML",
    )
    run.add_argument(
        "--dataplane-var",
        action="append",
        type=parse_var,
        default=[],
        metavar="NAME=VALUE",
        help="value for a {{ NAME }} placeholder in the dataplane file (repeatable)",
    )
    tokens = run.add_mutually_exclusive_group()
    tokens.add_argument("--dataplane-token-file", help="file holding the dataplane or zone token")
    tokens.add_argument("--dataplane-token", help="the token itself (prefer a file: argv is visible)")
    run.add_argument("--proxy-type", choices=PROXY_TYPES, default="sidecar")
    run.add_argument("--admin-address", default="127.0.0.1", help="admin server address (default 127.0.0.1)")
    run.add_argument("--admin-port", type=int, default=9901, help="admin server port (default 9901)")
    run.add_argument(
        "--ca-cert-file", help="CA bundle (PEM) to verify the DP server with (the zone's dp-ca.pem)"
    )
    run.add_argument("--log-level", choices=("debug", "info", "warning", "error"), default="info")
    run.add_argument("--log-format", choices=("json", "logfmt"), default="json")
    return parser


def _token(args: argparse.Namespace) -> str:
    if args.dataplane_token is not None:
        return str(args.dataplane_token).strip()
    if args.dataplane_token_file is None:
        return ""
    return read_token_file(args.dataplane_token_file, setting="--dataplane-token-file")


def build_app(args: argparse.Namespace) -> ProxyApp:
    """The proxy the arguments describe. Raises ConfigError (KmeshError) for bad input."""
    if not 0 <= args.admin_port <= 65535:
        raise ConfigError(f"--admin-port {args.admin_port}: not a port number")
    doc = load_dataplane_file(args.dataplane_file, dict(args.dataplane_var), proxy_type=args.proxy_type)
    return ProxyApp(
        cp_address=args.cp_address,
        dataplane_doc=doc,
        proxy_type=args.proxy_type,
        token=_token(args),
        ca_file=args.ca_cert_file,
        admin_host=args.admin_address,
        admin_port=args.admin_port,
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``kmesh-proxy`` with ``argv`` (default: ``sys.argv[1:]``) and return its exit status."""
    args = build_parser().parse_args(argv)
    setup_logging(args.log_level, args.log_format)
    try:
        app = build_app(args)
    except KmeshError as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    try:
        return uvloop.run(_serve(app))
    except KeyboardInterrupt:
        return EXIT_OK
    except Exception:
        log.exception("proxy crashed")
        return EXIT_FAILED


async def _serve(app: ProxyApp) -> int:
    loop = asyncio.get_running_loop()
    stopping = asyncio.Event()

    def on_signal(signum: int) -> None:
        log.info("stopping", extra={"signal": signal.Signals(signum).name})
        stopping.set()

    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, on_signal, signum)
    try:
        try:
            await app.start()
        except OSError as exc:
            log.error(f"proxy failed to start: {exc}")
            return EXIT_FAILED
        log.info(
            "proxy started",
            extra={
                "proxy_type": app.runtime.proxy_type,
                "admin_port": app.admin.port if app.admin is not None else None,
            },
        )
        await stopping.wait()
        await app.stop()
        log.info("proxy stopped")
        return EXIT_OK
    finally:
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(signum)
