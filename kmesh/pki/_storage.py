"""Where a builtin mTLS backend's CA lives in the store: pure conversions to and from mesh Secrets.

The naming convention is Kuma's (``pkg/plugins/ca/builtin/manager.go``, ``certSecretResKey`` and
``keySecretResKey``; documented under "Storage of secrets" of Kuma's mutual TLS page), so an operator's
habits and backup scripts carry over::

    Secret  <mesh>.ca-builtin-cert-<backend>    (in <mesh>) the CA certificate, PEM
    Secret  <mesh>.ca-builtin-key-<backend>     (in <mesh>) the CA private key, PKCS#8 PEM

Rules:
- A secret's ``data`` is the base64 of the PEM, as Kuma stores it. The mesh prefix keeps the names unique
  across meshes where Secrets share one namespace (Kubernetes).
- The Secrets are mesh-scoped and flow from the global to every zone over KDS, so any zone CP can sign
  workload certificates while the global is away (DESIGN.md, failure mode 1).
- A CA is stored whole or not at all: one of the two Secrets without the other is an error, never a
  reason to make a new CA (that would split the mesh's trust).
- Everything here is pure: it builds and reads ``Resource`` values; the caller reads and writes the store.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Final

from kmesh.model import Resource, new_resource
from kmesh.model.types import SecretSpec
from kmesh.pki._ca import CaBundle, check_ca
from kmesh.pki._errors import InvalidCa

__all__ = [
    "CA_CERT_SECRET_INFIX",
    "CA_KEY_SECRET_INFIX",
    "ca_cert_secret_name",
    "ca_from_secrets",
    "ca_key_secret_name",
    "ca_secrets",
]

CA_CERT_SECRET_INFIX: Final = "ca-builtin-cert"
CA_KEY_SECRET_INFIX: Final = "ca-builtin-key"


def ca_cert_secret_name(mesh: str, backend: str) -> str:
    """``<mesh>.ca-builtin-cert-<backend>``."""
    return f"{mesh}.{CA_CERT_SECRET_INFIX}-{backend}"


def ca_key_secret_name(mesh: str, backend: str) -> str:
    """``<mesh>.ca-builtin-key-<backend>``."""
    return f"{mesh}.{CA_KEY_SECRET_INFIX}-{backend}"


def ca_secrets(mesh: str, backend: str, bundle: CaBundle) -> list[Resource]:
    """The two Secrets in ``mesh`` that hold ``bundle``: the certificate's, then the key's.

    Raises InvalidCa when ``bundle`` is not a usable CA, so broken material is never stored.
    """
    check_ca(bundle, where=f"mesh {mesh!r}, mTLS backend {backend!r}")
    return [
        new_resource(
            "Secret", ca_cert_secret_name(mesh, backend), SecretSpec.from_bytes(bundle.cert_pem), mesh=mesh
        ),
        new_resource(
            "Secret", ca_key_secret_name(mesh, backend), SecretSpec.from_bytes(bundle.key_pem), mesh=mesh
        ),
    ]


def _secret_value(secret: Resource) -> bytes:
    if not isinstance(secret.spec, SecretSpec):
        raise InvalidCa(f"{secret.key} is not a Secret")
    try:
        return secret.spec.value
    except ValueError:
        raise InvalidCa(f"{secret.key}: data is not base64") from None


def ca_from_secrets(resources: Iterable[Resource], mesh: str, backend: str) -> CaBundle | None:
    """The CA of builtin ``backend`` of ``mesh`` among ``resources`` (any resources); None when neither of
    its Secrets is there, which means the global has not made it yet.

    Raises InvalidCa naming the Secret when only one of the two is there, or they do not hold a usable CA.
    """
    names = {ca_cert_secret_name(mesh, backend): "cert", ca_key_secret_name(mesh, backend): "key"}
    found: dict[str, Resource] = {}
    for resource in resources:
        meta = resource.meta
        if meta.type == "Secret" and meta.mesh == mesh and meta.name in names:
            found[names[meta.name]] = resource
    if not found:
        return None
    where = f"mesh {mesh!r}, mTLS backend {backend!r}"
    for part, name in (
        ("cert", ca_cert_secret_name(mesh, backend)),
        ("key", ca_key_secret_name(mesh, backend)),
    ):
        if part not in found:
            raise InvalidCa(
                f"{where}: Secret {name!r} is missing while its pair is there; restore it from a backup, "
                "or delete both to have a new CA made (proxies then need new certificates)"
            )
    bundle = CaBundle(cert_pem=_secret_value(found["cert"]), key_pem=_secret_value(found["key"]))
    return check_ca(bundle, where=f"{where} (Secrets {', '.join(sorted(names))})")
