"""Certificates and keys: self-signed server certificates for the control plane's own endpoints.

Pure functions over the ``cryptography`` package; nothing here imports ``asyncio`` or ``socket``.
"""

from __future__ import annotations

from kmesh.pki._selfsigned import cert_fingerprint_sha256, generate_self_signed_server_cert

__all__ = ["cert_fingerprint_sha256", "generate_self_signed_server_cert"]
