"""GlobalSecrets over KDS: only those the descriptor names by prefix (the zone-token public keys and the
zone-token revocation list) flow global -> zones; the global's private keys never leave it, and a zone's
own GlobalSecrets are never announced as known, accepted or removed. Both ends use the one selection."""

from __future__ import annotations

import msgspec
import pytest

from kmesh.kds import Role, record_id
from kmesh.kds._convert import RecordMapper, RecordRefused, carried
from kmesh.model import Resource, ResourceKey, new_resource
from kmesh.model.types import GlobalSecretSpec
from kmesh.tokens import (
    generate_signing_key,
    zone_public_key_secrets,
    zone_revocations_secret,
    zone_signing_key_secret,
)

ZONE = "zone-1"


def secrets() -> tuple[Resource, Resource, Resource, Resource]:
    private = zone_signing_key_secret(generate_signing_key(), 1)
    (public,) = zone_public_key_secrets([private])
    revocations = zone_revocations_secret(["a-token-id"])
    tls = new_resource("GlobalSecret", "kds-server-tls", GlobalSecretSpec.from_bytes(b"cert and key"))
    return private, public, revocations, tls


def test_the_global_sends_only_the_public_keys_and_the_revocation_list() -> None:
    private, public, revocations, tls = secrets()
    mapper = RecordMapper(Role.GLOBAL, ZONE)
    assert public.meta.name == "zone-token-signing-public-key-1"
    for carried_secret in (public, revocations):
        record = mapper.to_record(carried_secret)
        assert record is not None
        assert record.zone == ""
        assert mapper.sent_id(carried_secret.key) == record.id
        assert mapper.sent_key(record.id) == carried_secret.key
    for kept in (private, tls):
        assert mapper.to_record(kept) is None
        assert mapper.sent_id(kept.key) is None
        assert mapper.sent_key(record_id("GlobalSecret", "", kept.meta.name, "")) is None
    # A zone never sends GlobalSecrets up, whatever their names.
    assert RecordMapper(Role.ZONE, ZONE).to_record(public) is None


def test_a_zone_announces_and_accepts_only_carried_global_secrets() -> None:
    private, public, revocations, tls = secrets()
    sender, receiver = RecordMapper(Role.GLOBAL, ZONE), RecordMapper(Role.ZONE, ZONE)
    record = sender.to_record(public)
    assert record is not None
    applied = receiver.incoming(record, "GlobalSecret")
    assert applied.key == public.key
    known = receiver.known_entry(applied)
    assert known is not None
    assert known[:2] == (record.id, record.hash)
    # The zone's own GlobalSecrets (or a private key put there by hand) are not the global's to diff.
    local_tls = new_resource("GlobalSecret", "dp-server-tls", GlobalSecretSpec.from_bytes(b"zone cert"))
    for local in (local_tls, private, tls):
        assert receiver.known_entry(local) is None
    assert receiver.known_entry(revocations) is not None


def test_a_zone_refuses_a_private_global_secret_and_its_removal() -> None:
    private, _, _, _ = secrets()
    receiver = RecordMapper(Role.ZONE, ZONE)
    # The global would never send it; a record built by hand is refused all the same.
    forged = RecordMapper(Role.GLOBAL, ZONE)
    record = forged.to_record(zone_public_key_secrets([private])[0])
    assert record is not None
    renamed = msgspec.structs.replace(
        record, name=private.meta.name, id=record_id("GlobalSecret", "", private.meta.name, "")
    )
    with pytest.raises(RecordRefused, match="never leaves"):
        receiver.incoming(renamed, "GlobalSecret")
    with pytest.raises(RecordRefused, match="never leaves"):
        receiver.removal_key(record_id("GlobalSecret", "", "dp-server-tls", ""), "GlobalSecret")
    assert receiver.removal_key(
        record_id("GlobalSecret", "", "zone-token-signing-public-key-1", ""), "GlobalSecret"
    ) == ResourceKey("GlobalSecret", "zone-token-signing-public-key-1")


def test_the_selection_is_the_token_store_s_naming() -> None:
    private, public, revocations, _ = secrets()
    assert carried("GlobalSecret", public.meta.name)
    assert carried("GlobalSecret", revocations.meta.name)
    assert not carried("GlobalSecret", private.meta.name)
