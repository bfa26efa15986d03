"""Catalogue MF01-MF12: malformed input gets a clear refusal, fast, and never a 500."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
from flask.testing import FlaskClient

from entra_auth.errors import InvalidTokenError
from entra_auth.integrations.flask import ApiProtector

from .minting import Mint, b64
from .web import Web


def bearer(api: FlaskClient, token: str) -> Any:
    return api.get("/scoped", headers={"Authorization": f"Bearer {token}"})


def refused(api: FlaskClient, token: str) -> None:
    """Refused at HTTP level (401) and by the core validator on its own."""
    response = bearer(api, token)
    assert response.status_code == 401, response.get_data(as_text=True)
    with pytest.raises(InvalidTokenError):
        ApiProtector.validator(api.application).validate(token)


@pytest.mark.parametrize("size", [64 * 1024, 1024 * 1024])
def test_MF01_huge_authorization_header(api: FlaskClient, size: int) -> None:
    started = time.monotonic()
    response = api.get("/scoped", headers={"Authorization": "Bearer " + "a" * size})
    assert response.status_code in (400, 401, 431)
    assert time.monotonic() - started < 1.0


@pytest.mark.parametrize(
    "shape", ["a", "a.b", "a.b.c.d", "a.b.c.d.e", "..", "a..c", ".b.c", "a.b."]
)
def test_MF02_wrong_segment_counts_and_empty_segments(api: FlaskClient, shape: str) -> None:
    assert bearer(api, shape).status_code == 401
    with pytest.raises(InvalidTokenError):
        ApiProtector.validator(api.application).validate(shape)


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
    validator = ApiProtector.validator(api.application)
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


@pytest.mark.parametrize("depth", [16_000, 100_000])
def test_MF06_deeply_nested_json(api: FlaskClient, mint: Mint, depth: int) -> None:
    nested = "[" * depth + "]" * depth
    payload = '{"aud": ' + nested + "}"
    token = mint.raw(mint.header(), b64(payload.encode()))
    started = time.monotonic()
    refused(api, token)  # a RecursionError would be a 500
    assert time.monotonic() - started < 2


@pytest.mark.parametrize("exp", ["1e400", "9" * 100_000, "9" * 5_000])
def test_MF07_absurd_numbers(api: FlaskClient, mint: Mint, exp: str) -> None:
    claims = json.dumps(mint.claims()).replace('"exp": ', '"exp": ' + exp + ', "_was": ')
    token = mint.raw(mint.header(), b64(claims.encode()))
    started = time.monotonic()
    refused(api, token)
    assert time.monotonic() - started < 1


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
        for path in ("/", "/profile", "/login", "/claims"):
            assert client.get(path).status_code < 500, (path, list(cookies)[:1])


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
