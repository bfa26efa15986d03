"""``EntraAuthMiddleware``: after ``SessionMiddleware`` and ``AuthenticationMiddleware``.

- ``request.entra`` (``EntraRequest``): the signed-in user's Entra ID side and tokens;
- ``InteractionRequired`` raised by a view (``get_token``, Graph, ``DownstreamApi``): the user
  goes through the sign-in page for those scopes (incremental consent) or that claims
  challenge, and comes back to the page;
- ``ProviderUnavailableError`` (the IdP or Graph down, slow, answering nonsense): the 503 page
  with ``Retry-After`` (502 for nonsense), or JSON for API-style requests; the session kept;
- ``SessionStoreUnavailable`` (the token cache's store down): the 503 page;
- the pages of a signed-in user are ``Cache-Control: no-store`` (no shared or back-button
  caching of their pages), and the signed-out notice is shown once.

A Django login made by ``EntraBackend`` stands only with its sealed Entra ID sign-in: before the
view runs, a session whose seal, Django user or IdP sign-in no longer holds is ended.

Sync and async: Django runs it either way (``MiddlewareMixin``).
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth import BACKEND_SESSION_KEY
from django.http import HttpRequest, HttpResponse
from django.utils.cache import patch_vary_headers
from django.utils.deprecation import MiddlewareMixin

from ...client import session as websession
from ...errors import InteractionRequired, ProviderUnavailableError, SessionStoreUnavailable
from .backend import BACKEND
from .web import (
    EntraRequest,
    end_session,
    interaction_required,
    provider_unavailable,
    signed_in_user,
    store_unavailable,
)


class EntraAuthMiddleware(MiddlewareMixin):  # type: ignore[misc]
    def process_request(self, request: HttpRequest) -> None:
        request.entra = EntraRequest(request)
        # Checked before the view sees ``request.user``: a Django login of our backend stands
        # only with its sealed Entra ID sign-in (else the session ends here).
        session = getattr(request, "session", None)
        ours = session is not None and (
            websession.USER in session or session.get(BACKEND_SESSION_KEY) == BACKEND
        )
        if ours and signed_in_user(request) is None:
            end_session(request)

    def process_exception(self, request: HttpRequest, exception: Exception) -> Any:
        if isinstance(exception, InteractionRequired):
            return interaction_required(request, exception)
        if isinstance(exception, ProviderUnavailableError):
            return provider_unavailable(request, exception)
        if isinstance(exception, SessionStoreUnavailable):
            return store_unavailable(request)
        return None

    def process_response(self, request: HttpRequest, response: HttpResponse) -> HttpResponse:
        session = getattr(request, "session", None)
        if session is not None and websession.USER in session:
            response["Cache-Control"] = "no-store"
            patch_vary_headers(response, ("Cookie",))
        has_cookie = bool(request.COOKIES.get(websession.SIGNED_OUT_COOKIE))
        match = getattr(request, "resolver_match", None)
        if websession.signed_out_notice_seen(
            has_cookie=has_cookie,
            status=response.status_code,
            content_type=response.get("Content-Type", ""),
            sign_out_page=match is not None and match.view_name == "entra_auth:logout",
        ):
            response.delete_cookie(websession.SIGNED_OUT_COOKIE, path="/", samesite="Lax")
        return response


__all__ = ["EntraAuthMiddleware"]
