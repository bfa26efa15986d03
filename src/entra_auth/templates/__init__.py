"""The pages the web adapters show themselves (``entra_auth/*.html``): Jinja templates written
for end users, shared by the Flask and the FastAPI sign-in; an app replaces any by shipping a
template of the same name."""

from __future__ import annotations

from pathlib import Path

TEMPLATES = Path(__file__).resolve().parent
