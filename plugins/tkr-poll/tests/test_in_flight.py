"""InFlight, the reservation of a check until its message is stored: no I/O."""

from __future__ import annotations

from tkr_poll.index import InFlight


def test_a_key_is_held_for_one_client_id_until_released() -> None:
    held = InFlight()
    assert held.claim("k", "c-1") is True
    assert held.claim("k", "c-2") is False
    held.release("k", "c-2")  # not the holder: nothing happens
    assert held.claim("k", "c-2") is False
    held.release("k", "c-1")
    assert held.claim("k", "c-2") is True


def test_a_resend_may_claim_its_own_key_again() -> None:
    held = InFlight()
    assert held.claim("k", "c-1") is True
    assert held.claim("k", "c-1") is True


def test_a_reservation_whose_message_was_never_stored_expires() -> None:
    held = InFlight(ttl_s=0.0)
    assert held.claim("k", "c-1") is True
    assert held.claim("k", "c-2") is True
