"""Query-string parsing of the API: paging, both filter spellings, the zone selector, and refusals."""

from __future__ import annotations

import pytest
from yarl import URL

from kmesh.api._query import (
    DEFAULT_PAGE_SIZE,
    MAX_PAGE_SIZE,
    ListQuery,
    next_page_url,
    parse_list_query,
    parse_zone,
)
from kmesh.api._responses import ApiError


def _field_of(exc: pytest.ExceptionInfo[ApiError]) -> str:
    assert exc.value.status == 400
    [violation] = exc.value.invalid_parameters
    return violation.field


def test_defaults_when_nothing_is_given() -> None:
    assert parse_list_query([]) == ListQuery(size=DEFAULT_PAGE_SIZE, offset=0, labels={}, name_prefix=None)


def test_paging_and_filters_in_short_form() -> None:
    query = parse_list_query(
        [
            ("size", "5"),
            ("offset", "10"),
            ("labels.app", "web"),
            ("labels.kuma.io/zone", "z1"),
            ("name", "we"),
        ]
    )
    assert query == ListQuery(
        size=5, offset=10, labels={"app": "web", "kuma.io/zone": "z1"}, name_prefix="we"
    )


def test_kuma_bracketed_filters_mean_the_same() -> None:
    query = parse_list_query([("filter[labels.app]", "web"), ("filter[name]", "db")])
    assert query.labels == {"app": "web"}
    assert query.name_prefix == "db"


def test_zone_filter_and_unknown_parameters_ignored() -> None:
    query = parse_list_query([("zone", "east"), ("_", "1700000000"), ("format", "json")])
    assert query.zone == "east"
    assert query.labels == {}


@pytest.mark.parametrize(
    ("key", "value"),
    [("size", "abc"), ("size", "0"), ("size", str(MAX_PAGE_SIZE + 1)), ("size", "-1"), ("size", " 5")],
)
def test_bad_size_is_a_400_naming_size(key: str, value: str) -> None:
    with pytest.raises(ApiError) as exc:
        parse_list_query([(key, value)])
    assert _field_of(exc) == "size"


def test_max_size_is_accepted() -> None:
    assert parse_list_query([("size", str(MAX_PAGE_SIZE))]).size == MAX_PAGE_SIZE


def test_bad_offset_is_a_400_naming_offset() -> None:
    with pytest.raises(ApiError) as exc:
        parse_list_query([("offset", "1.5")])
    assert _field_of(exc) == "offset"


def test_same_label_twice_in_either_spelling_is_refused() -> None:
    with pytest.raises(ApiError) as exc:
        parse_list_query([("labels.app", "a"), ("filter[labels.app]", "b")])
    assert _field_of(exc) == "filter[labels.app]"
    assert "more than once" in exc.value.details


def test_unknown_bracketed_filter_is_refused() -> None:
    with pytest.raises(ApiError) as exc:
        parse_list_query([("filter[color]", "red")])
    assert _field_of(exc) == "filter[color]"


def test_label_filter_without_key_is_refused() -> None:
    with pytest.raises(ApiError) as exc:
        parse_list_query([("labels.", "x")])
    assert _field_of(exc) == "labels."


def test_parse_zone() -> None:
    assert parse_zone([("size", "1")]) is None
    assert parse_zone([("zone", "west")]) == "west"
    with pytest.raises(ApiError) as exc:
        parse_zone([("zone", "")])
    assert _field_of(exc) == "zone"
    with pytest.raises(ApiError):
        parse_zone([("zone", "a"), ("zone", "b")])


def test_next_page_url_keeps_filters_and_moves_offset() -> None:
    url = URL("http://127.0.0.1:5681/meshes/default/dataplanes?labels.app=web&size=2")
    assert next_page_url(url, None, 2) is None
    following = URL(next_page_url(url, 2, 2) or "")
    assert following.is_absolute()
    assert following.path == "/meshes/default/dataplanes"
    assert dict(following.query) == {"labels.app": "web", "size": "2", "offset": "2"}
