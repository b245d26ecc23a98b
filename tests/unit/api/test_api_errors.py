"""The one mapping from exceptions to API error answers."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from aiohttp import web

from kmesh.api._responses import ApiError, json_response, map_exception
from kmesh.errors import (
    AlreadyExists,
    Conflict,
    FieldViolation,
    InvalidReference,
    InvalidResource,
    NotFound,
    StoreUnavailable,
)


def test_invalid_resource_is_400_with_every_violation() -> None:
    exc = InvalidResource([FieldViolation("spec.rules", "must not be empty"), FieldViolation("name", "bad")])
    error = map_exception(exc)
    assert error.status == 400
    body = error.body()
    assert body["invalid_parameters"] == [
        {"field": "spec.rules", "reason": "must not be empty"},
        {"field": "name", "reason": "bad"},
    ]
    assert "spec.rules: must not be empty" in body["details"]


def test_invalid_reference_is_400_on_mesh() -> None:
    error = map_exception(InvalidReference("mesh 'nope' does not exist"))
    assert error.status == 400
    assert error.body()["invalid_parameters"] == [{"field": "mesh", "reason": "mesh 'nope' does not exist"}]


@pytest.mark.parametrize(
    ("exc", "status"),
    [
        (NotFound("Mesh 'x'"), 404),
        (AlreadyExists("Mesh 'x'"), 409),
        (Conflict("Mesh 'x' version 3"), 409),
        (StoreUnavailable("database is locked"), 503),
    ],
)
def test_store_errors(exc: Exception, status: int) -> None:
    error = map_exception(exc)
    assert error.status == status
    assert set(error.body()) == {"title", "details"}


def test_store_unavailable_does_not_leak_the_store_message() -> None:
    error = map_exception(StoreUnavailable("/var/lib/kmesh/db.sqlite: disk I/O error"))
    assert "/var/lib" not in error.details


def test_unexpected_exception_is_a_generic_500() -> None:
    error = map_exception(KeyError("secret internals"))
    assert error.status == 500
    assert "secret internals" not in error.details
    assert "Traceback" not in error.details


def test_api_error_passes_through() -> None:
    original = ApiError.bad_parameter("size", "must be an integer")
    assert map_exception(original) is original
    assert original.body() == {
        "title": "Bad Request",
        "details": "size: must be an integer",
        "invalid_parameters": [{"field": "size", "reason": "must be an integer"}],
    }


def test_aiohttp_not_found_and_method_not_allowed() -> None:
    not_found = map_exception(web.HTTPNotFound(), path="/nope")
    assert (not_found.status, not_found.details) == (404, "no such path: /nope")
    not_allowed = map_exception(web.HTTPMethodNotAllowed("POST", ["GET", "PUT"]))
    assert not_allowed.status == 405
    assert not_allowed.headers == {"Allow": "GET,PUT"}
    assert "POST" in not_allowed.details


def test_aiohttp_body_too_large_keeps_its_status() -> None:
    error = map_exception(web.HTTPRequestEntityTooLarge(max_size=10, actual_size=20))
    assert error.status == 413
    assert "10" in error.details


def test_json_response_content_type_and_body() -> None:
    response = json_response({"when": datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC), "n": 1}, status=201)
    assert response.status == 201
    assert response.content_type == "application/json"
    assert response.body == b'{"when":"2024-01-02T03:04:05+00:00","n":1}'
