"""What the emulator publishes: discovery, JWKS, and tokens that verify with the JWKS alone."""

from __future__ import annotations

import base64
import hashlib
import ssl

import jwt
import pytest
from cryptography import x509

from entra_auth.emulator import EntraEmulator
from entra_auth.emulator.minting import graph_signed_form

from ..helpers import (
    ADELE,
    API,
    API_SCOPE,
    API_URI,
    CONTOSO,
    DAEMON,
    GUEST,
    LEGACY_URI,
    MEGAN,
    WEB,
    confidential_client,
    sign_in,
)

# Every discovery field entra-facts.md lists as used by clients.
DISCOVERY_FIELDS = {
    "issuer",
    "authorization_endpoint",
    "token_endpoint",
    "end_session_endpoint",
    "jwks_uri",
    "userinfo_endpoint",
    "response_modes_supported",
    "id_token_signing_alg_values_supported",
    "subject_types_supported",
    "token_endpoint_auth_methods_supported",
    "scopes_supported",
    "claims_supported",
    "frontchannel_logout_supported",
    "http_logout_supported",
    "cloud_instance_name",
    "msgraph_host",
}


def discovery(emulator: EntraEmulator, tenant: str) -> dict[str, object]:
    url = f"{emulator.authority_for(tenant)}/v2.0/.well-known/openid-configuration"
    response = emulator.http_session().get(url)
    assert response.status_code == 200
    return response.json()  # type: ignore[no-any-return]


def test_discovery_has_every_field(entra_emulator: EntraEmulator) -> None:
    doc = discovery(entra_emulator, CONTOSO)
    assert set(doc) >= DISCOVERY_FIELDS
    assert doc["issuer"] == f"{entra_emulator.urls.https_base}/{CONTOSO}/v2.0"
    assert set(doc["response_modes_supported"]) == {"query", "fragment", "form_post"}
    assert doc["id_token_signing_alg_values_supported"] == ["RS256"]
    assert doc["subject_types_supported"] == ["pairwise"]
    # Entra's list: secrets (form or Basic) and client assertions (tests/emulator/
    # test_client_assertions.py).
    assert set(doc["token_endpoint_auth_methods_supported"]) == {
        "client_secret_post",
        "private_key_jwt",
        "client_secret_basic",
    }
    assert str(doc["token_endpoint"]).startswith("https://")
    assert str(doc["jwks_uri"]).startswith(f"{entra_emulator.urls.https_base}/")
    assert str(doc["authorization_endpoint"]).startswith(entra_emulator.urls.browser_base)


def test_discovery_by_domain_and_for_common(entra_emulator: EntraEmulator) -> None:
    assert discovery(entra_emulator, "contoso.example")["issuer"] == entra_emulator.issuer()
    common = discovery(entra_emulator, "common")
    assert common["issuer"] == f"{entra_emulator.urls.https_base}/{{tenantid}}/v2.0"


def test_jwks_keys_have_entra_fields_and_consistent_certificates(
    entra_emulator: EntraEmulator,
) -> None:
    jwks = entra_emulator.http_session().get(str(discovery(entra_emulator, CONTOSO)["jwks_uri"]))
    (key,) = jwks.json()["keys"]
    assert {"kty", "use", "kid", "x5t", "n", "e", "x5c", "issuer"} <= set(key)
    assert key["kty"] == "RSA"
    assert key["use"] == "sig"
    assert key["issuer"] == entra_emulator.issuer()
    der = base64.b64decode(key["x5c"][0])
    cert = x509.load_der_x509_certificate(der)
    thumb = base64.urlsafe_b64encode(hashlib.sha1(der).digest()).rstrip(b"=").decode()  # noqa: S324
    assert key["x5t"] == key["kid"] == thumb
    numbers = cert.public_key().public_numbers()  # type: ignore[union-attr]
    assert jwt.PyJWK(key).key.public_numbers() == numbers
    assert numbers.n.bit_length() == 2048


def _all_token_kinds(emulator: EntraEmulator) -> dict[str, str]:
    web = confidential_client(emulator, WEB)
    emulator.grant_consent(ADELE, WEB, API_SCOPE)
    signed_in = sign_in(emulator, web, ["User.Read"])
    account = web.get_accounts()[0]
    api = web.acquire_token_silent([API_SCOPE], account)
    daemon = confidential_client(emulator, DAEMON)
    guest_web = confidential_client(emulator, WEB)
    guest = sign_in(emulator, guest_web, ["User.Read"], user=GUEST)
    return {
        "id_token": signed_in["id_token"],
        "graph_delegated": signed_in["access_token"],
        "api_v2_delegated": api["access_token"],
        "api_v2_app_only": daemon.acquire_token_for_client([f"{API_URI}/.default"])["access_token"],
        "api_v1_app_only": daemon.acquire_token_for_client([f"{LEGACY_URI}/.default"])[
            "access_token"
        ],
        "graph_app_only": daemon.acquire_token_for_client(["https://graph.microsoft.com/.default"])[
            "access_token"
        ],
        "guest_id_token": guest["id_token"],
        "issued_directly": emulator.issue_token(client_id=WEB, resource=API_URI, user=ADELE),
    }


def test_every_issued_token_verifies_with_pyjwt_using_only_the_jwks(
    entra_emulator: EntraEmulator,
) -> None:
    # Graph's tokens too, once put in the form their signature covers (the header nonce
    # hashed): as sent, they verify for Graph alone (test_fidelity_tokens, fid09).
    doc = discovery(entra_emulator, CONTOSO)
    ssl_context = ssl.create_default_context(cafile=str(entra_emulator.ca_path))
    jwks_client = jwt.PyJWKClient(str(doc["jwks_uri"]), ssl_context=ssl_context)
    expectations = {
        "id_token": (WEB, doc["issuer"]),
        "graph_delegated": (
            "00000003-0000-0000-c000-000000000000",
            f"https://sts.windows.net/{CONTOSO}/",
        ),
        "api_v2_delegated": (API, doc["issuer"]),
        "api_v2_app_only": (API, doc["issuer"]),
        "api_v1_app_only": (LEGACY_URI, f"https://sts.windows.net/{CONTOSO}/"),
        "graph_app_only": (
            "00000003-0000-0000-c000-000000000000",
            f"https://sts.windows.net/{CONTOSO}/",
        ),
        "guest_id_token": (WEB, doc["issuer"]),
        "issued_directly": (API, doc["issuer"]),
    }
    tokens = _all_token_kinds(entra_emulator)
    for kind, token in tokens.items():
        audience, issuer = expectations[kind]
        key = jwks_client.get_signing_key_from_jwt(token)
        if kind.startswith("graph"):
            with pytest.raises(jwt.InvalidSignatureError):
                jwt.decode(token, key, algorithms=["RS256"], audience=audience)
            token = graph_signed_form(token)
        decoded = jwt.decode(
            token,
            key,
            algorithms=["RS256"],
            audience=audience,
            issuer=issuer,
            options={"require": ["exp", "iat", "nbf", "iss", "aud", "tid", "oid", "sub"]},
        )
        assert decoded["tid"] == CONTOSO, kind
        lifetime = decoded["exp"] - decoded["iat"]
        if kind.endswith("id_token"):
            assert lifetime == 3600, kind
        else:
            assert 3600 <= lifetime <= 5400, kind  # Entra's randomised 60-90 minutes


def test_access_token_shapes_v1_and_v2(entra_emulator: EntraEmulator) -> None:
    v2 = jwt.decode(
        entra_emulator.issue_token(
            client_id=WEB, resource=API_URI, user=ADELE, scopes=["access_as_user"]
        ),
        options={"verify_signature": False},
    )
    assert v2["ver"] == "2.0"
    assert v2["azp"] == WEB
    assert v2["scp"] == "access_as_user"
    assert v2["roles"] == ["Data.Read.All"]  # Adele's assignment on the API
    v1 = jwt.decode(
        entra_emulator.issue_token(
            client_id=WEB, resource=LEGACY_URI, user=ADELE, scopes=["Legacy.Read"]
        ),
        options={"verify_signature": False},
    )
    assert v1["ver"] == "1.0"
    assert v1["appid"] == WEB
    assert v1["upn"] == ADELE
    assert v1["aud"] == LEGACY_URI
    assert jwt.get_unverified_header(
        entra_emulator.issue_token(client_id=WEB, resource=LEGACY_URI, user=ADELE)
    )["x5t"]


def test_graph_tokens_carry_a_header_nonce(entra_emulator: EntraEmulator) -> None:
    token = entra_emulator.issue_token(
        client_id=WEB, resource="https://graph.microsoft.com", user=ADELE
    )
    assert "nonce" in jwt.get_unverified_header(token)


@pytest.mark.parametrize("lifetime", [(60, 60), (120, 180)])
def test_lifetimes_are_configurable(
    entra_emulator: EntraEmulator, lifetime: tuple[int, int]
) -> None:
    entra_emulator.settings.access_token_lifetime = lifetime
    token = jwt.decode(
        entra_emulator.issue_token(client_id=WEB, resource=API_URI, user=ADELE),
        options={"verify_signature": False},
    )
    assert lifetime[0] <= token["exp"] - token["iat"] <= lifetime[1]


def test_id_token_roles_are_the_users_roles_of_the_signing_in_app(
    entra_emulator: EntraEmulator, web_app
) -> None:
    # Entra puts in an ID token the app roles the user holds on the app signing in (the
    # default seed's web app defines Admin, assigned to Adele and not to Megan); roles of other
    # apps (Adele's Data.Read.All on the API) go only into that API's access tokens.
    adele = sign_in(entra_emulator, web_app, [API_SCOPE])
    assert adele["id_token_claims"]["roles"] == ["Admin"]
    access = jwt.decode(adele["access_token"], options={"verify_signature": False})
    assert access["aud"] == API
    assert access["roles"] == ["Data.Read.All"]
    megan = sign_in(entra_emulator, web_app, ["User.Read"], user=MEGAN)
    assert "roles" not in megan["id_token_claims"]
