"""Certificates and keys: the mesh PKI, and self-signed certificates for the control plane's own endpoints.

- ``_ca``: a builtin mTLS backend's CA (:func:`generate_ca`, :func:`ca_from_backend`) and the checks any CA
  passes before it signs (:func:`load_ca`, :func:`check_ca`).
- ``_storage``: a builtin CA as the mesh Secrets ``<mesh>.ca-builtin-{cert,key}-<backend>`` (Kuma's names).
- ``_provided``: a provided backend's CA from its ``conf.cert``/``conf.key`` data sources.
- ``_workload``: the proxy's key and CSR, and the workload certificate the zone CP signs from it.
- ``_identity``: the SPIFFE and ``kuma://`` URI SANs of a workload, built and read back.
- ``_rotation``: certificate lifetime, renewal at 4/5, and the trust bundle across backend switches.
- ``_selfsigned``: self-signed server certificates (KDS) and fingerprints.
- ``_errors``: :class:`PkiError` and its tree.

Pure functions over the ``cryptography`` package: nothing here imports ``asyncio``, ``socket`` or ``ssl``,
reads a clock (``now`` is passed in) or touches a file.
"""

from __future__ import annotations

from kmesh.pki._ca import (
    DEFAULT_CA_LIFETIME_S,
    CaBundle,
    LoadedCa,
    PrivateKey,
    ca_from_backend,
    check_ca,
    find_backend,
    generate_ca,
    key_to_pem,
    load_ca,
)
from kmesh.pki._errors import CaUnavailable, InvalidCa, InvalidCsr, InvalidIdentity, PkiError
from kmesh.pki._identity import (
    WorkloadIdentity,
    check_mesh_name,
    identity_of,
    parse_spiffe_id,
    spiffe_id,
    spiffe_ids_from_peercert,
    workload_uris,
)
from kmesh.pki._provided import backend_ca, data_source_bytes, provided_ca, provided_files
from kmesh.pki._rotation import (
    DEFAULT_DP_CERT_LIFETIME_S,
    RENEW_FRACTION,
    dp_cert_lifetime_s,
    renew_at,
    signing_backend,
    trusted_cas,
)
from kmesh.pki._selfsigned import cert_fingerprint_sha256, generate_self_signed_server_cert
from kmesh.pki._storage import (
    CA_CERT_SECRET_INFIX,
    CA_KEY_SECRET_INFIX,
    ca_cert_secret_name,
    ca_from_secrets,
    ca_key_secret_name,
    ca_secrets,
)
from kmesh.pki._workload import generate_workload_key, make_csr, sign_workload_csr

__all__ = [
    "CA_CERT_SECRET_INFIX",
    "CA_KEY_SECRET_INFIX",
    "DEFAULT_CA_LIFETIME_S",
    "DEFAULT_DP_CERT_LIFETIME_S",
    "RENEW_FRACTION",
    "CaBundle",
    "CaUnavailable",
    "InvalidCa",
    "InvalidCsr",
    "InvalidIdentity",
    "LoadedCa",
    "PkiError",
    "PrivateKey",
    "WorkloadIdentity",
    "backend_ca",
    "ca_cert_secret_name",
    "ca_from_backend",
    "ca_from_secrets",
    "ca_key_secret_name",
    "ca_secrets",
    "cert_fingerprint_sha256",
    "check_ca",
    "check_mesh_name",
    "data_source_bytes",
    "dp_cert_lifetime_s",
    "find_backend",
    "generate_ca",
    "generate_self_signed_server_cert",
    "generate_workload_key",
    "identity_of",
    "key_to_pem",
    "load_ca",
    "make_csr",
    "parse_spiffe_id",
    "provided_ca",
    "provided_files",
    "renew_at",
    "sign_workload_csr",
    "signing_backend",
    "spiffe_id",
    "spiffe_ids_from_peercert",
    "trusted_cas",
    "workload_uris",
]
