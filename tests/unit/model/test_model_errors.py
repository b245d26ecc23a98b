"""Every kind of bad input is refused with the field, the document number, the line and the resource."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from kmesh.errors import InvalidResource
from kmesh.model import load_documents

LoadError = Callable[[str], InvalidResource]

DATAPLANE = """\
type: Dataplane
mesh: default
name: web-1
networking:
  address: 10.0.0.1
  inbound:
    - port: {port}
      tags:
        kuma.io/service: web
"""


def only(err: InvalidResource) -> tuple[str, str]:
    assert len(err.violations) == 1, err.violations
    return err.violations[0].field, err.violations[0].reason


def test_broken_yaml_names_source_line_and_problem(yaml_error: LoadError) -> None:
    err = yaml_error("type: Mesh\nname: default\nmtls: {enabledBackend: ca-1\nrouting: {}\n")
    assert err.source == "input.yaml"
    assert err.line == 4
    field, reason = only(err)
    assert field == ""
    assert reason.startswith("invalid YAML: ")
    assert "input.yaml, line 4" in str(err)


def test_bad_indentation_is_a_yaml_error(yaml_error: LoadError) -> None:
    err = yaml_error("type: Zone\nname: z\n  enabled: true\n")
    assert err.line == 3
    assert "invalid YAML" in str(err)


def test_unknown_field_is_reported_at_its_own_path_and_line(yaml_error: LoadError) -> None:
    text = DATAPLANE.format(port=80) + "      healthz: true\n"
    err = yaml_error(text)
    field, reason = only(err)
    assert field == "networking.inbound[0].healthz"
    assert reason.startswith("unknown field")
    assert "serviceProbe" in reason  # lists what is allowed there
    assert err.line == 10
    assert err.source == "input.yaml, document 1"
    assert err.resource == 'Dataplane "web-1"'


def test_wrong_type(yaml_error: LoadError) -> None:
    err = yaml_error(DATAPLANE.format(port="http"))
    assert only(err) == ("networking.inbound[0].port", "expected int, got str")
    assert err.line == 7
    assert str(err) == (
        'input.yaml, document 1, line 7, Dataplane "web-1": networking.inbound[0].port: expected int, got str'
    )


def test_missing_required_field(yaml_error: LoadError) -> None:
    err = yaml_error("type: ZoneEgress\nname: e\nnetworking:\n  address: 10.0.0.1\n")
    assert only(err) == ("networking.port", "required field is missing")
    # The field is absent, so the line is that of the nearest enclosing key that exists.
    assert err.line == 3


def test_bad_enum_value_lists_the_allowed_ones(yaml_error: LoadError) -> None:
    text = """\
type: MeshTrafficPermission
mesh: default
name: allow-all
spec:
  targetRef:
    kind: Mesh
  from:
    - targetRef:
        kind: Mesh
      default:
        action: Permit
"""
    err = yaml_error(text)
    field, reason = only(err)
    assert field == "spec.from[0].default.action"
    for allowed in ("Allow", "Deny", "AllowWithShadowDeny"):
        assert allowed in reason
    assert "'Permit'" in reason
    assert err.line == 11


def test_bad_duration_names_the_field_and_the_document(yaml_error: LoadError) -> None:
    text = """\
type: Mesh
name: default
---
type: MeshTimeout
mesh: default
name: slow
spec:
  to:
    - targetRef:
        kind: Mesh
      default:
        connectionTimeout: 5 seconds
"""
    err = yaml_error(text)
    field, reason = only(err)
    assert field == "spec.to[0].default.connectionTimeout"
    assert "unknown unit" in reason
    assert err.source == "input.yaml, document 2"
    assert err.line == 12


def test_number_given_for_a_duration(yaml_error: LoadError) -> None:
    text = "type: Mesh\nname: m\nmtls:\n  backends:\n    - name: ca-1\n      type: builtin\n"
    text += "      dpCert:\n        rotation:\n          expiration: 24\n"
    err = yaml_error(text)
    field, reason = only(err)
    assert field == "mtls.backends[0].dpCert.rotation.expiration"
    assert reason.startswith("expected a duration string")
    assert err.line == 9


@pytest.mark.parametrize(("port", "bound"), [(0, ">= 1"), (70000, "<= 65535")])
def test_bad_port(yaml_error: LoadError, port: int, bound: str) -> None:
    err = yaml_error(DATAPLANE.format(port=port))
    assert only(err) == ("networking.inbound[0].port", f"expected int {bound}, got {port}")
    assert err.line == 7


@pytest.mark.parametrize("name", ["-web", "web_", "web 1", "wéb", "a" * 254, "x/y"])
def test_bad_name(yaml_error: LoadError, name: str) -> None:
    err = yaml_error(f"type: Zone\nname: '{name}'\n")
    field, _ = only(err)
    assert field == "name"
    assert err.line == 2


def test_empty_name(yaml_error: LoadError) -> None:
    err = yaml_error("type: Zone\nname: ''\n")
    assert only(err) == ("name", "must not be empty")


def test_missing_name(yaml_error: LoadError) -> None:
    err = yaml_error("type: Zone\nenabled: true\n")
    assert only(err) == ("name", "required field is missing")


def test_mesh_missing_for_mesh_scoped_type(yaml_error: LoadError) -> None:
    err = yaml_error("type: Secret\nname: s\ndata: YQ==\n")
    field, reason = only(err)
    assert field == "mesh"
    assert reason.startswith("required field is missing")


def test_mesh_forbidden_for_global_type(yaml_error: LoadError) -> None:
    err = yaml_error("type: Zone\nname: z\nmesh: default\n")
    field, reason = only(err)
    assert field == "mesh"
    assert reason.startswith("must not be set")
    assert err.line == 3


def test_empty_mesh_is_accepted_for_a_global_type() -> None:
    (zone,) = load_documents("type: Zone\nname: z\nmesh: ''\n", source="z.yaml")
    assert zone.meta.mesh == ""


def test_bad_mesh_name(yaml_error: LoadError) -> None:
    err = yaml_error("type: Secret\nname: s\nmesh: Not Valid\ndata: YQ==\n")
    assert only(err)[0] == "mesh"


def test_unknown_type_lists_the_known_ones(yaml_error: LoadError) -> None:
    err = yaml_error("type: Zone\nname: a\n---\ntype: TrafficRoute\nname: b\n")
    field, reason = only(err)
    assert field == "type"
    assert "'TrafficRoute'" in reason
    assert "MeshTrafficPermission" in reason
    assert err.source == "input.yaml, document 2"
    assert err.line == 4


def test_missing_type(yaml_error: LoadError) -> None:
    err = yaml_error("name: a\n")
    field, reason = only(err)
    assert field == "type"
    assert reason.startswith("required field is missing")


def test_document_that_is_not_a_mapping(yaml_error: LoadError) -> None:
    err = yaml_error("- type: Zone\n  name: a\n")
    assert only(err)[1].endswith("got list")


def test_semantic_rule_reports_field_and_line(yaml_error: LoadError) -> None:
    text = "type: Dataplane\nmesh: default\nname: dp\nnetworking:\n  address: 10.0.0.1\n"
    text += "  inbound:\n    - port: 80\n      tags:\n        app: web\n"
    err = yaml_error(text)
    field, reason = only(err)
    assert field == 'networking.inbound[0].tags["kuma.io/service"]'
    assert "service" in reason
    assert err.line == 8


def test_map_value_of_wrong_type_names_its_key(yaml_error: LoadError) -> None:
    text = "type: Dataplane\nmesh: default\nname: dp\nnetworking:\n  address: 10.0.0.1\n"
    text += "  inbound:\n    - port: 80\n      tags:\n        kuma.io/service: web\n        version: 2\n"
    err = yaml_error(text)
    assert only(err) == ('networking.inbound[0].tags["version"]', "expected str, got int")
    assert err.line == 10


def test_map_key_of_wrong_type(yaml_error: LoadError) -> None:
    text = "type: Dataplane\nmesh: default\nname: dp\nnetworking:\n  address: 10.0.0.1\n"
    text += "  inbound:\n    - port: 80\n      tags:\n        kuma.io/service: web\n        8080: x\n"
    err = yaml_error(text)
    assert only(err) == ("networking.inbound[0].tags", "keys must be strings, got int")


def test_bad_label(yaml_error: LoadError) -> None:
    err = yaml_error("type: Zone\nname: z\nlabels:\n  team: payments\n  'no spaces': x\n")
    field, _ = only(err)
    assert field == 'labels["no spaces"]'
    assert err.line == 5


def test_duplicate_key_is_refused(yaml_error: LoadError) -> None:
    err = yaml_error("type: Zone\nname: a\nenabled: true\nenabled: false\n")
    assert only(err) == ("enabled", "duplicate key")
    assert err.line == 4


def test_bad_time_in_an_insight(yaml_error: LoadError) -> None:
    text = "type: ZoneInsight\nname: z\nsubscriptions:\n  - id: a\n    globalInstanceId: g\n"
    text += "    connectTime: yesterday\n"
    err = yaml_error(text)
    field, reason = only(err)
    assert field == "subscriptions[0].connectTime"
    assert "RFC 3339" in reason
    assert err.line == 6


def test_unknown_top_level_field_of_a_flat_type(yaml_error: LoadError) -> None:
    err = yaml_error("type: Zone\nname: z\nenable: false\n")
    assert only(err) == ("enable", "unknown field; allowed here: enabled")
    assert err.line == 3


def test_spec_of_the_wrong_shape(yaml_error: LoadError) -> None:
    err = yaml_error("type: MeshRetry\nmesh: m\nname: r\nspec:\n  - to: []\n")
    assert only(err) == ("spec", "expected mapping, got list")
    assert err.line == 4


def test_unknown_field_inside_spec(yaml_error: LoadError) -> None:
    err = yaml_error("type: MeshRetry\nmesh: m\nname: r\nspec:\n  targetRef: {kind: Mesh}\n  too: []\n")
    assert only(err) == ("spec.too", "unknown field; allowed here: targetRef, to")
    assert err.line == 6


def test_policy_spec_type_unknown_top_level_key(yaml_error: LoadError) -> None:
    err = yaml_error("type: MeshRetry\nmesh: default\nname: r\nto: []\n")
    messages = {v.field: v.reason for v in err.violations}
    assert messages["to"] == "unknown field; allowed here: type, mesh, name, labels, spec"


def test_all_semantic_violations_are_reported_together(yaml_error: LoadError) -> None:
    text = """\
type: Mesh
name: default
mtls:
  enabledBackend: ca-9
  backends:
    - name: ca-1
      type: provided
    - name: ca-1
      type: builtin
"""
    err = yaml_error(text)
    fields = [v.field for v in err.violations]
    assert "mtls.enabledBackend" in fields
    assert "mtls.backends[1].name" in fields
    assert "mtls.backends[0].conf.cert" in fields
    assert "mtls.backends[0].conf.key" in fields


def test_first_bad_document_stops_the_whole_stream() -> None:
    good = "type: Zone\nname: a\n"
    with pytest.raises(InvalidResource) as info:
        load_documents(f"{good}---\ntype: Zone\nname: -b\n---\n{good}", source="s.yaml")
    assert info.value.source == "s.yaml, document 2"


def test_empty_documents_are_skipped_but_counted() -> None:
    # A comment before the first "---" is not a document of its own (YAML); the empty one between the
    # two "---" is, so the bad Zone is document 3.
    text = "# just a comment\n---\ntype: Zone\nname: a\n---\n---\ntype: Zone\nname: '!'\n"
    with pytest.raises(InvalidResource) as info:
        load_documents(text, source="s.yaml")
    assert info.value.source == "s.yaml, document 3"
    assert info.value.line == 8
    assert load_documents("---\n---\n", source="empty.yaml") == []


def test_error_inside_a_map_of_structs_names_the_right_key(yaml_error: LoadError) -> None:
    text = """\
type: ZoneInsight
name: z
subscriptions:
  - id: a
    globalInstanceId: g
    connectTime: 2024-01-01T00:00:00Z
    status:
      stat:
        Mesh: {responsesSent: 1}
        Secret: {responsesSent: lots}
        Zone: {responsesSent: 2}
"""
    err = yaml_error(text)
    assert only(err) == ('subscriptions[0].status.stat["Secret"].responsesSent', "expected int, got str")
    assert err.line == 10
