"""A proxy session and a server session talking in memory (aioquic's ``client_and_server()`` pattern): no
sockets, no sleeps, no clock but the one the tests pass in.

Each :class:`Peer` records every event of its session; ``pump`` moves bytes both ways until both are
quiet. The scripted callers are minimal on purpose: each test issues the commands it is about.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from kmesh.dps import (
    ConnectionClosed,
    DpMessage,
    DpSession,
    Event,
    Hello,
    HelloReceived,
    Role,
    Welcome,
)
from kmesh.wire.codec import MessageCodec

E = TypeVar("E")

DOC: dict[str, Any] = {
    "type": "Dataplane",
    "mesh": "default",
    "name": "web-1",
    "networking": {"address": "10.0.0.1", "inbound": [{"port": 8080, "tags": {"kuma.io/service": "web"}}]},
}


def hello(**changes: Any) -> Hello:
    fields: dict[str, Any] = {
        "proxy_type": "sidecar",
        "dataplane": DOC,
        "token": "secret-token",
        "version": "test",
        "instance_id": "proxy-1",
    }
    fields.update(changes)
    return Hello(**fields)


@dataclass
class Peer:
    session: DpSession
    events: list[Event] = field(default_factory=list)

    def take(self) -> list[Event]:
        """Move the session's new events into ``events``; return them."""
        new = []
        while (event := self.session.next_event()) is not None:
            new.append(event)
        self.events.extend(new)
        return new

    def of(self, kind: type[E]) -> list[E]:
        return [e for e in self.events if isinstance(e, kind)]

    @property
    def closed(self) -> ConnectionClosed | None:
        found = self.of(ConnectionClosed)
        assert len(found) <= 1, f"more than one ConnectionClosed: {found}"
        return found[0] if found else None


def whole(data: bytes) -> Iterable[bytes]:
    return (data,)


def bytewise(data: bytes) -> Iterable[bytes]:
    return (data[i : i + 1] for i in range(len(data)))


def pump(a: Peer, b: Peer, *, split: Callable[[bytes], Iterable[bytes]] = whole, rounds: int = 1000) -> None:
    """Move bytes both ways until neither side has anything to send; record every event."""
    for _ in range(rounds):
        to_b, to_a = a.session.data_to_send(), b.session.data_to_send()
        for piece in split(to_b):
            b.session.receive_data(piece)
        for piece in split(to_a):
            a.session.receive_data(piece)
        a.take()
        b.take()
        if not to_a and not to_b:
            return
    raise AssertionError("sessions still busy")


def pair(
    *,
    now: float = 0.0,
    proxy_kwargs: dict[str, Any] | None = None,
    server_kwargs: dict[str, Any] | None = None,
) -> tuple[Peer, Peer]:
    """A proxy and a server, not yet talking."""
    proxy = Peer(DpSession(Role.PROXY, now=now, **(proxy_kwargs or {})))
    server = Peer(DpSession(Role.SERVER, now=now, **(server_kwargs or {})))
    return proxy, server


def established(
    *,
    welcome: Welcome | None = None,
    proxy_kwargs: dict[str, Any] | None = None,
    server_kwargs: dict[str, Any] | None = None,
) -> tuple[Peer, Peer]:
    """A proxy and a server after a successful handshake."""
    proxy, server = pair(proxy_kwargs=proxy_kwargs, server_kwargs=server_kwargs)
    proxy.session.connect(hello())
    pump(proxy, server)
    assert server.of(HelloReceived), server.events
    server.session.accept(
        welcome or Welcome(mesh="default", name="web-1", zone="zone-1", heartbeat_interval_s=10.0)
    )
    pump(proxy, server)
    assert proxy.closed is None
    assert server.closed is None
    return proxy, server


def codec() -> MessageCodec[DpMessage]:
    return MessageCodec[DpMessage](DpMessage)
