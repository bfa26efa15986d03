"""System checks (``manage.py check``, and before ``runserver``/``migrate``): the settings
build (every missing or wrong ``ENTRA_*`` named, with what to set), the middleware, backend
and redirect path are in place. An error stops ``runserver``: the app refuses to start rather
than fail at a user's first sign-in."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.checks import Error, Warning

from ...errors import EntraAuthError

MIDDLEWARE = "entra_auth.integrations.django.middleware.EntraAuthMiddleware"
AUTH_MIDDLEWARE = "django.contrib.auth.middleware.AuthenticationMiddleware"


def check_settings(app_configs: Any = None, **kwargs: Any) -> list[Any]:
    from .backend import BACKEND
    from .conf import get_auth, shared_cache

    problems: list[Any] = []
    try:
        auth = get_auth()
    except EntraAuthError as exc:
        return [Error(exc.message, hint=exc.remedy or None, id="entra_auth.E001")]
    middleware = list(getattr(settings, "MIDDLEWARE", ()) or ())
    if MIDDLEWARE not in middleware:
        problems.append(
            Error(
                "EntraAuthMiddleware is not in MIDDLEWARE.",
                hint=f"Add {MIDDLEWARE!r} after {AUTH_MIDDLEWARE!r}: it answers the need to "
                "sign in again or consent, and a provider that is down.",
                id="entra_auth.E002",
            )
        )
    elif AUTH_MIDDLEWARE not in middleware or middleware.index(AUTH_MIDDLEWARE) > middleware.index(
        MIDDLEWARE
    ):
        problems.append(
            Error(
                "EntraAuthMiddleware comes before AuthenticationMiddleware (or that is missing).",
                hint=f"Put {MIDDLEWARE!r} after {AUTH_MIDDLEWARE!r}.",
                id="entra_auth.E003",
            )
        )
    else:
        between = middleware[middleware.index(AUTH_MIDDLEWARE) + 1 : middleware.index(MIDDLEWARE)]
        if between:
            problems.append(
                Warning(
                    f"{', '.join(between)} run(s) between AuthenticationMiddleware and "
                    "EntraAuthMiddleware: they see request.user before its sign-in is checked "
                    "against the session's seal (an edited or ended session still looks signed "
                    "in to them).",
                    hint=f"Put {MIDDLEWARE!r} right after {AUTH_MIDDLEWARE!r}.",
                    id="entra_auth.W002",
                )
            )
    if BACKEND not in (getattr(settings, "AUTHENTICATION_BACKENDS", ()) or ()):
        problems.append(
            Error(
                "EntraBackend is not in AUTHENTICATION_BACKENDS.",
                hint=f"Add {BACKEND!r} (with django.contrib.auth.backends.ModelBackend for "
                "local accounts, if any).",
                id="entra_auth.E004",
            )
        )
    try:
        from django.urls import NoReverseMatch, reverse

        routed = reverse("entra_auth:callback")
    except NoReverseMatch:
        routed = None
    except Exception:  # a broken URLconf is Django's own check to report
        routed = auth.callback_path
    if routed is None:
        problems.append(
            Error(
                "The sign-in routes are not in the URLconf.",
                hint='Add path("", include("entra_auth.integrations.django.urls")) to '
                "ROOT_URLCONF's urlpatterns.",
                id="entra_auth.E005",
            )
        )
    elif routed != auth.callback_path:
        problems.append(
            Error(
                f"The redirect path is routed at {routed} but the redirect URI is "
                f"{auth.config.callback_url}.",
                hint="Include entra_auth.integrations.django.urls at the root (no prefix), or "
                "make ENTRA_REDIRECT_URI end with the routed path.",
                id="entra_auth.E006",
            )
        )
    if not shared_cache(auth.cache):
        problems.append(
            Warning(
                f"The users' token caches are in CACHES[{auth.options.cache_alias!r}], this "
                "process's own memory (LocMemCache).",
                hint="Fine for one process. With several (gunicorn workers, instances) use "
                "django.core.cache.backends.redis.RedisCache and set ENTRA_TOKEN_CACHE_KEY, or "
                "users are sent to sign in again by the workers that do not hold their tokens.",
                id="entra_auth.W001",
            )
        )
    return problems
