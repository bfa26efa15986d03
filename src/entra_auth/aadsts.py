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

# Microsoft's own error-code lookup: "Microsoft Entra authentication and authorization error
# codes" (learn.microsoft.com/entra/identity-platform/reference-error-codes) documents it, and
# linking straight to one code by appending ?code=<number>. Codes change; this page is current.
ERROR_LOOKUP = "https://login.microsoftonline.com/error"


def lookup_url(code: int) -> str:
    """Microsoft's page for one AADSTS code: ``https://login.microsoftonline.com/error?code=N``."""
    return f"{ERROR_LOOKUP}?code={int(code)}"


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
        # ENTRA_TENANT_ID must be a GUID: a domain belongs only in the authority's path.
        "Put your tenant in the authority: ENTRA_AUTHORITY=https://login.microsoftonline.com/"
        "<Directory (tenant) ID or a verified domain>, or ENTRA_TENANT_ID=<Directory (tenant) "
        "ID> (the Overview page in the Entra admin center).",
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
        50076,
        "interaction_required",
        "Due to a configuration change made by your administrator, or because you moved to a new "
        "location, you must use multi-factor authentication to access '{resource}'.",
        "Conditional Access requires multi-factor authentication for this sign-in.",
        "Send the user through an interactive sign-in, passing the 'claims' challenge the error "
        "carries; silent refresh cannot satisfy MFA.",
    ),
    AadstsCode(
        50079,
        "interaction_required",
        "Due to a configuration change made by your administrator, or because you moved to a new "
        "location, you must enroll in multi-factor authentication to access '{resource}'.",
        "The user must register for multi-factor authentication first.",
        "Send the user through an interactive sign-in; they will be asked to register MFA.",
    ),
    AadstsCode(
        50074,
        "interaction_required",
        "Strong Authentication is required.",
        "A second factor is required and was not presented.",
        "Sign in interactively so the user can complete the second factor.",
    ),
    AadstsCode(
        50158,
        "interaction_required",
        "External security challenge not satisfied. User will be redirected to another page or "
        "authentication provider to satisfy additional authentication challenges.",
        "A Conditional Access policy asked for more (a claims challenge).",
        "Sign in interactively, passing the claims challenge from the error to MSAL.",
    ),
    AadstsCode(
        53003,
        "access_denied",
        "Access has been blocked by Conditional Access policies. The access policy does not allow "
        "token issuance.",
        "A Conditional Access policy blocks this user, app, device or location.",
        "Ask the tenant's administrator which policy applies (sign-in logs show it).",
    ),
    AadstsCode(
        53000,
        "interaction_required",
        "Device is not in required device state: compliant. Conditional Access policy requires a "
        "compliant device, and the device is not compliant.",
        "Conditional Access requires a managed, compliant device.",
        "Sign in from a compliant (Intune-managed) device, or ask the administrator.",
    ),
    AadstsCode(
        50020,
        "invalid_request",
        "User account '{user}' from identity provider '{idp}' does not exist in tenant '{tenant}' "
        "and cannot access the application '{client_id}' in that tenant.",
        "The account belongs to another tenant and is not a guest in this one.",
        "Invite the user as a guest, or make the app multi-tenant and use the /organizations "
        "authority.",
        ("a personal Microsoft account on a work-only app", "signing in to the wrong tenant"),
    ),
    AadstsCode(
        50034,
        "invalid_grant",
        "The user account {user} does not exist in the {tenant} directory. To sign into this "
        "application, the account must be added to the directory.",
        "No such user in the directory.",
        "Check the username, or add the user to the tenant.",
    ),
    AadstsCode(
        50053,
        "invalid_grant",
        "Your account is locked because you've tried to sign in too many times with an incorrect "
        "user ID or password.",
        "The account is locked (too many failed attempts, or sign-in from a blocked address).",
        "Wait and try again, or ask an administrator to unlock the account.",
    ),
    AadstsCode(
        50055,
        "invalid_grant",
        "The password is expired.",
        "The user's password has expired.",
        "Sign in interactively to change the password.",
    ),
    AadstsCode(
        50057,
        "invalid_grant",
        "The user account is disabled.",
        "The user account is disabled in the directory.",
        "Ask an administrator to enable the account.",
    ),
    AadstsCode(
        50133,
        "invalid_grant",
        "Session is invalid due to expiration or recent password change.",
        "The session ended: the password changed or the session expired.",
        "Sign in again.",
    ),
    AadstsCode(
        16000,
        "interaction_required",
        "User account '{user}' from identity provider '{idp}' does not exist in tenant '{tenant}' "
        "and cannot access the application.",
        "The selected account cannot be used here; the user must pick or sign in again.",
        "Sign in interactively with prompt=select_account.",
    ),
    AadstsCode(
        70001,
        "unauthorized_client",
        "The application named {app_name} was not found in the tenant named {tenant}.",
        "The app is disabled or missing in this tenant.",
        "Check that the app (its service principal) exists and is enabled in the tenant.",
    ),
    AadstsCode(
        7000112,
        "unauthorized_client",
        "Application '{client_id}'({app_name}) is disabled.",
        "The app's service principal is disabled.",
        "Enable the app in Enterprise applications → Properties (Enabled for users to sign-in).",
    ),
    AadstsCode(
        700054,
        "unsupported_response_type",
        "response_type 'id_token' is not enabled for the application.",
        "The app asked for an ID token from the authorize endpoint (implicit flow) without it "
        "being enabled.",
        "Use the authorization code flow (MSAL does), or enable ID tokens under Authentication.",
    ),
    AadstsCode(
        700024,
        "invalid_client",
        "Client assertion is not within its valid time range.",
        "The certificate credential's signed assertion is expired or not yet valid.",
        "Check the server's clock; assertions live minutes.",
    ),
    AadstsCode(
        700027,
        "invalid_client",
        "Client assertion failed signature validation.",
        "The certificate used to sign the client assertion is not registered for the app.",
        "Upload the certificate's public key to the app registration, or use the right one.",
    ),
    AadstsCode(
        700025,
        "invalid_client",
        "Client is public so neither 'client_assertion' nor 'client_secret' should be presented.",
        "A secret was sent for an app registered as a public client.",
        "Use a confidential (web) registration for a server app, or send no secret.",
    ),
    AadstsCode(
        9002326,
        "invalid_request",
        "Cross-origin token redemption is permitted only for the 'Single-Page Application' "
        "client-type.",
        "A browser redeemed a code for a redirect URI registered as Web, not SPA.",
        "Redeem codes server-side (a web app), or register the redirect URI as SPA.",
    ),
    AadstsCode(
        900144,
        "invalid_request",
        "The request body must contain the following parameter: '{field}'.",
        "A required body parameter is missing.",
        "Send the parameter named in the message (MSAL does this for you).",
    ),
    AadstsCode(
        50059,
        "invalid_request",
        "No tenant-identifying information found in either the request or implied by any "
        "provided credentials.",
        "The request reached /common without anything that names a tenant.",
        "Use a tenant-specific authority (https://login.microsoftonline.com/<tenant id>).",
    ),
    AadstsCode(
        50128,
        "invalid_request",
        "Invalid domain name - No tenant-identifying information found in either the request or "
        "implied by any provided credentials.",
        "The tenant name in the authority is not a known domain.",
        "Use the tenant's GUID or a verified domain in ENTRA_AUTHORITY.",
    ),
    AadstsCode(
        90009,
        "invalid_request",
        "Application '{client_id}'({app_name}) is requesting a token for itself. This scenario is "
        "supported only if resource is specified using the GUID based App ID.",
        "The app asked for a token for itself by App ID URI.",
        "Use the API's client id (GUID) as the resource, or a different API registration.",
    ),
    AadstsCode(
        50001,
        "invalid_resource",
        "The application named {resource} was not found in the tenant named {tenant}.",
        "The resource (API) is disabled or does not exist in the tenant.",
        "Check the API's App ID URI in the scope, and that its app is in this tenant.",
    ),
    AadstsCode(
        50196,
        "invalid_request",
        "The server terminated an operation because it encountered a client request loop.",
        "The client sent the same request many times in a short while.",
        "Cache tokens (MSAL does) instead of requesting a new one per call; check for a "
        "sign-in redirect loop.",
    ),
    AadstsCode(
        700084,
        "invalid_grant",
        "The refresh token was issued to a single page app (SPA), and therefore has a fixed, "
        "limited lifetime of 1.00:00:00, which cannot be extended.",
        "A SPA's refresh token reached its 24-hour lifetime.",
        "Sign in again (a server-side web app gets longer-lived refresh tokens).",
    ),
    AadstsCode(
        50089,
        "invalid_grant",
        "Flow token expired - Authentication Failed.",
        "The sign-in page was left open too long.",
        "Start the sign-in again.",
    ),
    AadstsCode(
        650052,
        "invalid_client",
        "The app needs access to a service ('{resource}') that your organization '{tenant}' has "
        "not subscribed to or enabled.",
        "The API's service principal is missing from this tenant.",
        "Ask an administrator to add (consent to) the API in this tenant.",
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

_CODE_IN_TEXT = re.compile(r"AADSTS([0-9]{4,8})", re.IGNORECASE)
_DIGITS = re.compile(r"[0-9]{1,8}")


def lookup(code: int | str) -> AadstsCode | None:
    """The catalogue entry for ``50011``, ``"50011"`` or ``"AADSTS50011"``; None when unknown."""
    if isinstance(code, str):
        match = _CODE_IN_TEXT.search(code)
        text = match.group(1) if match else code.strip()
        if not _DIGITS.fullmatch(text):  # ASCII digits only: "²".isdigit() is true
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


def first_code(error_codes: object, description: object = "") -> int | None:
    """The first AADSTS code of an error answer: from ``error_codes`` (Entra sends a JSON list
    of numbers; a redirect carries text) or else from the description. Whatever the values
    hold, this returns a number of at most 8 digits or None, never raises."""
    for item in error_codes if isinstance(error_codes, list) else [error_codes]:
        if type(item) is int and 0 < item < 10**8:
            return item
        if isinstance(item, str):
            found = re.search(r"[0-9]{1,8}", item[:64])
            if found:
                return int(found.group())
    codes = codes_in(description[:4096]) if isinstance(description, str) else []
    return codes[0] if codes else None
