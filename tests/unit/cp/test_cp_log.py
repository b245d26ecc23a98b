"""kmesh.log: one structured line per record, extras as fields, secrets redacted."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator

import orjson
import pytest

from kmesh.log import setup_logging


@pytest.fixture
def restore_root() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


def _lines(stream: io.StringIO) -> list[str]:
    return stream.getvalue().splitlines()


@pytest.mark.usefixtures("restore_root")
def test_json_line_has_standard_fields_and_extras() -> None:
    out = io.StringIO()
    setup_logging("info", "json", stream=out)
    logging.getLogger("kmesh.test").info("hello %s", "world", extra={"port": 5681, "mode": "standalone"})
    [line] = _lines(out)
    record = orjson.loads(line)
    assert record["level"] == "info"
    assert record["logger"] == "kmesh.test"
    assert record["msg"] == "hello world"
    assert record["port"] == 5681
    assert record["mode"] == "standalone"
    assert record["ts"].endswith("Z")
    assert list(record)[:4] == ["ts", "level", "logger", "msg"]


@pytest.mark.usefixtures("restore_root")
def test_level_filters_records() -> None:
    out = io.StringIO()
    setup_logging("warning", "json", stream=out)
    log = logging.getLogger("kmesh.test")
    log.info("quiet")
    log.warning("loud")
    assert [orjson.loads(line)["msg"] for line in _lines(out)] == ["loud"]


@pytest.mark.usefixtures("restore_root")
def test_secrets_are_redacted() -> None:
    out = io.StringIO()
    setup_logging("info", "json", stream=out)
    logging.getLogger("kmesh.test").info(
        "zone connected", extra={"zone": "east", "zone_token": "eyJhbGc", "password": "p", "api_key": "k"}
    )
    record = orjson.loads(_lines(out)[0])
    assert record["zone"] == "east"
    assert record["zone_token"] == record["password"] == record["api_key"] == "<redacted>"
    assert "eyJhbGc" not in out.getvalue()


@pytest.mark.usefixtures("restore_root")
def test_logfmt_quotes_values_that_need_it() -> None:
    out = io.StringIO()
    setup_logging("debug", "logfmt", stream=out)
    logging.getLogger("kmesh.test").debug('said "hi"', extra={"path": "/a b", "ok": True, "n": 3})
    [line] = _lines(out)
    assert ' level=debug logger=kmesh.test msg="said \\"hi\\"" path="/a b" ok=true n=3' in line
    assert line.startswith("ts=")


@pytest.mark.usefixtures("restore_root")
def test_exception_fields_and_traceback_only_at_error() -> None:
    out = io.StringIO()
    setup_logging("info", "json", stream=out)
    log = logging.getLogger("kmesh.test")
    try:
        raise ValueError("boom")
    except ValueError:
        log.warning("handled", exc_info=True)
        log.exception("bug")
    handled, bug = (orjson.loads(line) for line in _lines(out))
    assert (handled["error"], handled["exc_type"]) == ("boom", "ValueError")
    assert "traceback" not in handled
    assert "ValueError: boom" in bug["traceback"]


@pytest.mark.usefixtures("restore_root")
def test_setup_twice_replaces_its_handler() -> None:
    first, second = io.StringIO(), io.StringIO()
    setup_logging("info", "json", stream=first)
    setup_logging("info", "json", stream=second)
    logging.getLogger("kmesh.test").info("once")
    assert first.getvalue() == ""
    assert len(_lines(second)) == 1


def test_unknown_level_or_format_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown log level 'loud'"):
        setup_logging("loud")
    with pytest.raises(ValueError, match="unknown log format 'xml'"):
        setup_logging("info", "xml")  # type: ignore[arg-type]
