"""Who may join: the document, its type, the mesh, the token and the identity it allows, the mesh's
constraints; and what is registered for an admitted proxy."""

from __future__ import annotations

from typing import Any

import pytest

from kmesh.dps import Hello, issue_zone_proxy_token, zone_proxy_signing_key_secret
from kmesh.dps._admission import LABEL_PROXY_INSTANCE, Admitted, Refused, admit
from kmesh.model import Resource
from kmesh.model.types import ZoneIngressSpec
from kmesh.tokens import dataplane_revocations_secret, generate_signing_key

from .material import NOW_S, ZONE, dataplane_doc, egress_doc, ingress_doc, mesh, signing, token

KEY, KEY_SECRET = signing()
OTHER_KEY, OTHER_SECRET = signing("other")
ZP_KEY = generate_signing_key()
ZP_SECRET = zone_proxy_signing_key_secret(ZP_KEY, 1)
MESHES = {"default": mesh(), "other": mesh("other")}


def hello(doc: dict[str, Any], tok: str, proxy_type: str = "sidecar", **extra: Any) -> Hello:
    return Hello(proxy_type=proxy_type, dataplane=doc, token=tok, instance_id="proxy-7", **extra)


def judge(
    h: Hello, *, secrets: list[Resource] | None = None, meshes: dict[str, Resource] | None = None, **kw: Any
) -> Admitted | Refused:
    return admit(
        h,
        zone=ZONE,
        meshes=MESHES if meshes is None else meshes,
        secrets=[KEY_SECRET] if secrets is None else secrets,
        global_secrets=[ZP_SECRET],
        now=NOW_S,
        **kw,
    )


def refused(result: Admitted | Refused) -> Refused:
    assert isinstance(result, Refused), result
    return result


def test_a_sidecar_with_its_token_is_admitted_and_labelled() -> None:
    result = judge(hello(dataplane_doc(), token(KEY, name="web-1", tags={"kuma.io/service": "web"})))
    assert isinstance(result, Admitted)
    meta = result.resource.meta
    assert (meta.type, meta.mesh, meta.name) == ("Dataplane", "default", "web-1")
    assert meta.labels == {"kuma.io/origin": "zone", "kuma.io/zone": ZONE, LABEL_PROXY_INSTANCE: "proxy-7"}
    assert result.claims is not None
    assert result.claims.name == "web-1"


def test_an_unbound_token_of_the_mesh_admits_any_dataplane() -> None:
    assert isinstance(judge(hello(dataplane_doc("db-1", service="db"), token(KEY))), Admitted)


def test_an_invalid_document_is_refused_with_every_field_at_fault() -> None:
    doc = dataplane_doc()
    doc["networking"] = {"address": "0.0.0.0", "inbound": [{"port": 8080, "tags": {}}]}
    result = refused(judge(hello(doc, token(KEY))))
    assert result.code == "bad_dataplane"
    assert "networking.address" in result.reason
    assert 'networking.inbound[0].tags["kuma.io/service"]' in result.reason
    assert "the proxy's dataplane document" in result.reason


@pytest.mark.parametrize(
    ("doc", "proxy_type", "hint"),
    [
        (ingress_doc(), "sidecar", "--proxy-type ingress"),
        (dataplane_doc(), "egress", "--proxy-type sidecar"),
        (egress_doc(), "ingress", "--proxy-type egress"),
    ],
)
def test_a_document_of_another_proxy_type_is_refused(doc: dict[str, Any], proxy_type: str, hint: str) -> None:
    result = refused(judge(hello(doc, "t", proxy_type)))
    assert result.code == "bad_dataplane"
    assert hint in result.reason


def test_a_zone_proxy_of_another_zone_is_refused() -> None:
    doc = ingress_doc(zone="zone-2")
    result = refused(
        judge(
            hello(
                doc,
                issue_zone_proxy_token(ZP_KEY, proxy_type="ingress", valid_for_s=60, now=NOW_S),
                "ingress",
            )
        )
    )
    assert result.code == "bad_dataplane"
    assert "belongs to zone 'zone-2'" in result.reason


def test_an_unknown_mesh_is_refused_before_the_token() -> None:
    result = refused(judge(hello(dataplane_doc(mesh_name="nope"), "")))
    assert result.code == "mesh_not_found"
    assert "mesh 'nope' does not exist in this zone" in result.reason


@pytest.mark.parametrize(
    ("tok", "code", "words"),
    [
        ("", "unauthenticated", "kmeshctl generate dataplane-token --mesh default --name web-1"),
        ("not-a-jwt", "token_malformed", ""),
        (
            token(OTHER_KEY, "other"),
            "token_mismatch",
            "token is for mesh 'other', but the dataplane is in mesh 'default'",
        ),
        (token(KEY, name="web-2"), "token_mismatch", "token is for dataplane 'web-2'"),
        (
            token(KEY, tags={"kuma.io/service": "db"}),
            "token_mismatch",
            "token allows only kuma.io/service=db",
        ),
        (token(KEY, proxy_type="ingress"), "token_mismatch", "token is for a ingress proxy"),
    ],
    ids=["missing", "garbage", "other-mesh", "other-name", "other-tags", "other-type"],
)
def test_token_refusals_say_what_is_wrong(tok: str, code: str, words: str) -> None:
    result = refused(judge(hello(dataplane_doc(), tok)))
    assert result.code == code
    assert words in result.reason
    if tok:
        assert tok not in result.reason


def test_a_mesh_without_keys_here_says_so() -> None:
    result = refused(judge(hello(dataplane_doc(), token(KEY)), secrets=[]))
    assert result.code == "unauthenticated"
    assert "no token signing key here yet" in result.reason


def test_a_revoked_token_is_refused() -> None:
    tok = token(KEY, token_id="tok-1")
    revocations = dataplane_revocations_secret(["tok-1"], mesh="default")
    result = refused(judge(hello(dataplane_doc(), tok), secrets=[KEY_SECRET, revocations]))
    assert result.code == "token_revoked"


def test_without_authentication_no_token_is_needed() -> None:
    result = judge(hello(dataplane_doc(), ""), require_token=False)
    assert isinstance(result, Admitted)
    assert result.claims is None


def test_zone_proxies_use_zone_proxy_tokens() -> None:
    ingress_token = issue_zone_proxy_token(
        ZP_KEY, proxy_type="ingress", name="ingress-1", valid_for_s=60, now=NOW_S
    )
    result = judge(hello(ingress_doc(), ingress_token, "ingress"))
    assert isinstance(result, Admitted)
    spec = result.resource.spec
    assert isinstance(spec, ZoneIngressSpec)
    assert spec.zone == ZONE
    assert result.resource.meta.labels["kuma.io/zone"] == ZONE
    # The ingress's token does not make an egress, nor does a mesh's dataplane token make an ingress.
    assert refused(judge(hello(egress_doc(), ingress_token, "egress"))).code == "token_mismatch"
    assert refused(judge(hello(ingress_doc(), token(KEY), "ingress"))).code == "token_unknown_key"


def test_mesh_constraints_are_enforced() -> None:
    constrained = mesh(
        constraints={
            "dataplaneProxy": {
                "requirements": [{"tags": {"kuma.io/service": "*"}}],
                "restrictions": [{"tags": {"team": "legacy"}}],
            }
        }
    )
    meshes = {"default": constrained}
    assert isinstance(judge(hello(dataplane_doc(), token(KEY)), meshes=meshes), Admitted)
    result = refused(judge(hello(dataplane_doc(tags={"team": "legacy"}), token(KEY)), meshes=meshes))
    assert result.code == "dataplane_not_allowed"
    assert "restrictions" in result.reason


def test_an_instance_id_that_is_no_label_value_is_left_out() -> None:
    odd = Hello(proxy_type="sidecar", dataplane=dataplane_doc(), token=token(KEY), instance_id="bad id!")
    result = judge(odd)
    assert isinstance(result, Admitted)
    assert LABEL_PROXY_INSTANCE not in result.resource.meta.labels
