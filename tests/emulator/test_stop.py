"""``EntraEmulator.stop()`` returns whatever its clients do: connections kept alive, a request
held by a ``hang`` fault, a client that connects and never starts TLS.

Every wait here is bounded by a generous timeout that only a hung emulator reaches; none is a
wall-clock bound that a slow machine could miss.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable
from pathlib import Path

import requests

from entra_auth.emulator import EntraEmulator, Fault

PATIENCE = 30.0  # seconds: far beyond a healthy stop (well under one), reached only by a hang


def poll_until(condition: Callable[[], bool], what: str) -> None:
    """A bounded poll: ``condition`` becomes true within PATIENCE seconds, or the test fails."""
    deadline = time.monotonic() + PATIENCE
    while not condition():
        assert time.monotonic() < deadline, f"gave up waiting: {what}"
        time.sleep(0.01)  # the poll's interval, not an ordering: the condition decides


def test_stop_returns_with_open_connections_and_a_held_request(tmp_path: Path) -> None:
    emulator = EntraEmulator(state_dir=tmp_path, port=0, browser_port=0).start()
    keys_url = f"{emulator.authority}/discovery/v2.0/keys"
    held_url = f"{emulator.authority}/v2.0/.well-known/openid-configuration"
    silent: socket.socket | None = None
    outcome: dict[str, object] = {}

    def held_request() -> None:
        try:
            outcome["status"] = emulator.http_session().get(held_url, timeout=PATIENCE).status_code
        except requests.RequestException as exc:
            outcome["error"] = exc

    try:
        # A client that connects to the HTTPS port and never sends a TLS hello.
        silent = socket.create_connection(("127.0.0.1", emulator.port), timeout=PATIENCE)
        # Keep-alive connections on both ports: answered, and left open in the sessions' pools.
        # The HTTPS one connects after the silent client, so its answer also shows that a
        # silent client holds up no one else.
        back_channel = emulator.http_session()
        assert back_channel.get(keys_url, timeout=PATIENCE).status_code == 200
        browser = requests.Session()
        browser.trust_env = False
        assert browser.get(f"{emulator.urls.browser_base}/", timeout=PATIENCE).status_code == 200
        # A request held by a hang fault for an hour: only stop() can release it.
        emulator.inject_fault("discovery", Fault("hang", delay=3600))
        held = threading.Thread(target=held_request, daemon=True)
        held.start()
        poll_until(
            lambda: emulator.request_counts()["discovery"] == 1,
            "the held request to reach its fault point",
        )

        stopper = threading.Thread(target=emulator.stop, daemon=True)
        stopper.start()
        stopper.join(PATIENCE)
        assert not stopper.is_alive(), "stop() did not return"
        held.join(PATIENCE)
        # Released by stop(), the held request is answered as a hang answers: not cut off.
        assert outcome == {"status": 504}
        # And the listeners are closed: nothing answers on the ports any more.
        back_channel.close()
        try:
            socket.create_connection(("127.0.0.1", emulator.port), timeout=PATIENCE).close()
        except ConnectionRefusedError:
            pass
        else:
            raise AssertionError("the HTTPS port still accepts connections after stop()")
    finally:
        if silent is not None:
            silent.close()
        emulator.stop()  # a second stop() is harmless; here it cleans up a failed test


def test_a_silent_client_holds_up_no_other_client(tmp_path: Path) -> None:
    with EntraEmulator(state_dir=tmp_path, port=0, browser_port=0) as emulator:
        silent = [
            socket.create_connection(("127.0.0.1", emulator.port), timeout=PATIENCE)
            for _ in range(3)
        ]
        try:
            url = f"{emulator.authority}/discovery/v2.0/keys"
            assert emulator.http_session().get(url, timeout=PATIENCE).status_code == 200
        finally:
            for connection in silent:
                connection.close()
