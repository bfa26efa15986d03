"""The strict compact-JWS module: its fast paths decide exactly as the strict decoders did.

The references below are the decoders ``tokens.py`` used before the fast paths (stdlib JSON
with hooks refusing duplicates and constants; ``binascii`` base64 in strict mode), written out
again here so that the module is not compared with itself. Every case also says which path it
takes, so that a fast path that silently stopped being taken fails as surely as one that
accepts too much.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import string
import sys
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from entra_auth import _jws
from entra_auth.errors import InvalidTokenError


# -- references: the decoders before the fast paths ----------------------------------------
def _pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    if len(dict(pairs)) != len(pairs):
        raise ValueError("duplicate member")
    return dict(pairs)


def _constant(name: str) -> Any:
    raise ValueError(name)


REFERENCE_JSON = json.JSONDecoder(object_pairs_hook=_pairs, parse_constant=_constant)


def reference_json(data: bytes) -> dict[str, Any] | None:
    """The object, or None where it was refused."""
    try:
        value = REFERENCE_JSON.decode(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        return None
    return value if isinstance(value, dict) else None


def reference_b64(segment: str) -> bytes | None:
    """Strict base64url as before: the alphabet, no padding, zero trailing bits."""
    if len(segment) % 4 == 1 or re.fullmatch(r"[A-Za-z0-9_-]*", segment) is None:
        return None
    raw = segment.encode("ascii").translate(bytes.maketrans(b"-_", b"+/"))
    try:
        data = binascii.a2b_base64(raw + b"=" * (-len(raw) % 4))
    except binascii.Error:
        return None
    canonical = base64.urlsafe_b64encode(data).rstrip(b"=").decode()
    return data if canonical == segment else None


# -- which path decided ---------------------------------------------------------------------
class CountingDecoder:
    """Stands in for the strict decoder, counting the inputs the fast path left to it."""

    def __init__(self, real: Callable[[bytes], Any]) -> None:
        self.real, self.calls = real, 0

    def __call__(self, data: bytes) -> Any:
        self.calls += 1
        return self.real(data)


@pytest.fixture
def strict(monkeypatch: pytest.MonkeyPatch) -> CountingDecoder:
    counting = CountingDecoder(_jws._decode_strict)
    monkeypatch.setattr(_jws, "_decode_strict", counting)
    return counting


def ours(data: bytes) -> dict[str, Any] | None:
    try:
        return _jws.json_object(data, "payload")
    except InvalidTokenError as exc:
        refused = exc
    assert refused.reason == "malformed"
    assert refused.message == "The token's payload is not a JSON object."
    return None


def same(a: object, b: object) -> bool:
    """Equal values of equal types, members in the same order (1 is not 1.0, nor True)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        assert isinstance(b, dict)
        return list(a) == list(b) and all(same(a[k], b[k]) for k in a)
    if isinstance(a, list):
        assert isinstance(b, list)
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, float):
        return repr(a) == repr(b)  # tells -0.0 from 0.0
    return a == b


# -- JSON: cases, each with its path ------------------------------------------------------
DIGITS = sys.get_int_max_str_digits() if hasattr(sys, "get_int_max_str_digits") else 0
FAST, STRICT = "fast", "strict"

JSON_CASES: list[tuple[str, bytes, bool, str]] = [
    # (name, input, accepted, path)
    ("compact claims", b'{"aud":"api","exp":1700000000,"roles":["a","b"],"ok":true}', True, FAST),
    ("two levels of containers", b'{"a":{"b":[1,"x"],"c":{}},"d":[{"e":null},[]]}', True, FAST),
    (
        "claim sources",
        b'{"_claim_names":{"groups":"src1"},"_claim_sources":{"src1":{"endpoint":"https://g"}}}',
        True,
        FAST,
    ),
    ("three levels of containers", b'{"a":{"b":[{"c":null},{"d":false}]},"e":[]}', True, STRICT),
    ("three levels of arrays", b'{"a":[[[1]]]}', True, STRICT),
    ("empty object", b"{}", True, FAST),
    ("raw UTF-8", '{"name":"Adèle Vancé 🙂","sep":"\u2028"}'.encode(), True, FAST),
    ("raw DEL", b'{"a":"\x7f"}', True, FAST),
    # Canonical, but any escape goes to the strict decoder without trying the fast path.
    ("escaped quote and backslash", b'{"a":"x\\"y\\\\z"}', True, STRICT),
    ("300-digit integer", b'{"exp":' + b"9" * 300 + b"}", True, FAST),
    ("integer past uint64", b'{"exp":18446744073709551616}', True, FAST),
    ("shortest floats", b'{"a":1.5,"b":0.1,"c":5e-324,"d":1e22,"e":-0.0}', True, FAST),
    ("duplicate, top level", b'{"aud":"api","aud":"evil"}', False, STRICT),
    ("duplicate, same value", b'{"a":1,"a":1}', False, STRICT),
    ("duplicate, nested object", b'{"a":{"b":1,"b":2}}', False, STRICT),
    ("duplicate, object in array", b'{"a":[{"b":1},{"c":1,"c":1}]}', False, STRICT),
    ("duplicate by escape", b'{"a":1,"\\u0061":2}', False, STRICT),
    ("whitespace", b'{"a": 1, "b" : [1, 2]}', True, STRICT),
    ("trailing whitespace", b'{"a":1}\n', True, STRICT),
    ("escaped non-ASCII", b'{"a":"\\u00e9"}', True, STRICT),
    ("escaped solidus", b'{"a":"\\/"}', True, STRICT),
    ("exponent", b'{"a":1E5}', True, STRICT),
    ("float past the range", b'{"exp":1e400}', True, STRICT),  # inf, refused as a date later
    ("long float", b'{"a":123456789012345678901234567890.0}', True, STRICT),
    ("minus zero integer", b'{"a":-0}', True, STRICT),
    ("NaN", b'{"exp":NaN}', False, STRICT),
    ("Infinity", b'{"exp":Infinity}', False, STRICT),
    ("-Infinity", b'{"exp":-Infinity}', False, STRICT),
    ("lone surrogate bytes", b'{"a":"\xed\xa0\x80"}', False, STRICT),
    ("overlong UTF-8", b'{"a":"\xc0\xaf"}', False, STRICT),
    ("not UTF-8", b'{"a":"\xff"}', False, STRICT),
    ("raw control character", b'{"a":"\x01"}', False, STRICT),
    ("byte order mark", b'\xef\xbb\xbf{"a":1}', False, STRICT),
    ("trailing comma", b'{"a":1,}', False, STRICT),
    ("trailing data", b'{"a":1}x', False, STRICT),
    ("empty", b"", False, STRICT),
    ("array", b"[1,2]", False, STRICT),
    ("string", b'"x"', False, STRICT),
    ("null", b"null", False, STRICT),
    ("nesting 200 deep", b'{"a":' + b"[" * 200 + b"]" * 200 + b"}", True, STRICT),
    (
        "nesting past the recursion limit",
        b'{"a":' + b"[" * 5000 + b"]" * 5000 + b"}",
        False,
        STRICT,
    ),
]
if DIGITS:
    JSON_CASES += [
        ("integer at the digit limit", b'{"a":' + b"9" * DIGITS + b"}", True, FAST),
        ("integer past the digit limit", b'{"a":' + b"9" * (DIGITS + 1) + b"}", False, STRICT),
        # msgspec refuses this one (its count includes the sign); the strict decoder accepts it.
        ("negative integer at the limit", b'{"a":-' + b"9" * DIGITS + b"}", True, STRICT),
    ]


@pytest.mark.parametrize(
    ("data", "accepted", "path"),
    [pytest.param(data, accepted, path, id=name) for name, data, accepted, path in JSON_CASES],
)
def test_json_decides_as_the_strict_decoder(
    strict: CountingDecoder, data: bytes, accepted: bool, path: str
) -> None:
    expected = reference_json(data)
    assert (expected is not None) is accepted  # the case's own claim, checked on the reference
    result = ours(data)
    assert (result is not None) is accepted
    if accepted:
        assert same(result, expected)
    assert strict.calls == (1 if path == STRICT else 0)


def test_near_the_recursion_limit_the_strict_decoder_decides(strict: CountingDecoder) -> None:
    """msgspec would nest a few levels deeper than the strict decoder: near the limit, only the
    strict decoder may say yes or no (what it says depends on the caller's stack, as before)."""
    limit = sys.getrecursionlimit()
    depths = range(limit // 2, limit + 10, 25)
    verdicts = set()
    for depth in depths:
        verdicts.add(ours(b'{"a":' + b"[" * depth + b"]" * depth + b"}") is not None)
    assert strict.calls == len(depths)
    assert verdicts == {True, False}  # the range straddles the limit


def test_big_integers_stay_integers_the_claim_checks_refuse(strict: CountingDecoder) -> None:
    claims = ours(b'{"exp":' + b"1" + b"0" * 300 + b',"nbf":-1}')
    assert claims is not None
    assert type(claims["exp"]) is int
    assert claims["exp"] == 10**300
    assert type(claims["nbf"]) is int
    assert strict.calls == 0
    infinite = ours(b'{"exp":1e400}')
    assert infinite is not None
    assert type(infinite["exp"]) is float  # not a whole number


def test_header_json_takes_the_same_path(strict: CountingDecoder) -> None:
    with pytest.raises(InvalidTokenError, match="header is not a JSON object"):
        _jws.json_object(b'{"alg":"RS256","alg":"none"}', "header")
    assert strict.calls == 1


# Objects written out pair by pair, from a small set of keys: duplicates are common, at any depth,
# and numbers come in every shape msgspec and the stdlib might read differently.
KEYS = st.sampled_from(["a", "b", "aud", "\u00e9", "a\\u0062"])
NUMBERS = st.sampled_from(
    [
        *("0", "-0", "1", "-1", "1.0", "1.5", "1e5", "1E+5", "0.1", "1e22", "1e400", "-1e400"),
        *("5e-324", "9" * 40, "-" + "9" * 40, "18446744073709551616", "1.7976931348623157e308"),
    ]
)
SCALARS = (
    NUMBERS
    | st.sampled_from(["true", "false", "null", "NaN", "Infinity"])
    | st.text(max_size=6).map(lambda s: json.dumps(s, ensure_ascii=False))
    | st.text(max_size=6).map(json.dumps)
)


def _object(members: list[tuple[str, str]]) -> str:
    return "{" + ",".join(f'"{key}":{value}' for key, value in members) + "}"


JSON_TEXTS = st.recursive(
    SCALARS,
    lambda inner: (
        st.lists(inner, max_size=3).map(lambda items: "[" + ",".join(items) + "]")
        | st.lists(st.tuples(KEYS, inner), max_size=4).map(_object)
    ),
    max_leaves=10,
)
SPACING = st.sampled_from(["", " ", "\n"])


@settings(max_examples=400, deadline=None, database=None)
@given(members=st.lists(st.tuples(KEYS, JSON_TEXTS), max_size=5), space=SPACING)
def test_json_fast_path_agrees_with_the_strict_decoder(
    members: list[tuple[str, str]], space: str
) -> None:
    data = _object(members).replace(",", "," + space).encode()
    expected, result = reference_json(data), ours(data)
    assert (result is None) == (expected is None), data
    if result is not None:
        assert same(result, expected), data


# -- base64url ------------------------------------------------------------------------------
def ours_b64(segment: str) -> bytes | None:
    try:
        return _jws.b64decode(segment, "payload")
    except InvalidTokenError as exc:
        refused = exc
    assert refused.reason == "malformed"
    return None


VALID = base64.urlsafe_b64encode(bytes(range(256)) * 2).rstrip(b"=").decode()


@pytest.mark.parametrize("length", range(0, 13))
def test_b64_every_length(length: int) -> None:
    for data in (b"\x00" * length, b"\xff" * length, bytes(range(length))):
        segment = base64.urlsafe_b64encode(data).rstrip(b"=").decode()
        assert ours_b64(segment) == data == reference_b64(segment)
    assert ours_b64("A" * (4 * length + 1)) is None  # a length of 1 modulo 4 encodes nothing


@pytest.mark.parametrize("position", [0, 1, 2, 3, 200, len(VALID) - 2, len(VALID) - 1])
def test_b64_every_ascii_character_anywhere(position: int) -> None:
    """Each of the 128 ASCII characters put into a valid segment, in place of one and in
    addition to it: refused or decoded exactly as the reference does."""
    tried = 0
    for code in range(128):
        char = chr(code)
        for segment in (
            VALID[:position] + char + VALID[position + 1 :],
            VALID[:position] + char + VALID[position:],
        ):
            assert ours_b64(segment) == reference_b64(segment), (position, char)
            tried += 1
    assert tried == 256


@pytest.mark.parametrize(
    "segment",
    [
        "QQ",  # canonical "A"
        "QR",  # same bits, non-zero trailing bits
        "QUI",  # canonical "AB"
        "QUJ",  # non-zero trailing bits
        "QQ==",  # padded
        "QQ=",
        "Q+8",  # standard alphabet
        "Q/8",
        "Q-8",  # url-safe alphabet
        "Q_8",
        "QQ\n",
        " QQ",
        "Q\\u0051",  # a JSON escape means nothing here
        'Q"Q',
        "Qé",
        "",
    ],
)
def test_b64_non_canonical_encodings(segment: str) -> None:
    assert ours_b64(segment) == reference_b64(segment)


@settings(max_examples=500, deadline=None, database=None)
@given(
    segment=st.text(alphabet=string.ascii_letters + string.digits + '-_+/=. \\"\x00', max_size=24)
)
def test_b64_agrees_with_the_reference(segment: str) -> None:
    assert ours_b64(segment) == reference_b64(segment)


# -- the compact form -----------------------------------------------------------------------
def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


HEADER = b64(b'{"alg":"RS256","kid":"k1","typ":"JWT"}')
PAYLOAD = b64(b'{"sub":"x"}')
SIGNATURE = b64(b"\x01" * 256)
NO_ALG = b64(b"{}")
NO_KID = b64(b'{"alg":"RS256"}')


def with_header(**members: str) -> str:
    return f"{b64(json.dumps(members).encode())}.{PAYLOAD}.{SIGNATURE}"


def test_parse_returns_the_signing_input_as_sent() -> None:
    token = f"{HEADER}.{PAYLOAD}.{SIGNATURE}"
    header, signing_input, signature, payload = _jws.parse(token, {})
    assert header == {"alg": "RS256", "kid": "k1", "typ": "JWT"}
    assert signing_input == f"{HEADER}.{PAYLOAD}".encode()
    assert signature == b"\x01" * 256
    assert payload == PAYLOAD
    assert _jws.decode_payload(payload) == {"sub": "x"}


def test_parse_remembers_checked_headers_within_a_bound() -> None:
    known: dict[str, dict[str, Any]] = {}
    for i in range(_jws.MAX_KNOWN_HEADERS + 10):
        header = b64(json.dumps({"alg": "RS256", "kid": f"k{i}"}).encode())
        _jws.parse(f"{header}.{PAYLOAD}.{SIGNATURE}", known)
    assert len(known) == _jws.MAX_KNOWN_HEADERS
    refused = b64(b'{"alg":"none","kid":"k"}')
    known.clear()
    with pytest.raises(InvalidTokenError):
        _jws.parse(f"{refused}.{PAYLOAD}.{SIGNATURE}", known)
    assert known == {}  # only headers that passed the checks are remembered


@pytest.mark.parametrize(
    ("token", "reason", "message"),
    [
        ("", "malformed", "No token was given"),
        (None, "malformed", "No token was given"),
        ("a" * (_jws.MAX_TOKEN_LENGTH + 1), "malformed", "longer than any Entra token"),
        (f"{HEADER}.{PAYLOAD}é.{SIGNATURE}", "malformed", "characters that no JWT can hold"),
        (f"{HEADER}.{PAYLOAD}", "malformed", "it has 2 parts"),
        (f"{HEADER}.{PAYLOAD}.{SIGNATURE}.x", "malformed", "it has 4 parts"),
        ("a.b.c.d.e", "malformed", "an encrypted token (JWE)"),
        (f"{HEADER}.{PAYLOAD}.", "bad_signature", "has no signature"),
        (f"{HEADER}.{PAYLOAD}.{SIGNATURE}=", "malformed", "signature is not canonical"),
        (f"{HEADER}=.{PAYLOAD}.{SIGNATURE}", "malformed", "header is not canonical"),
        (f"{NO_ALG}.{PAYLOAD}.{SIGNATURE}", "bad_algorithm", "only RS256 is"),
        (with_header(alg="none", kid="k"), "bad_algorithm", "only RS256 is"),
        (with_header(alg="rs256", kid="k"), "bad_algorithm", "only RS256 is"),
        (f"{NO_KID}.{PAYLOAD}.{SIGNATURE}", "bad_header", "no key id"),
        (with_header(alg="RS256", kid=""), "bad_header", "no key id"),
    ]
    + [
        (with_header(alg="RS256", kid="k", **{name: "x"}), "bad_header", "not supported")
        for name in ("crit", "b64", "zip", "enc")
    ],
)
def test_parse_refusals(token: object, reason: str, message: str) -> None:
    with pytest.raises(InvalidTokenError, match=re.escape(message)) as refused:
        _jws.parse(token, {})
    assert refused.value.reason == reason
