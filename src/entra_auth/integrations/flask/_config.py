"""Settings for the Flask adapters: ``ENTRA_*`` keys of ``app.config`` over the environment."""

from __future__ import annotations

import os
from collections.abc import Iterable
from typing import Any

from flask import Flask

from ...config import APP_CONFIG, ENVIRONMENT, EntraConfig


def config_from_app(app: Flask, *, require: Iterable[str] = (), **overrides: Any) -> EntraConfig:
    """``ENTRA_*`` keys of ``app.config`` (native values or strings) over the environment's.

    ``require`` names the fields the caller needs (``"client_id"``, ``"client_secret"`` …):
    a ``MissingSettingError`` then lists every one that is missing, the authority included,
    says that app.config and the environment were looked in, and when ``./.env`` sets one of
    them, that nothing loaded it (only ``flask run`` and ``load_dotenv()`` read a .env file).
    """
    keys = {k: v for k, v in app.config.items() if k.startswith("ENTRA_") and v is not None}
    return EntraConfig.from_mapping(
        {**os.environ, **keys}, sources=(APP_CONFIG, ENVIRONMENT), require=require, **overrides
    )
