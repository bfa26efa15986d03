"""Errors the local Entra ID answers with, in Entra's JSON shape.

The words come from the library's AADSTS catalogue (``entra_auth.aadsts``): one catalogue for
what the emulator says and what ``entra-auth explain`` and the sign-in pages explain.
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from ..aadsts import CATALOGUE, lookup_url


class AadError(Exception):
    """An AADSTS error to send back: JSON at the token endpoint, a redirect or page at authorize.

    ``claims``: a claims challenge (a JSON string) for the client to pass to an interactive
    sign-in, as Entra's Conditional Access errors carry one (AADSTS50076 for a step-up).
    """

    def __init__(
        self,
        code: int,
        *,
        status: int | None = None,
        suberror: str | None = None,
        claims: str | None = None,
        **values: Any,
    ):
        entry = CATALOGUE[code]
        self.code = code
        self.error = entry.error
        self.message = entry.render(**values)
        self.status = (
            status if status is not None else (401 if entry.error == "invalid_client" else 400)
        )
        self.suberror = suberror
        self.claims = claims
        super().__init__(f"{entry.name}: {self.message}")

    def body(
        self,
        *,
        trace_id: str | None = None,
        correlation_id: str | None = None,
        now: float | None = None,
    ) -> dict[str, Any]:
        """Entra's error answer. ``trace_id`` is the request's (its ``x-ms-request-id``),
        ``correlation_id`` the client's ``client-request-id``; fresh ones when not given."""
        trace = trace_id or str(uuid.uuid4())
        correlation = correlation_id or str(uuid.uuid4())
        moment = dt.datetime.fromtimestamp(
            now if now is not None else dt.datetime.now(dt.timezone.utc).timestamp(),
            dt.timezone.utc,
        )
        timestamp = moment.strftime("%Y-%m-%d %H:%M:%SZ")
        body: dict[str, Any] = {
            "error": self.error,
            # Entra's parts, each on its own line (CRLF), as its JSON shows them.
            "error_description": "\r\n".join(
                (
                    f"AADSTS{self.code}: {self.message}",
                    f"Trace ID: {trace}",
                    f"Correlation ID: {correlation}",
                    f"Timestamp: {timestamp}",
                )
            ),
            "error_codes": [self.code],
            "timestamp": timestamp,
            "trace_id": trace,
            "correlation_id": correlation,
            "error_uri": lookup_url(self.code),
        }
        if self.suberror:
            body["suberror"] = self.suberror
        if self.claims:
            body["claims"] = self.claims
        return body
