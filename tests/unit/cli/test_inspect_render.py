"""``inspect dataplanes``, ``inspect zone-ingresses`` and ``inspect dataplane --config`` output for fixed
REST documents, against golden files; ages against a fixed "now"."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime

import msgspec
import pytest
import yaml

from kmesh.cli._cmd_inspect import INSPECTIONS, overview_list
from kmesh.cli._overview import NOT_ADVERTISED, render_proxy_config
from kmesh.cli._render import join_key, render_table
from kmesh.cli.main import build_parser
from kmesh.model import descriptor, parse_resource
from kmesh.proxyconfig import MeshSnapshot, generate_sidecar

NOW = datetime(2024, 5, 1, 12, 0, 0, tzinfo=UTC)
T_5S = "2024-05-01T11:59:55Z"
T_3M = "2024-05-01T11:57:00Z"
T_3H = "2024-05-01T09:00:00Z"
T_4D = "2024-04-27T12:00:00Z"
T_EXPIRES = "2024-05-02T09:00:00+00:00"

DATAPLANE = next(i for i in INSPECTIONS if i.type_name == "Dataplane")
ZONE_INGRESS = next(i for i in INSPECTIONS if i.type_name == "ZoneIngress")


def _dp(name: str, inbound: list, zone: str | None = None) -> dict:
    doc: dict = {"type": "Dataplane", "mesh": "default", "name": name, "creationTime": T_4D}
    if zone is not None:
        doc["labels"] = {"kuma.io/zone": zone, "kuma.io/origin": "zone"}
    doc["networking"] = {"address": "10.0.0.1", "inbound": inbound}
    return doc


def _inbound(service: str, port: int, **extra: object) -> dict:
    return {"port": port, "tags": {"kuma.io/service": service}, **extra}


def _sub(sub_id: str, connected: str, *, disconnected: str | None = None, **extra: object) -> dict:
    sub: dict = {"id": sub_id, "controlPlaneInstanceId": "cp-1", "connectTime": connected, **extra}
    if disconnected is not None:
        sub["disconnectTime"] = disconnected
    return sub


def _status(updated: str | None, sent: object, rejected: object) -> dict:
    status: dict = {"total": {"responsesSent": sent, "responsesRejected": rejected}}
    if updated is not None:
        status["lastUpdateTime"] = updated
    return status


def _dp_insight(name: str, subscriptions: list, mtls: dict | None = None, zone: str | None = None) -> dict:
    doc: dict = {"type": "DataplaneInsight", "mesh": "default", "name": name}
    if zone is not None:
        doc["labels"] = {"kuma.io/zone": zone}
    doc["subscriptions"] = subscriptions
    if mtls is not None:
        doc["mTLS"] = mtls
    return doc


def _version(version: str) -> dict:
    return {"kumaDp": {"version": version}}


DATAPLANES = [
    _dp("web-1", [_inbound("web", 8080, health={"ready": True}), _inbound("web-admin", 8081)]),
    _dp(
        "backend-1",
        [_inbound("backend", 9090, state="Ready"), _inbound("backend-grpc", 9091, state="NotReady")],
    ),
    _dp("db-1", [_inbound("db", 5432)]),
    _dp("down-1", [_inbound("down", 7070, health={"ready": False})]),
    _dp("cache-1", [_inbound("cache", 6379)]),
]
INSIGHTS = [
    # Reconnected 3h ago: counters summed over both connections; times, version from the newest.
    _dp_insight(
        "web-1",
        [
            _sub("a", T_4D, disconnected=T_3H, status=_status(T_3H, 40, 2), version=_version("0.9.0")),
            _sub("b", T_3H, status=_status(T_5S, 7, 1), version=_version("1.0.0")),
        ],
        mtls={
            "certificateExpirationTime": T_EXPIRES,
            "lastCertificateRegeneration": T_3H,
            "certificateRegenerations": 3,
        },
    ),
    # One of two inbounds not ready: Partially degraded; no update sent yet.
    _dp_insight("backend-1", [_sub("c", T_3M, version=_version("1.0.0"))], mtls={}),
    # Disconnected 3m ago; counters as strings, as Kuma's REST API writes uint64.
    _dp_insight("db-1", [_sub("d", T_4D, disconnected=T_3M, status=_status(T_3M, "22", "11"))]),
    # Connected, but its only inbound is not ready: nothing reaches it.
    _dp_insight("down-1", [_sub("e", T_5S)]),
    # cache-1 has no insight: it never connected.
]


def _joined(insights: list[dict]) -> dict:
    return {"DataplaneInsight": {join_key(d): d for d in insights}}


def test_inspect_dataplanes_table(golden) -> None:
    text = render_table(
        descriptor("Dataplane"),
        DATAPLANES,
        now=NOW,
        joined=_joined(INSIGHTS),
        presentation=DATAPLANE.presentation,
    )
    golden("table-inspect-dataplanes", text)
    lines = text.splitlines()
    assert re.split(" {3,}", lines[0])[:4] == ["MESH", "NAME", "TAGS", "STATUS"]
    assert lines[0].endswith("CERT REGENERATIONS   KMESH-DP VERSION")
    status = {line.split()[1]: line for line in lines[1:]}
    assert "Online" in status["web-1"]
    assert "Partially degraded" in status["backend-1"]
    assert "Offline" in status["db-1"]
    assert "Offline" in status["down-1"]
    assert "Offline" in status["cache-1"]
    assert "2024-05-02 09:00:00" in status["web-1"]


def test_inspect_dataplanes_on_a_global_joins_each_zone_with_its_own_insight(golden) -> None:
    docs = [
        _dp("web-1", [_inbound("web", 8080)], zone="east"),
        _dp("web-1", [_inbound("web", 8080)], zone="west"),
    ]
    insights = [
        _dp_insight("web-1", [_sub("e", T_3M, version=_version("1.0.0"))], zone="east"),
        _dp_insight("web-1", [_sub("w", T_4D, disconnected=T_3H, version=_version("0.9.0"))], zone="west"),
    ]
    text = render_table(
        descriptor("Dataplane"), docs, now=NOW, joined=_joined(insights), presentation=DATAPLANE.presentation
    )
    golden("table-inspect-dataplanes-zoned", text)
    header, east, west = text.splitlines()
    assert header.startswith("MESH      NAME    ZONE   TAGS")
    assert "east" in east
    assert "Online" in east
    assert "1.0.0" in east
    assert "west" in west
    assert "Offline" in west
    assert "0.9.0" in west


def test_inspect_dataplanes_overview_list() -> None:
    body = overview_list(DATAPLANE, DATAPLANES, _joined(INSIGHTS)["DataplaneInsight"])
    items = {item["name"]: item for item in body["items"]}
    assert body["total"] == len(DATAPLANES)
    assert items["web-1"]["type"] == "DataplaneOverview"
    assert items["web-1"]["mesh"] == "default"
    assert items["web-1"]["dataplaneInsight"]["mTLS"]["certificateRegenerations"] == 3
    assert items["cache-1"]["dataplaneInsight"] == {}


def _ingress(name: str, zone: str, created: str, networking: dict, services: list | None = None) -> dict:
    doc: dict = {"type": "ZoneIngress", "name": name, "creationTime": created, "zone": zone}
    doc["networking"] = networking
    if services is not None:
        doc["availableServices"] = services
    return doc


def _service(name: str, instances: int, mesh: str = "default") -> dict:
    return {"tags": {"kuma.io/service": name}, "instances": instances, "mesh": mesh}


ZONE_INGRESSES = [
    _ingress(
        "zi-1",
        "zone-1",
        T_3H,
        {"address": "192.168.0.1", "port": 10001, "advertisedAddress": "10.1.0.1", "advertisedPort": 30001},
        [_service("web", 2), _service("backend", 3), _service("web", 1, mesh="other")],
    ),
    _ingress("zi-2", "zone-2", T_5S, {"address": "192.168.0.2", "port": 10001}),
    _ingress(
        "zi-3",
        "zone-1",
        T_3M,
        {"address": "192.168.0.3", "port": 10001, "advertisedAddress": "10.1.0.3", "advertisedPort": 30001},
        [_service("web", 1)],
    ),
]
ZONE_INGRESS_INSIGHTS = [
    {"type": "ZoneIngressInsight", "name": "zi-1", "subscriptions": [_sub("a", T_3H)]},
    {"type": "ZoneIngressInsight", "name": "zi-3", "subscriptions": [_sub("b", T_4D, disconnected=T_3M)]},
]


def test_inspect_zoneingresses_table(golden) -> None:
    joined = {"ZoneIngressInsight": {join_key(d): d for d in ZONE_INGRESS_INSIGHTS}}
    text = render_table(
        descriptor("ZoneIngress"),
        ZONE_INGRESSES,
        now=NOW,
        joined=joined,
        presentation=ZONE_INGRESS.presentation,
    )
    golden("table-inspect-zoneingresses", text)
    header, zi1, zi2, zi3 = text.splitlines()
    assert re.split(" {3,}", header) == [
        "NAME",
        "ZONE",
        "ADDRESS",
        "ADVERTISED",
        "AVAILABLE SERVICES",
        "STATUS",
    ]
    assert "10.1.0.1:30001" in zi1
    assert "3 services, 6 instances" in zi1
    assert zi1.endswith("Online")
    assert NOT_ADVERTISED in zi2
    assert "0 services, 0 instances" in zi2
    assert zi2.endswith("Offline")
    assert "1 service, 1 instance" in zi3
    assert zi3.endswith("Offline")


def _config_body() -> dict:
    """What ``/_config`` answers for web-1 in a mesh without mTLS, with a backend in another zone."""
    mesh = parse_resource({"type": "Mesh", "name": "default"})
    web = parse_resource(
        _dp("web-1", [_inbound("web", 8080)])
        | {
            "networking": {
                "address": "10.0.0.1",
                "inbound": [_inbound("web", 8080)],
                "outbound": [{"port": 10001, "tags": {"kuma.io/service": "backend"}}],
            }
        }
    )
    backend = parse_resource(_dp("backend-1", [_inbound("backend", 9090)]) | {"creationTime": T_3H})
    ingress = parse_resource(
        _ingress(
            "zi-east",
            "east",
            T_3H,
            {"address": "10.1.0.9", "port": 10001, "advertisedAddress": "203.0.113.9", "advertisedPort": 443},
            [_service("backend", 2)],
        )
    )
    snapshot = MeshSnapshot(mesh=mesh, dataplanes=(web, backend), zone_ingresses=(ingress,))
    config = generate_sidecar(snapshot, "west", web)
    return {"config": msgspec.to_builtins(config), "notes": list(config.notes)}


def test_inspect_dataplane_config_is_yaml_then_notes(golden) -> None:
    body = _config_body()
    text = render_proxy_config(body)
    golden("yaml-inspect-dataplane-config", text)
    config_part, notes_part = text.split("# notes:\n")
    assert yaml.safe_load(text) == yaml.safe_load(config_part)  # the notes are comments
    shown = yaml.safe_load(config_part)
    assert "notes" not in shown
    assert shown == {k: v for k, v in json.loads(json.dumps(body["config"])).items() if k != "notes"}
    assert [line.removeprefix("#   - ") for line in notes_part.splitlines()] == body["notes"]
    assert any("east" in note and "mTLS" in note for note in body["notes"])


def test_config_without_notes_and_notes_spanning_lines() -> None:
    assert render_proxy_config({"config": {"name": "x"}, "notes": []}) == "name: x\n# notes:\n#   (none)\n"
    text = render_proxy_config({"config": {"name": "x"}, "notes": ["one\ntwo"]})
    assert text.endswith("# notes:\n#   - one two\n")
    assert yaml.safe_load(text) == {"name": "x"}


@pytest.mark.parametrize(
    ("argv", "show_config", "config_file"),
    [
        (["inspect", "dataplane", "web-1", "--config"], True, None),
        (["inspect", "dataplane", "web-1"], False, None),
        (["--config", "k.yaml", "inspect", "dataplane", "web-1", "--config"], True, "k.yaml"),
        (["inspect", "dataplane", "web-1", "--config", "--config-file", "k.yaml"], True, "k.yaml"),
    ],
)
def test_inspect_dataplane_config_flag_and_the_config_file(argv, show_config, config_file) -> None:
    args = build_parser().parse_args(argv)
    assert args.show_config is show_config
    assert getattr(args, "config", None) == config_file
    assert args.name == "web-1"
    assert args.mesh == "default"


@pytest.mark.parametrize("kind", ["zone-ingresses", "zoneingresses"])
def test_zoneingresses_has_both_spellings(kind) -> None:
    args = build_parser().parse_args(["inspect", kind, "-o", "json"])
    assert args.output == "json"


def test_inspect_dataplanes_takes_a_mesh() -> None:
    assert build_parser().parse_args(["inspect", "dataplanes", "-m", "other"]).mesh == "other"
