"""Client authentication by assertion (private_key_jwt), as Entra checks it.

Certificates: the real MSAL signs (RS256 with ``x5t``, PS256 with ``x5t#S256``, or an assertion
of the app's own through ``client_assertion``); each refusal is an assertion made by hand with
PyJWT. Federated credentials: a token of the emulator's stand-in issuer, read from a file as a
Kubernetes pod reads its service-account token, then each refusal. Deterministic: the
emulator's clock is shifted, nothing sleeps.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import uuid
from pathlib import Path
from typing import Any

import jwt
import msal
import pytest
import requests
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization

from entra_auth.emulator import EntraEmulator
from entra_auth.emulator.admin import ADMIN_HEADER
from entra_auth.emulator.seed import load_seed, seed_from_dict
from entra_auth.errors import EmulatorError
from entra_auth.testing.certificates import (
    make_certificate_authority,
    make_client_certificate,
    thumbprint,
)

from ..helpers import API_URI, CONTOSO, DAEMON, WEB, secret_of

API_SCOPE = f"{API_URI}/.default"
GRAPH_SCOPE = "https://graph.microsoft.com/.default"
POD = "system:serviceaccount:demo:daemon"  # the default seed's federated credential
Pair = tuple[str, str]


@pytest.fixture(scope="module")
def pair() -> Pair:
    """A client certificate and its key, made once for the module."""
    return make_client_certificate("CN=entra-auth demo daemon")


@pytest.fixture
def registered(entra_emulator: EntraEmulator, pair: Pair) -> Pair:
    """``pair`` registered for the daemon (until the next test's reset)."""
    entra_emulator.add_certificate(DAEMON, pair[0])
    return pair


# -- helpers --------------------------------------------------------------------------------------
def token_endpoint(emulator: EntraEmulator, tenant: str = CONTOSO) -> str:
    return f"{emulator.authority_for(tenant)}/oauth2/v2.0/token"


def daemon(
    emulator: EntraEmulator,
    credential: dict[str, Any] | str,
    sent: list[dict[str, str]] | None = None,
) -> msal.ConfidentialClientApplication:
    """The real MSAL as the daemon, with ``credential`` as its ``client_credential``; the form
    of each request it sends goes to ``sent``."""
    session = emulator.http_session()
    if sent is not None:
        session.hooks["response"].append(lambda r, **_: sent.append(form_of(r.request)))
    return msal.ConfidentialClientApplication(
        DAEMON,
        client_credential=credential,
        authority=emulator.authority,
        instance_discovery=False,
        http_client=session,
    )


def claims_of(token: str) -> dict[str, Any]:
    return jwt.decode(token, options={"verify_signature": False})  # type: ignore[no-any-return]


def assertion(
    emulator: EntraEmulator,
    key_pem: str,
    cert_pem: str | None = None,
    *,
    alg: str = "PS256",
    header: dict[str, Any] | None = None,
    **claims: Any,
) -> str:
    """The daemon's own assertion, as Microsoft Learn's certificate-credentials page shows it;
    ``x5t#S256`` (PS256) or ``x5t`` (RS256) names ``cert_pem``; ``claims`` override (None
    removes one)."""
    now = int(emulator.state.now())
    payload: dict[str, Any] = {
        "aud": token_endpoint(emulator),
        "iss": DAEMON,
        "sub": DAEMON,
        "jti": str(uuid.uuid4()),
        "nbf": now,
        "iat": now,
        "exp": now + 600,
    }
    payload.update(claims)
    payload = {k: v for k, v in payload.items() if v is not None}
    headers: dict[str, Any] = {}
    if cert_pem is not None:
        cert = x509.load_pem_x509_certificate(cert_pem.encode())
        if alg == "PS256":
            headers["x5t#S256"] = b64url(cert.fingerprint(hashes.SHA256()))
        else:
            headers["x5t"] = b64url(cert.fingerprint(hashes.SHA1()))  # noqa: S303 - x5t
    headers.update(header or {})
    key = serialization.load_pem_private_key(key_pem.encode(), password=None)
    return jwt.encode(payload, key, algorithm=alg, headers=headers)  # type: ignore[arg-type]


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def post(emulator: EntraEmulator, client_assertion: str, **form: str) -> requests.Response:
    """A client-credentials request of the daemon with ``client_assertion``, by hand."""
    data = {
        "grant_type": "client_credentials",
        "scope": API_SCOPE,
        "client_id": DAEMON,
        "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
        "client_assertion": client_assertion,
        **form,
    }
    return emulator.http_session().post(token_endpoint(emulator), data=data)


def refused(response: requests.Response, code: int, words: str = "") -> str:
    """The ``error_description`` of an Entra refusal with ``code`` (and ``words`` in it)."""
    body = response.json()
    assert body["error_codes"] == [code], body
    expected = 401 if body["error"] == "invalid_client" else 400
    assert response.status_code == expected, response.text
    description: str = body["error_description"]
    assert description.startswith(f"AADSTS{code}: ")
    assert words in description, description
    return description


def granted(response: requests.Response) -> dict[str, Any]:
    assert response.status_code == 200, response.text
    return claims_of(response.json()["access_token"])


# -- certificates with the real MSAL ------------------------------------------------------------
def test_msal_with_a_sha1_thumbprint_signs_rs256_with_x5t(
    entra_emulator: EntraEmulator, registered: Pair
) -> None:
    cert, key = registered
    sent: list[dict[str, str]] = []
    app = daemon(entra_emulator, {"private_key": key, "thumbprint": thumbprint(cert)}, sent)
    result = app.acquire_token_for_client([API_SCOPE])
    assert "access_token" in result, result
    token = claims_of(result["access_token"])
    assert (token["azp"], token["roles"]) == (DAEMON, ["Data.Read.All"])
    header = jwt.get_unverified_header(sent[-1]["client_assertion"])
    assert (header["alg"], "x5t" in header, "x5t#S256" in header) == ("RS256", True, False)


def test_msal_with_the_public_certificate_signs_ps256_with_x5t_s256(
    entra_emulator: EntraEmulator, registered: Pair
) -> None:
    cert, key = registered
    sent: list[dict[str, str]] = []
    app = daemon(entra_emulator, {"private_key": key, "public_certificate": cert}, sent)
    result = app.acquire_token_for_client([API_SCOPE])
    assert "access_token" in result, result
    header = jwt.get_unverified_header(sent[-1]["client_assertion"])
    assert header["alg"] == "PS256"
    # MSAL keeps base64's padding; Entra takes it as well.
    assert header["x5t#S256"].rstrip("=") == b64url(bytes.fromhex(thumbprint(cert, "sha256")))
    # MSAL reuses its assertion for 9 minutes, for every resource: Entra takes it again.
    graph = app.acquire_token_for_client([GRAPH_SCOPE])
    assert "access_token" in graph, graph
    assertions = [form["client_assertion"] for form in sent if "client_assertion" in form]
    assert len(assertions) == 2
    assert assertions[0] == assertions[1]


def test_msal_with_a_client_assertion_callable(
    entra_emulator: EntraEmulator, registered: Pair
) -> None:
    cert, key = registered
    made: list[str] = []

    def sign() -> str:
        made.append(assertion(entra_emulator, key, cert))
        return made[-1]

    result = daemon(entra_emulator, {"client_assertion": sign}).acquire_token_for_client(
        [API_SCOPE]
    )
    assert "access_token" in result, result
    assert made
    assert claims_of(result["access_token"])["azp"] == DAEMON


def test_a_secret_still_works_and_discovery_lists_private_key_jwt(
    entra_emulator: EntraEmulator,
) -> None:
    doc = (
        entra_emulator.http_session()
        .get(f"{entra_emulator.authority}/v2.0/.well-known/openid-configuration")
        .json()
    )
    assert doc["token_endpoint_auth_methods_supported"] == [
        "client_secret_post",
        "private_key_jwt",
        "client_secret_basic",
    ]
    result = daemon(entra_emulator, secret_of(entra_emulator, DAEMON))
    assert "access_token" in result.acquire_token_for_client([API_SCOPE])


def test_every_accepted_audience(entra_emulator: EntraEmulator, registered: Pair) -> None:
    """Entra's token endpoint (v2 or v1, by GUID or domain) or its v2 issuer."""
    cert, key = registered
    base = entra_emulator.urls.https_base
    for tenant in (CONTOSO, "contoso.example"):
        for path in ("oauth2/v2.0/token", "oauth2/token", "v2.0"):
            aud = f"{base}/{tenant}/{path}"
            granted(post(entra_emulator, assertion(entra_emulator, key, cert, aud=aud)))
    rs256 = assertion(entra_emulator, key, cert, alg="RS256", aud=[token_endpoint(entra_emulator)])
    granted(post(entra_emulator, rs256))  # aud as a list


def form_of(request: requests.PreparedRequest) -> dict[str, str]:
    from urllib.parse import parse_qsl

    body = request.body if isinstance(request.body, str) else (request.body or b"").decode()
    return dict(parse_qsl(body))


# -- each refusal ---------------------------------------------------------------------------------
def test_an_unregistered_certificate_is_a_key_not_found_700027(
    entra_emulator: EntraEmulator, registered: Pair
) -> None:
    other_cert, other_key = make_client_certificate("CN=not registered")
    said = refused(
        post(entra_emulator, assertion(entra_emulator, other_key, other_cert)),
        700027,
        "[Reason - The key was not found., Thumbprint of key used by client: "
        f"'{thumbprint(other_cert, 'sha256')}'",
    )
    assert f"configured keys for app Id '{DAEMON}'" in said
    # By SHA-1 too, and no thumbprint at all.
    sha1 = assertion(entra_emulator, other_key, other_cert, alg="RS256")
    refused(post(entra_emulator, sha1), 700027, f"'{thumbprint(other_cert)}'")
    refused(post(entra_emulator, assertion(entra_emulator, other_key)), 700027, "not found")


def test_a_signature_by_another_key_is_refused_700027(
    entra_emulator: EntraEmulator, registered: Pair
) -> None:
    cert, _ = registered
    _, wrong_key = make_client_certificate()
    forged = assertion(entra_emulator, wrong_key, cert)  # names the registered certificate
    said = refused(
        post(entra_emulator, forged),
        700027,
        "[Reason - The provided signature value did not match the expected signature value.",
    )
    assert "Found key 'Start=" in said


def test_an_unsupported_algorithm_is_refused(
    entra_emulator: EntraEmulator, registered: Pair
) -> None:
    cert, key = registered
    good = assertion(entra_emulator, key, cert)
    named = jwt.get_unverified_header(good)["x5t#S256"]
    unsigned = b64url(json.dumps({"alg": "none", "x5t#S256": named}).encode())
    refused(post(entra_emulator, f"{unsigned}.{good.split('.')[1]}."), 700027, "'none'")
    hs256 = jwt.encode(
        claims_of(good),
        "a-shared-secret-of-32-bytes-or-more!",
        algorithm="HS256",
        headers={"x5t#S256": named},
    )
    refused(post(entra_emulator, hs256), 700027, "'HS256' is not supported")


def test_a_wrong_audience_is_700023(entra_emulator: EntraEmulator, registered: Pair) -> None:
    cert, key = registered
    wrong = [
        "https://login.microsoftonline.com/contoso.example/oauth2/v2.0/token",  # another host
        f"{entra_emulator.authority_for('f4d2b1a0-6e2c-4f8e-9a57-3c1d2e4b5a69')}/oauth2/v2.0/token",
        entra_emulator.urls.https_base,
    ]
    for aud in wrong:
        refused(
            post(entra_emulator, assertion(entra_emulator, key, cert, aud=aud)),
            700023,
            "Client assertion audience claim does not match Realm issuer.",
        )
    refused(post(entra_emulator, assertion(entra_emulator, key, cert, aud=None)), 700023)


def test_iss_and_sub_name_the_client_50048_and_700021(
    entra_emulator: EntraEmulator, registered: Pair
) -> None:
    cert, key = registered
    refused(
        post(entra_emulator, assertion(entra_emulator, key, cert, sub=WEB)),
        50048,
        "Subject mismatches Issuer claim in the client assertion.",
    )
    refused(
        post(entra_emulator, assertion(entra_emulator, key, cert, iss=WEB, sub=WEB)),
        700021,
        "Client assertion application identifier doesn't match 'client_id' parameter.",
    )
    refused(post(entra_emulator, assertion(entra_emulator, key, cert, sub=None)), 50027, "'sub'")


def test_an_expired_assertion_is_700024(entra_emulator: EntraEmulator, registered: Pair) -> None:
    cert, key = registered
    now = int(entra_emulator.state.now())
    said = refused(
        post(entra_emulator, assertion(entra_emulator, key, cert, nbf=now - 7200, exp=now - 3600)),
        700024,
        "Client assertion is not within its valid time range. Current time: ",
    )
    assert ", assertion valid from " in said
    assert ", expiry time of assertion " in said
    # One made now, presented after the emulator's clock moved past it (and its 5-minute skew).
    later = assertion(entra_emulator, key, cert)
    entra_emulator.shift_clock(600 + 301)
    refused(post(entra_emulator, later), 700024)
    entra_emulator.shift_clock(-(600 + 301))
    granted(post(entra_emulator, later))
    # Not yet valid, or without exp (Entra reads it as 1970).
    early = assertion(entra_emulator, key, cert, nbf=now + 3600, exp=now + 3900)
    refused(post(entra_emulator, early), 700024)
    no_exp = assertion(entra_emulator, key, cert, exp=None)
    refused(post(entra_emulator, no_exp), 700024, "expiry time of assertion 1970-01-01T00:00:00")


def test_a_lifetime_over_10_minutes_is_refused_in_strict_mode_only(
    entra_emulator: EntraEmulator, registered: Pair
) -> None:
    """Entra "doesn't place restrictions on the exp time currently" (certificate-credentials);
    strict mode enforces the page's advice of 10 minutes at most."""
    cert, key = registered
    now = int(entra_emulator.state.now())
    hour = assertion(entra_emulator, key, cert, exp=now + 3600)
    granted(post(entra_emulator, hour))
    entra_emulator.settings.client_assertions = "strict"
    refused(post(entra_emulator, assertion(entra_emulator, key, cert, exp=now + 3600)), 700024)
    granted(post(entra_emulator, assertion(entra_emulator, key, cert, exp=now + 600)))
    no_nbf = assertion(entra_emulator, key, cert, nbf=None, iat=now, exp=now + 601)
    refused(post(entra_emulator, no_nbf), 700024)


def test_a_replayed_jti_is_refused_in_strict_mode_only(
    entra_emulator: EntraEmulator, registered: Pair
) -> None:
    cert, key = registered
    again = assertion(entra_emulator, key, cert)
    granted(post(entra_emulator, again))
    granted(post(entra_emulator, again))  # Entra: MSAL reuses its assertions
    entra_emulator.settings.client_assertions = "strict"
    once = assertion(entra_emulator, key, cert)
    granted(post(entra_emulator, once))
    refused(post(entra_emulator, once), 50027, "was used before")
    granted(post(entra_emulator, assertion(entra_emulator, key, cert)))  # a new jti
    entra_emulator.reset()  # forgets the jtis seen, strict mode and the certificate
    entra_emulator.add_certificate(DAEMON, cert)
    granted(post(entra_emulator, once))


def test_a_jti_is_required_50027(entra_emulator: EntraEmulator, registered: Pair) -> None:
    cert, key = registered
    refused(
        post(entra_emulator, assertion(entra_emulator, key, cert, jti=None)),
        50027,
        "JWT token is invalid or malformed. The client assertion has no 'jti' claim",
    )


def test_an_expired_certificate_is_refused_700027(entra_emulator: EntraEmulator) -> None:
    week_ago = dt.datetime.now(dt.timezone.utc) - dt.timedelta(days=7)
    cert, key = make_client_certificate(not_before=week_ago, days=1)
    entra_emulator.add_certificate(DAEMON, cert)
    said = refused(
        post(entra_emulator, assertion(entra_emulator, key, cert)),
        700027,
        "[Reason - The key used is expired.",
    )
    assert f"Found key 'Start={week_ago:%m/%d/%Y}" in said
    # A valid one expires when the emulator's clock passes its end.
    cert2, key2 = make_client_certificate(days=1)
    entra_emulator.add_certificate(DAEMON, cert2)
    granted(post(entra_emulator, assertion(entra_emulator, key2, cert2)))
    entra_emulator.shift_clock(2 * 86400)
    refused(post(entra_emulator, assertion(entra_emulator, key2, cert2)), 700027, "expired")


def test_a_secret_and_an_assertion_together_are_refused(
    entra_emulator: EntraEmulator, registered: Pair
) -> None:
    cert, key = registered
    secret = secret_of(entra_emulator, DAEMON)
    both = post(entra_emulator, assertion(entra_emulator, key, cert), client_secret=secret)
    refused(both, 9002313, "both a client_secret and a client_assertion")
    # A secret in a Basic header counts too.
    form = {
        "grant_type": "client_credentials",
        "scope": API_SCOPE,
        "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
        "client_assertion": assertion(entra_emulator, key, cert),
    }
    basic = entra_emulator.http_session().post(
        token_endpoint(entra_emulator), data=form, auth=(DAEMON, secret)
    )
    refused(basic, 9002313, "both")


def test_the_assertion_type_and_shape(entra_emulator: EntraEmulator, registered: Pair) -> None:
    cert, key = registered
    good = assertion(entra_emulator, key, cert)
    refused(post(entra_emulator, good, client_assertion_type=""), 90014, "client_assertion_type")
    refused(post(entra_emulator, good, client_assertion_type="saml"), 9002313, "jwt-bearer")
    refused(post(entra_emulator, "not-a-jwt"), 50027, "is not a JWT")
    refused(post(entra_emulator, "a.b.c"), 50027, "is not a JWT")


def test_a_certificate_added_while_running_lasts_until_reset(
    entra_emulator: EntraEmulator, registered: Pair
) -> None:
    cert, key = registered
    granted(post(entra_emulator, assertion(entra_emulator, key, cert)))
    entra_emulator.reset()
    refused(post(entra_emulator, assertion(entra_emulator, key, cert)), 700027, "not found")


def test_add_certificate_refuses_what_entra_would(entra_emulator: EntraEmulator) -> None:
    cert, key = make_client_certificate()
    with pytest.raises(EmulatorError, match="private key"):
        entra_emulator.add_certificate(DAEMON, cert + key)
    with pytest.raises(EmulatorError, match="not a certificate"):
        entra_emulator.add_certificate(DAEMON, "-----BEGIN CERTIFICATE-----\nno\n")
    with pytest.raises(EmulatorError, match="no app"):
        entra_emulator.add_certificate("00000000-0000-0000-0000-000000000000", cert)
    assert entra_emulator.add_certificate(DAEMON, cert) == thumbprint(cert, "sha256")
    assert entra_emulator.add_certificate(DAEMON, cert) == thumbprint(cert, "sha256")  # once
    assert len(entra_emulator.app(DAEMON).certificates) == 1


def test_certificates_over_the_http_control_api(entra_emulator: EntraEmulator) -> None:
    cert, key = make_client_certificate("CN=over http")
    http = entra_emulator.http_session()
    url = f"{entra_emulator.urls.https_base}/_emulator/apps/{DAEMON}/certificates"
    admin = {ADMIN_HEADER: entra_emulator.admin_key}
    assert http.post(url, json={"pem": cert}).status_code == 403
    answer = http.post(url, json={"pem": cert, "display_name": "CI runner"}, headers=admin)
    assert answer.status_code == 200, answer.text
    got = answer.json()
    assert (got["client_id"], got["display_name"]) == (DAEMON, "CI runner")
    assert (got["thumbprint"], got["thumbprint_sha256"]) == (
        thumbprint(cert),
        thumbprint(cert, "sha256"),
    )
    result = daemon(entra_emulator, {"private_key": key, "public_certificate": cert})
    assert "access_token" in result.acquire_token_for_client([API_SCOPE])
    bad = http.post(url, json={"pem": "no certificate"}, headers=admin)
    assert bad.status_code == 400
    assert "not a certificate" in bad.json()["error_description"]
    assert http.post(url, json={}, headers=admin).status_code == 400
    nobody = url.replace(DAEMON, "00000000-0000-0000-0000-000000000000")
    assert http.post(nobody, json={"pem": cert}, headers=admin).status_code == 404


def test_a_certificate_in_the_seed(tmp_path: Path, pair: Pair) -> None:
    cert, key = pair
    seed = seed_dict()
    daemon_entry = next(a for a in seed["apps"] if a["client_id"] == DAEMON)
    daemon_entry["certificates"] = [{"pem": cert, "display_name": "daemon certificate"}]
    with EntraEmulator(seed_from_dict(seed), state_dir=tmp_path, port=0, browser_port=0) as e:
        (registered,) = e.app(DAEMON).certificates
        assert (registered.display_name, registered.thumbprint) == (
            "daemon certificate",
            thumbprint(cert),
        )
        result = daemon(e, {"private_key": key, "thumbprint": thumbprint(cert)})
        assert "access_token" in result.acquire_token_for_client([API_SCOPE])
        e.reset()  # the seed's certificates stay
        assert e.app(DAEMON).certificates == (registered,)


@pytest.mark.parametrize(
    ("entry", "words"),
    [
        ({"pem": "nope"}, "apps[4].certificates[0].pem: is not a certificate"),
        ({"pem": "x", "colour": "red"}, "apps[4].certificates[0].colour: unknown key"),
    ],
)
def test_a_bad_certificate_in_the_seed_fails_at_start(entry: dict[str, Any], words: str) -> None:
    seed = seed_dict()
    seed["apps"][4]["certificates"] = [entry]
    assert seed["apps"][4]["client_id"] == DAEMON
    with pytest.raises(EmulatorError, match=re_escape(words)):
        seed_from_dict(seed)


# -- subject name and issuer (x5c) ---------------------------------------------------------------
def test_subject_name_and_issuer_authentication(tmp_path: Path) -> None:
    ca = make_certificate_authority("CN=Contoso test CA")
    cert, key = make_client_certificate("CN=daemon.contoso.example", issuer=ca)
    seed = seed_dict()
    seed["apps"][4]["trusted_certificate_subjects"] = [
        {"subject_name": "CN=daemon.contoso.example", "authority_pem": ca[0]}
    ]
    with EntraEmulator(seed_from_dict(seed), state_dir=tmp_path, port=0, browser_port=0) as e:
        chain = cert + ca[0]  # MSAL sends it in x5c, leaf first
        app = daemon(e, {"private_key": key, "public_certificate": chain})
        result = app.acquire_token_for_client([API_SCOPE])
        assert "access_token" in result, result
        # Another subject, or the right subject from another CA, is refused.
        other_cert, other_key = make_client_certificate("CN=intruder.example", issuer=ca)
        stranger = daemon(e, {"private_key": other_key, "public_certificate": other_cert})
        said = stranger.acquire_token_for_client([API_SCOPE])
        assert said["error_codes"] == [700030], said
        assert "CN=intruder.example" in said["error_description"]
        rogue_ca = make_certificate_authority("CN=Contoso test CA")
        fake, fake_key = make_client_certificate("CN=daemon.contoso.example", issuer=rogue_ca)
        forged = daemon(e, {"private_key": fake_key, "public_certificate": fake})
        assert forged.acquire_token_for_client([API_SCOPE])["error_codes"] == [50012]


# -- federated credentials ------------------------------------------------------------------------
def test_a_federated_token_from_a_file_through_msal(
    entra_emulator: EntraEmulator, tmp_path: Path
) -> None:
    """A pod's projected service-account token: MSAL reads the file at each token request."""
    token_file = tmp_path / "azure-identity-token"
    token_file.write_text(entra_emulator.federated_token(POD))
    app = daemon(entra_emulator, {"client_assertion": lambda: token_file.read_text()})
    result = app.acquire_token_for_client([API_SCOPE])
    assert "access_token" in result, result
    token = claims_of(result["access_token"])
    assert (token["azp"], token["roles"]) == (DAEMON, ["Data.Read.All"])
    # The kubelet rotates the file; the next request reads the new token.
    entra_emulator.shift_clock(3600 + 301)
    token_file.write_text(entra_emulator.federated_token(POD))
    assert "access_token" in app.acquire_token_for_client([GRAPH_SCOPE])


def test_the_stand_in_issuer_is_an_openid_issuer(entra_emulator: EntraEmulator) -> None:
    http = entra_emulator.http_session()
    issuer = entra_emulator.federated_issuer()
    assert issuer == f"{entra_emulator.urls.https_base}/_issuers/local"
    config = http.get(f"{issuer}/.well-known/openid-configuration").json()
    assert config["issuer"] == issuer
    keys = http.get(config["jwks_uri"]).json()["keys"]
    token = entra_emulator.federated_token(POD, lifetime=600)
    key = jwt.PyJWK(keys[0])
    assert jwt.get_unverified_header(token)["kid"] == key.key_id
    claims = jwt.decode(token, key, algorithms=["RS256"], audience="api://AzureADTokenExchange")
    assert (claims["iss"], claims["sub"], claims["exp"] - claims["iat"]) == (issuer, POD, 600)
    assert http.get(f"{entra_emulator.urls.https_base}/_issuers/b@d/keys").status_code == 404


def test_a_federated_credential_added_for_another_issuer(entra_emulator: EntraEmulator) -> None:
    github = "https://token.actions.githubusercontent.com"
    subject = "repo:contoso/daemon:ref:refs/heads/main"
    entra_emulator.add_federated_credential(WEB, issuer=github, subject=subject, name="main")
    token = entra_emulator.federated_token(subject, issuer=github)
    app = msal.ConfidentialClientApplication(
        WEB,
        client_credential={"client_assertion": lambda: token},
        authority=entra_emulator.authority,
        instance_discovery=False,
        http_client=entra_emulator.http_session(),
    )
    assert "access_token" in app.acquire_token_for_client([API_SCOPE])
    with pytest.raises(EmulatorError, match="this issuer and subject"):
        entra_emulator.add_federated_credential(WEB, issuer=github, subject=subject, name="dup")
    with pytest.raises(EmulatorError, match="exactly one audience"):
        entra_emulator.add_federated_credential(WEB, subject="x", audiences=["a", "b"])
    entra_emulator.reset()
    assert entra_emulator.app(WEB).federated_credentials == ()


def test_a_federated_token_for_another_subject_is_700213(entra_emulator: EntraEmulator) -> None:
    other = "system:serviceaccount:demo:somebody-else"
    refused(
        post(entra_emulator, entra_emulator.federated_token(other)),
        700213,
        f"No matching federated identity record found for presented assertion subject '{other}'",
    )
    upper = POD.upper()  # compared exactly, case included
    refused(post(entra_emulator, entra_emulator.federated_token(upper)), 700213)


def test_a_federated_token_for_another_audience_is_700212(entra_emulator: EntraEmulator) -> None:
    kubernetes_default = "https://kubernetes.default.svc"
    refused(
        post(entra_emulator, entra_emulator.federated_token(POD, audience=kubernetes_default)),
        700212,
        f"presented assertion audience '{kubernetes_default}'",
    )


def test_a_federated_token_of_another_issuer_is_700211(entra_emulator: EntraEmulator) -> None:
    other = entra_emulator.federated_token(POD, issuer="another-cluster")
    refused(
        post(entra_emulator, other),
        700211,
        f"presented assertion issuer '{entra_emulator.federated_issuer('another-cluster')}'",
    )
    # An app with no federated credential at all.
    refused(post(entra_emulator, other, client_id=WEB), 70021, f"Assertion Subject: '{POD}'")


def test_an_expired_federated_token_is_700024(entra_emulator: EntraEmulator) -> None:
    token = entra_emulator.federated_token(POD, lifetime=600)
    granted(post(entra_emulator, token))  # no single use: a token file serves many requests
    granted(post(entra_emulator, token))
    entra_emulator.shift_clock(600 + 301)
    refused(post(entra_emulator, token), 700024, "Client assertion is not within its valid time")


def test_a_federated_token_signed_by_another_key_is_50027(entra_emulator: EntraEmulator) -> None:
    _, other_key = make_client_certificate()
    claims = claims_of(entra_emulator.federated_token(POD))
    key = serialization.load_pem_private_key(other_key.encode(), password=None)
    forged = jwt.encode(claims, key, algorithm="RS256", headers={"kid": "someone-else"})  # type: ignore[arg-type]
    refused(post(entra_emulator, forged), 50027, "failed signature verification")


def test_federated_credentials_over_the_http_control_api(entra_emulator: EntraEmulator) -> None:
    http = entra_emulator.http_session()
    url = f"{entra_emulator.urls.https_base}/_emulator/apps/{WEB}/federated-credentials"
    admin = {ADMIN_HEADER: entra_emulator.admin_key}
    body = {"name": "ci-pipeline", "issuer": "/_issuers/ci", "subject": "pipeline"}
    answer = http.post(url, json=body, headers=admin).json()
    assert answer == {"client_id": WEB, "name": "ci-pipeline"}
    token = entra_emulator.federated_token("pipeline", issuer="ci")
    granted(post(entra_emulator, token, client_id=WEB))
    again = http.post(url, json=body, headers=admin)
    assert again.status_code == 400
    assert "taken" in again.json()["error_description"]
    assert http.post(url, json={"name": "x"}, headers=admin).status_code == 400


@pytest.mark.parametrize(
    ("credential", "words"),
    [
        ({"name": "ab", "issuer": "/_issuers/local", "subject": "s"}, "3 to 120"),
        ({"name": "pod", "issuer": "http://insecure.example", "subject": "s"}, "https URL"),
        ({"name": "pod", "issuer": "/_issuers/", "subject": "s"}, "/_issuers/<name>"),
        (
            {"name": "pod", "issuer": "/_issuers/x", "subject": "s", "audiences": []},
            "exactly one audience",
        ),
    ],
)
def test_a_bad_federated_credential_in_the_seed_fails_at_start(
    credential: dict[str, Any], words: str
) -> None:
    seed = seed_dict()
    seed["apps"][4]["federated_credentials"] = [credential]
    with pytest.raises(EmulatorError, match=re_escape(words)) as caught:
        seed_from_dict(seed)
    assert "apps[4].federated_credentials[0]" in str(caught.value)


def seed_dict() -> dict[str, Any]:
    """The default seed as the dict a seed file gives (to change before ``seed_from_dict``)."""
    import sys

    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover
        import tomli as tomllib
    from entra_auth.emulator.seed import default_seed_path

    data: dict[str, Any] = tomllib.loads(default_seed_path().read_text())
    assert load_seed().app(DAEMON) is not None
    return data


def re_escape(words: str) -> str:
    import re

    return re.escape(words)
