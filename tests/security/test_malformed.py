"""Catalogue MF01-MF12: malformed input gets a clear refusal, fast, and never a 500."""

from __future__ import annotations

import json
import re
import time
from typing import Any

import pytest
from flask.testing import FlaskClient

from entra_auth.errors import InvalidTokenError

from .conftest import core_validator
from .minting import Mint, b64
from .test_access_tokens import assert_refused
from .web import Web


def bearer(api: FlaskClient, token: str) -> Any:
    return api.get("/scoped", headers={"Authorization": f"Bearer {token}"})


def refused(api: FlaskClient, token: str) -> None:
    """Refused at HTTP level (401) and by the core validator on its own."""
    response = bearer(api, token)
    assert response.status_code == 401, response.get_data(as_text=True)
    with pytest.raises(InvalidTokenError):
        core_validator(api).validate(token)


# "Fast" is asserted by what refused the input: the length checks that run before any
# decoding (the header's 40 KiB, the token's 32 KiB), or the JSON parser on a token already
# bounded by them. The elapsed time is only a hang guard: a quadratic parse of a megabyte takes
# minutes, a refusal milliseconds, and no CI machine is slow enough to blur the two.
HANG_GUARD = 30.0


def refused_by_length(api: FlaskClient, token: str) -> None:
    """Refused before any decoding: over the header's bound at HTTP level (RFC 6750
    invalid_request), over the token's bound in the core validator."""
    response = bearer(api, token)
    assert_refused(response, 401, "invalid_request")
    assert response.json["error_description"] == "The Authorization header is too long."
    with pytest.raises(InvalidTokenError, match="longer than any Entra token") as caught:
        core_validator(api).validate(token)
    assert caught.value.reason == "malformed"


def refused_as_malformed(api: FlaskClient, token: str, description: str) -> None:
    """Read up to the part that is not what a JWT holds, and refused for it (never a 500)."""
    response = bearer(api, token)
    assert_refused(response, 401, "invalid_token")
    assert response.json["reason"] == "malformed"
    assert description in response.json["error_description"]
    with pytest.raises(InvalidTokenError, match=re.escape(description)):
        core_validator(api).validate(token)


@pytest.mark.parametrize("size", [64 * 1024, 1024 * 1024])
def test_MF01_huge_authorization_header(api: FlaskClient, size: int) -> None:
    started = time.monotonic()
    response = api.get("/scoped", headers={"Authorization": "Bearer " + "a" * size})
    # 401 invalid_request, the one answer: the app sees the header (no server in front of the
    # test client answers 400 or 431), and the bearer parser refuses it by length alone.
    assert_refused(response, 401, "invalid_request")
    assert response.json["error_description"] == "The Authorization header is too long."
    assert time.monotonic() - started < HANG_GUARD


@pytest.mark.parametrize(
    "shape", ["a", "a.b", "a.b.c.d", "a.b.c.d.e", "..", "a..c", ".b.c", "a.b."]
)
def test_MF02_wrong_segment_counts_and_empty_segments(api: FlaskClient, shape: str) -> None:
    assert bearer(api, shape).status_code == 401
    with pytest.raises(InvalidTokenError):
        core_validator(api).validate(shape)


def test_MF03_jwe_and_zip(api: FlaskClient, mint: Mint) -> None:
    jwe = ".".join(
        b64(json.dumps(x).encode()) if isinstance(x, dict) else x
        for x in (
            {"alg": "RSA-OAEP", "enc": "A256GCM", "kid": mint.kid},
            "ZW5j",
            "aXY",
            "Y2lwaGVy",
            "dGFn",
        )
    )
    refused(api, jwe)
    refused(api, mint.raw(mint.header(zip="DEF"), mint.claims()))


@pytest.mark.parametrize("where", ["header", "payload", "signature", "claim"])
def test_MF04_non_ascii_and_control_characters(api: FlaskClient, mint: Mint, where: str) -> None:
    token = mint.token()
    head, body, sig = token.split(".")
    validator = core_validator(api)
    for odd in ("é", "\x00", "\x1f", "\u202e", "\ufeff"):
        if where == "claim":
            bad = mint.raw(mint.header(), mint.claims(aud=f"a{odd}"))
            refused(api, bad)
            continue
        parts = [head, body, sig]
        index = ("header", "payload", "signature").index(where)
        parts[index] = parts[index][:5] + odd + parts[index][5:]
        with pytest.raises(InvalidTokenError):
            validator.validate(".".join(parts))
        if odd.isascii() and odd >= " ":
            assert bearer(api, ".".join(parts)).status_code == 401


@pytest.mark.parametrize("value", [[], [1, 2], "string", 42, None])
@pytest.mark.parametrize("segment", ["header", "payload"])
def test_MF05_json_that_is_not_an_object(
    api: FlaskClient, mint: Mint, value: object, segment: str
) -> None:
    encoded = b64(json.dumps(value).encode())
    if segment == "header":
        refused(api, mint.raw(encoded, mint.claims()))
    else:
        refused(api, mint.raw(mint.header(), encoded))


@pytest.mark.parametrize("depth", [10_000, 16_000, 100_000])
def test_MF06_deeply_nested_json(api: FlaskClient, mint: Mint, depth: int) -> None:
    nested = "[" * depth + "]" * depth
    payload = '{"aud": ' + nested + "}"
    token = mint.raw(mint.header(), b64(payload.encode()))
    started = time.monotonic()
    if depth == 10_000:  # within the length bounds: the parser's RecursionError is a refusal
        refused_as_malformed(api, token, "payload is not a JSON object")
    else:  # past them: refused before it is decoded at all
        refused_by_length(api, token)
    assert time.monotonic() - started < HANG_GUARD


@pytest.mark.parametrize(
    ("exp", "refusal"),
    [
        ("1e400", "'exp' claim is not a whole number"),  # parsed as a float (inf)
        ("9" * 5_000, "payload is not a JSON object"),  # past the parser's digit limit
        ("9" * 100_000, None),  # past the length bounds: never decoded
    ],
)
def test_MF07_absurd_numbers(api: FlaskClient, mint: Mint, exp: str, refusal: str | None) -> None:
    claims = json.dumps(mint.claims()).replace('"exp": ', '"exp": ' + exp + ', "_was": ')
    token = mint.raw(mint.header(), b64(claims.encode()))
    started = time.monotonic()
    if refusal is None:
        refused_by_length(api, token)
    else:
        refused_as_malformed(api, token, refusal)
    assert time.monotonic() - started < HANG_GUARD


@pytest.mark.parametrize("exp", ['"1999999999"', "true", "null", "NaN", "Infinity", "1999999999.5"])
def test_MF08_exp_of_the_wrong_type(api: FlaskClient, mint: Mint, exp: str) -> None:
    claims = json.dumps(mint.claims()).replace('"exp": ', '"exp": ' + exp + ', "_was": ')
    refused(api, mint.raw(mint.header(), b64(claims.encode())))


def test_MF09_payload_not_utf8(api: FlaskClient, mint: Mint) -> None:
    raw = json.dumps(mint.claims()).encode().replace(b"Adele", b"Ad\xff\xfele")
    refused(api, mint.raw(mint.header(), b64(raw)))


@pytest.mark.parametrize("member", ["aud", "iss", "tid", "exp", "scp"])
def test_MF10_duplicate_json_members(api: FlaskClient, mint: Mint, member: str) -> None:
    claims = mint.claims()
    text = json.dumps(claims)
    duplicated = text[:-1] + f', "{member}": {json.dumps(claims[member])}' + "}"
    refused(api, mint.raw(mint.header(), b64(duplicated.encode())))
    header = json.dumps(mint.header())[:-1] + ', "alg": "RS256"}'
    refused(api, mint.raw(b64(header.encode()), mint.claims()))


def test_MF11_huge_junk_and_many_cookies(web: Web) -> None:
    cases = [
        {"entra_session": "x" * 4000},
        {"entra_session": "\u00e9\u00e9.\x01\x02"},
        {"entra_session": "a.b.c.d"},
        {f"junk{i}": "y" * 3000 for i in range(60)},
    ]
    for cookies in cases:
        client = web.app.test_client()
        for name, value in cookies.items():
            client.set_cookie(name, value)
        # Junk cookies are no session: each page answers as to a visitor who is not signed in.
        home = client.get("/")
        assert home.status_code == 200, list(cookies)[:1]
        assert b'id="who"' not in home.data
        for path in ("/profile", "/claims"):
            response = client.get(path)
            assert response.status_code == 302, (path, list(cookies)[:1])
            assert response.headers["Location"] == f"/login?next={path}"
        start = client.get("/login")
        assert start.status_code == 302, list(cookies)[:1]
        assert "/oauth2/v2.0/authorize?" in start.headers["Location"]


def test_MF12_malformed_callbacks(web: Web) -> None:
    web.begin()  # a sign-in is under way in this browser
    for query in (
        {"code": "c" * 100_000, "state": "s"},
        {"code": "c", "state": "ünïcødé-\u202e-state"},
        "code=a&code=b&state=s",
        "state=a&state=b&code=c",
        {"code": "", "state": ""},
    ):
        response = web.callback(query)
        assert response.status_code == 400, (str(query)[:40], response.status_code)
        assert "Traceback" not in response.get_data(as_text=True)
