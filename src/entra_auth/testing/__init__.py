"""Helpers for your own tests: the ``entra_emulator`` pytest fixture (``pytest_plugin``, loaded by
the ``pytest11`` entry point; ``entra_emulator.env_for(app)`` configures your app for it) and
``BrowserlessUser`` (``driver``), which walks the local Entra ID's sign-in pages over HTTP,
and ``certificates``, which makes client certificates and their keys for ``private_key_jwt``.
Importing this package loads neither the emulator nor Flask.
"""
