"""Names derived from (mesh, service, tag subset): TLS SNI, SPIFFE ids and cluster names.

Rules (DESIGN.md, "Cross-zone routing"):
- An SNI is ``<hash>.<service>.<mesh>.kmesh`` (``<hash>.<name>.<mesh>.ext.kmesh`` for a
  MeshExternalService). ``<service>`` and ``<mesh>`` are DNS-safe renderings for people reading logs:
  lower-cased, every run of characters outside ``[a-z0-9]`` turned into one ``-``, trimmed to 63
  characters, never empty. They lose information (case, ``.``, ``_``, ``:``, length), so uniqueness rests
  on ``<hash>`` alone: 16 base32 characters (80 bits) of SHA-256 over the *unsanitized* mesh, service and
  sorted tag subset, with the kind of destination as a domain separator. The longest SNI is therefore
  16 + 63 + 63 + 4 separators and suffixes, far below the 253-byte limit, and every label stays within 63.
- Nothing ever parses an SNI back: an ingress or egress finds the destination in the table its config
  carries (``IngressConfig.routes``), keyed by the exact SNI that ``sni_for`` produced on the sending side.
- ``tags`` names the subset without ``kuma.io/service``; a ``kuma.io/service`` key in ``tags`` is allowed
  only when it equals ``service`` (outbound tags carry it), so ``{"kuma.io/service": "web"}`` and ``{}``
  name the same subset.
- A SPIFFE id is ``spiffe://<mesh>/<service>``, as the mesh CA writes it into URI SANs.
- A cluster is named after its service, plus ``{k=v,...}`` (sorted) for a subset; external services are
  ``external/<name>``. ``{``, ``=`` and ``/`` never occur in a service name (a tag value), so the three
  shapes cannot collide.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
from collections.abc import Mapping
from typing import Final

from kmesh.model import LABEL_SERVICE

__all__ = [
    "EGRESS_SERVICE",
    "MAX_LABEL_BYTES",
    "MAX_SNI_BYTES",
    "cluster_name",
    "external_cluster_name",
    "external_sni",
    "sni_for",
    "spiffe_id",
    "subset_of",
]

MAX_SNI_BYTES: Final = 253
MAX_LABEL_BYTES: Final = 63
# Kuma's name for the service a zone egress presents when it terminates mTLS for external services.
EGRESS_SERVICE: Final = "zone-egress"
_SUFFIX: Final = "kmesh"
_EXTERNAL_SUFFIX: Final = "ext.kmesh"
_HASH_CHARS: Final = 16  # base32 characters: 80 bits, so a collision needs ~2**40 distinct destinations
_UNSAFE: Final = re.compile(r"[^a-z0-9]+")


def subset_of(service: str, tags: Mapping[str, str] | None) -> dict[str, str]:
    """The tag subset without ``kuma.io/service``, sorted by key.

    Raises ValueError when ``service`` is empty or ``tags`` names a different service.
    """
    if not service:
        raise ValueError("a destination needs a service name")
    subset = dict(tags or {})
    named = subset.pop(LABEL_SERVICE, service)
    if named != service:
        raise ValueError(f"tags name service {named!r} but the destination is {service!r}")
    return dict(sorted(subset.items()))


def _label(text: str) -> str:
    """A readable DNS label for ``text``: lower case, ``[a-z0-9-]``, at most 63 characters, never empty."""
    label = _UNSAFE.sub("-", text.lower()).strip("-")[:MAX_LABEL_BYTES].rstrip("-")
    return label or "x"


def _digest(kind: str, mesh: str, name: str, subset: Mapping[str, str]) -> str:
    # JSON of a list is an unambiguous encoding of the inputs (no separator can be forged by a name).
    canonical = json.dumps(
        [kind, mesh, name, sorted(subset.items())], ensure_ascii=False, separators=(",", ":")
    )
    raw = hashlib.sha256(canonical.encode()).digest()
    return base64.b32encode(raw).decode("ascii").lower()[:_HASH_CHARS]


def sni_for(mesh: str, service: str, tags: Mapping[str, str] | None = None) -> str:
    """The SNI of the subset ``tags`` of ``service`` in ``mesh``. Raises ValueError as ``subset_of``."""
    if not mesh:
        raise ValueError("a destination needs a mesh")
    subset = subset_of(service, tags)
    return f"{_digest('service', mesh, service, subset)}.{_label(service)}.{_label(mesh)}.{_SUFFIX}"


def external_sni(mesh: str, name: str) -> str:
    """The SNI a sidecar sends to its zone egress for the MeshExternalService ``name`` of ``mesh``."""
    if not mesh or not name:
        raise ValueError("an external service needs a mesh and a name")
    return f"{_digest('external', mesh, name, {})}.{_label(name)}.{_label(mesh)}.{_EXTERNAL_SUFFIX}"


def spiffe_id(mesh: str, service: str) -> str:
    """The URI SAN identifying ``service`` in ``mesh``."""
    return f"spiffe://{mesh}/{service}"


def cluster_name(service: str, tags: Mapping[str, str] | None = None) -> str:
    """``service`` for the whole service, ``service{k=v,...}`` for a subset."""
    subset = subset_of(service, tags)
    if not subset:
        return service
    return service + "{" + ",".join(f"{k}={v}" for k, v in subset.items()) + "}"


def external_cluster_name(name: str) -> str:
    """The cluster of the MeshExternalService ``name``."""
    return f"external/{name}"
