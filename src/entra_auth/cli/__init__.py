"""The ``entra-auth`` command (the ``cli`` extra: click, rich, python-dotenv)."""

from __future__ import annotations

try:
    import click
    import dotenv  # noqa: F401
    import rich  # noqa: F401
except ImportError as exc:  # pragma: no cover - shown by tests/test_packaging.py
    raise SystemExit(
        f"The entra-auth command needs {exc.name}: pip install 'entra-auth[cli]'"
    ) from exc

from .. import __version__
from ._console import console, inert
from .diagnose import decode, doctor, explain
from .emulator import emulator, wait_for_stop


@click.group()
@click.version_option(__version__, prog_name="entra-auth")
def main() -> None:
    """Microsoft Entra ID sign-in and API protection for Python apps."""


for command in (emulator, doctor, explain, decode):
    main.add_command(command)

__all__ = ["console", "inert", "main", "wait_for_stop"]
