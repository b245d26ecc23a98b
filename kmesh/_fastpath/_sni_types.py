"""The result of parsing a TLS ClientHello, shared by ``_sni_py`` and the compiled ``_sni_c``.

Both implementations return the same :class:`SniResult` type, so that callers, tests and the equality
checks between the twins never care which one ran. It is a frozen msgspec ``Struct``: building one costs
about 50 ns (a ``NamedTuple`` costs about 300 ns, a frozen dataclass more), which matters when the whole
compiled parse takes about 100 ns. ``gc=False`` is safe because its fields (an enum member, a ``str``, a
tuple of ``bytes``) can never form a reference cycle.

Results that carry no data are module-level singletons (``RESULT_NEED_MORE`` and the others below), and
both parsers return exactly these objects, so a rejected or incomplete input allocates nothing.
"""

from __future__ import annotations

import enum
from typing import Final, final

import msgspec

__all__ = [
    "RESULT_NEED_MORE",
    "RESULT_NOT_TLS",
    "RESULT_NO_SNI",
    "RESULT_TOO_LARGE",
    "SniResult",
    "SniStatus",
]


@final
class SniStatus(enum.Enum):
    """What the bytes seen so far say about the ClientHello.

    The values are fixed: the compiled parser returns them as C integers and maps them back by value.
    """

    #: The bytes are a valid prefix of a TLS handshake: read more and call again with everything so far.
    NEED_MORE = 0
    #: A complete, well-formed ClientHello with a valid ``host_name`` server name.
    FOUND = 1
    #: A complete, well-formed ClientHello without a ``host_name`` server name.
    NO_SNI = 2
    #: Not a TLS ClientHello: another record type or handshake message, a bad version, bad lengths, or a
    #: malformed extension (including a server name that is not a valid DNS host name).
    NOT_TLS = 3
    #: The ClientHello cannot be complete within ``max_bytes`` bytes of the stream.
    TOO_LARGE = 4


@final
class SniResult(msgspec.Struct, frozen=True, gc=False):
    """The outcome of :func:`parse_client_hello`.

    ``server_name`` is set only when ``status`` is ``FOUND``: the ASCII host name, lowercased, without a
    trailing dot. ``alpn`` holds the ALPN protocol names in the client's order (``FOUND`` and ``NO_SNI``
    only); it is empty when the client sent no ALPN extension (an ALPN extension may not be empty).
    """

    status: SniStatus
    server_name: str | None = None
    alpn: tuple[bytes, ...] = ()


RESULT_NEED_MORE: Final = SniResult(SniStatus.NEED_MORE)
RESULT_NOT_TLS: Final = SniResult(SniStatus.NOT_TLS)
RESULT_TOO_LARGE: Final = SniResult(SniStatus.TOO_LARGE)
RESULT_NO_SNI: Final = SniResult(SniStatus.NO_SNI)
