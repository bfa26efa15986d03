"""The local Entra ID's HTTP endpoints, one Flask blueprint per module.

``discovery`` (OpenID configuration and JWKS), ``authorize`` (with the sign-in and consent
pages), ``token``, ``logout``, ``graph`` (a small Microsoft Graph), ``admin`` (the control API)
and ``home`` (the index page). ``common`` holds what several of them share. ``app.create_app``
registers them all; each reads the running emulator through ``context.current()``.
"""
