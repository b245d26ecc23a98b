"""Ages as kubectl prints them, and column alignment of kmeshctl's tables."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from kmesh.cli._table import age, format_table, human_duration, parse_time

NOW = datetime(2024, 5, 1, 12, 0, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("delta", "expected"),
    [
        # Cases from kubectl's apimachinery duration_test.go (HumanDuration).
        (timedelta(seconds=-2), "<invalid>"),
        (timedelta(seconds=-1), "0s"),
        (timedelta(seconds=0), "0s"),
        (timedelta(seconds=5), "5s"),
        (timedelta(seconds=119), "119s"),
        (timedelta(minutes=2), "2m"),
        (timedelta(minutes=3, seconds=20), "3m20s"),
        (timedelta(minutes=9, seconds=59), "9m59s"),
        (timedelta(minutes=10, seconds=30), "10m"),
        (timedelta(minutes=179), "179m"),
        (timedelta(hours=3), "3h"),
        (timedelta(hours=2, minutes=59) + timedelta(hours=1), "3h59m"),
        (timedelta(hours=8), "8h"),
        (timedelta(hours=47, minutes=59), "47h"),
        (timedelta(hours=48), "2d"),
        (timedelta(days=4, hours=3), "4d3h"),
        (timedelta(days=7, hours=23), "7d23h"),
        (timedelta(days=8), "8d"),
        (timedelta(days=729), "729d"),
        (timedelta(days=730), "2y"),
        (timedelta(days=365 * 3 + 30), "3y30d"),
        (timedelta(days=365 * 8), "8y"),
        (timedelta(days=365 * 10 + 100), "10y"),
    ],
)
def test_human_duration_matches_kubectl(delta: timedelta, expected: str) -> None:
    assert human_duration(delta) == expected


def test_age_against_injected_now() -> None:
    assert age("2024-05-01T11:59:55Z", NOW) == "5s"
    assert age("2024-05-01T11:57:00+00:00", NOW) == "3m"
    assert age("2024-05-01T08:59:59.123456Z", NOW) == "3h"
    assert age("2024-04-27T12:00:00Z", NOW) == "4d"
    # Another time zone is the same instant.
    assert age("2024-05-01T13:59:50+02:00", NOW) == "10s"


def test_naive_timestamps_are_utc() -> None:
    assert parse_time("2024-05-01T11:00:00") == datetime(2024, 5, 1, 11, 0, tzinfo=UTC)


@pytest.mark.parametrize("value", [None, "", "yesterday", 1714560000, "2024-13-01T00:00:00Z"])
def test_unreadable_time_is_unknown_not_an_error(value: object) -> None:
    assert parse_time(value) is None
    assert age(value, NOW) == "<unknown>"


def test_columns_are_aligned_with_three_spaces_and_no_trailing_blanks() -> None:
    text = format_table(["NAME", "STATUS", "AGE"], [["zone-1", "Online", "5s"], ["z2", "", "10m"]])
    assert text == ("NAME     STATUS   AGE\nzone-1   Online   5s\nz2                10m\n")


def test_last_column_is_not_padded() -> None:
    text = format_table(["A", "B"], [["1", "long value"], ["2", ""]])
    assert text.splitlines() == ["A   B", "1   long value", "2"]


def test_header_only_when_there_are_no_rows() -> None:
    assert format_table(["MESH", "NAME", "AGE"], []) == "MESH   NAME   AGE\n"
