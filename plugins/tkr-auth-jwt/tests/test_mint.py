"""Minting: the tokens ``tkr-host token`` prints are the ones the verifier accepts."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import jwt
import pytest
from tkr_auth_jwt.mint import MintError, mint_token, parse_ttl
from tkr_auth_jwt.settings import JwtSettings
from tkr_auth_jwt.verify import verify_token


@pytest.mark.parametrize(("text", "seconds"), [("90s", 90), ("30m", 1800), ("1h", 3600), ("2d", 172800), ("45", 45), ("1.5h", 5400), (" 1H ", 3600)])
def test_parse_ttl(text: str, seconds: int) -> None:
    assert parse_ttl(text) == seconds


@pytest.mark.parametrize("text", ["", "1y", "h", "-1h", "0s", "1h30m", "400d", "ten minutes"])
def test_parse_ttl_refuses_what_is_not_a_duration(text: str) -> None:
    with pytest.raises(MintError):
        parse_ttl(text)


def test_a_minted_token_verifies_to_the_same_principal(hs_settings: Callable[..., JwtSettings]) -> None:
    settings = hs_settings(issuer="tkr-dev", audience="tkr")
    token = mint_token(settings, "echo", kind="agent", ttl_s=600, name="Echo", roles=["bot", "beta"])
    principal = verify_token(settings, token)
    assert (principal.id, principal.kind, principal.name, principal.roles) == ("echo", "agent", "Echo", ("bot", "beta"))


def test_minted_claims(hs_settings: Callable[..., JwtSettings], secret: str) -> None:
    before = int(time.time())
    claims: dict[str, Any] = jwt.decode(mint_token(hs_settings(default_ttl_s=120), "alice"), secret, algorithms=["HS256"])
    assert claims["sub"] == "alice" and claims["kind"] == "user"
    assert claims["exp"] - claims["iat"] == 120 and claims["iat"] >= before
    assert "name" not in claims and "roles" not in claims and "aud" not in claims


def test_minting_uses_the_configured_hmac_algorithm(hs_settings: Callable[..., JwtSettings], secret: str) -> None:
    settings = hs_settings(secret=secret * 2, algorithms=["HS512"])
    assert jwt.get_unverified_header(mint_token(settings, "alice"))["alg"] == "HS512"


def test_an_asymmetric_config_cannot_mint(rsa_key: Any) -> None:
    settings = JwtSettings(algorithms=["RS256"], public_key_file=rsa_key.public_file)
    with pytest.raises(MintError, match="cannot sign"):
        mint_token(settings, "alice")


@pytest.mark.parametrize(("sub", "kind"), [("", "user"), ("alice", "robot"), ("x" * 201, "user")])
def test_bad_input_is_refused(hs_settings: Callable[..., JwtSettings], sub: str, kind: str) -> None:
    with pytest.raises(MintError):
        mint_token(hs_settings(), sub, kind=kind)
