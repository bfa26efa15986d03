"""The validated-token cache and the ID-token validator, against the emulator's keys; the
parts of the cold path that need no keys (the principal, scopes, tenants) without them."""

from __future__ import annotations

import dataclasses
import hashlib
import time
from types import MappingProxyType
from typing import Any

import pytest

from entra_auth.config import EntraConfig
from entra_auth.emulator import EntraEmulator
from entra_auth.errors import InvalidTokenError
from entra_auth.keys import JwksCache
from entra_auth.tokens import (
    MAX_SCOPE_SETS,
    AccessTokenValidator,
    IdTokenValidator,
    Principal,
    _principal,
)

from .helpers import API, CONTOSO, FABRIKAM, WEB, emulator_config
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


# -- without keys: what the cold path builds and remembers ------------------------------------
def test_the_validators_principal_is_the_dataclass_one() -> None:
    claims: dict[str, Any] = {"oid": "o", "preferred_username": "adele@contoso.example"}
    built = _principal("o", "t", "s", frozenset({"a"}), frozenset(), "Adele", WEB, False, claims)
    declared = Principal(
        oid="o",
        tid="t",
        sub="s",
        scopes=frozenset({"a"}),
        name="Adele",
        client_id=WEB,
        claims=MappingProxyType(claims),
    )
    assert built == declared
    assert hash(built) == hash(declared)
    assert repr(built) == repr(declared)
    # Every field set, and no other: a field added to Principal must be added to _principal,
    # which bypasses __init__ (so a __post_init__ would not run).
    assert vars(built).keys() == {f.name for f in dataclasses.fields(Principal)}
    assert not hasattr(Principal, "__post_init__")
    assert dataclasses.replace(built, tid="u").tid == "u"
    assert built.username == "adele@contoso.example"
    with pytest.raises(dataclasses.FrozenInstanceError):
        built.oid = "x"  # type: ignore[misc]
    with pytest.raises(TypeError):
        built.claims["oid"] = "x"  # type: ignore[index]  # a read-only view of the claims
    assert _principal("o", "t", "s", frozenset(), frozenset(), 7, None, True, {}).name is None


def _offline(**changes: Any) -> AccessTokenValidator:
    """A validator whose key source is never asked: only claim checks are called on it."""
    values: dict[str, Any] = {"tenant_id": CONTOSO, "client_id": API}
    values.update(changes)
    return AccessTokenValidator(EntraConfig(**values))


def test_scope_sets_are_remembered_within_a_bound() -> None:
    validator = _offline()
    base = {"ver": "2.0", "azp": WEB}
    for i in range(MAX_SCOPE_SETS + 20):
        scopes, _, _ = validator._check_access_token_kind({**base, "scp": f"s{i}  common"})
        assert scopes == {f"s{i}", "common"}
    assert len(validator._scope_sets) == MAX_SCOPE_SETS
    for _ in range(2):  # remembered or not, the same answer
        assert validator._check_access_token_kind({**base, "scp": "s0  common"})[0] == {
            "s0",
            "common",
        }
        assert validator._check_access_token_kind({**base, "scp": "   "})[0] == frozenset()
        assert validator._check_access_token_kind({**base, "roles": ["r"]})[:2] == (
            frozenset(),
            {"r"},
        )


ORGANIZATIONS = "https://login.microsoftonline.com/organizations"
OTHER = "0b1c2d3e-4f5a-4b6c-8d7e-9f0a1b2c3d4e"


@pytest.mark.parametrize(
    ("config", "accepted", "refused"),
    [
        ({}, [CONTOSO, CONTOSO.upper()], [FABRIKAM, OTHER]),
        ({"allowed_tenants": (FABRIKAM,)}, [CONTOSO, FABRIKAM, FABRIKAM.upper()], [OTHER]),
        ({"tenant_id": None, "authority": ORGANIZATIONS}, [], [CONTOSO, FABRIKAM]),
        (
            {"tenant_id": None, "authority": ORGANIZATIONS, "allowed_tenants": (FABRIKAM.upper(),)},
            [FABRIKAM, FABRIKAM.upper()],
            [CONTOSO, OTHER],
        ),
    ],
)
def test_tenant_rule_from_the_configuration(
    config: dict[str, Any], accepted: list[str], refused: list[str]
) -> None:
    validator = _offline(**config)
    for tid in accepted:
        assert validator._check_tenant({"tid": tid}) == tid
    for tid in refused:
        with pytest.raises(InvalidTokenError) as caught:
            validator._check_tenant({"tid": tid})
        assert caught.value.reason == "wrong_tenant"
