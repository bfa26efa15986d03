"""The local Entra ID: Entra-shaped v2.0 endpoints and a small Microsoft Graph, offline.

Needs the ``emulator`` extra (it is a Flask app): ``pip install 'entra-auth[emulator]'``.
"""

try:
    import flask  # noqa: F401
except ImportError as exc:  # pragma: no cover - shown by tests/test_packaging.py
    raise ImportError(
        f"The local Entra ID needs {exc.name}: pip install 'entra-auth[emulator]'"
    ) from exc

from .seed import App, Seed, User, load_seed
from .server import EntraEmulator
from .state import EmulatorSettings, Fault

__all__ = ["App", "EmulatorSettings", "EntraEmulator", "Fault", "Seed", "User", "load_seed"]
