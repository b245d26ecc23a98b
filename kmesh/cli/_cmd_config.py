"""``kmeshctl config ...``: the control planes kmeshctl knows, as kumactl's ``config`` commands.

- ``config control-planes add --name N --address URL [--overwrite] [--skip-verify]`` checks that the
  address answers ``GET /`` with the API's index document before saving (kumactl does the same: a typo in
  an address should fail now, not at the next command), then makes the new control plane current.
- ``config control-planes list`` marks the current one with ``*`` in the ACTIVE column.
- ``config control-planes switch --name N`` and ``remove --name N``; ``config view`` prints the file.

Rules: the config file is written only after every check has passed, so a failed command leaves it as it was.
"""

from __future__ import annotations

import argparse

from kmesh.cli._client import ApiClient, BadResponse
from kmesh.cli._config import (
    DEFAULT_ADDRESS,
    CliConfig,
    ControlPlane,
    add_control_plane,
    dump_config,
    normalize_address,
    save_config,
    switch_control_plane,
)
from kmesh.cli._session import Session
from kmesh.cli._table import format_table
from kmesh.errors import ConfigError

__all__ = ["register"]


def _add(args: argparse.Namespace, session: Session) -> None:
    address = normalize_address(args.address)
    cp = ControlPlane(name=args.name, address=address, skip_verify=session.skip_verify)
    # A taken name is refused before dialing anything: that answer does not depend on the server.
    config = add_control_plane(session.config(), cp, overwrite=args.overwrite)
    index = ApiClient(address, skip_verify=cp.skip_verify, timeout_s=session.timeout_s).get("/")
    if not isinstance(index, dict):
        raise BadResponse(
            f"the server at {address} answered GET / without the control plane's index document; "
            "is this the address of a kmesh control plane API?"
        )
    save_config(session.config_file, config)
    session.print(f'added Control Plane "{args.name}"')
    session.print(f'switched active Control Plane to "{args.name}"')


def _list(args: argparse.Namespace, session: Session) -> None:
    config = session.config()
    if not config.control_planes:
        session.print(
            f"no control planes configured; commands talk to {DEFAULT_ADDRESS} "
            "(add one with: kmeshctl config control-planes add --name NAME --address URL)"
        )
        return
    rows = [
        ["*" if cp.name == config.current_control_plane else "", cp.name, cp.address]
        for cp in config.control_planes
    ]
    session.write(format_table(["ACTIVE", "NAME", "ADDRESS"], rows))


def _switch(args: argparse.Namespace, session: Session) -> None:
    save_config(session.config_file, switch_control_plane(session.config(), args.name))
    session.print(f'switched active Control Plane to "{args.name}"')


def _remove(args: argparse.Namespace, session: Session) -> None:
    config = session.config()
    remaining = tuple(cp for cp in config.control_planes if cp.name != args.name)
    if len(remaining) == len(config.control_planes):
        raise ConfigError(f'there is no Control Plane with name "{args.name}"')
    current = "" if config.current_control_plane == args.name else config.current_control_plane
    save_config(session.config_file, CliConfig(current_control_plane=current, control_planes=remaining))
    session.print(f'removed Control Plane "{args.name}"')
    if not current:
        session.print(f"no active Control Plane; commands talk to {DEFAULT_ADDRESS} until you switch")


def _view(args: argparse.Namespace, session: Session) -> None:
    session.write(dump_config(session.config()))


def register(
    commands: argparse._SubParsersAction[argparse.ArgumentParser], common: argparse.ArgumentParser
) -> None:
    """Add ``config`` and its subcommands to ``commands``."""
    config = commands.add_parser("config", parents=[common], help="manage kmeshctl's configuration")
    config_cmds = config.add_subparsers(dest="config_command", required=True, metavar="COMMAND")

    view = config_cmds.add_parser("view", parents=[common], help="print the configuration")
    view.set_defaults(handler=_view)

    planes = config_cmds.add_parser(
        "control-planes", parents=[common], help="manage the known control planes"
    )
    plane_cmds = planes.add_subparsers(dest="cp_command", required=True, metavar="COMMAND")

    add = plane_cmds.add_parser("add", parents=[common], help="add a control plane and make it current")
    add.add_argument("--name", required=True, help="a name for the control plane")
    add.add_argument("--address", required=True, help="URL of its API, e.g. http://127.0.0.1:5681")
    add.add_argument("--overwrite", action="store_true", help="replace a control plane of the same name")
    add.set_defaults(handler=_add)

    listing = plane_cmds.add_parser("list", parents=[common], help="list the known control planes")
    listing.set_defaults(handler=_list)

    switch = plane_cmds.add_parser("switch", parents=[common], help="make another control plane current")
    switch.add_argument("--name", required=True)
    switch.set_defaults(handler=_switch)

    remove = plane_cmds.add_parser("remove", parents=[common], help="forget a control plane")
    remove.add_argument("--name", required=True)
    remove.set_defaults(handler=_remove)
