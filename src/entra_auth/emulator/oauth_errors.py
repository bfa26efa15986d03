"""Errors the local Entra ID answers with, in Entra's JSON shape."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from ..aadsts import CATALOGUE


class AadError(Exception):
    """An AADSTS error to send back: JSON at the token endpoint, a redirect or page at authorize."""

    def __init__(
        self, code: int, *, status: int | None = None, suberror: str | None = None, **values: Any
    ):
        entry = CATALOGUE[code]
        self.code = code
        self.error = entry.error
        self.message = entry.render(**values)
        self.status = (
            status if status is not None else (401 if entry.error == "invalid_client" else 400)
        )
        self.suberror = suberror
        super().__init__(f"{entry.name}: {self.message}")

    def body(self, correlation_id: str | None = None) -> dict[str, Any]:
        trace_id = str(uuid.uuid4())
        correlation = correlation_id or str(uuid.uuid4())
        timestamp = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%SZ")
        body: dict[str, Any] = {
            "error": self.error,
            "error_description": (
                f"AADSTS{self.code}: {self.message} Trace ID: {trace_id} "
                f"Correlation ID: {correlation} Timestamp: {timestamp}"
            ),
            "error_codes": [self.code],
            "timestamp": timestamp,
            "trace_id": trace_id,
            "correlation_id": correlation,
            "error_uri": f"https://login.microsoftonline.com/error?code={self.code}",
        }
        if self.suberror:
            body["suberror"] = self.suberror
        return body
