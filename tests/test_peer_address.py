"""peer_address, directly: the client address as docs/configuration.md
(`trusted_proxies`) defines it. X-Forwarded-For is believed only from a trusted
proxy; the client is then the right-most address that is not a trusted proxy."""

from __future__ import annotations

import pytest

from tkr_host.handshake import peer_address


def scope(client: str) -> dict[str, object]:
    return {"client": (client, 50000)}


def test_without_proxies_the_peer_is_the_socket_address() -> None:
    assert peer_address(scope("203.0.113.7"), {}, []) == "203.0.113.7"


def test_forwarded_for_from_an_untrusted_peer_is_ignored() -> None:
    assert peer_address(scope("203.0.113.7"), {"x-forwarded-for": "198.51.100.1"}, ["10.0.0.1"]) == "203.0.113.7"


@pytest.mark.parametrize(("trusted", "forwarded", "client"), [
    (["10.0.0.1"], "198.51.100.1", "198.51.100.1"),
    # A client may forge the left of the header: the right-most untrusted hop is the client.
    (["10.0.0.1"], "6.6.6.6, 198.51.100.1", "198.51.100.1"),
    # Several proxies, named by network.
    (["10.0.0.0/8"], "198.51.100.1, 10.1.2.3", "198.51.100.1"),
    (["10.0.0.0/8", "2001:db8::/32"], " 198.51.100.1 ,2001:db8::5 ", "198.51.100.1"),
])
def test_forwarded_for_from_a_trusted_proxy_names_the_client(trusted: list[str], forwarded: str, client: str) -> None:
    assert peer_address(scope("10.0.0.1"), {"x-forwarded-for": forwarded}, trusted) == client


def test_a_header_of_trusted_hops_only_leaves_the_proxy_as_the_peer() -> None:
    assert peer_address(scope("10.0.0.1"), {"x-forwarded-for": "10.0.0.2, 10.0.0.3"}, ["10.0.0.0/8"]) == "10.0.0.1"


def test_a_malformed_trusted_entry_is_skipped_not_fatal() -> None:
    assert peer_address(scope("10.0.0.1"), {"x-forwarded-for": "198.51.100.1"}, ["not a network", "10.0.0.1"]) == "198.51.100.1"


def test_no_scope_is_an_unknown_peer() -> None:
    assert peer_address(None, {"x-forwarded-for": "198.51.100.1"}, ["10.0.0.1"]) == "unknown"
