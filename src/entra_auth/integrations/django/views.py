"""The sign-in routes (``entra_auth.integrations.django.urls``): ``/login``, the redirect path
(``/get_token``), ``/logout``, ``/logout/front-channel``, and ``admin_login`` for the admin.

Only translation lives here, as on Flask and FastAPI: the callback's decisions are
``entra_auth.client.callback`` (check, then redeem), the pages ``entra_auth.client.pages``,
sign-ins under way ``entra_auth.pending`` (the browser's own sealed cookie: anonymous
visitors store nothing server-side).
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Callable
from typing import cast
from urllib.parse import urlsplit

from django.contrib import auth as django_auth
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import reverse
from django.views.decorators import csrf
from django.views.decorators import http as methods

from ...client import callback, pages
from ...client import session as websession
from ...client.signin import safe_return_path
from ...client.signins import framing_origins
from ...errors import ProviderUnavailableError
from ...logs import inert
from .conf import get_auth
from .web import (
    end_session,
    login_url,
    provider_unavailable,
    render_page,
    send_to_sign_in,
    signed_in_user,
    start_session,
    with_headers,
    with_pending,
)

log = logging.getLogger("entra_auth.django")
View = Callable[..., HttpResponse]
# Django's own decorators, typed (django ships no annotations).
require_GET = cast(Callable[[View], View], methods.require_GET)
require_GET_or_POST = cast(Callable[[View], View], methods.require_http_methods(["GET", "POST"]))
csrf_exempt = cast(Callable[[View], View], csrf.csrf_exempt)
_PROMPTS = ("login", "select_account", "consent")
_FRONT_CHANNEL_DONE = """<!doctype html><html lang="en"><head><meta charset="utf-8">
<title>Signed out</title></head><body>Signed out.</body></html>"""


@require_GET
def login(request: HttpRequest) -> HttpResponse:
    """To the sign-in page for the configured scopes; back to ``next`` (a same-origin path)."""
    prompt = request.GET.get("prompt")
    try:
        return send_to_sign_in(
            request,
            list(get_auth().config.scopes),
            return_to=safe_return_path(request.GET.get("next")),
            interaction=False,
            prompt=prompt if prompt in _PROMPTS else None,
        )
    except ProviderUnavailableError as down:
        return provider_unavailable(request, down)


@require_GET
def callback_view(request: HttpRequest) -> HttpResponse:
    """The redirect URI: the core's checks, the code redeemed, the Django user signed in."""
    auth = get_auth()
    pending = auth.pending.open(request.COOKIES.get(auth.pending_cookie))
    decision = callback.check(
        {k: request.GET.getlist(k) for k in request.GET},
        len(request.META.get("QUERY_STRING", "")),
        signed_in=signed_in_user(request) is not None,
        session=request.session,
        pending=pending,
        login_path=reverse("entra_auth:login"),
    )
    if isinstance(decision, callback.GoTo):
        return with_headers(HttpResponseRedirect(decision.location))
    if isinstance(decision, callback.Refuse):
        return render_page(request, decision.page)
    flow = decision
    again = login_url(next=safe_return_path(flow.return_to))
    outcome = callback.redeem(
        auth.sign_in, flow, request.GET.dict(), user_loader=None, retry=again, log=log
    )
    if isinstance(outcome, callback.ProviderDown):
        return with_pending(provider_unavailable(request, outcome.error, retry=again), pending)
    if isinstance(outcome, callback.Refuse):
        return with_pending(render_page(request, outcome.page), pending)
    user = django_auth.authenticate(request, signed_in=outcome.signed_in, token_cache=outcome.cache)
    if user is None:
        log.info("Sign-in refused: no active Django user for this Entra ID user.")
        page = pages.no_account()
        detail = (
            "The Django user of this Entra ID user is inactive, or a local user holds the "
            "username it would get (link it in the admin's Entra ID users)."
        )
        page = dataclasses.replace(page, context={**page.context, "detail": detail})
        return with_pending(render_page(request, page), pending)
    start_session(request, user, outcome.signed_in, outcome.cache, flow)
    done = with_headers(HttpResponseRedirect(safe_return_path(flow.return_to)))
    return with_pending(done, pending)


@csrf_exempt  # the library's page and the demo post without a token; checked below instead
@require_GET_or_POST
def logout(request: HttpRequest) -> HttpResponse:
    """GET asks (a link or an image must not sign anyone out); POST signs out here and at the
    identity provider.

    Not Django's CSRF token (the library's sign-out form is shared with the other adapters):
    a cross-site POST carries no ``SameSite=Lax`` session cookie, and one whose ``Origin``
    names another site or is ``null`` (a sandboxed frame), or whose ``Sec-Fetch-Site`` is not
    same-origin, is refused (an app that sets ``SameSite=None`` stays protected)."""
    signed_in = signed_in_user(request) is not None or request.user.is_authenticated
    if request.method != "POST":
        if not signed_in:  # nobody to sign out: nothing to ask
            return with_headers(HttpResponseRedirect("/"))
        return render_page(request, pages.sign_out_question(form=reverse("entra_auth:logout")))
    origin = request.headers.get("Origin")
    fetched_from = request.headers.get("Sec-Fetch-Site", "same-origin")
    if (
        origin and (origin == "null" or urlsplit(origin).netloc != request.get_host())
    ) or fetched_from not in (
        "same-origin",
        "none",
    ):  # another site's page, or a sandboxed frame's (Origin: null), even with SameSite=None
        log.info("Sign-out refused: posted from another origin (%s).", inert(origin or "", 100))
        response = HttpResponse("Sign out from this site's own page.", status=403)
        return with_headers(response)
    end_session(request)
    auth = get_auth()
    response = with_headers(
        HttpResponseRedirect(auth.sign_in.sign_out_url(auth.config.after_logout_url))
    )
    response.set_cookie(**websession.signed_out_cookie(secure=auth.secure))
    return response


@csrf_exempt
@require_GET
def front_channel(request: HttpRequest) -> HttpResponse:
    """The IdP, signing the user out of another app of the same sign-in, loads this in a
    hidden frame with ``sid`` (OpenID Connect Front-Channel Logout 1.0). Ends every session of
    that sign-in, on every instance sharing the cache, and their token caches. The frame
    carries no cookie of ours to rely on."""
    auth = get_auth()
    framers = framing_origins(str(auth.config.authority), auth.sign_in.discovery.known)
    sid, issuer = request.GET.get("sid"), request.GET.get("iss")
    if not sid or len(sid) > 256 or (issuer is not None and len(issuer) > 512):
        answer = HttpResponse("sid is required.", status=400, content_type="text/plain")
        return with_headers(answer, framers)
    ended = auth.sign_ins.end(sid, issuer=issuer, now=time.time())
    user = signed_in_user(request)  # this browser's own session, when the frame did carry it
    if user is not None and user.claims.get("sid") == sid:
        end_session(request)
    log.info("Front-channel sign-out: %d session(s) ended.", ended)
    return with_headers(HttpResponse(_FRONT_CHANNEL_DONE, content_type="text/html"), framers)


@require_GET
def admin_login(request: HttpRequest) -> HttpResponse:
    """The Django admin's login page, through Entra ID: ``path("admin/login/", admin_login)``
    before ``admin.site.urls``. A signed-in user the admin does not let in (not staff) gets
    the 403 page, not another sign-in."""
    next_path = safe_return_path(request.GET.get("next") or reverse("admin:index"))
    user = request.user
    if not user.is_authenticated:
        return with_headers(HttpResponseRedirect(login_url(next=next_path)))
    if user.is_active and user.is_staff:
        return with_headers(HttpResponseRedirect(next_path))
    page = pages.Page(
        "entra_auth/forbidden.html",
        403,
        {
            "title": "You don't have access to the administration pages",
            "message": "You are signed in, but your account is not one of this app's "
            "administrators.",
            "remedy": "Ask the app's administrator for access, then sign in again.",
            "detail": "The Django user is not staff (is_staff): give the user an app role "
            "listed in ENTRA_STAFF_ROLES, which takes effect at their next sign-in.",
            "retry": login_url(prompt="select_account", next=next_path),
        },
    )
    return render_page(request, page)


__all__ = ["admin_login", "callback_view", "front_channel", "login", "logout"]
