"""Claims challenges read from WWW-Authenticate (RFC 7235) and written for an API's caller."""

from __future__ import annotations

import base64
import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from entra_auth.challenges import (
    auth_context_claims,
    claims_challenge,
    claims_request,
    decode_claims,
    encode_claims,
    insufficient_claims_header,
    parse_www_authenticate,
)

# Microsoft's documented CAE challenge from Graph (claims-challenge docs), verbatim.
GRAPH_CAE = (
    'Bearer authorization_uri="https://login.windows.net/common/oauth2/authorize", '
    'error="insufficient_claims", '
    'claims="eyJhY2Nlc3NfdG9rZW4iOnsibmJmIjp7ImVzc2VudGlhbCI6dHJ1ZSwgInZhbHVlIjoiMTYwNDEwNjY1MSJ9fX0="'
)


def test_graphs_documented_cae_challenge_is_read() -> None:
    claims = claims_challenge(GRAPH_CAE)
    assert claims is not None
    assert json.loads(claims) == {
        "access_token": {"nbf": {"essential": True, "value": "1604106651"}}
    }


def test_an_auth_context_challenge_round_trips_through_the_header() -> None:
    claims = auth_context_claims("c1")
    assert json.loads(claims) == {"access_token": {"acrs": {"essential": True, "value": "c1"}}}
    header = insufficient_claims_header(claims, realm="api", description='say "hi"\r\nX: y')
    assert claims_challenge(header) == claims
    assert not {"\r", "\n"} & set(header)  # untrusted text cannot split the header
    assert json.loads(auth_context_claims("c1", "c2"))["access_token"]["acrs"]["values"] == [
        "c1",
        "c2",
    ]


@pytest.mark.parametrize(
    ("header", "found"),
    [
        # several challenges in one value, the Bearer one second
        (f'Basic realm="x", {GRAPH_CAE}', True),
        # several header values
        (["Negotiate", GRAPH_CAE], True),
        # case-insensitive scheme and parameter names, unquoted token values
        (GRAPH_CAE.replace("Bearer", "bEaReR").replace("error=", "ERROR="), True),
        ('Bearer error=insufficient_claims, claims="e30="', True),  # "{}" is a claims request
        # URL-safe alphabet and no padding
        (
            'Bearer error="insufficient_claims", claims="'
            + base64.urlsafe_b64encode(b'{"id_token":{"acrs":{"essential":true}}}')
            .decode()
            .rstrip("=")
            + '"',
            True,
        ),
        # another error, no claims, claims not base64, base64 of no JSON object, other scheme
        (GRAPH_CAE.replace("insufficient_claims", "invalid_token"), False),
        ('Bearer error="insufficient_claims"', False),
        ('Bearer error="insufficient_claims", claims="%%%"', False),
        ('Bearer error="insufficient_claims", claims="WzFd"', False),  # "[1]"
        ('Bearer error="insufficient_claims", claims="bm90IGpzb24="', False),  # "not json"
        (GRAPH_CAE.replace("Bearer", "PoP"), False),
        ("", False),
        (None, False),
        ("Bearer " + "a" * 20000, False),  # too long to be read
    ],
)
def test_what_counts_as_a_claims_challenge(header: object, found: bool) -> None:
    assert (claims_challenge(header) is not None) is found  # type: ignore[arg-type]


def test_parameters_are_parsed_per_rfc_7235() -> None:
    challenges = parse_www_authenticate(
        'Bearer realm="a\\"b", error=invalid_token, Basic realm="x", Negotiate abc123=='
    )
    assert [c.scheme for c in challenges] == ["bearer", "basic", "negotiate"]
    assert challenges[0].params == {"realm": 'a"b', "error": "invalid_token"}
    assert challenges[2].params == {"": "abc123=="}


@given(st.text(max_size=300))
def test_any_header_parses_without_raising(text: str) -> None:
    parse_www_authenticate(text)
    claims_challenge(text)


def test_claims_requests_from_an_identity_provider_are_checked() -> None:
    assert claims_request('{"access_token":{}}') == '{"access_token":{}}'
    for bad in (None, 3, "", "[]", "{", "x" * 9000):
        assert claims_request(bad) is None


def test_claims_round_trip_through_base64() -> None:
    assert decode_claims(encode_claims('{"a":1}')) == '{"a":1}'
