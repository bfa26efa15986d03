"""On-behalf-of and downstream APIs, with the real MSAL against the local Entra ID.

The demo API (the seed's middle tier, with its own secret and an admin's consent for Graph's
User.Read) exchanges its caller's token: once per caller's token, refreshed by MSAL, failures as
the answers its caller can act on."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import threading
from typing import Any

import jwt
import pytest

from entra_auth import (
    AccessTokenValidator,
    ConfigurationError,
    DownstreamApi,
    DownstreamApiError,
    DownstreamApiUnavailableError,
    EntraConfig,
    GraphAuthError,
    InsufficientClaimsError,
    InvalidTokenError,
    JwksCache,
    OnBehalfOfError,
    OnBehalfOfProvider,
    Principal,
)
from entra_auth.bearer import challenge
from entra_auth.challenges import claims_challenge
from entra_auth.emulator import EntraEmulator

from .helpers import ADELE, API, API_URI, CONTOSO, DAEMON, LEGACY_URI, MEGAN, WEB, secret_of

GRAPH_USER_READ = "https://graph.microsoft.com/User.Read"


@pytest.fixture
def api_config(entra_emulator: EntraEmulator) -> EntraConfig:
    """The demo API's settings: its audience, and its own credential for on-behalf-of."""
    return EntraConfig(
        authority=entra_emulator.authority_for(CONTOSO),
        client_id=API,
        client_secret=secret_of(entra_emulator, API),
        api_audiences=(API, API_URI),
        ca_bundle=str(entra_emulator.ca_path),
        client_capabilities=("CP1",),
    )


@pytest.fixture
def validator(api_config: EntraConfig) -> AccessTokenValidator:
    return AccessTokenValidator(api_config, JwksCache(api_config))


def caller(
    emulator: EntraEmulator,
    validator: AccessTokenValidator,
    user: str = ADELE,
    scopes: tuple[str, ...] = ("access_as_user",),
) -> Principal:
    """A user's token for the demo API, as the web app got it, validated as the API does."""
    token = emulator.issue_token(client_id=WEB, resource=API_URI, user=user, scopes=list(scopes))
    return validator.validate(token)


def obo_requests(emulator: EntraEmulator) -> int:
    return emulator.request_counts().get("token:on_behalf_of", 0)


def claims_of(token: str) -> dict[str, Any]:
    return dict(jwt.decode(token, options={"verify_signature": False}))


def test_a_callers_token_is_exchanged_once_for_the_same_user(
    entra_emulator: EntraEmulator, api_config: EntraConfig, validator: AccessTokenValidator
) -> None:
    obo = OnBehalfOfProvider(api_config)
    adele = caller(entra_emulator, validator)
    graph_token = obo.get_token(adele, [GRAPH_USER_READ])
    claims = claims_of(graph_token)
    assert (claims["oid"], claims["tid"]) == (adele.oid, adele.tid)  # the same user
    assert claims["appid"] == API  # obtained by the middle tier (Graph's tokens are v1)
    assert claims["xms_cc"] == ["CP1"]  # the API declared CAE
    assert obo_requests(entra_emulator) == 1
    # The same token again, from a new principal object (another request): no token POST.
    again = validator.validate(str(adele.token))
    assert obo.get_token(again, [GRAPH_USER_READ]) == graph_token
    assert obo_requests(entra_emulator) == 1
    # Another user, or a new token of the same user: an exchange each.
    obo.get_token(caller(entra_emulator, validator, user=MEGAN), [GRAPH_USER_READ])
    obo.get_token(caller(entra_emulator, validator), [GRAPH_USER_READ])
    assert obo_requests(entra_emulator) == 3


def test_concurrent_requests_with_one_token_make_one_exchange(
    entra_emulator: EntraEmulator, api_config: EntraConfig, validator: AccessTokenValidator
) -> None:
    obo = OnBehalfOfProvider(api_config)
    adele = caller(entra_emulator, validator)
    start, tokens = threading.Barrier(12), []

    def request() -> None:
        start.wait()
        tokens.append(obo.get_token(adele, [GRAPH_USER_READ]))

    threads = [threading.Thread(target=request) for _ in range(12)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert len(set(tokens)) == 1
    assert len(tokens) == 12
    assert obo_requests(entra_emulator) == 1

    async def many() -> list[str]:
        megan = caller(entra_emulator, validator, user=MEGAN)
        return list(
            await asyncio.gather(
                *(obo.get_token_async(megan, [GRAPH_USER_READ]) for _ in range(12))
            )
        )

    assert len(set(asyncio.run(many()))) == 1
    assert obo_requests(entra_emulator) == 2


def test_the_exchange_is_refreshed_with_its_own_refresh_token(
    entra_emulator: EntraEmulator, api_config: EntraConfig, validator: AccessTokenValidator
) -> None:
    # Tokens that live 4 minutes are due for renewal at once (MSAL renews under 5 minutes).
    entra_emulator.state.settings.access_token_lifetime = (240, 240)
    obo = OnBehalfOfProvider(api_config)
    adele = caller(entra_emulator, validator)
    first = obo.get_token(adele, [GRAPH_USER_READ])
    second = obo.get_token(adele, [GRAPH_USER_READ])
    assert second != first
    counts = entra_emulator.request_counts()
    assert counts["token:on_behalf_of"] == 1
    assert counts["token:refresh_token"] == 1  # MSAL refreshed; the assertion was not re-sent
    assert claims_of(second)["oid"] == adele.oid


def test_only_a_validated_users_token_is_exchanged(
    entra_emulator: EntraEmulator, api_config: EntraConfig, validator: AccessTokenValidator
) -> None:
    obo = OnBehalfOfProvider(api_config)
    made_up = Principal(oid="x", tid=CONTOSO, sub="x", scopes=frozenset({"access_as_user"}))
    with pytest.raises(ConfigurationError, match="no validated access token"):
        obo.get_token(made_up, [GRAPH_USER_READ])
    daemon_token = entra_emulator.issue_token(
        client_id=DAEMON, resource=API_URI, roles=["Data.Read.All"]
    )
    with pytest.raises(ConfigurationError, match="no user to act for"):
        obo.get_token(validator.validate(daemon_token), [GRAPH_USER_READ])
    assert obo_requests(entra_emulator) == 0


def test_missing_consent_is_a_403_the_caller_can_follow(
    entra_emulator: EntraEmulator, api_config: EntraConfig, validator: AccessTokenValidator
) -> None:
    obo = OnBehalfOfProvider(api_config)
    with pytest.raises(OnBehalfOfError) as refused:
        obo.get_token(caller(entra_emulator, validator), [f"{LEGACY_URI}/Legacy.Read"])
    error = refused.value
    assert (error.status, error.aadsts, error.code) == (403, 65001, "consent_required")
    assert error.consent_uri is not None
    assert f"client_id={API}" in error.consent_uri
    answer = challenge(error, realm="api")
    assert answer.status == 403
    header = answer.headers["WWW-Authenticate"]
    assert 'error="consent_required"' in header
    assert "Legacy.Read" in header
    assert 'proposedAction="consent"' in header
    # Consent given (here by the control API, as the consent URI would): the exchange works.
    entra_emulator.grant_consent(ADELE, API, f"{LEGACY_URI}/Legacy.Read")
    token = obo.get_token(caller(entra_emulator, validator), [f"{LEGACY_URI}/Legacy.Read"])
    assert claims_of(token)["scp"] == "Legacy.Read"


def test_a_revoked_session_is_a_claims_challenge_for_the_caller(
    entra_emulator: EntraEmulator, api_config: EntraConfig, validator: AccessTokenValidator
) -> None:
    """CAE end to end at the middle tier: Graph challenges the held token, the exchange with
    the claims is refused (the session is gone), the caller gets a 401 with Graph's claims."""
    graph = DownstreamApi.graph(
        base_url=f"{entra_emulator.graph_base}/v1.0",
        config=api_config,
        on_behalf_of=OnBehalfOfProvider(api_config),
    )
    adele = caller(entra_emulator, validator)
    assert graph.for_user(adele).get("/me")["displayName"] == "Adele Vance"
    entra_emulator.revoke_sessions(ADELE)
    with pytest.raises(OnBehalfOfError) as refused:
        graph.for_user(adele).get("/me")
    error = refused.value
    assert error.status == 401
    assert error.claims is not None
    assert "nbf" in json.loads(error.claims)["access_token"]
    answer = challenge(error, realm="api")
    assert answer.status == 401
    assert claims_challenge(answer.headers["WWW-Authenticate"]) == error.claims
    assert obo_requests(entra_emulator) == 2  # the first exchange, and the one with the claims


def test_an_authentication_context_the_scope_requires_reaches_the_caller(
    entra_emulator: EntraEmulator, api_config: EntraConfig, validator: AccessTokenValidator
) -> None:
    """Entra's Conditional Access on the downstream scope (the seed's Data.Write needs the
    context c1): the exchange is refused with the claims to ask for, passed to the caller."""
    entra_emulator.grant_consent(ADELE, API, f"{API_URI}/Data.Write")  # consent is not it
    obo = OnBehalfOfProvider(api_config)
    with pytest.raises(OnBehalfOfError) as refused:
        obo.get_token(caller(entra_emulator, validator), [f"{API_URI}/Data.Write"])
    error = refused.value
    assert error.status == 401
    assert error.aadsts == 50076
    assert json.loads(error.claims or "{}") == {
        "access_token": {"acrs": {"essential": True, "value": "c1"}}
    }


def test_an_api_requires_an_authentication_context_itself(
    entra_emulator: EntraEmulator, validator: AccessTokenValidator
) -> None:
    token = entra_emulator.issue_token(
        client_id=WEB, resource=API_URI, user=ADELE, scopes=["access_as_user"]
    )
    with pytest.raises(InsufficientClaimsError) as refused:
        validator.validate(token, scopes=["access_as_user"], auth_contexts=["c1"])
    answer = challenge(refused.value, realm="api")
    assert answer.status == 401
    assert json.loads(claims_challenge(answer.headers["WWW-Authenticate"]) or "") == {
        "access_token": {"acrs": {"essential": True, "value": "c1"}}
    }
    # An app's token is not asked for a user's sign-in strength.
    daemon = entra_emulator.issue_token(client_id=DAEMON, resource=API_URI, roles=["Data.Read.All"])
    assert validator.validate(daemon, roles=["Data.Read.All"], auth_contexts=["c1"]).app_only


def test_a_downstream_api_as_the_app_and_its_errors(
    entra_emulator: EntraEmulator,
) -> None:
    daemon = EntraConfig(
        authority=entra_emulator.authority_for(CONTOSO),
        client_id=DAEMON,
        client_secret=secret_of(entra_emulator, DAEMON),
        ca_bundle=str(entra_emulator.ca_path),
    )
    graph = DownstreamApi.graph(
        base_url=f"{entra_emulator.graph_base}/v1.0",
        scopes=["https://graph.microsoft.com/User.Read.All"],
        config=daemon,
    )
    users = graph.for_app().get("/users", params={"$top": "2"})
    assert len(users["value"]) == 2
    # /me has no user in an app's token: Graph's 400, as an error of the family.
    with pytest.raises(DownstreamApiError) as caught:
        graph.for_app().get("/me")
    assert caught.value.status == 400
    assert caught.value.error_code == "BadRequest"
    with pytest.raises(DownstreamApiError, match="host other than"):
        graph.for_app().get("https://evil.example/v1.0/users")
    # Another API's token sent to Graph: refused (401) as Graph's own error type.
    wrong = DownstreamApi.graph(
        base_url=f"{entra_emulator.graph_base}/v1.0",
        config=daemon,
        app_scope=f"{LEGACY_URI}/.default",
    )
    with pytest.raises(GraphAuthError) as refused:
        wrong.for_app().get("/users")
    assert refused.value.status == 401


def test_a_cae_token_is_valid_for_all_of_its_28_hours(
    entra_emulator: EntraEmulator, api_config: EntraConfig
) -> None:
    """CAE-capable clients get tokens of up to 28 hours: nothing assumes one hour."""
    entra_emulator.state.settings.access_token_lifetime = (28 * 3600, 28 * 3600)
    token = entra_emulator.issue_token(
        client_id=WEB, resource=API_URI, user=ADELE, scopes=["access_as_user"]
    )
    issued = claims_of(token)["iat"]
    for hours, valid in ((1.5, True), (27.9, True), (28.1, False)):
        later = AccessTokenValidator(
            api_config, JwksCache(api_config), clock=lambda h=hours: issued + h * 3600
        )
        if valid:
            assert later.validate(token).oid
        else:
            with pytest.raises(InvalidTokenError, match="expired"):
                later.validate(token)


def test_instances_sharing_a_store_make_one_exchange(
    entra_emulator: EntraEmulator,
    api_config: EntraConfig,
    validator: AccessTokenValidator,
    redis_url: str,
) -> None:
    """Two instances of the API behind a load balancer, one Redis: the caller's second request
    lands on the other instance and costs no exchange; nothing is stored in the clear."""
    import redis
    from cryptography.fernet import Fernet

    from entra_auth.client.redis_cache import RedisTokenCacheStore
    from entra_auth.client.token_cache import TokenCacheCipher

    client = redis.Redis.from_url(redis_url)
    cipher = TokenCacheCipher([Fernet.generate_key().decode()])

    def store(key: str) -> RedisTokenCacheStore:
        return RedisTokenCacheStore(client, key, cipher, ttl=3600)

    one = OnBehalfOfProvider(api_config, cache_store=store)
    two = OnBehalfOfProvider(api_config, cache_store=store)
    adele = caller(entra_emulator, validator)
    # Graph's short scope names, as Graph echoes them: MSAL finds a cached token by them.
    token = one.get_token(adele, ["User.Read"])
    assert two.get_token(adele, ["User.Read"]) == token
    counts = entra_emulator.request_counts()
    assert (counts["token:on_behalf_of"], counts["token:refresh_token"]) == (1, 0)
    (key,) = client.keys("entra:obo:*")
    assert key.decode().startswith(f"entra:obo:{adele.tid}:{adele.oid}:")
    assert token.encode() not in (client.get(key) or b"")
    assert str(adele.token).encode() not in (client.get(key) or b"")


def test_an_async_call_waits_out_retry_after_within_its_budget(
    entra_emulator: EntraEmulator, api_config: EntraConfig, validator: AccessTokenValidator
) -> None:
    from entra_auth.emulator import Fault

    waits: list[float] = []

    async def recorded(seconds: float) -> None:
        waits.append(seconds)

    graph = DownstreamApi.graph(
        base_url=f"{entra_emulator.graph_base}/v1.0",
        config=api_config,
        async_sleep=recorded,
        max_wait=5,
    )
    adele = caller(entra_emulator, validator)
    entra_emulator.inject_fault("graph", Fault("status", status=429, retry_after=2, times=1))
    me = asyncio.run(graph.for_user(adele).get_async("/me"))
    assert me["displayName"] == "Adele Vance"
    assert waits == [2.0]
    entra_emulator.inject_fault("graph", Fault("status", status=503, retry_after=30))
    with pytest.raises(DownstreamApiUnavailableError, match="Try again in 30 seconds") as busy:
        asyncio.run(graph.for_user(adele).get_async("/me"))
    assert busy.value.retry_after == 30
    assert waits == [2.0]  # 30 s is past the budget: said, not slept


def test_a_refused_exchange_without_claims_is_still_an_answer_the_caller_can_act_on(
    entra_emulator: EntraEmulator, api_config: EntraConfig, validator: AccessTokenValidator
) -> None:
    """The sign-in behind the caller's token was revoked and no downstream API challenged yet
    (a new instance, nothing held): a 401 asking for a token issued from now on; an assertion
    Entra cannot use (expired at Entra): a 401 invalid_token. Never a 500."""
    adele = caller(entra_emulator, validator)
    entra_emulator.revoke_sessions(ADELE)
    with pytest.raises(OnBehalfOfError) as revoked:
        OnBehalfOfProvider(api_config).get_token(adele, [GRAPH_USER_READ])
    assert (revoked.value.status, revoked.value.aadsts) == (401, 50173)
    nbf = json.loads(revoked.value.claims or "{}")["access_token"]["nbf"]
    assert nbf["essential"] is True
    assert int(nbf["value"]) >= claims_of(str(adele.token))["iat"]
    assert challenge(revoked.value).status == 401

    megan = caller(entra_emulator, validator, user=MEGAN)
    entra_emulator.shift_clock(6 * 3600)  # Entra's clock: the assertion has expired
    with pytest.raises(OnBehalfOfError) as expired:
        OnBehalfOfProvider(api_config).get_token(megan, [GRAPH_USER_READ])
    assert (expired.value.status, expired.value.aadsts, expired.value.claims) == (401, 50013, None)
    answer = challenge(expired.value)
    assert answer.status == 401
    assert 'error="invalid_token"' in answer.headers["WWW-Authenticate"]


def test_a_wrong_credential_during_a_claims_exchange_is_no_claims_challenge(
    entra_emulator: EntraEmulator, api_config: EntraConfig, validator: AccessTokenValidator
) -> None:
    """The API's own secret is wrong: a 500 for its operator (with Entra's code in the log,
    not in the answer), even when a downstream API's claims were being met; the caller is not
    sent to sign in again for nothing."""
    wrong = dataclasses.replace(api_config, client_secret="not-the-secret")
    adele = caller(entra_emulator, validator)
    with pytest.raises(OnBehalfOfError) as refused:
        OnBehalfOfProvider(wrong).get_token(
            adele, [GRAPH_USER_READ], claims='{"access_token":{"nbf":{"essential":true}}}'
        )
    assert (refused.value.status, refused.value.aadsts, refused.value.claims) == (
        500,
        7000215,
        None,
    )
    answer = challenge(refused.value)
    assert answer.status == 500
    assert answer.body["error"] == "server_error"
    assert "AADSTS" not in json.dumps(answer.body)
