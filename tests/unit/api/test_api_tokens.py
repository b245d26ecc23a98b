"""The zone token request: defaults, normalization, every violation named; and who may get an issuer."""

from __future__ import annotations

import pytest

from kmesh.api import build_app
from kmesh.api._responses import ApiError
from kmesh.api._tokens import parse_zone_token_request
from kmesh.errors import ConfigError
from kmesh.store import MemoryStore


def test_defaults_are_cp_for_a_year() -> None:
    request = parse_zone_token_request({"zone": "east"})
    assert request.zone == "east"
    assert request.scopes == ["cp"]
    assert request.valid_for_s == 8760 * 3600


def test_scopes_keep_order_and_drop_duplicates() -> None:
    request = parse_zone_token_request({"zone": "z", "scope": ["egress", "cp", "egress"], "validFor": "90m"})
    assert request.scopes == ["egress", "cp"]
    assert request.valid_for_s == 90 * 60


def test_kuma_duration_units_are_read() -> None:
    assert parse_zone_token_request({"zone": "z", "validFor": "30d"}).valid_for_s == 30 * 86400


def test_every_violation_is_reported_at_once() -> None:
    with pytest.raises(ApiError) as caught:
        parse_zone_token_request({"zone": "", "scope": ["cp", 1, "root"], "validFor": "0", "ttl": "1h"})
    error = caught.value
    assert error.status == 400
    assert [v.field for v in error.invalid_parameters] == ["ttl", "zone", "scope[1]", "scope[2]", "validFor"]
    assert error.invalid_parameters[0].reason == "unknown field; allowed: zone, scope, validFor"
    assert error.invalid_parameters[1].reason == "must not be empty"
    assert error.invalid_parameters[3].reason == "unknown scope 'root'; use one of cp, ingress, egress"
    assert error.invalid_parameters[4].reason == "must be at least 1s, got '0'"


def test_missing_zone_says_what_it_is_for() -> None:
    with pytest.raises(ApiError) as caught:
        parse_zone_token_request({})
    assert caught.value.details == "zone: required field is missing: the zone the token is for"


async def _issuer(zone: str, scopes: list[str], valid_for_s: float) -> str:
    return f"{zone}:{','.join(scopes)}:{valid_for_s}"


def test_a_zone_control_plane_gets_no_issuer() -> None:
    with pytest.raises(ConfigError, match="does not issue zone tokens"):
        build_app(MemoryStore(), mode="zone", zone="east", instance_id="z", zone_token_issuer=_issuer)


def test_global_and_standalone_take_an_issuer() -> None:
    for mode in ("global", "standalone"):
        app = build_app(MemoryStore(), mode=mode, instance_id="g", zone_token_issuer=_issuer)
        routes = {(r.method, r.resource.canonical) for r in app.router.routes() if r.resource is not None}
        assert ("POST", "/tokens/zone") in routes
