"""The local Entra ID: Entra-shaped v2.0 endpoints and a small Microsoft Graph, offline.

Needs the ``emulator`` extra (it is a Flask app): ``pip install 'entra-auth[emulator]'``.

The public names are here: ``EntraEmulator`` (run it, drive it), ``EmulatorSettings``,
``Fault``, and the seed's ``Seed``, ``App``, ``User`` and ``load_seed``. How the parts fit:
``server`` runs ``app`` (the Flask app built from ``endpoints/``) on the listeners of
``serving``; the endpoints read ``context``; the token endpoint's grants are ``grants``; faults
are ``faults``; the directory is ``seed``, what the emulator remembers is ``state``.
"""

try:
    import flask  # noqa: F401
except ImportError as exc:  # pragma: no cover - shown by tests/test_packaging.py
    raise ImportError(
        f"The local Entra ID needs {exc.name}: pip install 'entra-auth[emulator]'"
    ) from exc

from .faults import Fault
from .seed import App, Seed, User, load_seed
from .server import EntraEmulator
from .state import EmulatorSettings

__all__ = ["App", "EmulatorSettings", "EntraEmulator", "Fault", "Seed", "User", "load_seed"]
