"""An asyncio app with its sidecar inside it: ``kmesh.Sidecar`` joins the mesh from this process (no
``kmesh-proxy`` beside it, no extra hop) and opens mTLS streams to ``echo`` with the same load balancing
and failover a sidecar's outbound has. See README.md in this folder.

    python examples/embedded/client.py --cp-address dps://127.0.0.1:5678 \
        --dataplane-file examples/multizone/caller-dataplane.yaml --var mesh=default --var name=embedded-1 \
        --var service=embedded --var port=20001 --var service_port=20002 \
        --var outbound_service=echo --var outbound_port=20003 \
        --token-file embedded.token --ca-file zone-a/dp-ca.pem

It makes ``--calls`` calls, one connection and one line each, prints every answer, and exits with status 0
when every call was answered, 1 otherwise.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Sequence

from kmesh import Sidecar
from kmesh.errors import KmeshError

ANSWER_TIMEOUT_S = 10.0


def variable(text: str) -> tuple[str, str]:
    name, sep, value = text.partition("=")
    if not sep or not name:
        raise argparse.ArgumentTypeError(f"{text!r} is not NAME=VALUE")
    return name, value


async def call(sidecar: Sidecar, service: str, line: str) -> str | None:
    """One connection to ``service``, one line out, the answer back (None when it closed without one)."""
    reader, writer = await sidecar.open_connection(service)
    try:
        writer.write(f"{line}\n".encode())
        await writer.drain()
        answer = await asyncio.wait_for(reader.readline(), ANSWER_TIMEOUT_S)
        return answer.decode().rstrip("\n") or None
    finally:
        writer.close()


async def run(args: argparse.Namespace) -> int:
    answered = 0
    async with Sidecar(
        args.cp_address,
        dataplane=args.dataplane_file,
        token_file=args.token_file,
        ca_file=args.ca_file,
        variables=dict(args.var),
    ) as sidecar:
        for i in range(1, args.calls + 1):
            try:
                answer = await call(sidecar, args.service, f"hello {i}")
            except (OSError, TimeoutError) as exc:
                print(f"call {i}: failed: {exc}", flush=True)
                continue
            if answer is None:
                print(f"call {i}: closed without an answer", flush=True)
            else:
                answered += 1
                print(f"call {i}: {answer}", flush=True)
    return 0 if answered == args.calls else 1


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Call a mesh service through an embedded kmesh sidecar.")
    parser.add_argument("--cp-address", required=True, help="the zone control plane, dps://HOST:5678")
    parser.add_argument("--dataplane-file", required=True, help="this app's Dataplane (YAML)")
    parser.add_argument(
        "--var", type=variable, action="append", default=[], help="NAME=VALUE for the file's {{ NAME }}"
    )
    parser.add_argument("--token-file", required=True, help="a dataplane token for this app")
    parser.add_argument("--ca-file", help="the zone control plane's dp-ca.pem")
    parser.add_argument("--service", default="echo", help="the service to call (one of the outbounds)")
    parser.add_argument("--calls", type=int, default=3, help="how many calls to make (3)")
    args = parser.parse_args(argv)
    try:
        return asyncio.run(run(args))
    except KmeshError as exc:  # could not join: the reason says what to fix
        print(f"client: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
