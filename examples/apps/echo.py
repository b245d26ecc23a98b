"""A tiny TCP echo app for the demo and the end-to-end tests: for each line it receives it answers one line,
``<name> <zone> <line>``, so a caller sees which instance, in which zone, answered.

    python examples/apps/echo.py --port 8080 --name echo-b-1 --zone zone-b

It listens on ``--host`` (127.0.0.1) only: the sidecar beside it is the only way in from the mesh. It prints
one line once it listens, and exits with status 0 on SIGTERM or SIGINT (Ctrl-C), closing its connections.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import sys
from collections.abc import Sequence


async def serve(host: str, port: int, name: str, zone: str) -> None:
    connections: set[asyncio.StreamWriter] = set()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connections.add(writer)
        try:
            while line := await reader.readline():
                text = line.decode("utf-8", errors="replace").rstrip("\r\n")
                writer.write(f"{name} {zone} {text}\n".encode())
                await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError):
            pass  # the caller went away mid-line: nothing to answer
        finally:
            connections.discard(writer)
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    server = await asyncio.start_server(handle, host, port)
    print(f"echo {name} ({zone}) listening on {host}:{port}", flush=True)
    async with server:
        await stop.wait()
        server.close()
        for writer in list(connections):
            writer.close()
        await server.wait_closed()
    print(f"echo {name} stopped", flush=True)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Answer each line with '<name> <zone> <line>'.")
    parser.add_argument("--port", type=int, required=True, help="port to listen on")
    parser.add_argument("--name", required=True, help="this instance's name, e.g. echo-b-1")
    parser.add_argument("--zone", required=True, help="the zone it runs in, e.g. zone-b")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (127.0.0.1)")
    args = parser.parse_args(argv)
    try:
        asyncio.run(serve(args.host, args.port, args.name, args.zone))
    except OSError as exc:
        print(f"echo {args.name}: cannot listen on {args.host}:{args.port}: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
