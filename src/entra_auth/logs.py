"""Keeps secrets out of other libraries' logs: one filter, for query strings and JSON.

- werkzeug logs each request line, query string included: ``/get_token?code=…&state=…``.
- MSAL (``msal.token_cache``, DEBUG) logs every token event as JSON and masks the client secret,
  tokens and refresh tokens, but not the authorization ``code`` or the PKCE ``code_verifier``.

The filter rewrites those values to ``[redacted]`` in the record's message and arguments.
Written here because no logging library knows which OAuth parameters are secret.

``inert()`` makes untrusted text (a request path, an IdP's error code) safe to log: one record
per event, whatever CR, LF or terminal escape the text holds.
"""

from __future__ import annotations

import logging
import re

SECRET_NAMES = (
    "code",
    "code_verifier",
    "state",
    "session_state",
    "client_secret",
    "client_assertion",
    "refresh_token",
    "access_token",
    "id_token",
    "client_info",
    "password",
    "assertion",
)
_NAMES = "|".join(SECRET_NAMES)
_QUERY = re.compile(rf"(?<![\w-])((?:{_NAMES})=)[^&\s\"']*")
_JSON = re.compile(rf"(\"(?:{_NAMES})\"\s*:\s*)\"(?:[^\"\\\\]|\\\\.)*\"")


def redact(text: str) -> str:
    return _JSON.sub(r'\1"[redacted]"', _QUERY.sub(r"\1[redacted]", text))


class RedactSecrets(logging.Filter):
    """Rewrites OAuth secrets in a record's message and string arguments."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str):
            record.msg = redact(record.msg)
        if isinstance(record.args, tuple):
            record.args = tuple(redact(a) if isinstance(a, str) else a for a in record.args)
        elif isinstance(record.args, dict):
            record.args = {
                k: redact(v) if isinstance(v, str) else v for k, v in record.args.items()
            }
        return True


def redact_logger(name: str) -> None:
    """Install the filter on a logger (records it creates itself), once."""
    logger = logging.getLogger(name)
    if not any(isinstance(f, RedactSecrets) for f in logger.filters):
        logger.addFilter(RedactSecrets())


def inert(text: object, limit: int = 200) -> str:
    """Untrusted text for a log line: control and other non-printable characters as visible
    escapes (``\\r``, ``\\x1b``, ``\\u202e``), cut to ``limit`` characters."""
    value = str(text)
    cut = len(value) > limit
    value = value[:limit]
    if not value.isprintable():
        value = "".join(c if c.isprintable() else repr(c)[1:-1] for c in value)
    return value + ("…" if cut else "")
