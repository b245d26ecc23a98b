"""kmeshctl against a real standalone ``kmesh-cp``: ``inspect dataplanes``, ``inspect zone-ingresses`` and
``inspect dataplane NAME --config`` on resources applied with ``kmeshctl apply``.

The mesh has no mTLS, and another zone's ingress offers ``backend``: the config of web-1 has its local
backend only, and its notes say that the other zone was left out because cross-zone traffic needs mTLS.
"""

from __future__ import annotations

import json
import re

import yaml

from kmesh.cli._overview import NOT_ADVERTISED

RESOURCES = """\
type: Mesh
name: default
---
type: Dataplane
mesh: default
name: web-1
networking:
  address: 10.0.0.1
  inbound:
    - port: 8080
      tags: {kuma.io/service: web, kuma.io/protocol: http}
  outbound:
    - port: 10001
      tags: {kuma.io/service: backend}
---
type: Dataplane
mesh: default
name: backend-1
networking:
  address: 10.0.0.2
  inbound:
    - port: 9090
      tags: {kuma.io/service: backend}
---
type: ZoneIngress
name: ingress-local
networking:
  address: 10.0.0.9
  port: 10001
---
type: ZoneIngress
name: ingress-east
labels: {kuma.io/zone: east}
zone: east
networking:
  address: 10.1.0.9
  port: 10001
  advertisedAddress: 203.0.113.9
  advertisedPort: 443
availableServices:
  - mesh: default
    tags: {kuma.io/service: backend}
    instances: 2
"""


def _apply(kmeshctl) -> None:
    result = kmeshctl("apply", "-f", "-", stdin=RESOURCES)
    assert result.returncode == 0, result.stderr


def test_inspect_dataplane_config_shows_inbound_outbound_and_why_no_remote_endpoints(connected) -> None:
    _apply(connected)
    result = connected("inspect", "dataplane", "web-1", "--config")
    assert result.returncode == 0, result.stderr
    config_text, notes_text = result.stdout.split("# notes:\n")
    config = yaml.safe_load(result.stdout)
    assert config == yaml.safe_load(config_text)
    assert (config["name"], config["mesh"], config["zone"], config["proxy_type"]) == (
        "web-1",
        "default",
        "default",
        "sidecar",
    )
    assert [(i["port"], i["service"], i["protocol"]) for i in config["inbounds"]] == [(8080, "web", "http")]
    assert [(o["port"], o["service"]) for o in config["outbounds"]] == [(10001, "backend")]
    (cluster,) = config["clusters"]
    assert [(e["address"], e["port"], e["via"]) for e in cluster["endpoints"]] == [
        ("10.0.0.2", 9090, "local")
    ]
    notes = [line.removeprefix("#   - ") for line in notes_text.splitlines()]
    assert any(
        "zone(s) east left out" in n and "mesh default has no enabled mTLS backend" in n for n in notes
    )

    as_json = connected("inspect", "dataplane", "web-1", "--config", "-o", "json")
    assert as_json.returncode == 0, as_json.stderr
    body = json.loads(as_json.stdout)
    assert body["notes"] == notes
    assert body["config"]["version"] == config["version"]


def test_inspect_dataplanes_lists_them_with_their_status(connected) -> None:
    _apply(connected)
    result = connected("inspect", "dataplanes")
    assert result.returncode == 0, result.stderr
    header, *rows = result.stdout.splitlines()
    assert re.split(" {3,}", header) == [
        "MESH",
        "NAME",
        "TAGS",
        "STATUS",
        "LAST CONNECTED AGO",
        "LAST UPDATED AGO",
        "TOTAL UPDATES",
        "TOTAL ERRORS",
        "CERT REGENERATED AGO",
        "CERT EXPIRATION",
        "CERT REGENERATIONS",
        "KMESH-DP VERSION",
    ]
    cells = {re.split(" {3,}", row)[1]: re.split(" {3,}", row) for row in rows}
    assert set(cells) == {"web-1", "backend-1"}
    # No proxy ever connected: Offline, and no insight to read the rest from.
    assert cells["web-1"][2:] == ["kuma.io/protocol=http kuma.io/service=web", "Offline", *["-"] * 8]

    one = connected("inspect", "dataplane", "backend-1", "-o", "yaml")
    assert one.returncode == 0, one.stderr
    overview = yaml.safe_load(one.stdout)
    assert overview["type"] == "DataplaneOverview"
    assert overview["dataplane"]["networking"]["address"] == "10.0.0.2"
    assert overview["dataplaneInsight"] == {}


def test_inspect_zoneingresses_flags_the_one_other_zones_cannot_reach(connected) -> None:
    _apply(connected)
    for kind in ("zoneingresses", "zone-ingresses"):
        result = connected("inspect", kind)
        assert result.returncode == 0, result.stderr
        header, *rows = result.stdout.splitlines()
        assert re.split(" {3,}", header) == [
            "NAME",
            "ZONE",
            "ADDRESS",
            "ADVERTISED",
            "AVAILABLE SERVICES",
            "STATUS",
        ]
        cells = {re.split(" {3,}", row)[0]: re.split(" {3,}", row) for row in rows}
        assert cells["ingress-east"][1:] == [
            "east",
            "10.1.0.9:10001",
            "203.0.113.9:443",
            "1 service, 2 instances",
            "Offline",
        ]
        local = cells["ingress-local"]
        assert local[1:4] == ["-", "10.0.0.9:10001", NOT_ADVERTISED]
        # The zone CP keeps a local ingress's availableServices current, so only the shape is fixed here.
        assert re.fullmatch(r"\d+ services?, \d+ instances?", local[4])


def test_missing_dataplane_and_missing_mesh_are_errors(connected) -> None:
    _apply(connected)
    missing = connected("inspect", "dataplane", "nope-1", "--config")
    assert missing.returncode == 1
    assert "Dataplane 'nope-1' not found in mesh 'default'" in missing.stderr
    assert missing.stdout == ""
    other_mesh = connected("inspect", "dataplane", "web-1", "--config", "-m", "other")
    assert other_mesh.returncode == 1
    assert "mesh 'other' not found" in other_mesh.stderr
