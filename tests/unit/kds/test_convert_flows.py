"""Which types KDS carries and in which order comes from the descriptor table alone."""

from __future__ import annotations

import ast
from pathlib import Path

import kmesh.kds._convert as convert
from kmesh.kds import Role
from kmesh.kds._convert import (
    carried,
    global_to_zones,
    rank,
    received_by,
    sent_by,
    to_other_zones,
    zone_to_global,
)
from kmesh.model import KdsDirection, all_descriptors, descriptor


def test_directions_are_read_from_the_descriptor_table() -> None:
    table = list(all_descriptors())
    by_name = {d.name for d in table if d.kds is KdsDirection.NONE and d.kds_name_prefixes}
    assert by_name == {"GlobalSecret"}
    assert (
        set(global_to_zones()) == {d.name for d in table if d.kds is KdsDirection.GLOBAL_TO_ZONES} | by_name
    )
    assert set(zone_to_global()) == {d.name for d in table if d.kds is KdsDirection.ZONE_TO_GLOBAL}
    assert set(to_other_zones()) == {d.name for d in table if d.kds_to_other_zones}
    # Types that stay where they are made never flow: Zone, ZoneInsight; GlobalSecret only by name.
    flowing = set(sent_by(Role.GLOBAL)) | set(sent_by(Role.ZONE))
    assert {d.name for d in table if d.kds is KdsDirection.NONE} & flowing == by_name
    assert "GlobalSecret" not in sent_by(Role.ZONE)


def test_only_the_descriptor_s_name_prefixes_of_a_none_type_are_carried() -> None:
    assert descriptor("GlobalSecret").kds_name_prefixes == (
        "zone-token-signing-public-key-",
        "zone-token-revocations",
    )
    assert carried("GlobalSecret", "zone-token-signing-public-key-1")
    assert carried("GlobalSecret", "zone-token-revocations")
    for name in (
        "zone-token-signing-key-1",
        "kds-server-tls",
        "dp-server-tls",
        "zone-proxy-token-signing-key-1",
    ):
        assert not carried("GlobalSecret", name)
    # Types that flow whole are carried whatever their names.
    assert carried("Mesh", "zone-token-signing-key-1")
    assert carried("Secret", "anything")


def test_relayed_types_flow_both_ways_on_one_connection() -> None:
    assert to_other_zones() == ("ZoneIngress",)
    for type_ in to_other_zones():
        assert descriptor(type_).kds is KdsDirection.ZONE_TO_GLOBAL
        assert type_ in sent_by(Role.ZONE)
        assert type_ in sent_by(Role.GLOBAL)
        assert type_ in received_by(Role.ZONE)


def test_each_side_receives_what_the_other_sends() -> None:
    assert received_by(Role.ZONE) == sent_by(Role.GLOBAL)
    assert received_by(Role.GLOBAL) == sent_by(Role.ZONE)


def test_sync_order_puts_a_mesh_first_and_each_insight_after_its_subject() -> None:
    for role in Role:
        order = sent_by(role)
        assert list(order) == sorted(order, key=rank)
    assert sent_by(Role.GLOBAL)[0] == "Mesh"
    for subject in ("Dataplane", "ZoneIngress", "ZoneEgress"):
        assert rank(subject) < rank(f"{subject}Insight")
    for type_ in global_to_zones():
        if descriptor(type_).mesh_scoped:
            assert rank("Mesh") < rank(type_)


def test_the_conversion_module_does_no_io() -> None:
    tree = ast.parse(Path(convert.__file__).read_text(encoding="utf-8"))
    imported = {
        alias.name.split(".")[0]
        for node in ast.walk(tree)
        if isinstance(node, ast.Import)
        for alias in node.names
    } | {
        node.module.split(".")[0]
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom) and node.module
    }
    assert not imported & {"asyncio", "socket", "ssl", "time"}
