"""Strict compact JWS (RFC 7515) for RS256 tokens: shape, base64url, JSON and header checks.

Hand-written rather than PyJWT's ``api_jws``, for two reasons:

* It must refuse what PyJWT accepts. PyJWT decodes base64url leniently (padding, ``+`` and
  ``/``, non-zero trailing bits), and its JSON parser keeps the last of duplicate members: two
  readers of one token then see two different tokens, which is how confusion attacks start.
  ``NaN`` and ``Infinity`` are no JSON either.
* PyJWT's per-call overhead (options merged, algorithm objects looked up, every registered
  claim checked in Python) is several times the RSA-2048 verification that bounds a cold
  validation, which is what a hot API pays for every token it has not seen yet.

Speed without losing strictness: both decoders have a fast path in C, and a strict path that
decides whenever the fast one is not sure.

* base64url: ``msgspec.convert(str, bytes)`` decodes standard base64, refusing any character
  outside its alphabet, faster than ``binascii.a2b_base64`` (1.5 times for a signature, 2.5
  times for a payload). What it does not know about base64url (``+``, ``/`` and ``=`` are not in
  it; no padding; the length; the trailing bits a canonical encoder leaves zero) is checked here
  first.
* JSON: msgspec decodes, but keeps the last of duplicate members silently. So its result is
  encoded again (compact, members in their order) and compared with the input: equal bytes mean
  the input *is* the canonical encoding of a value whose objects have unique keys, so it had no
  duplicate member at any depth (it would have one member more than the encoding) and no
  ``NaN``/``Infinity`` (msgspec refuses those, and writes non-finite floats as ``null``); and
  its numbers read the same in both parsers (integers are exact in both, and msgspec refuses
  those past the interpreter's digit limit; a float's text equals its encoding only when it is
  the shortest text that reads back as that float). msgspec decodes only the shape claims have
  (members that are scalars, or containers two deep at most), so it never nests near the
  recursion limit. Anything else (whitespace, escapes, exponents, ``-0``, deeper nesting, a
  duplicate, an error) goes to the stdlib decoder with hooks that refuse duplicates and
  constants: it decides, as it always did. Compact JSON without escapes (PyJWT's for ASCII
  claims, the benchmark's) takes the fast path; JSON with escapes goes straight to the strict
  decoder, without trying the fast path first.
"""

from __future__ import annotations

import json
from typing import Any

import msgspec

from .errors import InvalidTokenError

MAX_TOKEN_LENGTH = 32 * 1024
# Distinct headers worth remembering: one per signing key, a handful at most. Bounded, so that
# tokens with made-up (but well-formed) headers cannot grow it.
MAX_KNOWN_HEADERS = 64

# A parsed token: the checked header, the signing input (bytes, as verified), the signature, and
# the payload segment, still encoded: it is decoded only once the signature verifies.
Parsed = tuple[dict[str, Any], bytes, bytes, str]


def _refuse(message: str, reason: str) -> InvalidTokenError:
    return InvalidTokenError(message, reason=reason)


# -- shape and header ---------------------------------------------------------------------------
def parse(token: object, known_headers: dict[str, dict[str, Any]]) -> Parsed:
    """Split and check a compact JWS; ``known_headers`` (header segment → checked header) is
    the caller's memo: headers repeat, one per signing key, and are parsed once."""
    if not isinstance(token, str) or not token:
        raise _refuse("No token was given.", "malformed")
    if len(token) > MAX_TOKEN_LENGTH:
        raise _refuse("The token is longer than any Entra token.", "malformed")
    if not token.isascii():  # a compact JWS is base64url and dots: ASCII only
        raise _refuse("The token holds characters that no JWT can hold.", "malformed")
    dots = token.count(".")
    if dots != 2:
        parts = dots + 1
        kind = "an encrypted token (JWE)" if parts == 5 else f"{parts} parts"
        raise _refuse(f"The token is not a signed JWT: it has {kind}.", "malformed")
    # Partitioning rather than split + join: the signing input is the token up to its last dot,
    # taken as it is rather than rebuilt from its parts.
    signed, _, signature_b64 = token.rpartition(".")
    header_b64, _, payload_b64 = signed.partition(".")
    header = known_headers.get(header_b64)
    if header is None:
        header = json_object(b64decode(header_b64, "header"), "header")
        check_header(header)
        # Graph's tokens carry a fresh header nonce each: remembering them would fill the memo
        # with headers never seen again, and leave no room for the signing keys' own.
        if len(known_headers) < MAX_KNOWN_HEADERS and "nonce" not in header:
            known_headers[header_b64] = header
    signature = b64decode(signature_b64, "signature")
    if not signature:
        raise _refuse("The token has no signature.", "bad_signature")
    return header, signed.encode("ascii"), signature, payload_b64


def check_header(header: dict[str, Any]) -> None:
    alg = header.get("alg")
    if alg != "RS256":  # an allow-list of one: the token's own alg is never trusted
        raise _refuse(
            f"The token's algorithm {str(alg)[:20]!r} is not accepted; only RS256 is.",
            "bad_algorithm",
        )
    if "crit" in header or "b64" in header or "zip" in header or "enc" in header:
        raise _refuse(
            "The token's header asks for extensions that are not supported.", "bad_header"
        )
    kid = header.get("kid")
    if not isinstance(kid, str) or not kid:
        raise _refuse("The token's header has no key id ('kid').", "bad_header")


def decode_payload(segment: str) -> dict[str, Any]:
    """The claims of a payload segment whose signature has been verified."""
    return json_object(b64decode(segment, "payload"), "payload")


# -- base64url ------------------------------------------------------------------------------------
_B64_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
_B64_VALUE = {c: i for i, c in enumerate(_B64_ALPHABET)}
# By length modulo 4: the padding standard base64 needs, and the bits of the last character
# that a canonical encoder leaves zero. A length of 1 modulo 4 is no encoding at all.
_PADDING = {0: "", 2: "==", 3: "="}
_UNUSED_BITS = {0: 0, 2: 0x0F, 3: 0x03}
_convert = msgspec.convert


def b64decode(segment: str, what: str) -> bytes:
    """Strict base64url (RFC 7515 §2): the alphabet, no padding, canonical trailing bits."""
    length = len(segment) & 3
    unused = _UNUSED_BITS.get(length)
    if unused is None or "=" in segment or "+" in segment or "/" in segment:
        raise _refuse(f"The token's {what} is not canonical base64url.", "malformed")
    if not segment.isascii():
        raise _refuse(f"The token's {what} is not base64url.", "malformed")
    try:
        # With ``+``, ``/`` and ``=`` refused above, mapping ``-_`` onto ``+/`` and padding is
        # one-to-one: msgspec refuses every other character (whitespace, dots, controls).
        data: bytes = _convert(
            segment.replace("-", "+").replace("_", "/") + _PADDING[length], bytes
        )
    except msgspec.ValidationError:
        raise _refuse(f"The token's {what} is not base64url.", "malformed") from None
    if unused and _B64_VALUE[segment[-1]] & unused:  # bits a canonical encoder leaves zero
        raise _refuse(f"The token's {what} is not canonical base64url.", "malformed")
    return data


# -- JSON -----------------------------------------------------------------------------------------
def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result = dict(pairs)
    if len(result) != len(pairs):
        raise ValueError("duplicate member")
    return result


def _no_constants(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


# One decoder for every token: json.loads with hooks would build a new one per call.
_STRICT = json.JSONDecoder(object_pairs_hook=_no_duplicates, parse_constant=_no_constants)


def _decode_strict(data: bytes) -> Any:
    return _STRICT.decode(data.decode("utf-8"))


# The shape the fast path takes: an object whose members are JSON scalars, or containers nested
# two deep at most (claims are strings, numbers, lists of strings, and ``_claim_sources``, an
# object of objects). msgspec checks it while decoding and stops at the first deeper container,
# so it never recurses near the interpreter's limit, where it would reach a few levels deeper
# than the strict decoder: anything deeper is the strict decoder's to decide.
_Scalar = str | int | float | bool | None
_Nested = _Scalar | list[_Scalar] | dict[str, _Scalar]
_Member = _Scalar | list[_Nested] | dict[str, _Nested]
_decode = msgspec.json.Decoder(dict[str, _Member]).decode
_encode = msgspec.json.Encoder().encode


def json_object(data: bytes, what: str) -> dict[str, Any]:
    """A JSON object with unique members at every depth, and no ``NaN``/``Infinity``."""
    # An escape (``\u00e9`` for ``é``, ``\/``...) is what msgspec would not write back as it
    # is: such a token goes straight to the strict decoder rather than try the fast path in vain.
    if b"\\" not in data:
        try:
            value = _decode(data)
            if _encode(value) == data:
                return value
        except (msgspec.MsgspecError, ValueError, RecursionError):
            pass  # not sure: the strict decoder decides
    try:
        value = _decode_strict(data)
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise _refuse(f"The token's {what} is not a JSON object.", "malformed") from None
    if not isinstance(value, dict):
        raise _refuse(f"The token's {what} is not a JSON object.", "malformed")
    return value
