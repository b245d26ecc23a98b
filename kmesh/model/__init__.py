"""kmesh's resource model: the descriptor table, the resource envelope and every type's spec.

Sans-IO: nothing here imports asyncio or socket.
"""

from __future__ import annotations

from kmesh.model import types as _types  # noqa: F401 - registers every resource type
from kmesh.model._descriptor import (
    KdsDirection,
    ResourceDescriptor,
    Scope,
    all_descriptors,
    by_cli_name,
    by_path,
    descriptor,
    register,
)
from kmesh.model._resource import (
    LABEL_ORIGIN,
    LABEL_PROTOCOL,
    LABEL_SERVICE,
    LABEL_ZONE,
    Meta,
    Resource,
    ResourceKey,
    Spec,
)

__all__ = [
    "LABEL_ORIGIN",
    "LABEL_PROTOCOL",
    "LABEL_SERVICE",
    "LABEL_ZONE",
    "KdsDirection",
    "Meta",
    "Resource",
    "ResourceDescriptor",
    "ResourceKey",
    "Scope",
    "Spec",
    "all_descriptors",
    "by_cli_name",
    "by_path",
    "descriptor",
    "register",
]
