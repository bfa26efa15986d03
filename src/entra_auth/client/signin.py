"""SignInFlow: the OAuth 2.0 authorization code flow through MSAL, done right, framework-free.

- ``msal.ConfidentialClientApplication`` with ``initiate_auth_code_flow`` /
  ``acquire_token_by_auth_code_flow``: MSAL adds state, nonce and PKCE S256 and checks state,
  nonce and the verifier binding. The flow dict is for the caller to keep server-side.
- MSAL does not verify the ID token's signature, issuer, audience or expiry: ``IdTokenValidator``
  does, before anyone is signed in, and again on every ID token a refresh returns (a refresh that
  speaks for another user ends the session).
- One application object per request (its token cache is the user's), sharing one HTTP session
  and one MSAL ``http_cache`` so discovery is fetched once per process, not per request.
- Every request to the provider is bounded and its failures typed (``.http``): a provider that
  is down, slow or answers nonsense raises ``ProviderUnavailableError`` (or its 502 subclass
  ``ProviderResponseError``) naming the step; the caller's token cache is left as it was.
- Response mode is ``query``: a ``SameSite=Lax`` session cookie does not travel with the
  cross-site POST of ``form_post``, while the code in the query string is single-use, bound to the
  PKCE verifier and the client secret, and the callback answers with ``Referrer-Policy:
  no-referrer`` and a redirect that drops it from the address bar.
"""

from __future__ import annotations

import hashlib
import re
import threading
import warnings
from collections.abc import Mapping, MutableMapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import unquote, urlencode, urlsplit

import msal
import requests
from msal.authority import WELL_KNOWN_AUTHORITY_HOSTS

from .. import aadsts
from ..challenges import claims_request
from ..config import EntraConfig
from ..credentials import client_credential
from ..discovery import Discovery
from ..errors import (
    AppTokenError,
    InteractionRequired,
    InvalidTokenError,
    ProviderUnavailableError,
    SignInError,
)
from ..keys import JwksCache
from ..logs import redact_logger
from ..tokens import IdTokenValidator, Principal
from .http import ProviderSession, provider_step

# MSAL recommends form_post on every query-mode request; the module docstring says why not here.
warnings.filterwarnings("ignore", message="response_mode='form_post' is recommended")

OIDC_SCOPES = frozenset({"openid", "profile", "offline_access", "email"})


@dataclass(frozen=True)
class SignedIn:
    """A completed sign-in: the verified user and the MSAL account to find tokens under."""

    user: Principal
    account_id: str  # MSAL's home_account_id


def resource_of(scope: str) -> str:
    """The API a scope belongs to: ``api://x/read`` → ``api://x``; ``User.Read`` → Graph."""
    return scope.rpartition("/")[0].lower() if "/" in scope else "https://graph.microsoft.com"


def one_resource(scopes: Sequence[str]) -> list[str]:
    """The scopes of the first API named: a token request may name one resource only."""
    named = [s for s in scopes if s not in OIDC_SCOPES]
    if not named:
        return []
    first = resource_of(named[0])
    return [s for s in named if resource_of(s) == first]


def safe_return_path(value: str | None) -> str:
    """A same-origin relative path to return to after sign-in; anything else is ``/``.

    Refuses scheme-relative (``//host``), backslash tricks (``/\\host``), encoded slashes,
    schemes (``javascript:``, ``http:host``) and control characters.
    """
    if not value or not value.startswith("/") or len(value) > 2048:
        return "/"
    decoded = unquote(unquote(value))
    if (
        decoded.startswith(("//", "/\\"))
        or "\\" in decoded
        or any(ord(c) < 0x20 or ord(c) == 0x7F for c in decoded)
    ):
        return "/"
    parts = urlsplit(value)
    if parts.scheme or parts.netloc:
        return "/"
    return value


_OAUTH_ERROR = re.compile(r"[a-z_]{1,64}")


def _error_from(result: Mapping[str, Any], fallback: str) -> SignInError:
    """An IdP's error answer (a redirect's query or a token response) as a ``SignInError``."""
    return error_from(result, SignInError, fallback, "Try signing in again.")


E = TypeVar("E", SignInError, AppTokenError)


def error_from(result: Mapping[str, Any], kind: type[E], fallback: str, remedy: str) -> E:
    """An IdP's error answer as ``kind``, in the catalogue's words for its AADSTS code.

    Every value is untrusted: ``error`` is kept only when it has the shape of an OAuth error
    code (RFC 6749 §4.1.2.1), the AADSTS code is read without raising, and the description and
    ``error_uri`` are never shown or logged (HX06)."""
    raw_error = result.get("error")
    error = (
        raw_error if isinstance(raw_error, str) and _OAUTH_ERROR.fullmatch(raw_error) else kind.code
    )
    code = aadsts.first_code(result.get("error_codes"), result.get("error_description"))
    entry = aadsts.lookup(code) if code else None
    if entry is not None:
        return kind(f"{entry.name}: {entry.meaning}", remedy=entry.fix, aadsts=code, code=error)
    return kind(fallback, remedy=remedy, code=error)


def confidential_app(
    config: EntraConfig,
    credential: Any,
    *,
    cache: msal.TokenCache | None,
    http: requests.Session,
    http_cache: MutableMapping[Any, Any],
    capabilities: bool = True,
) -> msal.ConfidentialClientApplication:
    """MSAL's confidential client for ``config``, as every part of the library makes it (sign-in,
    app tokens, on-behalf-of): its one ``credential``, ``http`` (bounded, typed failures) and
    ``http_cache`` shared between the objects made per request (the provider's metadata read
    once), instance discovery only on Microsoft's own hosts (the local Entra ID has no
    ``login.microsoftonline.com`` to ask), and the app's declared client capabilities (CP1)
    where claims challenges are met (``capabilities``: not for app tokens, whose provider has
    no user to send through a sign-in and would keep serving a long-lived token Graph refuses)."""
    host = urlsplit(str(config.authority)).hostname or ""
    return msal.ConfidentialClientApplication(
        config.client_id,
        client_credential=credential,
        authority=config.authority,
        token_cache=cache,
        http_client=http,
        http_cache=http_cache,
        instance_discovery=None if host in WELL_KNOWN_AUTHORITY_HOSTS else False,
        client_capabilities=(list(config.client_capabilities) or None) if capabilities else None,
    )


class SignInFlow:
    """Sign-in, silent tokens and sign-out for one app registration."""

    def __init__(
        self,
        config: EntraConfig,
        *,
        jwks: JwksCache | None = None,
        session: requests.Session | None = None,
    ):
        config.require("client_id", "credential")
        self.credential = client_credential(config)
        self._msal_credential = self.credential.msal_credential()  # a managed identity: refused
        for name in ("msal.token_cache", "msal.application", "msal.oauth2cli.oauth2"):
            redact_logger(name)  # MSAL's DEBUG events carry the code and the PKCE verifier
        self.config = config
        self._http: requests.Session = session or ProviderSession(
            timeout=config.http_timeout, ca_bundle=config.ca_bundle
        )
        if config.ca_bundle:
            self._http.verify = config.ca_bundle
            self._http.trust_env = False  # REQUESTS_CA_BUNDLE must not override the bundle
        self.jwks = jwks or JwksCache(config, timeout=config.http_timeout)
        self.discovery: Discovery = self.jwks.discovery  # one metadata fetch serves both
        self.id_tokens = IdTokenValidator(config, self.jwks)
        self._http_cache: dict[Any, Any] = {}
        self._lock = threading.Lock()

    def client(
        self, cache: msal.SerializableTokenCache | None = None
    ) -> msal.ConfidentialClientApplication:
        """A confidential client (never a public one: it holds a credential) with this cache."""
        return confidential_app(
            self.config,
            self._msal_credential,
            cache=cache,
            http=self._http,
            http_cache=self._http_cache,
        )

    # -- sign-in --------------------------------------------------------------------------------
    def begin(
        self,
        *,
        redirect_uri: str,
        scopes: Sequence[str] | None = None,
        prompt: str | None = None,
        login_hint: str | None = None,
        claims: str | None = None,
    ) -> dict[str, Any]:
        """A new flow (keep it server-side); send the browser to ``flow["auth_uri"]``.

        ``claims``: a claims challenge (JSON text) the sign-in must satisfy (CAE, an
        authentication context), sent as the authorize request's ``claims``."""
        wanted = [s for s in (scopes or self.config.scopes) if s not in OIDC_SCOPES]
        with provider_step("sign-in start"):  # MSAL's constructor reads the discovery document
            flow: dict[str, Any] = self.client().initiate_auth_code_flow(
                wanted,
                redirect_uri=redirect_uri,
                prompt=prompt,
                login_hint=login_hint,
                response_mode="query",
                claims_challenge=claims,
            )
        return flow

    def complete(
        self,
        flow: Mapping[str, Any],
        auth_response: Mapping[str, str],
        cache: msal.SerializableTokenCache,
    ) -> SignedIn:
        """Redeem the code and verify the ID token. ``SignInError`` for any failure of the
        sign-in itself; ``ProviderUnavailableError`` when the provider is down or answers
        nonsense (the caller keeps the page to return to for a new sign-in once it is back)."""
        with provider_step("code redemption"):
            return self._complete(flow, auth_response, cache)

    def _complete(
        self,
        flow: Mapping[str, Any],
        auth_response: Mapping[str, str],
        cache: msal.SerializableTokenCache,
    ) -> SignedIn:
        if "error" in auth_response:
            raise _error_from(auth_response, "The identity provider refused the sign-in.")
        issuer = auth_response.get("iss")
        if issuer is not None and issuer != self._expected_issuer():
            raise SignInError(  # RFC 9207: the response came from another identity provider
                "The sign-in response names another issuer than this app's identity provider.",
                remedy="Start the sign-in again from this app.",
                code="issuer_mismatch",
            )
        app = self.client(cache)
        scopes = one_resource(flow.get("scope", [])) or None
        try:
            result = app.acquire_token_by_auth_code_flow(dict(flow), dict(auth_response), scopes)
        except ValueError:  # MSAL's state check
            raise SignInError(
                "The sign-in response does not belong to the sign-in this browser started.",
                remedy="Start the sign-in again from this app.",
                code="state_mismatch",
            ) from None
        except RuntimeError:  # MSAL's own iss/aud/nonce checks (it skips the signature)
            # MSAL's text quotes the nonce: never shown or logged, only what was refused.
            raise SignInError(
                "The ID token was refused: its issuer, audience or nonce is not this sign-in's.",
                remedy="Start the sign-in again from this app.",
                code="id_token_refused",
            ) from None
        if "error" in result:
            raise _error_from(result, "The code could not be redeemed.")
        nonce = hashlib.sha256(str(flow.get("nonce", "")).encode()).hexdigest()
        try:
            user = self.id_tokens.validate(result.get("id_token"), nonce=nonce)
        except InvalidTokenError as exc:
            raise SignInError(
                f"The ID token was refused: {exc.message}", remedy=exc.remedy, code=exc.reason
            ) from None
        account_id = self._account_id(app, user)
        return SignedIn(user=user, account_id=account_id)

    def _expected_issuer(self) -> str:
        return self.discovery.metadata.issuer

    @staticmethod
    def _account_id(app: msal.ConfidentialClientApplication, user: Principal) -> str:
        """MSAL's ``home_account_id`` for the user just signed in (the cache is this sign-in's
        alone), after checking it speaks for the verified user."""
        accounts = app.get_accounts()
        if len(accounts) != 1 or accounts[0].get("local_account_id") != user.oid:
            raise SignInError(
                "The tokens MSAL stored do not belong to the verified user.",
                code="account_mismatch",
            )
        return str(accounts[0]["home_account_id"])

    # -- tokens ---------------------------------------------------------------------------------
    def acquire_token(
        self,
        cache: msal.SerializableTokenCache,
        account_id: str,
        scopes: Sequence[str],
        *,
        user: Principal,
        claims: str | None = None,
    ) -> str:
        """An access token from the user's cache, refreshed silently when near expiry.

        ``claims``: a claims challenge from a resource (CAE, an authentication context): the
        cached token is passed over and a refresh asks Entra for those claims; when that needs
        the user, ``InteractionRequired`` carries the claims for the sign-in.
        ``InteractionRequired`` when the user must sign in or consent; ``SignInError`` when a
        refresh returns an ID token for someone else (the caller ends the session).
        """
        with provider_step("silent refresh"):
            return self._acquire_token(cache, account_id, tuple(scopes), user=user, claims=claims)

    def _acquire_token(
        self,
        cache: msal.SerializableTokenCache,
        account_id: str,
        wanted: tuple[str, ...],
        *,
        user: Principal,
        claims: str | None = None,
    ) -> str:
        app = self.client(cache)
        account = next(
            (a for a in app.get_accounts() if a.get("home_account_id") == account_id), None
        )
        if account is None:
            raise InteractionRequired(
                "No tokens are cached for this user.", scopes=wanted, claims=claims
            )
        try:
            result = app.acquire_token_silent_with_error(
                list(wanted), account, claims_challenge=claims
            )
        except RuntimeError:  # a refreshed ID token failed MSAL's iss/aud check (IdTokenError)
            raise SignInError("A refreshed ID token was refused.", code="refresh_refused") from None
        if not result:
            raise InteractionRequired(
                "No token could be had silently.", scopes=wanted, claims=claims
            )
        if "error" in result:
            entry = _error_from(result, "The token could not be refreshed.")
            # Entra's own claims (Conditional Access on this resource) win over the resource's.
            demanded = claims_request(result.get("claims"))
            raise InteractionRequired(
                entry.message, scopes=wanted, remedy=entry.remedy, claims=demanded or claims
            )
        id_token = result.get("id_token")
        if id_token:
            self._check_same_user(id_token, user)
        return str(result["access_token"])

    def _check_same_user(self, id_token: str, user: Principal) -> None:
        try:
            fresh = self.id_tokens.validate(id_token, nonce=None)
        except InvalidTokenError as exc:
            raise SignInError(
                f"A refreshed ID token was refused: {exc.message}", code="refresh_refused"
            ) from None
        if (fresh.oid, fresh.tid, fresh.sub) != (user.oid, user.tid, user.sub):
            raise SignInError(
                "A token refresh returned another user's identity; the session was ended.",
                remedy="Sign in again.",
                code="identity_changed",
            )

    # -- sign-out -------------------------------------------------------------------------------
    def sign_out_url(self, post_logout_redirect_uri: str) -> str:
        """The identity provider's end-session URL, returning to ``post_logout_redirect_uri``."""
        try:
            endpoint = self.discovery.metadata.end_session_endpoint
        except ProviderUnavailableError:
            # Signing out must not depend on the provider being up: the local session is
            # already ended, and Entra's end-session URL has a well-known shape.
            endpoint = None
        if endpoint is None or not endpoint.startswith(("https://", "http://")):
            endpoint = f"{self.config.authority}/oauth2/v2.0/logout"
        query = urlencode(
            {
                "post_logout_redirect_uri": post_logout_redirect_uri,
                "client_id": self.config.client_id,
            }
        )
        return f"{endpoint}?{query}"
