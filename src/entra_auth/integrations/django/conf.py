"""The Django adapter's settings and the objects built from them, once a process.

``ENTRA_*`` are read from ``django.conf.settings``, then the environment (the same names and
rules as everywhere: ``EntraConfig.from_mapping``), so a project keeps its secrets in the
environment and the rest in ``settings.py``. The Django-only settings:

- ``ENTRA_ROLE_GROUPS`` ``{"Admin": "Demo admins"}``: app roles → Django groups (a name or a
  list of names; created when missing), set at each sign-in.
- ``ENTRA_GROUP_GROUPS`` ``{"<group object id>": "Editors"}``: the ``groups`` claim's ids →
  Django groups; when the token's list overflows, Graph is asked (``ENTRA_GROUP_OVERAGE_SCOPES``,
  default ``User.Read``).
- ``ENTRA_STAFF_ROLES`` / ``ENTRA_SUPERUSER_ROLES``: app roles that make ``is_staff`` /
  ``is_superuser``; when one is set, the flag follows the roles at each sign-in (unset: the
  flag is left to the app).
- ``ENTRA_CACHE_ALIAS`` (``"default"``): the ``CACHES`` entry for the users' token caches and
  the front-channel sign-out index. ``ENTRA_TOKEN_CACHE_KEY`` encrypts the token caches: required
  unless that cache is ``LocMemCache`` (the process's own memory, where a key made at start
  serves).
- ``ENTRA_SIGN_IN_MAX_AGE`` (600 s): how long a sign-in may take.
- ``ENTRA_TEMPLATE_DIRS``: directories whose ``entra_auth/*.html`` replace the library's pages
  (the ``DIRS`` of a Jinja2 template backend count too).

Everything is built on first use and built again when a test changes a setting
(``django.test.signals.setting_changed``: pytest-django's ``settings`` fixture), so each test
can point ``ENTRA_AUTHORITY`` at its own emulator.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import urlsplit

import jinja2
import requests
from cryptography.fernet import Fernet
from django.conf import settings

from ...client.signin import SignInFlow
from ...client.signins import SignInIndex
from ...client.token_cache import TokenCacheCipher
from ...config import ENVIRONMENT, EntraConfig
from ...derive import derive_key
from ...errors import ConfigurationError
from ...pending import PendingSignInCookie
from ...templates import TEMPLATES

SETTINGS_PY = "settings.py"
# The settings whose change makes a new runtime (besides every ENTRA_*).
_WATCHED = frozenset({"SECRET_KEY", "CACHES", "SESSION_ENGINE", "SESSION_COOKIE_AGE", "TEMPLATES"})
_MAX_TOKEN_CACHE_TTL = 90 * 86400


def entra_settings() -> dict[str, Any]:
    """Every ``ENTRA_*`` setting: ``settings.py``'s over the environment's."""
    found: dict[str, Any] = {k: v for k, v in os.environ.items() if k.startswith("ENTRA_")}
    for name in dir(settings):
        if name.startswith("ENTRA_"):
            value = getattr(settings, name, None)
            if value is not None:
                found[name] = value
    return found


def _names(raw: Any, setting: str) -> tuple[str, ...]:
    """A list setting: a list of strings, or one comma-separated string (the environment)."""
    if raw is None or raw == "":
        return ()
    if isinstance(raw, str):
        return tuple(p.strip() for p in raw.split(",") if p.strip())
    if isinstance(raw, (list, tuple, set, frozenset)) and all(isinstance(p, str) for p in raw):
        return tuple(raw)
    raise ConfigurationError(
        f"{setting} is {raw!r}.",
        remedy=f"Set {setting} to a list of strings, or one comma-separated string.",
    )


def _mapping(raw: Any, setting: str) -> dict[str, tuple[str, ...]]:
    """A mapping setting (``{"Admin": "Demo admins"}``), JSON text in the environment; each
    value a group name or a list of them."""
    if raw is None or raw == "":
        return {}
    if isinstance(raw, str):
        try:
            raw = json.loads(raw)
        except ValueError:
            raw = None
    if not isinstance(raw, Mapping):
        raise ConfigurationError(
            f"{setting} is not a mapping.",
            remedy=f'Set {setting} to a dict such as {{"Admin": "Demo admins"}} (JSON text in '
            "the environment).",
        )
    result: dict[str, tuple[str, ...]] = {}
    for key, value in raw.items():
        names = (value,) if isinstance(value, str) else value
        if not isinstance(key, str) or not isinstance(names, (list, tuple)) or not names:
            raise ConfigurationError(
                f"{setting} maps {key!r} to {value!r}.",
                remedy="Map each name to a Django group name or a list of group names.",
            )
        if not all(isinstance(n, str) and 0 < len(n) <= 150 for n in names):
            raise ConfigurationError(
                f"{setting} maps {key!r} to {value!r}.",
                remedy="Group names are strings of 1 to 150 characters (Django's Group.name).",
            )
        result[key] = tuple(names)
    return result


class DjangoSettings:
    """The Django-only settings, checked (see the module's docstring)."""

    def __init__(self, values: Mapping[str, Any], *, home_tenant: str | None = None):
        self.role_groups = _mapping(values.get("ENTRA_ROLE_GROUPS"), "ENTRA_ROLE_GROUPS")
        # Whose app roles and groups become Django groups and flags: the app's own tenant (any
        # tenant's admin can assign a multi-tenant app's roles to their own users), or the
        # tenants ENTRA_ADMIN_TENANTS lists. None: no tenant (a common/organizations authority
        # and no list): nobody's roles grant anything in Django.
        listed = _names(values.get("ENTRA_ADMIN_TENANTS"), "ENTRA_ADMIN_TENANTS")
        home = [home_tenant] if home_tenant and _is_guid(home_tenant) else []
        self.admin_tenants = frozenset(t.lower() for t in (listed or home))
        self.group_groups = {
            k.lower(): v
            for k, v in _mapping(values.get("ENTRA_GROUP_GROUPS"), "ENTRA_GROUP_GROUPS").items()
        }
        staff, superuser = values.get("ENTRA_STAFF_ROLES"), values.get("ENTRA_SUPERUSER_ROLES")
        # None: the flag is the app's to set; a list (even empty): it follows the roles.
        self.staff_roles = None if staff is None else _names(staff, "ENTRA_STAFF_ROLES")
        self.superuser_roles = (
            None if superuser is None else _names(superuser, "ENTRA_SUPERUSER_ROLES")
        )
        self.overage_scopes = _names(
            values.get("ENTRA_GROUP_OVERAGE_SCOPES") or "User.Read", "ENTRA_GROUP_OVERAGE_SCOPES"
        )
        self.cache_alias = str(values.get("ENTRA_CACHE_ALIAS") or "default")
        self.template_dirs = _names(values.get("ENTRA_TEMPLATE_DIRS"), "ENTRA_TEMPLATE_DIRS")
        raw_age = values.get("ENTRA_SIGN_IN_MAX_AGE", 600)
        try:
            self.sign_in_max_age = int(raw_age)
        except (TypeError, ValueError):
            self.sign_in_max_age = 0
        if not 60 <= self.sign_in_max_age <= 3600:
            raise ConfigurationError(
                f"ENTRA_SIGN_IN_MAX_AGE is {raw_age!r}.",
                remedy="Use the seconds a sign-in may take, from 60 to 3600 (default 600).",
            )


class EntraAuth:
    """What the Django adapter is made of, built from the settings: the config, the sign-in
    flow (MSAL), the pending-sign-in cookie, the token caches' cache and cipher, the
    front-channel index and the pages' Jinja environment."""

    def __init__(self) -> None:
        values = entra_settings()
        needed = ("client_id", "credential")
        self.config = EntraConfig.from_mapping(
            values, sources=(SETTINGS_PY, ENVIRONMENT), require=needed
        )
        self.options = DjangoSettings(values, home_tenant=self.config.tenant_id)
        secret = getattr(settings, "SECRET_KEY", "") or ""
        if len(secret) < 16:
            raise ConfigurationError(
                "Django's SECRET_KEY is not set (or shorter than 16 characters).",
                remedy="Set SECRET_KEY in settings.py to a long random value, the same on every "
                "instance (django.core.management.utils.get_random_secret_key()).",
            )
        engine = str(getattr(settings, "SESSION_ENGINE", ""))
        if engine.endswith("signed_cookies"):
            raise ConfigurationError(
                f"SESSION_ENGINE is {engine!r}: the session lives in the browser's cookie.",
                remedy="Use a server-side session engine (django.contrib.sessions.backends.db, "
                "cache or cached_db): the sign-in is sealed to the session's id, which a "
                "cookie session does not have.",
            )
        self.sign_in = SignInFlow(self.config)
        self.graph_http = requests.Session()  # Graph answers its own errors (GraphClient)
        if self.config.ca_bundle:
            self.graph_http.verify = self.config.ca_bundle
            self.graph_http.trust_env = False
        callback = urlsplit(self.config.callback_url)
        self.callback_path = callback.path or "/"
        self.secure = callback.scheme == "https"
        # __Host-: over https no sibling domain or plain-http page can plant it (HX05).
        self.pending_cookie = "__Host-entra_signin" if self.secure else "entra_signin"
        self.pending = PendingSignInCookie(secret, max_age=self.options.sign_in_max_age)
        self.seal_key = derive_key(secret, "entra-auth session seal")
        lifetime = int(getattr(settings, "SESSION_COOKIE_AGE", 1209600))
        self.token_ttl = max(60, min(lifetime, _MAX_TOKEN_CACHE_TTL))
        self.cache = _cache(self.options.cache_alias)
        self.cipher = _cipher(self.config.token_cache_keys, self.cache, self.options.cache_alias)
        from .sessions import delete_session  # the session engine's, read when called

        self.sign_ins = SignInIndex(
            delete_session=lambda key: delete_session(self, key),
            ttl=self.token_ttl,
            cache=self.cache,
        )
        self._jinja: jinja2.Environment | None = None

    @property
    def graph_url(self) -> str:
        return self.config.graph_url or self.sign_in.discovery.metadata.graph_url

    @property
    def jinja(self) -> jinja2.Environment:
        """The library's pages: an app's replacements first (``ENTRA_TEMPLATE_DIRS``, then the
        ``DIRS`` of its Jinja2 template backends), then the library's own; the globals of the
        app's Jinja2 environment (its ``url_for`` …) too, so a replaced page can extend the
        app's layout."""
        if self._jinja is None:
            dirs, app_globals = list(self.options.template_dirs), {}
            for backend in _jinja_backends():
                dirs.extend(str(d) for d in backend.get("DIRS", ()))
            try:
                from django.template import engines
                from django.template.backends.jinja2 import Jinja2

                for engine in engines.all():
                    if isinstance(engine, Jinja2):
                        app_globals.update(engine.env.globals)
            except Exception:  # noqa: S110 - a broken backend: the library's pages still
                pass
            loader = jinja2.ChoiceLoader(
                [*(jinja2.FileSystemLoader(d) for d in dirs), jinja2.FileSystemLoader(TEMPLATES)]
            )
            env = jinja2.Environment(loader=loader, autoescape=True)
            env.globals.update({k: v for k, v in app_globals.items() if k not in env.globals})
            self._jinja = env
        return self._jinja


def _jinja_backends() -> list[dict[str, Any]]:
    return [
        t
        for t in getattr(settings, "TEMPLATES", ())
        if str(t.get("BACKEND", "")).endswith("jinja2.Jinja2")
    ]


def _cache(alias: str) -> Any:
    from django.core.cache import caches
    from django.core.cache.backends.dummy import DummyCache

    try:
        cache = caches[alias]
    except Exception as exc:  # InvalidCacheBackendError, an import error of its backend
        raise ConfigurationError(
            f"ENTRA_CACHE_ALIAS names CACHES[{alias!r}], which cannot be used ({exc}).",
            remedy="Name an entry of CACHES (default 'default'), e.g. django.core.cache."
            "backends.redis.RedisCache for several instances.",
        ) from None
    if isinstance(cache, DummyCache):
        raise ConfigurationError(
            f"CACHES[{alias!r}] is DummyCache, which keeps nothing: every token the users' "
            "sign-ins bring would be lost at once.",
            remedy="Use LocMemCache for one process, RedisCache for several, or point "
            "ENTRA_CACHE_ALIAS at another entry of CACHES.",
        )
    return cache


def shared_cache(cache: Any) -> bool:
    """Whether other processes read this cache (anything but the process's own memory)."""
    from django.core.cache.backends.locmem import LocMemCache

    return not isinstance(cache, LocMemCache)


def _cipher(keys: Sequence[str], cache: Any, alias: str) -> TokenCacheCipher:
    """The token caches' encryption. Required of the settings when the cache is shared (Redis,
    Memcached, the database, files), as the Flask adapter requires it with Redis; for the
    process's own memory, a key made now (the caches die with the process anyway)."""
    if keys:
        return TokenCacheCipher(keys)
    if not shared_cache(cache):
        return TokenCacheCipher([Fernet.generate_key().decode()])
    raise ConfigurationError(
        f"ENTRA_TOKEN_CACHE_KEY is not set, and the users' token caches go to CACHES[{alias!r}] "
        f"({type(cache).__name__}), which other processes share: tokens are never stored "
        "unencrypted.",
        remedy="Set ENTRA_TOKEN_CACHE_KEY to a Fernet key (python -c 'from cryptography.fernet "
        "import Fernet; print(Fernet.generate_key().decode())'), the same on every instance; to "
        "rotate, put the new key first: NEW,OLD.",
    )


_lock = threading.Lock()
_current: tuple[EntraAuth, object] | None = None  # and the settings object it was read from


def _settings_in_use() -> object:
    """The object behind ``django.conf.settings``: ``override_settings`` (and pytest-django's
    ``settings`` fixture, whose ``del settings.X`` sends no ``setting_changed``) puts another
    in place; in production it never changes."""
    return vars(settings).get("_wrapped")


def get_auth() -> EntraAuth:
    """The process's ``EntraAuth``, built on first use (a bad setting raises here, saying
    which and what to set; ``manage.py check`` reports it before the first request)."""
    global _current
    source = _settings_in_use()
    current = _current
    if current is None or current[1] is not source:
        with _lock:
            current = _current
            if current is None or current[1] is not source:
                current = _current = (EntraAuth(), source)
    return current[0]


def reset(**kwargs: Any) -> None:
    """Forget the built objects (``setting_changed``): the next use reads the settings again."""
    global _current
    setting = kwargs.get("setting")
    if setting is None or setting.startswith("ENTRA_") or setting in _WATCHED:
        with _lock:
            _current = None


__all__ = ["DjangoSettings", "EntraAuth", "entra_settings", "get_auth", "reset", "shared_cache"]


def _is_guid(value: str) -> bool:
    import uuid

    try:
        return str(uuid.UUID(value)) == value.lower()
    except ValueError:
        return False
