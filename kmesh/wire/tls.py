"""TLS context factories for every kmesh connection: KDS, the DP protocol and mesh mTLS.

``SSLContext`` objects are runtime objects: they are built here from plain inputs (PEM bytes, file names,
flags) and never stored inside config (STYLE.md, "Types and config"). Every context is TLS 1.3 only, as the
wire contract requires (DESIGN.md, "Wire").

Rules:

- Key material stays in memory where the stdlib allows it. CAs load through ``cadata=``. A certificate
  chain and its key cannot: ``SSLContext.load_cert_chain`` only reads files. They are written to a file
  created 0600 inside a fresh 0700 directory (on a tmpfs such as ``$XDG_RUNTIME_DIR`` or ``/dev/shm``
  when there is one, so the key never reaches a disk), loaded, and removed before the factory returns,
  whether the load worked or not.
- Encrypted private keys are refused rather than letting OpenSSL prompt on the terminal, which would hang
  a daemon.
- Servers issue no session tickets: kmesh connections are long-lived and no kmesh client resumes
  sessions, and a resumed session would skip the client-certificate check of a peer whose certificate
  has since been replaced.
- Bad inputs (malformed PEM, a key that does not match its certificate, contradictory options) raise
  ``ValueError`` naming the problem; callers that know where the input came from re-raise it as a
  :class:`~kmesh.errors.ConfigError` naming the setting.
"""

from __future__ import annotations

import contextlib
import os
import ssl
import tempfile
from typing import Final, NoReturn

__all__ = ["client_context", "server_context"]

_MIN_VERSION: Final = ssl.TLSVersion.TLSv1_3


def _refuse_encrypted_key() -> NoReturn:
    raise ValueError("the private key is encrypted; kmesh needs an unencrypted PEM key")


def _private_dir_parent() -> str | None:
    """A memory-backed directory only this user can use, or ``None`` for the system default."""
    for candidate in (os.environ.get("XDG_RUNTIME_DIR"), "/dev/shm"):
        if candidate and os.path.isdir(candidate) and os.access(candidate, os.W_OK | os.X_OK):
            return candidate
    return None


def _load_chain(ctx: ssl.SSLContext, cert_pem: bytes, key_pem: bytes, what: str) -> None:
    """Load a certificate chain (leaf first) and its key from memory into ``ctx``."""
    if not cert_pem.strip() or not key_pem.strip():
        raise ValueError(f"{what}: the certificate and the key must both be given")
    # mkdtemp makes the directory 0700, so no other user can even look up the file name in it.
    directory = tempfile.mkdtemp(prefix="kmesh-tls-", dir=_private_dir_parent())
    path = os.path.join(directory, "chain.pem")
    try:
        # O_EXCL|O_NOFOLLOW: the file is ours, created right here with 0600 (umask can only narrow it).
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
        with open(fd, "wb") as out:
            out.write(cert_pem.rstrip(b"\n") + b"\n" + key_pem)
        try:
            ctx.load_cert_chain(path, password=_refuse_encrypted_key)
        except ssl.SSLError as exc:
            if exc.reason == "KEY_VALUES_MISMATCH":
                raise ValueError(f"{what}: the private key does not match the certificate") from exc
            raise ValueError(f"{what}: not a usable PEM certificate chain and key ({exc})") from exc
        except ValueError as exc:
            raise ValueError(f"{what}: {exc}") from exc
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)
        os.rmdir(directory)


def _load_cas(ctx: ssl.SSLContext, pem: bytes, what: str) -> None:
    try:
        ctx.load_verify_locations(cadata=pem.decode("ascii"))
    except (ssl.SSLError, ValueError) as exc:
        # ValueError covers empty data and non-ASCII bytes (UnicodeDecodeError), neither of which is PEM.
        raise ValueError(f"{what}: not a PEM certificate bundle: {exc}") from exc


def _base_context(*, server_side: bool) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER if server_side else ssl.PROTOCOL_TLS_CLIENT)
    ctx.minimum_version = _MIN_VERSION
    return ctx


def server_context(
    cert_pem: bytes,
    key_pem: bytes,
    *,
    client_ca_pem: bytes | None = None,
    require_client_cert: bool = False,
) -> ssl.SSLContext:
    """Build a TLS 1.3 server context presenting ``cert_pem`` (leaf first, then intermediates).

    With ``client_ca_pem`` clients may present a certificate, verified against it; with
    ``require_client_cert`` they must. Raises ``ValueError`` for unusable PEM, a key that does not match
    the certificate, or ``require_client_cert`` without ``client_ca_pem``.
    """
    if require_client_cert and client_ca_pem is None:
        raise ValueError("require_client_cert needs client_ca_pem to verify client certificates against")
    ctx = _base_context(server_side=True)
    ctx.num_tickets = 0
    _load_chain(ctx, cert_pem, key_pem, "server certificate")
    if client_ca_pem is not None:
        _load_cas(ctx, client_ca_pem, "client_ca_pem")
        ctx.verify_mode = ssl.CERT_REQUIRED if require_client_cert else ssl.CERT_OPTIONAL
    else:
        ctx.verify_mode = ssl.CERT_NONE
    return ctx


def client_context(
    *,
    ca_pem: bytes | None = None,
    ca_file: str | None = None,
    skip_verify: bool = False,
    server_hostname_check: bool = True,
    client_cert_pem: bytes | None = None,
    client_key_pem: bytes | None = None,
) -> ssl.SSLContext:
    """Build a TLS 1.3 client context.

    The server is verified against ``ca_pem`` and/or ``ca_file``, or the system trust store when neither
    is given. ``server_hostname_check=False`` keeps chain verification but skips the name check, for mesh
    peers whose identity is a SPIFFE URI SAN checked by the caller (DESIGN.md, "Cross-zone routing").
    ``skip_verify`` disables verification entirely (``kds://`` to a global with a self-signed certificate
    nobody distributed); it cannot be combined with CAs. ``client_cert_pem`` and ``client_key_pem`` give a
    client certificate for mTLS and come together.

    Raises ``ValueError`` for contradictory options or unusable PEM, ``OSError`` for an unreadable
    ``ca_file``.
    """
    if skip_verify and (ca_pem is not None or ca_file is not None):
        raise ValueError("skip_verify cannot be combined with ca_pem or ca_file: nothing would be verified")
    if (client_cert_pem is None) != (client_key_pem is None):
        raise ValueError("client_cert_pem and client_key_pem must be given together")
    ctx = _base_context(server_side=False)
    if skip_verify:
        # check_hostname must be off before verify_mode may drop to CERT_NONE.
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    else:
        ctx.check_hostname = server_hostname_check
        ctx.verify_mode = ssl.CERT_REQUIRED
        if ca_pem is not None:
            _load_cas(ctx, ca_pem, "ca_pem")
        if ca_file is not None:
            try:
                ctx.load_verify_locations(cafile=ca_file)
            except ssl.SSLError as exc:
                raise ValueError(f"ca_file {ca_file}: not a PEM certificate bundle: {exc}") from exc
        if ca_pem is None and ca_file is None:
            ctx.load_default_certs(ssl.Purpose.SERVER_AUTH)
    if client_cert_pem is not None and client_key_pem is not None:
        _load_chain(ctx, client_cert_pem, client_key_pem, "client certificate")
    return ctx
