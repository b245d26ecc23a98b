"""Type names on kmeshctl's command line resolve through the descriptor table, and map to Kuma's paths."""

from __future__ import annotations

import pytest

from kmesh.cli._types import (
    UnknownType,
    collection_path,
    item_path,
    resolve_type,
    spec_of,
    valid_type_names,
)
from kmesh.model import all_descriptors, descriptor


@pytest.mark.parametrize("desc", list(all_descriptors()), ids=lambda d: d.name)
def test_every_cli_name_of_every_type_resolves(desc) -> None:
    for name in (desc.singular, desc.plural, *desc.short_names):
        assert resolve_type(name) is desc
        assert resolve_type(name.upper()) is desc


@pytest.mark.parametrize("desc", list(all_descriptors()), ids=lambda d: d.name)
def test_type_name_resolves_in_any_case(desc) -> None:
    assert resolve_type(desc.name) is desc
    assert resolve_type(desc.name.lower()) is desc


def test_unknown_type_lists_every_valid_plural() -> None:
    with pytest.raises(UnknownType) as info:
        resolve_type("meshez")
    message = str(info.value)
    assert message.startswith('unknown resource type "meshez"; valid types: ')
    for desc in all_descriptors():
        assert desc.plural in message
    assert valid_type_names() == sorted(valid_type_names())


def test_paths_follow_kuma_layout() -> None:
    mesh = descriptor("Mesh")
    secret = descriptor("Secret")
    assert collection_path(mesh, "ignored") == "/meshes"
    assert item_path(mesh, "ignored", "default") == "/meshes/default"
    assert collection_path(secret, "prod") == "/meshes/prod/secrets"
    assert item_path(secret, "prod", "tls-key") == "/meshes/prod/secrets/tls-key"


def test_names_are_quoted_so_they_stay_one_segment() -> None:
    secret = descriptor("Secret")
    assert item_path(secret, "a/b", "x y/../z") == "/meshes/a%2Fb/secrets/x%20y%2F..%2Fz"


def test_spec_of_flat_type_is_the_document_without_its_envelope() -> None:
    doc = {
        "type": "Secret",
        "mesh": "default",
        "name": "s",
        "labels": {"a": "b"},
        "creationTime": "2024-01-01T00:00:00Z",
        "modificationTime": "2024-01-01T00:00:00Z",
        "data": "aGk=",
    }
    assert dict(spec_of(descriptor("Secret"), doc)) == {"data": "aGk="}


def test_spec_of_spec_type_reads_spec_and_tolerates_garbage() -> None:
    policies = [d for d in all_descriptors() if not d.flat]
    assert policies, "the model defines types with a spec section"
    desc = policies[0]
    assert dict(spec_of(desc, {"name": "p", "spec": {"targetRef": {"kind": "Mesh"}}})) == {
        "targetRef": {"kind": "Mesh"}
    }
    assert dict(spec_of(desc, {"name": "p", "spec": "nonsense"})) == {}
    assert dict(spec_of(desc, {"name": "p"})) == {}
