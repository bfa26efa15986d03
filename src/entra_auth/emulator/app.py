"""The local Entra ID's HTTP endpoints, on Entra's v2.0 paths.

Flask serves the emulator because it is already a dependency and gives templates, sessions and
routing for free; the emulator is an application, not part of the framework-free core.

Two listeners share this app: HTTPS for the back channel (discovery, JWKS, token, Graph, admin),
and plain ``http://localhost`` for the pages a browser sees (authorize, sign-in, consent,
logout), so that a newcomer's browser shows no certificate warning. The discovery document
advertises each endpoint on its listener; the browser listener serves nothing else.
"""

from __future__ import annotations

import hmac
import logging
import secrets
import uuid
from collections.abc import Callable
from typing import Any, TypeVar
from urllib.parse import urlencode, urlsplit, urlunsplit

from flask import Flask, Response, jsonify, redirect, render_template, request, session
from werkzeug.datastructures import MultiDict
from werkzeug.exceptions import HTTPException

from .minting import TokenMinter, Urls, client_info, hash_verifier
from .oauth_errors import AadError
from .scopes import OIDC_DESCRIPTIONS, Resource, ScopeRequest, resolve_resource, resolve_scopes
from .seed import GRAPH_APP_ID, App, Tenant, User
from .state import AuthorizationCode, AuthorizeRequest, EmulatorState, Fault, RefreshGrant

log = logging.getLogger("entra_auth.emulator")

MULTI_TENANT_PATHS = ("common", "organizations")
BROWSER_ENDPOINTS = frozenset(
    {"authorize", "authorize_login", "authorize_consent", "logout", "home", "static"}
)
F = TypeVar("F", bound=Callable[..., Any])
FaultPoint = Callable[[str], Callable[[F], F]]


class _PageError(Exception):
    """An error shown on the emulator's own page: never a redirect to an unchecked URI."""

    def __init__(self, error: AadError):
        self.error = error


def create_app(state: EmulatorState, urls: Urls) -> Flask:
    app = Flask(__name__)
    app.config.update(
        SECRET_KEY=secrets.token_bytes(32),
        SESSION_COOKIE_NAME="entra_emulator_sso",
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        MAX_CONTENT_LENGTH=1024 * 1024,
    )
    minter = TokenMinter(state, urls)
    app.extensions["entra_emulator"] = (state, urls, minter)

    # -- plumbing -------------------------------------------------------------------------------
    @app.before_request
    def browser_listener_serves_only_pages() -> Response | None:
        if request.environ.get("wsgi.url_scheme") == "http" and (
            request.endpoint not in BROWSER_ENDPOINTS
        ):
            return _json(
                {
                    "error": "not_found",
                    "error_description": "This is the local Entra ID's browser port: it serves "
                    f"sign-in pages only. Use {urls.https_base} for the back channel.",
                },
                404,
            )
        return None

    @app.after_request
    def headers(response: Response) -> Response:
        response.headers.setdefault("Cache-Control", "no-store")
        response.headers["X-Content-Type-Options"] = "nosniff"
        if response.mimetype == "text/html":
            response.headers["Content-Security-Policy"] = (
                "default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; "
                "form-action *; frame-ancestors 'none'"
            )
            response.headers["Referrer-Policy"] = "no-referrer"
        return response

    @app.errorhandler(AadError)
    def aad_error(error: AadError) -> Response:
        return _json(error.body(request.headers.get("client-request-id")), error.status)

    @app.errorhandler(_PageError)
    def page_error(exc: _PageError) -> tuple[str, int]:
        return _error_page(exc.error), 400

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException) -> Response | tuple[str, int]:
        status = exc.code or 400
        if status == 400 or status == 413:
            error = AadError(9002313, detail=exc.description or "")
            if request.endpoint in BROWSER_ENDPOINTS:
                return _error_page(error), 400
            return _json(error.body(), 400)
        return _json(
            {"error": exc.name.lower().replace(" ", "_"), "error_description": exc.description},
            status,
        )

    @app.errorhandler(Exception)
    def unexpected(exc: Exception) -> Response | tuple[str, int]:
        # A request the emulator could not handle still gets an Entra-shaped answer, never a 500
        # page; the traceback goes to the emulator's log for whoever is debugging it.
        log.exception("the local Entra ID failed on %s %s", request.method, request.path)
        error = AadError(9002313, detail="The local Entra ID could not process the request.")
        if request.endpoint in BROWSER_ENDPOINTS:
            return _error_page(error), 400
        return _json(error.body(), 400)

    def _error_page(error: AadError) -> str:
        return render_template("error.html", error=error, body=error.body())

    def fault_point(endpoint: str) -> Callable[[F], F]:
        """Count requests to ``endpoint`` and apply an injected fault before the real handler."""

        def wrap(view: F) -> F:
            def handler(*args: Any, **kwargs: Any) -> Any:
                fault = state.take_fault(endpoint)
                if fault is not None:
                    answer = _apply_fault(state, fault, endpoint)
                    if answer is not None:
                        return answer
                return view(*args, **kwargs)

            handler.__name__ = view.__name__
            return handler  # type: ignore[return-value]

        return wrap

    # -- tenants ----------------------------------------------------------------------------------
    def tenant_or_error(ref: str) -> Tenant | None:
        """The tenant of the path; None for common/organizations."""
        if ref.lower() in MULTI_TENANT_PATHS:
            return None
        tenant = state.seed.tenant(ref)
        if tenant is None:
            raise AadError(90002, tenant=ref)
        return tenant

    # -- discovery and keys -----------------------------------------------------------------------
    @app.get("/<tenant>/v2.0/.well-known/openid-configuration")
    @fault_point("discovery")
    def discovery(tenant: str) -> Response:
        found = tenant_or_error(tenant)
        tid = found.id if found else "{tenantid}"
        path = found.id if found else tenant.lower()
        return _json(
            {
                "token_endpoint": f"{urls.https_base}/{path}/oauth2/v2.0/token",
                "token_endpoint_auth_methods_supported": [
                    "client_secret_post",
                    "private_key_jwt",
                    "client_secret_basic",
                ],
                "jwks_uri": f"{urls.https_base}/{path}/discovery/v2.0/keys",
                "response_modes_supported": ["query", "fragment", "form_post"],
                "subject_types_supported": ["pairwise"],
                "id_token_signing_alg_values_supported": ["RS256"],
                "response_types_supported": ["code", "id_token", "code id_token", "id_token token"],
                "scopes_supported": ["openid", "profile", "email", "offline_access"],
                "issuer": urls.v2_issuer(tid),
                "request_uri_parameter_supported": False,
                "userinfo_endpoint": f"{urls.graph_base}/oidc/userinfo",
                "authorization_endpoint": f"{urls.browser_base}/{path}/oauth2/v2.0/authorize",
                "device_authorization_endpoint": None,
                "http_logout_supported": True,
                "frontchannel_logout_supported": True,
                "end_session_endpoint": f"{urls.browser_base}/{path}/oauth2/v2.0/logout",
                "claims_supported": [
                    "sub",
                    "iss",
                    "cloud_instance_name",
                    "cloud_instance_host_name",
                    "cloud_graph_host_name",
                    "msgraph_host",
                    "aud",
                    "exp",
                    "iat",
                    "auth_time",
                    "acr",
                    "nonce",
                    "preferred_username",
                    "name",
                    "tid",
                    "ver",
                    "at_hash",
                    "c_hash",
                    "email",
                ],
                "kerberos_endpoint": None,
                "tenant_region_scope": "EU",
                "cloud_instance_name": "local-entra.test",
                "cloud_graph_host_name": "graph.windows.net",
                "msgraph_host": urlsplit(urls.graph_base).netloc + "/graph",
                "rbac_url": "https://pas.windows.net",
            }
        )

    @app.get("/<tenant>/.well-known/openid-configuration")
    @fault_point("discovery")
    def discovery_v1(tenant: str) -> Response:
        found = tenant_or_error(tenant)
        tid = found.id if found else "{tenantid}"
        path = found.id if found else tenant.lower()
        return _json(
            {
                "issuer": minter.v1_issuer(tid),
                "jwks_uri": f"{urls.https_base}/{path}/discovery/keys",
                "token_endpoint": f"{urls.https_base}/{path}/oauth2/token",
                "authorization_endpoint": f"{urls.browser_base}/{path}/oauth2/authorize",
                "id_token_signing_alg_values_supported": ["RS256"],
                "subject_types_supported": ["pairwise"],
                "response_modes_supported": ["query", "fragment", "form_post"],
            }
        )

    @app.get("/<tenant>/discovery/v2.0/keys")
    @app.get("/<tenant>/discovery/keys", endpoint="jwks_v1")
    @fault_point("jwks")
    def jwks(tenant: str) -> Response:
        found = tenant_or_error(tenant)
        issuer = urls.v2_issuer(found.id if found else "{tenantid}")
        with state.lock:
            keys = list(state.keys)
        return _json({"keys": [key.jwk(issuer) for key in keys]})

    # -- authorize --------------------------------------------------------------------------------
    @app.get("/<tenant>/oauth2/v2.0/authorize")
    @fault_point("authorize")
    def authorize(tenant: str) -> Any:
        params = _single(request.args, page=True)
        try:
            found = tenant_or_error(tenant)
        except AadError as exc:
            raise _PageError(exc) from None
        client_id = params.get("client_id")
        if not client_id:
            raise _PageError(AadError(90014, field="client_id"))
        client = state.seed.app(client_id)
        tenant_label = found.id if found else tenant
        if client is None or (found is not None and not _usable_in(client, found)):
            raise _PageError(AadError(700016, client_id=client_id, tenant=tenant_label))
        redirect_uri = params.get("redirect_uri")
        if not redirect_uri:
            raise _PageError(AadError(900971))
        if redirect_uri not in client.redirect_uris:
            raise _PageError(AadError(50011, redirect_uri=redirect_uri, client_id=client_id))
        # From here on the redirect URI is registered: errors go back to the app.
        response_mode = params.get("response_mode") or "query"
        auth = AuthorizeRequest(
            txn=secrets.token_urlsafe(24),
            tenant_path=tenant,
            client_id=client.client_id,
            redirect_uri=redirect_uri,
            scope=params.get("scope", ""),
            state=params.get("state"),
            nonce=params.get("nonce"),
            code_challenge=params.get("code_challenge", ""),
            response_mode=response_mode
            if response_mode in ("query", "form_post", "fragment")
            else "query",
            prompt=params.get("prompt"),
            login_hint=params.get("login_hint"),
            created=state.now(),
        )
        try:
            if found is None and not client.multi_tenant:
                raise AadError(50194, client_id=client.client_id, app_name=client.display_name)
            if params.get("response_type") != "code":
                raise AadError(700051, response_type=params.get("response_type", ""))
            if not auth.code_challenge or params.get("code_challenge_method") != "S256":
                raise AadError(
                    9002325,
                    detail="The local Entra ID requires code_challenge with "
                    "code_challenge_method=S256.",
                )
            if not auth.scope:
                raise AadError(90014, field="scope")
            resolve_scopes(state.seed, auth.scope, tenant_label)
        except AadError as exc:
            return _to_client(auth, error=exc)
        with state.lock:
            state.pending[auth.txn] = auth
        session.setdefault("txns", [])
        session["txns"] = [*session["txns"][-9:], auth.txn]

        signed_in = _sso_user(found)
        if auth.prompt == "none":
            if signed_in is None:
                return _to_client(auth, error=AadError(50058))
            return _after_sign_in(auth, signed_in, found)
        if signed_in is not None and auth.prompt not in ("login", "select_account"):
            return _after_sign_in(auth, signed_in, found)
        return _sign_in_page(auth, found)

    def _pending(txn: str | None) -> AuthorizeRequest:
        with state.lock:
            auth = state.pending.get(txn or "")
        if auth is None or txn not in session.get("txns", []):
            raise _PageError(
                AadError(9002313, detail="The sign-in request expired. Start again from the app.")
            )
        return auth

    def _sign_in_page(auth: AuthorizeRequest, tenant: Tenant | None, error: str = "") -> str:
        users = state.seed.users_of(tenant.id) if tenant else list(state.seed.users)
        client = state.seed.app(auth.client_id)
        return render_template(
            "signin.html",
            auth=auth,
            users=users,
            client=client,
            tenant=tenant,
            error=error,
            login_hint=auth.login_hint or "",
        )

    @app.post("/<tenant>/oauth2/v2.0/authorize/login")
    def authorize_login(tenant: str) -> Any:
        form = _single(request.form, page=True)
        auth = _pending(form.get("txn"))
        found = tenant_or_error(auth.tenant_path)
        candidates = state.seed.users_of(found.id) if found else list(state.seed.users)
        user: User | None = None
        if form.get("user"):  # a demo user picked from the list
            user = next((u for u in candidates if u.oid == form["user"]), None)
        else:
            name = (form.get("username") or "").strip().lower()
            password = form.get("password") or ""
            match = next(
                (u for u in candidates if name in (u.upn.lower(), u.sign_in_name.lower())), None
            )
            if match is not None and hmac.compare_digest(
                match.password.encode(), password.encode()
            ):
                user = match
        if user is None:
            message = f"AADSTS50126: {AadError(50126).message}"
            return _sign_in_page(auth, found, error=message), 200
        return _after_sign_in(auth, user, found, fresh=True)

    def _after_sign_in(
        auth: AuthorizeRequest, user: User, tenant: Tenant | None, fresh: bool = False
    ) -> Any:
        client = state.seed.app(auth.client_id)
        assert client is not None  # checked when the request arrived
        user_tenant = state.seed.tenant(user.tenant_id)
        assert user_tenant is not None
        sso = dict(session.get("sso", {}))
        if fresh or user_tenant.id not in sso:
            sid = str(uuid.uuid4())
            sso[user_tenant.id] = {"oid": user.oid, "sid": sid, "auth_time": int(state.now())}
            session["sso"] = sso
            with state.lock:  # kept server-side, so that sign-out ends it for every copy
                state.sso_sessions.add(sid)
        try:
            if not _usable_in(client, user_tenant):
                raise AadError(700016, client_id=client.client_id, tenant=user_tenant.id)
            if client.assignment_required and not _assigned(user, client):
                raise AadError(50105, client_id=client.client_id, app_name=client.display_name)
            scopes = resolve_scopes(state.seed, auth.scope, user_tenant.id)
            missing = _missing_consent(client, user, scopes)
            admin_only = [k for k in missing if _needs_admin(k, scopes)]
            if admin_only:
                raise AadError(90094)
        except AadError as exc:
            return _to_client(auth, error=exc)
        if missing or auth.prompt == "consent":
            return render_template(
                "consent.html",
                auth=auth,
                client=client,
                user=user,
                items=_consent_items(scopes),
            )
        return _issue_code(auth, user, user_tenant)

    @app.post("/<tenant>/oauth2/v2.0/authorize/consent")
    def authorize_consent(tenant: str) -> Any:
        form = _single(request.form, page=True)
        auth = _pending(form.get("txn"))
        found = tenant_or_error(auth.tenant_path)
        user = _sso_user(found, oid=form.get("user"))
        if user is None:
            raise _PageError(AadError(9002313, detail="Sign in again: your session ended."))
        if form.get("decision") != "accept":
            return _to_client(auth, error=AadError(65004), subcode="cancel")
        scopes = resolve_scopes(state.seed, auth.scope, user.tenant_id)
        state.grant_consent(user.tenant_id, user.oid, auth.client_id, scopes.consent_keys)
        user_tenant = state.seed.tenant(user.tenant_id)
        assert user_tenant is not None
        return _issue_code(auth, user, user_tenant)

    def _issue_code(auth: AuthorizeRequest, user: User, tenant: Tenant) -> Any:
        sso = session.get("sso", {}).get(tenant.id, {})
        code = state.store_code(
            AuthorizationCode(
                client_id=auth.client_id,
                tenant_id=tenant.id,
                user_oid=user.oid,
                redirect_uri=auth.redirect_uri,
                scope=auth.scope,
                code_challenge=auth.code_challenge,
                nonce=auth.nonce,
                sid=sso.get("sid", str(uuid.uuid4())),
                auth_time=sso.get("auth_time", int(state.now())),
                issued_at=state.now(),
            )
        )
        with state.lock:
            state.pending.pop(auth.txn, None)
        return _to_client(auth, values={"code": code, "session_state": sso.get("sid", "")})

    def _to_client(
        auth: AuthorizeRequest,
        *,
        values: dict[str, str] | None = None,
        error: AadError | None = None,
        subcode: str | None = None,
    ) -> Any:
        """The authorization response, in the request's response mode, to a registered URI."""
        answer: dict[str, str] = dict(values or {})
        if error is not None:
            body = error.body()
            answer = {"error": body["error"], "error_description": body["error_description"]}
            if subcode:
                answer["error_subcode"] = subcode
        if auth.state is not None:
            answer["state"] = auth.state
        if auth.response_mode == "form_post":
            return render_template("form_post.html", action=auth.redirect_uri, fields=answer)
        parts = urlsplit(auth.redirect_uri)
        if auth.response_mode == "fragment":
            target = urlunsplit(parts._replace(fragment=urlencode(answer)))
        else:
            query = f"{parts.query}&{urlencode(answer)}" if parts.query else urlencode(answer)
            target = urlunsplit(parts._replace(query=query))
        response = redirect(target, 302)
        response.headers["Referrer-Policy"] = "no-referrer"
        return response

    def _sso_user(tenant: Tenant | None, oid: str | None = None) -> User | None:
        sso: dict[str, dict[str, Any]] = session.get("sso", {})
        for tid, entry in sso.items():
            if tenant is not None and tid != tenant.id:
                continue
            if entry.get("sid") not in state.sso_sessions:  # signed out (or emulator restarted)
                continue
            if oid is not None and entry.get("oid") != oid:
                continue
            user = state.seed.user(tid, entry.get("oid", ""))
            if user is not None:
                return user
        return None

    def _missing_consent(client: App, user: User, scopes: ScopeRequest) -> list[str]:
        granted = state.consented(user.tenant_id, user.oid, client.client_id)
        granted |= _admin_granted(client)
        return [k for k in scopes.consent_keys if k not in granted]

    def _consent_items(scopes: ScopeRequest) -> list[tuple[str, str]]:
        items = [(s, OIDC_DESCRIPTIONS.get(s, s)) for s in scopes.oidc]
        for resource, values in scopes.resources.values():
            for value in values:
                scope = resource.scope(value)
                items.append(
                    (value, f"{scope.description if scope else value} ({resource.display_name})")
                )
        return items

    # -- token ------------------------------------------------------------------------------------
    @app.post("/<tenant>/oauth2/v2.0/token")
    @fault_point("token")
    def token(tenant: str) -> Response:
        form = _single(request.form)
        found = tenant_or_error(tenant)
        client = _authenticate_client(form, found, tenant)
        grant_type = form.get("grant_type")
        if not grant_type:
            raise AadError(90014, field="grant_type")
        if grant_type == "authorization_code":
            return _json(_redeem_code(form, client))
        if grant_type == "refresh_token":
            return _json(_redeem_refresh(form, client, found))
        if grant_type == "client_credentials":
            return _json(_client_credentials(form, client, found, tenant))
        if grant_type == "password":
            return _json(_password(form, client, found))
        raise AadError(70003, grant_type=grant_type)

    def _authenticate_client(form: dict[str, str], tenant: Tenant | None, ref: str) -> App:
        client_id, secret = form.get("client_id"), form.get("client_secret")
        if request.authorization and request.authorization.type == "basic":
            client_id = request.authorization.username or client_id
            secret = request.authorization.password or secret
        if not client_id:
            raise AadError(90014, field="client_id")
        client = state.seed.app(client_id)
        if client is None or (tenant is not None and not _usable_in(client, tenant)):
            raise AadError(
                700016, status=400, client_id=client_id, tenant=tenant.id if tenant else ref
            )
        if client.public_client:
            return client
        if form.get("client_assertion"):
            raise AadError(
                9002313, detail="The local Entra ID accepts client secrets, not assertions."
            )
        if not secret:
            raise AadError(7000218)
        match = next(
            (s for s in client.secrets if hmac.compare_digest(s.value.encode(), secret.encode())),
            None,
        )
        if match is None:
            raise AadError(7000215, client_id=client.client_id)
        if match.expires.timestamp() < state.now():
            raise AadError(7000222, client_id=client.client_id)
        return client

    def _redeem_code(form: dict[str, str], client: App) -> dict[str, Any]:
        handle = form.get("code")
        if not handle:
            raise AadError(90014, field="code")
        with state.lock:
            record = state.codes.get(handle)
            if record is None or record.client_id != client.client_id:
                raise AadError(70000)
            if record.redeemed:
                raise AadError(54005)
            record.redeemed = True  # one use only, whatever happens next
        if state.now() > record.issued_at + state.settings.code_lifetime:
            raise AadError(70008)
        if form.get("redirect_uri") != record.redirect_uri:
            raise AadError(
                50011, redirect_uri=form.get("redirect_uri", ""), client_id=client.client_id
            )
        verifier = form.get("code_verifier", "")
        if not verifier or not hmac.compare_digest(hash_verifier(verifier), record.code_challenge):
            raise AadError(501481)
        user = _user(record.tenant_id, record.user_oid)
        scopes = resolve_scopes(state.seed, form.get("scope") or record.scope, record.tenant_id)
        _require_consent(client, user, scopes)
        return _tokens(
            client,
            record.tenant_id,
            user,
            scopes,
            form,
            nonce=record.nonce,
            sid=record.sid,
            auth_time=record.auth_time,
            family=None,
        )

    def _redeem_refresh(form: dict[str, str], client: App, tenant: Tenant | None) -> dict[str, Any]:
        handle = form.get("refresh_token")
        if not handle:
            raise AadError(90014, field="refresh_token")
        now = state.now()
        with state.lock:
            grant = state.refresh_grants.get(handle)
            if grant is None or grant.client_id != client.client_id:
                raise AadError(9002313, detail="The refresh token is not valid for this client.")
            if state.is_revoked(grant):
                raise AadError(50173)
            if grant.used and state.settings.refresh_token_rotation == "strict":  # noqa: S105
                # A rotated token presented again: someone kept an old copy (RFC 9700 §4.14.2).
                state.revoked_families.add(grant.family)
                raise AadError(50173)
            inactive = now - grant.last_used
            if inactive > state.settings.refresh_token_inactive_lifetime:
                raise AadError(
                    700082, issued=_iso(grant.issued_at), inactive=f"{int(inactive)} seconds"
                )
            grant.used = True
            grant.last_used = now
        if tenant is not None and tenant.id != grant.tenant_id:
            raise AadError(9002313, detail="The refresh token was issued in another tenant.")
        user = _user(grant.tenant_id, grant.user_oid)
        scopes = resolve_scopes(state.seed, form.get("scope", ""), grant.tenant_id)
        _require_consent(client, user, scopes)
        return _tokens(
            client,
            grant.tenant_id,
            user,
            scopes,
            form,
            nonce=None,
            sid=grant.sid,
            auth_time=grant.auth_time,
            family=grant.family,
        )

    def _client_credentials(
        form: dict[str, str], client: App, tenant: Tenant | None, ref: str
    ) -> dict[str, Any]:
        raw = form.get("scope", "")
        if not raw:
            raise AadError(90014, field="scope")
        items = raw.split()
        if len(items) != 1 or not items[0].endswith("/.default"):
            raise AadError(1002012, scope=raw)
        tenant_id = tenant.id if tenant else client.tenant_id
        resource = resolve_resource(state.seed, items[0][: -len("/.default")], tenant_id)
        roles = _granted_roles(client, resource)
        token, lifetime = minter.access_token(
            client=client, resource=resource, tenant_id=tenant_id, user=None, scopes=[], roles=roles
        )
        return {
            "token_type": "Bearer",
            "expires_in": lifetime,
            "ext_expires_in": lifetime,
            "access_token": token,
        }

    def _password(form: dict[str, str], client: App, tenant: Tenant | None) -> dict[str, Any]:
        for field in ("username", "password", "scope"):
            if not form.get(field):
                raise AadError(90014, field=field)
        candidates = [tenant.id] if tenant is not None else [t.id for t in state.seed.tenants]
        user = next(
            (u for tid in candidates if (u := state.seed.user(tid, form["username"])) is not None),
            None,
        )
        if user is None or not hmac.compare_digest(
            user.password.encode(), form["password"].encode()
        ):
            raise AadError(50126)
        scopes = resolve_scopes(state.seed, form["scope"], user.tenant_id)
        _require_consent(client, user, scopes)
        return _tokens(
            client,
            user.tenant_id,
            user,
            scopes,
            form,
            nonce=None,
            sid=str(uuid.uuid4()),
            auth_time=int(state.now()),
            family=None,
        )

    def _require_consent(client: App, user: User, scopes: ScopeRequest) -> None:
        missing = [k for k in _missing_consent(client, user, scopes) if not k.startswith("oidc|")]
        if missing:
            raise AadError(
                65001,
                suberror="consent_required",
                client_id=client.client_id,
                app_name=client.display_name,
            )

    def _tokens(
        client: App,
        tenant_id: str,
        user: User,
        scopes: ScopeRequest,
        form: dict[str, str],
        *,
        nonce: str | None,
        sid: str,
        auth_time: int,
        family: str | None,
    ) -> dict[str, Any]:
        picked = scopes.single_resource(form.get("scope", ""))
        if picked is None:  # OpenID Connect scopes only: Entra returns a Graph token
            resource = resolve_resource(state.seed, GRAPH_APP_ID, tenant_id)
            values: list[str] = []
        else:
            resource, values = picked
        if scopes.default or not values:
            granted = state.consented(tenant_id, user.oid, client.client_id) | _admin_granted(
                client
            )
            prefix = f"{resource.app_id}|"
            values = values or [k[len(prefix) :] for k in sorted(granted) if k.startswith(prefix)]
        scp = values + (
            [s for s in scopes.oidc if s != "offline_access"] if resource.is_graph else []
        )
        roles = minter.user_roles(user, resource.app)
        access, lifetime = minter.access_token(
            client=client,
            resource=resource,
            tenant_id=tenant_id,
            user=user,
            scopes=scp,
            roles=roles,
        )
        answer: dict[str, Any] = {
            "token_type": "Bearer",
            "scope": " ".join(
                scp if resource.is_graph else [f"{resource.identifier}/{v}" for v in values]
            ),
            "expires_in": lifetime,
            "ext_expires_in": lifetime,
            "access_token": access,
        }
        if "offline_access" in scopes.oidc:
            now = state.now()
            answer["refresh_token"] = state.store_refresh(
                RefreshGrant(
                    client_id=client.client_id,
                    tenant_id=tenant_id,
                    user_oid=user.oid,
                    sid=sid,
                    auth_time=auth_time,
                    issued_at=now,
                    last_used=now,
                    family=family or secrets.token_hex(8),
                )
            )
            answer["refresh_token_expires_in"] = state.settings.refresh_token_inactive_lifetime
        if "openid" in scopes.oidc:
            answer["id_token"] = minter.id_token(
                user=user,
                app=client,
                tenant_id=tenant_id,
                nonce=nonce,
                sid=sid,
                with_email="email" in scopes.oidc,
            )
        if form.get("client_info") == "1":
            answer["client_info"] = client_info(user)
        return answer

    def _user(tenant_id: str, oid: str) -> User:
        user = state.seed.user(tenant_id, oid)
        if user is None:
            raise AadError(50126)
        return user

    def _granted_roles(client: App, resource: Resource) -> list[str]:
        roles: list[str] = []
        for grant in client.app_permissions:
            try:
                granted_to = resolve_resource(state.seed, grant.resource, client.tenant_id)
            except AadError:
                continue
            if granted_to.app_id != resource.app_id:
                continue
            for value in grant.roles:
                role = resource.role(value)
                if role is not None and "Application" in role.allowed_member_types:
                    roles.append(role.value)
        return roles

    # -- logout -----------------------------------------------------------------------------------
    @app.route("/<tenant>/oauth2/v2.0/logout", methods=["GET", "POST"])
    @fault_point("logout")
    def logout(tenant: str) -> Any:
        params = _single(request.values, page=True)
        with state.lock:
            for entry in (session.pop("sso", None) or {}).values():
                state.sso_sessions.discard(entry.get("sid"))
        session.pop("txns", None)
        target = params.get("post_logout_redirect_uri")
        client_id = params.get("client_id") or _hint_audience(params.get("id_token_hint"))
        client = state.seed.app(client_id) if client_id else None
        notice = ""
        if target:
            allowed = client is not None and target in (
                *client.redirect_uris,
                *client.post_logout_redirect_uris,
            )
            if allowed:
                parts = urlsplit(target)
                if params.get("state"):
                    extra = urlencode({"state": params["state"]})
                    parts = parts._replace(query=f"{parts.query}&{extra}" if parts.query else extra)
                return redirect(urlunsplit(parts), 302)
            notice = (
                "The app asked to return to an address that is not registered for it, so you "
                "stay here. Register it as a redirect URI (or post-logout URI) of the app."
            )
        return render_template("signed_out.html", notice=notice)

    def _hint_audience(hint: str | None) -> str | None:
        if not hint:
            return None
        import jwt as pyjwt

        try:
            header = pyjwt.get_unverified_header(hint)
            key = state.key_by_kid(str(header.get("kid", "")))
            if key is None:
                return None
            claims = pyjwt.decode(
                hint,
                key.private_key.public_key(),
                algorithms=["RS256"],
                options={"verify_exp": False, "verify_aud": False},
            )
        except pyjwt.PyJWTError:
            return None
        aud = claims.get("aud")
        return aud if isinstance(aud, str) else None

    @app.get("/")
    def home() -> str:
        return render_template("home.html", seed=state.seed, urls=urls)

    from .admin import admin_blueprint
    from .graph import graph_blueprint

    app.register_blueprint(graph_blueprint(state, urls, fault_point))
    app.register_blueprint(admin_blueprint(state))
    return app


def _usable_in(client: App, tenant: Tenant) -> bool:
    return client.tenant_id == tenant.id or client.multi_tenant


def _assigned(user: User, client: App) -> bool:
    names = {client.client_id.lower(), *(u.lower() for u in client.identifier_uris)}
    return any(a.app.lower() in names for a in user.app_roles)


def _admin_granted(client: App) -> set[str]:
    keys: set[str] = set()
    for item in client.admin_consented_scopes:
        if "/" in item:
            identifier, _, value = item.rpartition("/")
        else:
            identifier, value = "https://graph.microsoft.com", item
        app_id = GRAPH_APP_ID if "graph.microsoft.com" in identifier else identifier
        keys.add(f"{app_id}|{value}")
    return keys


def _needs_admin(key: str, scopes: ScopeRequest) -> bool:
    app_id, _, value = key.partition("|")
    entry = scopes.resources.get(app_id)
    if entry is None:
        return False
    scope = entry[0].scope(value)
    return bool(scope and scope.admin_consent_required)


def _single(values: MultiDict[str, str], *, page: bool = False) -> dict[str, str]:
    """Parameters given once each: a repeated one makes the request malformed (Entra's rule)."""
    repeated = [k for k in values if len(values.getlist(k)) > 1]
    if repeated:
        error = AadError(9002313, detail=f"The parameter '{repeated[0]}' appears more than once.")
        raise _PageError(error) if page else error
    return {k: values[k] for k in values}


def _apply_fault(state: EmulatorState, fault: Fault, endpoint: str) -> Response | None:
    if fault.kind == "slow":
        state.stopping.wait(fault.delay)
        return None
    if fault.kind == "hang":
        state.stopping.wait(fault.delay or 60.0)
        return _json({"error": "temporarily_unavailable"}, 504)
    if fault.kind == "garbage":
        body = (
            fault.body
            if fault.body is not None
            else ("<html><body><h1>Service Unavailable</h1><p>This is not JSON.</p></body></html>")
        )
        return Response(body, 200, mimetype="text/html")
    if endpoint == "graph":
        payload: dict[str, Any] = {
            "error": {
                "code": "TooManyRequests" if fault.status == 429 else "ServiceUnavailable",
                "message": "Injected fault of the local Entra ID.",
                "innerError": {"request-id": str(uuid.uuid4())},
            }
        }
    else:
        payload = {"error": "temporarily_unavailable", "error_description": "Injected fault."}
    response = _json(payload, fault.status)
    if fault.retry_after is not None:
        response.headers["Retry-After"] = str(fault.retry_after)
    for name, value in fault.headers:
        response.headers[name] = value
    return response


def _json(payload: dict[str, Any], status: int = 200) -> Response:
    response = jsonify(payload)
    response.status_code = status
    return response


def _iso(moment: float) -> str:
    import datetime as dt

    return dt.datetime.fromtimestamp(moment, dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%SZ")
