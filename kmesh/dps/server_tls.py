"""The DP server's TLS certificate: the operator's files, or one the control plane makes once and keeps.

Rules (as the global does for its KDS certificate, ``kmesh.cp._multizone``):
- Given ``cert_file`` and ``key_file`` (PEM), those are used as they are.
- Otherwise the certificate lives in the GlobalSecret ``dp-server-tls`` (certificate PEM then key PEM).
  GlobalSecrets never leave the control plane that holds them (their KDS direction is none), so a zone's
  DP certificate stays in that zone. On first start a self-signed ECDSA P-256 certificate is made for
  ``localhost``, the host name, the extra ``hostnames``, 127.0.0.1 and ::1, and stored; replicas sharing
  the store then serve the same one.
- The public certificate is written to ``dp-ca.pem`` in ``export_dir`` (beside the SQLite store), so a
  proxy can trust it (``kmesh-proxy run --ca-cert-file dp-ca.pem``); its SHA-256 fingerprint is logged for
  an operator to compare. The key is never written anywhere but the store.
"""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Sequence
from typing import Final

from kmesh.errors import AlreadyExists, NotFound, StoreError
from kmesh.model import ResourceKey, new_resource
from kmesh.model.types import GlobalSecretSpec
from kmesh.pki import cert_fingerprint_sha256, generate_self_signed_server_cert
from kmesh.store import ResourceStore

__all__ = ["DP_CA_FILE", "DP_TLS_SECRET", "ensure_dp_server_tls"]

log = logging.getLogger("kmesh.dps")

DP_TLS_SECRET: Final = "dp-server-tls"
DP_CA_FILE: Final = "dp-ca.pem"
_PEM_SPLIT: Final = b"-----BEGIN"


async def ensure_dp_server_tls(
    store: ResourceStore,
    *,
    cert_file: str | None = None,
    key_file: str | None = None,
    hostnames: Sequence[str] = (),
    export_dir: str | None = None,
) -> tuple[bytes, bytes]:
    """The DP server's certificate and key PEM (see the module rules).

    Raises OSError for unreadable files or an unwritable ``export_dir``, StoreError, ValueError for a host
    name that cannot be a DNS name.
    """
    if cert_file is not None and key_file is not None:
        # Read once at start, before anything is served: blocking the loop here costs nothing.
        return _read(cert_file), _read(key_file)
    key = ResourceKey("GlobalSecret", DP_TLS_SECRET)
    try:
        stored = await store.get(key)
    except NotFound:
        names = sorted({"localhost", socket.gethostname(), *hostnames})
        cert, private = generate_self_signed_server_cert(names, ["127.0.0.1", "::1"])
        secret = new_resource("GlobalSecret", DP_TLS_SECRET, GlobalSecretSpec.from_bytes(cert + private))
        try:
            await store.create(secret)
        except AlreadyExists:
            # Another replica made one between our read and our write: serve that one.
            return await ensure_dp_server_tls(store, hostnames=hostnames, export_dir=export_dir)
        log.info("generated the DP server certificate", extra={"hostnames": names})
    else:
        if not isinstance(stored.spec, GlobalSecretSpec):
            raise StoreError(f"GlobalSecret {DP_TLS_SECRET} is not a GlobalSecret")
        cert, private = _split_pem(stored.spec.value)
    if export_dir is not None:
        path = os.path.join(export_dir, DP_CA_FILE)
        _write_public(path, cert)
        log.info(
            "DP server certificate exported for proxies (--ca-cert-file)",
            extra={"path": path, "sha256": cert_fingerprint_sha256(cert)},
        )
    return cert, private


def _split_pem(blob: bytes) -> tuple[bytes, bytes]:
    second = blob.find(_PEM_SPLIT, 1)
    if second < 0:
        raise StoreError(f"GlobalSecret {DP_TLS_SECRET} does not hold a certificate and a key")
    return blob[:second], blob[second:]


def _read(path: str) -> bytes:
    with open(path, "rb") as f:
        return f.read()


def _write_public(path: str, data: bytes) -> None:
    tmp = f"{path}.tmp"
    with open(tmp, "wb") as f:
        f.write(data)
    os.replace(tmp, path)
