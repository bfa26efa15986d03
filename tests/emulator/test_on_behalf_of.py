"""The on-behalf-of flow, session revocation (CAE) and authentication contexts, with real MSAL.

The chain of the demo: the web app signs Adele in for the demo API; the demo API, a middle tier
with a secret of its own, exchanges her token for a Graph token on her behalf
(``acquire_token_on_behalf_of``) and keeps it in MSAL's cache, refreshed with the refresh token
the exchange gave. An admin revoking her sessions ends all of it: refresh tokens, the browser's
session, exchanges of tokens issued before, and Graph's acceptance of tokens held by CAE-capable
clients (a 401 with a claims challenge). A scope behind an authentication context needs a
step-up sign-in, which the clients learn from Entra's AADSTS50076 and its ``claims``.
"""

from __future__ import annotations

import base64
import json
import sys
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import jwt
import msal
import pytest

from entra_auth.emulator import EntraEmulator
from entra_auth.emulator.admin import ADMIN_HEADER
from entra_auth.emulator.seed import default_seed_path, seed_from_dict
from entra_auth.errors import EmulatorError
from entra_auth.testing.driver import BrowserlessUser, SignInRefused

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

from ..helpers import (
    ADELE,
    API,
    API_SCOPE,
    API_URI,
    CONTOSO,
    DAEMON,
    FABRIKAM,
    LEGACY,
    LEGACY_URI,
    REDIRECT,
    WEB,
    confidential_client,
    secret_of,
    sign_in,
)

GRAPH_APP_ID = "00000003-0000-0000-c000-000000000000"
DATA_WRITE = f"{API_URI}/Data.Write"  # behind the authentication context c1
C1 = '{"access_token":{"acrs":{"essential":true,"value":"c1"}}}'
JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer"
LONGEST_LIFETIME = 5400  # Entra's access tokens live 60 to 90 minutes
CAE_LONGEST_LIFETIME = 28 * 3600  # a CAE client's Graph tokens, up to 28 hours
PUBLIC = "6d7e8f90-a1b2-4c3d-8e4f-5a6b7c8d9e0f"
LEGACY_WRITE = f"{LEGACY_URI}/Legacy.Write"


def claims(token: str) -> dict[str, Any]:
    return jwt.decode(token, options={"verify_signature": False})


def graph_me(emulator: EntraEmulator, token: str) -> Any:
    return emulator.http_session().get(
        f"{emulator.graph_base}/v1.0/me", headers={"Authorization": f"Bearer {token}"}
    )


def middle_tier(emulator: EntraEmulator, **kwargs: Any) -> msal.ConfidentialClientApplication:
    """The demo API as MSAL's confidential client: its own secret, from the seed."""
    return confidential_client(emulator, API, **kwargs)


def users_api_token(
    emulator: EntraEmulator, *, browser: BrowserlessUser | None = None, **flow: Any
) -> str:
    """Adele's access token for the demo API, as the web app gets it (consent page and all)."""
    result = sign_in(
        emulator, confidential_client(emulator, WEB), [API_SCOPE], browser=browser, **flow
    )
    assert "access_token" in result, result.get("error_description")
    return str(result["access_token"])


def expire_cached_access_tokens(app: msal.ClientApplication) -> None:
    """MSAL reads its own clock: make its cached access tokens look expired to it too."""
    for item in app.token_cache.search(msal.TokenCache.CredentialType.ACCESS_TOKEN):
        item["expires_on"] = str(int(item["expires_on"]) - CAE_LONGEST_LIFETIME - 10_000)


def assert_aadsts(result: dict[str, Any], code: int, error: str) -> None:
    assert result.get("error") == error, result
    assert result["error_codes"] == [code]
    assert result["error_description"].startswith(f"AADSTS{code}: ")


# -- the exchange ---------------------------------------------------------------------------------
def test_obo_gives_a_graph_token_for_the_same_user_and_msal_caches_and_refreshes_it(
    entra_emulator: EntraEmulator,
) -> None:
    assertion = users_api_token(entra_emulator)
    api = middle_tier(entra_emulator, client_capabilities=["cp1"])
    entra_emulator.reset_counts()

    result = api.acquire_token_on_behalf_of(assertion, ["User.Read"])

    assert "access_token" in result, result.get("error_description")
    graph, incoming = claims(result["access_token"]), claims(assertion)
    assert (graph["oid"], graph["tid"]) == (incoming["oid"], incoming["tid"])
    assert (graph["oid"], graph["tid"]) == (entra_emulator.user(ADELE).oid, CONTOSO)
    assert graph["aud"] == GRAPH_APP_ID
    assert graph["appid"] == API  # the middle tier is the client now (a v1 token: appid)
    assert "User.Read" in graph["scp"].split()
    assert graph["xms_cc"] == ["cp1"]  # MSAL sent its capabilities in `claims`
    assert result["id_token_claims"]["aud"] == API
    assert result["refresh_token"]
    assert graph_me(entra_emulator, result["access_token"]).json()["userPrincipalName"] == ADELE
    counts = entra_emulator.request_counts()
    assert (counts["token"], counts["token:on_behalf_of"]) == (1, 1)

    # From MSAL's cache: the account the exchange named, and no request.
    (account,) = api.get_accounts()
    assert account["home_account_id"] == f"{graph['oid']}.{CONTOSO}"
    cached = api.acquire_token_silent(["User.Read"], account)
    assert cached["access_token"] == result["access_token"]
    assert entra_emulator.request_counts()["token"] == 1

    # Once the access token expires (a CAE client's: up to 28 hours), MSAL refreshes it with
    # the exchange's refresh token.
    entra_emulator.shift_clock(CAE_LONGEST_LIFETIME + 1)
    expire_cached_access_tokens(api)
    refreshed = api.acquire_token_silent(["User.Read"], account)
    assert refreshed["token_source"] == "identity_provider"
    assert refreshed["access_token"] != result["access_token"]
    assert claims(refreshed["access_token"])["oid"] == graph["oid"]
    assert claims(refreshed["access_token"])["appid"] == API
    counts = entra_emulator.request_counts()
    assert (counts["token"], counts["token:refresh_token"], counts["token:on_behalf_of"]) == (
        2,
        1,
        1,
    )
    assert graph_me(entra_emulator, refreshed["access_token"]).status_code == 200


def test_obo_without_capabilities_has_no_xms_cc_and_counts_over_http(
    entra_emulator: EntraEmulator,
) -> None:
    result = middle_tier(entra_emulator).acquire_token_on_behalf_of(
        users_api_token(entra_emulator), ["https://graph.microsoft.com/.default"]
    )
    token = claims(result["access_token"])
    assert "xms_cc" not in token
    assert token["scp"].split()[0] == "User.Read"  # the admin's consent, through .default
    counts = entra_emulator.http_session().get(
        f"{entra_emulator.urls.https_base}/_emulator/counts",
        headers={ADMIN_HEADER: entra_emulator.admin_key},
    )
    assert counts.json()["token:on_behalf_of"] == 1
    assert counts.json()["token:client_credentials"] == 0


def test_an_expired_assertion_is_refused(entra_emulator: EntraEmulator) -> None:
    assertion = users_api_token(entra_emulator)
    entra_emulator.shift_clock(LONGEST_LIFETIME + 301)  # past its exp and Entra's 5 min skew
    result = middle_tier(entra_emulator).acquire_token_on_behalf_of(assertion, ["User.Read"])
    assert_aadsts(result, 50013, "invalid_grant")
    assert "Assertion is not within its valid time range." in result["error_description"]


def test_an_assertion_for_another_api_is_refused(entra_emulator: EntraEmulator) -> None:
    legacy = sign_in(
        entra_emulator, confidential_client(entra_emulator, WEB), [f"{LEGACY_URI}/Legacy.Read"]
    )
    result = middle_tier(entra_emulator).acquire_token_on_behalf_of(
        legacy["access_token"], ["User.Read"]
    )
    assert_aadsts(result, 50013, "invalid_grant")
    description = result["error_description"]
    assert "Assertion audience does not match the Client app presenting the assertion." in (
        description
    )
    assert f"The audience in the assertion was '{LEGACY_URI}'" in description
    assert f"the expected audience is '{API}'" in description


def test_a_graph_token_is_no_assertion(entra_emulator: EntraEmulator, web_app) -> None:
    graph_token = sign_in(entra_emulator, web_app, ["User.Read"])["access_token"]
    assert "nonce" in jwt.get_unverified_header(graph_token)  # only Graph can verify it
    result = middle_tier(entra_emulator).acquire_token_on_behalf_of(graph_token, ["User.Read"])
    assert_aadsts(result, 50013, "invalid_grant")
    assert "Assertion failed signature validation." in result["error_description"]


def test_an_app_only_token_is_no_assertion(entra_emulator: EntraEmulator) -> None:
    daemon = confidential_client(entra_emulator, DAEMON)
    app_only = daemon.acquire_token_for_client([f"{API_URI}/.default"])["access_token"]
    assert claims(app_only)["aud"] == API  # the right audience, but no user in it
    result = middle_tier(entra_emulator).acquire_token_on_behalf_of(app_only, ["User.Read"])
    assert_aadsts(result, 50013, "invalid_grant")
    assert "not a user's access token" in result["error_description"]


def test_obo_needs_consent_for_the_downstream_api(entra_emulator: EntraEmulator) -> None:
    # The admin consented for the demo API to Graph's User.Read, not to the legacy API.
    result = middle_tier(entra_emulator).acquire_token_on_behalf_of(
        users_api_token(entra_emulator), [f"{LEGACY_URI}/Legacy.Read"]
    )
    assert_aadsts(result, 65001, "invalid_grant")
    assert result["suberror"] == "consent_required"
    assert f"'{API}' named 'entra-auth demo API'" in result["error_description"]


def test_the_grant_takes_requested_token_use_on_behalf_of(entra_emulator: EntraEmulator) -> None:
    form = {
        "grant_type": JWT_BEARER,
        "client_id": API,
        "client_secret": secret_of(entra_emulator, API),
        "assertion": users_api_token(entra_emulator),
        "scope": "User.Read",
    }
    http, url = entra_emulator.http_session(), f"{entra_emulator.authority}/oauth2/v2.0/token"
    missing = http.post(url, data=form).json()
    assert_aadsts(missing, 90014, "invalid_request")
    assert "'requested_token_use'" in missing["error_description"]
    wrong = http.post(url, data={**form, "requested_token_use": "exchange"}).json()
    assert_aadsts(wrong, 9002313, "invalid_request")
    assert "requested_token_use=on_behalf_of" in wrong["error_description"]
    right = http.post(url, data={**form, "requested_token_use": "on_behalf_of"})
    assert right.status_code == 200
    assert "refresh_token" not in right.json()  # no offline_access asked: no refresh token


# -- revoking a user's sessions (CAE) -------------------------------------------------------------
def test_revoked_sessions_make_graph_challenge_cae_clients_only(
    entra_emulator: EntraEmulator,
) -> None:
    browser = BrowserlessUser()
    cae = confidential_client(entra_emulator, WEB, client_capabilities=["cp1"])
    cae_token = sign_in(entra_emulator, cae, ["User.Read"], browser=browser)["access_token"]
    assert claims(cae_token)["xms_cc"] == ["cp1"]
    plain_token = sign_in(entra_emulator, confidential_client(entra_emulator, WEB), ["User.Read"])[
        "access_token"
    ]
    assert graph_me(entra_emulator, cae_token).status_code == 200

    moment = entra_emulator.revoke_sessions(ADELE)

    challenged = graph_me(entra_emulator, cae_token)
    assert challenged.status_code == 401
    # Graph's JSON to the byte: a space after the comma, the time as a string.
    nbf = '{"access_token":{"nbf":{"essential":true, "value":"' + str(moment) + '"}}}'
    challenge = base64.b64encode(nbf.encode()).decode()
    assert challenged.headers["WWW-Authenticate"] == (
        f'Bearer realm="", authorization_uri="{entra_emulator.urls.browser_base}/common/'
        f'oauth2/authorize", client_id="{GRAPH_APP_ID}", error="insufficient_claims", '
        f'claims="{challenge}"'
    )
    assert challenged.json()["error"]["code"] == "InvalidAuthenticationToken"
    assert challenged.json()["error"]["message"] == (
        "Continuous access evaluation resulted in claims challenge with result: "
        "InteractionRequired and code: TokenIssuedBeforeRevocationTimestamp"
    )
    # A client that did not declare CAE is not evaluated continuously: its token still works.
    assert graph_me(entra_emulator, plain_token).status_code == 200

    # The CAE client hands the challenge to MSAL: its refresh token is revoked too...
    claims_challenge = base64.b64decode(challenge).decode()
    (account,) = cae.get_accounts()
    silent = cae.acquire_token_silent_with_error(
        ["User.Read"], account, claims_challenge=claims_challenge
    )
    assert_aadsts(silent, 50173, "invalid_grant")
    # ...so it signs in again: the browser's session is over, the password is asked again...
    flow = cae.initiate_auth_code_flow(
        ["User.Read"], redirect_uri=REDIRECT, claims_challenge=claims_challenge
    )
    with pytest.raises(SignInRefused, match="asks who signs in"):
        browser.authorize(flow["auth_uri"])
    response = browser.authorize(flow["auth_uri"], user=ADELE, password="demo")
    fresh = cae.acquire_token_by_auth_code_flow(flow, response)
    # ...and the new token is from after the revocation, which Graph takes.
    token = claims(fresh["access_token"])
    assert token["nbf"] >= moment
    assert token["iat"] >= moment
    assert graph_me(entra_emulator, fresh["access_token"]).status_code == 200


def test_revoked_sessions_end_refresh_tokens_and_sso_over_the_control_api(
    entra_emulator: EntraEmulator, web_app
) -> None:
    browser = BrowserlessUser()
    first = sign_in(entra_emulator, web_app, ["User.Read"], browser=browser)
    http = entra_emulator.http_session()
    url = f"{entra_emulator.urls.https_base}/_emulator/users/{ADELE}/revoke-sessions"
    assert http.post(url).status_code == 403
    answer = http.post(url, headers={ADMIN_HEADER: entra_emulator.admin_key})
    assert answer.status_code == 200
    assert answer.json()["revoked_at"] >= claims(first["access_token"])["iat"] + 1

    refresh = web_app.acquire_token_by_refresh_token(first["refresh_token"], ["User.Read"])
    assert_aadsts(refresh, 50173, "invalid_grant")
    silent = web_app.initiate_auth_code_flow(["User.Read"], redirect_uri=REDIRECT, prompt="none")
    assert browser.authorize(silent["auth_uri"])["error"] == "login_required"  # no session
    flow = web_app.initiate_auth_code_flow(["User.Read"], redirect_uri=REDIRECT)
    with pytest.raises(SignInRefused, match="asks who signs in"):
        browser.authorize(flow["auth_uri"])


def test_revoked_sessions_end_obo_and_its_refresh_tokens(entra_emulator: EntraEmulator) -> None:
    assertion = users_api_token(entra_emulator)
    api = middle_tier(entra_emulator)
    exchanged = api.acquire_token_on_behalf_of(assertion, ["User.Read"])
    assert "access_token" in exchanged

    entra_emulator.revoke_sessions(ADELE)

    again = api.acquire_token_on_behalf_of(assertion, ["User.Read"])
    assert_aadsts(again, 50173, "invalid_grant")
    refresh = api.acquire_token_by_refresh_token(exchanged["refresh_token"], ["User.Read"])
    assert_aadsts(refresh, 50173, "invalid_grant")
    # A token from a sign-in after the revocation is exchanged again.
    after = api.acquire_token_on_behalf_of(users_api_token(entra_emulator), ["User.Read"])
    assert "access_token" in after, after.get("error_description")


def test_revoking_sessions_of_an_unknown_user_says_so(entra_emulator: EntraEmulator) -> None:
    answer = entra_emulator.http_session().post(
        f"{entra_emulator.urls.https_base}/_emulator/users/nobody@contoso.example/revoke-sessions",
        headers={ADMIN_HEADER: entra_emulator.admin_key},
    )
    assert answer.status_code == 400
    assert "nobody@contoso.example" in answer.json()["error_description"]


# -- authentication contexts (step-up) -------------------------------------------------------------
def test_a_scope_behind_an_auth_context_needs_a_step_up(
    entra_emulator: EntraEmulator, web_app
) -> None:
    browser = BrowserlessUser()
    sign_in(entra_emulator, web_app, [API_SCOPE], browser=browser)
    entra_emulator.grant_consent(ADELE, WEB, DATA_WRITE)
    (account,) = web_app.get_accounts()

    refused = web_app.acquire_token_silent_with_error([DATA_WRITE], account)

    assert_aadsts(refused, 50076, "interaction_required")
    assert refused["suberror"] == "basic_action"
    assert refused["claims"] == C1
    assert f"to access '{API}'" in refused["error_description"]

    # No silent step-up: prompt=none cannot satisfy the context.
    silent = web_app.initiate_auth_code_flow(
        [DATA_WRITE], redirect_uri=REDIRECT, prompt="none", claims_challenge=refused["claims"]
    )
    answer = browser.authorize(silent["auth_uri"])
    assert answer["error"] == "interaction_required"
    assert answer["error_description"].startswith("AADSTS50076: ")
    # The app signs in again with the claims: a step-up, so the page asks despite the session.
    flow = web_app.initiate_auth_code_flow(
        [DATA_WRITE], redirect_uri=REDIRECT, claims_challenge=refused["claims"]
    )
    assert json.loads(dict(parse_qsl(urlsplit(flow["auth_uri"]).query))["claims"]) == json.loads(C1)
    with pytest.raises(SignInRefused, match="asks who signs in"):
        browser.authorize(flow["auth_uri"])
    page = browser.session.get(flow["auth_uri"], timeout=30).text
    assert "This needs a stronger sign-in (authentication context c1)" in page
    stepped_up = web_app.acquire_token_by_auth_code_flow(
        flow, browser.authorize(flow["auth_uri"], user=ADELE)
    )
    token = claims(stepped_up["access_token"])
    assert token["acrs"] == ["c1"]
    assert token["scp"] == "Data.Write"

    # The session and its refresh tokens keep the step-up.
    expire_cached_access_tokens(web_app)
    refreshed = web_app.acquire_token_silent([DATA_WRITE], web_app.get_accounts()[0])
    assert refreshed["token_source"] == "identity_provider"
    assert claims(refreshed["access_token"])["acrs"] == ["c1"]
    again = web_app.initiate_auth_code_flow(
        [DATA_WRITE], redirect_uri=REDIRECT, claims_challenge=C1
    )
    assert "code" in browser.authorize(again["auth_uri"])  # satisfied: SSO again


def test_claims_asking_for_a_context_need_a_sign_in_that_gave_it(
    entra_emulator: EntraEmulator, web_app
) -> None:
    sign_in(entra_emulator, web_app, ["User.Read"])
    refused = web_app.acquire_token_silent_with_error(
        ["User.Read"], web_app.get_accounts()[0], claims_challenge=C1
    )
    assert_aadsts(refused, 50076, "interaction_required")
    assert refused["claims"] == C1
    assert f"to access '{GRAPH_APP_ID}'" in refused["error_description"]


def test_obo_carries_the_step_up_of_the_users_sign_in(entra_emulator: EntraEmulator) -> None:
    api = middle_tier(entra_emulator)
    plain = users_api_token(entra_emulator)
    assert "acrs" not in claims(plain)
    # The demo API checks acrs itself before a sensitive call and asks Entra for it.
    refused = api.acquire_token_on_behalf_of(plain, ["User.Read"], claims_challenge=C1)
    assert_aadsts(refused, 50076, "interaction_required")
    assert refused["claims"] == C1  # what the API hands back to its client, to sign in with

    stepped_up = users_api_token(entra_emulator, claims_challenge=refused["claims"])
    assert claims(stepped_up)["acrs"] == ["c1"]  # the API's own token proves the step-up
    result = api.acquire_token_on_behalf_of(stepped_up, ["User.Read"], claims_challenge=C1)
    assert "access_token" in result, result.get("error_description")
    assert claims(result["access_token"])["acrs"] == ["c1"]


# -- a directory with a downstream API behind an auth context, and a public client -------------
@pytest.fixture(scope="module")
def chain_server(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    """The demo directory, plus: the legacy API's ``Legacy.Write`` behind c1, which an admin
    consented to for the demo API; the demo API multi-tenant; a public client."""
    raw: dict[str, Any] = tomllib.loads(default_seed_path().read_text(encoding="utf-8"))
    apps = {app["client_id"]: app for app in raw["apps"]}
    apps[LEGACY]["scopes"].append(
        {
            "value": "Legacy.Write",
            "description": "Write legacy data",
            "authentication_context": "c1",
        }
    )
    apps[API]["admin_consented_scopes"] = ["User.Read", LEGACY_WRITE]
    apps[API]["multi_tenant"] = True
    raw["apps"].append(
        {
            "client_id": PUBLIC,
            "tenant": "contoso.example",
            "display_name": "a public client",
            "public_client": True,
            "redirect_uris": ["http://localhost"],
        }
    )
    state: Path = tmp_path_factory.mktemp("chain")
    with EntraEmulator(seed_from_dict(raw), state_dir=state, port=0, browser_port=0) as running:
        yield running


@pytest.fixture
def chain(chain_server: EntraEmulator) -> EntraEmulator:
    chain_server.reset()
    return chain_server


def test_obo_to_a_scope_behind_an_auth_context(chain: EntraEmulator) -> None:
    api = middle_tier(chain)
    refused = api.acquire_token_on_behalf_of(users_api_token(chain), [LEGACY_WRITE])
    assert_aadsts(refused, 50076, "interaction_required")
    assert refused["claims"] == C1

    stepped_up = users_api_token(chain, claims_challenge=refused["claims"])
    result = api.acquire_token_on_behalf_of(stepped_up, [LEGACY_WRITE])
    assert "access_token" in result, result.get("error_description")
    token = claims(result["access_token"])
    assert token["aud"] == LEGACY_URI  # the legacy API takes v1 tokens
    assert token["scp"] == "Legacy.Write"
    assert token["acrs"] == ["c1"]
    assert token["amr"] == ["pwd", "mfa"]
    assert token["appid"] == API


def test_obo_in_another_tenant_than_the_assertions_is_refused(chain: EntraEmulator) -> None:
    elsewhere = middle_tier(chain, authority=chain.authority_for(FABRIKAM))
    result = elsewhere.acquire_token_on_behalf_of(users_api_token(chain), ["User.Read"])
    assert_aadsts(result, 50013, "invalid_grant")
    assert f"issued in the tenant '{CONTOSO}'" in result["error_description"]


def test_a_public_client_cannot_use_obo(chain: EntraEmulator) -> None:
    answer = chain.http_session().post(
        f"{chain.authority}/oauth2/v2.0/token",
        data={
            "grant_type": JWT_BEARER,
            "client_id": PUBLIC,
            "requested_token_use": "on_behalf_of",
            "assertion": users_api_token(chain),
            "scope": "User.Read",
        },
    )
    assert answer.status_code == 401
    assert_aadsts(answer.json(), 7000218, "invalid_client")


def test_issue_token_carries_a_step_up_and_obo_takes_it(entra_emulator: EntraEmulator) -> None:
    assertion = entra_emulator.issue_token(
        client_id=WEB, resource=API_URI, user=ADELE, scopes=["access_as_user"], acrs=["c1"]
    )
    assert claims(assertion)["acrs"] == ["c1"]
    result = middle_tier(entra_emulator).acquire_token_on_behalf_of(
        assertion, ["User.Read"], claims_challenge=C1
    )
    assert claims(result["access_token"])["acrs"] == ["c1"]


def test_the_seed_names_auth_contexts_as_conditional_access_does() -> None:
    raw: dict[str, Any] = tomllib.loads(default_seed_path().read_text(encoding="utf-8"))
    (api,) = (app for app in raw["apps"] if app["client_id"] == API)
    data_write = next(s for s in api["scopes"] if s["value"] == "Data.Write")
    assert data_write["authentication_context"] == "c1"
    data_write["authentication_context"] = "high"
    with pytest.raises(EmulatorError, match=r"authentication_context: must be an authentication"):
        seed_from_dict(raw)


def test_a_cae_clients_graph_tokens_live_up_to_28_hours(entra_emulator: EntraEmulator) -> None:
    """Entra's long-lived tokens of CAE: a client that declared cp1 gets Graph tokens of 20 to
    28 hours (revocation reaches them at once); other clients, and other APIs, 60 to 90 minutes."""

    def lifetime(token: str) -> int:
        claims = jwt.decode(token, options={"verify_signature": False})
        return int(claims["exp"]) - int(claims["iat"])

    cae = entra_emulator.issue_token(
        client_id=WEB,
        resource=GRAPH_APP_ID,
        user=ADELE,
        scopes=["User.Read"],
        client_capabilities=["cp1"],
    )
    plain = entra_emulator.issue_token(
        client_id=WEB, resource=GRAPH_APP_ID, user=ADELE, scopes=["User.Read"]
    )
    api = entra_emulator.issue_token(
        client_id=WEB,
        resource=API_URI,
        user=ADELE,
        scopes=["access_as_user"],
        client_capabilities=["cp1"],
    )
    assert 20 * 3600 <= lifetime(cae) <= 28 * 3600
    assert 3600 <= lifetime(plain) <= 5400
    assert 3600 <= lifetime(api) <= 5400
