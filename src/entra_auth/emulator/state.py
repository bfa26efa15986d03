"""What the local Entra ID remembers while it runs, and the control surface tests drive.

Authorization codes, refresh-token grants, consents, sign-in sessions, the signing keys, the
clock offset, and the fault points (injected faults and per-endpoint request counters, kept by
``faults.FaultPoints``). Every mutation takes one lock: the HTTP server is threaded.
"""

from __future__ import annotations

import copy
import random
import re
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any, Literal
from urllib.parse import urlsplit

from ..errors import EmulatorError
from .app_credentials import (
    ClientCertificate,
    FederatedCredential,
    app_of,
    with_app,
    with_certificate,
    with_federated_credential,
)
from .faults import FaultPoints
from .pki import SigningKey
from .seed import App, Seed, User

# Entra's limits for a web app's redirect URIs (learn.microsoft.com, "Redirect URI (reply URL)
# restrictions"): 256 characters each, 256 per app.
REDIRECT_URI_MAX_LENGTH = 256
REDIRECT_URIS_PER_APP = 256
_LOOPBACK_HOSTS = ("localhost", "127.0.0.1")  # Entra takes plain http for these alone
_UNPRINTABLE = re.compile(r"[\x00-\x20\x7f-\x9f]")  # whitespace and control characters


def check_redirect_uri(uri: object) -> str:
    """``uri`` if Entra would register it as a web redirect URI; else an ``EmulatorError``.

    An absolute https URL (plain http only for localhost and 127.0.0.1), without a fragment,
    wildcard, user name or password, at most 256 characters.
    """
    remedy = (
        "Register an absolute URL such as http://localhost:5001/get_token or "
        "https://app.example/get_token: https, or http for localhost and 127.0.0.1 only; no "
        f"#fragment, no wildcard, at most {REDIRECT_URI_MAX_LENGTH} characters."
    )
    if not isinstance(uri, str) or not uri:
        raise EmulatorError(
            "A redirect URI must be a non-empty string.",
            remedy=remedy,
            code="invalid_redirect_uri",
        )
    shown = repr(uri[:REDIRECT_URI_MAX_LENGTH])  # repr: what was given, escapes and all
    if len(uri) > REDIRECT_URI_MAX_LENGTH:
        problem = f"is longer than {REDIRECT_URI_MAX_LENGTH} characters"
    elif _UNPRINTABLE.search(uri):
        problem = "holds a space or a control character"
    else:
        parts = urlsplit(uri)
        try:
            parts.port  # noqa: B018 - raises ValueError for a port that is not one
            bad_port = False
        except ValueError:
            bad_port = True
        if parts.scheme not in ("https", "http") or not parts.hostname:
            problem = "is not an absolute http(s) URL"
        elif parts.scheme == "http" and parts.hostname not in _LOOPBACK_HOSTS:
            problem = "is plain http on a host other than localhost or 127.0.0.1"
        elif "#" in uri:
            problem = "has a fragment (#...)"
        elif "*" in uri:
            problem = "has a wildcard"
        elif parts.username is not None or parts.password is not None:
            problem = "has a user name or password"
        elif bad_port:
            problem = "has an invalid port"
        else:
            return uri
    raise EmulatorError(
        f"The redirect URI {shown} {problem}.", remedy=remedy, code="invalid_redirect_uri"
    )


def with_redirect_uri(seed: Seed, client_id: str, uri: str) -> Seed:
    """``seed`` with ``uri`` registered for the app; the same seed when it already is."""
    uri = check_redirect_uri(uri)
    app = app_of(seed, client_id)
    if uri in app.redirect_uris:  # Entra refuses duplicates; here registering twice is a no-op
        return seed
    if len(app.redirect_uris) >= REDIRECT_URIS_PER_APP:
        raise EmulatorError(
            f"The app {app.client_id} has {REDIRECT_URIS_PER_APP} redirect URIs, Entra's limit.",
            remedy="Reset the emulator, or register fewer redirect URIs.",
        )
    return with_app(seed, app, replace(app, redirect_uris=(*app.redirect_uris, uri)))


@dataclass
class EmulatorSettings:
    """Lifetimes and policies. Defaults are Entra's; tests shorten lifetimes."""

    access_token_lifetime: tuple[int, int] = (3600, 5400)  # randomised like Entra's 60-90 min
    # Continuous Access Evaluation's long-lived tokens (a cp1 client, a CAE resource): Entra
    # issues them for up to 28 hours (Microsoft Learn, "Continuous access evaluation").
    cae_access_token_lifetime: tuple[int, int] = (20 * 3600, 28 * 3600)
    id_token_lifetime: int = 3600
    code_lifetime: int = 600
    refresh_token_inactive_lifetime: int = 90 * 86400
    # Entra keeps a used refresh token valid; "strict" makes a used one invalid, so that a client
    # that loses the rotated token (two workers refreshing at once) is caught.
    refresh_token_rotation: Literal["entra", "strict"] = "entra"  # noqa: S105
    # Client assertions (certificates): Entra sets no limit on their lifetime and lets a client
    # reuse one until it expires (MSAL Python does, for 9 minutes); "strict" refuses one that
    # lives over 10 minutes (the documented advice) or whose jti was seen before (RFC 7523 §3).
    client_assertions: Literal["entra", "strict"] = "entra"
    v1_issuer_host: str = "sts.windows.net"


@dataclass
class AuthorizeRequest:
    txn: str
    tenant_path: str
    client_id: str
    redirect_uri: str
    scope: str
    state: str | None
    nonce: str | None
    code_challenge: str
    response_mode: str
    prompt: str | None
    login_hint: str | None
    created: float
    # The request's `claims` parameter (JSON), as MSAL sends a claims challenge: it may ask for
    # an authentication context (`access_token.acrs`), which makes the sign-in a step-up.
    claims: str | None = None


@dataclass
class AuthorizationCode:
    client_id: str
    tenant_id: str
    user_oid: str
    redirect_uri: str
    scope: str
    code_challenge: str
    nonce: str | None
    sid: str
    auth_time: int
    issued_at: float
    redeemed: bool = False
    # The authentication contexts the sign-in satisfied (a step-up), carried to its tokens.
    acrs: tuple[str, ...] = ()


@dataclass
class RefreshGrant:
    client_id: str
    tenant_id: str
    user_oid: str
    sid: str
    auth_time: int
    issued_at: float
    last_used: float
    family: str
    used: bool = False
    # The authentication contexts the sign-in satisfied, kept through every refresh and
    # on-behalf-of exchange so that a step-up is not asked again down the chain.
    acrs: tuple[str, ...] = ()


@dataclass
class _Snapshot:
    keys: list[SigningKey]
    app_keys: dict[str, list[SigningKey]]
    settings: EmulatorSettings
    seed: Seed


@dataclass
class EmulatorState:
    seed: Seed
    settings: EmulatorSettings
    keys: list[SigningKey]
    # The signing keys of the apps with `app_specific_signing_key`, by client id (lower case),
    # newest first. One missing for such an app is made (in memory) at start.
    app_keys: dict[str, list[SigningKey]] = field(default_factory=dict)
    codes: dict[str, AuthorizationCode] = field(default_factory=dict)
    refresh_grants: dict[str, RefreshGrant] = field(default_factory=dict)
    pending: dict[str, AuthorizeRequest] = field(default_factory=dict)
    consents: dict[tuple[str, str, str], set[str]] = field(default_factory=dict)
    faults: FaultPoints = field(default_factory=FaultPoints)
    clock_offset: float = 0.0
    admin_key: str = field(default_factory=lambda: secrets.token_urlsafe(24))
    # Tests only: turns an ID token's claims into the token sent (to test refusals).
    id_token_rewriter: Callable[[dict[str, Any]], str] | None = None
    revoked_before: dict[tuple[str, str], float] = field(default_factory=dict)
    # When each user's sign-in sessions were revoked (revoke_sessions), by (tenant id, oid): a
    # whole second, as tokens' `iat` and the CAE claims challenge's `nbf` name it.
    sessions_revoked: dict[tuple[str, str], int] = field(default_factory=dict)
    revoked_families: set[str] = field(default_factory=set)
    sso_sessions: set[str] = field(default_factory=set)  # live sign-in sessions, by sid
    # The client ids that signed in through each live session (by sid), in order: the apps
    # whose front-channel logout URL its sign-out loads.
    sso_apps: dict[str, list[str]] = field(default_factory=dict)
    # The jti of each client assertion accepted, by (client id, jti), with its expiry: replays
    # are refused under client_assertions = "strict".
    assertion_ids: dict[tuple[str, str], float] = field(default_factory=dict)
    # The key of the emulator's stand-in token issuers (/_issuers/<name>), for federated
    # credentials; kept in the state dir by EntraEmulator, made in memory when not given.
    issuer_key: SigningKey | None = None
    lock: threading.RLock = field(default_factory=threading.RLock)

    def __post_init__(self) -> None:
        self.app_keys = {k.lower(): list(v) for k, v in self.app_keys.items()}
        if self.issuer_key is None:
            self.issuer_key = SigningKey.generate()
        for app in self.seed.apps:
            if app.app_specific_signing_key and app.client_id.lower() not in self.app_keys:
                self.app_keys[app.client_id.lower()] = [SigningKey.generate()]
        self._initial = _Snapshot(
            list(self.keys),
            {k: list(v) for k, v in self.app_keys.items()},
            copy.deepcopy(self.settings),
            self.seed,
        )

    # -- time ---------------------------------------------------------------------------------
    def now(self) -> float:
        return time.time() + self.clock_offset

    def shift_clock(self, seconds: float) -> None:
        """Move the emulator's clock (tokens' iat/nbf/exp, expiry checks, the Date header)."""
        with self.lock:
            self.clock_offset += seconds

    def access_token_lifetime(self, *, cae: bool = False) -> int:
        """An access token's lifetime: 60-90 minutes, or for a CAE session (a client that
        declared cp1, calling Graph) 20-28 hours, as Entra's "long-lived tokens" of CAE. A test
        that sets its own ``access_token_lifetime`` gets that range for every token."""
        low, high = self.settings.access_token_lifetime
        if cae and (low, high) == EmulatorSettings.access_token_lifetime:
            low, high = self.settings.cae_access_token_lifetime
        return random.randint(low, high)  # noqa: S311 - spread, not secrecy

    # -- keys ---------------------------------------------------------------------------------
    @property
    def active_key(self) -> SigningKey:
        return self.keys[0]

    def rotate_keys(self, *, keep_old: bool = True) -> SigningKey:
        """A new signing key signs from now on; the old ones stay published only if kept.

        The tenant's key and every app-specific key rotate together; the tenant's new key is
        returned."""
        key = SigningKey.generate()
        fresh = {client_id: SigningKey.generate() for client_id in self.app_keys}
        with self.lock:
            self.keys = [key, *self.keys] if keep_old else [key]
            for client_id, app_key in fresh.items():
                old = self.app_keys.get(client_id, [])
                self.app_keys[client_id] = [app_key, *old] if keep_old else [app_key]
        return key

    def signing_key_for(self, audience: App | None) -> SigningKey:
        """The key that signs a token for ``audience`` (the app whose client id is its ``aud``):
        the app's own for an app with ``app_specific_signing_key``, else the tenant's."""
        if audience is not None and audience.app_specific_signing_key:
            with self.lock:
                own = self.app_keys.get(audience.client_id.lower())
                if own:
                    return own[0]
        return self.active_key

    def published_keys(self, appid: str | None = None) -> list[SigningKey]:
        """The key set: the tenant's keys; with ``appid`` (``keys?appid=``), that app's own keys
        first. An app's own key is never in the plain key set."""
        with self.lock:
            own = self.app_keys.get(appid.lower(), []) if appid else []
            return [*own, *self.keys]

    def key_by_kid(self, kid: str) -> SigningKey | None:
        """Any key the emulator signs with (the tenant's or an app's), by ``kid``."""
        with self.lock:
            every = [*self.keys, *(k for keys in self.app_keys.values() for k in keys)]
        return next((k for k in every if k.kid == kid), None)

    # -- grants -------------------------------------------------------------------------------
    def new_handle(self) -> str:
        return secrets.token_urlsafe(48)

    def store_code(self, code: AuthorizationCode) -> str:
        handle = self.new_handle()
        with self.lock:
            self.codes[handle] = code
        return handle

    def store_refresh(self, grant: RefreshGrant) -> str:
        handle = self.new_handle()
        with self.lock:
            self.refresh_grants[handle] = grant
        return handle

    def revoke_refresh_tokens(self, user: User | str, tenant_id: str | None = None) -> None:
        """Invalidate every refresh token issued to the user so far (a password reset)."""
        found = user if isinstance(user, User) else self.find_user(user, tenant_id)
        with self.lock:
            self.revoked_before[(found.tenant_id, found.oid)] = self.now()

    def revoke_sessions(self, user: User | str, tenant_id: str | None = None) -> int:
        """Revoke every sign-in session of the user, as Graph's ``revokeSignInSessions``: their
        refresh tokens (AADSTS50173), browser sessions (the password is asked again) and the
        access tokens issued so far, for those who check (on-behalf-of, and Microsoft Graph for
        CAE-capable clients). Returns the moment, in epoch seconds.

        Tokens name their issue time in whole seconds (``iat``), so the moment is the next
        whole second and the emulator's clock moves on to it (under a second): every token
        issued before has an ``iat`` below it and every one issued after one at or above it,
        without waiting.
        """
        found = user if isinstance(user, User) else self.find_user(user, tenant_id)
        with self.lock:
            now = self.now()
            moment = int(now) + 1
            key = (found.tenant_id, found.oid)
            self.revoked_before[key] = max(self.revoked_before.get(key, 0.0), now)
            self.clock_offset += moment - now
            self.sessions_revoked[key] = moment
        return moment

    def sign_in_revoked(self, tenant_id: str, oid: str, moment: float) -> bool:
        """Whether something of the user's issued at ``moment`` (a sign-in's ``auth_time``, a
        token's ``iat``) came before their sessions were revoked."""
        with self.lock:
            cutoff = self.sessions_revoked.get((tenant_id, oid))
        return cutoff is not None and moment < cutoff

    def is_revoked(self, grant: RefreshGrant) -> bool:
        if grant.family in self.revoked_families:
            return True
        cutoff = self.revoked_before.get((grant.tenant_id, grant.user_oid))
        if cutoff is not None and grant.issued_at <= cutoff:
            return True
        # A grant issued since, for a sign-in from before a session revocation, goes with it.
        return self.sign_in_revoked(grant.tenant_id, grant.user_oid, grant.auth_time)

    def add_redirect_uri(self, client_id: str, uri: str) -> tuple[str, ...]:
        """Register one more redirect URI for an app, until ``reset``; its URIs after."""
        with self.lock:
            self.seed = with_redirect_uri(self.seed, client_id, uri)
            app = self.seed.app(client_id)
            assert app is not None  # with_redirect_uri refused an unknown app
            return app.redirect_uris

    def add_certificate(self, client_id: str, certificate: ClientCertificate) -> None:
        """Register one more certificate for an app, until ``reset``."""
        with self.lock:
            self.seed = with_certificate(self.seed, client_id, certificate)

    def add_federated_credential(self, client_id: str, credential: FederatedCredential) -> None:
        """Register one more federated identity credential for an app, until ``reset``."""
        with self.lock:
            self.seed = with_federated_credential(self.seed, client_id, credential)

    def find_user(self, ref: str, tenant_id: str | None = None) -> User:
        tenants = [tenant_id] if tenant_id else [t.id for t in self.seed.tenants]
        for tid in tenants:
            user = self.seed.user(tid, ref)
            if user is not None:
                return user
        raise EmulatorError(
            f"The local Entra ID has no user {ref!r}.",
            remedy="Name a user of the seed by oid or user principal name.",
        )

    def consented(self, tenant_id: str, user_oid: str, client_id: str) -> set[str]:
        with self.lock:
            return set(self.consents.get((tenant_id, user_oid, client_id), set()))

    def grant_consent(self, tenant_id: str, user_oid: str, client_id: str, keys: list[str]) -> None:
        with self.lock:
            self.consents.setdefault((tenant_id, user_oid, client_id), set()).update(keys)

    def reset(self) -> None:
        """Back to the state at start: keys, settings, no grants, consents, faults or offset.

        The directory too: redirect URIs, certificates and federated credentials added while
        running go, those registered before the emulator started (``entra-auth emulator
        --redirect-uri``) stay. The client assertions' ids seen are forgotten.
        """
        with self.lock:
            self.keys = list(self._initial.keys)
            self.app_keys = {k: list(v) for k, v in self._initial.app_keys.items()}
            self.seed = self._initial.seed
            self.id_token_rewriter = None
            self.settings = copy.deepcopy(self._initial.settings)
            self.codes.clear()
            self.refresh_grants.clear()
            self.pending.clear()
            self.consents.clear()
            self.faults.reset()
            self.revoked_before.clear()
            self.sessions_revoked.clear()
            self.revoked_families.clear()
            self.sso_sessions.clear()
            self.sso_apps.clear()
            self.assertion_ids.clear()
            self.clock_offset = 0.0
