"""Faults a test injects into the local Entra ID, and what each one does to a request.

All of it lives here: the ``Fault`` a test describes, the table of faults armed per endpoint
(with the request counter each fault point keeps), the decorator that puts a fault point in
front of an endpoint, and the answer a fault gives instead of the endpoint's. A ``hang`` or
``slow`` fault waits on an event that stopping the emulator sets, so a held request never keeps
``stop()`` waiting.

This module knows nothing of the rest of the emulator's state (``state.py`` holds a
``FaultPoints``), so it imports nothing from it and no import cycle can form.
"""

from __future__ import annotations

import socket
import struct
import threading
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, replace
from functools import wraps
from typing import Any, Literal, TypeVar, cast

from flask import Flask, Response, current_app, jsonify, request

from ..errors import EmulatorError

ENDPOINTS = (
    "discovery",
    "jwks",
    "authorize",
    "token",
    "logout",
    "graph",
    "userinfo",
    "managed_identity",  # the IMDS and App Service token endpoints
)
FaultKind = Literal["status", "hang", "slow", "garbage", "reset"]
FAULT_KINDS: tuple[FaultKind, ...] = ("status", "hang", "slow", "garbage", "reset")
HANG_SECONDS = 60.0  # how long a "hang" holds a request when the fault names no delay
GARBAGE_PAGE = "<html><body><h1>Service Unavailable</h1><p>This is not JSON.</p></body></html>"
_EXTENSION = "entra_emulator_faults"

View = TypeVar("View", bound=Callable[..., Any])


@dataclass(frozen=True)
class Fault:
    """A fault injected at one endpoint.

    ``status``: answer ``status`` (with ``Retry-After`` when ``retry_after`` is set);
    ``hang``: hold the request ``delay`` seconds (60 when 0) and answer 504;
    ``slow``: wait ``delay`` seconds, then answer normally;
    ``garbage``: answer 200 with ``body`` (an HTML page when None);
    ``reset``: send the headers and half of a JSON body, then reset the connection (TCP RST):
    the client sees the connection closed mid-answer.
    ``times``: how many requests it affects; None until cleared. ``headers`` are added to a
    ``status`` answer (a ``Location`` makes a redirect).
    ``body`` and ``headers`` are for tests in the emulator's own process only: the HTTP control
    API sets neither, so its admin key cannot publish a key set or redirect a client.
    A held request (``hang``, ``slow``) is released at once when the emulator stops.
    """

    kind: FaultKind
    status: int = 503
    delay: float = 0.0
    retry_after: int | None = None
    body: str | None = None
    times: int | None = None
    headers: tuple[tuple[str, str], ...] = ()

    def after_one_request(self) -> Fault | None:
        """The fault left armed once one request has met it: None when it was the last."""
        if self.times is None:
            return self
        return None if self.times <= 1 else replace(self, times=self.times - 1)


class FaultPoints:
    """The faults armed at each endpoint, and how many requests each endpoint has seen."""

    def __init__(self) -> None:
        # Its own lock: the fault points are touched by every request, the rest of the state
        # only by some, and the two never need to change together.
        self._lock = threading.Lock()
        self._armed: dict[str, Fault] = {}
        self._counts: Counter[str] = Counter()
        self._released = threading.Event()

    def install(self, app: Flask) -> None:
        """Make these the fault points that ``fault_point`` consults in ``app``'s requests."""
        app.extensions[_EXTENSION] = self

    def inject(self, endpoint: str, fault: Fault) -> None:
        if endpoint not in ENDPOINTS:
            raise EmulatorError(
                f"No endpoint {endpoint!r} to inject a fault into.",
                remedy=f"Use one of: {', '.join(ENDPOINTS)}.",
            )
        with self._lock:
            self._armed[endpoint] = fault

    def clear(self) -> None:
        """No fault armed, and ``hang``/``slow`` hold requests again after a ``release_held``
        (requests it let go are gone already: ``Event.wait`` returned for them)."""
        with self._lock:
            self._armed.clear()
            self._released.clear()

    def take(self, endpoint: str, detail: str | None = None) -> Fault | None:
        """Count one request to ``endpoint`` (and to ``endpoint:detail`` when given) and return
        the fault that applies to it, if any."""
        with self._lock:
            self._counts[endpoint] += 1
            if detail:
                self._counts[f"{endpoint}:{detail}"] += 1
            fault = self._armed.get(endpoint)
            if fault is None:
                return None
            left = fault.after_one_request()
            if left is None:
                del self._armed[endpoint]
            else:
                self._armed[endpoint] = left
            return fault

    def counts(self, also: tuple[str, ...] = ()) -> dict[str, int]:
        """Requests per endpoint, then per ``endpoint:detail`` counted (``token:refresh_token``
        ...); ``also`` names detail counters to show even at zero."""
        with self._lock:
            every = {name: self._counts.get(name, 0) for name in ENDPOINTS}
            for name in also:
                every[name] = self._counts.get(name, 0)
            for name in sorted(self._counts):
                every.setdefault(name, self._counts[name])
            return every

    def reset_counts(self) -> None:
        with self._lock:
            self._counts.clear()

    def reset(self) -> None:
        """No fault armed, every counter at zero (a held request stays held until stop)."""
        with self._lock:
            self._armed.clear()
            self._counts.clear()

    def release_held(self) -> None:
        """Let every request held by a ``hang`` or ``slow`` fault go, now and from now on."""
        self._released.set()

    def hold(self, seconds: float) -> None:
        """Keep the calling request ``seconds``, or until ``release_held``."""
        self._released.wait(seconds)


def fault_point(
    endpoint: str, detail: Callable[[], str | None] | None = None
) -> Callable[[View], View]:
    """Count requests to ``endpoint`` and apply an injected fault before the real view runs.

    ``detail`` names what the request is (the token endpoint's grant): it is counted too, as
    ``endpoint:detail``, faulted requests included, so a test can tell refreshes from others.
    """

    def wrap(view: View) -> View:
        @wraps(view)
        def handler(*args: Any, **kwargs: Any) -> Any:
            points = cast(FaultPoints, current_app.extensions[_EXTENSION])
            fault = points.take(endpoint, detail() if detail is not None else None)
            if fault is not None:
                answer = apply_fault(fault, endpoint, points)
                if answer is not None:
                    return answer
            return view(*args, **kwargs)

        return cast(View, handler)

    return wrap


def apply_fault(fault: Fault, endpoint: str, points: FaultPoints) -> Response | None:
    """The answer ``fault`` gives at ``endpoint``; None when the endpoint answers after all."""
    if fault.kind == "slow":
        points.hold(fault.delay)
        return None
    if fault.kind == "hang":
        points.hold(fault.delay or HANG_SECONDS)
        return _json({"error": "temporarily_unavailable"}, 504)
    if fault.kind == "reset":
        return _cut_off()
    if fault.kind == "garbage":
        return Response(
            fault.body if fault.body is not None else GARBAGE_PAGE, 200, mimetype="text/html"
        )
    if endpoint == "graph":  # Graph's own error shape, which a Graph client parses
        payload: dict[str, Any] = {
            "error": {
                "code": "TooManyRequests" if fault.status == 429 else "ServiceUnavailable",
                "message": "Injected fault of the local Entra ID.",
                "innerError": {"request-id": str(uuid.uuid4())},
            }
        }
    else:
        payload = {"error": "temporarily_unavailable", "error_description": "Injected fault."}
    response = _json(payload, fault.status)
    if fault.retry_after is not None:
        response.headers["Retry-After"] = str(fault.retry_after)
    for name, value in fault.headers:
        response.headers[name] = value
    return response


def _cut_off() -> Response:
    """A 200 promising more JSON than it sends, the connection reset after the first half."""
    connection = request.environ.get("werkzeug.socket")
    body = b'{"token_type": "Bearer", "access_token": "cut-off-here'
    half = body[: len(body) // 2]

    def chunks() -> Any:
        yield half  # the status line and headers go out with it
        if isinstance(connection, socket.socket):
            # SO_LINGER 0: close() sends RST instead of FIN, what a crashed peer or proxy does.
            connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            connection.shutdown(socket.SHUT_RDWR)
        raise ConnectionResetError("reset by an injected fault")

    response = Response(chunks(), 200, mimetype="application/json")
    response.headers["Content-Length"] = str(len(body))
    return response


def _json(payload: dict[str, Any], status: int) -> Response:
    response = jsonify(payload)
    response.status_code = status
    return response
