"""OpenID Connect discovery (v2.0 and v1) and the JSON Web Key Set, per tenant.

The documents advertise each endpoint on its listener: the back channel on HTTPS, the pages a
browser sees (authorize, logout) on the plain-http browser port.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from flask import Blueprint, Response

from ..context import current
from ..faults import fault_point
from .common import json_response, tenant_or_error

blueprint = Blueprint("discovery", __name__)

_CLAIMS_SUPPORTED = [
    "sub",
    "iss",
    "cloud_instance_name",
    "cloud_instance_host_name",
    "cloud_graph_host_name",
    "msgraph_host",
    "aud",
    "exp",
    "iat",
    "auth_time",
    "acr",
    "nonce",
    "preferred_username",
    "name",
    "tid",
    "ver",
    "at_hash",
    "c_hash",
    "email",
]


@blueprint.get("/<tenant>/v2.0/.well-known/openid-configuration")
@fault_point("discovery")
def openid_configuration(tenant: str) -> Response:
    urls = current().urls
    found = tenant_or_error(tenant)
    tid = found.id if found else "{tenantid}"
    path = found.id if found else tenant.lower()
    return json_response(
        {
            "token_endpoint": f"{urls.https_base}/{path}/oauth2/v2.0/token",
            "token_endpoint_auth_methods_supported": [
                "client_secret_post",
                "private_key_jwt",
                "client_secret_basic",
            ],
            "jwks_uri": f"{urls.https_base}/{path}/discovery/v2.0/keys",
            "response_modes_supported": ["query", "fragment", "form_post"],
            "subject_types_supported": ["pairwise"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "response_types_supported": ["code", "id_token", "code id_token", "id_token token"],
            "scopes_supported": ["openid", "profile", "email", "offline_access"],
            "issuer": urls.v2_issuer(tid),
            "request_uri_parameter_supported": False,
            "userinfo_endpoint": f"{urls.graph_base}/oidc/userinfo",
            "authorization_endpoint": f"{urls.browser_base}/{path}/oauth2/v2.0/authorize",
            "device_authorization_endpoint": None,
            "http_logout_supported": True,
            "frontchannel_logout_supported": True,
            "end_session_endpoint": f"{urls.browser_base}/{path}/oauth2/v2.0/logout",
            "claims_supported": _CLAIMS_SUPPORTED,
            "kerberos_endpoint": None,
            "tenant_region_scope": "EU",
            "cloud_instance_name": "local-entra.test",
            "cloud_graph_host_name": "graph.windows.net",
            "msgraph_host": urlsplit(urls.graph_base).netloc + "/graph",
            "rbac_url": "https://pas.windows.net",
        }
    )


@blueprint.get("/<tenant>/.well-known/openid-configuration")
@fault_point("discovery")
def openid_configuration_v1(tenant: str) -> Response:
    ctx = current()
    found = tenant_or_error(tenant)
    tid = found.id if found else "{tenantid}"
    path = found.id if found else tenant.lower()
    return json_response(
        {
            "issuer": ctx.minter.v1_issuer(tid),
            "jwks_uri": f"{ctx.urls.https_base}/{path}/discovery/keys",
            "token_endpoint": f"{ctx.urls.https_base}/{path}/oauth2/token",
            "authorization_endpoint": f"{ctx.urls.browser_base}/{path}/oauth2/authorize",
            "id_token_signing_alg_values_supported": ["RS256"],
            "subject_types_supported": ["pairwise"],
            "response_modes_supported": ["query", "fragment", "form_post"],
        }
    )


@blueprint.get("/<tenant>/discovery/v2.0/keys")
@blueprint.get("/<tenant>/discovery/keys", endpoint="jwks_v1")
@fault_point("jwks")
def jwks(tenant: str) -> Response:
    ctx = current()
    found = tenant_or_error(tenant)
    issuer = ctx.urls.v2_issuer(found.id if found else "{tenantid}")
    with ctx.state.lock:
        keys = list(ctx.state.keys)
    return json_response({"keys": [key.jwk(issuer) for key in keys]})
