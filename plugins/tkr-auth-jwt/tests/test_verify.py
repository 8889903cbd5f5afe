"""The verifier on its own: which tokens become principals, and how the rest are refused."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from tkr_auth_jwt.settings import JwtSettings
from tkr_auth_jwt.verify import check_times, verify_token

from tkr_host import HostError, Principal

Claims = Callable[..., dict[str, Any]]
Encode = Callable[..., str]


README = Path(__file__).resolve().parents[1] / "README.md"
#: README, Errors: `<claim>` and `<max_ttl_s>` stand for a claim's name and the setting.
PLACEHOLDERS = {re.escape("<claim>"): "[a-z]+", re.escape("<max_ttl_s>"): "[0-9]+"}


def documented_wording() -> dict[str, list[tuple[re.Pattern[str], str]]]:
    """The README's table of `auth.invalid`: reason -> [(its message, as a pattern; its hint)]."""
    wording: dict[str, list[tuple[re.Pattern[str], str]]] = {}
    text = README.read_text()
    table = text[text.index("| `details.reason` | message | hint |"):].split("\n\n", 1)[0]
    for line in table.splitlines()[2:]:
        row = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if (reason := re.fullmatch(r"`([a-z_]+)`", row[0])):
            pattern = re.escape(row[1])
            for placeholder, value in PLACEHOLDERS.items():
                pattern = pattern.replace(placeholder, value)
            wording.setdefault(reason.group(1), []).append((re.compile(pattern), row[2]))
    return wording


WORDING = documented_wording()


def refusal(settings: JwtSettings, token: str) -> dict[str, Any]:
    """The Error a client would see for ``token``; an `auth.invalid` is worded as the README's table says."""
    with pytest.raises(HostError) as caught:
        verify_token(settings, token)
    error = caught.value.to_wire()
    if error["code"] == "auth.invalid":
        documented = WORDING[error["details"]["reason"]]
        assert any(message.fullmatch(error["message"]) and hint == error["hint"] for message, hint in documented), error
    # Nothing of PyJWT's own wording (which can echo claims or keys) reaches the client.
    for leak in ("Signature verification failed", "Traceback", "jwt.", "Error(", "keyset", "payload"):
        assert leak not in error["message"]
        assert leak not in error["hint"]
    return error


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def hand_signed_hs256(body: dict[str, Any], key: bytes, header: dict[str, Any] | None = None) -> str:
    """An HS256 token made without PyJWT, which refuses PEM keys as HMAC secrets."""
    signing_input = b64(json.dumps(header or {"alg": "HS256", "typ": "JWT"}).encode()) + "." + b64(json.dumps(body).encode())
    signature = hmac.new(key, signing_input.encode(), hashlib.sha256).digest()
    return signing_input + "." + b64(signature)


# --- HS256 ---------------------------------------------------------------------


def test_a_good_hs256_token_names_its_principal(hs_settings: Callable[..., JwtSettings], secret: str, claims: Claims, encode: Encode) -> None:
    principal = verify_token(hs_settings(), encode(claims(), secret, "HS256"))
    assert principal == Principal(id="alice", kind="agent", name="Alice", roles=("admin",))


def test_kind_defaults_to_user_and_name_and_roles_to_empty(hs_settings: Callable[..., JwtSettings], secret: str, claims: Claims, encode: Encode) -> None:
    principal = verify_token(hs_settings(), encode(claims(kind=None, name=None, roles=None), secret, "HS256"))
    assert (principal.kind, principal.name, principal.roles) == ("user", "", ())


def test_an_expired_token_is_auth_expired(hs_settings: Callable[..., JwtSettings], secret: str, claims: Claims, encode: Encode) -> None:
    now = int(time.time())
    error = refusal(hs_settings(), encode(claims(iat=now - 7200, exp=now - 3600), secret, "HS256"))
    assert error["code"] == "auth.expired"
    assert error["hint"]


def test_leeway_forgives_a_little_clock_skew_and_no_more(hs_settings: Callable[..., JwtSettings], secret: str, claims: Claims, encode: Encode) -> None:
    now = int(time.time())
    just_expired = encode(claims(iat=now - 600, exp=now - 10), secret, "HS256")
    assert verify_token(hs_settings(leeway_s=30), just_expired).id == "alice"
    assert refusal(hs_settings(leeway_s=0), just_expired)["code"] == "auth.expired"
    almost_valid = encode(claims(nbf=now + 10), secret, "HS256")
    assert verify_token(hs_settings(leeway_s=30), almost_valid).id == "alice"
    assert refusal(hs_settings(leeway_s=0), almost_valid)["details"] == {"reason": "not_yet_valid"}


@pytest.mark.parametrize("claim", ["nbf", "iat"])
def test_a_token_from_the_future_is_not_valid_yet(claim: str, hs_settings: Callable[..., JwtSettings], secret: str, claims: Claims, encode: Encode) -> None:
    error = refusal(hs_settings(), encode(claims(**{claim: int(time.time()) + 600}), secret, "HS256"))
    assert error["code"] == "auth.invalid"
    assert error["details"] == {"reason": "not_yet_valid"}
    assert "not valid yet" in error["message"]


def test_a_token_signed_with_another_secret_is_refused(hs_settings: Callable[..., JwtSettings], claims: Claims, encode: Encode) -> None:
    error = refusal(hs_settings(), encode(claims(), "another-secret-that-is-long-enough-for-hs256", "HS256"))
    assert (error["code"], error["details"]) == ("auth.invalid", {"reason": "signature"})


def test_a_tampered_token_is_refused(hs_settings: Callable[..., JwtSettings], secret: str, claims: Claims, encode: Encode) -> None:
    header, _, signature = encode(claims(kind="user"), secret, "HS256").split(".")
    forged_body = b64(json.dumps(claims(kind="service")).encode())
    error = refusal(hs_settings(), f"{header}.{forged_body}.{signature}")
    assert error["details"] == {"reason": "signature"}


@pytest.mark.parametrize("claim", ["exp", "sub"])
def test_a_token_without_a_required_claim_is_refused(claim: str, hs_settings: Callable[..., JwtSettings], secret: str, claims: Claims, encode: Encode) -> None:
    error = refusal(hs_settings(), encode(claims(**{claim: None}), secret, "HS256"))
    assert (error["code"], error["details"]) == ("auth.invalid", {"reason": "missing_claim"})
    assert f"`{claim}`" in error["message"]


def test_an_unsigned_alg_none_token_is_refused(hs_settings: Callable[..., JwtSettings], claims: Claims, encode: Encode) -> None:
    error = refusal(hs_settings(), encode(claims(), None, "none"))
    assert (error["code"], error["details"]) == ("auth.invalid", {"reason": "algorithm"})


def test_an_algorithm_that_is_not_configured_is_refused(hs_settings: Callable[..., JwtSettings], secret: str, claims: Claims, encode: Encode) -> None:
    long_secret = secret * 2  # long enough for HS512 as well
    token = encode(claims(), long_secret, "HS512")
    assert verify_token(hs_settings(secret=long_secret, algorithms=["HS512"]), token).id == "alice"
    assert refusal(hs_settings(secret=long_secret), token)["details"] == {"reason": "algorithm"}


# --- malformed and odd claims ------------------------------------------------------


@pytest.mark.parametrize("token", ["garbage", "a.b.c", "", "....", "eyJhbGciOiJIUzI1NiJ9.bm90IGpzb24.c2ln"])
def test_garbage_is_auth_invalid(token: str, hs_settings: Callable[..., JwtSettings]) -> None:
    error = refusal(hs_settings(), token)
    assert error["code"] == "auth.invalid"
    assert error["message"] and error["hint"]


#: README, Errors: `too_long` is a token of more than 8192 characters.
DOCUMENTED_MAX_TOKEN_CHARS = 8192


def test_the_readme_words_every_reason_it_names() -> None:
    # README, Errors: the reasons `details.reason` takes, each with its wording in the table.
    assert set(WORDING) == {"malformed", "too_long", "algorithm", "signature", "unknown_key", "missing_claim", "not_yet_valid",
                            "issuer", "audience", "claims", "lifetime", "invalid"}


def test_a_huge_token_is_refused_before_parsing(hs_settings: Callable[..., JwtSettings]) -> None:
    error = refusal(hs_settings(), "x" * (DOCUMENTED_MAX_TOKEN_CHARS + 1))
    assert error["details"] == {"reason": "too_long"}


def padded_to(length: int, claims: Claims, encode: Encode, secret: str) -> str:
    """A valid token of exactly ``length`` characters (a base64 segment cannot take every
    length, so two padding claims are tried together)."""
    for extra in range(4):
        for pad in range(length):
            token = encode(claims(pad="x" * pad, p2="y" * extra), secret, "HS256")
            if len(token) >= length:
                if len(token) == length:
                    return token
                break
    raise AssertionError(f"no token of {length} characters")


def test_a_token_of_8192_characters_is_read_and_one_more_is_too_long(hs_settings: Callable[..., JwtSettings], secret: str, claims: Claims,
                                                                     encode: Encode) -> None:
    at_bound = padded_to(DOCUMENTED_MAX_TOKEN_CHARS, claims, encode, secret)
    assert verify_token(hs_settings(), at_bound).id == "alice"
    error = refusal(hs_settings(), padded_to(DOCUMENTED_MAX_TOKEN_CHARS + 1, claims, encode, secret))
    assert error["details"] == {"reason": "too_long"}


@pytest.mark.parametrize(
    "changes",
    [{"kind": "admin"}, {"kind": ["user"]}, {"name": 7}, {"roles": "admin"}, {"roles": ["ok", 1]}, {"sub": "   "}, {"sub": "x" * 201}, {"sub": 42}],
)
def test_claims_that_do_not_make_a_principal_are_refused(changes: dict[str, Any], hs_settings: Callable[..., JwtSettings], secret: str, claims: Claims) -> None:
    # Hand-signed, because PyJWT itself refuses to encode a non-string sub.
    error = refusal(hs_settings(), hand_signed_hs256(claims(**changes), secret.encode()))
    assert error["code"] == "auth.invalid"
    assert error["details"]["reason"] in {"claims", "invalid"}


@pytest.mark.parametrize("claim", ["exp", "nbf", "iat"])
@pytest.mark.parametrize("value", ["1700000000", 1.5e9, 1e308, True, [1]])
def test_times_that_are_not_integers_are_refused(claim: str, value: Any, hs_settings: Callable[..., JwtSettings], secret: str,
                                                 claims: Claims) -> None:
    body = claims(**{claim: value})
    error = refusal(hs_settings(), hand_signed_hs256(body, secret.encode()))
    assert (error["code"], error["details"]["reason"]) == ("auth.invalid", "claims")


@pytest.mark.parametrize(("iat_offset", "exp_offset", "accepted"), [(0, 600, True), (0, 601, False), (None, 600, True), (None, 700, False),
                                                                     (-600, 1, False)])
def test_a_token_may_live_max_ttl_s_and_no_longer(iat_offset: int | None, exp_offset: int, accepted: bool, hs_settings: Callable[..., JwtSettings],
                                                 secret: str, claims: Claims, encode: Encode) -> None:
    settings = hs_settings(max_ttl_s=600, default_ttl_s=600, leeway_s=30)
    now = int(time.time())
    token = encode(claims(iat=None if iat_offset is None else now + iat_offset, exp=now + exp_offset), secret, "HS256")
    if accepted:
        assert verify_token(settings, token).id == "alice"
    else:
        assert refusal(settings, token)["details"]["reason"] == "lifetime"


def test_the_default_max_ttl_s_is_a_day(hs_settings: Callable[..., JwtSettings]) -> None:
    assert hs_settings().max_ttl_s == 86_400


def test_a_default_ttl_longer_than_max_ttl_s_is_a_config_error(hs_settings: Callable[..., JwtSettings]) -> None:
    with pytest.raises(ValueError, match="default_ttl_s"):
        hs_settings(default_ttl_s=7200, max_ttl_s=3600)


@pytest.mark.parametrize("sub", ["a\x00b", "bob\n", "\x1b[2J", "bob\x7f", "bob\x9b", "\u202ebob", "b\u200bob", "bob\u2029"])
def test_a_sub_with_control_or_invisible_characters_is_refused(sub: str, hs_settings: Callable[..., JwtSettings], secret: str,
                                                               claims: Claims, encode: Encode) -> None:
    error = refusal(hs_settings(), encode(claims(sub=sub), secret, "HS256"))
    assert (error["code"], error["details"]["reason"]) == ("auth.invalid", "claims")


def test_exp_that_is_not_a_number_is_refused(hs_settings: Callable[..., JwtSettings], secret: str, claims: Claims) -> None:
    error = refusal(hs_settings(), hand_signed_hs256(claims(exp="tomorrow"), secret.encode()))
    assert error["code"] == "auth.invalid"


# --- issuer, audience ------------------------------------------------------------------


def test_issuer_and_audience_are_checked_when_configured(hs_settings: Callable[..., JwtSettings], secret: str, claims: Claims, encode: Encode) -> None:
    settings = hs_settings(issuer="https://id.example", audience="tkr")
    assert verify_token(settings, encode(claims(iss="https://id.example", aud="tkr"), secret, "HS256")).id == "alice"
    assert verify_token(settings, encode(claims(iss="https://id.example", aud=["other", "tkr"]), secret, "HS256")).id == "alice"
    assert refusal(settings, encode(claims(iss="https://evil.example", aud="tkr"), secret, "HS256"))["details"] == {"reason": "issuer"}
    assert refusal(settings, encode(claims(iss="https://id.example", aud="other"), secret, "HS256"))["details"] == {"reason": "audience"}
    assert refusal(settings, encode(claims(aud="tkr"), secret, "HS256"))["details"] == {"reason": "missing_claim"}
    assert refusal(settings, encode(claims(iss="https://id.example"), secret, "HS256"))["details"] == {"reason": "missing_claim"}


def test_a_token_for_some_audience_is_refused_when_none_is_configured(
    hs_settings: Callable[..., JwtSettings], secret: str, claims: Claims, encode: Encode
) -> None:
    # A token meant for another service must not open this one.
    assert refusal(hs_settings(), encode(claims(aud="billing"), secret, "HS256"))["details"] == {"reason": "audience"}


# --- asymmetric keys ---------------------------------------------------------------------


def test_rs256_with_a_public_key_file(rsa_key: Any, rsa_key_2: Any, claims: Claims, encode: Encode) -> None:
    settings = JwtSettings(algorithms=["RS256"], public_key_file=rsa_key.public_file)
    assert verify_token(settings, encode(claims(), rsa_key.private, "RS256")).id == "alice"
    assert refusal(settings, encode(claims(), rsa_key_2.private, "RS256"))["details"] == {"reason": "signature"}


def test_es256_with_a_public_key_file(ec_key: Any, claims: Claims, encode: Encode) -> None:
    settings = JwtSettings(algorithms=["ES256"], public_key_file=ec_key.public_file)
    assert verify_token(settings, encode(claims(), ec_key.private, "ES256")) == Principal(id="alice", kind="agent", name="Alice", roles=("admin",))


def test_algorithm_confusion_hs256_signed_with_the_public_key_is_refused(rsa_key: Any, claims: Claims) -> None:
    settings = JwtSettings(algorithms=["RS256"], public_key_file=rsa_key.public_file)
    forged = hand_signed_hs256(claims(), rsa_key.public_pem)
    error = refusal(settings, forged)
    assert (error["code"], error["details"]) == ("auth.invalid", {"reason": "algorithm"})


def test_a_ps256_token_is_refused_when_only_rs256_is_configured(rsa_key: Any, claims: Claims, encode: Encode) -> None:
    settings = JwtSettings(algorithms=["RS256"], public_key_file=rsa_key.public_file)
    assert refusal(settings, encode(claims(), rsa_key.private, "PS256"))["details"] == {"reason": "algorithm"}


# --- JWKS ------------------------------------------------------------------------------------


def test_jwks_picks_the_key_by_kid(rsa_key: Any, rsa_key_2: Any, ec_key: Any, write_jwks: Callable[..., Any], claims: Claims, encode: Encode) -> None:
    jwks = write_jwks({"k1": rsa_key, "k2": rsa_key_2, "e1": ec_key})
    settings = JwtSettings(algorithms=["RS256", "ES256"], jwks_file=jwks)
    assert verify_token(settings, encode(claims(sub="one"), rsa_key.private, "RS256", kid="k1")).id == "one"
    assert verify_token(settings, encode(claims(sub="two"), rsa_key_2.private, "RS256", kid="k2")).id == "two"
    assert verify_token(settings, encode(claims(sub="ec"), ec_key.private, "ES256", kid="e1")).id == "ec"


def test_jwks_refuses_an_unknown_or_missing_kid(rsa_key: Any, write_jwks: Callable[..., Any], claims: Claims, encode: Encode) -> None:
    settings = JwtSettings(algorithms=["RS256"], jwks_file=write_jwks({"k1": rsa_key}))
    assert refusal(settings, encode(claims(), rsa_key.private, "RS256", kid="k9"))["details"] == {"reason": "unknown_key"}
    assert refusal(settings, encode(claims(), rsa_key.private, "RS256"))["details"] == {"reason": "unknown_key"}
    assert refusal(settings, "garbage")["details"] == {"reason": "malformed"}


def test_jwks_refuses_a_token_signed_by_another_key_under_a_known_kid(
    rsa_key: Any, rsa_key_2: Any, write_jwks: Callable[..., Any], claims: Claims, encode: Encode
) -> None:
    settings = JwtSettings(algorithms=["RS256"], jwks_file=write_jwks({"k1": rsa_key, "k2": rsa_key_2}))
    assert refusal(settings, encode(claims(), rsa_key_2.private, "RS256", kid="k1"))["details"] == {"reason": "signature"}


def test_jwks_key_verifies_only_its_own_algorithm(rsa_key: Any, write_jwks: Callable[..., Any], claims: Claims, encode: Encode) -> None:
    # k1 is published for RS256: a PS256 token under k1 is refused even though PS256 is configured.
    settings = JwtSettings(algorithms=["RS256", "PS256"], jwks_file=write_jwks({"k1": rsa_key}))
    assert refusal(settings, encode(claims(), rsa_key.private, "PS256", kid="k1"))["details"] == {"reason": "algorithm"}
    forged = hand_signed_hs256(claims(), rsa_key.public_pem, header={"alg": "HS256", "kid": "k1"})
    assert refusal(settings, forged)["details"] == {"reason": "algorithm"}


# --- the documented bounds and reasons (README: claims table and error codes) --------


def test_a_sub_of_200_characters_is_accepted_and_201_is_not(hs_settings: Callable[..., JwtSettings], secret: str, claims: Claims) -> None:
    # README: `sub` "a non-empty string of at most 200 characters".
    assert verify_token(hs_settings(), hand_signed_hs256(claims(sub="x" * 200), secret.encode())).id == "x" * 200
    error = refusal(hs_settings(), hand_signed_hs256(claims(sub="x" * 201), secret.encode()))
    assert error["details"] == {"reason": "claims"}


@pytest.mark.parametrize("changes", [{"kind": "admin"}, {"name": 7}, {"roles": "admin"}, {"sub": "   "}])
def test_a_claim_of_the_wrong_type_gives_the_reason_claims(changes: dict[str, Any], hs_settings: Callable[..., JwtSettings], secret: str,
                                                           claims: Claims) -> None:
    # README: `details.reason` is `claims` for "a claim of the wrong type or with forbidden characters".
    error = refusal(hs_settings(), hand_signed_hs256(claims(**changes), secret.encode()))
    assert error["details"] == {"reason": "claims"}


@pytest.mark.parametrize("token", ["garbage", "a.b.c"])
def test_a_token_that_is_no_jwt_gives_the_reason_malformed(token: str, hs_settings: Callable[..., JwtSettings]) -> None:
    assert refusal(hs_settings(), token)["details"] == {"reason": "malformed"}


@pytest.mark.parametrize("leeway", [0, 30])
def test_the_edges_of_the_times_fall_as_rfc_7519_puts_them(leeway: int) -> None:
    # README: leeway_s seconds of skew are forgiven on exp, nbf and iat. RFC 7519 puts the
    # edges: "now" must be before exp (4.1.4) and at or after nbf (4.1.5); an iat of
    # "now" is not in the future. Shifted by the leeway, these are the last seconds each way.
    settings = JwtSettings(secret="s" * 32, leeway_s=leeway)
    now = 1_800_000_000
    check_times(settings, {"exp": now - leeway + 1}, now)
    with pytest.raises(HostError) as expired:
        check_times(settings, {"exp": now - leeway}, now)
    assert expired.value.code == "auth.expired"
    check_times(settings, {"exp": now + 60, "nbf": now + leeway}, now)
    check_times(settings, {"exp": now + 60, "iat": now + leeway}, now)
    for claim in ("nbf", "iat"):
        with pytest.raises(HostError) as early:
            check_times(settings, {"exp": now + 60, claim: now + leeway + 1}, now)
        assert early.value.to_wire()["details"] == {"reason": "not_yet_valid"}


def test_a_signed_payload_too_deeply_nested_to_read_is_malformed(hs_settings: Callable[..., JwtSettings], secret: str) -> None:
    # A correctly signed token whose claims are 2500 nested arrays: within the length limit,
    # but deeper than Python's JSON reader goes (a RecursionError, which PyJWT 2.15 turns into
    # a DecodeError). README: every refused token is `auth.invalid` with a reason; claims that
    # are no readable JSON object make no JWT, so `malformed`, and never an internal error.
    signing_input = b64(json.dumps({"alg": "HS256", "typ": "JWT"}).encode()) + "." + b64(b"[" * 2500 + b"]" * 2500)
    token = signing_input + "." + b64(hmac.new(secret.encode(), signing_input.encode(), hashlib.sha256).digest())
    assert len(token) <= DOCUMENTED_MAX_TOKEN_CHARS
    error = refusal(hs_settings(), token)
    assert (error["code"], error["details"]) == ("auth.invalid", {"reason": "malformed"})
