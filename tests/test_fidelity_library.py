"""Issue 16, "works against a real tenant": the library against Entra's documented behaviour.

Most tests run against ``StubEntra``, Entra's discovery documents and key sets served from
memory on ``login.microsoftonline.com`` (no network), shaped as Microsoft documents them; a few
run against the local Entra ID where it serves the same thing.

- fid01: an authority named by a verified domain takes the tenant's GUID from the discovery
  document; the instance alone plus ENTRA_TENANT_ID is an authority too.
- fid02: the signing key's own ``issuer`` scopes what it may sign (the common key set mixes
  issuers).
- fid03: app-specific signing keys (claims mapping), at the ``?appid=`` URLs.
- fid04: ``/consumers``, the fixed personal-accounts tenant.
- fid05: Microsoft Graph's tokens (header nonce, a signature that never verifies) are named as
  such, never "forged", and never accepted.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import sys
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import jwt
import pytest
import requests
from click.testing import CliRunner
from cryptography.hazmat.primitives.asymmetric import rsa
from flask import Flask, g
from requests.adapters import BaseAdapter

from entra_auth import diagnostics
from entra_auth.cli import main
from entra_auth.config import CONSUMERS_TENANT_ID, EntraConfig
from entra_auth.emulator import EntraEmulator
from entra_auth.emulator.seed import default_seed_path, seed_from_dict
from entra_auth.errors import (
    ConfigurationError,
    InvalidTokenError,
    KeySetUnavailableError,
    MissingSettingError,
)
from entra_auth.integrations.flask import ApiProtector
from entra_auth.keys import JwksCache, SigningKey, StaticKeys, parse_key_set
from entra_auth.tokens import GRAPH_AUDIENCES, AccessTokenValidator, IdTokenValidator

from .helpers import ADELE, API, API_URI, CONTOSO, FABRIKAM, WEB, emulator_config
from .security.minting import REMOVE, Mint

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10 only
    import tomli as tomllib

HOST = "https://login.microsoftonline.com"
DOMAIN = "contoso.onmicrosoft.com"
TEMPLATE_ISSUER = f"{HOST}/{{tenantid}}/v2.0"
GRAPH = "00000003-0000-0000-c000-000000000000"

TENANT_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
MSA_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
APP_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)


# -- Entra, from memory -------------------------------------------------------------------------
class StubEntra(BaseAdapter):
    """Serves JSON documents by exact URL (query included) and records every URL asked for;
    anything else is a 404, as Entra answers an unknown path."""

    def __init__(self) -> None:
        super().__init__()
        self.documents: dict[str, object] = {}
        self.requested: list[str] = []

    def serve(self, url: str, document: object) -> StubEntra:
        self.documents[url] = document
        return self

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:
        url = str(request.url)
        self.requested.append(url)
        response = requests.Response()
        found = url in self.documents
        response.status_code = 200 if found else 404
        response.raw = io.BytesIO(json.dumps(self.documents.get(url, {})).encode())
        response.headers["Content-Type"] = "application/json"
        response.url, response.request = url, request
        return response

    def close(self) -> None:
        pass

    def session(self) -> requests.Session:
        session = requests.Session()
        session.mount("https://", self)
        return session


def jwk(key: rsa.RSAPrivateKey, kid: str, issuer: str | None) -> dict[str, Any]:
    """A key as Entra publishes it, ``issuer`` member included (None: without one)."""
    member = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(key.public_key()))
    member.update({"kid": kid, "use": "sig", "x5t": kid})
    if issuer is not None:
        member["issuer"] = issuer
    return member


def discovery(path: str, issuer_tenant: str, *, jwks_query: str = "") -> dict[str, Any]:
    """A v2 discovery document as Entra serves it: for a domain-named tenant every endpoint and
    the issuer name the tenant's GUID (``path``)."""
    return {
        "issuer": f"{HOST}/{issuer_tenant}/v2.0",
        "jwks_uri": f"{HOST}/{path}/discovery/v2.0/keys{jwks_query}",
        "authorization_endpoint": f"{HOST}/{path}/oauth2/v2.0/authorize",
        "token_endpoint": f"{HOST}/{path}/oauth2/v2.0/token",
        "end_session_endpoint": f"{HOST}/{path}/oauth2/v2.0/logout",
        "msgraph_host": "graph.microsoft.com",
    }


def metadata_url(tenant: str, query: str = "") -> str:
    return f"{HOST}/{tenant}/v2.0/.well-known/openid-configuration{query}"


def keys_url(tenant: str, query: str = "") -> str:
    return f"{HOST}/{tenant}/discovery/v2.0/keys{query}"


def contoso_by_domain() -> StubEntra:
    """Contoso's tenant named by its domain; its key set as a tenant's (template issuer)."""
    return (
        StubEntra()
        .serve(metadata_url(DOMAIN), discovery(CONTOSO, CONTOSO))
        .serve(keys_url(CONTOSO), {"keys": [jwk(TENANT_KEY, "t1", TEMPLATE_ISSUER)]})
    )


def common_key_set() -> dict[str, Any]:
    """The shape of Entra's common key set: template keys and a personal-accounts key."""
    return {
        "keys": [
            jwk(TENANT_KEY, "t1", TEMPLATE_ISSUER),
            jwk(MSA_KEY, "msa", f"{HOST}/{CONSUMERS_TENANT_ID}/v2.0"),
        ]
    }


def claims(tid: str = CONTOSO, **changes: Any) -> dict[str, Any]:
    now = int(time.time())
    values: dict[str, Any] = {
        "aud": API,
        "iss": f"{HOST}/{tid}/v2.0",
        "tid": tid,
        "oid": "0a9c7b3e-4d2f-4e8a-b1c6-5f3d2e1a0b9c",
        "sub": "pairwise-sub",
        "azp": WEB,
        "scp": "access_as_user",
        "ver": "2.0",
        "iat": now,
        "nbf": now,
        "exp": now + 3600,
    }
    values.update(changes)
    return {k: v for k, v in values.items() if v is not REMOVE}


def id_claims(tid: str = CONTOSO, **changes: Any) -> dict[str, Any]:
    return claims(tid, aud=WEB, scp=REMOVE, azp=REMOVE, nonce="n-1", **changes)


def sign(payload: Mapping[str, Any], key: rsa.RSAPrivateKey = TENANT_KEY, kid: str = "t1") -> str:
    return jwt.encode(dict(payload), key, algorithm="RS256", headers={"kid": kid, "typ": "JWT"})


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def graph_token(aud: str = GRAPH, kid: str = "t1", tid: str = CONTOSO) -> str:
    """A token as Microsoft Graph gets it: the header carries a nonce, the signature was made
    over the header holding the nonce's SHA-256, so it does not verify with the published key."""
    nonce = b64(b"graph-nonce-" + kid.encode())
    hashed = b64(hashlib.sha256(nonce.encode()).digest())
    payload = claims(
        tid, aud=aud, azp=REMOVE, appid=WEB, ver="1.0", iss=f"https://sts.windows.net/{tid}/"
    )
    signed = jwt.encode(
        payload, TENANT_KEY, algorithm="RS256", headers={"kid": kid, "typ": "JWT", "nonce": hashed}
    )
    _, body, signature = signed.split(".")
    header = b64(json.dumps({"typ": "JWT", "nonce": nonce, "alg": "RS256", "kid": kid}).encode())
    return f"{header}.{body}.{signature}"


def reason_of(call: Any) -> str:
    with pytest.raises(InvalidTokenError) as refused:
        call()
    return refused.value.reason


def api_validator(stub: StubEntra, **config: Any) -> AccessTokenValidator:
    values: dict[str, Any] = {"authority": f"{HOST}/{DOMAIN}", "client_id": API}
    values.update(config)
    settings = EntraConfig(**values)
    return AccessTokenValidator(settings, JwksCache(settings, session=stub.session()))


def id_validator(stub: StubEntra, **config: Any) -> IdTokenValidator:
    values: dict[str, Any] = {"authority": f"{HOST}/{DOMAIN}", "client_id": WEB}
    values.update(config)
    settings = EntraConfig(**values)
    return IdTokenValidator(settings, JwksCache(settings, session=stub.session()))


def protected_api(validator: AccessTokenValidator) -> Flask:
    app = Flask(__name__)
    api = ApiProtector(app, validator=validator)
    app.add_url_rule(
        "/data", "data", api.require_token(scopes=["access_as_user"])(lambda: g.principal.tid)
    )
    return app


# -- fid01: a tenant named by domain, and the instance alone ------------------------------------
def test_fid01_domain_authority_takes_tenant_from_discovery() -> None:
    stub = contoso_by_domain()
    validator = api_validator(stub)  # starts without ENTRA_TENANT_ID: no refusal at start
    assert validator.validate(sign(claims()), scopes=["access_as_user"]).tid == CONTOSO
    # The same key, another tenant: the tenant accepted is the one discovery named.
    assert reason_of(lambda: validator.validate(sign(claims(FABRIKAM)))) == "wrong_tenant"
    assert stub.requested == [metadata_url(DOMAIN), keys_url(CONTOSO)]
    # Sign-in's ID tokens too (today every sign-in was refused as another tenant's).
    user = id_validator(contoso_by_domain()).validate(sign(id_claims()), nonce="n-1")
    assert user.key == (claims()["oid"], CONTOSO)
    assert (
        reason_of(
            lambda: id_validator(contoso_by_domain()).validate(
                sign(id_claims(FABRIKAM)), nonce=None
            )
        )
        == "wrong_tenant"
    )
    # Through Flask, as a protected API on a domain authority answers.
    app = protected_api(api_validator(contoso_by_domain()))
    answer = app.test_client().get("/data", headers={"Authorization": f"Bearer {sign(claims())}"})
    assert (answer.status_code, answer.get_data(as_text=True)) == (200, CONTOSO)


@pytest.mark.parametrize(
    ("issuer", "why"),
    [
        (TEMPLATE_ISSUER, "a template leaves the tenant to the token"),
        (f"{HOST}/{DOMAIN}/v2.0", "a domain is no tenant id"),
        (f"https://login.evil.example/{CONTOSO}/v2.0", "another host"),
        (f"{HOST}/{CONTOSO}/extra/v2.0", "a longer path"),
        (f"{HOST}/{CONTOSO.upper()}/v2.0", "not as Entra writes a GUID"),
    ],
)
def test_fid01_domain_discovery_must_name_one_tenant_guid_on_the_authority_host(
    issuer: str, why: str
) -> None:
    doc = {**discovery(CONTOSO, CONTOSO), "issuer": issuer}
    stub = contoso_by_domain().serve(metadata_url(DOMAIN), doc)
    with pytest.raises(KeySetUnavailableError, match="does not belong") as refused:
        api_validator(stub).validate(sign(claims()))
    assert refused.value.remedy, why


def test_fid01_domain_and_tenant_id_must_name_the_same_tenant() -> None:
    # ENTRA_TENANT_ID says Fabrikam, the domain is Contoso's: the document decides, refusing.
    validator = api_validator(contoso_by_domain(), tenant_id=FABRIKAM)
    with pytest.raises(KeySetUnavailableError, match="does not belong"):
        validator.validate(sign(claims(FABRIKAM)))
    # Both naming Contoso: accepted.
    assert api_validator(contoso_by_domain(), tenant_id=CONTOSO).validate(sign(claims())).tid


def test_fid01_domain_authority_with_keys_given_needs_the_tenant_id() -> None:
    keys = StaticKeys({"t1": TENANT_KEY.public_key()})
    by_domain = EntraConfig(authority=f"{HOST}/{DOMAIN}", client_id=API)
    for build in (AccessTokenValidator, IdTokenValidator):
        with pytest.raises(MissingSettingError) as caught:
            build(by_domain, keys)
        assert caught.value.missing == ("ENTRA_TENANT_ID",)
        assert "ENTRA_AUTHORITY" in caught.value.remedy  # or put the GUID in the authority
    with_id = EntraConfig(authority=f"{HOST}/{DOMAIN}", client_id=API, tenant_id=CONTOSO)
    assert AccessTokenValidator(with_id, keys).validate(sign(claims())).tid == CONTOSO


@pytest.mark.parametrize("instance", [HOST, f"{HOST}/"])
def test_fid01_instance_alone_plus_tenant_id_is_the_authority(instance: str) -> None:
    config = EntraConfig.from_env(
        {"ENTRA_AUTHORITY": instance, "ENTRA_TENANT_ID": CONTOSO, "ENTRA_CLIENT_ID": API}
    )
    assert config.authority == f"{HOST}/{CONTOSO}"
    assert config.tenant_id == CONTOSO
    assert config.metadata_url == metadata_url(CONTOSO)
    with pytest.raises(MissingSettingError) as caught:
        EntraConfig.from_env({"ENTRA_AUTHORITY": instance, "ENTRA_CLIENT_ID": API})
    assert caught.value.missing == ("ENTRA_TENANT_ID",)
    assert "ENTRA_AUTHORITY" in str(caught.value)
    # A domain belongs in the authority, and the tenant id must be the GUID: said so.
    with pytest.raises(ConfigurationError, match="verified domain goes in ENTRA_AUTHORITY"):
        EntraConfig.from_env({"ENTRA_AUTHORITY": instance, "ENTRA_TENANT_ID": DOMAIN})


def test_fid01_the_emulator_serves_a_tenant_by_its_domain(entra_emulator: EntraEmulator) -> None:
    mint = Mint(entra_emulator)
    config = emulator_config(
        entra_emulator, authority=entra_emulator.authority_for("contoso.example")
    )
    assert config.tenant_id is None
    assert config.tenant_by_domain
    validator = AccessTokenValidator(config, JwksCache(config))
    assert validator.validate(mint.token()).tid == CONTOSO
    assert validator.jwks.metadata.tenant_id == CONTOSO  # type: ignore[attr-defined]
    fabrikam = mint.token(tid=FABRIKAM, iss=entra_emulator.issuer(FABRIKAM))
    assert reason_of(lambda: validator.validate(fabrikam)) == "wrong_tenant"


def test_fid01_sign_in_and_api_on_a_domain_authority_end_to_end(
    entra_emulator: EntraEmulator, tmp_path: Path
) -> None:
    """The demo app (sign-in, its API call) with ENTRA_AUTHORITY naming the tenant by domain
    and no ENTRA_TENANT_ID: MSAL, the ID-token check and the API all take the tenant from
    discovery."""
    from examples.demo.app import create_app

    from .helpers import demo_config
    from .security.web import Web

    settings = demo_config(
        entra_emulator,
        ENTRA_AUTHORITY=entra_emulator.authority_for("contoso.example"),
        ENTRA_SESSION_DIR=str(tmp_path / "sessions"),
    )
    web = Web(entra_emulator, create_app(settings))
    response = web.sign_in()
    assert response.status_code == 302, response.get_data(as_text=True)
    assert web.who() == "Adele Vance"


# -- fid02: the signing key's own issuer --------------------------------------------------------
def multi_tenant(stub_keys: dict[str, Any], authority: str, **config: Any) -> AccessTokenValidator:
    stub = (
        StubEntra()
        .serve(metadata_url(authority), discovery(authority, "{tenantid}"))
        .serve(keys_url(authority), stub_keys)
    )
    return api_validator(stub, authority=f"{HOST}/{authority}", **config)


def test_fid02_key_published_for_another_issuer_refuses_the_token() -> None:
    """The attack: a token claiming tenant B, signed by a key the common key set publishes for
    a fixed other issuer (personal accounts'). Every other check passes."""
    validator = multi_tenant(common_key_set(), "organizations", allowed_tenants=(FABRIKAM,))
    assert validator.validate(sign(claims(FABRIKAM))).tid == FABRIKAM  # a template key: fine
    forged_tenant = sign(claims(FABRIKAM), MSA_KEY, "msa")
    assert reason_of(lambda: validator.validate(forged_tenant)) == "wrong_key_issuer"
    # v1 tokens (sts.windows.net): the key's issuer stands for the tenant's v2 issuer.
    v1 = multi_tenant(
        common_key_set(),
        "organizations",
        allowed_tenants=(FABRIKAM,),
        accepted_token_versions=("1.0", "2.0"),
    )
    v1_claims = claims(
        FABRIKAM, ver="1.0", iss=f"https://sts.windows.net/{FABRIKAM}/", azp=REMOVE, appid=WEB
    )
    assert v1.validate(sign(v1_claims)).tid == FABRIKAM
    assert reason_of(lambda: v1.validate(sign(v1_claims, MSA_KEY, "msa"))) == "wrong_key_issuer"
    # Sign-in: an ID token of tenant B signed with the personal-accounts key.
    stub = (
        StubEntra()
        .serve(metadata_url("organizations"), discovery("organizations", "{tenantid}"))
        .serve(keys_url("organizations"), common_key_set())
    )
    ids = id_validator(stub, authority=f"{HOST}/organizations", allowed_tenants=(FABRIKAM,))
    forged_id = sign(id_claims(FABRIKAM), MSA_KEY, "msa")
    assert reason_of(lambda: ids.validate(forged_id, nonce="n-1")) == "wrong_key_issuer"
    assert ids.validate(sign(id_claims(FABRIKAM)), nonce="n-1").tid == FABRIKAM
    # Through Flask: a 401 naming the reason.
    app = protected_api(
        multi_tenant(common_key_set(), "organizations", allowed_tenants=(FABRIKAM,))
    )
    answer = app.test_client().get("/data", headers={"Authorization": f"Bearer {forged_tenant}"})
    assert answer.status_code == 401
    assert answer.json is not None
    assert answer.json["reason"] == "wrong_key_issuer"


def test_fid02_keys_of_common_serve_each_their_issuer() -> None:
    """On /common both kinds of account sign in: each key signs for its own issuer."""
    validator = multi_tenant(
        common_key_set(), "common", allowed_tenants=(FABRIKAM, CONSUMERS_TENANT_ID)
    )
    personal = claims(CONSUMERS_TENANT_ID)
    assert validator.validate(sign(personal, MSA_KEY, "msa")).tid == CONSUMERS_TENANT_ID
    # A template key fits any tenant once substituted, personal accounts' included (Microsoft:
    # "may be used with any matching token issuer").
    assert validator.validate(sign(personal)).tid == CONSUMERS_TENANT_ID
    assert reason_of(lambda: validator.validate(sign(claims(FABRIKAM), MSA_KEY, "msa"))) == (
        "wrong_key_issuer"
    )


def test_fid02_the_key_issuer_rule_in_itself() -> None:
    public = TENANT_KEY.public_key()
    fabrikam = f"{HOST}/{FABRIKAM}/v2.0"
    assert SigningKey("k", public).signs_for("anything", FABRIKAM)  # no issuer: any
    template = SigningKey("k", public, TEMPLATE_ISSUER)
    assert template.signs_for(fabrikam, FABRIKAM)
    assert not template.signs_for(f"{HOST}/{CONTOSO}/v2.0", FABRIKAM)  # tid and iss differ
    assert not template.signs_for(f"https://sts.windows.net/{FABRIKAM}/", FABRIKAM)
    # Microsoft's pseudo-code substitutes the placeholder whatever its case.
    assert SigningKey("k", public, f"{HOST}/{{TenantId}}/v2.0").signs_for(fabrikam, FABRIKAM)
    fixed = SigningKey("k", public, f"{HOST}/{CONSUMERS_TENANT_ID}/v2.0")
    assert not fixed.signs_for(fabrikam, FABRIKAM)
    assert fixed.signs_for(f"{HOST}/{CONSUMERS_TENANT_ID}/v2.0", CONSUMERS_TENANT_ID)
    # A key whose issuer cannot be read is not trusted for every issuer: it is skipped.
    keys = parse_key_set(
        {"keys": [jwk(TENANT_KEY, "odd", None) | {"issuer": 7}, jwk(MSA_KEY, "msa", None)]}
    )
    assert set(keys) == {"msa"}
    assert parse_key_set(common_key_set())["t1"].issuer == TEMPLATE_ISSUER


def test_fid02_at_the_emulator_a_tenants_key_signs_only_for_it(
    entra_emulator: EntraEmulator,
) -> None:
    """The local Entra ID publishes a tenant's keys for that tenant alone: a Fabrikam token
    signed with Contoso's key is refused even where Fabrikam is an allowed tenant."""
    mint = Mint(entra_emulator)
    config = emulator_config(entra_emulator, allowed_tenants=(FABRIKAM,))
    validator = AccessTokenValidator(config, JwksCache(config))
    assert validator.validate(mint.token()).tid == CONTOSO
    assert validator.jwks.get(mint.kid).issuer == entra_emulator.issuer(CONTOSO)
    fabrikam = mint.token(tid=FABRIKAM, iss=entra_emulator.issuer(FABRIKAM))
    assert reason_of(lambda: validator.validate(fabrikam)) == "wrong_key_issuer"


# -- fid03: app-specific signing keys -----------------------------------------------------------
def app_keys_stub(jwks_query: str = f"?appid={API}") -> StubEntra:
    """Contoso with an app whose tokens are signed by its own key, published only at the URLs
    with ``?appid=``; the tenant's shared key set does not hold it."""
    return (
        StubEntra()
        .serve(metadata_url(CONTOSO), discovery(CONTOSO, CONTOSO))
        .serve(keys_url(CONTOSO), {"keys": [jwk(TENANT_KEY, "t1", TEMPLATE_ISSUER)]})
        .serve(
            metadata_url(CONTOSO, f"?appid={API}"),
            discovery(CONTOSO, CONTOSO, jwks_query=jwks_query),
        )
        .serve(
            keys_url(CONTOSO, f"?appid={API}"),
            {"keys": [jwk(APP_KEY, "app", TEMPLATE_ISSUER), jwk(TENANT_KEY, "t1", None)]},
        )
    )


def test_fid03_app_specific_keys_read_the_apps_discovery_and_key_set() -> None:
    app_token = sign(claims(), APP_KEY, "app")
    # Without the setting, the app's own key is unknown: what an app with claims mapping saw.
    shared = app_keys_stub()
    refused = api_validator(shared, authority=f"{HOST}/{CONTOSO}")
    assert reason_of(lambda: refused.validate(app_token)) == "unknown_key"
    stub = app_keys_stub()
    validator = api_validator(stub, authority=f"{HOST}/{CONTOSO}", app_specific_keys=True)
    assert validator.validate(app_token, scopes=["access_as_user"]).tid == CONTOSO
    assert stub.requested == [
        metadata_url(CONTOSO, f"?appid={API}"),
        keys_url(CONTOSO, f"?appid={API}"),
    ]
    # A key from another app's set, or a foreign key under the app's kid, is still refused.
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    assert reason_of(lambda: validator.validate(sign(claims(), other, "app"))) == "bad_signature"


@pytest.mark.parametrize(
    "jwks_query", ["", f"?appid={WEB}", f"?appid={API}&appid={WEB}"], ids=["none", "other", "two"]
)
def test_fid03_the_apps_discovery_must_point_at_the_apps_keys(jwks_query: str) -> None:
    stub = app_keys_stub(jwks_query)
    validator = api_validator(stub, authority=f"{HOST}/{CONTOSO}", app_specific_keys=True)
    with pytest.raises(KeySetUnavailableError, match=f"appid={API}"):
        validator.validate(sign(claims(), APP_KEY, "app"))


def test_fid03_the_setting() -> None:
    config = EntraConfig.from_env(
        {"ENTRA_TENANT_ID": CONTOSO, "ENTRA_CLIENT_ID": API, "ENTRA_APP_SPECIFIC_KEYS": "true"}
    )
    assert config.app_specific_keys is True
    assert config.metadata_url == metadata_url(CONTOSO, f"?appid={API}")
    assert EntraConfig(tenant_id=CONTOSO, client_id=API).metadata_url == metadata_url(CONTOSO)
    with pytest.raises(ConfigurationError, match="ENTRA_CLIENT_ID"):
        EntraConfig.from_env({"ENTRA_TENANT_ID": CONTOSO, "ENTRA_APP_SPECIFIC_KEYS": "yes"})
    with pytest.raises(ConfigurationError, match="ENTRA_APP_SPECIFIC_KEYS"):
        EntraConfig.from_env({"ENTRA_TENANT_ID": CONTOSO, "ENTRA_APP_SPECIFIC_KEYS": "sometimes"})


@pytest.fixture(scope="module")
def mapped_api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EntraEmulator]:
    """The local Entra ID with the demo API registered as an app with claims mapping: the
    tokens for it are signed by its own key, published only with ``?appid=``."""
    raw: dict[str, Any] = tomllib.loads(default_seed_path().read_text(encoding="utf-8"))
    for app in raw["apps"]:
        if app["client_id"] == API:
            app["app_specific_signing_key"] = True
    seed = seed_from_dict(raw, origin="an app-specific key for the demo API")
    state = tmp_path_factory.mktemp("app-keys")
    with EntraEmulator(seed, state_dir=state, port=0, browser_port=0) as emulator:
        yield emulator


def test_fid03_app_specific_keys_at_the_emulator(mapped_api: EntraEmulator) -> None:
    token = mapped_api.issue_token(
        client_id=WEB, resource=API_URI, user=ADELE, scopes=["access_as_user"]
    )
    assert jwt.get_unverified_header(token)["kid"] == mapped_api.app_signing_key(API).kid
    shared = emulator_config(mapped_api)
    refused = AccessTokenValidator(shared, JwksCache(shared))
    assert reason_of(lambda: refused.validate(token)) == "unknown_key"
    own = emulator_config(mapped_api, app_specific_keys=True)
    validator = AccessTokenValidator(own, JwksCache(own))
    assert validator.validate(token, scopes=["access_as_user"]).tid == CONTOSO
    assert validator.jwks.metadata.jwks_uri.endswith(f"?appid={API}")  # type: ignore[attr-defined]
    # By domain as well: the tenant from discovery, the keys from the app's own set.
    by_domain = emulator_config(
        mapped_api, authority=mapped_api.authority_for("contoso.example"), app_specific_keys=True
    )
    assert AccessTokenValidator(by_domain, JwksCache(by_domain)).validate(token).tid == CONTOSO


# -- fid04: /consumers, the personal-accounts tenant --------------------------------------------
def consumers_stub(issuer_tenant: str = CONSUMERS_TENANT_ID) -> StubEntra:
    return (
        StubEntra()
        .serve(metadata_url("consumers"), discovery("consumers", issuer_tenant))
        .serve(
            keys_url("consumers"),
            {"keys": [jwk(MSA_KEY, "msa", f"{HOST}/{CONSUMERS_TENANT_ID}/v2.0")]},
        )
    )


def test_fid04_consumers_is_the_fixed_personal_accounts_tenant() -> None:
    config = EntraConfig(authority=f"{HOST}/consumers", client_id=API)
    assert config.tenant_id == CONSUMERS_TENANT_ID
    assert not config.is_multi_tenant
    validator = api_validator(consumers_stub(), authority=f"{HOST}/consumers")
    personal = sign(claims(CONSUMERS_TENANT_ID), MSA_KEY, "msa")
    assert validator.validate(personal).tid == CONSUMERS_TENANT_ID
    # A work account's token, even signed by the personal-accounts key, is another tenant's.
    work = sign(claims(CONTOSO), MSA_KEY, "msa")
    assert reason_of(lambda: validator.validate(work)) == "wrong_tenant"
    ids = id_validator(consumers_stub(), authority=f"{HOST}/consumers")
    assert ids.validate(sign(id_claims(CONSUMERS_TENANT_ID), MSA_KEY, "msa"), nonce="n-1").tid
    # Keys given: the tenant is known without discovery.
    offline = AccessTokenValidator(config, StaticKeys({"msa": MSA_KEY.public_key()}))
    assert offline.validate(personal).tid == CONSUMERS_TENANT_ID


def test_fid04_consumers_discovery_must_name_the_fixed_tenant() -> None:
    for tenant in ("{tenantid}", CONTOSO):
        validator = api_validator(consumers_stub(tenant), authority=f"{HOST}/consumers")
        with pytest.raises(KeySetUnavailableError, match="does not belong"):
            validator.validate(sign(claims(CONSUMERS_TENANT_ID), MSA_KEY, "msa"))


def test_fid04_consumers_settings_that_cannot_work_are_refused_at_start() -> None:
    with pytest.raises(ConfigurationError, match="personal Microsoft accounts") as other:
        EntraConfig(authority=f"{HOST}/consumers", tenant_id=CONTOSO)
    assert "organization" in other.value.remedy
    with pytest.raises(ConfigurationError, match="v2 tokens only"):
        EntraConfig(authority=f"{HOST}/consumers", accepted_token_versions=("1.0",))
    assert EntraConfig(authority=f"{HOST}/consumers", tenant_id=CONSUMERS_TENANT_ID).tenant_id


# -- fid05: Microsoft Graph's tokens ------------------------------------------------------------
@pytest.mark.parametrize("aud", sorted(GRAPH_AUDIENCES))
def test_fid05_graph_token_is_named_not_called_forged(aud: str) -> None:
    stub = contoso_by_domain()
    validator = api_validator(stub, tenant_id=CONTOSO, accepted_token_versions=("1.0", "2.0"))
    token = graph_token(aud)
    with pytest.raises(InvalidTokenError) as refused:
        validator.validate(token)
    assert refused.value.reason == "graph_token"
    assert "Microsoft Graph" in refused.value.message
    assert "api://" in refused.value.remedy
    assert stub.requested == []  # named from the header and aud: no key was fetched for it
    ids = id_validator(contoso_by_domain(), tenant_id=CONTOSO)
    assert reason_of(lambda: ids.validate(token, nonce=None)) == "graph_token"


def test_fid05_graph_token_is_refused_through_flask_and_never_accepted() -> None:
    app = protected_api(api_validator(contoso_by_domain()))
    for kid in ("t1", "a-key-nobody-publishes"):
        token = graph_token(kid=kid)
        answer = app.test_client().get("/data", headers={"Authorization": f"Bearer {token}"})
        assert answer.status_code == 401
        assert answer.json is not None
        assert answer.json["reason"] == "graph_token"
        assert 'error="invalid_token"' in answer.headers["WWW-Authenticate"]
        assert token.split(".")[1] not in answer.get_data(as_text=True)


def test_fid05_a_header_nonce_alone_proves_nothing() -> None:
    """Only a Graph audience is named from the unverified token; any other token with a header
    nonce goes to the signature check, which refuses a bad signature as such."""
    validator = api_validator(contoso_by_domain())
    with_nonce = graph_token(aud=API)
    assert reason_of(lambda: validator.validate(with_nonce)) == "bad_signature"
    header, _, signature = with_nonce.split(".")
    assert reason_of(lambda: validator.validate(f"{header}.not-json.{signature}")) in (
        "malformed",
        "bad_signature",
    )
    # Headers with a nonce are fresh each time: not remembered by the header memo.
    for i in range(3):
        with pytest.raises(InvalidTokenError):
            validator.validate(graph_token(kid=f"k{i}"))
    assert all("nonce" not in header for header in validator._headers.values())


def test_fid05_the_emulators_graph_token_is_named(entra_emulator: EntraEmulator) -> None:
    """The local Entra ID signs Graph's tokens as Entra does (over a hashed header nonce)."""
    token = entra_emulator.issue_token(
        client_id=WEB, resource="https://graph.microsoft.com", user=ADELE, scopes=["User.Read"]
    )
    assert "nonce" in jwt.get_unverified_header(token)
    validator = AccessTokenValidator(emulator_config(entra_emulator))
    assert reason_of(lambda: validator.validate(token)) == "graph_token"


def test_fid05_decode_verify_says_graph_token_too(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # no ./.env read
    for aud in GRAPH_AUDIENCES:  # the kind line names Graph wherever the verdict does
        assert diagnostics.decode_unverified(graph_token(aud)).kind == (
            "access token for Microsoft Graph"
        )
    token = graph_token("https://graph.microsoft.com/")
    config = EntraConfig(tenant_id=CONTOSO, client_id=API)
    verdict = diagnostics.verify(token, config)
    assert (verdict.ok, verdict.reason) == (False, "graph_token")
    env = {
        "ENTRA_TENANT_ID": CONTOSO,
        "ENTRA_CLIENT_ID": API,
        "ENTRA_AUTHORITY": None,
        "ENTRA_API_AUDIENCE": None,
        "ENTRA_CA_BUNDLE": None,
    }
    result = CliRunner().invoke(main, ["decode", token, "--verify"], env=env)
    assert result.exit_code == 1, result.output
    assert "REFUSED" in result.output
    assert "Microsoft Graph" in result.output
    assert "graph_token" in result.output
    assert "forged" not in result.output
    assert "bad_signature" not in result.output
    as_json = CliRunner().invoke(main, ["decode", token, "--verify", "--json"], env=env)
    assert json.loads(as_json.output)["verification"]["reason"] == "graph_token"
