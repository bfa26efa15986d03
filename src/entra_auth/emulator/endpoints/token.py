"""The token endpoint: authenticate the client, then hand the form to its grant.

The grants themselves (one function per ``grant_type``) are in ``emulator/grants.py``.

Who may redeem, as Entra decides it: a code (or refresh token) issued to a redirect URI of the
single-page application platform is redeemed from the browser, cross-origin (with an
``Origin`` header), and without a client secret (AADSTS700025 with one, AADSTS9002327 without
``Origin``); any other token request coming from a browser is refused (AADSTS9002326), so that a
Web app's secret and codes stay on its server. ``Origin: null`` is no origin.

A confidential client authenticates with a secret (in the form or HTTP Basic) or with a client
assertion (``private_key_jwt``: a certificate's, or a federated token), checked by
``emulator/client_assertions.py``; never both in one request.

Requests are counted per endpoint (``token``) and per grant (``token:authorization_code``,
``token:refresh_token``, ``token:client_credentials``, ``token:password``,
``token:on_behalf_of``), so that a test can tell how many refreshes a client made.
"""

from __future__ import annotations

import hmac

from flask import Blueprint, Response, request

from ..client_assertions import authenticate as authenticate_assertion
from ..context import current
from ..faults import fault_point
from ..grants import GRANTS, grant_name, issued_to_spa
from ..oauth_errors import AadError
from ..policy import usable_in
from ..seed import App, Tenant
from .common import json_response, single, tenant_or_error

blueprint = Blueprint("token", __name__)


def _grant_of_request() -> str | None:
    return grant_name(request.form.get("grant_type"))


@blueprint.post("/<tenant>/oauth2/v2.0/token")
@fault_point("token", detail=_grant_of_request)
def token(tenant: str) -> Response:
    form = single(request.form)
    found = tenant_or_error(tenant)
    spa = issued_to_spa(current(), form, _credentials(form)[0] or "")
    # The origin first, as Entra: a page redeeming a Web app's code without a secret (Swagger
    # UI, MSAL.js, with a redirect URI of the Web platform) hears AADSTS9002326, the platform
    # to fix, never AADSTS7000218's "send a client secret", which a page must not hold.
    _check_origin(spa=spa)
    client = _authenticate_client(form, found, tenant, spa=spa)
    grant_type = form.get("grant_type")
    if not grant_type:
        raise AadError(90014, field="grant_type")
    grant = GRANTS.get(grant_type)
    if grant is None:
        raise AadError(70003, grant_type=grant_type)
    return json_response(grant(current(), form, client, found))


def _credentials(form: dict[str, str]) -> tuple[str | None, str | None]:
    """The client id and secret of the request: in the form, or HTTP Basic (RFC 6749 §2.3.1)."""
    client_id, secret = form.get("client_id"), form.get("client_secret")
    if request.authorization and request.authorization.type == "basic":
        client_id = request.authorization.username or client_id
        secret = request.authorization.password or secret
    return client_id, secret


def _check_origin(*, spa: bool) -> None:
    """A SPA's grant only from the browser; nothing else from a browser."""
    origin = request.headers.get("Origin", "").strip()
    cross_origin = bool(origin) and origin.lower() != "null"
    if spa and not cross_origin:
        raise AadError(9002327)
    if not spa and cross_origin:
        raise AadError(9002326, origin=origin)


def _authenticate_client(
    form: dict[str, str], tenant: Tenant | None, ref: str, *, spa: bool = False
) -> App:
    """The client of the request: a public client (or a SPA's grant) by its id, a
    confidential one by a secret or a client assertion."""
    state = current().state
    client_id, secret = _credentials(form)
    if not client_id:
        raise AadError(90014, field="client_id")
    client = state.seed.app(client_id)
    if client is None or (tenant is not None and not usable_in(client, tenant)):
        raise AadError(700016, status=400, client_id=client_id, tenant=tenant.id if tenant else ref)
    if spa:  # a SPA is a public client: a credential here came from a browser's page
        if secret or form.get("client_assertion"):
            raise AadError(700025)
        return client
    if client.public_client:
        return client
    if form.get("client_assertion"):
        if secret:  # no documented code: the closest one, as docs/fidelity.md says
            raise AadError(
                9002313,
                detail="The request has both a client_secret and a client_assertion: send one "
                "credential.",
            )
        authenticate_assertion(current(), form, client, tenant, ref)
        return client
    if not secret:
        raise AadError(7000218)
    match = next(
        (s for s in client.secrets if hmac.compare_digest(s.value.encode(), secret.encode())),
        None,
    )
    if match is None:
        raise AadError(7000215, client_id=client.client_id)
    if match.expires.timestamp() < state.now():
        raise AadError(7000222, client_id=client.client_id)
    return client
