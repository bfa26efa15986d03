"""The security catalogue's access-token cases (AT, tests/security/test_access_tokens.py) and
the other adapters' answer-by-answer comparison, against the Django adapters.

The catalogue's own test bodies run here unchanged, on each Django adapter (``api_support``:
sync views, async views through ASGI, Django REST framework), with this module's ``api``,
``api_factory`` and ``mint`` fixtures: the settings are ``ENTRA_*`` Django settings (the
``settings`` fixture), switched when a test's factory makes APIs with other settings.
"""

from __future__ import annotations

import inspect
import os
from collections.abc import Callable
from typing import Any

import pytest

from entra_auth.emulator import EntraEmulator
from entra_auth.emulator.faults import Fault

from ..helpers import ADELE, API_URI, WEB
from ..security import test_access_tokens as catalogue
from ..security.conftest import make_api
from ..security.minting import Mint
from ..test_fastapi_api import PATHS, assert_same_answer, token_kinds
from .api_support import ADAPTERS, DjangoApi, entra_settings, switching

# The catalogue's tests of an API (not those of the configuration alone), collected here.
CASES = {
    name: case
    for name, case in vars(catalogue).items()
    if name.startswith("test_") and {"api", "api_factory"} & set(inspect.signature(case).parameters)
}
globals().update(CASES)
# DRF's authentication classes leave another scheme's header to the class that reads it: a
# Basic header is no bearer token there, but no malformed one either (test_api_protection).
NOT_ON = {"test_AT24_malformed_authorization_headers": {"drf"}}


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "adapter" in metafunc.fixturenames:
        skipped = NOT_ON.get(metafunc.function.__name__, set())
        metafunc.parametrize("adapter", [a for a in ADAPTERS if a not in skipped])


@pytest.fixture
def mint(entra_emulator: EntraEmulator) -> Mint:
    return Mint(entra_emulator)


@pytest.fixture
def api_factory(
    entra_emulator: EntraEmulator,
    adapter: str,
    settings: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> Callable[..., DjangoApi]:
    """``api_factory(**config)``: the catalogue's API on ``adapter`` with these settings."""
    for name in [n for n in os.environ if n.startswith("ENTRA_")]:
        monkeypatch.delenv(name)  # the settings alone, whatever the shell exports
    activate = switching(settings)

    def build(**config: Any) -> DjangoApi:
        return DjangoApi(adapter, entra_settings(entra_emulator, **config), activate)

    return build


@pytest.fixture
def api(api_factory: Callable[..., DjangoApi]) -> DjangoApi:
    return api_factory()


# -- every answer is the Flask adapter's ----------------------------------------------------------
def test_every_answer_is_the_flask_adapters(
    entra_emulator: EntraEmulator, api: DjangoApi, adapter: str
) -> None:
    """Each kind of token (and of header) on each endpoint: status, ``WWW-Authenticate``,
    ``Cache-Control``, ``Retry-After``, ``Content-Type`` and the JSON body are Flask's."""
    flask = make_api(entra_emulator)
    statuses: set[int] = set()
    for kind, headers in token_kinds(entra_emulator).items():
        # DRF leaves a Basic header to its Basic class: no credentials, to a bearer endpoint.
        expected = [] if (adapter, kind) == ("drf", "basic-scheme") else headers
        for path in PATHS:
            ours, theirs = api.get(path, headers=headers), flask.get(path, headers=expected)
            try:
                assert_same_answer(ours, theirs)
            except AssertionError as failure:
                raise AssertionError(f"{kind} on {path}: {failure}") from None
            statuses.add(ours.status_code)
    assert statuses == {200, 401, 403}  # all three kinds of answer were compared


def test_the_keys_unavailable_fail_closed_as_flask_does(
    entra_emulator: EntraEmulator, api: DjangoApi
) -> None:
    """The identity provider down before the first token: 503, ``Retry-After``, no-store and
    the body Flask gives, never a 500 nor a token let in."""
    token = entra_emulator.issue_token(
        client_id=WEB, resource=API_URI, user=ADELE, scopes=["access_as_user"]
    )
    entra_emulator.inject_fault("jwks", Fault("status", 503, retry_after=7))
    flask = make_api(entra_emulator)
    headers = {"Authorization": f"Bearer {token}"}
    ours, theirs = api.get("/scoped", headers=headers), flask.get("/scoped", headers=headers)
    assert_same_answer(ours, theirs)
    assert (ours.status_code, ours.headers["Retry-After"]) == (503, "7")
