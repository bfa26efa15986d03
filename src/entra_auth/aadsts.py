"""The AADSTS error catalogue: what each Entra ID error code means and how to fix it.

One table serves two readers: the local Entra ID answers with ``message`` (Entra's own wording,
with ``{placeholders}``), and the diagnostics (``entra-auth explain``, error pages) show
``meaning``, ``causes`` and ``fix``. Written by hand because no library carries this knowledge.
"""

from __future__ import annotations

import re
from dataclasses import dataclass


@dataclass(frozen=True)
class AadstsCode:
    """One AADSTS code: the OAuth ``error`` value Entra pairs it with, and what to do about it."""

    code: int
    error: str
    message: str
    meaning: str
    fix: str
    causes: tuple[str, ...] = ()

    @property
    def name(self) -> str:
        return f"AADSTS{self.code}"

    def render(self, **values: object) -> str:
        """Entra's message with its placeholders filled; unknown placeholders stay visible."""
        return _PLACEHOLDER.sub(lambda m: str(values.get(m.group(1), m.group(0))), self.message)


_PLACEHOLDER = re.compile(r"\{(\w+)\}")

_CODES = (
    AadstsCode(
        50011,
        "invalid_request",
        "The redirect URI '{redirect_uri}' specified in the request does not match the redirect "
        "URIs configured for the application '{client_id}'. Make sure the redirect URI sent in "
        "the request matches one added to your application in the Azure portal.",
        "The redirect URI the app sent is not registered for the app.",
        "Register the exact URI (scheme, host, port and path) under the app registration's "
        "Authentication blade, or make the app send the registered one. Behind a proxy, configure "
        "the app's external URL.",
        ("localhost vs 127.0.0.1", "http vs https", "a trailing slash", "a different port or path"),
    ),
    AadstsCode(
        700016,
        "unauthorized_client",
        "Application with identifier '{client_id}' was not found in the directory '{tenant}'. "
        "This can happen if the application has not been installed by the administrator of the "
        "tenant or consented to by any user in the tenant. You may have sent your authentication "
        "request to the wrong tenant.",
        "No application with this client id exists in the tenant the request went to.",
        "Check ENTRA_CLIENT_ID (the Application (client) ID, not the object id) and "
        "ENTRA_TENANT_ID; a single-tenant app must be used with its own tenant.",
    ),
    AadstsCode(
        90002,
        "invalid_tenant",
        "Tenant '{tenant}' not found. Check to make sure you have the correct tenant ID and are "
        "signing into the correct cloud. Check with your subscription administrator, this may "
        "happen if there are no active subscriptions for the tenant.",
        "The tenant in the authority URL does not exist.",
        "Set ENTRA_TENANT_ID to the Directory (tenant) ID or a verified domain of your tenant.",
    ),
    AadstsCode(
        7000215,
        "invalid_client",
        "Invalid client secret provided. Ensure the secret being sent in the request is the "
        "client secret value, not the client secret ID, for a secret added to app '{client_id}'.",
        "The client secret is wrong.",
        "Use the secret's Value (shown once, when it is created), not its Secret ID.",
    ),
    AadstsCode(
        7000222,
        "invalid_client",
        "The provided client secret keys for app '{client_id}' are expired. Visit the Azure "
        "portal to create new keys for your app: https://aka.ms/NewClientSecret, or consider "
        "using certificate credentials for added security: https://aka.ms/certCreds.",
        "The client secret has expired.",
        "Create a new client secret in the app registration and update ENTRA_CLIENT_SECRET.",
    ),
    AadstsCode(
        7000218,
        "invalid_client",
        "The request body must contain the following parameter: 'client_assertion' or "
        "'client_secret'.",
        "A confidential app sent no credential: it was built as a public client.",
        "Use msal.ConfidentialClientApplication with client_credential=<secret>.",
    ),
    AadstsCode(
        70008,
        "invalid_grant",
        "The provided authorization code or refresh token has expired due to inactivity. Send a "
        "new interactive authorization request for this user and resource.",
        "The authorization code or refresh token is past its lifetime.",
        "Sign the user in again; authorization codes live minutes, so redeem them at once.",
    ),
    AadstsCode(
        54005,
        "invalid_grant",
        "OAuth2 Authorization code was already redeemed, please retry with a new valid code or "
        "use an existing refresh token.",
        "The authorization code was redeemed before.",
        "Redeem each code once (a double submit or the back button replays it); start a new "
        "sign-in.",
    ),
    AadstsCode(
        501481,
        "invalid_grant",
        "The Code_Verifier does not match the code_challenge supplied in the authorization "
        "request.",
        "The PKCE code_verifier does not belong to this authorization code.",
        "Keep the flow (with its code_verifier) server-side in the session between the sign-in "
        "redirect and the callback.",
    ),
    AadstsCode(
        65001,
        "invalid_grant",
        "The user or administrator has not consented to use the application with ID "
        "'{client_id}' named '{app_name}'. Send an interactive authorization request for this "
        "user and resource.",
        "The user has not consented to a scope the request needs.",
        "Send the user through an interactive sign-in asking for the scope (incremental "
        "consent), or grant admin consent in the app registration.",
    ),
    AadstsCode(
        65004,
        "access_denied",
        "User declined to consent to access the app.",
        "The user pressed Cancel on the consent page.",
        "Explain why the app needs the permissions and offer to try again.",
    ),
    AadstsCode(
        90094,
        "access_denied",
        "Admin consent is required for the permissions requested by this application.",
        "A requested permission needs an administrator's consent.",
        "Ask an administrator to grant admin consent for the app.",
    ),
    AadstsCode(
        50126,
        "invalid_grant",
        "Error validating credentials due to invalid username or password.",
        "The username or password is wrong.",
        "Check the username and password.",
    ),
    AadstsCode(
        50105,
        "invalid_grant",
        "Your administrator has configured the application '{app_name}' ('{client_id}') to block "
        "users unless they are specifically granted ('assigned') access to the application.",
        "The app requires user assignment and the user is not assigned.",
        "Assign the user (or a group) to the app, or turn off 'Assignment required'.",
    ),
    AadstsCode(
        500011,
        "invalid_resource",
        "The resource principal named {resource} was not found in the tenant named {tenant}. "
        "This can happen if the application has not been installed by the administrator of the "
        "tenant or consented to by any user in the tenant. You might have sent your "
        "authentication request to the wrong tenant.",
        "The resource (API) in the scope does not exist in the tenant.",
        "Check the scope's App ID URI (api://...) or use the API's client id.",
    ),
    AadstsCode(
        70011,
        "invalid_scope",
        "The provided value for the input parameter 'scope' is not valid. The scope {scope} is "
        "not valid.",
        "A requested scope is malformed or not exposed by the API.",
        "Use 'api://<app-id-uri>/<scope>' for your API, Graph's scope names (User.Read), or "
        "'<resource>/.default' for client credentials.",
    ),
    AadstsCode(
        28000,
        "invalid_scope",
        "Provided value for the input parameter scope is not valid because it contains more "
        "than one resource. Scope {scope} is not valid.",
        "A token request named scopes of more than one API; a token is for one resource.",
        "Ask for one resource's scopes per token request; consent to several at sign-in.",
    ),
    AadstsCode(
        1002012,
        "invalid_scope",
        "The provided value for scope {scope} is not valid. Client credential flows must have a "
        "scope value with /.default suffixed to the resource identifier (application ID URI).",
        "Client credentials were requested for individual scopes.",
        "Request '<resource>/.default', e.g. 'https://graph.microsoft.com/.default'.",
    ),
    AadstsCode(
        700082,
        "invalid_grant",
        "The refresh token has expired due to inactivity. The token was issued on {issued} and "
        "was inactive for {inactive}.",
        "The refresh token was not used for longer than its inactivity lifetime.",
        "Sign the user in again.",
    ),
    AadstsCode(
        50173,
        "invalid_grant",
        "The provided grant has expired due to it being revoked, a fresh auth token is needed. "
        "The user might have changed or reset their password.",
        "The refresh token was revoked (password change, sign-out everywhere, admin action).",
        "Sign the user in again.",
    ),
    AadstsCode(
        90014,
        "invalid_request",
        "The required field '{field}' is missing from the credential. Ensure that you have all "
        "the necessary parameters for the login request.",
        "A required request parameter is missing.",
        "Send the parameter named in the message.",
    ),
    AadstsCode(
        9002313,
        "invalid_request",
        "Invalid request. Request is malformed or invalid. {detail}",
        "The request could not be parsed.",
        "Check the request's parameters: each once, well-formed, form-encoded.",
    ),
    AadstsCode(
        9002325,
        "invalid_request",
        "Proof Key for Code Exchange is required. {detail}",
        "The authorization request had no PKCE code_challenge with method S256.",
        "Send code_challenge and code_challenge_method=S256 (MSAL's initiate_auth_code_flow "
        "does this).",
    ),
    AadstsCode(
        50194,
        "invalid_request",
        "Application '{client_id}'({app_name}) is not configured as a multi-tenant application. "
        "Usage of the /common endpoint is not supported for such applications created after "
        "'10/15/2018'. Use a tenant-specific endpoint or configure the application to be "
        "multi-tenant.",
        "A single-tenant app used the /common or /organizations authority.",
        "Use the tenant-specific authority, or make the app multi-tenant.",
    ),
    AadstsCode(
        50058,
        "login_required",
        "A silent sign-in request was sent but no user is signed in.",
        "prompt=none was used and nobody is signed in at the identity provider.",
        "Send an interactive sign-in request.",
    ),
    AadstsCode(
        70000,
        "invalid_grant",
        "The provided value for the 'code' parameter is not valid.",
        "The authorization code is unknown, or was issued to another app or redirect URI.",
        "Start a new sign-in and redeem the code it returns, with the same redirect URI.",
    ),
    AadstsCode(
        70003,
        "unsupported_grant_type",
        "The app requested an unsupported grant type '{grant_type}'.",
        "The token endpoint does not support this grant type.",
        "Use authorization_code, refresh_token, client_credentials or password.",
    ),
    AadstsCode(
        900971,
        "invalid_request",
        "No reply address provided.",
        "The authorization request had no redirect_uri.",
        "Send the registered redirect_uri.",
    ),
    AadstsCode(
        700051,
        "unsupported_response_type",
        "response_type '{response_type}' is not enabled for the application.",
        "The app asked for a response type other than 'code'.",
        "Use the authorization code flow (response_type=code).",
    ),
)

CATALOGUE: dict[int, AadstsCode] = {entry.code: entry for entry in _CODES}

_CODE_IN_TEXT = re.compile(r"AADSTS(\d{4,8})", re.IGNORECASE)


def lookup(code: int | str) -> AadstsCode | None:
    """The catalogue entry for ``50011``, ``"50011"`` or ``"AADSTS50011"``; None when unknown."""
    if isinstance(code, str):
        match = _CODE_IN_TEXT.search(code)
        text = match.group(1) if match else code.strip()
        if not text.isdigit():
            return None
        code = int(text)
    return CATALOGUE.get(code)


def codes_in(text: str) -> list[int]:
    """Every AADSTS code named in a pasted error text, in order, without repeats."""
    seen: list[int] = []
    for match in _CODE_IN_TEXT.finditer(text):
        number = int(match.group(1))
        if number not in seen:
            seen.append(number)
    return seen
