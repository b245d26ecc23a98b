"""kmesh's resource model: the descriptor table, the resource envelope, every type's spec and the codec.

Sans-IO: nothing here imports asyncio or socket. The spec structs live in ``kmesh.model.types``.
"""

from __future__ import annotations

from kmesh.model import types as _types  # noqa: F401 - registers every resource type
from kmesh.model._codec import (
    decode_spec,
    encode_spec,
    new_resource,
    parse_resource,
    to_document,
    validate_resource,
)
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
from kmesh.model._duration import format_duration, parse_duration
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
from kmesh.model._yaml import load_documents

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
    "decode_spec",
    "descriptor",
    "encode_spec",
    "format_duration",
    "load_documents",
    "new_resource",
    "parse_duration",
    "parse_resource",
    "register",
    "to_document",
    "validate_resource",
]
