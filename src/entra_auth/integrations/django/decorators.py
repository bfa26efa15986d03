"""``@entra_login_required`` and ``EntraLoginRequiredMixin``: a view for users signed in with
Entra ID, with app roles and access tokens it needs.

    @entra_login_required                            # else to /login?next=<this page>
    def profile(request): ...

    @entra_login_required(roles=["Admin"])           # every role, else a 403 page
    async def admin(request): ...                    # async views too

    @entra_login_required(scopes=["api://.../Data.Read"])  # consent asked first if needed
    def report(request): ...

    class Reports(EntraLoginRequiredMixin, TemplateView):
        entra_roles = ["Reader"]

``roles`` are the app roles of the ID token (the sign-in's, as Flask's and FastAPI's
``login_required``); ``scopes`` makes sure a token for them can be had (silently, else through
the sign-in page for those scopes: incremental consent) before the view runs. A user signed in
to Django another way (a password) is not an Entra ID sign-in: they are sent to sign in.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Iterable
from typing import Any, TypeVar, cast, overload

from asgiref.sync import markcoroutinefunction, sync_to_async
from django.http import HttpRequest, HttpResponse

from ...client.signin import safe_return_path
from ...errors import InteractionRequired, ProviderUnavailableError
from .web import (
    get_token,
    here,
    interaction_required,
    login_url,
    missing_roles,
    provider_unavailable,
    signed_in_user,
    with_headers,
)

F = TypeVar("F", bound=Callable[..., Any])


def gate(
    request: HttpRequest, *, roles: tuple[str, ...], scopes: tuple[str, ...]
) -> HttpResponse | None:
    """The answer for a request the view may not serve yet (sign in, a 403 page, consent), or
    None when it may."""
    user = signed_in_user(request)
    if user is None:  # the page to return to rides along
        from django.http import HttpResponseRedirect

        return with_headers(HttpResponseRedirect(login_url(next=safe_return_path(here(request)))))
    if roles and not user.has_roles(*roles):
        return missing_roles(request, user, roles)
    if scopes:
        try:
            get_token(request, scopes)
        except InteractionRequired as exc:
            return interaction_required(request, exc)
        except ProviderUnavailableError as down:
            return provider_unavailable(request, down)
    return None


@overload
def entra_login_required(view: F) -> F: ...
@overload
def entra_login_required(
    *, scopes: Iterable[str] = (), roles: Iterable[str] = ()
) -> Callable[[F], F]: ...
def entra_login_required(
    view: F | None = None, *, scopes: Iterable[str] = (), roles: Iterable[str] = ()
) -> F | Callable[[F], F]:
    """The view needs a user signed in with Entra ID (else ``/login?next=…``), with every app
    role of ``roles`` (else a 403 page) and a token for ``scopes`` (else consent first)."""
    need_roles, need_scopes = tuple(roles), tuple(scopes)

    def decorate(view: F) -> F:
        if inspect.iscoroutinefunction(view):

            @functools.wraps(view)
            async def async_wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> Any:
                refusal = await sync_to_async(gate)(request, roles=need_roles, scopes=need_scopes)
                if refusal is not None:
                    return refusal
                return await view(request, *args, **kwargs)

            return cast(F, markcoroutinefunction(async_wrapper))

        @functools.wraps(view)
        def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> Any:
            refusal = gate(request, roles=need_roles, scopes=need_scopes)
            if refusal is not None:
                return refusal
            return view(request, *args, **kwargs)

        return wrapper  # type: ignore[return-value]

    return decorate(view) if view is not None else decorate


class EntraLoginRequiredMixin:
    """``entra_login_required`` for class-based views (first among the bases); set
    ``entra_roles`` and ``entra_scopes`` on the class. Async views (``async def get``) too."""

    entra_roles: Iterable[str] = ()
    entra_scopes: Iterable[str] = ()

    def dispatch(self, request: HttpRequest, *args: Any, **kwargs: Any) -> Any:
        roles, scopes = tuple(self.entra_roles), tuple(self.entra_scopes)
        parent = super().dispatch  # type: ignore[misc]
        if getattr(self, "view_is_async", False):

            async def checked() -> Any:
                refusal = await sync_to_async(gate)(request, roles=roles, scopes=scopes)
                if refusal is not None:
                    return refusal
                return await parent(request, *args, **kwargs)

            return checked()
        refusal = gate(request, roles=roles, scopes=scopes)
        if refusal is not None:
            return refusal
        return parent(request, *args, **kwargs)


__all__ = ["EntraLoginRequiredMixin", "entra_login_required", "gate"]
