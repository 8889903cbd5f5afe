"""The config table: unsafe or unworkable settings stop start-up with a message naming the setting."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError
from tkr_auth_jwt.settings import JwtSettings


def problem(table: dict[str, Any]) -> str:
    with pytest.raises(ValidationError) as caught:
        JwtSettings.model_validate(table)
    return str(caught.value)


def test_there_is_no_default_secret() -> None:
    assert "need a shared secret" in problem({})


@pytest.mark.parametrize("name", ["none", "None", "NONE"])
def test_alg_none_is_refused(name: str) -> None:
    assert "never allowed" in problem({"algorithms": [name], "secret": "s" * 40})


def test_an_unknown_algorithm_is_refused_with_a_suggestion() -> None:
    assert "did you mean 'HS256'" in problem({"algorithms": ["hs256"], "secret": "s" * 40})
    assert "unknown algorithm 'XS1'" in problem({"algorithms": ["XS1"], "secret": "s" * 40})


def test_mixing_hmac_and_asymmetric_algorithms_is_refused(rsa_key: Any) -> None:
    message = problem({"algorithms": ["HS256", "RS256"], "secret": "s" * 40, "public_key_file": str(rsa_key.public_file)})
    assert "mixes HS256 with RS256" in message


def test_a_short_secret_is_refused() -> None:
    assert "needs at least 32" in problem({"secret": "short"})
    assert "HS512 needs at least 64" in problem({"secret": "s" * 40, "algorithms": ["HS256", "HS512"]})


def test_a_public_key_as_hmac_secret_is_refused(rsa_key: Any) -> None:
    assert "looks like a public key" in problem({"secret": rsa_key.public_pem.decode()})


def test_the_secret_can_come_from_a_file(tmp_path: Path) -> None:
    path = tmp_path / "jwt-secret"
    path.write_text("f" * 40 + "\n")  # as `make run` writes it, with a newline
    settings = JwtSettings(secret_file=path)
    assert settings.keys.secret == b"f" * 40
    assert "f" * 40 not in repr(settings) + repr(settings.keys)


def test_secret_and_secret_file_together_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "jwt-secret"
    path.write_text("f" * 40)
    assert "not both" in problem({"secret": "s" * 40, "secret_file": str(path)})


def test_a_missing_file_names_the_setting(tmp_path: Path) -> None:
    assert "secret_file" in problem({"secret_file": str(tmp_path / "nope")})
    assert "public_key_file" in problem({"algorithms": ["RS256"], "public_key_file": str(tmp_path / "nope.pem")})


def test_asymmetric_algorithms_need_exactly_one_key_source(rsa_key: Any, tmp_path: Path) -> None:
    assert "exactly one of public_key_file or jwks_file" in problem({"algorithms": ["RS256"]})
    assert "secret and secret_file are for HS*" in problem({"algorithms": ["RS256"], "secret": "s" * 40, "public_key_file": str(rsa_key.public_file)})
    assert "are for asymmetric algorithms" in problem({"secret": "s" * 40, "public_key_file": str(rsa_key.public_file)})


def test_a_private_key_file_is_refused(rsa_key: Any, tmp_path: Path) -> None:
    path = tmp_path / "private.pem"
    path.write_bytes(rsa_key.private_pem)
    assert "holds a private key" in problem({"algorithms": ["RS256"], "public_key_file": str(path)})


def test_a_key_that_cannot_verify_the_algorithm_is_refused(rsa_key: Any, ec_key: Any) -> None:
    assert "ES256 needs an EC public key on P-256" in problem({"algorithms": ["ES256"], "public_key_file": str(rsa_key.public_file)})
    assert "ES384 needs an EC public key on P-384" in problem({"algorithms": ["ES384"], "public_key_file": str(ec_key.public_file)})
    assert "RS256 needs an RSA public key" in problem({"algorithms": ["RS256"], "public_key_file": str(ec_key.public_file)})


def test_a_jwks_file_must_hold_public_signing_keys_with_kids(rsa_key: Any, write_jwks: Any, tmp_path: Path) -> None:
    ok = json.loads(write_jwks({"k1": rsa_key}).read_text())["keys"][0]

    def jwks(*keys: dict[str, Any]) -> str:
        path = tmp_path / "set.json"
        path.write_text(json.dumps({"keys": list(keys)}))
        return str(path)

    no_kid = {k: v for k, v in ok.items() if k != "kid"}
    assert "has no kid" in problem({"algorithms": ["RS256"], "jwks_file": jwks(no_kid)})
    assert "appears twice" in problem({"algorithms": ["RS256"], "jwks_file": jwks(ok, ok)})
    assert "symmetric (oct)" in problem({"algorithms": ["RS256"], "jwks_file": jwks({"kty": "oct", "kid": "s", "k": "c2VjcmV0"})})
    assert "private key material" in problem({"algorithms": ["RS256"], "jwks_file": jwks({**ok, "d": "AAAA"})})
    assert "not in algorithms" in problem({"algorithms": ["PS256"], "jwks_file": jwks(ok)})
    assert "holds no signing keys" in problem({"algorithms": ["RS256"], "jwks_file": jwks({**ok, "use": "enc"})})
    assert "must be a JWK Set" in problem({"algorithms": ["RS256"], "jwks_file": jwks()})


def test_unknown_keys_are_refused() -> None:
    assert "secrt" in problem({"secret": "s" * 40, "secrt": "typo"})
