"""Config pushes in memory: chunking, ACK/NACK, the window, certificates and health reports."""

from __future__ import annotations

import pytest

from kmesh.dps import (
    Ack,
    CertificateDenied,
    CertificateIssued,
    CertificateReceived,
    CertificateRequested,
    CloseCode,
    ConfigAcked,
    ConfigNacked,
    ConfigReceived,
    ConfigUpdate,
    HealthReported,
    InboundHealth,
)
from kmesh.errors import LocalProtocolError

from .peers import bytewise, codec, established, pump


def test_a_config_is_pushed_and_acked() -> None:
    proxy, server = established()
    assert server.session.config_writable
    assert server.session.send_config("v1", b"config-one") == 1
    pump(proxy, server)
    assert proxy.of(ConfigReceived) == [ConfigReceived("v1", b"config-one")]
    assert proxy.session.unanswered_configs == 1
    proxy.session.ack("v1")
    pump(proxy, server)
    assert server.of(ConfigAcked) == [ConfigAcked("v1")]
    assert server.session.unanswered_configs == 0
    assert proxy.session.unanswered_configs == 0


def test_a_nack_carries_the_reason_and_answers_the_version() -> None:
    proxy, server = established()
    server.session.send_config("v1", b"a")
    server.session.send_config("v2", b"b")
    pump(proxy, server)
    proxy.session.nack("v2", "listener port 8080 is taken")
    proxy.session.ack("v1")
    pump(proxy, server)
    assert server.of(ConfigNacked) == [ConfigNacked("v2", "listener port 8080 is taken")]
    assert server.of(ConfigAcked) == [ConfigAcked("v1")]
    assert server.session.unanswered_configs == 0


def test_a_large_config_travels_in_chunks_and_arrives_whole() -> None:
    proxy, server = established(
        proxy_kwargs={"max_frame_bytes": 4096}, server_kwargs={"max_frame_bytes": 4096}
    )
    body = bytes(range(256)) * 400  # 100 KiB, 25 times the frame limit
    chunks = server.session.send_config("big", body)
    assert chunks >= 25
    pump(proxy, server, split=bytewise)
    assert proxy.of(ConfigReceived) == [ConfigReceived("big", body)]
    assert proxy.closed is None


def test_an_empty_config_is_one_chunk() -> None:
    proxy, server = established()
    assert server.session.send_config("empty", b"") == 1
    pump(proxy, server)
    assert proxy.of(ConfigReceived) == [ConfigReceived("empty", b"")]


def test_the_same_version_may_be_sent_again_and_is_answered_twice() -> None:
    proxy, server = established()
    for _ in range(2):
        server.session.send_config("v1", b"same")
    pump(proxy, server)
    proxy.session.ack("v1")
    proxy.session.ack("v1")
    pump(proxy, server)
    assert server.of(ConfigAcked) == [ConfigAcked("v1"), ConfigAcked("v1")]
    with pytest.raises(LocalProtocolError):
        proxy.session.ack("v1")


def test_the_server_keeps_within_the_proxys_window() -> None:
    proxy, server = established(proxy_kwargs={"window": 2})
    server.session.send_config("v1", b"1")
    server.session.send_config("v2", b"2")
    assert not server.session.config_writable
    with pytest.raises(LocalProtocolError) as raised:
        server.session.send_config("v3", b"3")
    assert raised.value.code == CloseCode.FLOW_CONTROL
    pump(proxy, server)
    proxy.session.ack("v1")
    pump(proxy, server)
    assert server.session.config_writable


def test_a_server_that_overruns_the_window_is_closed() -> None:
    proxy, _server = established(proxy_kwargs={"window": 1})
    wire = codec()
    proxy.session.receive_data(wire.encode(ConfigUpdate(version="v1", config=b"1")))
    proxy.session.receive_data(wire.encode(ConfigUpdate(version="v2", config=b"2")))
    proxy.take()
    assert proxy.closed is not None
    assert proxy.closed.code == CloseCode.FLOW_CONTROL


@pytest.mark.parametrize(
    "updates",
    [
        [ConfigUpdate(version="v1", config=b"x", chunk=1)],
        [
            ConfigUpdate(version="v1", config=b"x", last=False),
            ConfigUpdate(version="v2", config=b"y", chunk=1),
        ],
        [
            ConfigUpdate(version="v1", config=b"x", last=False),
            ConfigUpdate(version="v1", config=b"y", chunk=2),
        ],
    ],
    ids=["starts-late", "switches-version", "skips-a-chunk"],
)
def test_chunks_out_of_order_close_the_connection(updates: list[ConfigUpdate]) -> None:
    proxy, _server = established()
    wire = codec()
    for update in updates:
        proxy.session.receive_data(wire.encode(update))
    proxy.take()
    assert proxy.closed is not None
    assert proxy.closed.code == CloseCode.BAD_CONFIG_CHUNK
    assert not proxy.of(ConfigReceived)


def test_a_config_larger_than_the_proxy_accepts_closes_the_connection() -> None:
    proxy, server = established(proxy_kwargs={"max_config_bytes": 1000})
    server.session.send_config("huge", b"z" * 5000)
    pump(proxy, server)
    assert proxy.closed is not None
    assert proxy.closed.code == CloseCode.CONFIG_TOO_LARGE
    assert server.closed is not None
    assert server.closed.by_peer


def test_an_answer_to_a_config_never_sent_closes_the_connection() -> None:
    proxy, server = established()
    server.session.receive_data(codec().encode(Ack(version="never-sent")))
    server.take()
    assert server.closed is not None
    assert server.closed.code == CloseCode.UNKNOWN_VERSION
    pump(proxy, server)
    assert proxy.closed is not None
    assert proxy.closed.code == CloseCode.UNKNOWN_VERSION


def test_a_proxy_cannot_ack_what_it_did_not_receive() -> None:
    proxy, _server = established()
    with pytest.raises(LocalProtocolError) as raised:
        proxy.session.nack("v9", "no")
    assert raised.value.code == CloseCode.UNKNOWN_VERSION
    assert proxy.session.data_to_send() == b""


def test_certificates_are_requested_issued_and_refused() -> None:
    proxy, server = established()
    proxy.session.request_certificate(b"-----BEGIN CERTIFICATE REQUEST-----", request_id="r1")
    proxy.session.request_certificate(b"csr-2", request_id="r2", mesh="other")
    pump(proxy, server)
    assert server.of(CertificateRequested) == [
        CertificateRequested(b"-----BEGIN CERTIFICATE REQUEST-----", "r1", ""),
        CertificateRequested(b"csr-2", "r2", "other"),
    ]
    issued = CertificateIssued(
        cert_pem=b"cert",
        ca_bundle_pem=b"ca",
        not_after=200.0,
        renew_at=160.0,
        request_id="r1",
        backend="ca-1",
    )
    server.session.issue_certificate(issued)
    server.session.refuse_certificate(
        "ca_unavailable", "no CA yet", request_id="r2", mesh="other", retry=True
    )
    pump(proxy, server)
    assert proxy.of(CertificateReceived) == [CertificateReceived(issued)]
    assert proxy.of(CertificateDenied) == [
        CertificateDenied("ca_unavailable", "no CA yet", "r2", "other", True)
    ]


def test_health_reports_reach_the_server() -> None:
    proxy, server = established()
    proxy.session.report_health([InboundHealth(port=8080, ready=False), InboundHealth(port=9090, ready=True)])
    pump(proxy, server)
    assert server.of(HealthReported) == [
        HealthReported((InboundHealth(port=8080, ready=False), InboundHealth(port=9090, ready=True)))
    ]


def test_roles_cannot_send_the_other_sides_messages() -> None:
    proxy, server = established()
    with pytest.raises(LocalProtocolError):
        proxy.session.send_config("v1", b"x")
    with pytest.raises(LocalProtocolError):
        server.session.report_health([])
    with pytest.raises(LocalProtocolError):
        server.session.request_certificate(b"csr", request_id="r")
    with pytest.raises(LocalProtocolError):
        proxy.session.refuse_certificate("x", "y", request_id="r")
