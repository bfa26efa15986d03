"""The token endpoint: authenticate the client, then hand the form to its grant.

The grants themselves (one function per ``grant_type``) are in ``emulator/grants.py``.
"""

from __future__ import annotations

import hmac

from flask import Blueprint, Response, request

from ..context import current
from ..faults import fault_point
from ..grants import GRANTS
from ..oauth_errors import AadError
from ..policy import usable_in
from ..seed import App, Tenant
from .common import json_response, single, tenant_or_error

blueprint = Blueprint("token", __name__)


@blueprint.post("/<tenant>/oauth2/v2.0/token")
@fault_point("token")
def token(tenant: str) -> Response:
    form = single(request.form)
    found = tenant_or_error(tenant)
    client = _authenticate_client(form, found, tenant)
    grant_type = form.get("grant_type")
    if not grant_type:
        raise AadError(90014, field="grant_type")
    grant = GRANTS.get(grant_type)
    if grant is None:
        raise AadError(70003, grant_type=grant_type)
    return json_response(grant(current(), form, client, found))


def _authenticate_client(form: dict[str, str], tenant: Tenant | None, ref: str) -> App:
    """The client of the request: a public client by its id, a confidential one by a secret."""
    state = current().state
    client_id, secret = form.get("client_id"), form.get("client_secret")
    if request.authorization and request.authorization.type == "basic":
        client_id = request.authorization.username or client_id
        secret = request.authorization.password or secret
    if not client_id:
        raise AadError(90014, field="client_id")
    client = state.seed.app(client_id)
    if client is None or (tenant is not None and not usable_in(client, tenant)):
        raise AadError(700016, status=400, client_id=client_id, tenant=tenant.id if tenant else ref)
    if client.public_client:
        return client
    if form.get("client_assertion"):
        raise AadError(9002313, detail="The local Entra ID accepts client secrets, not assertions.")
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
