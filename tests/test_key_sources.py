"""Key sources (the published key set, keys given, async ones), the fetch policy without I/O,
typed discovery, validate_async with keys given, and an adapter configured with native
values. The async key cache against the local Entra ID is tests/test_async_keys.py."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import time
from collections.abc import Callable
from typing import Any

import jwt
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID
from flask import Flask, g

from entra_auth import (
    AccessTokenValidator,
    AsyncKeySource,
    ConfigurationError,
    Discovery,
    EntraConfig,
    InvalidTokenError,
    JwksCache,
    KeySetUnavailableError,
    KeySource,
    StaticKeys,
)
from entra_auth._http import FetchError
from entra_auth.emulator import EntraEmulator
from entra_auth.errors import InsufficientScopeError, MissingSettingError, ProviderResponseError
from entra_auth.integrations.flask import ApiProtector
from entra_auth.keys import KeySetPolicy, SigningKey

from .helpers import API, CONTOSO, emulator_config

AUTHORITY = f"https://login.microsoftonline.com/{CONTOSO}"
KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)


def token(key: rsa.RSAPrivateKey = KEY, kid: str = "k1", **changes: Any) -> str:
    now = int(time.time())
    claims = {
        "aud": API,
        "iss": f"https://login.microsoftonline.com/{CONTOSO}/v2.0",
        "tid": CONTOSO,
        "oid": "oid-1",
        "sub": "sub-1",
        "azp": "client-1",
        "scp": "access_as_user",
        "ver": "2.0",
        "iat": now,
        "nbf": now,
        "exp": now + 600,
        **changes,
    }
    return jwt.encode(claims, key, algorithm="RS256", headers={"kid": kid})


def validator(keys: KeySource | AsyncKeySource) -> AccessTokenValidator:
    return AccessTokenValidator(EntraConfig(authority=AUTHORITY, client_id=API), keys)


# -- keys given ---------------------------------------------------------------------------------
def test_static_keys_from_a_cryptography_key_validate_without_any_server() -> None:
    principal = validator(StaticKeys({"k1": KEY.public_key()})).validate(token())
    assert principal.oid == "oid-1"


def test_static_keys_from_jwks_json_and_from_pem() -> None:
    jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(KEY.public_key()))
    jwks = json.dumps({"keys": [{**jwk, "kid": "k1", "use": "sig"}]})
    assert validator(StaticKeys.from_jwks(jwks)).validate(token()).oid == "oid-1"
    pem = KEY.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    assert validator(StaticKeys.from_pem({"k1": pem})).validate(token()).oid == "oid-1"
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "signing")])
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(KEY.public_key())
        .serial_number(1)
        .not_valid_before(dt.datetime(2020, 1, 1, tzinfo=dt.timezone.utc))
        .not_valid_after(dt.datetime(2040, 1, 1, tzinfo=dt.timezone.utc))
        .sign(KEY, hashes.SHA256())
    )
    cert_pem = certificate.public_bytes(serialization.Encoding.PEM).decode()
    assert validator(StaticKeys.from_pem({"k1": cert_pem})).validate(token()).oid == "oid-1"


def test_static_keys_refuse_what_they_do_not_hold_and_weak_keys() -> None:
    keys = StaticKeys({"k1": KEY.public_key()})
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    with pytest.raises(InvalidTokenError) as unknown:
        validator(keys).validate(token(kid="k2"))
    assert unknown.value.reason == "unknown_key"
    with pytest.raises(InvalidTokenError) as forged:
        validator(keys).validate(token(key=other))
    assert forged.value.reason == "bad_signature"
    weak = rsa.generate_private_key(public_exponent=65537, key_size=1024)  # noqa: S505
    with pytest.raises(ConfigurationError, match="2048"):
        StaticKeys({"weak": weak.public_key()})
    with pytest.raises(ConfigurationError, match="neither a public key nor a certificate"):
        StaticKeys.from_pem({"k1": "not a pem"})
    with pytest.raises(ConfigurationError, match="no usable RSA signing key"):
        StaticKeys.from_jwks({"keys": [{"kty": "EC", "kid": "e"}]})


# -- the fetch policy, without I/O --------------------------------------------------------------
def test_policy_rate_limits_unknown_kids_and_backs_off_when_empty() -> None:
    policy = KeySetPolicy(AUTHORITY, cooldown=60.0)
    assert policy.due("empty", 0.0)
    policy.attempt(0.0)
    policy.failed("down")
    assert not policy.due("empty", 0.5)  # backoff 1, 2, 4 ... seconds after failures
    assert policy.due("empty", 1.0)
    policy.attempt(1.0)
    policy.failed("down")
    assert not policy.due("empty", 2.5)
    assert policy.due("empty", 3.0)
    assert "down" in policy.unavailable().message
    key = SigningKey("k1", KEY.public_key())
    policy.succeeded({"k1": key}, 3.0)
    assert (policy.version, policy.failures) == (1, 0)
    assert policy.due("unknown_kid", 10.0)
    assert not policy.due("unknown_kid", 69.0)  # one refetch per cooldown, however many kids
    assert policy.due("unknown_kid", 70.0)
    policy.succeeded({"k1": key}, 80.0)
    assert policy.version == 1  # the same keys: caches of validated tokens stay


def test_policy_keeps_last_known_good_for_a_bounded_time() -> None:
    policy = KeySetPolicy(AUTHORITY, refresh_interval=100.0, max_stale=50.0)
    policy.succeeded({"k1": SigningKey("k1", KEY.public_key())}, 0.0)
    assert not policy.stale(100.0)
    assert policy.stale(101.0)
    assert not policy.too_stale(150.0)
    assert policy.too_stale(151.0)


def test_policy_lookup_says_what_each_lookup_needs() -> None:
    """One decision for both transports: answer now, refresh in the background, or wait."""
    policy = KeySetPolicy(AUTHORITY, refresh_interval=100.0, max_stale=50.0)
    assert policy.lookup("k1", 0.0) == "empty"  # nothing yet: wait for a fetch
    with pytest.raises(KeySetUnavailableError):
        policy.settle("k1", 0.0)
    key = SigningKey("k1", KEY.public_key())
    policy.succeeded({"k1": key}, 0.0)
    assert policy.lookup("k1", 50.0) is key
    assert not policy.stale(50.0)
    assert policy.lookup("k2", 50.0) == "unknown_kid"  # wait for a refetch, if due
    with pytest.raises(InvalidTokenError) as unknown:
        policy.settle("k2", 50.0)
    assert unknown.value.reason == "unknown_key"
    assert policy.lookup("k1", 120.0) is key  # answered now ...
    assert policy.stale(120.0)  # ... while a refresh is due in the background
    assert policy.lookup("k1", 151.0) == "empty"  # too old to answer with: wait, then refuse
    with pytest.raises(KeySetUnavailableError, match="too old to trust"):
        policy.settle("k1", 151.0)


def test_policy_keeps_keys_on_a_failed_fetch_and_fails_closed_on_a_bug(
    caplog: pytest.LogCaptureFixture,
) -> None:
    policy = KeySetPolicy(AUTHORITY)
    key = SigningKey("k1", KEY.public_key())
    policy.succeeded({"k1": key}, 0.0)
    policy.fetch_failed(FetchError("The key set is not JSON.", cause="not JSON", nonsense=True))
    assert policy.settle("k1", 1.0) is key  # last-known-good
    empty = KeySetPolicy(AUTHORITY)
    empty.attempt(0.0)
    empty.fetch_failed(FetchError("The key set is not JSON.", cause="not JSON", nonsense=True))
    assert isinstance(empty.unavailable(now=0.0), ProviderResponseError)  # 502: nonsense
    with caplog.at_level("ERROR", logger="entra_auth.keys"):
        empty.fetch_failed(RuntimeError("a bug"))
    refused = empty.unavailable(now=0.0)
    assert isinstance(refused, KeySetUnavailableError)  # 503: refused, never a key
    assert refused.cause == "unexpected error (RuntimeError)"
    assert caplog.records[-1].exc_info is not None  # logged with what a bug needs


# -- validate_async with keys given ---------------------------------------------------------------
class CountingKeys:
    """A sync key source that counts lookups."""

    version = 0

    def __init__(self, inner: StaticKeys) -> None:
        self.inner, self.calls = inner, 0

    def get(self, kid: str) -> SigningKey:
        self.calls += 1
        return self.inner.get(kid)


class AsyncCountingKeys:
    """An ``AsyncKeySource`` of one's own (no discovery: a domain authority needs the tenant)."""

    version = 0

    def __init__(self, inner: StaticKeys) -> None:
        self.inner, self.calls = inner, 0

    async def get(self, kid: str) -> SigningKey:
        self.calls += 1
        await asyncio.sleep(0)  # a real await: the event loop runs meanwhile
        return self.inner.get(kid)


def test_validate_async_with_keys_given_and_one_validated_token_cache() -> None:
    static = StaticKeys({"k1": KEY.public_key()})
    sync_keys = CountingKeys(static)
    check = validator(sync_keys)
    good = token()
    assert asyncio.run(check.validate_async(good, scopes=["access_as_user"])).oid == "oid-1"
    assert check.validate(good).oid == "oid-1"  # the entry validate_async made
    assert asyncio.run(check.authenticate_async(good)).oid == "oid-1"
    assert sync_keys.calls == 1
    async_keys = AsyncCountingKeys(static)
    source: AsyncKeySource = async_keys  # the protocol, satisfied by a class of one's own
    check = validator(source)
    for _ in range(3):
        assert asyncio.run(check.validate_async(good)).oid == "oid-1"
    assert async_keys.calls == 1
    with pytest.raises(ConfigurationError, match="validate_async"):
        check.validate(good)
    domain = EntraConfig(authority="https://login.microsoftonline.com/contoso.com", client_id=API)
    with pytest.raises(MissingSettingError) as missing:
        AccessTokenValidator(domain, source)  # no discovery: the tenant must be given
    assert "ENTRA_TENANT_ID" in missing.value.missing


OTHER = rsa.generate_private_key(public_exponent=65537, key_size=2048)
REFUSALS: dict[str, tuple[Callable[[], str], str]] = {
    "expired": (lambda: token(exp=int(time.time()) - 3600), "expired"),
    "wrong-audience": (lambda: token(aud="api://another"), "wrong_audience"),
    "graph-token": (
        lambda: jwt.encode(
            {"aud": "https://graph.microsoft.com", "tid": CONTOSO},
            KEY,
            algorithm="RS256",
            headers={"kid": "k1", "nonce": "graph-nonce"},
        ),
        "graph_token",
    ),
    "id-token": (lambda: token(scp=None, azp=None, nonce="n"), "not_an_access_token"),
    "unknown-key": (lambda: token(kid="k9"), "unknown_key"),
    "forged": (lambda: token(key=OTHER), "bad_signature"),
    "wrong-tenant": (lambda: token(tid="f4d2b1a0-6e2c-4f8e-9a57-3c1d2e4b5a69"), "wrong_tenant"),
    "not-a-jwt": (lambda: "not.a.jwt", "malformed"),
}


@pytest.mark.parametrize("case", list(REFUSALS))
@pytest.mark.parametrize("mode", ["validate", "validate_async", "async-source"])
def test_validate_and_validate_async_refuse_alike(case: str, mode: str) -> None:
    make, reason = REFUSALS[case]
    static = StaticKeys({"k1": KEY.public_key()})
    check = validator(AsyncCountingKeys(static) if mode == "async-source" else static)

    def run(given: str, **kw: Any) -> object:
        if mode == "validate":
            return check.validate(given, **kw)
        return asyncio.run(check.validate_async(given, **kw))

    with pytest.raises(InvalidTokenError) as refused:
        run(make())
    assert refused.value.reason == reason
    with pytest.raises(InsufficientScopeError):  # authorization: the same static check
        run(token(), scopes=["Other.Scope"])


# -- typed discovery, shared ----------------------------------------------------------------------
def test_discovery_is_typed_and_shared_with_the_key_cache(entra_emulator: EntraEmulator) -> None:
    config = emulator_config(entra_emulator)
    discovery = Discovery(config)
    metadata = discovery.metadata
    assert metadata.issuer == entra_emulator.issuer(CONTOSO)
    assert metadata.token_endpoint == f"{entra_emulator.authority_for(CONTOSO)}/oauth2/v2.0/token"
    assert metadata.authorization_endpoint is not None
    assert metadata.graph_url.startswith("https://")
    entra_emulator.reset_counts()
    cache = JwksCache(config, discovery=discovery)
    cache.load()
    assert entra_emulator.request_counts().get("discovery", 0) == 0  # read once, shared
    assert entra_emulator.request_counts()["jwks"] == 1


# -- an adapter configured with native values -------------------------------------------------
def test_flask_config_takes_native_values(entra_emulator: EntraEmulator) -> None:
    app = Flask(__name__)
    app.config.update(
        ENTRA_AUTHORITY=entra_emulator.authority_for(CONTOSO),
        ENTRA_CLIENT_ID=API,
        ENTRA_CA_BUNDLE=str(entra_emulator.ca_path),
        ENTRA_API_AUDIENCE=[API],  # a list, not "a,b"
        ENTRA_LEEWAY=0,  # an int, not "0"
        ENTRA_ACCEPTED_TOKEN_VERSIONS=[2],
    )
    api = ApiProtector(app)
    app.add_url_rule("/who", "who", api.require_token()(lambda: g.principal.oid))
    validator = api.validator_for(app)
    assert validator.config.api_audiences == (API,)
    assert validator.config.leeway == 0
    good = entra_emulator.issue_token(
        client_id=API, resource=API, user="adele@contoso.example", scopes=["access_as_user"]
    )
    answer = app.test_client().get("/who", headers={"Authorization": f"Bearer {good}"})
    assert answer.status_code == 200
