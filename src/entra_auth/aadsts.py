"""The AADSTS error catalogue: what each Entra ID error code means and how to fix it.

One table serves two readers: the local Entra ID answers with ``message`` (Entra's own wording,
with ``{placeholders}``), and the diagnostics (``entra-auth explain``, error pages) show
``meaning``, ``causes`` and ``fix``. Written by hand because no library carries this knowledge.
"""

from __future__ import annotations

import re
from dataclasses import dataclass


@dataclass(frozen=True)
class ForUser:
    """What the person signing in is told about a code, in plain words: the error page's title,
    what happened, and what they can do. ``ask_admin``: only their organization can change it,
    so the page also says when it happened (the sign-in logs find it by time)."""

    title: str
    message: str
    remedy: str
    ask_admin: bool = False


@dataclass(frozen=True)
class AadstsCode:
    """One AADSTS code: the OAuth ``error`` value Entra pairs it with, and what to do about it.

    ``meaning``, ``causes`` and ``fix`` are for the app's developer (``entra-auth explain``, the
    folded details of an error page); ``user``, when set, is what the person signing in reads.
    """

    code: int
    error: str
    message: str
    meaning: str
    fix: str
    causes: tuple[str, ...] = ()
    user: ForUser | None = None

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


# What the person signing in reads, shared by the codes that mean the same to them. Plain words:
# no AADSTS number, no OAuth term; the developer's detail stays folded away on the page.
_IT = "your organization's IT department"
COMPLIANT_DEVICE = ForUser(
    "This device can't be used for this app",
    "Your organization requires a compliant device to use this app: one it manages, that "
    "meets its rules. This device isn't one, or its state couldn't be checked.",
    "Sign in from a device your organization manages, or ask " + _IT + " to enroll this one "
    "(for example in Intune or the Company Portal app), then try again.",
    ask_admin=True,
)
DOMAIN_JOINED_DEVICE = ForUser(
    "This device can't be used for this app",
    "Your organization requires a work device joined to its network to use this app, and this "
    "device isn't one.",
    "Sign in from your work computer, or ask " + _IT + " which devices may be used.",
    ask_admin=True,
)
REGISTERED_DEVICE = ForUser(
    "This device needs to be registered",
    "Your organization requires this device to be registered with it before you can use this "
    "app, and the device couldn't be verified.",
    "Register the device with your work or school account (on Windows: Settings → Accounts → "
    "Access work or school), or use a device that is, then try again. A private browser window "
    "can hide the device: use a normal one. If it keeps happening, ask " + _IT + ".",
    ask_admin=True,
)
DEVICE_DISABLED = ForUser(
    "This device has been disabled",
    "Your organization has disabled this device, so it can't be used to sign in.",
    "Use another device, or ask " + _IT + " to enable this one.",
    ask_admin=True,
)
APPROVED_APP = ForUser(
    "Use an approved app",
    "Your organization allows access to this only from apps it has approved, and this isn't "
    "one of them.",
    "Open it from an app your organization approves, or ask " + _IT + " which apps you may use.",
    ask_admin=True,
)
BLOCKED_BY_POLICY = ForUser(
    "Your organization blocked this sign-in",
    "Your organization's security policy doesn't allow this sign-in right now: because of where "
    "you are, the device or app you use, or something about the sign-in that looked risky.",
    "Try again from your usual place and device. If it keeps happening, ask " + _IT + ": they "
    "can see which policy blocked it.",
    ask_admin=True,
)
MFA_REQUIRED = ForUser(
    "An extra verification step is needed",
    "Your organization requires a second verification step (multi-factor authentication) for "
    "this app, and it wasn't completed.",
    "Try again, and complete the verification when you are asked: a code, a phone call or an "
    "approval in the Microsoft Authenticator app.",
)
MFA_REGISTRATION = ForUser(
    "Set up a verification method first",
    "Your organization requires you to set up a second verification method (multi-factor "
    "authentication) before you can sign in to this app.",
    "Try again: you'll be guided through setting one up (for example the Microsoft "
    "Authenticator app). If you can't, ask " + _IT + ".",
)
MFA_REGISTRATION_BLOCKED = ForUser(
    "You can't set up verification from here",
    "Your organization requires you to set up a second verification method, but doesn't allow "
    "that from this sign-in because it looked risky.",
    "Ask " + _IT + " to help you set it up, then sign in again.",
    ask_admin=True,
)
PASSWORD_EXPIRED = ForUser(
    "Your password has expired",
    "Your password has expired: change it, then sign in again.",
    "Try again: Microsoft's sign-in page offers to change it. If it doesn't, use your "
    "organization's password reset page or ask " + _IT + ".",
)
PASSWORD_CHANGE_REQUIRED = ForUser(
    "You need to change your password",
    "Your organization requires you to change your password before you sign in again, because "
    "your account may be at risk.",
    "Try again and change your password when you are asked. If you aren't asked, ask " + _IT + ".",
    ask_admin=True,
)
PASSWORD_RESET_SETUP = ForUser(
    "Finish setting up password reset",
    "The sign-in stopped so that you could set up how to reset your password.",
    "Try again and finish the set-up when you are asked.",
)
PASSWORD_NOT_CHECKED = ForUser(
    "We couldn't check your password",
    "Your password couldn't be checked for this sign-in.",
    "Try again and enter your password. If it keeps happening, ask " + _IT + ".",
)
SESSION_ENDED = ForUser(
    "Please sign in again",
    "Your sign-in ended because your password was changed or has expired.",
    "Sign in again (with your new password).",
)
SIGN_IN_AGAIN = ForUser(
    "Please sign in again",
    "Your organization requires you to sign in again after a while, and that time has come.",
    "Sign in again to continue.",
)
STAY_SIGNED_IN = ForUser(
    "The sign-in was interrupted",
    "The sign-in stopped at the “Stay signed in?” question.",
    "Try again and answer the question (either answer is fine).",
)
ACCOUNT_LOCKED = ForUser(
    "Your account is locked",
    "Your account is temporarily locked: there were too many sign-in attempts with a wrong "
    "password, or attempts from a suspicious place.",
    "Wait a few minutes and try again, or ask " + _IT + " to unlock it.",
    ask_admin=True,
)
ACCOUNT_DISABLED = ForUser(
    "Your account is disabled",
    "Your account has been disabled, so it can't sign in.",
    "Ask " + _IT + " to enable it.",
    ask_admin=True,
)
ACCOUNT_ELSEWHERE = ForUser(
    "This account can't sign in here",
    "The account you used doesn't belong to the organization that runs this app, and hasn't "
    "been invited to it.",
    "Sign in with your account at that organization, or ask its IT department to invite you as "
    "a guest. Signed in with the wrong account? Try again and pick another.",
)
ACCOUNT_NOT_FOUND = ForUser(
    "We couldn't find that account",
    "There is no account with that name in the organization that runs this app.",
    "Check the address you typed, or sign in with your account at that organization.",
)
ACCOUNT_TYPE = ForUser(
    "Use your work or school account",
    "This app accepts a different kind of account than the one you used (for example a work or "
    "school account, not a personal Microsoft account).",
    "Try again and sign in with your work or school account.",
)
CROSS_TENANT_BLOCKED = ForUser(
    "Your organization doesn't allow this",
    "The rules between your organization and the one that runs this app don't allow your "
    "account to sign in here.",
    "Ask " + _IT + ": their cross-organization access settings decide this.",
    ask_admin=True,
)
NOT_ASSIGNED = ForUser(
    "You don't have access to this app",
    "Your account hasn't been given access to this app.",
    "Ask the app's administrator to give you access, then sign in again.",
    ask_admin=True,
)
ADMIN_APPROVAL = ForUser(
    "This app needs an administrator's approval",
    "This app asks for permissions that only an administrator of your organization can grant.",
    "Ask " + _IT + " to approve the app, then try again.",
    ask_admin=True,
)

# The entries after "codes of real tenants" below quote the wording of Microsoft's reference
# ("Microsoft Entra authentication and authorization error codes",
# learn.microsoft.com/entra/identity-platform/reference-error-codes), its code names left out.
# The OAuth ``error`` follows this table's rule: interaction_required where the user can satisfy
# the code in an interactive sign-in, access_denied for a policy's block, invalid_grant for the
# account's or device's state (Entra's token endpoint answers invalid_grant for most of them).
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
        (
            "a Conditional Access policy or per-user MFA applies to this app or resource",
            "a sign-in from a new location or device",
            "a refresh token from a sign-in without MFA",
        ),
        user=MFA_REQUIRED,
    ),
    AadstsCode(
        50079,
        "interaction_required",
        "Due to a configuration change made by your administrator, or because you moved to a new "
        "location, you must enroll in multi-factor authentication to access '{resource}'.",
        "The user must register for multi-factor authentication first.",
        "Send the user through an interactive sign-in; they will be asked to register MFA.",
        (
            "MFA became required (Conditional Access, security defaults) for a user who has "
            "no method registered",
        ),
        user=MFA_REGISTRATION,
    ),
    AadstsCode(
        50074,
        "interaction_required",
        "Strong Authentication is required.",
        "A second factor is required and was not presented.",
        "Sign in interactively so the user can complete the second factor.",
        (
            "the user cancelled or failed the MFA prompt",
            "a silent request for an MFA-protected app",
        ),
        user=MFA_REQUIRED,
    ),
    AadstsCode(
        50158,
        "interaction_required",
        "External security challenge not satisfied. User will be redirected to another page or "
        "authentication provider to satisfy additional authentication challenges.",
        "A Conditional Access policy asked for more (a claims challenge).",
        "Sign in interactively, passing the claims challenge from the error to MSAL.",
        ("an external MFA provider or custom control the user did not complete",),
        user=MFA_REQUIRED,
    ),
    AadstsCode(
        53003,
        "access_denied",
        "Access has been blocked by Conditional Access policies. The access policy does not allow "
        "token issuance.",
        "A Conditional Access policy blocks this user, app, device or location.",
        "Ask the tenant's administrator which policy applies: the sign-in logs (Entra admin "
        "center → Monitoring & health → Sign-in logs → the failure → Conditional Access) name it.",
        (
            "a location or country the policy blocks",
            "an unmanaged device or an unapproved app",
            "a risky sign-in (Identity Protection)",
            "a legacy client",
        ),
        user=BLOCKED_BY_POLICY,
    ),
    AadstsCode(
        53000,
        "interaction_required",
        "Device is not in required device state: compliant. Conditional Access policy requires a "
        "compliant device, and the device is not compliant.",
        "Conditional Access requires a managed, compliant device.",
        "Sign in from a compliant (Intune-managed) device, or ask the administrator.",
        (
            "a personal or unenrolled device",
            "an enrolled device that fails a compliance rule",
            "a browser that does not pass the device identity (a private window; Chrome on "
            "Windows without Microsoft's sign-in extension)",
        ),
        user=COMPLIANT_DEVICE,
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
        user=ACCOUNT_ELSEWHERE,
    ),
    AadstsCode(
        50034,
        "invalid_grant",
        "The user account {user} does not exist in the {tenant} directory. To sign into this "
        "application, the account must be added to the directory.",
        "No such user in the directory.",
        "Check the username, or add the user to the tenant.",
        ("a mistyped username", "an app that sent the user to the wrong tenant"),
        user=ACCOUNT_NOT_FOUND,
    ),
    AadstsCode(
        50053,
        "invalid_grant",
        "Your account is locked because you've tried to sign in too many times with an incorrect "
        "user ID or password.",
        "The account is locked (too many failed attempts, or sign-in from a blocked address).",
        "Wait and try again, or ask an administrator to unlock the account.",
        (
            "repeated wrong passwords (smart lockout)",
            "sign-ins from an address with malicious activity",
        ),
        user=ACCOUNT_LOCKED,
    ),
    AadstsCode(
        50055,
        "invalid_grant",
        "The password is expired.",
        "The user's password has expired.",
        "Sign in interactively to change the password (Entra offers it), or reset it: self-service "
        "password reset, or an administrator.",
        ("the tenant's password expiration policy",),
        user=PASSWORD_EXPIRED,
    ),
    AadstsCode(
        50057,
        "invalid_grant",
        "The user account is disabled.",
        "The user account is disabled in the directory.",
        "Ask an administrator to enable the account.",
        ("an account blocked from sign-in", "a disabled on-premises account synchronized to Entra"),
        user=ACCOUNT_DISABLED,
    ),
    AadstsCode(
        50133,
        "invalid_grant",
        "Session is invalid due to expiration or recent password change.",
        "The session ended: the password changed or the session expired.",
        "Sign in again.",
        user=SESSION_ENDED,
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
        # Entra's full wording, as its answers show it (the reference has the first sentence).
        "Client assertion is not within its valid time range. Current time: {now}, assertion "
        "valid from {start}, expiry time of assertion {exp}. Review the documentation at "
        "https://docs.microsoft.com/azure/active-directory/develop/"
        "active-directory-certificate-credentials .",
        "The client assertion (a certificate's signed assertion, or a federated token such as "
        "a Kubernetes or GitHub token) is expired or not yet valid.",
        "Check the machine's clock; make a new assertion for each token request (MSAL does), "
        "and read a federated token from its file each time, not once at start.",
        (
            "a token file read once and kept past its expiry",
            "a clock that is minutes off",
            "exp missing (Entra reads it as 1970)",
        ),
    ),
    AadstsCode(
        700027,
        "invalid_client",
        # The reference says "Client assertion failed signature validation."; Entra's answers
        # say it this way, with the reason and the thumbprint the client named.
        "Client assertion contains an invalid signature. [Reason - {reason}, Thumbprint of "
        "key used by client: '{thumbprint}'{found}]",
        "The certificate named in the client assertion's header (x5t or x5t#S256) is not "
        "registered for the app, is expired, or did not make the signature.",
        "Upload the certificate (its public part) under Certificates & secrets of the app "
        "registration, and sign with its private key; renew an expired one.",
        (
            "the thumbprint of another certificate (an old one, another environment's)",
            "a private key that is not the certificate's",
            "an expired certificate",
        ),
    ),
    AadstsCode(
        700021,
        "invalid_client",
        "Client assertion application identifier doesn't match 'client_id' parameter. Review "
        "the documentation at https://docs.microsoft.com/en-us/azure/active-directory/develop/"
        "active-directory-certificate-credentials .",
        "The client assertion's iss and sub name another application than the request's client_id.",
        "Set iss and sub of the assertion to the app's client id (the Application (client) "
        "ID, not an object id); MSAL does it from the client id it is given.",
    ),
    AadstsCode(
        700023,
        "invalid_client",
        # The error-code reference lists 700023 as InvalidResourcelessScope; Entra's answers
        # (and Azure SDK's troubleshooting guides) use it for a client assertion's audience.
        "Client assertion audience claim does not match Realm issuer. Review the documentation "
        "at https://docs.microsoft.com/en-us/azure/active-directory/develop/"
        "active-directory-certificate-credentials .",
        "The client assertion's aud is not the token endpoint of the tenant the request went to.",
        "Set aud to https://login.microsoftonline.com/<tenant id>/oauth2/v2.0/token (the "
        "token_endpoint of the tenant's discovery document); MSAL does it from the authority.",
    ),
    AadstsCode(
        50048,
        "invalid_client",
        "Subject mismatches Issuer claim in the client assertion. Contact the tenant admin.",
        "The client assertion's sub and iss differ: in an app's own assertion both are its "
        "client id.",
        "Set both iss and sub to the app's client id.",
    ),
    AadstsCode(
        50013,
        "invalid_grant",
        # One code, a message per reason: "Assertion failed signature validation. [Reason -
        # ...]", "Assertion is not within its valid time range. ...", "Assertion audience does
        # not match the Client app presenting the assertion. ..." (Entra's answers).
        "Assertion {reason}",
        "The on-behalf-of flow's assertion (the token the middle-tier API received) was "
        "refused: its signature, its lifetime or its audience does not fit, or it is not a "
        "user's access token.",
        "Pass on the access token the client sent to this API: issued for this API (aud is its "
        "client id or App ID URI), not expired, a user's. Never a Microsoft Graph token, an ID "
        "token or an app-only token.",
        (
            "a Microsoft Graph token passed on: only Graph can verify its signature",
            "a token for another API (its aud is not the middle tier)",
            "an expired token kept in a session or cache",
            "an app-only token: the on-behalf-of flow needs a user",
        ),
    ),
    AadstsCode(
        50027,
        "invalid_request",
        "JWT token is invalid or malformed. {detail}",
        "The client assertion is not a well-formed JWT, lacks a claim Entra needs, or (a "
        "federated token) does not verify with its issuer's keys.",
        "Build the assertion with MSAL or a JWT library: header alg PS256 and x5t#S256, claims "
        "aud, iss, sub, jti and exp (Microsoft Learn, certificate credentials).",
    ),
    AadstsCode(
        70021,
        "invalid_client",
        "No matching federated identity record found for presented assertion. Assertion "
        "Issuer: '{issuer}'. Assertion Subject: '{subject}'. Assertion Audience: "
        "'{audience}'. https://docs.microsoft.com/en-us/azure/active-directory/develop/"
        "workload-identity-federation",
        "The app has no federated identity credential for the token it presented.",
        "Add a federated identity credential to the app registration with the token's issuer, "
        "subject and audience exactly (a new one takes minutes to reach every region).",
    ),
    AadstsCode(
        700211,
        "invalid_client",
        "No matching federated identity record found for presented assertion issuer "
        "'{issuer}'. Please check your federated identity credential Subject, Audience and "
        "Issuer against the presented assertion. https://docs.microsoft.com/en-us/azure/"
        "active-directory/develop/workload-identity-federation",
        "No federated identity credential of the app names the issuer of the token presented.",
        "Register the issuer exactly as the token's iss claim (scheme, host, path, trailing "
        "slash), such as the cluster's OIDC issuer URL.",
    ),
    AadstsCode(
        700212,
        "invalid_client",
        "No matching federated identity record found for presented assertion audience "
        "'{audience}'. Please check your federated identity credential Subject, Audience and "
        "Issuer against the presented assertion. https://docs.microsoft.com/en-us/azure/"
        "active-directory/develop/workload-identity-federation",
        "The token's aud is not the audience of the federated identity credential matching its "
        "issuer and subject.",
        "Request the token for api://AzureADTokenExchange (a projected service-account token's "
        "audience, GitHub's audience input), or register the audience the token has.",
    ),
    AadstsCode(
        700213,
        "invalid_client",
        "No matching federated identity record found for presented assertion subject "
        "'{subject}'. Please check your federated identity credential Subject, Audience and "
        "Issuer against the presented assertion. https://docs.microsoft.com/en-us/azure/"
        "active-directory/develop/workload-identity-federation",
        "No federated identity credential with the token's issuer has its subject (compared "
        "exactly, case included).",
        "Register the subject exactly as the token's sub claim, such as "
        "system:serviceaccount:<namespace>:<service account> or repo:<owner>/<repo>:ref:<ref>.",
    ),
    AadstsCode(
        700030,
        "invalid_client",
        "Invalid certificate - subject name in certificate isn't authorized. "
        "SubjectNames/SubjectAlternativeNames (up to 10) in token certificate are: "
        "{subjects}.",
        "The certificate sent in the assertion's x5c (subject name and issuer authentication) "
        "has a subject the app does not trust.",
        "Add the subject to the app's trustedCertificateSubjects, or sign with a certificate "
        "uploaded to the app.",
    ),
    AadstsCode(
        50012,
        "invalid_client",
        "Authentication failed: {reason}",
        "Subject name and issuer authentication failed: the certificate of the assertion's x5c "
        "is not issued by the authority trusted for its subject, or is not valid now.",
        "Send the full chain in x5c (MSAL: public_certificate), issued by the authority "
        "configured for the subject; renew an expired certificate.",
    ),
    AadstsCode(
        700025,
        "invalid_client",
        "Client is public so neither 'client_assertion' nor 'client_secret' should be presented.",
        "A secret was sent for an app registered as a public client.",
        "Use a confidential (web) registration for a server app, or send no secret.",
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
        user=ADMIN_APPROVAL,
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
        user=NOT_ASSIGNED,
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
    # -- From here on: codes of real tenants, in the wording of Microsoft's reference ----------
    # Conditional Access
    AadstsCode(
        53001,
        "interaction_required",
        "Conditional Access policy requires a domain joined device, and the device isn't domain "
        "joined. Have the user use a domain joined device.",
        "Conditional Access requires a domain-joined (Microsoft Entra hybrid joined) device.",
        "Sign in from a device joined to the organization's domain; the administrator sees the "
        "policy in the sign-in logs.",
        (
            "a personal or cloud-only device",
            "a browser that does not pass the device identity (a private window; Chrome on "
            "Windows without Microsoft's sign-in extension)",
        ),
        user=DOMAIN_JOINED_DEVICE,
    ),
    AadstsCode(
        53002,
        "access_denied",
        "The app used isn't an approved app for Conditional Access. User needs to use one of the "
        "apps from the list of approved apps to use in order to get access.",
        "Conditional Access allows this resource only from approved client apps (or apps with an "
        "app protection policy), and the client is not one.",
        "Use an approved client app; an administrator decides whether this app should be one "
        "(the sign-in logs name the policy).",
        ("a mobile browser or third-party app where the policy wants a Microsoft app",),
        user=APPROVED_APP,
    ),
    AadstsCode(
        530032,
        "access_denied",
        "The tenant admin has configured a security policy that blocks this request. Check the "
        "security policies that are defined on the tenant level to determine if your request "
        "meets the policy requirements.",
        "A tenant-level security policy blocked the request.",
        "Ask the tenant's administrator which policy applies (the sign-in logs show it) and "
        "whether the request can meet it.",
        user=BLOCKED_BY_POLICY,
    ),
    AadstsCode(
        530035,
        "access_denied",
        "Access has been blocked by security defaults. This is due to the request using legacy "
        "auth or being deemed unsafe by security defaults policies.",
        "The tenant's security defaults blocked the request: legacy authentication, or a sign-in "
        "they deem unsafe.",
        "Use modern authentication (MSAL does) and let the user complete MFA interactively; the "
        "administrator can review it in the sign-in logs.",
        ("a legacy protocol or client", "a sign-in without the MFA security defaults require"),
        user=BLOCKED_BY_POLICY,
    ),
    AadstsCode(
        50131,
        "access_denied",
        "Indicates various Conditional Access errors such as bad Windows device state, request "
        "blocked due to suspicious activity, access policy, or security policy decisions.",
        "Conditional Access refused the sign-in (device state, suspicious activity, or a policy).",
        "Ask the tenant's administrator: the sign-in logs give the failure reason and the policy.",
        user=BLOCKED_BY_POLICY,
    ),
    AadstsCode(
        50005,
        "access_denied",
        "User tried to sign in to a device from a platform not currently supported through "
        "Conditional Access policy.",
        "Conditional Access does not allow the device platform the user signs in from.",
        "Sign in from a platform the policy allows, or ask the administrator to include it.",
        ("a device platform (OS) the policy excludes or cannot identify",),
        user=BLOCKED_BY_POLICY,
    ),
    AadstsCode(
        53011,
        "access_denied",
        "User blocked due to risk on home tenant.",
        "A guest's home tenant judged the user risky, and this tenant blocks risky users.",
        "The user's home organization remediates the risk (password change, risk dismissed).",
        user=CROSS_TENANT_BLOCKED,
    ),
    AadstsCode(
        70043,
        "invalid_grant",
        "The refresh token has expired or is invalid due to sign-in frequency checks by "
        "Conditional Access. The token was issued on {issued} and the maximum allowed lifetime "
        "for this request is {lifetime}.",
        "Conditional Access's sign-in frequency requires the user to sign in again.",
        "Send the user through an interactive sign-in; a silent refresh cannot satisfy sign-in "
        "frequency.",
        user=SIGN_IN_AGAIN,
    ),
    # Multi-factor authentication and its registration
    AadstsCode(
        50072,
        "interaction_required",
        "User needs to enroll for second factor authentication (interactive).",
        "The user must register a multi-factor authentication method, interactively.",
        "Send the user through an interactive sign-in; Entra asks them to register a method.",
        user=MFA_REGISTRATION,
    ),
    AadstsCode(
        50078,
        "interaction_required",
        "Presented multifactor authentication has expired due to policies configured by your "
        "administrator. You must refresh your multifactor authentication to access '{resource}'.",
        "The user's earlier MFA is too old for the policy: it must be done again.",
        "Send the user through an interactive sign-in with the claims challenge, to redo MFA.",
        user=MFA_REQUIRED,
    ),
    AadstsCode(
        53004,
        "access_denied",
        "User needs to complete the multifactor authentication registration process before "
        "accessing this content. User should register for multifactor authentication.",
        "MFA registration is required, but blocked for this sign-in because it is risky.",
        "An administrator helps the user register (or remediates the risk); registering from a "
        "trusted place or device may be allowed.",
        user=MFA_REGISTRATION_BLOCKED,
    ),
    # Device state and device authentication
    AadstsCode(
        50097,
        "interaction_required",
        "Device authentication is required.",
        "The sign-in needs the device's identity (a registered or joined device), and none was "
        "presented.",
        "Sign in from a registered or joined device, in a browser that passes its identity.",
        (
            "an unregistered device",
            "a private window, or a browser without the device identity (Chrome on Windows "
            "without Microsoft's sign-in extension)",
        ),
        user=REGISTERED_DEVICE,
    ),
    AadstsCode(
        50129,
        "interaction_required",
        "Workplace join is required to register the device.",
        "The device must be registered (workplace joined) with the organization first.",
        "Register the device with the work or school account, then sign in again.",
        user=REGISTERED_DEVICE,
    ),
    AadstsCode(
        50155,
        "invalid_grant",
        "Device authentication failed for this user.",
        "The device presented its identity, and it failed.",
        "Re-register the device, or ask the administrator (the device may be deleted or "
        "disabled in the directory).",
        user=REGISTERED_DEVICE,
    ),
    AadstsCode(
        50187,
        "invalid_grant",
        "The service failed to perform device authentication.",
        "Device authentication could not be performed: no device information came with the "
        "sign-in.",
        "Sign in from a registered device, in a browser that passes its identity.",
        user=REGISTERED_DEVICE,
    ),
    AadstsCode(
        50099,
        "invalid_grant",
        "The JWT signature is invalid.",
        "Device authentication (PKeyAuth) failed: the device's signed proof did not verify.",
        "Re-register the device with the organization, or ask the administrator.",
        user=REGISTERED_DEVICE,
    ),
    AadstsCode(
        135011,
        "invalid_grant",
        "Device used during the authentication is disabled.",
        "The device is disabled in the directory.",
        "An administrator enables the device again (Entra admin center → Devices), or the user "
        "signs in from another.",
        user=DEVICE_DISABLED,
    ),
    # Passwords
    AadstsCode(
        50056,
        "invalid_grant",
        "Invalid or null password: password doesn't exist in the directory for this user. The "
        "user should be asked to enter their password again.",
        "The directory holds no password for this user, so it could not be checked.",
        "Ask the user to enter the password again; if it persists, an administrator sets or "
        "resets it.",
        user=PASSWORD_NOT_CHECKED,
    ),
    AadstsCode(
        50144,
        "invalid_grant",
        "User's Active Directory password has expired. Generate a new password for the user or "
        "have the user use the self-service reset tool to reset their password.",
        "The user's on-premises Active Directory password has expired.",
        "Reset the password (self-service password reset, or an administrator).",
        user=PASSWORD_EXPIRED,
    ),
    AadstsCode(
        50135,
        "interaction_required",
        "Password change is required due to account risk.",
        "Identity Protection judged the account at risk and requires a password change.",
        "Sign the user in interactively to change the password, or an administrator resets it.",
        user=PASSWORD_CHANGE_REQUIRED,
    ),
    AadstsCode(
        50125,
        "interaction_required",
        "Sign-in was interrupted because of a password reset or password registration entry.",
        "The sign-in stopped so the user could register for (or finish) password reset.",
        "Send the user through an interactive sign-in again.",
        user=PASSWORD_RESET_SETUP,
    ),
    AadstsCode(
        50132,
        "invalid_grant",
        "The session isn't valid due to password expiration or recent password change.",
        "The session ended: the password expired or was changed.",
        "Sign the user in again.",
        user=SESSION_ENDED,
    ),
    # "Keep me signed in"
    AadstsCode(
        50140,
        "interaction_required",
        'This error occurred due to "Keep me signed in" interrupt when the user was '
        "signing-in. This is an expected part of the sign in flow, where a user is asked if they "
        "want to remain signed into their current browser to make further logins easier.",
        'The "Stay signed in?" question interrupted the sign-in: an expected step, logged as '
        "an interrupt, not a failure.",
        "Nothing to change in the app; if it reaches the app, sign in again.",
        user=STAY_SIGNED_IN,
    ),
    # Accounts: from another tenant, of another kind, not here
    AadstsCode(
        51004,
        "invalid_grant",
        "The user account doesn't exist in the directory. An application likely chose the wrong "
        "tenant to sign into, and the currently logged in user was prevented from doing so since "
        "they did not exist in your tenant.",
        "The user does not exist in the tenant the app signs in to.",
        "Sign in to the user's own tenant, or add the user as a guest.",
        user=ACCOUNT_ELSEWHERE,
    ),
    AadstsCode(
        90072,
        "invalid_grant",
        "The external account that the user signs in with doesn't exist on the tenant that they "
        "signed into; so the user can't satisfy the MFA requirements for the tenant.",
        "The account is not in this tenant (not even as a guest), so it cannot do this tenant's "
        "MFA.",
        "Add the user as a guest (B2B invitation), or sign in with an account of this tenant.",
        ("an uninvited external account", "a synchronized user whose ImmutableID does not match"),
        user=ACCOUNT_ELSEWHERE,
    ),
    AadstsCode(
        500208,
        "invalid_request",
        "The domain is not a valid login domain for the account type.",
        "The account is of a kind the tenant does not accept (e.g. a personal Microsoft account "
        "where only work or school accounts may sign in).",
        "Sign in with a work or school account of the tenant, or change the app's supported "
        "account types.",
        user=ACCOUNT_TYPE,
    ),
    AadstsCode(
        500212,
        "access_denied",
        "The user's administrator has set an outbound access policy that doesn't allow access to "
        "the resource tenant.",
        "The user's home tenant's cross-tenant access settings do not allow this tenant.",
        "The user's administrator allows this tenant (or this app) in the outbound cross-tenant "
        "access settings.",
        user=CROSS_TENANT_BLOCKED,
    ),
    AadstsCode(
        500213,
        "access_denied",
        "The resource tenant's cross-tenant access policy doesn't allow this user to access this "
        "tenant.",
        "This tenant's inbound cross-tenant access settings do not allow the user's tenant.",
        "This tenant's administrator allows the user's organization (or this app) in the "
        "inbound cross-tenant access settings.",
        user=CROSS_TENANT_BLOCKED,
    ),
    # PKCE and single-page apps, in Entra's own words (learn.microsoft.com error-code reference
    # and the answers developers quote from login.microsoftonline.com).
    AadstsCode(
        9002325,
        "invalid_request",
        "Proof Key for Code Exchange is required for cross-origin authorization code redemption.",
        "A single-page app's authorization request (a redirect URI of the SPA platform) "
        "had no PKCE code_challenge.",
        "Send code_challenge (S256) with the request, as MSAL.js does; or register the "
        "redirect URI under the Web platform if a server redeems the code.",
    ),
    AadstsCode(
        9002326,
        "invalid_request",
        "Cross-origin token redemption is permitted only for the 'Single-Page Application' "
        "client-type. Request origin: '{origin}'.",
        "A token request came from a browser (it had an Origin header) for a grant that "
        "was not issued to a redirect URI of the SPA platform.",
        "Redeem the code on the server (a web app), or register the redirect URI under the "
        "Single-page application platform.",
    ),
    AadstsCode(
        9002327,
        "invalid_request",
        "Tokens issued for the 'Single-Page Application' client-type may only be redeemed "
        "via cross-origin requests.",
        "A code or refresh token issued to a single-page app was redeemed without an Origin "
        "header (from a server, not the browser).",
        "Redeem it in the browser (MSAL.js), or register the redirect URI under the Web "
        "platform and redeem it on the server with the app's credential.",
    ),
    AadstsCode(
        50148,
        "invalid_grant",
        "The code_verifier does not match the code_challenge supplied in the authorization "
        "request for PKCE.",
        "PKCE was used on one leg only: a code_verifier for a code requested without a "
        "code_challenge, or none for a code requested with one.",
        "Send code_challenge in the authorization request and its code_verifier when "
        "redeeming the code, or neither.",
    ),
    AadstsCode(
        50149,
        "invalid_request",
        "Invalid Code_Challenge_method parameter.",
        "code_challenge_method is neither S256 nor plain.",
        "Send code_challenge_method=S256 (or plain, or leave it out for plain).",
    ),
    AadstsCode(
        501491,
        "invalid_request",
        "Invalid size of Code_Challenge parameter.",
        "The PKCE code_challenge has the wrong size: an S256 challenge is 43 characters "
        "(base64url, no '=' padding), a plain one 43 to 128.",
        "Encode the SHA-256 of the verifier as base64url without padding.",
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
