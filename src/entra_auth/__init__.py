"""entra-auth: Microsoft Entra ID sign-in and API protection for Python apps.

The public API lives here; modules behind it are private unless documented.
"""

from .errors import ConfigurationError, EmulatorError, EntraAuthError

__version__ = "0.1.0"

__all__ = ["ConfigurationError", "EmulatorError", "EntraAuthError", "__version__"]
