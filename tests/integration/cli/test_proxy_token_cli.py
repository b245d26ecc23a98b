"""``kmeshctl generate dataplane-token`` and ``generate zone-proxy-token`` against a real standalone
``kmesh-cp``: the printed token verifies with the keys the control plane keeps (read back through its API),
and its refusals reach the user as one ``Error:`` line."""

from __future__ import annotations

import json
import time
import urllib.request

import pytest

from kmesh.dps import ZONE_PROXY_SIGNING_KEY_PREFIX, verify_zone_proxy_token, zone_proxy_key_set
from kmesh.model import Resource, parse_resource
from kmesh.testing import CpProcess
from kmesh.tokens import KeySet, dataplane_key_set, verify_dataplane_token

HOUR = 3600


def _resource(cp: CpProcess, path: str) -> Resource:
    with urllib.request.urlopen(f"{cp.api_url}{path}", timeout=10) as response:
        return parse_resource(json.loads(response.read()))


def _dataplane_keys(cp: CpProcess) -> KeySet:
    secret = _resource(cp, "/meshes/default/secrets/dataplane-token-signing-key-default-1")
    return dataplane_key_set([secret], mesh="default")


def _token(stdout: str) -> str:
    token, newline, rest = stdout.partition("\n")
    assert newline == "\n"
    assert rest == ""
    return token


def test_dataplane_token_bound_to_name_and_tag(cp: CpProcess, connected) -> None:
    result = connected(
        "generate",
        "dataplane-token",
        "--mesh",
        "default",
        "--name",
        "web-1",
        "--tag",
        "kuma.io/service=web",
        "--tag",
        "version=v2",
        "--valid-for",
        "24h",
    )
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    claims = verify_dataplane_token(
        _token(result.stdout), _dataplane_keys(cp), mesh="default", now=time.time()
    )
    assert claims.name == "web-1"
    assert claims.tags == {"kuma.io/service": "web", "version": "v2"}
    assert claims.proxy_type == "sidecar"
    assert claims.expires_at - claims.issued_at == pytest.approx(24 * HOUR, abs=1)


def test_dataplane_token_defaults(cp: CpProcess, connected) -> None:
    result = connected("generate", "dataplane-token")
    assert result.returncode == 0, result.stderr
    claims = verify_dataplane_token(
        _token(result.stdout), _dataplane_keys(cp), mesh="default", now=time.time()
    )
    assert claims.name is None
    assert claims.tags == {}
    assert claims.expires_at - claims.issued_at == pytest.approx(8760 * HOUR, abs=1)


def test_dataplane_token_for_a_missing_mesh(connected) -> None:
    result = connected("generate", "dataplane-token", "--mesh", "payments")
    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr.startswith(
        "Error: could not generate a dataplane token for mesh \"payments\": Not found: mesh 'payments' "
        "does not exist"
    )


def test_several_values_of_one_tag_are_refused_naming_the_tag(connected) -> None:
    result = connected("generate", "dataplane-token", "--tag", "kuma.io/service=web,web-api")
    assert result.returncode == 1
    assert result.stdout == ""
    first, *params = result.stderr.splitlines()
    assert first.startswith('Error: could not generate a dataplane token for mesh "default": Invalid')
    assert len(params) == 1
    assert params[0].startswith('  * tags["kuma.io/service"]: a kmesh token binds one value per tag, got 2')


@pytest.mark.parametrize("tag", ["kuma.io/service", "=web", "kuma.io/service=", "a=b,"])
def test_a_malformed_tag_is_a_usage_error(connected, tag: str) -> None:
    result = connected("generate", "dataplane-token", "--tag", tag)
    assert result.returncode == 2
    assert result.stdout == ""
    assert "argument --tag: expected NAME=VALUE" in result.stderr


def test_zone_proxy_token(cp: CpProcess, connected) -> None:
    result = connected(
        "generate", "zone-proxy-token", "--type", "ingress", "--name", "ingress-1", "--valid-for", "1h"
    )
    assert result.returncode == 0, result.stderr
    secret = _resource(cp, f"/global-secrets/{ZONE_PROXY_SIGNING_KEY_PREFIX}-1")
    claims = verify_zone_proxy_token(_token(result.stdout), zone_proxy_key_set([secret]), now=time.time())
    assert (claims.proxy_type, claims.name) == ("ingress", "ingress-1")
    assert claims.expires_at - claims.issued_at == pytest.approx(HOUR, abs=1)


def test_zone_proxy_token_needs_a_type(connected) -> None:
    result = connected("generate", "zone-proxy-token")
    assert result.returncode == 2
    assert "the following arguments are required: --type" in result.stderr
    result = connected("generate", "zone-proxy-token", "--type", "sidecar")
    assert result.returncode == 2
    assert "argument --type: invalid choice: 'sidecar'" in result.stderr


def test_zone_proxy_help_says_the_zone_issues_them(kmeshctl) -> None:
    result = kmeshctl("generate", "zone-proxy-token", "--help")
    assert result.returncode == 0
    text = " ".join(result.stdout.split())
    assert "issued by the zone control plane" in text
    assert "the zone-token signing key never leaves the global" in text


def test_a_zone_control_plane_issues_no_dataplane_tokens(kmeshctl, background_api) -> None:
    zone_api = background_api(mode="zone", zone="east")
    result = kmeshctl("generate", "dataplane-token", "--cp-address", zone_api.url)
    assert result.returncode == 1
    assert result.stderr == (
        'Error: could not generate a dataplane token for mesh "default": Not found: dataplane tokens are '
        "issued by the global control plane (or a standalone one); a zone control plane only verifies them\n"
    )
