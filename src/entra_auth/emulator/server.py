"""``EntraEmulator``: runs the local Entra ID in background threads and is its control API.

Two servers share one app: HTTPS on ``port`` (back channel) and HTTP on ``browser_port``
(pages). Port 0 picks a free port, which is what tests use; the ports bound are then in
``port`` and ``browser_port``. ``stop()`` returns within a bounded time whatever the clients do
(see ``serving.py``).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import Any, Literal

import requests

from ..config import EntraConfig
from ..errors import EmulatorError
from .app import create_app
from .app_credentials import (
    TOKEN_EXCHANGE_AUDIENCE,
    FederatedCredential,
    certificate_or_error,
    with_certificate,
    with_federated_credential,
)
from .client_assertions import issuer_url, mint_federated_token
from .endpoints.managed_identity import APP_SERVICE_PATH, ensure_identity_header
from .faults import Fault
from .grants import GRANT_COUNTERS
from .minting import TokenMinter, Urls, client_info
from .pki import (
    ADMIN_KEY_FILE,
    SigningKey,
    ensure_app_signing_key,
    ensure_issuer_key,
    ensure_signing_key,
    ensure_tls,
    write_private,
)
from .scopes import resolve_resource, resolve_scopes
from .seed import App, Seed, User, load_seed
from .serving import EmulatorServer
from .state import EmulatorSettings, EmulatorState, with_redirect_uri

log = logging.getLogger("entra_auth.emulator")

# How long stop() waits for the serving loops and for requests in flight; after that a request
# thread still busy is abandoned (a daemon thread), never waited for.
STOP_SECONDS = 5.0


class EntraEmulator:
    """The local Entra ID. Use as a context manager, or ``start()`` / ``stop()``."""

    def __init__(
        self,
        seed: Seed | str | Path | None = None,
        *,
        state_dir: str | Path = ".entra-emulator",
        host: str = "127.0.0.1",
        port: int = 8443,
        browser_port: int = 8444,
        public_host: str = "localhost",
        settings: EmulatorSettings | None = None,
    ):
        self.seed = seed if isinstance(seed, Seed) else load_seed(seed)
        self.state_dir = Path(state_dir)
        self.host, self.port, self.browser_port = host, port, browser_port
        self.public_host = public_host
        self._settings = settings or EmulatorSettings()
        self._servers: list[EmulatorServer] = []
        self._state: EmulatorState | None = None
        self._urls: Urls | None = None
        self._identity_header: str | None = None  # App Service's IDENTITY_HEADER, from start()
        self.state_notes: tuple[str, ...] = ()  # what start() upgraded in the state dir

    # -- life cycle --------------------------------------------------------------------------------
    def start(self) -> EntraEmulator:
        if self._servers:
            return self
        extra = () if self.public_host in ("localhost", "127.0.0.1") else (self.public_host,)
        tls = ensure_tls(self.state_dir, extra + ((self.host,) if self.host != "0.0.0.0" else ()))  # noqa: S104
        self.ca_path = tls.ca_path
        self.state_notes = tls.notes
        self._identity_header = ensure_identity_header(self.state_dir)  # kept there, 0600
        for note in tls.notes:  # `entra-auth emulator` shows warnings in its start output
            log.warning("%s", note)
        # Apps with an app-specific signing key keep it in the state dir, like the tenant's.
        app_keys = {
            app.client_id: [ensure_app_signing_key(self.state_dir, app.client_id)]
            for app in self.seed.apps
            if app.app_specific_signing_key
        }
        self._state = EmulatorState(
            self.seed,
            self._settings,
            [ensure_signing_key(self.state_dir)],
            app_keys=app_keys,
            issuer_key=ensure_issuer_key(self.state_dir),  # the stand-in issuers' key
        )
        try:
            self._servers.append(
                EmulatorServer(self.host, self.port, _Placeholder(), tls=tls.server_context())
            )
            self._servers.append(EmulatorServer(self.host, self.browser_port, _Placeholder()))
        except (OSError, SystemExit) as exc:  # werkzeug exits when the port is taken
            self._close()
            raise EmulatorError(
                f"The local Entra ID cannot listen on {self.host} ports {self.port} and "
                f"{self.browser_port}: {getattr(exc, 'strerror', None) or 'address in use'}.",
                remedy="Stop what holds the port, or choose others with --port / --browser-port.",
            ) from None
        https, http = self._servers
        self.port, self.browser_port = https.server_port, http.server_port
        self._urls = Urls(
            https_base=f"https://{self.public_host}:{self.port}",
            browser_base=f"http://{self.public_host}:{self.browser_port}",
        )
        app = create_app(self._state, self._urls, identity_header=self._identity_header)
        for server in self._servers:
            server.app = app
            server.clock = self._state.now
            server.serve_in_thread("entra-emulator")
        # Whoever reads the admin key drives the control API: the owner alone (0600).
        write_private(self.state_dir / ADMIN_KEY_FILE, self._state.admin_key.encode())
        return self

    def stop(self) -> None:
        """Stop serving, within a bounded time even with connections open or requests held."""
        if self._state is not None:
            self._state.faults.release_held()  # a request held by "hang" or "slow" answers now
        self._close()

    def _close(self) -> None:
        deadline = time.monotonic() + STOP_SECONDS  # one deadline for both listeners
        for server in self._servers:  # both loops stop together, not one after the other
            server.begin_stop()
        for server in self._servers:
            server.stop_serving(max(0.0, deadline - time.monotonic()))
        self._servers = []

    def __enter__(self) -> EntraEmulator:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # -- where it is -------------------------------------------------------------------------------
    @property
    def state(self) -> EmulatorState:
        if self._state is None:
            raise EmulatorError("The local Entra ID is not running.", remedy="Call start() first.")
        return self._state

    @property
    def urls(self) -> Urls:
        if self._urls is None:
            raise EmulatorError("The local Entra ID is not running.", remedy="Call start() first.")
        return self._urls

    @property
    def tenant_id(self) -> str:
        return self.seed.default_tenant

    @property
    def authority(self) -> str:
        """The default tenant's authority, as MSAL and ENTRA_AUTHORITY take it."""
        return self.authority_for(self.tenant_id)

    def authority_for(self, tenant: str) -> str:
        return f"{self.urls.https_base}/{tenant}"

    def issuer(self, tenant: str | None = None) -> str:
        return self.urls.v2_issuer(tenant or self.tenant_id)

    @property
    def graph_base(self) -> str:
        return self.urls.graph_base

    @property
    def admin_key(self) -> str:
        return self.state.admin_key

    @property
    def settings(self) -> EmulatorSettings:
        return self.state.settings

    def http_session(self) -> requests.Session:
        """A requests session that trusts the emulator's CA and ignores proxy/CA env vars."""
        session = requests.Session()
        session.trust_env = False
        session.verify = str(self.ca_path)
        return session

    @property
    def directory(self) -> Seed:
        """The tenants, apps and users served now: the seed plus redirect URIs added since."""
        return self._state.seed if self._state is not None else self.seed

    def app(self, name_or_id: str | None = None) -> App:
        """An app of the directory by client id, App ID URI (``api://…``) or display name;
        by default the seed's first web app (one with a redirect URI and a client secret)."""
        if name_or_id is None:
            return self._web_app()
        directory = self.directory
        found = directory.app_by_identifier(name_or_id) or next(
            (a for a in directory.apps if a.display_name == name_or_id), None
        )
        if found is None:
            known = "; ".join(f"{a.display_name!r} ({a.client_id})" for a in directory.apps)
            raise EmulatorError(
                f"The seed has no app {name_or_id!r}.",
                remedy=f"Name an app by client id, App ID URI or display name: {known or 'none'}.",
                code="unknown_app",
            )
        return found

    def env_for(
        self, app: str | None = None, *, api: str | None = None, redirect_uri: str | None = None
    ) -> dict[str, str]:
        """The ``ENTRA_*`` settings that point an app of the seed at this emulator.

        ``app`` is a client id, App ID URI or display name; by default the seed's first web
        app (one with a redirect URI and a client secret). The result holds ENTRA_AUTHORITY,
        ENTRA_CLIENT_ID, ENTRA_CA_BUNDLE (an absolute path), and when the app has them
        ENTRA_CLIENT_SECRET (its first secret not expired) and ENTRA_REDIRECT_URI
        (``redirect_uri``, which must be registered; by default the app's first). With ``api``
        (by default the app itself when it exposes an API, else the first API of its tenant),
        ENTRA_API_AUDIENCE (the API's client id and App ID URIs), and
        ENTRA_ACCEPTED_TOKEN_VERSIONS=1 when that API receives v1 tokens.
        Every value is the seed's: local and public, a test's to use as it likes.
        """
        client = self.app(app)
        env = {
            "ENTRA_AUTHORITY": self.authority_for(client.tenant_id),
            "ENTRA_CLIENT_ID": client.client_id,
            # Absolute: the app (or a test that changes directory) may run elsewhere; with
            # forward slashes (Windows takes them too), which a .env holds as they are.
            "ENTRA_CA_BUNDLE": Path(self.ca_path).resolve().as_posix(),
        }
        now = self.state.now()
        secret = next((s for s in client.secrets if s.expires.timestamp() > now), None)
        if secret is not None:
            env["ENTRA_CLIENT_SECRET"] = secret.value
        if redirect_uri is not None and redirect_uri not in client.redirect_uris:
            raise EmulatorError(
                f"{redirect_uri!r} is not a redirect URI of {client.display_name!r}.",
                remedy="Register it first: add_redirect_uri(client_id, uri), or "
                "`entra-auth emulator --redirect-uri URI`.",
                code="unregistered_redirect_uri",
            )
        if redirect_uri or client.redirect_uris:
            env["ENTRA_REDIRECT_URI"] = redirect_uri or client.redirect_uris[0]
        target = self.app(api) if api is not None else self._api_of(client)
        if target is not None:
            env["ENTRA_API_AUDIENCE"] = ",".join((target.client_id, *target.identifier_uris))
            if target.access_token_accepted_version != 2:  # Entra: absent means v1 tokens
                env["ENTRA_ACCEPTED_TOKEN_VERSIONS"] = "1"  # noqa: S105 - not a secret
        return env

    def config_for(
        self, app: str | None = None, *, api: str | None = None, redirect_uri: str | None = None
    ) -> EntraConfig:
        """``EntraConfig`` from ``env_for(app, api=…, redirect_uri=…)``."""
        return EntraConfig.from_mapping(self.env_for(app, api=api, redirect_uri=redirect_uri))

    def managed_identity_env(self, kind: Literal["imds", "app_service"] = "imds") -> dict[str, str]:
        """The variables that point MSAL's ``ManagedIdentityClient`` at this emulator.

        ``"imds"``, a virtual machine's Instance Metadata Service:
        ``AZURE_POD_IDENTITY_AUTHORITY_HOST``, the HTTPS base MSAL then asks instead of
        ``http://169.254.169.254`` (no ``IDENTITY_ENDPOINT`` may be set: MSAL would take App
        Service's). ``"app_service"``: ``IDENTITY_ENDPOINT`` and ``IDENTITY_HEADER`` (the
        secret of the state directory, kept across restarts). Both add ``ENTRA_CA_BUNDLE``, the
        CA the client must trust: give MSAL ``http_client=`` a ``requests.Session`` with
        ``verify=`` that path (``http_session()`` is one). The host's identities are the seed's
        ``managed_identities``; with none named, the system-assigned one answers.
        """
        https = self.urls.https_base
        if kind == "imds":
            env = {"AZURE_POD_IDENTITY_AUTHORITY_HOST": https}
        elif kind == "app_service":
            assert self._identity_header is not None  # set by start(), as the URLs are
            env = {
                "IDENTITY_ENDPOINT": f"{https}{APP_SERVICE_PATH}",
                "IDENTITY_HEADER": self._identity_header,
            }
        else:
            raise EmulatorError(
                f"No managed-identity endpoint of kind {kind!r}.",
                remedy='Use kind="imds" (a virtual machine) or kind="app_service".',
            )
        env["ENTRA_CA_BUNDLE"] = Path(self.ca_path).resolve().as_posix()
        return env

    def _web_app(self) -> App:
        """The seed's first app that signs users in: a redirect URI and a client secret."""
        directory = self.directory
        ordered = sorted(directory.apps, key=lambda a: a.tenant_id != directory.default_tenant)
        found = next((a for a in ordered if a.redirect_uris and a.secrets), None)
        if found is None:
            raise EmulatorError(
                "The seed has no web app (an app with a redirect URI and a client secret).",
                remedy="Name the app: env_for(app=…), or `entra-auth emulator --app …`.",
                code="unknown_app",
            )
        return found

    def _api_of(self, client: App) -> App | None:
        """The API an app's settings name by default: its own, else its tenant's first."""
        if _exposes_api(client):
            return client
        return next(
            (a for a in self.directory.apps if a.tenant_id == client.tenant_id and _exposes_api(a)),
            None,
        )

    def user(self, ref: str, tenant: str | None = None) -> User:
        return self.state.find_user(ref, tenant)

    # -- control -----------------------------------------------------------------------------------
    @property
    def signing_key(self) -> SigningKey:
        """The active signing key: tests mint tokens with it."""
        return self.state.active_key

    def app_signing_key(self, client_id: str) -> SigningKey:
        """The active key of an app registered with ``app_specific_signing_key``: it signs the
        app's ID tokens and the access tokens for its API."""
        app = self.app(client_id)
        if not app.app_specific_signing_key:
            raise EmulatorError(
                f"{app.display_name!r} has no app-specific signing key.",
                remedy="Set app_specific_signing_key = true on the app in the seed.",
                code="unknown_app",
            )
        return self.state.signing_key_for(app)

    def rotate_keys(self, *, keep_old: bool = True) -> SigningKey:
        """Rotate the tenant's signing key and every app-specific one; the tenant's new key."""
        return self.state.rotate_keys(keep_old=keep_old)

    def revoke_refresh_tokens(self, user: str) -> None:
        self.state.revoke_refresh_tokens(user)

    def revoke_sessions(self, user: str) -> int:
        """Revoke all of the user's sign-in sessions, as Graph's ``revokeSignInSessions`` (an
        admin's "Revoke sessions"): a critical event of continuous access evaluation.

        From then on their refresh tokens are refused (AADSTS50173), the browser's sign-in
        session is over (the sign-in page asks again), an on-behalf-of exchange of an access
        token issued before is refused (AADSTS50173), and Microsoft Graph answers a token
        issued before to a CAE-capable client (``xms_cc`` with ``cp1``) with 401 and a claims
        challenge; other clients' tokens work until they expire, as in Entra. Returns the
        moment of the revocation (epoch seconds; the clock moves on to it, under a second).
        """
        return self.state.revoke_sessions(user)

    def shift_clock(self, seconds: float) -> None:
        self.state.shift_clock(seconds)

    def inject_fault(self, endpoint: str, fault: Fault) -> None:
        self.state.faults.inject(endpoint, fault)

    def clear_faults(self) -> None:
        self.state.faults.clear()

    def request_counts(self) -> dict[str, int]:
        """Requests per endpoint (``token``, ``jwks``...) and token requests per grant:
        ``token:authorization_code``, ``token:refresh_token``, ``token:client_credentials``,
        ``token:password`` and ``token:on_behalf_of``."""
        return self.state.faults.counts(also=GRANT_COUNTERS)

    def reset_counts(self) -> None:
        self.state.faults.reset_counts()

    def reset(self) -> None:
        self.state.reset()

    def add_redirect_uri(self, client_id: str, uri: str) -> None:
        """Register one more redirect URI for an app, checked as Entra checks it.

        Before ``start()`` it is part of the starting directory, which ``reset()`` goes back
        to (what ``entra-auth emulator --redirect-uri`` does); while running, it lasts until
        ``reset()``. An ``EmulatorError`` for an unknown app or a URI Entra would refuse.
        """
        if self._state is None:
            self.seed = with_redirect_uri(self.seed, self.app(client_id).client_id, uri)
        else:
            self._state.add_redirect_uri(self.app(client_id).client_id, uri)

    def add_certificate(
        self,
        client_id: str,
        certificate_pem: str | bytes,
        *,
        key_id: str | None = None,
        display_name: str | None = None,
    ) -> str:
        """Register a certificate (PEM, without its private key) for an app, as uploading it
        under Certificates & secrets does; its SHA-256 thumbprint in hex.

        The app's client assertions signed with the certificate's key then authenticate it
        (``x5t#S256`` or ``x5t`` naming it), while the certificate is valid by the emulator's
        clock. Before ``start()`` it is part of the starting directory; while running it lasts
        until ``reset()``, like ``add_redirect_uri``. ``make_client_certificate``
        (``entra_auth.testing.certificates``) makes one with its key.
        """
        cert = certificate_or_error(certificate_pem, key_id=key_id, display_name=display_name)
        target = self.app(client_id).client_id
        if self._state is None:
            self.seed = with_certificate(self.seed, target, cert)
        else:
            self._state.add_certificate(target, cert)
        return cert.thumbprint_sha256

    def add_federated_credential(
        self,
        client_id: str,
        *,
        subject: str,
        issuer: str | None = None,
        audiences: tuple[str, ...] | list[str] = (TOKEN_EXCHANGE_AUDIENCE,),
        name: str | None = None,
    ) -> None:
        """Trust, for an app, the tokens of ``issuer`` for ``subject`` (a federated identity
        credential), checked as Entra checks one; until ``reset()`` (or from start, before it).

        ``issuer`` is a stand-in issuer's name (default ``local``), ``/_issuers/<name>``, or
        any https URL (the emulator's stand-in key signs for it too); ``federated_token`` mints
        the tokens.
        """
        if issuer is None or not issuer.startswith(("https://", "/")):
            issuer = f"/_issuers/{issuer or 'local'}"
        credential = FederatedCredential(
            name=name or f"credential-{len(self.app(client_id).federated_credentials) + 1}",
            issuer=issuer,
            subject=subject,
            audiences=tuple(audiences),
        )
        target = self.app(client_id).client_id
        if self._state is None:
            self.seed = with_federated_credential(self.seed, target, credential)
        else:
            self._state.add_federated_credential(target, credential)

    def federated_issuer(self, name: str | None = None) -> str:
        """The URL of a stand-in issuer (default ``local``): ``https://<emulator>/_issuers/<name>``,
        with ``/.well-known/openid-configuration`` and its key set at ``/keys``."""
        return issuer_url(self.urls.https_base, name)

    def federated_token(
        self,
        subject: str,
        *,
        audience: str | list[str] = TOKEN_EXCHANGE_AUDIENCE,
        issuer: str | None = None,
        lifetime: int = 3600,
        claims: dict[str, Any] | None = None,
    ) -> str:
        """A token of a stand-in issuer for a workload, as a Kubernetes service-account token
        or a GitHub Actions OIDC token is: what a federated identity credential trusts.

        ``issuer`` as in ``add_federated_credential`` (default: ``federated_issuer()``); times
        by the emulator's clock (``shift_clock`` ages it); ``claims`` adds or overrides claims.
        Write it to a file and give MSAL ``client_credential={"client_assertion": read_it}``.
        """
        return mint_federated_token(
            self.state,
            self.urls,
            subject,
            audience=audience,
            issuer=issuer,
            lifetime=lifetime,
            claims=claims,
        )

    def rewrite_id_tokens(self, rewriter: Callable[[dict[str, Any]], str] | None) -> None:
        """Tests only: ``rewriter(claims)`` gives the ID token to send (forged, altered...)."""
        self.state.id_token_rewriter = rewriter

    def grant_consent(self, user: str, client_id: str, scope: str) -> None:
        """Record that the user consented to ``scope`` for the app (skips the consent page)."""
        found = self.user(user)
        scopes = resolve_scopes(
            self.seed, f"openid profile email offline_access {scope}", found.tenant_id
        )
        self.state.grant_consent(found.tenant_id, found.oid, client_id, scopes.consent_keys)

    def issue_token(
        self,
        *,
        client_id: str,
        resource: str,
        user: str | None = None,
        scopes: list[str] | None = None,
        roles: list[str] | None = None,
        client_capabilities: list[str] | None = None,
        acrs: list[str] | None = None,
    ) -> str:
        """An access token as the token endpoint would issue it, without a flow.

        For tests of an API: ``resource`` is the API's App ID URI or client id; ``user`` None
        gives an app-only token carrying ``roles``. ``client_capabilities`` (such as
        ``["cp1"]``) is what MSAL's ``client_capabilities`` declares: the token carries it as
        ``xms_cc`` when the API asks for that optional claim. ``acrs`` (such as ``["c1"]``):
        the authentication contexts a step-up sign-in satisfied, for a user's token.
        """
        client = self.app(client_id)
        found = self.user(user) if user else None
        tenant = found.tenant_id if found else client.tenant_id
        target = resolve_resource(self.seed, resource, tenant)
        minter = TokenMinter(self.state, self.urls)
        given_roles = (
            roles if roles is not None else (minter.user_roles(found, target.app) if found else [])
        )
        token, _ = minter.access_token(
            client=client,
            resource=target,
            tenant_id=tenant,
            user=found,
            scopes=list(scopes or []),
            roles=given_roles,
            capabilities=tuple(client_capabilities or ()),
            acrs=tuple(acrs or ()) if found else (),
        )
        return token

    def client_info_for(self, user: str) -> str:
        return client_info(self.user(user))


def _exposes_api(app: App) -> bool:
    """Entra's "Expose an API": an App ID URI or a scope. App roles alone do not make an API
    (a web app's roles reach its ID tokens)."""
    return bool(app.identifier_uris or app.scopes)


class _Placeholder:
    """Answers until the real app is attached (the URLs depend on the ports bound)."""

    def __call__(self, environ: dict[str, Any], start_response: Any) -> list[bytes]:
        start_response("503 Service Unavailable", [("Content-Type", "text/plain")])
        return [b"starting"]
