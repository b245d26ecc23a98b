"""``POST /tokens/zone``: a global with an issuer signs zone tokens (here with kmesh.tokens); every other
control plane answers 404 with the reason; a bad request names each field at fault."""

from __future__ import annotations

import logging
import time
from typing import Any

import orjson
import pytest

from kmesh.errors import StoreUnavailable
from kmesh.tokens import KeySet, generate_signing_key, issue_zone_token, verify_zone_token

HOUR = 3600.0


class Issuer:
    """A real issuer: signs with a fresh key, and records what the API asked it for."""

    def __init__(self) -> None:
        self.key = generate_signing_key()
        self.calls: list[tuple[str, list[str], float]] = []

    async def __call__(self, zone: str, scopes: list[str], valid_for_s: float) -> str:
        self.calls.append((zone, scopes, valid_for_s))
        return issue_zone_token(self.key, zone=zone, scopes=scopes, valid_for_s=valid_for_s, now=time.time())


async def _post(api, body: Any) -> tuple[int, str, bytes]:
    data = body if isinstance(body, bytes) else orjson.dumps(body)
    headers = {"Content-Type": "application/json"}
    async with api.session.post(api.url + "/tokens/zone", data=data, headers=headers) as response:
        return response.status, response.content_type, await response.read()


@pytest.fixture
async def issuer_api(start_api):
    issuer = Issuer()
    api = await start_api(mode="global", zone_token_issuer=issuer)
    return api, issuer


async def test_defaults_give_a_cp_token_valid_for_a_year(issuer_api) -> None:
    api, issuer = issuer_api
    status, content_type, raw = await _post(api, {"zone": "east"})
    assert status == 200
    assert content_type == "text/plain"
    token = raw.decode()
    claims = verify_zone_token(token, KeySet([issuer.key]), now=time.time(), zone="east")
    assert claims.zone == "east"
    assert claims.scopes == frozenset({"cp"})
    assert claims.expires_at - claims.issued_at == pytest.approx(8760 * HOUR, abs=1)
    assert issuer.calls == [("east", ["cp"], 8760 * HOUR)]


async def test_scope_and_valid_for_reach_the_issuer(issuer_api) -> None:
    api, issuer = issuer_api
    body = {"zone": "west", "scope": ["ingress", "ingress", "egress"], "validFor": "720h"}
    status, _, raw = await _post(api, body)
    assert status == 200, raw
    # Duplicates are dropped, the order kept.
    assert issuer.calls == [("west", ["ingress", "egress"], 720 * HOUR)]
    claims = verify_zone_token(raw.decode(), KeySet([issuer.key]), now=time.time(), required_scope="egress")
    assert claims.scopes == frozenset({"ingress", "egress"})
    assert claims.expires_at - claims.issued_at == pytest.approx(720 * HOUR, abs=1)


async def test_yaml_body_is_accepted(issuer_api) -> None:
    api, issuer = issuer_api
    headers = {"Content-Type": "application/yaml"}
    data = b"zone: east\nscope: [cp]\nvalidFor: 1h\n"
    async with api.session.post(api.url + "/tokens/zone", data=data, headers=headers) as response:
        assert response.status == 200
    assert issuer.calls == [("east", ["cp"], HOUR)]


@pytest.mark.parametrize(
    ("body", "fields"),
    [
        ({}, ["zone"]),
        ({"zone": "Not A Name"}, ["zone"]),
        ({"zone": 7}, ["zone"]),
        ({"zone": "east", "scope": []}, ["scope"]),
        ({"zone": "east", "scope": "cp"}, ["scope"]),
        ({"zone": "east", "scope": ["cp", "admin"]}, ["scope[1]"]),
        ({"zone": "east", "validFor": "0s"}, ["validFor"]),
        ({"zone": "east", "validFor": "500ms"}, ["validFor"]),
        ({"zone": "east", "validFor": "-1h"}, ["validFor"]),
        ({"zone": "east", "validFor": "forever"}, ["validFor"]),
        ({"zone": "east", "validFor": 3600}, ["validFor"]),
        ({"zone": "east", "valid_for": "1h"}, ["valid_for"]),
        ({"scope": ["root"], "validFor": "x"}, ["zone", "scope[0]", "validFor"]),
    ],
)
async def test_bad_request_names_every_field(issuer_api, body: dict[str, Any], fields: list[str]) -> None:
    api, issuer = issuer_api
    status, content_type, raw = await _post(api, body)
    assert status == 400
    assert content_type == "application/json"
    answer = orjson.loads(raw)
    assert sorted(p["field"] for p in answer["invalid_parameters"]) == sorted(fields)
    assert answer["details"] == "; ".join(
        f"{p['field']}: {p['reason']}" for p in answer["invalid_parameters"]
    )
    assert issuer.calls == []


@pytest.mark.parametrize("raw", [b"", b"[]", b"{"])
async def test_body_that_is_not_an_object(issuer_api, raw: bytes) -> None:
    api, issuer = issuer_api
    status, _, answer = await _post(api, raw)
    assert status == 400
    assert [p["field"] for p in orjson.loads(answer)["invalid_parameters"]] == ["body"]
    assert issuer.calls == []


@pytest.mark.parametrize(("mode", "zone"), [("zone", "east"), ("standalone", None), ("global", None)])
async def test_without_an_issuer_the_route_says_where_tokens_come_from(start_api, mode, zone) -> None:
    api = await start_api(mode=mode, zone=zone)
    status, body = await api.call("POST", "/tokens/zone", json={"zone": "east"})
    assert status == 404
    assert body == {"title": "Not found", "details": "zone tokens are issued by the global control plane"}


async def test_issuer_errors_are_mapped_like_any_other(start_api) -> None:
    async def unavailable(zone: str, scopes: list[str], valid_for_s: float) -> str:
        raise StoreUnavailable("the signing key could not be read")

    api = await start_api(mode="global", zone_token_issuer=unavailable)
    status, body = await api.call("POST", "/tokens/zone", json={"zone": "east"})
    assert status == 503
    assert body["title"] == "Store unavailable"


async def test_other_methods_are_refused(issuer_api) -> None:
    api, _ = issuer_api
    status, body = await api.get("/tokens/zone")
    assert status == 405
    assert "POST" in body["details"]


async def test_the_token_is_never_logged(issuer_api, caplog) -> None:
    api, _ = issuer_api
    with caplog.at_level(logging.DEBUG, logger="kmesh"):
        status, _, raw = await _post(api, {"zone": "east"})
    assert status == 200
    assert any(getattr(r, "path", None) == "/tokens/zone" for r in caplog.records)
    token = raw.decode()
    for record in caplog.records:
        assert token not in record.getMessage()
        assert all(token not in str(value) for value in vars(record).values())
