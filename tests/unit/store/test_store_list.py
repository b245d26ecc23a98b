"""Contract: listing with filters and pagination, on every store."""

from __future__ import annotations

import pytest

from kmesh.store import Create, ListPage


@pytest.fixture
async def populated(store, res):
    await store.commit([Create(res.mesh("a")), Create(res.mesh("b"))])
    await store.commit(
        [
            Create(res.secret("web-2", mesh="b", labels={"kuma.io/service": "web", "tier": "front"})),
            Create(res.secret("web-1", mesh="a", zone="west", labels={"kuma.io/service": "web"})),
            Create(
                res.secret("web-1", mesh="a", zone="east", labels={"kuma.io/service": "web", "tier": "front"})
            ),
            Create(res.secret("db-1", mesh="a", labels={"kuma.io/service": "db"})),
            Create(res.secret("web_x", mesh="a", labels={"kuma.io/service": "web%"})),
            Create(res.secret("WEB-3", mesh="a")),
        ]
    )
    return store


def names(page: ListPage) -> list[tuple[str, str, str]]:
    return [(r.meta.mesh, r.meta.name, r.meta.zone) for r in page.items]


async def test_list_is_ordered_by_mesh_name_zone(populated):
    page = await populated.list("Secret")
    assert names(page) == [
        ("a", "WEB-3", ""),
        ("a", "db-1", ""),
        ("a", "web-1", "east"),
        ("a", "web-1", "west"),
        ("a", "web_x", ""),
        ("b", "web-2", ""),
    ]
    assert (page.total, page.next_offset) == (6, None)


async def test_list_of_a_type_with_nothing_stored_is_empty(populated):
    page = await populated.list("Zone")
    assert (page.items, page.total, page.next_offset) == ([], 0, None)


async def test_list_filters_by_mesh_and_zone(populated):
    assert names(await populated.list("Secret", mesh="b")) == [("b", "web-2", "")]
    assert names(await populated.list("Secret", zone="east")) == [("a", "web-1", "east")]
    assert names(await populated.list("Secret", mesh="a", zone="")) == [
        ("a", "WEB-3", ""),
        ("a", "db-1", ""),
        ("a", "web_x", ""),
    ]


async def test_list_filters_by_every_label_given(populated):
    web = await populated.list("Secret", labels={"kuma.io/service": "web"})
    assert names(web) == [("a", "web-1", "east"), ("a", "web-1", "west"), ("b", "web-2", "")]
    front = await populated.list("Secret", labels={"kuma.io/service": "web", "tier": "front"})
    assert names(front) == [("a", "web-1", "east"), ("b", "web-2", "")]
    assert (await populated.list("Secret", labels={"tier": "back"})).total == 0
    # Label values are matched exactly, with no wildcard meaning.
    assert names(await populated.list("Secret", labels={"kuma.io/service": "web%"})) == [("a", "web_x", "")]


async def test_list_filters_by_exact_case_name_prefix(populated):
    assert names(await populated.list("Secret", name_prefix="web-")) == [
        ("a", "web-1", "east"),
        ("a", "web-1", "west"),
        ("b", "web-2", ""),
    ]
    # "_" is a plain character, not a single-character wildcard.
    assert names(await populated.list("Secret", name_prefix="web_")) == [("a", "web_x", "")]
    assert names(await populated.list("Secret", name_prefix="WEB")) == [("a", "WEB-3", "")]


async def test_filters_combine(populated):
    page = await populated.list("Secret", mesh="a", name_prefix="web", labels={"tier": "front"})
    assert names(page) == [("a", "web-1", "east")]


async def test_pagination_walks_every_item_once(populated):
    first = await populated.list("Secret", limit=4)
    assert (len(first.items), first.total, first.next_offset) == (4, 6, 4)
    last = await populated.list("Secret", offset=first.next_offset, limit=4)
    assert (len(last.items), last.total, last.next_offset) == (2, 6, None)
    everything = await populated.list("Secret")
    assert first.items + last.items == everything.items


async def test_page_ending_exactly_at_the_end_is_the_last(populated):
    page = await populated.list("Secret", offset=3, limit=3)
    assert (len(page.items), page.next_offset) == (3, None)


async def test_offset_past_the_end_is_an_empty_last_page(populated):
    page = await populated.list("Secret", offset=10, limit=2)
    assert (page.items, page.total, page.next_offset) == ([], 6, None)


async def test_pagination_counts_only_filtered_items(populated):
    page = await populated.list("Secret", labels={"kuma.io/service": "web"}, limit=2)
    assert (names(page), page.total, page.next_offset) == (
        [("a", "web-1", "east"), ("a", "web-1", "west")],
        3,
        2,
    )


@pytest.mark.parametrize(("offset", "limit"), [(-1, None), (0, 0), (0, -5)])
async def test_bad_window_is_value_error(store, offset, limit):
    with pytest.raises(ValueError, match="must be"):
        await store.list("Secret", offset=offset, limit=limit)
