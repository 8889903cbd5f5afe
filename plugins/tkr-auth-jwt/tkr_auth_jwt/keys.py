"""Key material, loaded once while the config is validated.

Files are read and keys parsed here, at start-up, so that the verifier does no
I/O while a client waits, and a missing file or a key that cannot verify the
configured algorithms stops start-up with a line naming the setting, instead
of failing on the first connect.

Messages here go to the operator (config errors), never to a client.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jwt
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, rsa

#: HMAC algorithms and the shortest secret each accepts: RFC 7518 §3.2 asks for
#: a key at least as long as the hash output.
HMAC_MIN_BYTES: dict[str, int] = {"HS256": 32, "HS384": 48, "HS512": 64}
RSA_ALGORITHMS = frozenset({"RS256", "RS384", "RS512", "PS256", "PS384", "PS512"})
#: ECDSA algorithms and the curve each is defined on (RFC 7518 §3.4).
EC_CURVES: dict[str, str] = {"ES256": "secp256r1", "ES384": "secp384r1", "ES512": "secp521r1"}
EDDSA = "EdDSA"
ASYMMETRIC_ALGORITHMS = RSA_ALGORITHMS | EC_CURVES.keys() | {EDDSA}
SUPPORTED_ALGORITHMS = frozenset(HMAC_MIN_BYTES) | ASYMMETRIC_ALGORITHMS
#: NIST SP 800-131A: RSA keys below 2048 bits are not acceptable for signatures.
MIN_RSA_BITS = 2048

_CURVE_NAMES = {"secp256r1": "P-256", "secp384r1": "P-384", "secp521r1": "P-521"}
# JWK members that only a private or symmetric key has (RFC 7518 §6).
_PRIVATE_JWK_MEMBERS = ("d", "p", "q", "dp", "dq", "qi", "oth", "k")

VerifyingKey = rsa.RSAPublicKey | ec.EllipticCurvePublicKey | ed25519.Ed25519PublicKey | ed448.Ed448PublicKey


class KeyConfigError(ValueError):
    """A key setting that cannot work; pydantic reports it as a config error."""


@dataclass(frozen=True)
class Keys:
    """What tokens are verified with: an HMAC secret, one public key, or a key set by ``kid``."""

    secret: bytes | None = field(default=None, repr=False)
    public_key: VerifyingKey | None = None
    jwks: Mapping[str, jwt.PyJWK] = field(default_factory=dict)

    def single_key(self) -> bytes | VerifyingKey:
        """The key for configs without a key set (validation guarantees one)."""
        if self.secret is not None:
            return self.secret
        if self.public_key is not None:
            return self.public_key
        raise RuntimeError("JwtSettings holds no key; it was built without validation")


def load_secret(secret: str | None, secret_file: Path | None, algorithms: Sequence[str]) -> bytes:
    """The HMAC secret, from the config value or a file, checked for every HS* algorithm."""
    if secret is not None and secret_file is not None:
        raise KeyConfigError("give either secret or secret_file, not both")
    if secret_file is not None:
        # A trailing newline (from `echo` or an editor) is not part of the secret.
        data = _read(secret_file, "secret_file").strip()
        where = f"secret_file {secret_file}"
    elif secret is not None:
        data = secret.encode()
        where = "secret"
    else:
        raise KeyConfigError(f'algorithms {", ".join(algorithms)} need a shared secret: set secret = "env:TKR_JWT_SECRET" or secret_file')
    if not data:
        raise KeyConfigError(f"{where} is empty")
    need = max(HMAC_MIN_BYTES[name] for name in algorithms)
    if len(data) < need:
        raise KeyConfigError(
            f"{where} is {len(data)} bytes; {max(algorithms, key=HMAC_MIN_BYTES.__getitem__)} needs at least {need} "
            f"(RFC 7518 §3.2). Make one with: python -c 'import secrets; print(secrets.token_urlsafe(48))'"
        )
    for name in algorithms:
        try:
            # PyJWT refuses a secret that looks like a PEM or SSH public key: the
            # classic algorithm-confusion mistake.
            jwt.get_algorithm_by_name(name).prepare_key(data)
        except jwt.InvalidKeyError:
            raise KeyConfigError(f"{where} looks like a public key; HS* algorithms need a random shared secret") from None
    return data


def load_public_key(path: Path, algorithms: Sequence[str]) -> VerifyingKey:
    """A PEM public key (or the key of a PEM certificate) that verifies every configured algorithm."""
    data = _read(path, "public_key_file")
    where = f"public_key_file {path}"
    if b"PRIVATE KEY" in data:
        raise KeyConfigError(f"{where} holds a private key; give only the public key (openssl pkey -in KEY -pubout)")
    loaded: Any
    try:
        loaded = serialization.load_pem_public_key(data)
    except ValueError:
        try:
            loaded = x509.load_pem_x509_certificate(data).public_key()
        except ValueError:
            raise KeyConfigError(f"{where} is not a PEM public key or certificate") from None
    for name in algorithms:
        check_public_key(loaded, name, where)
    key: VerifyingKey = loaded
    return key


def load_jwks(path: Path, algorithms: Sequence[str]) -> dict[str, jwt.PyJWK]:
    """The signing keys of a JWK Set file, by ``kid``.

    Every signing key needs a unique ``kid`` (tokens pick their key by it) and an
    algorithm among ``algorithms``; symmetric and private keys are refused.
    Keys marked ``"use": "enc"`` are skipped, as JWK Sets often carry both.
    """
    where = f"jwks_file {path}"
    try:
        document = json.loads(_read(path, "jwks_file"))
    except ValueError:
        raise KeyConfigError(f"{where} is not JSON") from None
    if not isinstance(document, dict) or not isinstance(document.get("keys"), list) or not document["keys"]:
        raise KeyConfigError(f'{where} must be a JWK Set: {{"keys": [...]}} with at least one key')
    keys: dict[str, jwt.PyJWK] = {}
    for index, jwk in enumerate(document["keys"]):
        if not isinstance(jwk, dict):
            raise KeyConfigError(f"{where}: key #{index} is not a JSON object")
        if jwk.get("use", "sig") != "sig":
            continue
        kid = jwk.get("kid")
        if not isinstance(kid, str) or not kid:
            raise KeyConfigError(f"{where}: key #{index} has no kid; tokens choose their key by kid")
        here = f"{where}: key {kid!r}"
        if kid in keys:
            raise KeyConfigError(f"{here} appears twice")
        if jwk.get("kty") == "oct":
            raise KeyConfigError(f"{here} is a symmetric (oct) key; a JWK Set here holds public keys only (use secret for HS*)")
        if any(member in jwk for member in _PRIVATE_JWK_MEMBERS):
            raise KeyConfigError(f"{here} holds private key material; publish only the public key")
        try:
            parsed = jwt.PyJWK(jwk)
        except jwt.PyJWTError as exc:
            raise KeyConfigError(f"{here} is not a usable key: {exc}") from None
        if parsed.algorithm_name not in algorithms:
            raise KeyConfigError(
                f"{here} is for {parsed.algorithm_name}, which is not in algorithms ({', '.join(algorithms)}); add it there, or give the key the right alg"
            )
        check_public_key(parsed.key, parsed.algorithm_name, here)
        keys[kid] = parsed
    if not keys:
        raise KeyConfigError(f"{where} holds no signing keys")
    return keys


def check_public_key(key: object, algorithm: str, where: str) -> None:
    """Refuse a key that cannot (or should not) verify ``algorithm``."""
    if algorithm in RSA_ALGORITHMS:
        if not isinstance(key, rsa.RSAPublicKey):
            raise KeyConfigError(f"{where} holds {describe_key(key)}; {algorithm} needs an RSA public key")
        if key.key_size < MIN_RSA_BITS:
            raise KeyConfigError(f"{where} is a {key.key_size}-bit RSA key; at least {MIN_RSA_BITS} bits are required")
    elif algorithm in EC_CURVES:
        curve = EC_CURVES[algorithm]
        if not isinstance(key, ec.EllipticCurvePublicKey) or key.curve.name != curve:
            raise KeyConfigError(f"{where} holds {describe_key(key)}; {algorithm} needs an EC public key on {_CURVE_NAMES[curve]}")
    elif algorithm == EDDSA:
        if not isinstance(key, ed25519.Ed25519PublicKey | ed448.Ed448PublicKey):
            raise KeyConfigError(f"{where} holds {describe_key(key)}; EdDSA needs an Ed25519 or Ed448 public key")
    else:
        raise KeyConfigError(f"{where}: {algorithm} is not an asymmetric algorithm")


def describe_key(key: object) -> str:
    if isinstance(key, rsa.RSAPublicKey):
        return f"a {key.key_size}-bit RSA key"
    if isinstance(key, ec.EllipticCurvePublicKey):
        return f"an EC key on {_CURVE_NAMES.get(key.curve.name, key.curve.name)}"
    if isinstance(key, ed25519.Ed25519PublicKey):
        return "an Ed25519 key"
    if isinstance(key, ed448.Ed448PublicKey):
        return "an Ed448 key"
    return "a key of another type"


def _read(path: Path, setting: str) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise KeyConfigError(f"{setting} {path}: no such file (relative paths start from the working directory)") from None
    except OSError as exc:
        raise KeyConfigError(f"{setting} {path}: cannot be read ({exc.strerror})") from None
