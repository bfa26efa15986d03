"""A small Microsoft Graph: ``/v1.0/me``, ``/v1.0/users`` (paged), ``/oidc/userinfo``.

It accepts only Graph-audience tokens the emulator issued and answers errors in Graph's JSON
shape. Those tokens are signed as Entra signs Graph's (over the header with the SHA-256 of its
``nonce``), so they are checked the Graph way: ``graph_signed_form`` puts the hashed nonce back,
then PyJWT verifies against the emulator's own keys. A token without a header nonce (another
API's) is verified as it is, and then refused for its audience.

Graph evaluates access continuously (CAE) for the clients that declared they can take a claims
challenge: a user token whose ``xms_cc`` holds ``cp1``, issued before the user's sessions were
revoked (``revoke_sessions``), gets 401 ``InvalidAuthenticationToken`` with Graph's CAE claims
challenge in ``WWW-Authenticate`` (``error="insufficient_claims"``, ``claims`` the base64 of
``{"access_token":{"nbf":{"essential":true, "value":"<revocation time>"}}}``). A token of any
other client works until it expires: Entra does not evaluate those continuously.
"""

from __future__ import annotations

import base64
import uuid
from datetime import datetime, timezone
from typing import Any

import jwt
from flask import Blueprint, Response, jsonify, request

from ..claims_requests import cae_challenge
from ..context import current
from ..faults import fault_point
from ..minting import KNOWN_CLIENT_CAPABILITIES, graph_signed_form
from ..seed import GRAPH_APP_ID, GRAPH_RESOURCE_URI, User

_READ_SELF = {"User.Read", "User.ReadWrite", "User.ReadBasic.All", "User.Read.All"}
_READ_ALL = {"User.ReadBasic.All", "User.Read.All", "Directory.Read.All"}
_MAX_TOP = 999
_DENIED = "Insufficient privileges to complete the operation."
# Graph's message for a token CAE revoked (as Graph SDK users report it).
_CAE_REVOKED = (
    "Continuous access evaluation resulted in claims challenge with result: "
    "InteractionRequired and code: TokenIssuedBeforeRevocationTimestamp"
)


class _GraphError(Exception):
    """An error answered in Graph's JSON shape (``{"error": {"code", "message", ...}}``)."""

    def __init__(self, status: int, code: str, message: str, *, claims: str | None = None):
        super().__init__(message)
        self.status, self.code, self.message = status, code, message
        self.claims = claims  # a claims challenge (base64), for WWW-Authenticate


blueprint = Blueprint("graph", __name__, url_prefix="/graph")


@blueprint.errorhandler(_GraphError)
def graph_error(exc: _GraphError) -> Response:
    response = jsonify(
        {
            "error": {
                "code": exc.code,
                "message": exc.message,
                "innerError": {
                    "date": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S"),
                    "request-id": str(uuid.uuid4()),
                    "client-request-id": request.headers.get(
                        "client-request-id", str(uuid.uuid4())
                    ),
                },
            }
        }
    )
    response.status_code = exc.status
    if exc.status == 401:
        # Graph's header, in Graph's order; a CAE challenge adds its error and claims.
        challenge = (
            f'Bearer realm="", authorization_uri="{current().urls.browser_base}/common/oauth2/'
            f'authorize", client_id="{GRAPH_APP_ID}"'
        )
        if exc.claims:
            challenge += f', error="insufficient_claims", claims="{exc.claims}"'
        response.headers["WWW-Authenticate"] = challenge
    return response


def claims() -> dict[str, Any]:
    """The verified claims of the request's bearer token: Graph's audience, our keys, alive."""
    ctx = current()
    state = ctx.state
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise _GraphError(401, "InvalidAuthenticationToken", "Access token is empty.")
    try:
        jws_header = jwt.get_unverified_header(token)
        key = state.key_by_kid(str(jws_header.get("kid")))
        if key is None:
            raise jwt.InvalidSignatureError("unknown key")
        decoded: dict[str, Any] = jwt.decode(
            graph_signed_form(token) if "nonce" in jws_header else token,
            key.private_key.public_key(),
            algorithms=["RS256"],
            audience=[GRAPH_APP_ID, GRAPH_RESOURCE_URI],
            options={"verify_exp": False, "verify_nbf": False, "verify_iat": False},
        )
    except jwt.InvalidAudienceError:
        raise _GraphError(
            401,
            "InvalidAuthenticationToken",
            "Access token validation failure. Invalid audience.",
        ) from None
    except jwt.PyJWTError:
        raise _GraphError(
            401, "InvalidAuthenticationToken", "Access token validation failure."
        ) from None
    tid = str(decoded.get("tid", ""))
    issuers = {f"https://{state.settings.v1_issuer_host}/{tid}/", ctx.urls.v2_issuer(tid)}
    if decoded.get("iss") not in issuers:
        raise _GraphError(401, "InvalidAuthenticationToken", "Invalid issuer.")
    now = state.now()
    if not isinstance(decoded.get("exp"), int) or decoded["exp"] <= now:
        raise _GraphError(
            401,
            "InvalidAuthenticationToken",
            "Lifetime validation failed, the token is expired.",
        )
    if isinstance(decoded.get("nbf"), int) and decoded["nbf"] > now + 300:
        raise _GraphError(401, "InvalidAuthenticationToken", "The token is not yet valid.")
    _evaluate_continuously(decoded)
    return decoded


def _evaluate_continuously(decoded: dict[str, Any]) -> None:
    """CAE: a CAE-capable client's user token from before the user's sessions were revoked
    is refused with the claims challenge that makes the client fetch a newer one."""
    capabilities = decoded.get("xms_cc")
    capable = isinstance(capabilities, list) and any(
        isinstance(c, str) and c.lower() in KNOWN_CLIENT_CAPABILITIES for c in capabilities
    )
    iat = decoded.get("iat")
    if not capable or not isinstance(iat, int) or not isinstance(decoded.get("scp"), str):
        return
    state = current().state
    tid, oid = str(decoded.get("tid", "")), str(decoded.get("oid", ""))
    if state.sign_in_revoked(tid, oid, iat):
        with state.lock:
            revoked_at = state.sessions_revoked[(tid, oid)]
        raise _GraphError(
            401, "InvalidAuthenticationToken", _CAE_REVOKED, claims=cae_challenge(revoked_at)
        )


def permissions(decoded: dict[str, Any]) -> tuple[set[str], set[str]]:
    scp = decoded.get("scp")
    roles = decoded.get("roles")
    return (
        set(scp.split()) if isinstance(scp, str) else set(),
        set(roles) if isinstance(roles, list) else set(),
    )


def user_json(user: User) -> dict[str, Any]:
    return {
        "businessPhones": [],
        "displayName": user.name,
        "givenName": user.given_name,
        "jobTitle": user.job_title,
        "mail": user.email,
        "mobilePhone": None,
        "officeLocation": user.office_location,
        "preferredLanguage": None,
        "surname": user.surname,
        "userPrincipalName": user.upn,
        "id": user.oid,
    }


@blueprint.get("/v1.0/me")
@fault_point("graph")
def me() -> Response:
    ctx = current()
    decoded = claims()
    scp, _ = permissions(decoded)
    if not scp:
        raise _GraphError(
            400, "BadRequest", "/me request is only valid with delegated authentication flow."
        )
    if not scp & _READ_SELF:
        raise _GraphError(
            403,
            "Authorization_RequestDenied",
            _DENIED,
        )
    user = ctx.state.seed.user(str(decoded.get("tid")), str(decoded.get("oid")))
    if user is None:
        raise _GraphError(404, "Request_ResourceNotFound", "The user does not exist.")
    return jsonify(
        {
            "@odata.context": f"{ctx.urls.graph_base}/v1.0/$metadata#users/$entity",
            **user_json(user),
        }
    )


@blueprint.get("/v1.0/users")
@fault_point("graph")
def users() -> Response:
    ctx = current()
    decoded = claims()
    scp, roles = permissions(decoded)
    if not (scp & _READ_ALL or "User.Read.All" in roles):
        raise _GraphError(
            403,
            "Authorization_RequestDenied",
            _DENIED,
        )
    try:
        top = int(request.args.get("$top", "100"))
        start = int(base64.urlsafe_b64decode(request.args.get("$skiptoken", "MA==")).decode())
    except ValueError:
        raise _GraphError(400, "BadRequest", "Invalid paging parameters.") from None
    if not 1 <= top <= _MAX_TOP or start < 0:
        raise _GraphError(400, "BadRequest", f"Invalid value for $top: 1 to {_MAX_TOP}.")
    everyone = ctx.state.seed.users_of(str(decoded.get("tid")))
    page = everyone[start : start + top]
    body: dict[str, Any] = {
        "@odata.context": f"{ctx.urls.graph_base}/v1.0/$metadata#users",
        "value": [user_json(u) for u in page],
    }
    if start + top < len(everyone):
        token = base64.urlsafe_b64encode(str(start + top).encode()).decode()
        body["@odata.nextLink"] = f"{ctx.urls.graph_base}/v1.0/users?$top={top}&$skiptoken={token}"
    return jsonify(body)


@blueprint.get("/oidc/userinfo")
@fault_point("userinfo")
def userinfo() -> Response:
    decoded = claims()
    user = current().state.seed.user(str(decoded.get("tid")), str(decoded.get("oid")))
    if user is None or not permissions(decoded)[0]:
        raise _GraphError(401, "InvalidAuthenticationToken", "A user token is required.")
    return jsonify(
        {
            "sub": decoded.get("sub"),
            "name": user.name,
            "family_name": user.surname,
            "given_name": user.given_name,
            "email": user.email,
        }
    )
