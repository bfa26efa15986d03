"""Client authentication by assertion (``private_key_jwt``), checked as Entra checks it.

A confidential client sends ``client_assertion_type=urn:ietf:params:oauth:client-assertion-type:
jwt-bearer`` and a signed JWT, ``client_assertion``, instead of a secret. Two kinds, told apart
by the ``iss`` claim (a header cannot tell them: GitHub's tokens carry ``x5t`` as certificate
assertions do):

- **The app's own assertion**, signed with a certificate registered for the app (Microsoft
  Learn, "Microsoft identity platform application authentication certificate credentials"):
  ``iss`` and ``sub`` the client id (AADSTS50048 when they differ, AADSTS700021 when they name
  another app), the certificate named in the header by ``x5t`` (SHA-1) or ``x5t#S256`` (SHA-256;
  AADSTS700027 "The key was not found." for one not registered, "The key used is expired." out
  of its validity), signed RS256 or PS256 (AADSTS700027 when the signature does not verify),
  ``aud`` the tenant's token endpoint, v2 or v1, or its v2 issuer (AADSTS700023), ``exp`` and
  ``nbf`` around now with 5 minutes of clock skew (AADSTS700024), a ``jti`` (AADSTS50027). With
  subject name and issuer authentication (``trusted_certificate_subjects``), a certificate not
  uploaded is taken from ``x5c`` when its subject is trusted (AADSTS700030 otherwise) and it was
  issued by the authority configured for it (AADSTS50012 otherwise).
- **A token of another issuer** (an ``iss`` URL), matched with the app's federated identity
  credentials (Microsoft Learn, "Workload identity federation"): none at all AADSTS70021, none
  for its issuer AADSTS700211, a signature its issuer did not make AADSTS50027, out of its time
  range AADSTS700024, no credential with its subject AADSTS700213 (compared exactly), none with
  its audience AADSTS700212.

Entra limits neither an assertion's lifetime nor its reuse (MSAL Python reuses one for nine of
its ten minutes); ``EmulatorSettings.client_assertions = "strict"`` refuses an assertion that
lives over 10 minutes, the documented advice, or whose ``jti`` it saw before (AADSTS700024,
AADSTS50027).

The emulator's stand-in issuers (``https://<emulator>/_issuers/<name>``, with an OpenID
configuration and a key set) mint federated tokens for tests (``mint_federated_token``). Their
one key, kept in the state directory, is the only one federated tokens verify with: the emulator
fetches nothing, so a credential for a real issuer's URL (GitHub Actions',
``https://token.actions.githubusercontent.com``) trusts the tokens the emulator mints for it.

Signatures are checked by PyJWT (``cryptography`` underneath); nothing here is hand-written
cryptography.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import json
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import jwt
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric import rsa

from ..errors import EmulatorError
from .app_credentials import DEFAULT_ISSUER, ISSUER_NAME, ISSUERS_PATH, TOKEN_EXCHANGE_AUDIENCE
from .oauth_errors import AadError

if TYPE_CHECKING:
    from .context import EmulatorContext
    from .minting import Urls
    from .seed import App, Tenant
    from .state import EmulatorState

JWT_BEARER = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
# Microsoft.IdentityModel's default clock skew, which Entra's token validation is built on.
CLOCK_SKEW = 300
# Under client_assertions = "strict": "keep it short - 5-10 minutes after nbf at most".
STRICT_LIFETIME = 600
_ALGORITHMS = ("RS256", "PS256")
_JWS = jwt.PyJWS()
_GRAPH_KEYS = (
    ", Please visit the Azure Portal, Graph Explorer or directly use MS Graph to see configured "
    "keys for app Id '{client_id}'. Review the documentation at https://docs.microsoft.com/"
    "en-us/graph/api/application-get?view=graph-rest-1.0 to learn how to retrieve the "
    "configured keys."
)


def authenticate(
    ctx: EmulatorContext, form: dict[str, str], client: App, tenant: Tenant | None, ref: str
) -> None:
    """Check the request's ``client_assertion`` for ``client``; an ``AadError`` if it fails.

    ``tenant`` is the tenant of the path (None for common/organizations), ``ref`` the path's
    own spelling of it, which the assertion's ``aud`` may use.
    """
    kind = form.get("client_assertion_type")
    if not kind:
        raise AadError(90014, field="client_assertion_type")
    if kind != JWT_BEARER:
        raise AadError(
            9002313, detail=f"client_assertion_type must be '{JWT_BEARER}' (got '{kind[:100]}')."
        )
    token = form.get("client_assertion", "")
    header, claims = _parse(token)
    issuer = claims.get("iss")
    if isinstance(issuer, str) and "://" in issuer:
        _federated(ctx, token, header, claims, client)
    else:
        _own(ctx, token, header, claims, client, tenant, ref)


def _parse(token: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """The header and claims of ``token``, before anything is trusted; AADSTS50027 if it is not
    a JWT."""
    try:
        unverified = _JWS.decode_complete(token, options={"verify_signature": False})
        claims = json.loads(unverified["payload"])
    except (jwt.PyJWTError, ValueError):  # JSONDecodeError and UnicodeDecodeError included
        claims = None
    if not isinstance(claims, dict):
        raise AadError(
            50027,
            detail="The client assertion is not a JWT (a header, claims and a signature, each "
            "base64url, joined by dots).",
        )
    return unverified["header"], claims


# -- the app's own assertion (a certificate) -------------------------------------------------------
@dataclass(frozen=True)
class _Key:
    public_key: rsa.RSAPublicKey
    thumbprint: str  # as Entra shows the one the client named: upper-case hex
    start: dt.datetime
    end: dt.datetime

    def found(self) -> str:
        return f", Found key 'Start={_us_time(self.start)}, End={_us_time(self.end)}'"


def _own(
    ctx: EmulatorContext,
    token: str,
    header: dict[str, Any],
    claims: dict[str, Any],
    client: App,
    tenant: Tenant | None,
    ref: str,
) -> None:
    state = ctx.state
    iss, sub = claims.get("iss"), claims.get("sub")
    if not (isinstance(iss, str) and iss and isinstance(sub, str) and sub):
        raise AadError(
            50027, detail="The client assertion needs 'iss' and 'sub' claims: the client id."
        )
    if iss != sub:
        raise AadError(50048)
    if iss.lower() != client.client_id.lower():
        raise AadError(700021)
    now = state.now()
    key = _certificate_key(client, header, now)
    moment = dt.datetime.fromtimestamp(now, dt.timezone.utc)
    if moment < key.start:
        raise AadError(
            700027, reason="The key is not yet valid.", thumbprint=key.thumbprint, found=key.found()
        )
    if moment > key.end:
        raise AadError(
            700027, reason="The key used is expired.", thumbprint=key.thumbprint, found=key.found()
        )
    alg = header.get("alg")
    if alg not in _ALGORITHMS:
        raise AadError(
            700027,
            reason=f"The signing algorithm '{str(alg)[:20]}' is not supported (RS256 or PS256).",
            thumbprint=key.thumbprint,
            found=key.found(),
        )
    try:
        _JWS.decode(token, key.public_key, algorithms=[str(alg)])
    except jwt.InvalidSignatureError:
        raise AadError(
            700027,
            reason="The provided signature value did not match the expected signature value.",
            thumbprint=key.thumbprint,
            found=key.found(),
        ) from None
    except jwt.PyJWTError:
        raise AadError(50027, detail="The client assertion's signature cannot be read.") from None
    if not _audience_accepted(claims.get("aud"), _own_audiences(ctx.urls, tenant, ref)):
        raise AadError(700023)
    strict = state.settings.client_assertions == "strict"
    exp = _check_time(claims, now, max_lifetime=STRICT_LIFETIME if strict else None)
    jti = claims.get("jti")
    if not isinstance(jti, str) or not jti:
        raise AadError(
            50027, detail="The client assertion has no 'jti' claim (a new GUID for each one)."
        )
    if strict:
        _first_use(state, client, jti, exp, now)


def _certificate_key(client: App, header: dict[str, Any], now: float) -> _Key:
    """The key the header names: a certificate registered for the app (``x5t#S256`` or
    ``x5t``), else, with trusted subjects, the ``x5c`` certificate; AADSTS700027 otherwise."""
    sha256, sha1 = _thumbprint(header.get("x5t#S256")), _thumbprint(header.get("x5t"))
    named = sha256 or sha1
    shown = named.hex().upper() if named else str(header.get("x5t#S256") or header.get("x5t"))
    for cert in client.certificates:
        if (sha256 and cert.sha256 == sha256) or (sha1 and cert.sha1 == sha1):
            return _Key(cert.public_key(), shown, cert.start, cert.end)
    if header.get("x5c") and client.trusted_certificate_subjects:
        return _subject_name_issuer(client, header["x5c"], shown)
    raise AadError(
        700027,
        reason="The key was not found.",
        thumbprint=shown if (sha256 or sha1) else "",
        found=_GRAPH_KEYS.format(client_id=client.client_id),
    )


def _thumbprint(value: object) -> bytes | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        return base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))
    except (binascii.Error, ValueError):
        return None


def _subject_name_issuer(client: App, chain: object, shown: str) -> _Key:
    """Subject name and issuer authentication: the leaf of ``x5c`` (standard base64 DER, leaf
    first) has a trusted subject and chains to the authority trusted for it."""
    try:
        if not isinstance(chain, list) or not chain:
            raise ValueError
        certs = [x509.load_der_x509_certificate(base64.b64decode(c)) for c in chain[:10]]
    except (ValueError, TypeError, binascii.Error):
        raise AadError(
            50027, detail="The header's x5c is not a list of base64 DER certificates."
        ) from None
    leaf = certs[0]
    subject = leaf.subject.rfc4514_string()
    trusted = [t for t in client.trusted_certificate_subjects if t.subject_name == subject]
    if not trusted:
        raise AadError(700030, subjects=subject)
    if not any(_chains_to(certs, t.authority) for t in trusted):
        raise AadError(
            50012,
            reason="A matching trusted authority policy wasn't found for the authorized subject "
            f"name '{subject}': the certificate chain does not lead to its trusted authority.",
        )
    key = leaf.public_key()
    if not isinstance(key, rsa.RSAPublicKey):
        raise AadError(50012, reason="The signing certificate isn't valid: it has no RSA key.")
    return _Key(key, shown, leaf.not_valid_before_utc, leaf.not_valid_after_utc)


def _chains_to(certs: list[x509.Certificate], authority: x509.Certificate) -> bool:
    """Whether ``certs`` (leaf first, each issued by the next) lead to ``authority``."""
    for end, cert in enumerate(certs):
        if _issued_by(cert, authority):
            return all(_issued_by(certs[i], certs[i + 1]) for i in range(end))
    return False


def _issued_by(cert: x509.Certificate, issuer: x509.Certificate) -> bool:
    try:
        cert.verify_directly_issued_by(issuer)
    except (ValueError, TypeError, InvalidSignature):
        return False
    return True


def _own_audiences(urls: Urls, tenant: Tenant | None, ref: str) -> set[str]:
    """What an app's own assertion may name in ``aud``: the tenant's v2 or v1 token endpoint, or
    its v2 issuer (the authority), by GUID, domain or the path's own spelling."""
    names = {ref.lower()} | ({tenant.id.lower(), tenant.domain.lower()} if tenant else set())
    base = urls.https_base.lower()
    accepted: set[str] = set()
    for name in names:
        accepted |= {
            f"{base}/{name}/oauth2/v2.0/token",
            f"{base}/{name}/oauth2/token",
            f"{base}/{name}/v2.0",
        }
    return accepted


def _audience_accepted(aud: object, accepted: set[str]) -> bool:
    return any(a.lower().rstrip("/") in accepted for a in _audience_list(aud))


def _audience_list(aud: object) -> list[str]:
    if isinstance(aud, str):
        return [aud]
    if isinstance(aud, list):
        return [a for a in aud if isinstance(a, str)]
    return []


def _first_use(state: EmulatorState, client: App, jti: str, exp: float, now: float) -> None:
    """Strict mode: a ``jti`` once per client while its assertion is valid (AADSTS50027)."""
    seen = (client.client_id.lower(), jti)
    with state.lock:
        ids = state.assertion_ids
        for old in [k for k, until in ids.items() if until + CLOCK_SKEW < now]:
            del ids[old]
        if seen in ids:
            raise AadError(
                50027,
                detail=f"The client assertion with jti '{jti[:64]}' was used before: make a new "
                "assertion, with a new jti, for each token request.",
            )
        ids[seen] = exp


# -- time --------------------------------------------------------------------------------------
def _check_time(claims: dict[str, Any], now: float, *, max_lifetime: int | None) -> float:
    """``exp`` when the assertion is valid now (with clock skew), else AADSTS700024; a missing
    ``exp`` reads as 1970, as Entra's answers show it."""
    exp, nbf, iat = (_number(claims.get(name)) for name in ("exp", "nbf", "iat"))
    start = nbf if nbf is not None else iat
    too_long = (
        max_lifetime is not None
        and exp is not None
        and exp - (start if start is not None else now) > max_lifetime
    )
    if (
        exp is None
        or now > exp + CLOCK_SKEW
        or (nbf is not None and nbf > now + CLOCK_SKEW)
        or too_long
    ):
        raise AadError(
            700024, now=net_time(now), start=net_time(start or 0), exp=net_time(exp or 0)
        )
    return exp


def _number(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value)


def net_time(moment: float) -> str:
    """A time as Entra's messages write it: ``2023-08-01T11:08:01.5274809Z`` (.NET's "o")."""
    when = dt.datetime.fromtimestamp(moment, dt.timezone.utc)
    return when.strftime("%Y-%m-%dT%H:%M:%S.") + f"{when.microsecond:06d}0Z"


def _us_time(when: dt.datetime) -> str:
    """A certificate's validity as Entra writes it: ``06/29/2021 21:13:15``."""
    return when.strftime("%m/%d/%Y %H:%M:%S")


# -- federated tokens ----------------------------------------------------------------------------
def _federated(
    ctx: EmulatorContext,
    token: str,
    header: dict[str, Any],
    claims: dict[str, Any],
    client: App,
) -> None:
    issuer = str(claims["iss"])
    subject = claims.get("sub") if isinstance(claims.get("sub"), str) else ""
    audiences = _audience_list(claims.get("aud"))
    shown = audiences[0] if audiences else ""
    if not client.federated_credentials:
        raise AadError(70021, issuer=issuer, subject=subject, audience=shown)
    base = ctx.urls.https_base
    for_issuer = [c for c in client.federated_credentials if c.issuer_url(base) == issuer]
    if not for_issuer:
        raise AadError(700211, issuer=issuer)
    key = ctx.state.issuer_key
    assert key is not None  # EmulatorState makes one
    try:
        _JWS.decode(token, key.private_key.public_key(), algorithms=["RS256"])
    except jwt.PyJWTError:
        raise AadError(
            50027,
            detail=f"External ID token from issuer '{issuer}' failed signature verification.",
        ) from None
    _check_time(claims, ctx.state.now(), max_lifetime=None)
    for_subject = [c for c in for_issuer if c.subject == subject]
    if not for_subject:
        raise AadError(700213, subject=subject)
    if not any(a in c.audiences for c in for_subject for a in audiences):
        raise AadError(700212, audience=shown)


def issuer_url(https_base: str, issuer: str | None = None) -> str:
    """The URL a stand-in issuer's tokens name: ``None`` the default one (``/_issuers/local``),
    a name its ``/_issuers/<name>``, ``/_issuers/<name>`` itself, or an https URL as it is."""
    given = issuer or DEFAULT_ISSUER
    if ISSUER_NAME.fullmatch(given):
        return f"{https_base}{ISSUERS_PATH}{given}"
    if given.startswith(ISSUERS_PATH) and ISSUER_NAME.fullmatch(given[len(ISSUERS_PATH) :]):
        return f"{https_base}{given}"
    if given.startswith("https://") and len(given) > len("https://"):
        return given
    raise EmulatorError(
        f"{given!r} names no issuer.",
        remedy="Give a stand-in issuer's name (such as 'local' or 'github'), /_issuers/<name>, "
        "or an https URL.",
        code="invalid_issuer",
    )


def mint_federated_token(
    state: EmulatorState,
    urls: Urls,
    subject: str,
    *,
    audience: str | list[str] = TOKEN_EXCHANGE_AUDIENCE,
    issuer: str | None = None,
    lifetime: int = 3600,
    claims: dict[str, Any] | None = None,
) -> str:
    """A token of a stand-in issuer, as a Kubernetes cluster or GitHub Actions would issue one
    for a workload: ``iss``, ``sub``, ``aud``, ``iat``/``nbf``/``exp`` by the emulator's clock,
    ``jti``; RS256 with ``kid``. ``claims`` adds (or overrides) claims."""
    key = state.issuer_key
    assert key is not None  # EmulatorState makes one
    now = int(state.now())
    payload: dict[str, Any] = {
        "iss": issuer_url(urls.https_base, issuer),
        "sub": subject,
        "aud": audience,
        "iat": now,
        "nbf": now,
        "exp": now + lifetime,
        "jti": str(uuid.uuid4()),
        **(claims or {}),
    }
    return jwt.encode(
        payload, key.private_key, algorithm="RS256", headers={"kid": key.kid, "typ": "JWT"}
    )
