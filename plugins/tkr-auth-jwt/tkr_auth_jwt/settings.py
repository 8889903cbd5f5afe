"""The ``[plugins.auth_jwt]`` config table.

Validating it also loads the keys (:mod:`tkr_auth_jwt.keys`), so ``tkr-host
check-config`` and start-up both catch a missing key file or a key that cannot
verify the configured algorithms.

Secrets are written as ``"env:NAME"`` in the TOML file; the host's config loader
replaces them with the variable's value before this model sees them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Self

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, SecretStr, field_validator, model_validator
from pydantic_core import PydanticCustomError

from tkr_auth_jwt.keys import (
    ASYMMETRIC_ALGORITHMS,
    HMAC_MIN_BYTES,
    SUPPORTED_ALGORITHMS,
    KeyConfigError,
    Keys,
    load_jwks,
    load_public_key,
    load_secret,
)

#: The plugin's entry-point name: its config table and its key in ``host.config``.
PLUGIN_NAME = "auth_jwt"


class JwtSettings(BaseModel):
    """How tokens are verified (and, for HS*, minted by ``tkr-host token``)."""

    # Frozen: the keys are loaded from these values once, so the values must not change afterwards.
    model_config = ConfigDict(extra="forbid", frozen=True)

    #: Algorithms a token may be signed with. The token's own ``alg`` header only
    #: picks among these. Never mix HS* with asymmetric ones.
    algorithms: list[str] = Field(default_factory=lambda: ["HS256"], min_length=1)
    #: The HS* shared secret; write ``"env:TKR_JWT_SECRET"``, never the secret itself.
    secret: SecretStr | None = None
    #: A file holding the HS* secret (surrounding whitespace is ignored).
    secret_file: Path | None = None
    #: A PEM public key or certificate, for RS*, PS*, ES* or EdDSA.
    public_key_file: Path | None = None
    #: A JWK Set file (``{"keys": [...]}``); tokens pick their key by ``kid``.
    jwks_file: Path | None = None
    #: When set, tokens must carry this ``iss``.
    issuer: str | None = Field(default=None, min_length=1)
    #: When set, tokens must carry this ``aud``. When unset, a token with ``aud`` is refused.
    audience: str | None = Field(default=None, min_length=1)
    #: Seconds of clock difference forgiven on ``exp``, ``nbf`` and ``iat``.
    leeway_s: float = Field(default=30.0, ge=0, le=300)
    #: Lifetime of tokens minted by ``tkr-host token`` without ``--ttl``.
    default_ttl_s: int = Field(default=3600, gt=0, le=366 * 86400)
    #: Longest lifetime a token may have: ``exp - iat``, or ``exp - now`` without
    #: ``iat``. A token that would live longer is refused, so that no leaked token
    #: stays good for long.
    max_ttl_s: int = Field(default=86_400, gt=0, le=366 * 86400)

    _keys: Keys = PrivateAttr()

    @field_validator("algorithms")
    @classmethod
    def _known_algorithms(cls, value: list[str]) -> list[str]:
        seen: list[str] = []
        for name in value:
            if name.lower() == "none":
                raise _config_error('"none" accepts unsigned tokens and is never allowed')
            if name not in SUPPORTED_ALGORITHMS:
                close = next((known for known in SUPPORTED_ALGORITHMS if known.lower() == name.lower()), None)
                suggestion = f"; did you mean {close!r}?" if close else f"; use one of {', '.join(sorted(SUPPORTED_ALGORITHMS))}"
                raise _config_error(f"unknown algorithm {name!r}{suggestion}")
            if name not in seen:
                seen.append(name)
        return seen

    @model_validator(mode="after")
    def _default_within_max(self) -> Self:
        if self.default_ttl_s > self.max_ttl_s:
            raise _config_error(f"default_ttl_s ({self.default_ttl_s}) is longer than max_ttl_s ({self.max_ttl_s}): "
                                "the tokens `tkr-host token` mints would be refused")
        return self

    @model_validator(mode="after")
    def _load_keys(self) -> Self:
        try:
            self._keys = self._read_keys()
        except ValueError as exc:
            raise _config_error(str(exc)) from None
        return self

    def _read_keys(self) -> Keys:
        hmac = [name for name in self.algorithms if name in HMAC_MIN_BYTES]
        asymmetric = [name for name in self.algorithms if name in ASYMMETRIC_ALGORITHMS]
        if hmac and asymmetric:
            # With both, a token signed by HMAC with the public key as the secret
            # would verify: the algorithm-confusion attack (RFC 8725 §2.1).
            raise KeyConfigError(
                f"algorithms mixes {', '.join(hmac)} with {', '.join(asymmetric)}; "
                "use either HS* with a secret or asymmetric algorithms with public keys, never both"
            )
        if hmac:
            if self.public_key_file is not None or self.jwks_file is not None:
                raise KeyConfigError(
                    f"public_key_file and jwks_file are for asymmetric algorithms, but algorithms is {', '.join(hmac)}; "
                    'set algorithms = ["RS256"] (or your key\'s algorithm) and drop secret'
                )
            secret = self.secret.get_secret_value() if self.secret is not None else None
            return Keys(secret=load_secret(secret, self.secret_file, hmac))
        if self.secret is not None or self.secret_file is not None:
            raise KeyConfigError(f"secret and secret_file are for HS* algorithms, but algorithms is {', '.join(asymmetric)}")
        if self.public_key_file is not None and self.jwks_file is None:
            return Keys(public_key=load_public_key(self.public_key_file, asymmetric))
        if self.jwks_file is not None and self.public_key_file is None:
            return Keys(jwks=load_jwks(self.jwks_file, asymmetric))
        raise KeyConfigError(f"algorithms {', '.join(asymmetric)} need exactly one of public_key_file or jwks_file")

    @property
    def keys(self) -> Keys:
        """The loaded key material."""
        return self._keys

    @property
    def hmac_algorithm(self) -> str | None:
        """The first HS* algorithm, used to mint tokens; None when keys are asymmetric."""
        return next((name for name in self.algorithms if name in HMAC_MIN_BYTES), None)


def _config_error(message: str) -> PydanticCustomError:
    # A custom error keeps the message as written: a plain ValueError would be
    # shown as "Value error, ..." in the host's config error line.
    return PydanticCustomError("auth_jwt_config", message)
