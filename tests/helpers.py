"""Shared test helpers: the demo directory's ids, a real MSAL client on the emulator, and the
demo served in-process or run as a child process, on ports the system picks."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any, TypeVar, cast

import msal
from flask import Flask
from werkzeug.serving import make_server

from entra_auth.config import EntraConfig
from entra_auth.emulator import EntraEmulator
from entra_auth.testing.driver import BrowserlessUser

T = TypeVar("T")
WEB = "4b7d2f1c-3a5e-4c8b-9d61-2e0f7a9b3c15"
API = "a1c3e5f7-2b4d-4e6f-8a0c-1d3e5f7a9b2c"
API_URI = f"api://{API}"
API_SCOPE = f"{API_URI}/access_as_user"
LEGACY = "b2d4f6a8-3c5e-4f70-9b1d-2e4f6a8b0c3d"
LEGACY_URI = "api://legacy-api.contoso.example"
DAEMON = "d2e4f6a8-1b3c-4d5e-8f70-9a1b2c3d4e5f"
REDIRECT = "http://localhost:5000/get_token"
ADELE = "adele@contoso.example"
MEGAN = "megan@contoso.example"
GUEST = "bob@fabrikam.example"
CONTOSO = "8c3dad1d-b6bc-4f8b-939b-8263372eced6"
FABRIKAM = "f4d2b1a0-6e2c-4f8e-9a57-3c1d2e4b5a69"


def secret_of(emulator: EntraEmulator, client_id: str, index: int = 0) -> str:
    return emulator.app(client_id).secrets[index].value


def confidential_client(
    emulator: EntraEmulator,
    client_id: str = WEB,
    secret: str | None = None,
    authority: str | None = None,
    **kwargs: Any,
) -> msal.ConfidentialClientApplication:
    """The unpatched MSAL, told only what a user would tell it."""
    return msal.ConfidentialClientApplication(
        client_id,
        client_credential=secret if secret is not None else secret_of(emulator, client_id),
        authority=authority or emulator.authority,
        instance_discovery=False,
        http_client=emulator.http_session(),
        **kwargs,
    )


def sign_in(
    emulator: EntraEmulator,
    app: msal.ConfidentialClientApplication,
    scopes: list[str],
    *,
    user: str = ADELE,
    browser: BrowserlessUser | None = None,
    **flow_kwargs: Any,
) -> dict[str, Any]:
    """Authorization code flow with PKCE, the authorize pages walked over HTTP."""
    flow = app.initiate_auth_code_flow(scopes, redirect_uri=REDIRECT, **flow_kwargs)
    response = (browser or BrowserlessUser()).authorize(flow["auth_uri"], user=user)
    result: dict[str, Any] = app.acquire_token_by_auth_code_flow(flow, response)
    return result


def emulator_config(emulator: EntraEmulator, **changes: Any) -> EntraConfig:
    """EntraConfig for the demo API on the emulator's default tenant; ``changes`` win."""
    values: dict[str, Any] = {
        "authority": emulator.authority_for(CONTOSO),
        "client_id": API,
        "ca_bundle": str(emulator.ca_path),
    }
    values.update(changes)
    return EntraConfig(**values)


def demo_config(emulator: EntraEmulator, **extra: Any) -> dict[str, Any]:
    """The demo app's configuration against the emulator (as examples/demo/run.py builds it)."""
    config: dict[str, Any] = {
        "ENTRA_AUTHORITY": emulator.authority,
        "ENTRA_CLIENT_ID": WEB,
        "ENTRA_CLIENT_SECRET": secret_of(emulator, WEB),
        "ENTRA_REDIRECT_URI": REDIRECT,
        "ENTRA_API_AUDIENCE": f"{API},{API_URI}",
        "ENTRA_CA_BUNDLE": str(emulator.ca_path),
        "SECRET_KEY": "test-secret-key-" + "x" * 32,
    }
    config.update(extra)
    return config


# A hang guard, not a speed bound: long enough for the slowest CI machine, short enough that a
# missing timeout fails with a message instead of at pytest-timeout's 120 s.
# What MSAL reads to pick a managed-identity source: a test of one unsets the others, so none
# leaks in from the environment.
MSAL_IDENTITY_SOURCES = (
    "IDENTITY_ENDPOINT",
    "IDENTITY_HEADER",
    "IDENTITY_SERVER_THUMBPRINT",
    "IMDS_ENDPOINT",
    "MSI_ENDPOINT",
    "MSI_SECRET",
    "AZURE_POD_IDENTITY_AUTHORITY_HOST",
)
HANG_GUARD = 60.0


def within(seconds: float, call: Callable[[], T]) -> T:
    """``call()``'s result; the test fails if it has not returned within ``seconds``.

    A hang guard: the call runs in a daemon thread so a call that never returns cannot hold
    the test (or the interpreter's exit) hostage.
    """
    outcome: list[Any] = []
    done = threading.Event()

    def run() -> None:
        try:
            outcome.append((True, call()))
        except BaseException as exc:  # re-raised in the test's thread
            outcome.append((False, exc))
        finally:
            done.set()

    threading.Thread(target=run, daemon=True, name="within").start()
    assert done.wait(seconds), f"no answer within {seconds} s: nothing bounds this wait"
    ok, value = outcome[0]
    if not ok:
        raise value
    return cast(T, value)


def _not_yet(environ: dict[str, Any], start_response: Any) -> list[bytes]:
    raise RuntimeError("never served: the app is set before serve_forever starts")


@contextmanager
def serve_demo(
    emulator: EntraEmulator, session_dir: Path, **settings: str
) -> Iterator[tuple[str, Flask]]:
    """The demo app served by werkzeug on a port the system picks, registered with the emulator
    (``settings`` over its usual ones).

    The server binds port 0 first and reports its port; the app (whose redirect URI holds the
    port) is built next and set before the first request is served.
    """
    server = make_server("127.0.0.1", 0, _not_yet, threaded=True)
    thread: threading.Thread | None = None
    try:
        base = f"http://localhost:{server.port}"
        emulator.add_redirect_uri(WEB, f"{base}/get_token")
        emulator.add_redirect_uri(WEB, f"{base}/")
        from examples.demo.app import create_app

        app = create_app(
            demo_config(
                emulator,
                ENTRA_REDIRECT_URI=f"{base}/get_token",
                ENTRA_SESSION_DIR=str(session_dir),
                **settings,
            )
        )
        server.app = app
        thread = threading.Thread(target=server.serve_forever, daemon=True, name="demo")
        thread.start()
        yield base, app
    finally:
        if thread is not None:
            server.shutdown()  # returns once serve_forever has (it polls every 0.5 s)
        server.server_close()
        if thread is not None:
            thread.join(timeout=HANG_GUARD)


@contextmanager
def serve_fastapi_demo(
    emulator: EntraEmulator, session_dir: Path, **settings: str
) -> Iterator[tuple[str, Any]]:
    """The FastAPI demo (its sign-in pages and API) under real uvicorn on a port the system
    picks (the socket bound first, then the app built with the port in its redirect URI),
    stopped in bounded time by ``run.serving``."""
    from examples.demo.run import APP_PORT, take_port
    from examples.fastapi_demo import run
    from examples.fastapi_demo.app import create_app

    listening = take_port(APP_PORT, {APP_PORT: 0})
    with listening:
        base = f"http://localhost:{listening.getsockname()[1]}"
        emulator.add_redirect_uri(WEB, f"{base}/get_token")
        emulator.add_redirect_uri(WEB, f"{base}/")
        app = create_app(
            demo_config(
                emulator,
                ENTRA_REDIRECT_URI=f"{base}/get_token",
                ENTRA_SESSION_DIR=str(session_dir),
                **settings,
            )
        )
        with run.serving(app, listening):
            yield base, app


@contextmanager
def serve_fastapi_api(settings: dict[str, str]) -> Iterator[str]:
    """The FastAPI demo API alone (no sign-in pages) with ``settings``, under real uvicorn on a
    port the system picks; its base URL."""
    from examples.demo.run import APP_PORT, take_port
    from examples.fastapi_demo import run
    from examples.fastapi_demo.app import create_app

    listening = take_port(APP_PORT, {APP_PORT: 0})
    with listening:
        app = create_app(settings)
        with run.serving(app, listening):
            yield f"http://localhost:{listening.getsockname()[1]}"


ROOT = Path(__file__).resolve().parents[1]
_BANNER_URL = re.compile(r"open (http://localhost:\d+)")


class DemoProcess:
    """``python -m examples.demo.run`` (what ``make demo`` runs) as a child process.

    Its output is read by a thread as it comes, so waiting for the banner is bounded (a child
    that hangs before printing cannot block a ``readline``) and the pipe never fills.
    ``stop()`` always leaves no process behind: SIGTERM, then SIGKILL if it does not exit.
    """

    def __init__(self, env: dict[str, str], cwd: Path):
        path = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH")) if p)
        self.process = subprocess.Popen(
            [sys.executable, "-m", "examples.demo.run"],
            cwd=cwd,
            env={**env, "PYTHONPATH": path},
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self._lines: list[str] = []
        self._ready = threading.Event()
        self._reader = threading.Thread(target=self._read, daemon=True, name="demo-output")
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self._lines.append(line)
            if "Press Ctrl-C to stop." in line:  # printed once the app listens
                self._ready.set()
        self._ready.set()  # the output ended: the process is gone, wait_ready says so

    @property
    def output(self) -> str:
        return "".join(self._lines)

    def wait_ready(self, timeout: float = HANG_GUARD) -> str:
        """The app's URL, from its banner, once it listens."""
        assert self._ready.wait(timeout), f"no banner within {timeout} s:\n{self.output}"
        assert "Press Ctrl-C" in self.output, self.output  # not just the end of its output
        found = _BANNER_URL.search(self.output)
        assert found is not None, self.output
        return found.group(1)

    def stop(self, timeout: float = 20.0) -> int:
        """SIGTERM, as `make demo`'s Ctrl-C; its exit code, or -9 when it had to be killed."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()  # the test then fails on the exit code, with the output
            self.process.wait(timeout=timeout)
        self._reader.join(timeout=timeout)
        return self.process.returncode


class UvicornProcess:
    """``uvicorn <app>`` as a child process on a socket bound here (port 0, reported by the
    system), as ``DemoProcess`` is for the Flask demo: ``wait_ready()`` polls it (bounded) until
    it answers HTTP; ``stop()`` sends SIGTERM and kills it if it does not exit in time."""

    READY_POLLS = 300  # each a bounded request, then a bounded wait that also sees an exit

    def __init__(self, app: str, env: dict[str, str], cwd: Path = ROOT):
        import socket

        self.listener = socket.socket()
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(64)
        self.url = f"http://127.0.0.1:{self.listener.getsockname()[1]}"
        path = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH")) if p)
        fd = str(self.listener.fileno())
        self.process = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "--fd", fd, "--log-level", "warning", app],
            cwd=cwd,
            env={**env, "PYTHONPATH": path},
            pass_fds=[self.listener.fileno()],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self.output = ""

    def wait_ready(self) -> str:
        """The app's URL, once it answers HTTP (any status)."""
        import requests

        for _ in range(self.READY_POLLS):
            if self.process.poll() is not None:
                raise AssertionError(f"uvicorn exited: {self.process.communicate()[0]}")
            try:
                requests.get(f"{self.url}/", timeout=1, allow_redirects=False)
                return self.url
            except requests.RequestException:
                pass
            with suppress(subprocess.TimeoutExpired):
                self.process.wait(timeout=0.1)
        raise AssertionError("uvicorn did not answer.")

    def stop(self, timeout: float = 20.0) -> int:
        """SIGTERM; the exit code (uvicorn re-raises SIGTERM after its shutdown: -15), or -9
        when it had to be killed. Its output is in ``output``."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            self.output, _ = self.process.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.output, _ = self.process.communicate(timeout=10)
        self.listener.close()
        return self.process.returncode


def redis_demo_settings(emulator: EntraEmulator, redis_url: str) -> dict[str, Any]:
    """The demo's settings with sessions and token caches in Redis (a fresh cache key each time)."""
    from cryptography.fernet import Fernet

    return demo_config(
        emulator, REDIS_URL=redis_url, ENTRA_TOKEN_CACHE_KEY=Fernet.generate_key().decode()
    )


def redis_demo_app(emulator: EntraEmulator, redis_url: str) -> Flask:
    """The Flask demo app with sessions and token caches in Redis."""
    from examples.demo.app import create_app

    return create_app(redis_demo_settings(emulator, redis_url))


# -- Debian's Chromium (never a downloaded one) ------------------------------------------------
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
# Without these, Chromium reaches out to Google's services at start, which this network refuses.
CHROMIUM_ARGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
]
# A hang guard for each wait of a browser test, not a speed bound.
BROWSER_WAIT_MS = 30_000


def in_chromium(scenario: Callable[[Any], None], **context_options: Any) -> None:
    """Run ``scenario(page)`` with a page of a fresh Chromium (``context_options`` for its
    context). In a thread of its own: Playwright's sync API refuses to start where an asyncio
    loop runs (the e2e tests' browser keeps one for the session); ``within`` bounds the run."""
    import pytest
    from playwright.sync_api import sync_playwright

    if not Path(CHROMIUM).exists():
        pytest.skip("Debian's chromium is not installed")

    def run() -> None:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            try:
                page = browser.new_context(**context_options).new_page()
                page.set_default_timeout(BROWSER_WAIT_MS)
                scenario(page)
            finally:
                browser.close()

    within(2 * HANG_GUARD, run)
