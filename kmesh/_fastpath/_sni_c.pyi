"""Types of the compiled twin ``_sni_c.pyx``: exactly those of ``_sni_py``."""

from kmesh._fastpath._sni_types import SniResult

__all__ = ["parse_client_hello"]

def parse_client_hello(data: bytes | bytearray | memoryview, max_bytes: int = 16384) -> SniResult: ...
