"""The validated-token cache and the ID-token validator, against the emulator's keys."""

from __future__ import annotations

import hashlib
import time
from typing import Any

import pytest

from entra_auth.config import EntraConfig
from entra_auth.emulator import EntraEmulator
from entra_auth.errors import InvalidTokenError
from entra_auth.jwks import JwksCache
from entra_auth.tokens import AccessTokenValidator, IdTokenValidator

from .helpers import API, CONTOSO, WEB, emulator_config
from .security.minting import REMOVE, Mint


class CountingKey:
    """Wraps a public key to count RSA verifications."""

    def __init__(self, key: Any) -> None:
        self.key, self.calls = key, 0

    def verify(self, *args: Any) -> None:
        self.calls += 1
        self.key.verify(*args)


def _config(emulator: EntraEmulator, client_id: str = API) -> EntraConfig:
    return emulator_config(emulator, client_id=client_id)


def test_cache_pays_one_verify_per_token(entra_emulator: EntraEmulator) -> None:
    mint = Mint(entra_emulator)
    clock = [time.time()]
    validator = AccessTokenValidator(_config(entra_emulator), clock=lambda: clock[0], cache_size=2)
    key = validator.jwks.get(mint.kid)
    counting = CountingKey(key.public_key)
    object.__setattr__(key, "public_key", counting)
    token = mint.token(exp=int(clock[0]) + 100)
    for _ in range(50):
        assert validator.validate(token, scopes=["access_as_user"]).tid == CONTOSO
    assert counting.calls == 1
    # Per-endpoint authorization still applies on a cache hit.
    with pytest.raises(Exception, match="scope"):
        validator.validate(token, scopes=["Other"])
    # Bounded: two other tokens push the first one out.
    for i in range(2):
        validator.validate(mint.token(oid=f"00000000-0000-0000-0000-00000000000{i}"))
    validator.validate(token)
    assert counting.calls == 4
    # Never beyond exp: past it the token is checked again (and refused past the leeway).
    clock[0] += 101
    validator.validate(token)
    assert counting.calls == 5
    clock[0] += 100
    with pytest.raises(InvalidTokenError, match="expired"):
        validator.validate(token)


def test_cache_entries_die_with_a_key_set_change(entra_emulator: EntraEmulator) -> None:
    mint = Mint(entra_emulator)
    validator = AccessTokenValidator(_config(entra_emulator))
    token = mint.token()
    validator.validate(token)
    version = validator.jwks.version
    new_key = entra_emulator.rotate_keys(keep_old=True)
    validator.validate(mint.token(key=new_key.private_key, kid=new_key.kid))  # refetch
    assert validator.jwks.version == version + 1
    key = validator.jwks.get(mint.kid)
    counting = CountingKey(key.public_key)
    object.__setattr__(key, "public_key", counting)
    validator.validate(token)
    assert counting.calls == 1  # the cached entry was dropped: verified again


def test_cache_key_is_a_hash_not_the_token(entra_emulator: EntraEmulator) -> None:
    mint = Mint(entra_emulator)
    validator = AccessTokenValidator(_config(entra_emulator))
    token = mint.token()
    validator.validate(token)
    assert list(validator._cache) == [hashlib.sha256(token.encode()).digest()]


def id_validator(emulator: EntraEmulator) -> IdTokenValidator:
    config = _config(emulator, WEB)
    return IdTokenValidator(config, JwksCache(config))


def id_claims(mint: Mint, **changes: Any) -> dict[str, Any]:
    values: dict[str, Any] = {
        "aud": WEB,
        "scp": REMOVE,
        "azp": REMOVE,
        "nonce": "n-123",
        "sid": "s",
    }
    values.update(changes)
    return mint.claims(**values)


def test_id_token_valid(entra_emulator: EntraEmulator) -> None:
    mint = Mint(entra_emulator)
    user = id_validator(entra_emulator).validate(mint.token(id_claims(mint)), nonce="n-123")
    assert user.key == (mint.claims()["oid"], CONTOSO)
    assert user.username == "adele@contoso.example"


@pytest.mark.parametrize(
    ("changes", "nonce", "reason"),
    [
        ({"aud": API}, "n-123", "wrong_audience"),
        ({"aud": [WEB, API]}, "n-123", "wrong_audience"),
        ({"aud": [WEB, API], "azp": API}, "n-123", "wrong_audience"),
        ({}, "other-nonce", "bad_nonce"),
        ({"nonce": REMOVE}, "n-123", "bad_nonce"),
        ({"iat": int(time.time()) + 3600}, "n-123", "issued_in_future"),
        ({"iat": REMOVE}, "n-123", "missing_claim"),
        ({"oid": REMOVE}, "n-123", "missing_claim"),
        ({"sub": REMOVE}, "n-123", "missing_claim"),
        ({"exp": int(time.time()) - 600}, "n-123", "expired"),
        ({"tid": "f4d2b1a0-6e2c-4f8e-9a57-3c1d2e4b5a69"}, "n-123", "wrong_tenant"),
    ],
)
def test_id_token_refusals(
    entra_emulator: EntraEmulator, changes: dict[str, Any], nonce: str, reason: str
) -> None:
    mint = Mint(entra_emulator)
    with pytest.raises(InvalidTokenError) as refused:
        id_validator(entra_emulator).validate(mint.token(id_claims(mint, **changes)), nonce=nonce)
    assert refused.value.reason == reason


def test_id_token_with_several_audiences_and_our_azp(entra_emulator: EntraEmulator) -> None:
    mint = Mint(entra_emulator)
    token = mint.token(id_claims(mint, aud=[WEB, API], azp=WEB))
    assert id_validator(entra_emulator).validate(token, nonce="n-123").client_id == WEB
