"""SNI, SPIFFE and cluster names: always valid DNS within limits, unique per destination, stable."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kmesh.proxyconfig import cluster_name, external_cluster_name, external_sni, sni_for, spiffe_id

DNS_LABEL = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?")

# The characters Kuma allows in resource names (meshes) and in tag names and values (services, tags).
names = st.text(alphabet="abcXYZ019.-_", min_size=1, max_size=253).filter(lambda s: s[0].isalnum())
values = st.text(alphabet="abzAZ09.-_:", min_size=1, max_size=300)
tag_keys = st.text(alphabet="akzAZ09.-_:/", min_size=1, max_size=80).filter(lambda k: k != "kuma.io/service")
subsets = st.dictionaries(tag_keys, values, max_size=5)


def assert_dns_name(name: str) -> None:
    assert len(name.encode()) <= 253
    assert all(DNS_LABEL.fullmatch(label) for label in name.split(".")), name


@given(mesh=names, service=values, tags=subsets)
def test_an_sni_is_always_a_valid_dns_name(mesh: str, service: str, tags: dict[str, str]) -> None:
    sni = sni_for(mesh, service, tags)
    assert_dns_name(sni)
    assert sni.endswith(".kmesh")


@given(mesh=names, name=names)
def test_an_external_sni_is_a_valid_dns_name_in_its_own_namespace(mesh: str, name: str) -> None:
    sni = external_sni(mesh, name)
    assert_dns_name(sni)
    assert sni.endswith(".ext.kmesh")
    assert sni != sni_for(mesh, name)


@given(a=st.tuples(names, values, subsets), b=st.tuples(names, values, subsets))
def test_distinct_destinations_get_distinct_snis(
    a: tuple[str, str, dict[str, str]], b: tuple[str, str, dict[str, str]]
) -> None:
    if a != b:
        assert sni_for(*a) != sni_for(*b)
    else:
        assert sni_for(*a) == sni_for(*b)


@given(mesh=names, service=values, tags=subsets)
def test_the_sni_ignores_tag_order_and_the_service_tag(mesh: str, service: str, tags: dict[str, str]) -> None:
    reordered = dict(reversed(list(tags.items())))
    with_service = {**tags, "kuma.io/service": service}
    assert (
        sni_for(mesh, service, tags)
        == sni_for(mesh, service, reordered)
        == sni_for(mesh, service, with_service)
    )


def test_names_that_sanitize_alike_stay_distinct() -> None:
    # Case, '.', '_' and ':' all become '-' or lower case in the readable labels; the hash keeps them apart.
    variants = ["web_api", "web.api", "web-api", "Web-Api", "web:api"]
    snis = {sni_for("default", v) for v in variants}
    assert len(snis) == len(variants)
    assert {s.split(".")[1] for s in snis} == {"web-api"}


def test_long_names_are_shortened_to_63_byte_labels() -> None:
    sni = sni_for("m" * 253, "s" * 300, {"version": "v" * 300})
    digest, service, mesh, suffix = sni.split(".")
    assert (len(service), len(mesh), suffix) == (63, 63, "kmesh")
    assert len(digest) == 16


def test_the_sni_is_a_wire_contract_between_zones() -> None:
    # Zones running different kmesh versions must compute the same SNI for the same destination: a change
    # here breaks cross-zone traffic during an upgrade, so these values are pinned.
    assert sni_for("default", "backend") == "4lzflduh62hogvog.backend.default.kmesh"
    assert sni_for("default", "backend", {"version": "v2"}) == "xztczxvyg3mdoox2.backend.default.kmesh"
    assert external_sni("default", "httpbin") == "6csh3nyjneate25s.httpbin.default.ext.kmesh"


def test_conflicting_service_tag_is_refused() -> None:
    with pytest.raises(ValueError, match="tags name service 'web'"):
        sni_for("default", "backend", {"kuma.io/service": "web"})
    with pytest.raises(ValueError, match="needs a mesh"):
        sni_for("", "backend")
    with pytest.raises(ValueError, match="needs a service"):
        sni_for("default", "")


def test_spiffe_and_cluster_names() -> None:
    assert spiffe_id("default", "backend") == "spiffe://default/backend"
    assert cluster_name("backend") == cluster_name("backend", {"kuma.io/service": "backend"}) == "backend"
    assert cluster_name("backend", {"zone": "z", "version": "v1"}) == "backend{version=v1,zone=z}"
    assert external_cluster_name("httpbin") == "external/httpbin"
