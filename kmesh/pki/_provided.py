"""A provided mTLS backend's CA: the operator's certificate and key, read from ``conf.cert``/``conf.key``.

Each is a data source (Kuma's ``DataSource``): exactly one of

    secret: <name>          a Secret of the same mesh; its decoded ``data``
    inline: <base64>        the bytes, base64-encoded
    inlineString: <text>    the text itself
    file: <path>            a file on the control plane

Rules:
- Pure: Secrets are passed in as resources; files are read by the caller, which lists them with
  :func:`provided_files` and passes their contents in ``files`` (path -> bytes). A file not passed in is
  :class:`CaUnavailable`, as is a Secret that does not exist (yet: KDS may not have brought it).
- What is read must be a CA that can sign, with its key (``_ca.load_ca``; Kuma's
  ``provided/ca_cert_validator.go``); otherwise :class:`InvalidCa` naming mesh, backend and field.
- :func:`backend_ca` picks the right reader for either backend type, for callers that hold the mesh's
  Secrets and want the CA that signs.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Iterable, Mapping

from kmesh.model import Resource
from kmesh.model.types import SecretSpec
from kmesh.model.types.common import DataSource
from kmesh.model.types.mesh import CertificateAuthorityBackend, CertificateAuthorityConf
from kmesh.pki._ca import CaBundle, check_ca
from kmesh.pki._errors import CaUnavailable, InvalidCa
from kmesh.pki._storage import ca_from_secrets

__all__ = ["backend_ca", "data_source_bytes", "provided_ca", "provided_files"]


def provided_files(backend: CertificateAuthorityBackend) -> list[str]:
    """The paths of the ``file`` data sources of ``backend`` (cert first), which the caller must read."""
    conf = backend.conf
    if conf is None:
        return []
    return [source.file for source in (conf.cert, conf.key) if source is not None and source.file is not None]


def _secret_bytes(name: str, secrets: Iterable[Resource], *, mesh: str, where: str) -> bytes:
    for resource in secrets:
        meta = resource.meta
        if meta.type == "Secret" and meta.mesh == mesh and meta.name == name:
            if not isinstance(resource.spec, SecretSpec):
                raise InvalidCa(f"{where}: {resource.key} is not a Secret")
            try:
                return resource.spec.value
            except ValueError:
                raise InvalidCa(f"{where}: Secret {name!r} does not hold base64 data") from None
    raise CaUnavailable(
        f"{where}: Secret {name!r} does not exist in mesh {mesh!r}; create it on the global "
        "(kmeshctl apply -f) or wait until it reaches this zone"
    )


def data_source_bytes(
    source: DataSource,
    secrets: Iterable[Resource],
    *,
    mesh: str,
    files: Mapping[str, bytes] | None = None,
    where: str = "data source",
) -> bytes:
    """The bytes ``source`` stands for (see the module docstring). ``where`` starts every message.

    Raises CaUnavailable for a Secret that is not among ``secrets`` or a file not in ``files``, InvalidCa
    for inline data that is not base64 or a source with nothing set.
    """
    if source.secret is not None:
        return _secret_bytes(source.secret, secrets, mesh=mesh, where=where)
    if source.inline is not None:
        try:
            return base64.b64decode(source.inline, validate=True)
        except (binascii.Error, ValueError):
            raise InvalidCa(f"{where}: inline is not base64 (use inlineString for PEM text)") from None
    if source.inline_string is not None:
        return source.inline_string.encode()
    if source.file is not None:
        if files is not None and source.file in files:
            return files[source.file]
        raise CaUnavailable(
            f"{where}: file {source.file!r} has not been read: files are read by the control plane that "
            "holds them and passed in; put the PEM in a Secret to have it reach every zone"
        )
    raise InvalidCa(f"{where}: one of secret, file, inline or inlineString must be set")


def provided_ca(
    backend: CertificateAuthorityBackend,
    secrets: Iterable[Resource],
    *,
    mesh: str,
    files: Mapping[str, bytes] | None = None,
) -> CaBundle:
    """The CA of the provided ``backend`` of ``mesh``, read from ``conf.cert`` and ``conf.key``.

    Raises ValueError when ``backend`` is not ``provided``; CaUnavailable and InvalidCa as
    :func:`data_source_bytes` and the CA checks do.
    """
    if backend.type != "provided":
        raise ValueError(f"mTLS backend {backend.name!r} is {backend.type}, not provided")
    where = f"mesh {mesh!r}, mTLS backend {backend.name!r}"
    secrets = list(secrets)
    parts: dict[str, bytes] = {}
    conf = backend.conf or CertificateAuthorityConf()
    for field, source in (("cert", conf.cert), ("key", conf.key)):
        if source is None:
            raise InvalidCa(f"{where}: conf.{field} is required for a provided backend")
        parts[field] = data_source_bytes(
            source, secrets, mesh=mesh, files=files, where=f"{where}, conf.{field}"
        )
    return check_ca(CaBundle(cert_pem=parts["cert"], key_pem=parts["key"]), where=where)


def backend_ca(
    backend: CertificateAuthorityBackend,
    secrets: Iterable[Resource],
    *,
    mesh: str,
    files: Mapping[str, bytes] | None = None,
) -> CaBundle | None:
    """The CA of ``backend`` of ``mesh``: a builtin one from its Secrets (None when not made yet), a
    provided one from its data sources. Raises as :func:`kmesh.pki.ca_from_secrets` and
    :func:`provided_ca` do.
    """
    if backend.type == "builtin":
        return ca_from_secrets(secrets, mesh, backend.name)
    return provided_ca(backend, secrets, mesh=mesh, files=files)
