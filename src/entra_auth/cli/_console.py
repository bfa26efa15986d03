"""The CLI's console, and the one way it prints untrusted text (``inert``)."""

from __future__ import annotations

import re
from typing import Any

from rich.console import Console
from rich.text import Text

console = Console(soft_wrap=True)  # URLs must stay copyable, never wrapped

# Characters a terminal acts on rather than shows: C0 (ESC, CR, LF, TAB, BEL ...), DEL, C1 (CSI,
# OSC ...), bidi marks, embeddings, overrides and isolates, line and paragraph separators, and
# lone surrogates (which would make writing the output fail).
_UNPRINTABLE = re.compile(
    r"[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069\ud800-\udfff]"
)
_NAMED_ESCAPES = {"\t": "\\t", "\n": "\\n", "\r": "\\r"}


def _visible_escape(match: re.Match[str]) -> str:
    char = match.group()
    code = ord(char)
    return _NAMED_ESCAPES.get(char) or (f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}")


def inert(value: object, style: str = "") -> Text:
    """Untrusted text (from a token, a discovery document, a pasted error, an argument) as text
    that prints as itself and nothing more.

    A ``Text`` is never read as rich markup or emoji codes, so ``[green]VERIFIED[/]`` stays those
    characters; control characters are replaced by their Python escapes (ESC shows as the four
    characters ``\\x1b``, a CR as ``\\r``, U+202E as ``\\u202e``), so that no token can style,
    erase, overwrite, reorder or hyperlink its way past the verdict.
    """
    return Text(_UNPRINTABLE.sub(_visible_escape, str(value)), style=style)


def say(*objects: object, **options: Any) -> None:
    """Print on the CLI's console (looked up at call time, so tests can replace it)."""
    console.print(*objects, **options)
