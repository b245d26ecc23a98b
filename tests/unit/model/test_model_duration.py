"""The duration parser: Go's syntax plus Kuma's d/w/y units, exact arithmetic, clear refusals."""

from __future__ import annotations

from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kmesh.model import format_duration, parse_duration


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("0", 0.0),
        ("0s", 0.0),
        ("15s", 15.0),
        ("500ms", 0.5),
        ("1h30m", 5400.0),
        ("1.5h", 5400.0),
        (".5s", 0.5),
        ("2m3s", 123.0),
        ("100us", 0.0001),
        ("100µs", 0.0001),
        ("100μs", 0.0001),
        ("250ns", 250e-9),
        ("1d", 86400.0),
        ("1w", 7 * 86400.0),
        ("10y", 10 * 365 * 86400.0),
        ("1d12h", 1.5 * 86400.0),
        ("1.000s", 1.0),
    ],
)
def test_parses(text: str, seconds: float) -> None:
    assert parse_duration(text) == pytest.approx(seconds, rel=1e-12, abs=1e-15)


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("", "empty"),
        ("10", "missing unit"),
        ("-5s", "sign"),
        ("+5s", "sign"),
        ("5 s", "unknown unit"),
        ("5sec", "unknown unit"),
        ("1h 30m", "unknown unit"),
        ("s", "expected a number"),
        ("1..5s", "missing unit"),
        ("300y", "too long"),
        ("\u0661\u0660s", "expected a number"),  # Arabic-Indic digits: Go takes ASCII digits only
    ],
)
def test_refuses_with_a_reason(text: str, why: str) -> None:
    with pytest.raises(ValueError, match=why):
        parse_duration(text)


def test_the_go_limit_is_the_edge() -> None:
    assert parse_duration("2562047h") > 0  # just under 2**63 ns
    with pytest.raises(ValueError, match="too long"):
        parse_duration("2562048h")


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(0, "0s"), (15, "15s"), (0.5, "500ms"), (5400, "1h30m"), (86400, "24h"), (1.000001, "1s1us")],
)
def test_formats(seconds: float, text: str) -> None:
    assert format_duration(seconds) == text


def test_format_refuses_negative() -> None:
    with pytest.raises(ValueError, match="negative"):
        format_duration(-1)


# Up to 2**52 ns (about 52 days) a float of seconds still tells every nanosecond apart.
@given(st.integers(min_value=0, max_value=2**52))
def test_format_then_parse_keeps_every_nanosecond(ns: int) -> None:
    text = format_duration(ns / 1e9)
    assert round(Fraction(parse_duration(text)) * 10**9) == ns


@given(st.integers(min_value=0, max_value=10**6).map(lambda n: n * 3600))
def test_long_whole_durations_round_trip_exactly(seconds: int) -> None:
    assert parse_duration(format_duration(seconds)) == seconds


@given(
    st.lists(
        st.tuples(
            st.integers(min_value=0, max_value=10_000), st.sampled_from(["h", "m", "s", "ms", "us", "ns"])
        ),
        min_size=1,
        max_size=5,
    )
)
def test_terms_add_up(terms: list[tuple[int, str]]) -> None:
    size = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 1e-3, "us": 1e-6, "ns": 1e-9}
    text = "".join(f"{n}{unit}" for n, unit in terms)
    expected = sum(n * size[unit] for n, unit in terms)
    assert parse_duration(text) == pytest.approx(expected, rel=1e-9, abs=1e-9)
