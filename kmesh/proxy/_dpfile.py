"""``kmesh-proxy --dataplane-file FILE [--dataplane-var k=v ...]``: the resource a proxy introduces itself by.

The file holds one resource in Kuma's Universal YAML: a ``Dataplane`` for a sidecar, a ``ZoneIngress`` for
an ingress, a ``ZoneEgress`` for an egress (as ``kuma-dp run --dataplane-file``). Steps, in this order:
1. read the file (UTF-8);
2. replace each ``{{ name }}`` with its ``--dataplane-var name=value`` (:mod:`kmesh._template`, the same
   templating as ``kmeshctl apply --var``);
3. parse with the model's ``load_documents`` (safe YAML loading, duplicate keys refused, every field
   validated; errors name the file, the document, the line and the field);
4. check that there is exactly one resource and that its type is the proxy type's.

The result is the resource's document as a plain dict, in the canonical form of ``to_document`` — what
``kmesh.dps.DpClient(dataplane_doc=...)`` sends in its Hello, where the control plane validates it again.

Rules: every problem with the user's file is a :class:`~kmesh.errors.KmeshError` whose message says what
is wrong and where; nothing here lets a foreign exception (OSError, yaml) or a traceback reach the user.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any, Final

from kmesh._template import substitute
from kmesh.errors import ConfigError
from kmesh.model import load_documents, to_document

__all__ = ["RESOURCE_TYPES", "dataplane_document", "load_dataplane_file"]

# The same table as the control plane's admission (kmesh.dps._admission.RESOURCE_TYPES), which refuses a
# Hello whose document does not match; checking here says so before the proxy even dials.
RESOURCE_TYPES: Final[Mapping[str, str]] = {
    "sidecar": "Dataplane",
    "ingress": "ZoneIngress",
    "egress": "ZoneEgress",
}
_PROXY_TYPE_OF: Final = {type_name: proxy_type for proxy_type, type_name in RESOURCE_TYPES.items()}
_VAR_FLAG: Final = "--dataplane-var"


def load_dataplane_file(
    path: str | os.PathLike[str], variables: Mapping[str, str], *, proxy_type: str
) -> dict[str, Any]:
    """The document of the one resource in the file at ``path`` (see the module docstring).

    Raises ConfigError when the file cannot be read (missing, a directory, no permission, not UTF-8),
    and whatever :func:`dataplane_document` raises for its content.
    """
    source = os.fspath(path)
    try:
        with open(source, encoding="utf-8") as f:
            text = f.read()
    except FileNotFoundError:
        raise ConfigError(
            f"{source}: no such file; --dataplane-file names the YAML of this proxy's "
            f"{RESOURCE_TYPES.get(proxy_type, 'Dataplane')}"
        ) from None
    except IsADirectoryError:
        raise ConfigError(f"{source}: is a directory; --dataplane-file names a YAML file") from None
    except OSError as exc:
        raise ConfigError(f"{source}: cannot read it: {exc.strerror or exc}") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(
            f"{source}: cannot read it: it is not UTF-8 text ({exc.reason} at byte {exc.start})"
        ) from None
    return dataplane_document(text, variables, source=source, proxy_type=proxy_type)


def dataplane_document(
    text: str, variables: Mapping[str, str], *, source: str, proxy_type: str
) -> dict[str, Any]:
    """The document of the one resource in the YAML ``text``; ``source`` names it in errors.

    Raises:
        ConfigError: ``proxy_type`` is not sidecar, ingress or egress; the text holds no resource or more
            than one; or the resource is not of the proxy type's kind.
        UnsetVariable: a ``{{ name }}`` placeholder has no ``--dataplane-var`` (names the line).
        InvalidResource: broken YAML, or an invalid resource (names the document, line and field).
    """
    expected = RESOURCE_TYPES.get(proxy_type)
    if expected is None:
        raise ConfigError(f"--proxy-type {proxy_type!r} is not one of {', '.join(RESOURCE_TYPES)}")
    text = substitute(text, variables, source=source, flag=_VAR_FLAG)
    resources = load_documents(text, source=source)
    if not resources:
        raise ConfigError(f"{source}: holds no resource; it must describe this proxy as one {expected}")
    if len(resources) > 1:
        kinds = ", ".join(r.meta.type for r in resources)
        raise ConfigError(
            f"{source}: holds {len(resources)} resources ({kinds}); it must hold exactly one, the proxy's "
            f"{expected}"
        )
    resource = resources[0]
    found = resource.meta.type
    if found != expected:
        fits = _PROXY_TYPE_OF.get(found)
        if fits is not None:
            raise ConfigError(f"{source}: a {found} needs --proxy-type {fits}, not {proxy_type}")
        raise ConfigError(
            f"{source}: a {found} does not describe a proxy; "
            f"a {proxy_type} proxy is described by a {expected}"
        )
    return to_document(resource)
