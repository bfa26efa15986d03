"""Key sources (the published key set, keys given), the fetch policy without I/O, typed
discovery, and an adapter configured with native values."""

from __future__ import annotations

import datetime as dt
import json
import time
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
    ConfigurationError,
    Discovery,
    EntraConfig,
    InvalidTokenError,
    JwksCache,
    StaticKeys,
)
from entra_auth.emulator import EntraEmulator
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


def validator(keys: StaticKeys) -> AccessTokenValidator:
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
