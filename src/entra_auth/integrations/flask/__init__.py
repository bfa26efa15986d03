"""entra-auth for Flask: ``EntraAuth`` signs users in, ``ApiProtector`` protects an API.

Needs the ``flask`` extra: ``pip install 'entra-auth[flask]'``.
"""

from __future__ import annotations

try:
    import flask  # noqa: F401
    import flask_session  # noqa: F401
except ImportError as exc:  # pragma: no cover - shown by tests/test_packaging.py
    raise ImportError(
        f"entra_auth.integrations.flask needs Flask and Flask-Session ({exc.name} is missing): "
        "pip install 'entra-auth[flask]'"
    ) from exc

from ...client.session import AnonymousUser, SignedInUser
from ._config import config_from_app
from .api import ApiProtector, current_principal, require_token
from .login import EntraAuth, current_user

__all__ = [
    "AnonymousUser",
    "ApiProtector",
    "EntraAuth",
    "SignedInUser",
    "config_from_app",
    "current_principal",
    "current_user",
    "require_token",
]
