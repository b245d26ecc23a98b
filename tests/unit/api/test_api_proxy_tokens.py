"""The dataplane and zone-proxy token requests: Kuma's field names and shapes, every violation named; and
which control plane may be given which issuer."""

from __future__ import annotations

from typing import Any

import pytest

from kmesh.api import build_app
from kmesh.api._proxy_tokens import parse_dataplane_token_request, parse_zone_proxy_token_request
from kmesh.api._responses import ApiError
from kmesh.errors import ConfigError
from kmesh.store import MemoryStore


async def _issuer(request: object) -> str:
    return "token"


def test_kuma_request_with_tag_lists() -> None:
    request = parse_dataplane_token_request(
        {
            "mesh": "default",
            "name": "web-1",
            "tags": {"kuma.io/service": ["web"], "version": ["v1", "v1"]},
            "type": "dataplane",
            "validFor": "24h",
        }
    )
    assert request.mesh == "default"
    assert request.name == "web-1"
    assert request.tags == {"kuma.io/service": "web", "version": "v1"}
    assert request.valid_for_s == 24 * 3600


def test_dataplane_defaults_and_plain_tag_values() -> None:
    request = parse_dataplane_token_request({"mesh": "m1", "tags": {"kuma.io/service": "web"}})
    assert request.name is None
    assert request.tags == {"kuma.io/service": "web"}
    assert request.valid_for_s == 8760 * 3600


@pytest.mark.parametrize(
    ("body", "fields"),
    [
        ({}, ["mesh"]),
        ({"mesh": "Not A Mesh"}, ["mesh"]),
        ({"mesh": "m", "name": 3}, ["name"]),
        ({"mesh": "m", "tags": ["kuma.io/service=web"]}, ["tags"]),
        ({"mesh": "m", "tags": {"kuma.io/service": ["web", "api"]}}, ['tags["kuma.io/service"]']),
        ({"mesh": "m", "tags": {"kuma.io/service": []}}, ['tags["kuma.io/service"]']),
        ({"mesh": "m", "tags": {"kuma.io/service": [1]}}, ['tags["kuma.io/service"]']),
        ({"mesh": "m", "tags": {"kuma.io/service": ["a b"]}}, ['tags["kuma.io/service"]']),
        ({"mesh": "m", "type": "ingress"}, ["type"]),
        ({"mesh": "m", "type": "gateway"}, ["type"]),
        ({"mesh": "m", "validFor": "0s"}, ["validFor"]),
        ({"mesh": "m", "valid_for": "1h"}, ["valid_for"]),
        ({"name": "x y", "validFor": 5}, ["mesh", "name", "validFor"]),
    ],
)
def test_bad_dataplane_requests_name_every_field(body: dict[str, Any], fields: list[str]) -> None:
    with pytest.raises(ApiError) as caught:
        parse_dataplane_token_request(body)
    assert caught.value.status == 400
    assert sorted(v.field for v in caught.value.invalid_parameters) == sorted(fields)


def test_an_ingress_type_points_to_the_zone_proxy_endpoint() -> None:
    with pytest.raises(ApiError) as caught:
        parse_dataplane_token_request({"mesh": "m", "type": "egress"})
    assert "POST /tokens/zone-proxy" in caught.value.details
    assert "kmeshctl generate zone-proxy-token --type egress" in caught.value.details


def test_zone_proxy_request() -> None:
    request = parse_zone_proxy_token_request({"type": "egress", "name": "egress-1", "validFor": "1h"})
    assert (request.proxy_type, request.name, request.valid_for_s) == ("egress", "egress-1", 3600)
    assert parse_zone_proxy_token_request({"type": "ingress"}).valid_for_s == 8760 * 3600


@pytest.mark.parametrize(
    ("body", "fields"),
    [
        ({}, ["type"]),
        ({"type": "sidecar"}, ["type"]),
        ({"type": "ingress", "name": ""}, ["name"]),
        ({"type": "ingress", "zone": "east"}, ["zone"]),
        ({"type": "ingress", "validFor": "later"}, ["validFor"]),
    ],
)
def test_bad_zone_proxy_requests_name_every_field(body: dict[str, Any], fields: list[str]) -> None:
    with pytest.raises(ApiError) as caught:
        parse_zone_proxy_token_request(body)
    assert sorted(v.field for v in caught.value.invalid_parameters) == sorted(fields)


def test_a_zone_gets_no_dataplane_issuer_and_the_global_no_zone_proxy_issuer() -> None:
    with pytest.raises(ConfigError, match="does not issue dataplane tokens"):
        build_app(MemoryStore(), mode="zone", zone="east", instance_id="z", dataplane_token_issuer=_issuer)
    with pytest.raises(ConfigError, match="does not issue zone-proxy tokens"):
        build_app(MemoryStore(), mode="global", instance_id="g", zone_proxy_token_issuer=_issuer)
    app = build_app(
        MemoryStore(),
        mode="standalone",
        instance_id="s",
        dataplane_token_issuer=_issuer,
        zone_proxy_token_issuer=_issuer,
    )
    routes = {(r.method, r.resource.canonical) for r in app.router.routes() if r.resource is not None}
    assert {("POST", "/tokens/dataplane"), ("POST", "/tokens/zone-proxy")} <= routes
