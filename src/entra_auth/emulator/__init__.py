"""The local Entra ID: Entra-shaped v2.0 endpoints and a small Microsoft Graph, offline."""

from .seed import App, Seed, User, load_seed
from .server import EntraEmulator
from .state import EmulatorSettings, Fault

__all__ = ["App", "EmulatorSettings", "EntraEmulator", "Fault", "Seed", "User", "load_seed"]
