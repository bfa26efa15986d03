"""Managed identity: the token endpoints an Azure host gives the code it runs.

On a virtual machine the code asks the Instance Metadata Service (IMDS),
``GET http://169.254.169.254/metadata/identity/oauth2/token?api-version=2018-02-01&resource=…``
with the header ``Metadata: true``; in App Service or Functions it asks ``IDENTITY_ENDPOINT``
with ``X-IDENTITY-HEADER: $IDENTITY_HEADER`` (api-version 2019-08-01). Both answer an app-only
access token for ``resource`` (an App ID URI or client id, what client credentials ask for as
``<resource>/.default``) issued to one of the host's identities, picked as each service picks
it (Microsoft Learn: "How to use managed identities for Azure resources on an Azure VM to
acquire an access token", the managed identities FAQ, and "How to use managed identities for
App Service and Azure Functions"):

- IMDS: ``client_id``, ``object_id`` or ``msi_res_id`` name one; with none, the system-assigned
  identity, else the only user-assigned one; several user-assigned and none named is an error.
- App Service: ``client_id``, ``principal_id`` (alias ``object_id``) or ``mi_res_id``; with
  none, the system-assigned identity only.

Here the endpoints are ``/metadata/identity/oauth2/token`` and ``/_msi/app-service/token`` on
the emulator's HTTPS port, and every managed identity of the seed is the host's. MSAL's
``ManagedIdentityClient`` reaches the first through ``AZURE_POD_IDENTITY_AUTHORITY_HOST`` and
the second through ``IDENTITY_ENDPOINT`` and ``IDENTITY_HEADER``, the header being a secret kept
in the state directory (``identity-header``, 0600): ``EntraEmulator.managed_identity_env()``.

The tokens are minted as client credentials' are (the same claims, the API's version and
optional claims, the app roles granted in the seed's ``app_permissions``), with what Entra's
managed-identity tokens add: the identity's object id as ``oid``/``sub``, ``appidacr``/``azpacr``
"2" (a certificate) and ``xms_mirid``, the Azure resource id. Both endpoints are one fault point,
``managed_identity``.
"""

from __future__ import annotations

import hmac
import re
import secrets
from pathlib import Path
from typing import Any

import jwt
from flask import Blueprint, Flask, Response, current_app, request

from ..context import current
from ..faults import fault_point
from ..grants import granted_roles
from ..oauth_errors import AadError
from ..pki import write_private
from ..scopes import Resource, resolve_resource
from ..seed import ManagedIdentity, Seed
from .common import error_body, json_response, trace_id

blueprint = Blueprint("managed_identity", __name__)

IMDS_PATH = "/metadata/identity/oauth2/token"
APP_SERVICE_PATH = "/_msi/app-service/token"
IDENTITY_HEADER_FILE = "identity-header"
IMDS_MIN_API_VERSION = "2018-02-01"  # "Use API version 2018-02-01 or greater."
APP_SERVICE_API_VERSION = "2019-08-01"
_EXTENSION = "entra_emulator_identity_header"
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_HEADER_VALUE = re.compile(r"[A-Za-z0-9_-]{32,}")

# IMDS's words (Microsoft Learn, the VM token article's "HTTP response reference", and what
# Azure SDKs' tests record of its answers).
IMDS_METADATA_REQUIRED = "Required metadata header not specified"
IMDS_MALFORMED = (
    "The request is missing a required parameter, includes an invalid parameter value, "
    "includes a parameter more than once, or is otherwise malformed."
)
IMDS_IDENTITY_NOT_FOUND = "Identity not found"
IMDS_SEVERAL_USER_ASSIGNED = (
    "Multiple user assigned identities exist, please specify the clientId / resourceId of the "
    "identity in the token request"
)
IMDS_NO_API_VERSION = (
    "Bad request. api-version was not specified in the request. For more information refer "
    "to aka.ms/azureimds"
)
# App Service's words (as MSAL.NET's tests against a real App Service and reports record them).
APP_SERVICE_NOT_FOUND = (
    "No User Assigned or Delegated Managed Identity found for specified "
    "ClientId/ResourceId/PrincipalId."
)
APP_SERVICE_NO_SYSTEM_ASSIGNED = "Unable to load the proper Managed Identity."
APP_SERVICE_TOKEN_FAILED = "An unexpected error occured while fetching the AAD Token."  # noqa: S105


class _Refused(Exception):
    """An answer other than a token: the endpoint's own error shape, already built."""

    def __init__(self, response: Response):
        self.response = response


# -- the secret of App Service's endpoint ---------------------------------------------------------
def ensure_identity_header(state_dir: Path) -> str:
    """The ``IDENTITY_HEADER`` of this state directory: kept in ``identity-header`` (0600), made
    on first use, so that a ``.env`` holding it stays right across restarts."""
    path = Path(state_dir) / IDENTITY_HEADER_FILE
    try:
        value = path.read_text(encoding="ascii").strip()
    except (OSError, UnicodeDecodeError):
        value = ""
    if not _HEADER_VALUE.fullmatch(value):
        value = secrets.token_urlsafe(32)
        write_private(path, value.encode("ascii"))
    return value


def install(app: Flask, identity_header: str | None) -> None:
    """Serve the managed-identity endpoints in ``app``; App Service's only with the header
    (without one, every App Service request is refused as with a wrong header)."""
    app.extensions[_EXTENSION] = identity_header


# -- IMDS ------------------------------------------------------------------------------------------
@blueprint.get(IMDS_PATH)
@fault_point("managed_identity")
def imds_token() -> Response:
    try:
        if request.headers.get("Metadata") != "true":  # "in all lower case"
            raise _Refused(_imds_error(400, "invalid_request", IMDS_METADATA_REQUIRED))
        args = _args(lambda: _imds_error(400, "invalid_request", IMDS_MALFORMED))
        version = args.get("api-version", "")
        if not _DATE.fullmatch(version) or version < IMDS_MIN_API_VERSION:
            # The instance metadata service's answer to a request without a (usable) version.
            newest = ["2020-10-01", "2020-09-01", "2020-07-15"]  # as the article shows them
            body = {"error": IMDS_NO_API_VERSION, "newest-versions": newest}
            raise _Refused(json_response(body, 400))
        if not args.get("resource"):
            raise _Refused(_imds_error(400, "invalid_request", IMDS_MALFORMED))
        identity = _imds_identity(args)
        seed = current().state.seed
        try:
            resource = resolve_resource(seed, args["resource"], identity.tenant_id)
        except AadError as error:  # Entra's own answer, relayed (invalid_resource, 500011)
            raise _Refused(json_response(error_body(error), 400)) from None
    except _Refused as refused:
        return refused.response
    token, claims = _mint(seed, identity, resource)
    lifetime = str(int(claims["exp"]) - int(claims["iat"]))
    return json_response(
        {
            "access_token": token,
            "client_id": identity.client_id,
            "expires_in": lifetime,
            "expires_on": str(claims["exp"]),
            "ext_expires_in": lifetime,
            "not_before": str(claims["nbf"]),
            "refresh_token": "",
            "resource": args["resource"],
            "token_type": "Bearer",
        }
    )


def _imds_identity(args: dict[str, str]) -> ManagedIdentity:
    """The identity an IMDS request names, or the one IMDS defaults to."""
    identities = current().state.seed.managed_identities
    named = {k: v for k, v in args.items() if k in ("client_id", "object_id", "msi_res_id") and v}
    if len(named) > 1:
        raise _Refused(_imds_error(400, "invalid_request", IMDS_MALFORMED))
    if named:
        ((kind, value),) = named.items()
        found = _named(identities, kind, value)
        if found is None:
            raise _Refused(_imds_error(400, "invalid_request", IMDS_IDENTITY_NOT_FOUND))
        return found
    system = next((i for i in identities if i.kind == "system"), None)
    if system is not None:
        return system
    user_assigned = [i for i in identities if i.kind == "user"]
    if len(user_assigned) == 1:
        return user_assigned[0]
    if user_assigned:
        raise _Refused(_imds_error(400, "invalid_request", IMDS_SEVERAL_USER_ASSIGNED))
    raise _Refused(_imds_error(400, "invalid_request", IMDS_IDENTITY_NOT_FOUND))


def _imds_error(status: int, error: str, description: str) -> Response:
    return json_response({"error": error, "error_description": description}, status)


# -- App Service -----------------------------------------------------------------------------------
@blueprint.get(APP_SERVICE_PATH)
@fault_point("managed_identity")
def app_service_token() -> Response:
    try:
        expected = current_app.extensions.get(_EXTENSION)
        given = request.headers.get("X-IDENTITY-HEADER", "")
        if not isinstance(expected, str) or not hmac.compare_digest(
            given.encode("utf-8", "replace"), expected.encode()
        ):
            raise _Refused(
                _app_service_error(
                    401,
                    "The X-IDENTITY-HEADER header is missing or is not this host's "
                    "IDENTITY_HEADER.",
                )
            )
        args = _args(lambda: _app_service_error(400, "A query parameter is given more than once."))
        version = args.get("api-version")
        if version != APP_SERVICE_API_VERSION:
            raise _Refused(_unsupported_version(version))
        if not args.get("resource"):
            raise _Refused(_app_service_error(400, "The query parameter 'resource' is missing."))
        identity = _app_service_identity(args)
        seed = current().state.seed
        try:
            resource = resolve_resource(seed, args["resource"], identity.tenant_id)
        except AadError:  # App Service hides Entra's answer behind a 500
            raise _Refused(_app_service_error(500, APP_SERVICE_TOKEN_FAILED)) from None
    except _Refused as refused:
        return refused.response
    token, claims = _mint(seed, identity, resource)
    return json_response(
        {
            "access_token": token,
            "expires_on": str(claims["exp"]),  # epoch seconds since 2019-08-01
            "not_before": str(claims["nbf"]),
            "resource": args["resource"],
            "token_type": "Bearer",
            "client_id": identity.client_id,
        }
    )


def _app_service_identity(args: dict[str, str]) -> ManagedIdentity:
    """The identity an App Service request names; with none named, the system-assigned one."""
    identities = current().state.seed.managed_identities
    names = ("client_id", "principal_id", "object_id", "mi_res_id")
    named = {k: v for k, v in args.items() if k in names and v}
    if len(named) > 1:
        raise _Refused(
            _app_service_error(
                400, "Give one of client_id, principal_id (object_id) and mi_res_id."
            )
        )
    if named:
        ((kind, value),) = named.items()
        found = _named(identities, kind, value)
        if found is None:
            raise _Refused(_app_service_error(400, APP_SERVICE_NOT_FOUND))
        return found
    system = next((i for i in identities if i.kind == "system"), None)
    if system is None:  # App Service does not default to a user-assigned identity
        raise _Refused(_app_service_error(400, APP_SERVICE_NO_SYSTEM_ASSIGNED))
    return system


def _app_service_error(status: int, message: str) -> Response:
    correlation = trace_id()
    response = json_response(
        {"statusCode": status, "message": message, "correlationId": correlation}, status
    )
    response.headers["X-CORRELATION-ID"] = correlation
    return response


def _unsupported_version(version: str | None) -> Response:
    """ASP.NET API versioning's answer, which App Service's token service gives."""
    if version is None:
        error = {
            "code": "ApiVersionUnspecified",
            "message": "An API version is required, but was not specified.",
        }
    else:
        error = {
            "code": "UnsupportedApiVersion",
            "message": f"The HTTP resource that matches the request URI '{request.url}' does "
            f"not support the API version '{version}'.",
        }
    return json_response({"error": error}, 400)


# -- shared ----------------------------------------------------------------------------------------
def _args(malformed: Any) -> dict[str, str]:
    """The query, each parameter once (``malformed()`` is the answer when one repeats)."""
    if any(len(request.args.getlist(k)) > 1 for k in request.args):
        raise _Refused(malformed())
    return {k: request.args[k] for k in request.args}


def _named(
    identities: tuple[ManagedIdentity, ...], kind: str, value: str
) -> ManagedIdentity | None:
    """The host's identity with this client id, object id or (user-assigned) resource id."""
    value = value.strip().lower()
    for identity in identities:
        if kind == "client_id" and identity.client_id.lower() == value:
            return identity
        if kind in ("object_id", "principal_id") and identity.object_id.lower() == value:
            return identity
        if (
            kind in ("msi_res_id", "mi_res_id")
            and identity.kind == "user"
            and (identity.resource_id or "").lower() == value.rstrip("/")
        ):
            return identity
    return None


def _mint(seed: Seed, identity: ManagedIdentity, resource: Resource) -> tuple[str, dict[str, Any]]:
    """The access token, and its claims (its times make the answer's)."""
    token, _ = current().minter.access_token(
        client=identity,
        resource=resource,
        tenant_id=identity.tenant_id,
        user=None,
        scopes=[],
        roles=granted_roles(seed, identity, resource),
    )
    claims: dict[str, Any] = jwt.decode(token, options={"verify_signature": False})
    return token, claims
