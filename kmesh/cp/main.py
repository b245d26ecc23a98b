"""``kmesh-cp``: the command-line edge of the control plane.

This is where the process meets the outside world: it parses flags, reads the config file and
``os.environ``, sets up logging, runs a ``ControlPlane`` on uvloop and turns SIGTERM/SIGINT into a clean stop.
Everything it decides is delegated to ``kmesh.cp.config`` (pure) and ``kmesh.cp.app`` (wiring).

Exit status: 0 after a clean stop (or ``--print-config``); 1 when the control plane cannot start or stop
(a port in use, an unwritable store); 2 for bad settings (flags, file, environment). Bad input never
shows a traceback: one line names what was wrong.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import secrets
import signal
import socket
import sys
from collections.abc import Sequence

import uvloop

from kmesh._version import __version__
from kmesh.cp.app import ControlPlane, StartupError
from kmesh.cp.config import ENV_VARS, FLAGS, CpConfig, config_to_yaml, load_config
from kmesh.errors import ConfigError, KmeshError
from kmesh.log import setup_logging

__all__ = ["build_parser", "main", "read_config"]

PROG = "kmesh-cp"
EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2

log = logging.getLogger("kmesh.cp")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Run a kmesh control plane (standalone by default).",
        epilog="Every setting a.b_c can also be set by the environment variable KMESH_A_B_C: "
        + ", ".join(sorted(ENV_VARS))
        + ". Precedence: defaults < --config file < environment < flags. "
        "KMESH_DATA_DIR is where the SQLite store lives by default (else ~/.local/share/kmesh).",
    )
    parser.add_argument("-c", "--config", metavar="FILE", help="YAML config file")
    parser.add_argument(
        "--print-config", action="store_true", help="print the effective config as YAML and exit"
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    for flag in FLAGS:
        # Values stay strings here: load_config checks them against the setting's type, with one message
        # format for flags, variables and file keys alike.
        if flag.switch:
            parser.add_argument(
                flag.flag, dest=_dest(flag.setting), action="store_const", const="true", help=flag.help
            )
            continue
        metavar = flag.setting.rsplit(".", 1)[-1].upper()
        parser.add_argument(flag.flag, dest=_dest(flag.setting), metavar=metavar, help=flag.help)
    return parser


def read_config(args: argparse.Namespace, environ: dict[str, str] | None = None) -> CpConfig:
    """The effective config from parsed ``args``, the config file they name and ``environ``.

    Raises ConfigError (also for an unreadable file).
    """
    env = dict(os.environ) if environ is None else environ
    file_text: str | None = None
    file_name = "config file"
    if args.config is not None:
        file_name = args.config
        try:
            with open(args.config, encoding="utf-8") as f:
                file_text = f.read()
        except OSError as exc:
            raise ConfigError(f"config file {args.config}: {exc.strerror or exc}") from None
        except UnicodeDecodeError:
            raise ConfigError(f"config file {args.config}: not UTF-8 text") from None
    flags = {
        flag.setting: value for flag in FLAGS if (value := getattr(args, _dest(flag.setting))) is not None
    }
    return load_config(
        file_text=file_text,
        file_name=file_name,
        env=env,
        flags=flags,
        hostname=socket.gethostname(),
        pid=os.getpid(),
        nonce=secrets.token_hex(2),
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``kmesh-cp`` with ``argv`` (default: ``sys.argv[1:]``) and return its exit status."""
    args = build_parser().parse_args(argv)
    try:
        config = read_config(args)
    except ConfigError as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    if args.print_config:
        sys.stdout.write(config_to_yaml(config))
        return EXIT_OK
    setup_logging(config.log.level, config.log.format)
    try:
        return uvloop.run(_serve(config))
    except KeyboardInterrupt:
        # Ctrl-C before the signal handlers were installed: nothing was started, so nothing to stop.
        return EXIT_OK
    except Exception:
        # A bug, not bad input: keep the traceback, but inside one structured log record.
        log.exception("control plane crashed")
        return EXIT_FAILED


async def _serve(config: CpConfig) -> int:
    loop = asyncio.get_running_loop()
    stopping = asyncio.Event()

    def on_signal(signum: int) -> None:
        if stopping.is_set():
            log.info("already stopping", extra={"signal": signal.Signals(signum).name})
            return
        log.info("stopping", extra={"signal": signal.Signals(signum).name})
        stopping.set()

    # Installed before start, so a signal during start still ends in an orderly stop.
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, on_signal, signum)
    cp = ControlPlane(config)
    try:
        try:
            await cp.start()
        except (StartupError, ConfigError) as exc:
            log.error(f"control plane failed to start: {exc}")
            return EXIT_FAILED
        await stopping.wait()
        try:
            await asyncio.wait_for(cp.stop(), timeout=config.shutdown_timeout_s)
        except TimeoutError:
            log.error(
                "control plane did not stop in time",
                extra={"shutdown_timeout_s": config.shutdown_timeout_s},
            )
            return EXIT_FAILED
        except KmeshError as exc:
            # The store could not be closed cleanly (a disk error on the final checkpoint).
            log.error(f"control plane did not stop cleanly: {exc}")
            return EXIT_FAILED
        return EXIT_OK
    finally:
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(signum)


def _dest(setting: str) -> str:
    return "set_" + setting.replace(".", "__")
