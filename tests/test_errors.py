"""The Error shape: category and severity from the code, a hint always."""

from __future__ import annotations

import pytest

from tkr_host.errors import CATALOG, CATEGORIES, HostError, failure


@pytest.mark.parametrize("code", sorted(CATALOG))
def test_every_catalogued_error_has_the_full_shape(code):
    wire = HostError(code).to_wire()
    assert wire["code"] == code
    assert wire["category"] == code.split(".")[0] in CATEGORIES
    assert wire["severity"] in {"info", "warning", "error", "critical"}
    assert wire["message"] and wire["hint"]
    assert isinstance(wire["recoverable"], bool)
    assert wire["request_id"]
    assert wire["details"] == {}


def test_retry_after_makes_an_error_recoverable_and_is_rounded():
    wire = HostError("validation.payload", retry_after=1.23456).to_wire()
    assert wire["retry_after"] == 1.235
    assert wire["recoverable"] is True


def test_an_unlisted_code_takes_its_categorys_defaults():
    wire = HostError("rate_limit.anything_else").to_wire()
    assert wire["severity"] == "warning"
    assert wire["hint"] == CATEGORIES["rate_limit"].hint


@pytest.mark.parametrize("code", ["nope", "oops.thing", "auth."])
def test_a_code_must_be_category_dot_reason(code):
    with pytest.raises(ValueError, match=r"category\.reason"):
        HostError(code)


def test_failure_is_an_ack():
    ack = failure(HostError("not_found.session", message="There is no session 'x'."))
    assert ack["ok"] is False
    assert ack["error"]["message"] == "There is no session 'x'."


def test_request_ids_differ():
    assert HostError("internal.error").request_id != HostError("internal.error").request_id
