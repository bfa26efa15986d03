"""The control API's header, where the CLI, tests and users' tests import it from.

The control API itself is ``endpoints/admin.py``.
"""

from __future__ import annotations

from .endpoints.admin import ADMIN_HEADER

__all__ = ["ADMIN_HEADER"]
