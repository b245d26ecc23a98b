"""Secret (inside a mesh) and GlobalSecret (beside meshes): base64 data, Kuma's flat form ``data: <base64>``.

Rules: ``data`` is non-empty, valid base64 (checked by its ``Base64`` type). Mesh secrets flow from the
global to zones (CA material, provided certificates); global secrets stay on the control plane that holds
them (signing keys for tokens), except the zone-token public keys and revocation list, which the global
sends to zones (the descriptor's ``kds_name_prefixes``).
"""

from __future__ import annotations

import base64
from typing import final

from kmesh.model._descriptor import KdsDirection, ResourceDescriptor, Scope, register
from kmesh.model._fields import Base64, Problems
from kmesh.model._resource import Spec

__all__ = ["GlobalSecretSpec", "SecretSpec"]


class _SecretData(Spec, frozen=True, kw_only=True, forbid_unknown_fields=True):
    # A default keeps ``SecretSpec()`` constructible; an empty secret is refused by ``problems``.
    data: Base64 = ""

    def problems(self) -> Problems:
        if not self.data:
            yield "data", "must not be empty"

    @property
    def value(self) -> bytes:
        """The decoded bytes."""
        return base64.b64decode(self.data)


@final
class SecretSpec(_SecretData, frozen=True, kw_only=True, forbid_unknown_fields=True):
    @classmethod
    def from_bytes(cls, value: bytes) -> SecretSpec:
        return cls(data=base64.b64encode(value).decode("ascii"))


@final
class GlobalSecretSpec(_SecretData, frozen=True, kw_only=True, forbid_unknown_fields=True):
    @classmethod
    def from_bytes(cls, value: bytes) -> GlobalSecretSpec:
        return cls(data=base64.b64encode(value).decode("ascii"))


register(
    ResourceDescriptor(
        name="Secret",
        spec_type=SecretSpec,
        scope=Scope.MESH,
        kds=KdsDirection.GLOBAL_TO_ZONES,
        path="secrets",
        singular="secret",
        plural="secrets",
        flat=True,
    )
)
register(
    ResourceDescriptor(
        name="GlobalSecret",
        spec_type=GlobalSecretSpec,
        scope=Scope.GLOBAL,
        kds=KdsDirection.NONE,
        path="global-secrets",
        singular="global-secret",
        plural="global-secrets",
        flat=True,
        # Only the zone-token public keys and the zone-token revocation list reach zones (Kuma's way), so a
        # zone control plane can verify zone tokens of its ingresses and egresses; key material such as
        # zone-token-signing-key-<n> or kds-server-tls never leaves the global. Names from kmesh.tokens.
        kds_name_prefixes=("zone-token-signing-public-key-", "zone-token-revocations"),
    )
)
