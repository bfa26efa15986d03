"""The Django demo's settings: the other demos' pages and routes on Django, signed in through
``entra_auth.integrations.django`` (a real Django ``User``, the admin for a role mapped to staff).

Configured as the other demos are: the ``ENTRA_*`` variables of the environment (``run.py``
sets those of the local Entra ID; set them yourself for a real tenant). ``DJANGO_DB_PATH``
places the SQLite database (default: ``django-demo.sqlite3`` in ``DEMO_STATE_DIR``, the local
Entra ID's state directory ``.entra-emulator``); ``DJANGO_SECRET_KEY`` the secret (default: a
new one each start, which signs everyone out).
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

HERE = Path(__file__).resolve().parent
DEMO = HERE.parent / "demo"  # the Flask demo's templates and static files, shared

SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY") or secrets.token_urlsafe(50)
DEBUG = os.environ.get("DJANGO_DEBUG", "").lower() in ("1", "true")
ALLOWED_HOSTS = ["localhost", "127.0.0.1"]
USE_TZ = True

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "entra_auth.integrations.django",  # EntraUser, the sign-in routes' checks
    "examples.django_demo",  # the demo's "Demo admins" group and its permissions
]
MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "entra_auth.integrations.django.middleware.EntraAuthMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]
AUTHENTICATION_BACKENDS = ["entra_auth.integrations.django.backend.EntraBackend"]
ROOT_URLCONF = "examples.django_demo.urls"
TEMPLATES = [
    {  # the demo's pages: the Flask demo's Jinja templates, with its url_for
        "BACKEND": "django.template.backends.jinja2.Jinja2",
        "DIRS": [DEMO / "templates"],
        "APP_DIRS": False,
        "OPTIONS": {"environment": "examples.django_demo.jinja.environment"},
    },
    {  # the admin's
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ]
        },
    },
]

_state = Path(os.environ.get("DEMO_STATE_DIR") or ".entra-emulator")
DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": os.environ.get("DJANGO_DB_PATH") or str(_state / "django-demo.sqlite3"),
    }
}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
# One process: the users' token caches in its memory (RedisCache and ENTRA_TOKEN_CACHE_KEY for
# several).
CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
SILENCED_SYSTEM_CHECKS = ["entra_auth.W001"]  # that warning, for one process: the demo is one
STATIC_URL = "/static/"
STATICFILES_DIRS = [DEMO / "static"]
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"

# What the web app's app roles mean here: Admin (Adele has it in the local Entra ID's
# directory, Megan does not) is the group "Demo admins" and the admin site.
ENTRA_ROLE_GROUPS = {"Admin": "Demo admins"}
ENTRA_STAFF_ROLES = ["Admin"]

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": "WARNING"},
}
