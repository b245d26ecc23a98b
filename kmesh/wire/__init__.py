"""The wire layer under KDS and the DP protocol: length-prefixed msgpack frames, typed message codecs,
the TLS 1.3 context factories and the clients' reconnect backoff.

Sans-IO: nothing here imports ``asyncio`` or ``socket``; the asyncio adapters live with the protocols.
"""

from __future__ import annotations

from kmesh.wire.backoff import Backoff
from kmesh.wire.codec import MessageCodec, WireMessage
from kmesh.wire.framing import DEFAULT_MAX_FRAME_BYTES, FRAME_HEADER_BYTES, FrameDecoder, encode_frame
from kmesh.wire.tls import client_context, server_context

__all__ = [
    "DEFAULT_MAX_FRAME_BYTES",
    "FRAME_HEADER_BYTES",
    "Backoff",
    "FrameDecoder",
    "MessageCodec",
    "WireMessage",
    "client_context",
    "encode_frame",
    "server_context",
]
