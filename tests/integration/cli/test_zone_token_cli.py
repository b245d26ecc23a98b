"""``kmeshctl generate zone-token`` against a global's API (a real ApiServer whose issuer signs with
kmesh.tokens), a zone CP's API and a real standalone kmesh-cp."""

from __future__ import annotations

import time

import pytest

from kmesh.tokens import KeySet, generate_signing_key, issue_zone_token, verify_zone_token

HOUR = 3600


@pytest.fixture
def signing_key():
    return generate_signing_key()


@pytest.fixture
def global_api(background_api, signing_key):
    async def issue(zone: str, scopes: list[str], valid_for_s: float) -> str:
        return issue_zone_token(
            signing_key, zone=zone, scopes=scopes, valid_for_s=valid_for_s, now=time.time()
        )

    return background_api(mode="global", zone_token_issuer=issue)


def _verify(token: str, key, **kwargs):
    return verify_zone_token(token, KeySet([key]), now=time.time(), **kwargs)


def test_prints_only_the_token(kmeshctl, global_api, signing_key) -> None:
    result = kmeshctl("generate", "zone-token", "--zone", "east", "--cp-address", global_api.url)
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    token, newline, rest = result.stdout.partition("\n")
    assert newline == "\n"
    assert rest == ""
    claims = _verify(token, signing_key, zone="east")
    assert claims.zone == "east"
    assert claims.scopes == frozenset({"cp"})
    # The control plane's default validity: a year.
    assert claims.expires_at - claims.issued_at == pytest.approx(8760 * HOUR, abs=1)


def test_scopes_and_validity(kmeshctl, global_api, signing_key) -> None:
    result = kmeshctl(
        "generate",
        "zone-token",
        "--zone",
        "west",
        "--scope",
        "ingress,egress",
        "--scope",
        "ingress",
        "--valid-for",
        "720h",
        "--cp-address",
        global_api.url,
    )
    assert result.returncode == 0, result.stderr
    claims = _verify(result.stdout.strip(), signing_key, required_scope="ingress", zone="west")
    assert claims.scopes == frozenset({"ingress", "egress"})
    assert claims.expires_at - claims.issued_at == pytest.approx(720 * HOUR, abs=1)


def test_uses_the_configured_control_plane(kmeshctl, global_api, signing_key) -> None:
    added = kmeshctl("config", "control-planes", "add", "--name", "global", "--address", global_api.url)
    assert added.returncode == 0, added.stderr
    result = kmeshctl("generate", "zone-token", "--zone", "east", "--scope", "egress")
    assert result.returncode == 0, result.stderr
    assert _verify(result.stdout.strip(), signing_key, required_scope="egress").zone == "east"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--scope", "admin"], "argument --scope: unknown scope 'admin'; use one of cp, ingress, egress"),
        (["--scope", "cp,"], "argument --scope: unknown scope ''; use one of cp, ingress, egress"),
        (["--valid-for", "0s"], "argument --valid-for: must be at least 1s, got '0s'"),
        (["--valid-for", "soon"], "argument --valid-for: invalid duration 'soon'"),
    ],
)
def test_bad_arguments_are_usage_errors(kmeshctl, global_api, args, message) -> None:
    result = kmeshctl("generate", "zone-token", "--zone", "east", *args, "--cp-address", global_api.url)
    assert result.returncode == 2
    assert result.stdout == ""
    assert message in result.stderr


def test_zone_is_required(kmeshctl, global_api) -> None:
    result = kmeshctl("generate", "zone-token", "--cp-address", global_api.url)
    assert result.returncode == 2
    assert "the following arguments are required: --zone" in result.stderr


def test_invalid_zone_name_is_the_servers_refusal(kmeshctl, global_api) -> None:
    result = kmeshctl("generate", "zone-token", "--zone", "East Side", "--cp-address", global_api.url)
    assert result.returncode == 1
    assert result.stdout == ""
    first, *params = result.stderr.splitlines()
    assert first.startswith(
        'Error: could not generate a zone token for zone "East Side": Invalid zone token request: zone: '
    )
    assert len(params) == 1
    assert params[0].startswith("  * zone: invalid name 'East Side'")


def test_a_zone_control_plane_says_where_to_go(kmeshctl, background_api) -> None:
    zone_api = background_api(mode="zone", zone="east")
    result = kmeshctl("generate", "zone-token", "--zone", "east", "--cp-address", zone_api.url)
    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr == (
        'Error: could not generate a zone token for zone "east": '
        "Not found: zone tokens are issued by the global control plane\n"
    )


def test_a_standalone_kmesh_cp_issues_none(connected) -> None:
    result = connected("generate", "zone-token", "--zone", "east")
    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr == (
        'Error: could not generate a zone token for zone "east": '
        "Not found: zone tokens are issued by the global control plane\n"
    )
