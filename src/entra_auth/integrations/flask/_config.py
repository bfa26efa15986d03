"""Settings for the Flask adapters: ``ENTRA_*`` keys of ``app.config`` over the environment."""

from __future__ import annotations

import os
from typing import Any

from flask import Flask

from ...config import EntraConfig


def config_from_app(app: Flask, **overrides: Any) -> EntraConfig:
    """``ENTRA_*`` keys of ``app.config`` (native values or strings) over the environment's."""
    keys = {k: v for k, v in app.config.items() if k.startswith("ENTRA_") and v is not None}
    return EntraConfig.from_mapping({**os.environ, **keys}, **overrides)
