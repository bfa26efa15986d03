from __future__ import annotations

import sys

import pytest

from entra_auth.emulator import EntraEmulator

from .helpers import WEB, confidential_client


@pytest.fixture
def web(entra_emulator: EntraEmulator, tmp_path, request):  # type: ignore[no-untyped-def]
    """The demo app in Flask's test client; the IdP's pages walked by BrowserlessUser.

    A test parametrised with ``@pytest.mark.parametrize("web", WEB_ADAPTERS, indirect=True)``
    runs against the FastAPI and the Django demo too, through the same ``Web``
    (``security/fastapi_web.py``, ``security/django_web.py``)."""
    from .helpers import demo_config
    from .security.web import Web, demo_app

    settings = demo_config(entra_emulator, ENTRA_SESSION_DIR=str(tmp_path / "sessions"))
    app = demo_app(getattr(request, "param", "flask"), settings)
    yield Web(entra_emulator, app)
    if hasattr(app, "close"):  # the FastAPI demo, started once for the test
        app.close()


@pytest.fixture(autouse=True)
def _django_web_settings():  # type: ignore[no-untyped-def]
    """A Django demo's settings (``security/django_web.py``) end with the test that used them."""
    yield
    django_web = sys.modules.get("tests.security.django_web")
    if django_web is not None:
        django_web.deactivate()


@pytest.fixture
def web_app(entra_emulator: EntraEmulator):  # type: ignore[no-untyped-def]
    """The demo web app as an unpatched MSAL confidential client."""
    return confidential_client(entra_emulator, WEB)


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    """One real Redis for the session; each test that uses it starts from an empty database."""
    from .redis_support import RedisServer

    server = RedisServer(tmp_path_factory.mktemp("redis")).start()
    yield server
    server.stop()


@pytest.fixture
def redis_url(redis_server):  # type: ignore[no-untyped-def]
    redis_server.client().flushall()
    return redis_server.url


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The browser tests last: Playwright's sync API keeps an event loop running in the main
    thread for the rest of the session, where the async tests' own loops could not start."""
    items.sort(key=lambda item: "/tests/e2e/" in str(item.path))
