"""Dialling a DP server: the addresses a proxy accepts, and the service its CSRs name."""

from __future__ import annotations

import pytest

from kmesh.dps import parse_dp_address
from kmesh.dps._dial import csr_service

from .material import dataplane_doc, egress_doc, ingress_doc


@pytest.mark.parametrize(
    ("address", "expected"),
    [
        ("dps://cp.zone-1.example:5678", ("cp.zone-1.example", 5678)),
        ("dps://10.0.0.1:15678", ("10.0.0.1", 15678)),
        ("cp.zone-1.example:7000", ("cp.zone-1.example", 7000)),
        ("cp.zone-1.example", ("cp.zone-1.example", 5678)),
        ("dps://[::1]:5678", ("::1", 5678)),
    ],
)
def test_addresses(address: str, expected: tuple[str, int]) -> None:
    assert parse_dp_address(address) == expected


@pytest.mark.parametrize(
    "address", ["kds://global:5685", "dps://", "dps://host:99999", "dps://host:5678/path"]
)
def test_bad_addresses_say_what_is_expected(address: str) -> None:
    with pytest.raises(ValueError, match=r"dps://HOST:PORT|port must be a number"):
        parse_dp_address(address)


def test_the_csr_names_the_first_service() -> None:
    assert csr_service(dataplane_doc(service="payments")) == "payments"
    assert csr_service(egress_doc()) == "zone-egress"
    assert csr_service(ingress_doc()) == "proxy"
    gateway = {
        "type": "Dataplane",
        "networking": {"address": "10.0.0.1", "gateway": {"tags": {"kuma.io/service": "edge"}}},
    }
    assert csr_service(gateway) == "edge"
