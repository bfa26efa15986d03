"""Issue 16, items 6 and 7: diagnostics that behave as Entra does in real tenants.

- fid06: `entra-auth doctor` finds out which access-token version the API gets (a v1 token
  unless its registration asks for v2, as in the portal) and compares it with
  ENTRA_ACCEPTED_TOKEN_VERSIONS; the default seed keeps an API on the portal's default.
- fid07: the AADSTS codes real tenants send (Conditional Access, MFA, device state, passwords,
  "keep me signed in", accounts from elsewhere), each in Microsoft's own wording, and the sign-in
  error page that tells the person signing in what to do, in plain words.
"""

from __future__ import annotations

import json
import re
import sys
from importlib import resources
from typing import Any

import pytest
import requests
from click.testing import Result
from requests import PreparedRequest, Response
from requests.adapters import HTTPAdapter

from entra_auth import aadsts, diagnostics
from entra_auth.config import EntraConfig
from entra_auth.emulator import EntraEmulator

from .helpers import API, API_URI, LEGACY, LEGACY_URI, WEB, secret_of
from .security.web import Web, query_of
from .test_diagnostics import env, lines, no_secrets, run

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - the emulator extra brings tomli there
    import tomli as tomllib

VERSION = diagnostics.TOKEN_VERSION_CHECK


def doctor_lines(result: Result) -> dict[str, str]:
    """check name → its line, ⚠️ lines (and their `check:` advice) included."""
    found: dict[str, str] = {}
    current = ""
    for line in result.output.splitlines():
        match = re.match(r"^(✅|❌|⚠️) ([^:]+): (.*)$", line)
        if match:
            current = match.group(2)
            found[current] = f"{match.group(1)} {match.group(3)}"
        elif current and line.strip().startswith(("fix:", "check:")):
            found[current] += " | " + line.strip()
    return found


# -- fid06: the API's token version ----------------------------------------------------------
def test_fid06_the_default_seed_keeps_an_api_on_the_portals_default() -> None:
    """The legacy API is registered as the portal leaves it: no accessTokenAcceptedVersion."""
    seed = tomllib.loads(
        resources.files("entra_auth.emulator").joinpath("default_seed.toml").read_text()
    )
    apps = {app["client_id"]: app for app in seed["apps"]}
    assert "access_token_accepted_version" not in apps[LEGACY]
    assert apps[API]["access_token_accepted_version"] == 2


def test_fid06_absent_accepted_version_means_v1_tokens(entra_emulator: EntraEmulator) -> None:
    """As in Entra (null or 1 → v1): the token's issuer, audience and claims are v1's."""
    token = entra_emulator.issue_token(
        client_id=WEB, resource=LEGACY_URI, user="adele@contoso.example", scopes=["Legacy.Read"]
    )
    claims = diagnostics.decode_unverified(token).claims
    assert claims["ver"] == "1.0"
    assert claims["iss"] == f"https://sts.windows.net/{entra_emulator.tenant_id}/"
    assert claims["aud"] == LEGACY_URI  # v1: the App ID URI the client asked for
    assert claims["appid"] == WEB
    assert "azp" not in claims
    modern = entra_emulator.issue_token(
        client_id=WEB, resource=API_URI, user="adele@contoso.example", scopes=["access_as_user"]
    )
    assert diagnostics.decode_unverified(modern).claims["ver"] == "2.0"


def test_fid06_doctor_says_the_api_gets_v2_and_that_is_accepted(
    entra_emulator: EntraEmulator,
) -> None:
    result = run("doctor", env=env(entra_emulator))
    assert result.exit_code == 0, result.output
    line = doctor_lines(result)[VERSION]
    assert line.startswith(f"✅ the API {API} gets v2.0 access tokens"), line
    assert '"requestedAccessTokenVersion": 2' in line
    assert "ENTRA_ACCEPTED_TOKEN_VERSIONS accepts v2.0 only (its default)." in line
    no_secrets(result.output, secret_of(entra_emulator, WEB))


def test_fid06_doctor_finds_a_v1_api_that_the_default_would_refuse(
    entra_emulator: EntraEmulator,
) -> None:
    legacy = env(entra_emulator, ENTRA_API_AUDIENCE=f"{LEGACY_URI},{LEGACY}")
    result = run("doctor", env=legacy)
    assert result.exit_code == 1, result.output
    line = doctor_lines(result)[VERSION]
    # The GUID is asked for first, whatever the order in ENTRA_API_AUDIENCE.
    assert line.startswith(f"❌ the API {LEGACY} gets v1.0 access tokens"), line
    assert "requestedAccessTokenVersion null or 1: the portal's default" in line
    assert "the API would refuse every token" in line
    fix = line.split("| fix: ")[1]
    assert "App registrations → the API → Manifest" in fix
    assert '"requestedAccessTokenVersion": 2' in fix
    assert "ENTRA_ACCEPTED_TOKEN_VERSIONS=1" in fix
    assert all(v.startswith("✅") for k, v in lines(result).items() if k != VERSION)
    # Told to accept v1 (or both), the same API passes.
    for versions in ("1", "1,2"):
        accepted = run("doctor", env={**legacy, "ENTRA_ACCEPTED_TOKEN_VERSIONS": versions})
        assert accepted.exit_code == 0, accepted.output
        line = doctor_lines(accepted)[VERSION]
        assert line.startswith(f"✅ the API {LEGACY} gets v1.0 access tokens"), line
        assert "ENTRA_ACCEPTED_TOKEN_VERSIONS accepts v1.0" in line


def test_fid06_doctor_finds_a_v2_api_when_only_v1_is_accepted(
    entra_emulator: EntraEmulator,
) -> None:
    result = run("doctor", env={**env(entra_emulator), "ENTRA_ACCEPTED_TOKEN_VERSIONS": "1"})
    assert result.exit_code == 1
    line = doctor_lines(result)[VERSION]
    assert line.startswith(f"❌ the API {API} gets v2.0 access tokens"), line
    assert "ENTRA_ACCEPTED_TOKEN_VERSIONS accepts v1.0: the API would refuse" in line
    assert "fix: Set ENTRA_ACCEPTED_TOKEN_VERSIONS=2" in line
    report = json.loads(
        run(
            "doctor", "--json", env={**env(entra_emulator), "ENTRA_ACCEPTED_TOKEN_VERSIONS": "1"}
        ).output
    )
    check = next(c for c in report["checks"] if c["name"] == VERSION)
    assert (check["ok"], check["warn"]) == (False, False)


def test_fid06_without_an_audience_the_app_itself_is_the_api(
    entra_emulator: EntraEmulator,
) -> None:
    """ENTRA_API_AUDIENCE unset: the validator takes the client id, and so does doctor."""
    result = run("doctor", env=env(entra_emulator, ENTRA_API_AUDIENCE=None))
    assert result.exit_code == 0, result.output
    line = doctor_lines(result)[VERSION]
    assert line.startswith(f"✅ the API {WEB}, this app itself (ENTRA_API_AUDIENCE's default)")
    assert "gets v2.0 access tokens" in line


def test_fid06_an_audience_no_api_has_is_a_failure(entra_emulator: EntraEmulator) -> None:
    result = run("doctor", env=env(entra_emulator, ENTRA_API_AUDIENCE="api://nosuch.example"))
    assert result.exit_code == 1
    line = doctor_lines(result)[VERSION]
    assert line.startswith("❌ No API of this tenant is named api://nosuch.example"), line
    assert "AADSTS500011" in line
    assert "fix: Set ENTRA_API_AUDIENCE" in line


def test_fid06_not_asked_when_the_client_is_refused(entra_emulator: EntraEmulator) -> None:
    """A wrong secret: nothing more is sent; the line says where the portal shows the version."""
    entra_emulator.reset_counts()
    result = run("doctor", env=env(entra_emulator, ENTRA_CLIENT_SECRET="abc8Q~not-the-secret"))
    assert result.exit_code == 1
    assert entra_emulator.request_counts()["token"] == 1  # the client credentials check only
    line = doctor_lines(result)[VERSION]
    assert line.startswith("⚠️ which token version the API"), line
    assert "not asked, as the client credentials check failed" in line
    assert (
        "check: Look in the Entra admin center: App registrations → the API "
        f'({API}) → Manifest → "requestedAccessTokenVersion"'
    ) in line
    assert "null or 1 means v1 tokens (the portal's default), 2 means v2" in line
    no_secrets(result.output, "abc8Q~not-the-secret")


class RefuseTheApi(HTTPAdapter):
    """What a real tenant answers when the API requires assignment and this app has no role:
    the client credentials for Graph pass, the token for the API is refused (AADSTS501051)."""

    def __init__(self) -> None:
        super().__init__()
        self.scopes: list[str] = []

    def send(self, request: PreparedRequest, **kwargs: Any) -> Response:
        body = request.body.decode() if isinstance(request.body, bytes) else request.body or ""
        if request.method == "POST" and "client_credentials" in body:
            scope = requests.utils.unquote(body.split("scope=")[1].split("&")[0])
            self.scopes.append(scope)
            if "graph.microsoft.com" not in scope:
                answer = Response()
                answer.status_code = 400
                answer._content = json.dumps(
                    {
                        "error": "invalid_grant",
                        "error_description": "AADSTS501051: Application '<id>' is not assigned "
                        "to a role for the application '<api>'. <script>x</script>",
                        "error_codes": [501051],
                    }
                ).encode()
                answer.headers["Content-Type"] = "application/json"
                answer.request, answer.url = request, str(request.url)
                return answer
        return super().send(request, **kwargs)


def test_fid06_a_refused_token_says_what_to_check_in_the_portal(
    entra_emulator: EntraEmulator,
) -> None:
    adapter = RefuseTheApi()
    session = requests.Session()
    session.mount("https://", adapter)
    settings = {k: v for k, v in env(entra_emulator).items() if v is not None}
    checks = {
        c.name: c
        for c in diagnostics.doctor(
            lambda: EntraConfig.from_env(settings), session=session, given=set(settings)
        )
    }
    check = checks[VERSION]
    assert (check.ok, check.warn) == (True, True)
    assert check.detail.endswith("a token for it was refused to this app (AADSTS501051).")
    assert "<script>" not in check.detail  # Entra's description is never quoted
    assert '"requestedAccessTokenVersion"' in check.fix
    # Not found by one name is worth the next; another refusal is not.
    assert adapter.scopes == ["https://graph.microsoft.com/.default", f"{API}/.default"]
    assert all(c.ok for c in checks.values())


# -- fid07: the codes of real tenants ----------------------------------------------------------
# Each new code, and words of Microsoft's reference ("Microsoft Entra authentication and
# authorization error codes", learn.microsoft.com/entra/identity-platform/reference-error-codes)
# that its Entra wording must carry.
REFERENCE = {
    53001: "requires a domain joined device, and the device isn't domain joined",
    53002: "The app used isn't an approved app for Conditional Access",
    530032: "The tenant admin has configured a security policy that blocks this request",
    530035: "Access has been blocked by security defaults",
    50131: "Indicates various Conditional Access errors such as bad Windows device state",
    50005: "platform not currently supported through Conditional Access policy",
    53011: "User blocked due to risk on home tenant.",
    70043: "due to sign-in frequency checks by Conditional Access",
    50072: "User needs to enroll for second factor authentication (interactive).",
    50078: "Presented multifactor authentication has expired due to policies",
    53004: "User needs to complete the multifactor authentication registration process",
    50097: "Device authentication is required.",
    50129: "Workplace join is required to register the device.",
    50155: "Device authentication failed for this user.",
    50187: "The service failed to perform device authentication.",
    50099: "The JWT signature is invalid.",
    135011: "Device used during the authentication is disabled.",
    50056: "Invalid or null password: password doesn't exist in the directory for this user.",
    50144: "User's Active Directory password has expired.",
    50135: "Password change is required due to account risk.",
    50125: "Sign-in was interrupted because of a password reset or password registration entry.",
    50132: "The session isn't valid due to password expiration or recent password change.",
    50140: 'This error occurred due to "Keep me signed in" interrupt when the user was signing-in.',
    51004: "The user account doesn't exist in the directory.",
    90072: "The external account that the user signs in with doesn't exist on the tenant",
    500208: "The domain is not a valid login domain for the account type.",
    500212: "has set an outbound access policy that doesn't allow access to the resource tenant",
    500213: "The resource tenant's cross-tenant access policy doesn't allow this user",
}
# Codes the catalogue had, now with causes and words for the person signing in.
ENRICHED = [50074, 50076, 50079, 50158, 53000, 53003, 50020, 50034, 50053, 50055, 50057]


def test_fid07_the_catalogue_grew_with_real_tenant_codes() -> None:
    # 58 codes before, the real-tenant ones, and the PKCE / single-page-app ones the emulator
    # answers with (9002327, 50148, 50149, 501491: one catalogue for both), and the client
    # assertions' (700021, 700023, 50048, 50027, 70021, 700211, 700212, 700213, 700030, 50012),
    # and the on-behalf-of flow's assertion (50013).
    assert len(aadsts.CATALOGUE) == 58 + len(REFERENCE) + 4 + 10 + 1
    for code in [*REFERENCE, *ENRICHED]:
        entry = aadsts.lookup(code)
        assert entry is not None, code
        assert entry.user is not None, code
        assert entry.error in (
            "interaction_required",
            "access_denied",
            "invalid_grant",
            "invalid_request",
        ), code
    for code in ENRICHED:
        entry = aadsts.CATALOGUE[code]
        assert entry.causes, code


@pytest.mark.parametrize("code", sorted(REFERENCE))
def test_fid07_explain_knows_each_new_code(code: int) -> None:
    entry = aadsts.CATALOGUE[code]
    assert REFERENCE[code] in entry.message  # Entra's wording, as Microsoft documents it
    result = run("explain", f"AADSTS{code}", env={})
    assert result.exit_code == 0, result.output
    text = " ".join(result.output.split())  # rich wraps long lines
    assert f"AADSTS{code} ({entry.error}): {entry.meaning}" in text
    assert f"fix: {entry.fix}" in text
    template = re.sub(r"\{(\w+)\}", r"<\1>", entry.message)
    assert f"Entra says: {template}" in text
    assert f"Microsoft's page: https://login.microsoftonline.com/error?code={code}" in text
    data = json.loads(run("explain", "--json", str(code), env={}).output)["codes"][0]
    assert (data["code"], data["meaning"], data["fix"]) == (
        f"AADSTS{code}",
        entry.meaning,
        entry.fix,
    )


def test_fid07_explain_a_pasted_conditional_access_description() -> None:
    pasted = (
        "AADSTS53000: Device is not in required device state: compliant. Conditional Access "
        "policy requires a compliant device, and the device is not compliant.\r\nTrace ID: 1"
    )
    result = run("explain", pasted, env={})
    text = " ".join(result.output.split())
    assert result.exit_code == 0
    assert "likely cause: a personal or unenrolled device" in text
    assert "Intune" in text


# -- fid07: the sign-in error page, in the words of the person signing in -------------------------
def refused_at_callback(web: Web, error: str, description: str) -> tuple[str, str]:
    """The identity provider sends the browser back with an error: the page's main part and
    its folded details."""
    state = query_of(web.begin())["state"]
    response = web.callback({"error": error, "error_description": description, "state": state})
    assert response.status_code == 400
    assert web.who() is None
    main, detail = response.get_data(as_text=True).split('<details id="detail">')
    return main, detail


@pytest.mark.parametrize(
    ("error", "code", "title", "words"),
    [
        (
            "interaction_required",
            53000,
            "This device can&#39;t be used for this app",
            "Your organization requires a compliant device to use this app",
        ),
        (
            "access_denied",  # a block redirected as access_denied is not "cancelled"
            53003,
            "Your organization blocked this sign-in",
            "Your organization&#39;s security policy doesn&#39;t allow this sign-in right now",
        ),
        (
            "interaction_required",
            50097,
            "This device needs to be registered",
            "requires this device to be registered with it",
        ),
        (
            "invalid_grant",
            50055,
            "Your password has expired",
            "Your password has expired: change it, then sign in again.",
        ),
        (
            "interaction_required",
            50076,
            "An extra verification step is needed",
            "a second verification step (multi-factor authentication)",
        ),
        (
            "interaction_required",
            50140,
            "The sign-in was interrupted",
            "The sign-in stopped at the “Stay signed in?” question.",
        ),
        (
            "invalid_request",
            500208,
            "Use your work or school account",
            "not a personal Microsoft account",
        ),
    ],
)
def test_fid07_the_sign_in_page_explains_the_code_in_plain_words(
    web: Web, error: str, code: int, title: str, words: str
) -> None:
    entry = aadsts.CATALOGUE[code]
    assert entry.user is not None
    description = f"AADSTS{code}: {entry.render()} <script>alert(1)</script>\r\nTrace ID: 1"
    main, detail = refused_at_callback(web, error, description)
    assert f"<h1>{title}</h1>" in main
    assert words in main
    assert 'id="remedy"' in main
    assert 'id="retry"' in main
    # No AADSTS number, OAuth term or Entra's text for the person signing in: folded away.
    assert "AADSTS" not in main
    assert error not in main
    assert "cancelled" not in main
    assert "<script>" not in main + detail
    assert f'<code id="code">AADSTS{code}</code>' in detail
    assert entry.meaning.replace("'", "&#39;").replace('"', "&#34;") in detail
    assert 'id="developer-remedy"' in detail


@pytest.mark.parametrize(("code", "asks"), [(53000, True), (53003, True), (50055, False)])
def test_fid07_when_only_the_organization_can_help_the_page_says_when(
    web: Web, code: int, asks: bool
) -> None:
    main, _ = refused_at_callback(web, "access_denied", f"AADSTS{code}: x")
    when = re.search(r'<p id="when">.*?<time datetime="([^"]+)">([^<]+)</time>', main)
    if not asks:
        assert when is None
        return
    assert when is not None, main
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", when.group(1))
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d UTC", when.group(2))
    assert "your organization" in main.lower()


def test_fid07_a_code_without_words_keeps_the_generic_page(web: Web) -> None:
    """A code the person can do nothing about (the app's own configuration): the generic page,
    and a declined consent is still "cancelled"."""
    main, detail = refused_at_callback(web, "invalid_request", "AADSTS50011: x")
    assert "<h1>Sign-in failed.</h1>" in main
    assert "AADSTS50011" in detail
    main, _ = refused_at_callback(web, "access_denied", "AADSTS65004: x")
    assert "<h1>Sign-in was cancelled.</h1>" in main
