"""The signed-in user of a Django request and their tokens: what views and templates use.

``request.user`` is the Django ``User`` (``django.contrib.auth``); ``request.entra``
(``EntraRequest``, set by ``EntraAuthMiddleware``) is their Entra ID side: the verified ID
token's claims and roles, and their access tokens from their MSAL cache (``get_token``,
``graph()``, and ``DownstreamApi.for_user(request.entra)``).

The session holds what ``entra_auth.client.session`` defines for every adapter, sealed to the
session's key with a key derived from ``SECRET_KEY``. On each request the seal is checked, and
so is that the Django user of the session is the Entra ID user it sealed: a session whose two
halves disagree (a store writer, a key cycled by other code, the user deactivated) is ended.
"""

from __future__ import annotations

import logging
import secrets
import time
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any, cast
from urllib.parse import urlencode

from asgiref.sync import sync_to_async
from django.contrib import auth as django_auth
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import reverse

from ...client import pages
from ...client import session as websession
from ...client.graph import GraphClient
from ...client.session import ANONYMOUS, AnonymousUser, SignedInUser
from ...client.signin import SignedIn, safe_return_path
from ...client.token_cache import user_token_cache
from ...errors import (
    InteractionRequired,
    ProviderUnavailableError,
    SignInError,
)
from ...logs import inert
from ...pending import PendingSignIns
from .backend import BACKEND
from .conf import EntraAuth, get_auth
from .sessions import DjangoCacheTokenStore, token_store

if TYPE_CHECKING:
    import msal

    from ...pending import PendingFlow

log = logging.getLogger("entra_auth.django")
_USER_ATTR = "_entra_user"  # on the request: the signed-in user, worked out once a request


# -- who is signed in -----------------------------------------------------------------------------
def signed_in_user(request: HttpRequest) -> SignedInUser | None:
    """The Entra ID user this request's session is sealed to, or None (worked out once a
    request). A session whose seal, Django user or IdP sign-in no longer holds is ended."""
    if hasattr(request, _USER_ATTR):
        return cast("SignedInUser | None", getattr(request, _USER_ATTR))
    user = _load(request)
    setattr(request, _USER_ATTR, user)
    return user


def _load(request: HttpRequest) -> SignedInUser | None:
    session = getattr(request, "session", None)
    if session is None or websession.USER not in session:
        return None  # nothing stored: no lookup at all (anonymous visitors cost nothing)
    auth = get_auth()
    data = websession.user_data(auth.seal_key, session.session_key, session)
    if data is None or not _same_user(request, data):
        log.info("Session ended: its sign-in is not sealed to it or to its Django user.")
        end_session(request)
        return None
    user = SignedInUser(data)
    sid = data.get("sid")
    ended = auth.sign_ins.ended_at(sid) if isinstance(sid, str) and sid else None
    if websession.ended_since_sign_in(session, ended):
        end_session(request)  # signed out at the IdP (front-channel), here or elsewhere
        return None
    return user


def _same_user(request: HttpRequest, data: dict[str, Any]) -> bool:
    """The session's Django user is the sealed Entra ID user, signed in by our backend."""
    if request.session.get(django_auth.BACKEND_SESSION_KEY) != BACKEND:
        return False
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return False
    link = getattr(user, "entra", None)
    return (
        link is not None
        and link.tenant_id == str(data["tid"]).lower()
        and link.object_id == str(data["oid"]).lower()
    )


def current_user(request: HttpRequest) -> SignedInUser | AnonymousUser:
    """For templates (``current_user``): the signed-in Entra ID user, or the falsy anonymous
    user."""
    return signed_in_user(request) or ANONYMOUS


def signed_out(request: HttpRequest) -> bool:
    """The IdP just sent this browser back from signing out (for a "you are signed out"
    notice, shown once: ``EntraAuthMiddleware`` forgets it with the first page)."""
    return bool(request.COOKIES.get(websession.SIGNED_OUT_COOKIE)) and (
        signed_in_user(request) is None
    )


# -- tokens ---------------------------------------------------------------------------------------
def _store(request: HttpRequest, auth: EntraAuth) -> DjangoCacheTokenStore | None:
    cache_id = request.session.get(websession.CACHE_ID)
    return token_store(auth, cache_id) if isinstance(cache_id, str) else None


def get_token(request: HttpRequest, scopes: Iterable[str], *, claims: str | None = None) -> str:
    """An access token for the signed-in user, from their MSAL cache (refreshed silently when
    near expiry). ``InteractionRequired`` when they must sign in or consent: raised out of the
    view, ``EntraAuthMiddleware`` sends them through the sign-in page for those scopes (and a
    resource's claims challenge, ``claims``) and back to this page."""
    wanted = tuple(scopes)
    user = signed_in_user(request)
    account = request.session.get(websession.ACCOUNT) if user is not None else None
    auth = get_auth()
    store = _store(request, auth) if user is not None else None
    if user is None or not isinstance(account, str) or store is None:
        raise InteractionRequired("Nobody is signed in.", scopes=wanted, claims=claims)
    try:
        with user_token_cache(store) as cache:
            return auth.sign_in.acquire_token(
                cache, account, wanted, user=user.principal(), claims=claims
            )
    except SignInError as exc:  # a refresh spoke for someone else: end this session
        log.warning("Session ended: %s", inert(exc.code, 64))
        end_session(request)
        raise InteractionRequired(exc.message, scopes=wanted) from None


async def aget_token(
    request: HttpRequest, scopes: Iterable[str], *, claims: str | None = None
) -> str:
    """``get_token`` for async views: MSAL, the session and the cache in a worker thread."""
    return await sync_to_async(get_token)(request, tuple(scopes), claims=claims)


class EntraRequest:
    """``request.entra``: the signed-in user's Entra ID side. Falsy when nobody signed in with
    Entra ID. A ``UserTokens`` (``get_token(scopes, claims=)``) for
    ``DownstreamApi.for_user(request.entra)``."""

    def __init__(self, request: HttpRequest):
        self._request = request

    @property
    def user(self) -> SignedInUser | AnonymousUser:
        return current_user(self._request)

    @property
    def claims(self) -> dict[str, Any]:
        return self.user.claims

    @property
    def roles(self) -> frozenset[str]:
        return self.user.roles

    def has_roles(self, *roles: str) -> bool:
        return self.user.has_roles(*roles)

    def get_token(self, scopes: Sequence[str], *, claims: str | None = None) -> str:
        return get_token(self._request, scopes, claims=claims)

    def graph(self) -> GraphClient:
        return graph(self._request)

    @property
    def signed_out(self) -> bool:
        return signed_out(self._request)

    def __bool__(self) -> bool:
        return signed_in_user(self._request) is not None

    def __repr__(self) -> str:
        return f"EntraRequest(user={self.user!r})"


def entra(request: HttpRequest) -> EntraRequest:
    found = getattr(request, "entra", None)
    return found if isinstance(found, EntraRequest) else EntraRequest(request)


def graph(request: HttpRequest) -> GraphClient:
    """Microsoft Graph as the signed-in user (``User.Read``), waiting bounded for a page: a
    throttled Graph is reported ("try again in N seconds"), not slept through; a claims
    challenge (CAE) is met silently or by a sign-in, as on the other adapters."""
    auth = get_auth()
    timeout = auth.config.http_timeout
    return GraphClient(
        entra(request),
        base_url=auth.graph_url,
        session=auth.graph_http,
        timeout=timeout,
        max_retries=1,
        max_wait=timeout,
    )


# -- sessions -------------------------------------------------------------------------------------
def start_session(
    request: HttpRequest,
    user: Any,
    signed_in: SignedIn,
    cache: msal.SerializableTokenCache,
    flow: PendingFlow,
) -> None:
    """Sign ``user`` in: a new session (new key: no fixation, whatever the old one held), the
    Django login, the sign-in's record, its token cache, the seal; the front-channel index."""
    auth = get_auth()
    old = _store(request, auth)
    if old is not None:
        old.clear()  # a previous user's tokens go with them
    request.session.flush()  # the old session deleted, a new empty one
    django_auth.login(request, user, backend=BACKEND)  # a new key (cycle_key), CSRF rotated
    session = request.session
    websession.start_after(session, signed_in, flow)
    session[websession.CACHE_ID] = secrets.token_urlsafe(24)
    store = _store(request, auth)
    assert store is not None
    store.save(cache.serialize())
    if not session.session_key:
        session.save()
    session[websession.SEAL] = websession.seal(auth.seal_key, session.session_key, session)
    claims = signed_in.user.claims
    sid = claims.get("sid")
    if isinstance(sid, str) and sid:
        auth.sign_ins.record(
            sid,
            session_id=str(session.session_key),
            cache_key=None,  # deleted with the session (sessions.delete_session)
            issuer=str(claims.get("iss", "")),
        )
    setattr(request, _USER_ATTR, SignedInUser(dict(session[websession.USER])))


def end_session(request: HttpRequest) -> None:
    """Sign out here: the token cache, the Django session (``django.contrib.auth.logout``:
    ``user_logged_out`` is sent, the session flushed)."""
    auth = get_auth()
    store = _store(request, auth)
    if store is not None:
        store.clear()
    django_auth.logout(request)
    setattr(request, _USER_ATTR, None)


# -- answers --------------------------------------------------------------------------------------
def here(request: HttpRequest) -> str:
    """This request's path and query, as a page to return to."""
    return safe_return_path(request.get_full_path())


def login_url(**params: str) -> str:
    path = reverse("entra_auth:login")
    return f"{path}?{urlencode(params, safe='/')}" if params else path


def with_headers(response: HttpResponse, frame_ancestors: str | None = None) -> HttpResponse:
    """The sign-in routes' headers (no-store, no referrer, never framed but by the IdP)."""
    for name, value in pages.headers(frame_ancestors).items():
        response[name] = value
    if frame_ancestors:
        response.xframe_options_exempt = True
    return response


def render_page(request: HttpRequest, page: pages.Page) -> HttpResponse:
    """A library page (``entra_auth/*.html``, or the app's replacement), with what only the
    adapter knows: the request, the current user, the signed-out notice."""
    context = dict(page.context)
    context.setdefault("home", "/")
    context.setdefault("request", request)
    context.setdefault("current_user", current_user(request))
    context.setdefault("entra_signed_out", signed_out(request))
    html = get_auth().jinja.get_template(page.template).render(**context)
    return with_headers(HttpResponse(html, status=page.status, content_type="text/html"))


def wants_json(request: HttpRequest) -> bool:
    """API-style requests (``Accept: application/json`` over HTML, or a JSON body) get JSON."""
    if (request.content_type or "") == "application/json":
        return True
    accept = request.headers.get("Accept", "")
    if not accept:
        return False
    preferred = getattr(request, "get_preferred_type", None)  # Django 5.2
    if preferred is not None:
        return bool(preferred(["text/html", "application/json"]) == "application/json")
    return request.accepts("application/json") and not request.accepts("text/html")


def json_answer(body: dict[str, Any], status: int) -> HttpResponse:
    from django.http import JsonResponse

    return with_headers(JsonResponse(body, status=status))


def send_to_sign_in(
    request: HttpRequest,
    scopes: Sequence[str],
    *,
    return_to: str,
    interaction: bool,
    prompt: str | None = None,
    claims: str | None = None,
) -> HttpResponse:
    """To the identity provider, the flow kept in this browser's pending-sign-in cookie."""
    auth = get_auth()
    flow = auth.sign_in.begin(
        redirect_uri=auth.config.callback_url, scopes=list(scopes), prompt=prompt, claims=claims
    )
    pending = auth.pending.open(request.COOKIES.get(auth.pending_cookie))
    pending.add(flow, return_to=return_to, interaction=interaction, now=time.time())
    return with_pending(with_headers(HttpResponseRedirect(flow["auth_uri"])), pending)


def with_pending(response: HttpResponse, pending: PendingSignIns) -> HttpResponse:
    auth = get_auth()
    attributes = auth.pending.attributes(secure=auth.secure)
    if not pending:
        response.delete_cookie(auth.pending_cookie, path="/", samesite="Lax")
    else:
        response.set_cookie(
            auth.pending_cookie,
            auth.pending.seal(pending),
            max_age=auth.pending.max_age,
            path=attributes["path"],
            secure=attributes["secure"],
            httponly=attributes["httponly"],
            samesite="Lax",
        )
    return response


def interaction_required(request: HttpRequest, error: InteractionRequired) -> HttpResponse:
    """Through the sign-in page for ``error.scopes`` (incremental consent, a claims challenge)
    and back to this page; a 403 page instead when the user just did that and there is still
    no token (another trip would loop)."""
    session = getattr(request, "session", None)
    if session is not None and websession.just_consented(
        session, error.scopes, claims=error.claims
    ):
        return render_page(request, pages.no_token_after_consent(error))
    try:
        return send_to_sign_in(
            request,
            list(error.scopes) or list(get_auth().config.scopes),
            return_to=here(request),
            interaction=True,
            claims=error.claims,
        )
    except ProviderUnavailableError as down:
        return provider_unavailable(request, down)


def provider_unavailable(
    request: HttpRequest, error: ProviderUnavailableError, *, retry: str | None = None
) -> HttpResponse:
    """503 with ``Retry-After`` (502 for nonsense): a page, or JSON for API-style requests.
    Touches neither the session nor the token cache: nothing is lost."""
    status = error.http_status
    wait = error.retry_after if error.retry_after else 5
    log.warning(
        "Identity provider %s: host=%s step=%s cause=%s",
        "answered nonsense" if status == 502 else "unavailable",
        inert(error.host, 200),
        inert(error.step, 40),
        inert(error.cause or error.code, 200),
    )
    if wants_json(request):
        response = json_answer(pages.provider_unavailable_json(error), status)
    else:
        if retry is None and request.method == "GET":
            retry = here(request)
        response = render_page(request, pages.provider_unavailable(error, retry=retry))
    if status == 503:
        response["Retry-After"] = str(wait)
    return response


def store_unavailable(request: HttpRequest) -> HttpResponse:
    """503 while the token store (the cache) is down: nothing is lost, the next request after
    it is back works."""
    log.error("Token store unavailable.")
    page = pages.store_unavailable(retry=here(request) if request.method == "GET" else None)
    try:
        response = render_page(request, page)
    except Exception:  # a replaced template that needed the store: the plain page
        response = with_headers(HttpResponse(pages.STORE_DOWN_HTML, status=503))
    response["Retry-After"] = "5"
    return response


def missing_roles(request: HttpRequest, user: SignedInUser, roles: Sequence[str]) -> HttpResponse:
    missing = sorted(set(roles) - user.roles)
    log.info("Page refused: the signed-in user lacks app role(s) %s.", inert(missing, 200))
    if wants_json(request):
        return json_answer(pages.missing_roles_json(missing), 403)
    retry = login_url(prompt="select_account", next=here(request))
    return render_page(request, pages.missing_roles(user, missing, retry=retry))


__all__ = [
    "EntraRequest",
    "aget_token",
    "current_user",
    "end_session",
    "get_token",
    "graph",
    "interaction_required",
    "missing_roles",
    "provider_unavailable",
    "render_page",
    "send_to_sign_in",
    "signed_in_user",
    "signed_out",
    "start_session",
    "store_unavailable",
]
