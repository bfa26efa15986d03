"""Catalogue JW01-JW11: JWKS and metadata faults, with fetches counted at the emulator."""

from __future__ import annotations

import json
import logging
import secrets
import threading
import time
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from entra_auth.emulator import EntraEmulator, Fault
from entra_auth.errors import InvalidTokenError, KeySetUnavailableError
from entra_auth.keys import JwksCache
from entra_auth.tokens import AccessTokenValidator

from ..helpers import CONTOSO, emulator_config
from .conftest import ApiFactory
from .minting import Mint


class Clock:
    """A monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def validator(
    emulator: EntraEmulator, clock: Clock | None = None, **jwks: Any
) -> AccessTokenValidator:
    cfg = emulator_config(emulator)
    cache = JwksCache(cfg, clock=clock or time.monotonic, **jwks)
    return AccessTokenValidator(cfg, cache, cache_size=0)


def jwks_body(emulator: EntraEmulator) -> dict[str, Any]:
    return emulator.http_session().get(f"{emulator.authority}/discovery/v2.0/keys").json()  # type: ignore[no-any-return]


def discovery_body(emulator: EntraEmulator) -> dict[str, Any]:
    url = f"{emulator.authority}/v2.0/.well-known/openid-configuration"
    return emulator.http_session().get(url).json()  # type: ignore[no-any-return]


@pytest.mark.parametrize("endpoint", ["discovery", "jwks"])
def test_JW01_fail_closed_at_start_then_retry_with_backoff(
    entra_emulator: EntraEmulator, mint: Mint, api_factory: ApiFactory, endpoint: str
) -> None:
    entra_emulator.inject_fault(endpoint, Fault("status", status=503))
    clock = Clock()
    check = validator(entra_emulator, clock)
    with pytest.raises(KeySetUnavailableError, match="unavailable") as caught:
        check.validate(mint.token())
    assert "HTTP 503" in str(caught.value)
    assert caught.value.remedy
    entra_emulator.reset_counts()
    with pytest.raises(KeySetUnavailableError):
        check.validate(mint.token())  # within the backoff: no new fetch
    assert entra_emulator.request_counts()[endpoint] == 0
    clock.now += 1.5
    with pytest.raises(KeySetUnavailableError):
        check.validate(mint.token())
    assert entra_emulator.request_counts()[endpoint] == 1  # retried after the backoff
    entra_emulator.clear_faults()
    clock.now += 4
    assert check.validate(mint.token()).tid == CONTOSO
    # Through Flask: 503 with Retry-After, never acceptance.
    entra_emulator.inject_fault(endpoint, Fault("status", status=500))
    response = api_factory().get("/scoped", headers={"Authorization": f"Bearer {mint.token()}"})
    assert response.status_code == 503
    assert response.headers["Retry-After"]


def test_JW02_last_known_good_keys_serve_for_a_bounded_time(
    entra_emulator: EntraEmulator, mint: Mint
) -> None:
    clock = Clock()
    check = validator(entra_emulator, clock, refresh_interval=100, max_stale=50)
    assert check.validate(mint.token())
    entra_emulator.inject_fault("jwks", Fault("status", status=502))
    clock.now += 120  # keys are due for refresh; the refresh fails
    assert check.validate(mint.token())
    clock.now += 40  # past refresh_interval + max_stale
    with pytest.raises(KeySetUnavailableError, match="too old"):
        check.validate(mint.token())


@pytest.mark.parametrize(
    "body",
    ['{"keys": []}', "{not json", "<html><body>Service Unavailable</body></html>", "[1, 2]"],
    ids=["empty", "garbage", "html", "array"],
)
def test_JW03_bad_key_sets_keep_old_keys_and_warn(
    entra_emulator: EntraEmulator, mint: Mint, caplog: pytest.LogCaptureFixture, body: str
) -> None:
    clock = Clock()
    check = validator(entra_emulator, clock, refresh_interval=100)
    assert check.validate(mint.token())
    version = check.jwks.version
    entra_emulator.inject_fault("jwks", Fault("garbage", body=body))
    clock.now += 200
    with caplog.at_level(logging.WARNING, logger="entra_auth.keys"):
        assert check.validate(mint.token())
    assert check.jwks.version == version
    assert any("not refreshed" in r.getMessage() for r in caplog.records)


def test_JW04_one_unparseable_key_is_ignored(entra_emulator: EntraEmulator, mint: Mint) -> None:
    body = jwks_body(entra_emulator)
    body["keys"].insert(0, {"kty": "RSA", "use": "sig", "kid": "broken", "n": "!!", "e": "AQAB"})
    body["keys"].insert(0, "not an object")
    entra_emulator.inject_fault("jwks", Fault("garbage", body=json.dumps(body)))
    check = validator(entra_emulator)
    assert check.validate(mint.token())
    assert set(check.jwks.keys()) == {mint.kid}


def test_JW05_rotation_one_refetch_then_accepted_then_old_refused(
    entra_emulator: EntraEmulator, mint: Mint
) -> None:
    clock = Clock()
    check = validator(entra_emulator, clock, cooldown=60)
    old_token = mint.token()
    assert check.validate(old_token)
    entra_emulator.reset_counts()
    new_key = entra_emulator.rotate_keys(keep_old=True)
    new_token = mint.token(key=new_key.private_key, kid=new_key.kid)
    for _ in range(5):
        assert check.validate(new_token)
    assert entra_emulator.request_counts()["jwks"] == 1  # exactly one refetch
    entra_emulator.rotate_keys(keep_old=False)
    clock.now += 61
    newest = entra_emulator.signing_key
    assert check.validate(mint.token(key=newest.private_key, kid=newest.kid))
    assert entra_emulator.request_counts()["jwks"] == 2
    with pytest.raises(InvalidTokenError) as refused:
        check.validate(old_token)  # its key was removed
    assert refused.value.reason == "unknown_key"


def test_JW06_unknown_kid_storm_at_most_one_fetch_per_cooldown(
    entra_emulator: EntraEmulator, mint: Mint
) -> None:
    clock = Clock()
    check = validator(entra_emulator, clock, cooldown=60)
    assert check.validate(mint.token())
    entra_emulator.reset_counts()
    for i in range(1000):
        with pytest.raises(InvalidTokenError):
            check.validate(mint.token(kid=secrets.token_urlsafe(8)))
        if i == 499:
            clock.now += 60  # one cooldown passes halfway through the storm
    assert entra_emulator.request_counts()["jwks"] <= 2


def test_JW07_hanging_jwks_times_out_and_callers_share_one_fetch(
    entra_emulator: EntraEmulator, mint: Mint
) -> None:
    entra_emulator.inject_fault("jwks", Fault("hang", delay=10))
    check = validator(entra_emulator, timeout=1.0)
    results: list[BaseException | None] = []

    def call() -> None:
        try:
            check.validate(mint.token())
            results.append(None)
        except BaseException as exc:
            results.append(exc)

    started = time.monotonic()
    threads = [threading.Thread(target=call) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=20)
    elapsed = time.monotonic() - started
    assert elapsed < 4, elapsed
    assert len(results) == 8
    assert all(isinstance(r, KeySetUnavailableError) for r in results)
    assert entra_emulator.request_counts()["jwks"] == 1


@pytest.mark.parametrize("target", ["http", "other-host", "redirect"])
def test_JW08_jwks_uri_must_be_https_on_the_authority(
    entra_emulator: EntraEmulator, mint: Mint, target: str
) -> None:
    doc = discovery_body(entra_emulator)
    jwks_uri = doc["jwks_uri"]
    if target == "http":
        doc["jwks_uri"] = jwks_uri.replace("https://", "http://")
    elif target == "other-host":
        doc["jwks_uri"] = jwks_uri.replace("localhost", "127.0.0.1")
    if target == "redirect":
        entra_emulator.inject_fault(
            "jwks",
            Fault("status", status=302, headers=(("Location", "https://evil.example/keys"),)),
        )
    else:
        entra_emulator.inject_fault("discovery", Fault("garbage", body=json.dumps(doc)))
    with pytest.raises(KeySetUnavailableError) as refused:
        validator(entra_emulator).validate(mint.token())
    assert ("redirect" if target == "redirect" else "not https on") in str(refused.value)


@pytest.mark.parametrize("endpoint", ["discovery", "jwks"])
def test_JW09_bodies_over_one_mebibyte(
    entra_emulator: EntraEmulator, mint: Mint, endpoint: str
) -> None:
    source = (
        discovery_body(entra_emulator) if endpoint == "discovery" else jwks_body(entra_emulator)
    )
    source["padding"] = "x" * (1024 * 1024)
    entra_emulator.inject_fault(endpoint, Fault("garbage", body=json.dumps(source)))
    with pytest.raises(KeySetUnavailableError, match="larger than 1 MiB"):
        validator(entra_emulator).validate(mint.token())


@pytest.mark.filterwarnings("ignore::jwt.warnings.InsecureKeyLengthWarning")
def test_JW10_small_rsa_and_encryption_keys_are_ignored(
    entra_emulator: EntraEmulator, mint: Mint
) -> None:
    small = rsa.generate_private_key(public_exponent=65537, key_size=1024)  # noqa: S505
    small_jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(small.public_key()))
    small_jwk.update({"kid": "small", "use": "sig"})
    enc_jwk = dict(jwks_body(entra_emulator)["keys"][0], kid="enc", use="enc")
    body = jwks_body(entra_emulator)
    body["keys"] += [small_jwk, enc_jwk]
    entra_emulator.inject_fault("jwks", Fault("garbage", body=json.dumps(body)))
    check = validator(entra_emulator)
    for kid, key in (("small", small), ("enc", mint.key)):
        with pytest.raises(InvalidTokenError) as refused:
            check.validate(mint.token(key=key, kid=kid))
        assert refused.value.reason == "unknown_key"
    assert set(check.jwks.keys()) == {mint.kid}


@pytest.mark.parametrize("issuer", ["other-tenant", "other-host", "template", "trailing"])
def test_JW11_discovery_issuer_must_match_the_authority(
    entra_emulator: EntraEmulator, mint: Mint, issuer: str
) -> None:
    doc = discovery_body(entra_emulator)
    doc["issuer"] = {
        "other-tenant": doc["issuer"].replace(CONTOSO, "f4d2b1a0-6e2c-4f8e-9a57-3c1d2e4b5a69"),
        "other-host": f"https://login.microsoftonline.com/{CONTOSO}/v2.0",
        "template": doc["issuer"].replace(CONTOSO, "{tenantid}"),
        "trailing": doc["issuer"] + "/",
    }[issuer]
    entra_emulator.inject_fault("discovery", Fault("garbage", body=json.dumps(doc)))
    with pytest.raises(KeySetUnavailableError, match="does not belong"):
        validator(entra_emulator).validate(mint.token())


def test_steady_traffic_fetches_keys_once(entra_emulator: EntraEmulator, mint: Mint) -> None:
    check = validator(entra_emulator)
    entra_emulator.reset_counts()
    for i in range(200):
        assert check.validate(mint.token(oid=f"00000000-0000-0000-0000-{i:012d}"))
    counts = entra_emulator.request_counts()
    assert counts["jwks"] == 1
    assert counts["discovery"] == 1
