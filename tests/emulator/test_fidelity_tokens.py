"""Issue 16, the emulator's tokens and discovery as Entra's (each test names its item, fidNN).

- fid01: a tenant named by its verified domain is served like its GUID, and named by the GUID.
- fid03: apps with claims mapping get tokens signed by a key of their own, published only with
  ``?appid=<client id>``; kept in the state dir and rotated with the tenant's.
- fid08: optional claims (login_hint, idtyp, acct, xms_cc; groups and wids by
  groupMembershipClaims) only when the registration of the token's audience asks for them.
- fid09: Microsoft Graph's tokens do not verify with the published key (a hashed header nonce);
  the emulator's Graph accepts them, other tokens verify as usual.
- fid10: discovery advertises only what the emulator implements.
"""

from __future__ import annotations

import base64
import json
import os
import ssl
import stat
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import jwt
import msal
import pytest
import requests

from entra_auth.config import EntraConfig
from entra_auth.emulator import EntraEmulator
from entra_auth.emulator.minting import graph_signed_form
from entra_auth.emulator.seed import Seed, default_seed_path, seed_from_dict
from entra_auth.errors import EmulatorError, InvalidTokenError
from entra_auth.keys import JwksCache
from entra_auth.testing.certificates import make_client_certificate, thumbprint
from entra_auth.testing.driver import BrowserlessUser
from entra_auth.tokens import AccessTokenValidator

from ..helpers import (
    ADELE,
    API,
    API_URI,
    CONTOSO,
    DAEMON,
    GUEST,
    LEGACY,
    LEGACY_URI,
    REDIRECT,
    WEB,
    confidential_client,
    secret_of,
    sign_in,
)

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10 only
    import tomli as tomllib

GRAPH = "https://graph.microsoft.com"
GRAPH_APP = "00000003-0000-0000-c000-000000000000"
# An app of the fidelity seed that asks for no optional claim in its ID tokens.
PLAIN_WEB = "6a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d"
# An API that asks for every optional access-token claim, with groupMembershipClaims
# "SecurityGroup", and an app-specific signing key (Entra's, for claims mapping).
RICH_API = "7b2c3d4e-5f6a-4b7c-9d8e-0f1a2b3c4d5e"
RICH_API_URI = f"api://{RICH_API}"
# A web app with groupMembershipClaims "All", acct in its ID tokens and an app-specific key.
MAPPED_WEB = "8c3d4e5f-6a7b-4c8d-8e9f-1a2b3c4d5e6f"
ADELE_GROUPS = ["5f0c8b1e-2d3a-4c5b-9e6f-7a8b9c0d1e2f", "6a1d9c2f-3e4b-4d6c-8f7a-8b9c0d1e2f3a"]
GLOBAL_READER = "f2ef992c-3afb-46b9-b7cf-a126ee74c451"  # a directory role's template id


def fidelity_seed() -> Seed:
    """The demo directory plus apps that ask for optional claims and app-specific keys."""
    raw: dict[str, Any] = tomllib.loads(default_seed_path().read_text(encoding="utf-8"))
    secret = [{"value": "fid-secret", "expires": "2099-01-01T00:00:00Z"}]
    raw["apps"] += [
        {
            "client_id": PLAIN_WEB,
            "tenant": "contoso.example",
            "display_name": "web app asking for no optional claim",
            "redirect_uris": [REDIRECT],
            "secrets": secret,
        },
        {
            "client_id": RICH_API,
            "tenant": "contoso.example",
            "display_name": "API asking for every optional claim",
            "identifier_uris": [RICH_API_URI],
            "access_token_accepted_version": 2,
            "scopes": [{"value": "Rich.Read"}],
            "app_roles": [{"value": "Rich.Read.All", "allowed_member_types": ["Application"]}],
            "optional_claims": {
                "access_token": [
                    {"name": "acct"},
                    {"name": "login_hint"},
                    {"name": "idtyp", "additional_properties": ["include_user_token"]},
                    {"name": "xms_cc"},
                    {"name": "groups"},
                ]
            },
            "group_membership_claims": "SecurityGroup",
            "app_specific_signing_key": True,
        },
        {
            "client_id": MAPPED_WEB,
            "tenant": "contoso.example",
            "display_name": "web app with claims mapping",
            "redirect_uris": [REDIRECT],
            "secrets": secret,
            "optional_claims": {"id_token": [{"name": "acct"}]},
            "group_membership_claims": "All",
            "app_specific_signing_key": True,
        },
    ]
    adele = next(u for u in raw["users"] if u["upn"] == ADELE)
    adele["groups"] = ADELE_GROUPS
    adele["directory_roles"] = [GLOBAL_READER]
    return seed_from_dict(raw, origin="fidelity seed")


@pytest.fixture(scope="module")
def fid(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EntraEmulator]:
    state = tmp_path_factory.mktemp("fidelity")
    with EntraEmulator(fidelity_seed(), state_dir=state, port=0, browser_port=0) as emulator:
        yield emulator


@pytest.fixture
def fresh(fid: EntraEmulator) -> EntraEmulator:
    fid.reset()
    return fid


def claims_of(token: str) -> dict[str, Any]:
    return jwt.decode(token, options={"verify_signature": False})  # type: ignore[no-any-return]


def client(emulator: EntraEmulator, client_id: str, **kwargs: Any) -> msal.ClientApplication:
    secret = "fid-secret" if client_id in (PLAIN_WEB, MAPPED_WEB) else None
    return confidential_client(emulator, client_id, secret=secret, **kwargs)


def discovery(emulator: EntraEmulator, tenant: str, query: str = "") -> dict[str, Any]:
    url = f"{emulator.authority_for(tenant)}/v2.0/.well-known/openid-configuration{query}"
    response = emulator.http_session().get(url)
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]


def key_set(emulator: EntraEmulator, url: str) -> set[str]:
    response = emulator.http_session().get(url)
    assert response.status_code == 200, response.text
    return {key["kid"] for key in response.json()["keys"]}


def jwks_client(emulator: EntraEmulator, url: str) -> jwt.PyJWKClient:
    context = ssl.create_default_context(cafile=str(emulator.ca_path))
    return jwt.PyJWKClient(url, ssl_context=context, cache_jwk_set=False)


def validator(
    emulator: EntraEmulator, api: str, versions: tuple[str, ...] = ("2.0",)
) -> AccessTokenValidator:
    """The library's validator for an API of the seed (its client id and App ID URIs)."""
    config = EntraConfig(
        authority=emulator.authority_for(CONTOSO),
        client_id=api,
        api_audiences=(api, *emulator.app(api).identifier_uris),
        ca_bundle=str(emulator.ca_path),
        accepted_token_versions=versions,
    )
    return AccessTokenValidator(config, JwksCache(config))


# -- fid01: a tenant named by its verified domain ------------------------------------------------
def test_fid01_discovery_by_verified_domain_names_the_tenant_guid_throughout(
    entra_emulator: EntraEmulator,
) -> None:
    by_guid = discovery(entra_emulator, CONTOSO)
    for spelling in ("contoso.example", "Contoso.Example"):
        by_domain = discovery(entra_emulator, spelling)
        assert by_domain == by_guid  # the same document: issuer and every endpoint by GUID
    assert by_guid["issuer"] == f"{entra_emulator.urls.https_base}/{CONTOSO}/v2.0"
    for field in ("token_endpoint", "authorization_endpoint", "end_session_endpoint", "jwks_uri"):
        assert f"/{CONTOSO}/" in by_guid[field], field
        assert "contoso.example" not in by_guid[field], field
    v1 = entra_emulator.http_session().get(
        f"{entra_emulator.urls.https_base}/contoso.example/.well-known/openid-configuration"
    )
    assert v1.json()["issuer"] == f"https://sts.windows.net/{CONTOSO}/"


def test_fid01_every_endpoint_answers_at_the_domain_path(entra_emulator: EntraEmulator) -> None:
    https = entra_emulator.urls.https_base
    domain_keys = key_set(entra_emulator, f"{https}/contoso.example/discovery/v2.0/keys")
    assert domain_keys == key_set(entra_emulator, f"{https}/{CONTOSO}/discovery/v2.0/keys")
    # Token endpoint: MSAL on the domain authority (client credentials, then a sign-in whose
    # authorize request also goes to the domain path).
    by_domain = entra_emulator.authority_for("contoso.example")
    daemon = confidential_client(entra_emulator, DAEMON, authority=by_domain)
    app_only = daemon.acquire_token_for_client([f"{API_URI}/.default"])
    assert claims_of(app_only["access_token"])["tid"] == CONTOSO
    web = confidential_client(entra_emulator, WEB, authority=by_domain)
    flow = web.initiate_auth_code_flow(["User.Read"], redirect_uri=REDIRECT)
    auth_uri = flow["auth_uri"].replace(f"/{CONTOSO}/", "/contoso.example/")
    assert "/contoso.example/oauth2/v2.0/authorize" in auth_uri
    answer = BrowserlessUser().authorize(auth_uri, user=ADELE)
    result = web.acquire_token_by_auth_code_flow(flow, answer)
    assert result["id_token_claims"]["iss"] == entra_emulator.issuer()  # MSAL checked it too
    logout = f"{entra_emulator.urls.browser_base}/contoso.example/oauth2/v2.0/logout"
    assert BrowserlessUser().sign_out(logout).status in (200, 302)


# -- fid08: optional claims only when the registration asks for them ------------------------------
def test_fid08_id_token_optional_claims_only_when_the_app_asks(
    fresh: EntraEmulator,
) -> None:
    asks_login_hint = sign_in(fresh, client(fresh, WEB), ["User.Read"])["id_token_claims"]
    assert asks_login_hint["login_hint"]  # the demo web app declares it (idToken list)
    plain = sign_in(fresh, client(fresh, PLAIN_WEB), ["User.Read"])["id_token_claims"]
    for claim in ("login_hint", "idtyp", "acct", "groups", "wids", "xms_cc"):
        assert claim not in plain, claim
        if claim != "login_hint":
            assert claim not in asks_login_hint, claim
    mapped = sign_in(fresh, client(fresh, MAPPED_WEB), ["User.Read"])["id_token_claims"]
    assert mapped["acct"] == 0  # a member of the tenant
    assert mapped["groups"] == ADELE_GROUPS  # groupMembershipClaims "All": groups and wids
    assert mapped["wids"] == [GLOBAL_READER]
    assert "login_hint" not in mapped
    guest = sign_in(fresh, client(fresh, MAPPED_WEB), ["User.Read"], user=GUEST)
    assert guest["id_token_claims"]["acct"] == 1  # a guest
    assert "groups" not in guest["id_token_claims"]  # a user in no group gets no claim


def test_fid08_access_token_claims_follow_the_apis_registration(fresh: EntraEmulator) -> None:
    delegated = claims_of(
        fresh.issue_token(client_id=WEB, resource=RICH_API_URI, user=ADELE, scopes=["Rich.Read"])
    )
    assert delegated["idtyp"] == "user"  # idtyp with include_user_token
    assert delegated["acct"] == 0
    assert delegated["login_hint"]
    assert delegated["groups"] == ADELE_GROUPS  # "SecurityGroup": groups, not wids
    assert "wids" not in delegated
    assert "xms_cc" not in delegated  # the client declared no capability
    app_only = claims_of(fresh.issue_token(client_id=DAEMON, resource=RICH_API_URI, roles=[]))
    assert app_only["idtyp"] == "app"
    assert app_only["sub"] == app_only["oid"]
    for claim in ("acct", "login_hint", "groups", "scp"):
        assert claim not in app_only, claim
    # The demo API asks for idtyp without include_user_token: app-only tokens only.
    demo_user = claims_of(fresh.issue_token(client_id=WEB, resource=API_URI, user=ADELE))
    assert not {"idtyp", "acct", "login_hint", "groups", "wids", "xms_cc"} & set(demo_user)


def test_fid08_app_only_tokens_with_and_without_idtyp_are_app_only_for_the_library(
    entra_emulator: EntraEmulator,
) -> None:
    daemon = confidential_client(entra_emulator, DAEMON)
    with_idtyp = daemon.acquire_token_for_client([f"{API_URI}/.default"])["access_token"]
    without = daemon.acquire_token_for_client([f"{LEGACY_URI}/.default"])["access_token"]
    assert claims_of(with_idtyp)["idtyp"] == "app"  # the demo API asks for idtyp
    legacy = claims_of(without)
    assert "idtyp" not in legacy  # the legacy API does not: Entra leaves it out
    assert legacy["sub"] == legacy["oid"]  # an app-only token's sub is its oid
    assert "scp" not in legacy
    assert validator(entra_emulator, API).authenticate(with_idtyp).app_only
    assert validator(entra_emulator, LEGACY, ("1.0",)).authenticate(without).app_only


def test_fid08_xms_cc_only_for_a_client_that_declared_capabilities(fresh: EntraEmulator) -> None:
    # MSAL's client_capabilities sends {"access_token":{"xms_cc":{"values":["cp1"]}}} as the
    # `claims` of its token requests; the API must ask for xms_cc too.
    capable = client(fresh, DAEMON, client_capabilities=["cp1"])
    token = capable.acquire_token_for_client([f"{RICH_API_URI}/.default"])["access_token"]
    assert claims_of(token)["xms_cc"] == ["cp1"]
    plain = client(fresh, DAEMON).acquire_token_for_client([f"{RICH_API_URI}/.default"])
    assert "xms_cc" not in claims_of(plain["access_token"])
    demo_api = capable.acquire_token_for_client([f"{API_URI}/.default"])["access_token"]
    assert "xms_cc" not in claims_of(demo_api)  # the demo API does not ask for it
    unknown = client(fresh, DAEMON, client_capabilities=["foo"])
    other = unknown.acquire_token_for_client([f"{RICH_API_URI}/.default"])["access_token"]
    assert "xms_cc" not in claims_of(other)  # only known capabilities (cp1) are emitted
    # Graph asks for xms_cc, idtyp (users too) and acct, as real Graph tokens show.
    web = client(fresh, WEB, client_capabilities=["cp1"])
    graph = claims_of(sign_in(fresh, web, ["User.Read"])["access_token"])
    assert graph["xms_cc"] == ["cp1"]
    assert graph["idtyp"] == "user"
    assert graph["acct"] == 0


def test_fid08_seed_refuses_optional_claims_it_does_not_implement() -> None:
    base = {
        "tenants": [{"id": CONTOSO, "domain": "contoso.example"}],
        "apps": [{"client_id": API, "tenant": "contoso.example", "display_name": "api"}],
    }

    def refused(**app: Any) -> str:
        raw = json.loads(json.dumps(base))
        raw["apps"][0].update(app)
        with pytest.raises(EmulatorError) as caught:
            seed_from_dict(raw)
        return caught.value.message

    typo = refused(optional_claims={"access_token": [{"name": "idtype"}]})
    assert "apps[0].optional_claims.access_token[0].name: must be one of" in typo
    assert "'idtyp'" in typo
    assert "apps[0].optional_claims.id_token[0].name" in refused(
        optional_claims={"id_token": [{"name": "idtyp"}]}  # idtyp is an access-token claim
    )
    assert "additional_properties" in refused(
        optional_claims={"access_token": [{"name": "acct", "additional_properties": ["x"]}]}
    )
    assert "takes none" in refused(
        optional_claims={
            "access_token": [{"name": "acct", "additional_properties": ["include_user_token"]}]
        }
    )
    assert "apps[0].group_membership_claims: must be one of" in refused(
        group_membership_claims="ApplicationGroup"
    )
    assert "apps[0].optional_claims.idToken: unknown key" in refused(
        optional_claims={"idToken": [{"name": "login_hint"}]}
    )


# -- fid09: Graph's tokens ------------------------------------------------------------------------
def test_fid09_graph_tokens_do_not_verify_with_the_published_key(
    entra_emulator: EntraEmulator, web_app: msal.ClientApplication
) -> None:
    doc = discovery(entra_emulator, CONTOSO)
    keys = jwks_client(entra_emulator, doc["jwks_uri"])
    delegated = sign_in(entra_emulator, web_app, ["User.Read"])["access_token"]
    app_only = confidential_client(entra_emulator, DAEMON).acquire_token_for_client(
        [f"{GRAPH}/.default"]
    )["access_token"]
    for token in (delegated, app_only):
        header = jwt.get_unverified_header(token)
        assert header["nonce"]
        assert header["alg"] == "RS256"
        key = keys.get_signing_key_from_jwt(token)  # the kid is published...
        with pytest.raises(jwt.InvalidSignatureError):  # ...and does not verify it
            jwt.decode(token, key, algorithms=["RS256"], audience=GRAPH_APP)
        # The signature was made over the header with the nonce's SHA-256 in its place.
        verified = jwt.decode(
            graph_signed_form(token), key, algorithms=["RS256"], audience=GRAPH_APP
        )
        assert verified["aud"] == GRAPH_APP
    # A token for another API verifies with the same key set as it is.
    api_token = entra_emulator.issue_token(client_id=WEB, resource=API_URI, user=ADELE)
    assert "nonce" not in jwt.get_unverified_header(api_token)
    decoded = jwt.decode(
        api_token, keys.get_signing_key_from_jwt(api_token), algorithms=["RS256"], audience=API
    )
    assert decoded["aud"] == API


def test_fid09_the_emulators_graph_accepts_its_tokens_and_refuses_altered_ones(
    entra_emulator: EntraEmulator, web_app: msal.ClientApplication
) -> None:
    session = entra_emulator.http_session()
    me = f"{entra_emulator.graph_base}/v1.0/me"
    token = sign_in(entra_emulator, web_app, ["User.Read"])["access_token"]
    answer = session.get(me, headers={"Authorization": f"Bearer {token}"})
    assert answer.status_code == 200
    assert answer.json()["userPrincipalName"] == ADELE
    # Another nonce in the header: the hashed header no longer matches the signature.
    header_segment, payload, signature = token.split(".")
    header = json.loads(jwt.utils.base64url_decode(header_segment))
    header["nonce"] = header["nonce"][::-1]
    swapped = jwt.utils.base64url_encode(json.dumps(header, separators=(",", ":")).encode())
    altered = f"{swapped.decode()}.{payload}.{signature}"
    assert session.get(me, headers={"Authorization": f"Bearer {altered}"}).status_code == 401
    # And the library's API protection refuses a Graph token.
    with pytest.raises(InvalidTokenError):
        validator(entra_emulator, API).authenticate(token)


# -- fid03: app-specific signing keys -------------------------------------------------------------
def test_fid03_tokens_for_an_app_with_claims_mapping_use_its_own_key(fresh: EntraEmulator) -> None:
    https = fresh.urls.https_base
    plain_set = key_set(fresh, f"{https}/{CONTOSO}/discovery/v2.0/keys")
    mapped_key = fresh.app_signing_key(MAPPED_WEB)
    api_key = fresh.app_signing_key(RICH_API)
    assert not {mapped_key.kid, api_key.kid} & plain_set  # never in the plain key set
    # Discovery with ?appid= points at the key set with ?appid=, which lists the app's key.
    doc = discovery(fresh, CONTOSO, f"?appid={MAPPED_WEB}")
    assert doc["jwks_uri"] == f"{https}/{CONTOSO}/discovery/v2.0/keys?appid={MAPPED_WEB}"
    assert "?" not in discovery(fresh, CONTOSO)["jwks_uri"]
    assert mapped_key.kid in key_set(fresh, doc["jwks_uri"])
    assert api_key.kid not in key_set(fresh, doc["jwks_uri"])  # another app's key: not here
    by_domain = discovery(fresh, "contoso.example", f"?appid={MAPPED_WEB}")
    assert by_domain["jwks_uri"] == doc["jwks_uri"]

    # Its ID tokens: signed by its key, verified through ?appid=, not through the plain set.
    id_token = sign_in(fresh, client(fresh, MAPPED_WEB), ["User.Read"])["id_token"]
    assert jwt.get_unverified_header(id_token)["kid"] == mapped_key.kid
    own = jwks_client(fresh, doc["jwks_uri"]).get_signing_key_from_jwt(id_token)
    assert jwt.decode(id_token, own, algorithms=["RS256"], audience=MAPPED_WEB)["oid"]
    with pytest.raises(jwt.PyJWKClientError):
        jwks_client(fresh, f"{https}/{CONTOSO}/discovery/v2.0/keys").get_signing_key_from_jwt(
            id_token
        )
    # Access tokens for its API: the API's key; for other audiences: the tenant's.
    for_api = fresh.issue_token(client_id=WEB, resource=RICH_API_URI, user=ADELE)
    assert jwt.get_unverified_header(for_api)["kid"] == api_key.kid
    api_keys = jwks_client(fresh, f"{https}/{CONTOSO}/discovery/v2.0/keys?appid={RICH_API}")
    assert jwt.decode(
        for_api, api_keys.get_signing_key_from_jwt(for_api), algorithms=["RS256"], audience=RICH_API
    )
    other = fresh.issue_token(client_id=MAPPED_WEB, resource=API_URI, user=ADELE)
    assert jwt.get_unverified_header(other)["kid"] in plain_set
    graph = sign_in(fresh, client(fresh, MAPPED_WEB), ["User.Read"])["access_token"]
    assert jwt.get_unverified_header(graph)["kid"] in plain_set
    # The v1 key set and discovery take ?appid= the same way.
    v1 = fresh.http_session().get(
        f"{https}/{CONTOSO}/.well-known/openid-configuration?appid={MAPPED_WEB}"
    )
    assert v1.json()["jwks_uri"] == f"{https}/{CONTOSO}/discovery/keys?appid={MAPPED_WEB}"
    assert mapped_key.kid in key_set(fresh, v1.json()["jwks_uri"])


def test_fid03_app_keys_rotate_with_the_tenants_and_reset(fresh: EntraEmulator) -> None:
    url = f"{fresh.urls.https_base}/{CONTOSO}/discovery/v2.0/keys?appid={MAPPED_WEB}"
    first = fresh.app_signing_key(MAPPED_WEB).kid
    fresh.rotate_keys(keep_old=True)
    second = fresh.app_signing_key(MAPPED_WEB).kid
    assert second != first
    assert {first, second} <= key_set(fresh, url)
    id_token = sign_in(fresh, client(fresh, MAPPED_WEB), ["User.Read"])["id_token"]
    assert jwt.get_unverified_header(id_token)["kid"] == second
    fresh.rotate_keys(keep_old=False)
    third = fresh.app_signing_key(MAPPED_WEB).kid
    published = key_set(fresh, url)
    assert third in published
    assert not {first, second} & published
    fresh.reset()
    assert fresh.app_signing_key(MAPPED_WEB).kid == first


def test_fid03_app_keys_persist_across_restarts_as_private_files(tmp_path: Path) -> None:
    state = tmp_path / "state"
    with EntraEmulator(fidelity_seed(), state_dir=state, port=0, browser_port=0) as emulator:
        kid = emulator.app_signing_key(MAPPED_WEB).kid
        token = emulator.issue_token(client_id=WEB, resource=RICH_API_URI, user=ADELE)
    files = sorted(state.glob("app-signing-key-*.pem"))
    assert [f.name for f in files] == sorted(
        f"app-signing-key-{c}.pem" for c in (RICH_API, MAPPED_WEB)
    )
    if os.name == "posix":
        assert all(stat.S_IMODE(f.stat().st_mode) == 0o600 for f in files)
    with EntraEmulator(fidelity_seed(), state_dir=state, port=0, browser_port=0) as again:
        assert again.app_signing_key(MAPPED_WEB).kid == kid
        keys = jwks_client(
            again, f"{again.urls.https_base}/{CONTOSO}/discovery/v2.0/keys?appid={RICH_API}"
        )
        jwt.decode(
            token,
            keys.get_signing_key_from_jwt(token),
            algorithms=["RS256"],
            audience=RICH_API,
            options={"verify_exp": False},
        )
        with pytest.raises(EmulatorError, match="no app-specific signing key"):
            again.app_signing_key(WEB)


# -- fid10: discovery advertises only what is implemented -----------------------------------------
class Recorder:
    """The last answer a BrowserlessUser got: how the authorization response came back."""

    def __init__(self) -> None:
        self.session = requests.Session()
        self.last: requests.Response | None = None
        self.session.hooks["response"].append(self._keep)

    def _keep(self, response: requests.Response, *args: Any, **kwargs: Any) -> None:
        self.last = response


def test_fid10_no_advertised_value_that_is_not_implemented(entra_emulator: EntraEmulator) -> None:
    doc = discovery(entra_emulator, CONTOSO)
    # Entra's list, client assertions included (tests/emulator/test_client_assertions.py).
    assert doc["token_endpoint_auth_methods_supported"] == [
        "client_secret_post",
        "private_key_jwt",
        "client_secret_basic",
    ]
    assert None not in doc.values()  # no endpoint advertised as null (device code, kerberos)
    assert doc["response_types_supported"] == ["code"]
    v1 = entra_emulator.http_session().get(
        f"{entra_emulator.urls.https_base}/{CONTOSO}/.well-known/openid-configuration"
    )
    assert v1.json()["response_modes_supported"] == doc["response_modes_supported"]


def base64url_sha256(cert_pem: str) -> str:
    """A certificate's ``x5t#S256``: its SHA-256 thumbprint, base64url."""
    digest = bytes.fromhex(thumbprint(cert_pem, "sha256"))
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def test_fid10_every_token_endpoint_auth_method_works(entra_emulator: EntraEmulator) -> None:
    doc = discovery(entra_emulator, CONTOSO)
    session = entra_emulator.http_session()
    secret = secret_of(entra_emulator, DAEMON)
    form = {"grant_type": "client_credentials", "scope": f"{API_URI}/.default"}
    cert, key = make_client_certificate()
    entra_emulator.add_certificate(DAEMON, cert)
    now = int(entra_emulator.state.now())
    signed = jwt.encode(
        {"aud": doc["token_endpoint"], "iss": DAEMON, "sub": DAEMON, "jti": "fid10"}
        | {"nbf": now, "exp": now + 600},
        key,
        algorithm="PS256",
        headers={"x5t#S256": base64url_sha256(cert)},
    )
    assertion = {
        "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
        "client_assertion": signed,
    }
    ways = {
        "client_secret_post": {"data": {**form, "client_id": DAEMON, "client_secret": secret}},
        "private_key_jwt": {"data": {**form, "client_id": DAEMON, **assertion}},
        "client_secret_basic": {"data": form, "auth": (DAEMON, secret)},
    }
    assert set(doc["token_endpoint_auth_methods_supported"]) == set(ways)
    for method in doc["token_endpoint_auth_methods_supported"]:
        answer = session.post(doc["token_endpoint"], **ways[method])
        assert answer.status_code == 200, (method, answer.text)
        assert claims_of(answer.json()["access_token"])["azp"] == DAEMON


@pytest.mark.parametrize("mode", ["query", "fragment", "form_post"])
def test_fid10_every_response_mode_and_type_delivers_a_code(
    entra_emulator: EntraEmulator, web_app: msal.ClientApplication, mode: str
) -> None:
    doc = discovery(entra_emulator, CONTOSO)
    assert mode in doc["response_modes_supported"]
    for response_type in doc["response_types_supported"]:
        flow = web_app.initiate_auth_code_flow(
            ["User.Read"], redirect_uri=REDIRECT, response_mode=mode
        )
        assert f"response_type={response_type}" in flow["auth_uri"]
        recorder = Recorder()
        answer = BrowserlessUser(recorder.session).authorize(flow["auth_uri"], user=ADELE)
        last = recorder.last
        assert last is not None
        if mode == "form_post":
            assert last.status_code == 200
            assert 'method="post"' in last.text.lower()
            assert 'name="code"' in last.text
        else:
            where = urlsplit(last.headers["Location"])
            assert "code=" in (where.query if mode == "query" else where.fragment)
            assert "code=" not in (where.fragment if mode == "query" else where.query)
        assert "access_token" in web_app.acquire_token_by_auth_code_flow(flow, answer)


def test_fid10_every_scope_and_claim_advertised_is_issued(entra_emulator: EntraEmulator) -> None:
    doc = discovery(entra_emulator, CONTOSO)
    web = confidential_client(entra_emulator, WEB)
    # MSAL adds openid, profile and offline_access itself (and refuses them given): the rest.
    asked = [s for s in doc["scopes_supported"] if s not in ("openid", "profile", "offline_access")]
    flow = web.initiate_auth_code_flow(asked, redirect_uri=REDIRECT)
    assert set(flow["scope"]) >= set(doc["scopes_supported"])
    result = web.acquire_token_by_auth_code_flow(
        flow, BrowserlessUser().authorize(flow["auth_uri"], user=ADELE)
    )
    assert {"id_token", "refresh_token", "access_token"} <= set(result)  # openid, offline_access
    id_claims = claims_of(result["id_token"])
    missing = set(doc["claims_supported"]) - set(id_claims)
    assert not missing, f"advertised but never in an ID token: {missing}"
    header = jwt.get_unverified_header(result["id_token"])
    assert header["alg"] in doc["id_token_signing_alg_values_supported"]
    assert doc["subject_types_supported"] == ["pairwise"]
    assert id_claims["sub"] != id_claims["oid"]  # pairwise: not the directory-wide id
    userinfo = entra_emulator.http_session().get(
        doc["userinfo_endpoint"], headers={"Authorization": f"Bearer {result['access_token']}"}
    )
    assert userinfo.status_code == 200
    assert userinfo.json()["sub"]
