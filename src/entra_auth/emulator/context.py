"""What every endpoint works with: the running emulator's state, its URLs and its token minter.

``create_app`` installs one ``EmulatorContext`` in the Flask app and each endpoint reads it
with ``current()``. So the endpoint modules hold plain functions, not closures over the state,
and two emulators in one process (tests start several) each serve their own directory.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import cast

from flask import Flask, current_app

from .minting import TokenMinter, Urls
from .state import EmulatorState

_EXTENSION = "entra_emulator"


@dataclass(frozen=True)
class EmulatorContext:
    state: EmulatorState
    urls: Urls
    minter: TokenMinter

    @classmethod
    def create(cls, state: EmulatorState, urls: Urls) -> EmulatorContext:
        return cls(state, urls, TokenMinter(state, urls))

    def install(self, app: Flask) -> None:
        app.extensions[_EXTENSION] = self


def current() -> EmulatorContext:
    """The context of the emulator serving the current request."""
    return cast(EmulatorContext, current_app.extensions[_EXTENSION])
