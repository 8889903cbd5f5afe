"""Keys, settings and token makers shared by the plugin's tests.

Keys are generated here with ``cryptography`` (never shipped in the repository),
once per session because RSA key generation is slow. Tests get helpers as
fixtures: with ``--import-mode=importlib`` they cannot import this module.
"""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm
from tkr_auth_jwt.settings import JwtSettings


@dataclass(frozen=True)
class KeyPair:
    """A private key and its public PEM file."""

    private: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey
    public_pem: bytes
    public_file: Path
    private_pem: bytes


def _pair(private: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey, folder: Path, name: str) -> KeyPair:
    public_pem = private.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    private_pem = private.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    public_file = folder / f"{name}.pub.pem"
    public_file.write_bytes(public_pem)
    return KeyPair(private, public_pem, public_file, private_pem)


@pytest.fixture(scope="session")
def key_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("keys")


@pytest.fixture(scope="session")
def rsa_key(key_dir: Path) -> KeyPair:
    return _pair(rsa.generate_private_key(public_exponent=65537, key_size=2048), key_dir, "rsa")


@pytest.fixture(scope="session")
def rsa_key_2(key_dir: Path) -> KeyPair:
    return _pair(rsa.generate_private_key(public_exponent=65537, key_size=2048), key_dir, "rsa2")


@pytest.fixture(scope="session")
def ec_key(key_dir: Path) -> KeyPair:
    return _pair(ec.generate_private_key(ec.SECP256R1()), key_dir, "ec")


@pytest.fixture
def secret() -> str:
    # Made per test, like a real deployment's secret; 48 characters clear HS256's 32-byte minimum.
    return secrets.token_urlsafe(36)


@pytest.fixture
def hs_settings(secret: str) -> Callable[..., JwtSettings]:
    """``hs_settings(**overrides)``: HS256 settings with the test secret."""

    def make(**overrides: Any) -> JwtSettings:
        return JwtSettings.model_validate({"secret": secret, **overrides})

    return make


@pytest.fixture
def claims() -> Callable[..., dict[str, Any]]:
    """``claims(**changes)``: a valid claim set for alice, valid for an hour; a change to None drops the claim."""

    def make(**changes: Any) -> dict[str, Any]:
        now = int(time.time())
        body: dict[str, Any] = {"sub": "alice", "kind": "agent", "name": "Alice", "roles": ["admin"], "iat": now, "exp": now + 3600}
        body.update(changes)
        return {key: value for key, value in body.items() if value is not None}

    return make


@pytest.fixture
def write_jwks(tmp_path: Path) -> Callable[..., Path]:
    """``write_jwks({kid: KeyPair}, **extra_members)``: a JWK Set file of the public keys."""

    def write(keys: dict[str, KeyPair], **extra: Any) -> Path:
        entries = []
        for kid, pair in keys.items():
            public = pair.private.public_key()
            jwk: dict[str, Any]
            if isinstance(public, rsa.RSAPublicKey):
                jwk = RSAAlgorithm.to_jwk(public, as_dict=True)
                jwk["alg"] = "RS256"
            else:
                jwk = ECAlgorithm.to_jwk(public, as_dict=True)
                jwk["alg"] = "ES256"
            entries.append({**jwk, "kid": kid, "use": "sig", **extra})
        path = tmp_path / f"jwks-{secrets.token_hex(4)}.json"
        path.write_text(json.dumps({"keys": entries}))
        return path

    return write


@pytest.fixture
def encode() -> Callable[..., str]:
    """``encode(claims, key, algorithm, kid=None)``: PyJWT's encode, with an optional ``kid`` header."""

    def make(body: dict[str, Any], key: Any, algorithm: str, kid: str | None = None) -> str:
        headers = {"kid": kid} if kid is not None else None
        return jwt.encode(body, key, algorithm=algorithm, headers=headers)

    return make
