"""The Error shape: category and severity from the code, a hint always."""

from __future__ import annotations

import re
import time

import pytest

from tkr_host.errors import CATALOG, CATEGORIES, HostError, failure, internal_error


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


def test_an_unlisted_codes_message_is_the_code_in_words():
    # docs/protocol.md, Error codes: `not_found.big_thing` says `not found: big thing`.
    assert HostError("not_found.big_thing").to_wire()["message"] == "not found: big thing"


def test_an_unexpected_failure_is_internal_error():
    # docs/protocol.md: an unexpected failure answers `internal.error`, `critical` and recoverable.
    wire = internal_error().to_wire()
    assert (wire["code"], wire["category"], wire["severity"], wire["recoverable"]) == ("internal.error", "internal", "critical", True)


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


#: docs/protocol.md, "Error": the defaults each category gives its codes.
DOCUMENTED_CATEGORIES = {
    "auth": ("error", False),
    "permission": ("error", False),
    "validation": ("warning", False),
    "rate_limit": ("warning", True),
    "not_found": ("warning", False),
    "conflict": ("warning", False),
    "agent": ("error", True),
    "store": ("critical", True),
    "protocol": ("error", False),
    "internal": ("critical", True),
}
#: docs/protocol.md: "`protocol.idle_timeout` and `protocol.shutting_down` are `info`."
DOCUMENTED_INFO_CODES = {"protocol.idle_timeout", "protocol.shutting_down"}


def test_the_categories_are_the_documented_ones():
    assert set(CATEGORIES) == set(DOCUMENTED_CATEGORIES)


@pytest.mark.parametrize("category", sorted(DOCUMENTED_CATEGORIES))
def test_an_unlisted_code_has_its_categorys_documented_severity_and_recoverable(category):
    wire = HostError(f"{category}.unlisted_in_any_catalog").to_wire()
    assert (wire["severity"], wire["recoverable"]) == DOCUMENTED_CATEGORIES[category]
    assert wire["hint"]


@pytest.mark.parametrize("code", sorted(CATALOG))
def test_every_core_code_has_its_categorys_documented_severity_and_recoverable(code):
    severity, recoverable = DOCUMENTED_CATEGORIES[code.split(".")[0]]
    wire = HostError(code).to_wire()
    assert wire["severity"] == ("info" if code in DOCUMENTED_INFO_CODES else severity)
    assert wire["recoverable"] is recoverable
    assert "retry_after" not in wire  # "present only when waiting helps": not by default


def test_the_request_id_is_milliseconds_in_hex_then_8_hex_digits():
    before = int(time.time() * 1000)
    request_id = HostError("internal.error").request_id
    after = int(time.time() * 1000)
    assert re.fullmatch(r"[0-9a-f]+-[0-9a-f]{8}", request_id)
    assert before <= int(request_id.split("-")[0], 16) <= after
