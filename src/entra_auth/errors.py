"""One exception family for the whole toolkit.

Every error says what happened (the message) and what to do next (``remedy``), and carries a
stable ``code`` that the command line, the Flask error pages and the API's ``error_description``
share. Messages never contain a token, an authorization code, a secret or a cookie value.
"""

from __future__ import annotations


class EntraAuthError(Exception):
    """Base class of every error raised by entra-auth."""

    code: str = "entra_auth_error"
    default_remedy: str = ""

    def __init__(self, message: str, *, remedy: str | None = None, code: str | None = None):
        super().__init__(message)
        self.message = message
        self.remedy = remedy if remedy is not None else self.default_remedy
        if code is not None:
            self.code = code

    def __str__(self) -> str:
        if self.remedy:
            return f"{self.message} What to do: {self.remedy}"
        return self.message


class ConfigurationError(EntraAuthError):
    """The configuration is missing a value or holds one of the wrong shape."""

    code = "configuration_error"
    default_remedy = (
        "Fix the named setting (environment, .env or app.config); `entra-auth doctor` checks "
        "them all."
    )


class MissingSettingError(ConfigurationError):
    """Settings a feature needs are not set. ``missing`` names each of them at once (a pair
    that either satisfies reads ``"ENTRA_AUTHORITY (or ENTRA_TENANT_ID)"``); ``sources`` says
    where they were looked for (``app.config``, the environment, a ``.env`` file …)."""

    code = "missing_setting"
    default_remedy = (
        "Set each named setting where the app reads it (app.config or the environment); "
        "`entra-auth doctor` lists every one that is missing."
    )

    def __init__(
        self,
        message: str,
        *,
        missing: tuple[str, ...],
        sources: tuple[str, ...] = (),
        remedy: str | None = None,
    ):
        super().__init__(message, remedy=remedy)
        self.missing, self.sources = missing, sources


class EmulatorError(EntraAuthError):
    """The local Entra ID could not start or was asked for something it does not have."""

    code = "emulator_error"
    default_remedy = "See the message; `entra-auth emulator --help` lists the options."


class InvalidTokenError(EntraAuthError):
    """A token was refused. ``reason`` is a stable short code (``expired``, ``wrong_audience``…).

    The message says why in words a developer acts on; it never contains the token.
    """

    code = "invalid_token"
    default_remedy = (
        "Send an access token issued for this API by the configured tenant; `entra-auth decode "
        "--verify` says why a token is refused."
    )

    def __init__(self, message: str, *, reason: str, remedy: str | None = None):
        super().__init__(message, remedy=remedy)
        self.reason = reason


class InsufficientScopeError(EntraAuthError):
    """A valid token lacks a scope or app role the endpoint requires (HTTP 403)."""

    code = "insufficient_scope"
    default_remedy = "Request a token with the scopes (or app roles) the endpoint requires."

    def __init__(
        self,
        message: str,
        *,
        scopes: tuple[str, ...] = (),
        roles: tuple[str, ...] = (),
        remedy: str | None = None,
    ):
        super().__init__(message, remedy=remedy)
        self.scopes = scopes
        self.roles = roles


class InvalidRequestError(EntraAuthError):
    """The request carried its credentials wrongly (two Authorization headers, a bad scheme…)."""

    code = "invalid_request"
    default_remedy = "Send one header: Authorization: Bearer <access token>."


class ProviderUnavailableError(EntraAuthError):
    """The identity provider cannot be reached or is not answering now (HTTP 503).

    ``retry_after`` is the seconds the provider asked for (``Retry-After``), when it said;
    ``host``, ``step`` (discovery, sign-in start, code redemption, silent refresh, consent,
    Graph, sign-out) and ``cause`` (DNS name does not resolve, connection refused, timed out
    after N s, HTTP 503…) are for the operator's log. None of them holds a token, a code, a
    secret or a cookie; ``cause`` is built from our own words and numbers, never the body.
    """

    code = "provider_unavailable"
    http_status = 503  # what a web page or API answers
    default_remedy = "Try again in a moment; nothing was lost."

    def __init__(
        self,
        message: str,
        *,
        remedy: str | None = None,
        code: str | None = None,
        retry_after: int | None = None,
        host: str = "",
        step: str = "",
        cause: str = "",
    ):
        super().__init__(message, remedy=remedy, code=code)
        self.retry_after, self.host, self.step, self.cause = retry_after, host, step, cause


class ProviderResponseError(ProviderUnavailableError):
    """The identity provider answered, but with nonsense: HTML, garbage, not JSON (HTTP 502).

    A subclass of the unavailable error because the user's way out is the same (try again
    later), while the operator's is not: a proxy or captive portal answering for the provider.
    """

    code = "provider_bad_response"
    http_status = 502
    default_remedy = (
        "Try again in a moment. If it persists, something between this server and the identity "
        "provider (a proxy, a captive portal) answers in its place."
    )


class KeySetUnavailableError(ProviderUnavailableError):
    """The identity provider's metadata or signing keys cannot be had: refuse, never accept.

    One of the provider-unavailable family, so web pages and APIs answer it the same way (503).
    """

    code = "key_set_unavailable"
    default_remedy = (
        "Check that the authority is reachable from this server (network, proxy, ENTRA_CA_BUNDLE)."
    )


class _RefusedByEntra(EntraAuthError):
    """An error the identity provider may have given a code for: ``aadsts`` (or None)."""

    code = "refused_by_entra"
    default_remedy = "`entra-auth explain` reads the AADSTS code and says what to do."

    def __init__(
        self,
        message: str,
        *,
        remedy: str | None = None,
        aadsts: int | None = None,
        code: str | None = None,
    ):
        super().__init__(message, remedy=remedy, code=code)
        self.aadsts = aadsts


class SignInError(_RefusedByEntra):
    """The sign-in did not complete: an IdP error, a refused ID token, a bad callback.

    ``aadsts`` holds the AADSTS code when the identity provider sent one.
    """

    code = "sign_in_failed"
    default_remedy = (
        "Start the sign-in again from the app; `entra-auth explain` reads any AADSTS code."
    )


class AppTokenError(_RefusedByEntra):
    """Entra ID refused the app's own token request (client credentials, a managed identity):
    the credential, the app or the scope is wrong. ``aadsts`` holds Entra's code, and the
    message and remedy are that code's, from the catalogue (``entra-auth explain``)."""

    code = "app_token_failed"
    default_remedy = "Check the app's credential and the scope; `entra-auth doctor` checks both."


class InteractionRequired(EntraAuthError):
    """No token can be had silently: the user must go through the sign-in page (again).

    Raised by ``get_token``; the web integration answers it with a sign-in for ``scopes`` that
    returns to the same page.
    """

    code = "interaction_required"

    def __init__(
        self,
        message: str,
        *,
        scopes: tuple[str, ...],
        remedy: str | None = None,
        claims: str | None = None,
    ):
        super().__init__(message, remedy=remedy or "Sign in again.")
        self.scopes = scopes
        # A claims challenge (JSON text) the sign-in must carry: Continuous Access Evaluation,
        # an authentication context, MFA. None for a plain "sign in again".
        self.claims = claims


class InsufficientClaimsError(EntraAuthError):
    """The token is valid but lacks claims the resource demands (HTTP 401 with
    ``error="insufficient_claims"`` and the ``claims`` to ask Entra for): an authentication
    context (``acrs``) this operation requires, or a sign-in newer than a revocation (CAE).

    ``claims`` is the JSON text of the claims request (OpenID Connect Core §5.5); the
    ``WWW-Authenticate`` header carries it base64-encoded (``entra_auth.challenges``)."""

    code = "insufficient_claims"
    default_remedy = (
        "Acquire a new token with these claims (MSAL: claims_challenge=...), which takes the "
        "user through the sign-in page once."
    )

    def __init__(self, message: str, *, claims: str, remedy: str | None = None):
        super().__init__(message, remedy=remedy)
        self.claims = claims


class OnBehalfOfError(_RefusedByEntra):
    """A token for a downstream API could not be had on behalf of the API's caller.

    ``status`` is what the API answers its caller: 401 with the ``claims`` to sign in with
    (Conditional Access, MFA, an authentication context, a session revoked under CAE), 403 when
    the user (or an admin) must consent to what this API calls (AADSTS65001), 500 when this
    API's own registration or credential is wrong (the caller can do nothing about it).
    ``scopes`` are the downstream scopes asked for; ``aadsts`` Entra's code when it sent one."""

    code = "on_behalf_of_failed"
    default_remedy = "`entra-auth explain` reads the AADSTS code and says what to do."

    def __init__(
        self,
        message: str,
        *,
        status: int,
        scopes: tuple[str, ...] = (),
        claims: str | None = None,
        consent_uri: str | None = None,
        remedy: str | None = None,
        aadsts: int | None = None,
        code: str | None = None,
    ):
        super().__init__(message, remedy=remedy, aadsts=aadsts, code=code)
        self.status, self.scopes, self.claims = status, scopes, claims
        self.consent_uri = consent_uri  # where the user (or an admin) consents, for a 403


class DownstreamApiError(EntraAuthError):
    """A downstream API answered with an error. ``status`` is its HTTP status, ``api`` its
    name, ``error_code`` the code its JSON error body gave (``{"error": {"code": …}}`` as Graph
    and Azure answer, or OAuth's ``{"error": "…"}``), never its message text. ``body`` is the
    answer's JSON, for the app to show or read (untrusted: escape it; never log it)."""

    code = "downstream_api_error"
    default_remedy = "Read the API's error code in the message and the API's own documentation."
    body: object = None

    def __init__(
        self,
        message: str,
        *,
        status: int,
        api: str = "",
        error_code: str = "",
        remedy: str | None = None,
        body: object = None,
    ):
        super().__init__(message, remedy=remedy)
        self.status, self.api, self.error_code = status, api, error_code
        self.body = body


class DownstreamApiUnavailableError(DownstreamApiError, ProviderUnavailableError):
    """A downstream API cannot be reached, timed out or keeps answering 429/5xx (HTTP 503):
    ``retry_after`` is the seconds it asked for."""

    code = "downstream_api_unavailable"
    default_remedy = "Try again in a moment; nothing was lost."

    def __init__(
        self,
        message: str,
        *,
        status: int = 0,
        api: str = "",
        retry_after: int | None = None,
        host: str = "",
        cause: str = "",
        remedy: str | None = None,
    ):
        EntraAuthError.__init__(self, message, remedy=remedy)
        self.status, self.api, self.error_code = status, api, ""
        self.retry_after, self.host, self.step, self.cause = retry_after, host, api, cause


class GraphError(DownstreamApiError):
    """Microsoft Graph answered with an error. ``status`` and Graph's ``graph_code``."""

    code = "graph_error"
    default_remedy = (
        "Read Graph's error code in the message; `entra-auth doctor` checks the configuration."
    )

    def __init__(
        self, message: str, *, status: int, graph_code: str = "", remedy: str | None = None
    ):
        super().__init__(
            message, status=status, api="Microsoft Graph", error_code=graph_code, remedy=remedy
        )
        self.graph_code = graph_code


class GraphAuthError(GraphError):
    """401 from Graph: the token is missing, expired or not for Graph."""

    code = "graph_unauthorized"
    default_remedy = (
        "Request a token for Microsoft Graph (scope User.Read or "
        "https://graph.microsoft.com/.default)."
    )


class GraphForbiddenError(GraphError):
    """403 from Graph: the token lacks a permission (scope or app role)."""

    code = "graph_forbidden"
    default_remedy = "Add the Graph permission to the app registration and consent to it."


class SessionStoreUnavailable(EntraAuthError):
    """The shared session/token store (Redis) is down, slow or refused a write (HTTP 503)."""

    code = "session_store_unavailable"
    default_remedy = (
        "Check that Redis (REDIS_URL) is reachable from every instance; the app recovers by "
        "itself as soon as it is back."
    )


class GraphUnavailableError(GraphError, ProviderUnavailableError):
    """Microsoft Graph cannot be reached, timed out or keeps answering 429/5xx (HTTP 503)."""

    code = "graph_unavailable"
    default_remedy = "Try again in a moment; nothing was lost."

    def __init__(
        self,
        message: str,
        *,
        status: int = 0,
        retry_after: int | None = None,
        host: str = "",
        cause: str = "",
        remedy: str | None = None,
    ):
        EntraAuthError.__init__(self, message, remedy=remedy)
        self.status, self.graph_code = status, ""
        self.api, self.error_code = "Microsoft Graph", ""
        self.retry_after, self.host, self.step, self.cause = retry_after, host, "Graph", cause
