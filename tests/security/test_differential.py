"""Differential testing: our validator against PyJWT configured to the same rules.

PyJWT checks the signature (RS256 only), ``aud``, ``exp``/``nbf`` with the same leeway and the
presence of ``exp``/``iss``/``aud``; the Entra-specific rules are written out below. A corpus of
valid tokens and of every mutation (and random pairs of them) goes through both; each
disagreement must match an explanation by name, or the test fails.
"""

from __future__ import annotations

import base64
import json
import random
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

import jwt
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from flask.testing import FlaskClient

from entra_auth.emulator import EntraEmulator
from entra_auth.errors import InsufficientScopeError, InvalidTokenError
from entra_auth.integrations.flask import ApiProtector

from ..helpers import API, CONTOSO, FABRIKAM, WEB
from .minting import REMOVE, Mint

AUDIENCES = [API, f"api://{API}"]
LEEWAY = 60


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


class Case:
    def __init__(self, mutations: tuple[str, ...], token: str):
        self.mutations, self.token = mutations, token


def build_corpus(emulator: EntraEmulator) -> list[Case]:
    mint = Mint(emulator)
    now = int(time.time())
    base = emulator.urls.https_base
    foreign = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    claim_mutations: dict[str, dict[str, Any]] = {
        "aud=graph": {"aud": "00000003-0000-0000-c000-000000000000"},
        "aud=other-app": {"aud": WEB},
        "aud=app-id-uri": {"aud": f"api://{API}"},
        "aud=list": {"aud": [API, WEB]},
        "aud=evil-suffix": {"aud": f"api://{API}-evil"},
        "aud=missing": {"aud": REMOVE},
        "iss=other-tenant": {"iss": f"{base}/{FABRIKAM}/v2.0"},
        "iss=trailing-slash": {"iss": f"{base}/{CONTOSO}/v2.0/"},
        "iss=http": {"iss": f"{base.replace('https', 'http')}/{CONTOSO}/v2.0"},
        "iss=v1": {"iss": f"https://sts.windows.net/{CONTOSO}/"},
        "iss=missing": {"iss": REMOVE},
        "tid=other": {"tid": FABRIKAM},
        "tid=missing": {"tid": REMOVE},
        "tid=object": {"tid": {"id": CONTOSO}},
        "ver=1.0": {"ver": "1.0"},
        "ver=missing": {"ver": REMOVE},
        "ver=number": {"ver": 2},
        "exp=past": {"exp": now - 600},
        "exp=within-leeway": {"exp": now - 30},
        "exp=missing": {"exp": REMOVE},
        "exp=float": {"exp": float(now + 3600)},
        "exp=string": {"exp": str(now + 3600)},
        "nbf=future": {"nbf": now + 600},
        "nbf=within-leeway": {"nbf": now + 30},
        "iat=future": {"iat": now + 600},
        "kind=id-token": {"scp": REMOVE, "azp": REMOVE, "nonce": "n"},
        "kind=id-token-with-roles": {"scp": REMOVE, "azp": REMOVE, "roles": ["Data.Read.All"]},
        "azp=missing": {"azp": REMOVE},
        "nonce=present": {"nonce": "n"},
        "exp=300-digits": {"exp": 10**300},
        "nbf=negative": {"nbf": -1},
        "idtyp=user": {"idtyp": "user"},
        "roles=with-scope": {"roles": ["Data.Read.All"]},
        "idtyp=app-with-scp": {"idtyp": "app"},
        "scp=list": {"scp": ["access_as_user"]},
        "roles=string": {"scp": REMOVE, "roles": "Data.Read.All"},
        "roles=app-only": {"scp": REMOVE, "roles": ["Data.Read.All"]},
        "oid=missing": {"oid": REMOVE},
        "sub=missing": {"sub": REMOVE},
        "guest": {"idp": f"https://sts.windows.net/{FABRIKAM}/"},
    }

    def signed(header: dict[str, Any], payload: str, key: Any = None) -> str:
        head = b64(json.dumps(header).encode())
        signature = (key or mint.key).sign(
            f"{head}.{payload}".encode(), padding.PKCS1v15(), hashes.SHA256()
        )
        return f"{head}.{payload}.{b64(signature)}"

    def payload(claims: dict[str, Any]) -> str:
        return b64(json.dumps(claims).encode())

    header = mint.header()
    other_makers: dict[str, Callable[[dict[str, Any]], str]] = {
        "alg=none": lambda c: mint.raw(mint.header(alg="none"), c, sign=False),
        "alg=RS512": lambda c: mint.token(c, alg="RS512"),
        "alg=PS256": lambda c: mint.token(c, alg="PS256"),
        "kid=missing": lambda c: signed(mint.header(kid=REMOVE), payload(c)),
        "kid=unknown": lambda c: signed(mint.header(kid="unknown"), payload(c)),
        "key=foreign": lambda c: signed(header, payload(c), foreign),
        "header=crit": lambda c: signed(mint.header(crit=["exp"]), payload(c)),
        "header=jku": lambda c: signed(mint.header(jku="https://evil.example/keys"), payload(c)),
        "encoding=padded-payload": lambda c: signed(
            header, payload(c) + "=" * (-len(payload(c)) % 4 or 4)
        ),
        "encoding=duplicate-aud": lambda c: signed(
            header, b64((json.dumps(c)[:-1] + f', "aud": "{WEB}"}}').encode())
        ),
        "signature=truncated": lambda c: mint.token(c)[:-6],
        "signature=stripped": lambda c: mint.token(c).rsplit(".", 1)[0] + ".",
    }
    cases = [Case((), mint.token(mint.claims()))]
    for name, change in claim_mutations.items():
        cases.append(Case((name,), mint.token(mint.claims(**change))))
    for name, make in other_makers.items():
        cases.append(Case((name,), make(mint.claims())))
    rng = random.Random(20261124)
    names = list(claim_mutations)
    for _ in range(400):
        first, second = rng.sample(names, 2)
        claims = mint.claims(**{**claim_mutations[first], **claim_mutations[second]})
        cases.append(Case((first, second), mint.token(claims)))
    for _ in range(150):
        claim_name, other_name = rng.choice(names), rng.choice(list(other_makers))
        cases.append(
            Case(
                (claim_name, other_name),
                other_makers[other_name](mint.claims(**claim_mutations[claim_name])),
            )
        )
    return cases


def pyjwt_accepts(token: str, keys: dict[str, Any], base: str) -> bool:
    """PyJWT with the same rules, plus Entra's, written out."""
    try:
        header = jwt.get_unverified_header(token)
        key = keys.get(header.get("kid"))
        if key is None:
            return False
        claims = jwt.decode(
            token,
            key,
            algorithms=["RS256"],
            audience=AUDIENCES,
            leeway=LEEWAY,
            options={"require": ["exp", "iss", "aud"], "verify_iss": False},
        )
    except jwt.PyJWTError:
        return False
    # -- Entra's rules, which PyJWT does not know --
    tid = claims.get("tid")
    if tid != CONTOSO or claims.get("ver") != "2.0":
        return False
    if claims.get("iss") != f"{base}/{tid}/v2.0":
        return False
    if "iat" in claims and claims["iat"] > time.time() + LEEWAY:
        return False
    scp, roles = claims.get("scp"), claims.get("roles")
    if scp is None and roles is None:
        return False  # an ID token is not an access token
    if not isinstance(claims.get("azp"), str) or not claims["azp"] or "nonce" in claims:
        return False  # nor is any token without the calling app, or with a sign-in nonce
    if scp is not None and not isinstance(scp, str):
        return False
    if roles is not None and not (
        isinstance(roles, list) and all(isinstance(r, str) for r in roles)
    ):
        return False
    return all(isinstance(claims.get(k), str) and claims.get(k) for k in ("oid", "sub"))


# Where the two may rightly disagree: we are stricter on purpose.
EXPLAINED: dict[str, str] = {
    "aud=list": "Entra access tokens carry one audience; a list is refused (PyJWT accepts any "
    "list holding ours)",
    "exp=float": "Entra issues whole-number times; other types are refused (PyJWT casts them)",
    "exp=string": "Entra issues whole-number times; other types are refused (PyJWT casts them)",
    "encoding=padded-payload": "RFC 7515 base64url has no padding; non-canonical encodings are "
    "refused (PyJWT decodes leniently)",
    "encoding=duplicate-aud": "duplicate JSON members are refused (PyJWT keeps the last)",
    "header=crit": "unknown critical extensions are refused (RFC 7515 §4.1.11)",
    "exp=300-digits": "a NumericDate past year 9999 is no date (HX03); PyJWT takes any integer",
    "nbf=negative": "a NumericDate before 1970 is no date (HX03); PyJWT takes any integer",
    "idtyp=app-with-scp": "a token that says it is app-only cannot carry delegated scopes (HX02)",
}


def test_differential_against_pyjwt(api: FlaskClient, entra_emulator: EntraEmulator) -> None:
    validator = ApiProtector.validator(api.application)
    keys = {kid: key.public_key for kid, key in validator.jwks.keys().items()}
    base = entra_emulator.urls.https_base
    corpus = build_corpus(entra_emulator)
    verdicts: Counter[str] = Counter()
    unexplained: list[tuple[tuple[str, ...], bool, bool]] = []
    for case in corpus:
        try:
            validator.validate(case.token)
            ours = True
        except (InvalidTokenError, InsufficientScopeError):
            ours = False
        theirs = pyjwt_accepts(case.token, keys, base)
        if ours == theirs:
            verdicts["agree-accept" if ours else "agree-refuse"] += 1
            continue
        reasons = [EXPLAINED[m] for m in case.mutations if m in EXPLAINED]
        if reasons and not ours:  # explained, and only ever in the stricter direction
            verdicts["explained"] += 1
            continue
        unexplained.append((case.mutations, ours, theirs))
    print(f"\ndifferential corpus: {len(corpus)} tokens · {dict(verdicts)}")
    assert unexplained == [], unexplained
    assert len(corpus) >= 500
    assert verdicts["agree-accept"] >= 20  # the corpus exercises acceptance too
    assert verdicts["explained"] >= 1
