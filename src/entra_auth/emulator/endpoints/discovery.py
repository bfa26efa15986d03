"""OpenID Connect discovery (v2.0 and v1) and the JSON Web Key Set, per tenant.

The documents advertise each endpoint on its listener: the back channel on HTTPS, the pages a
browser sees (authorize, logout) on the plain-http browser port. The tenant of the path may be
named by its GUID or its verified domain: the document names the GUID throughout, as Entra's.

They advertise only what the emulator implements: Entra's own lists, less what it does not do
(implicit and hybrid response types, the claims its ID tokens never carry).

``?appid=<client id>`` (Entra's way to reach an app-specific signing key): the discovery
document's ``jwks_uri`` carries it on, and the key set at that address lists that app's own
keys before the tenant's. The plain key set never lists an app's own key.
"""

from __future__ import annotations

from urllib.parse import quote, urlsplit

from flask import Blueprint, Response, request

from ..context import current
from ..faults import fault_point
from .common import json_response, tenant_or_error

blueprint = Blueprint("discovery", __name__)

# Entra's claims_supported, less what the emulator's ID tokens never carry (auth_time, acr,
# at_hash, c_hash, and the cloud_* and msgraph_host claims of Entra's instance metadata).
_CLAIMS_SUPPORTED = [
    "sub",
    "iss",
    "aud",
    "exp",
    "iat",
    "nonce",
    "preferred_username",
    "name",
    "tid",
    "ver",
    "email",
]
# Entra's list, in its order: secrets in the form or a Basic Authorization header, and client
# assertions (a certificate's or a federated token, emulator/client_assertions.py).
_AUTH_METHODS = ["client_secret_post", "private_key_jwt", "client_secret_basic"]
# The authorization code flow only: implicit and hybrid response types are refused (700051).
_RESPONSE_TYPES = ["code"]
_RESPONSE_MODES = ["query", "fragment", "form_post"]


def _appid_query() -> str:
    """``?appid=…`` as the request gave it, for the ``jwks_uri``; empty without one."""
    appid = request.args.get("appid")
    return f"?appid={quote(appid, safe='')}" if appid else ""


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
            "token_endpoint_auth_methods_supported": _AUTH_METHODS,
            "jwks_uri": f"{urls.https_base}/{path}/discovery/v2.0/keys{_appid_query()}",
            "response_modes_supported": _RESPONSE_MODES,
            "subject_types_supported": ["pairwise"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "response_types_supported": _RESPONSE_TYPES,
            "scopes_supported": ["openid", "profile", "email", "offline_access"],
            "issuer": urls.v2_issuer(tid),
            "request_uri_parameter_supported": False,
            "userinfo_endpoint": f"{urls.graph_base}/oidc/userinfo",
            "authorization_endpoint": f"{urls.browser_base}/{path}/oauth2/v2.0/authorize",
            "http_logout_supported": True,
            "frontchannel_logout_supported": True,
            "end_session_endpoint": f"{urls.browser_base}/{path}/oauth2/v2.0/logout",
            "claims_supported": _CLAIMS_SUPPORTED,
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
            "jwks_uri": f"{ctx.urls.https_base}/{path}/discovery/keys{_appid_query()}",
            "token_endpoint": f"{ctx.urls.https_base}/{path}/oauth2/token",
            "authorization_endpoint": f"{ctx.urls.browser_base}/{path}/oauth2/authorize",
            "id_token_signing_alg_values_supported": ["RS256"],
            "subject_types_supported": ["pairwise"],
            "response_modes_supported": _RESPONSE_MODES,
        }
    )


@blueprint.get("/<tenant>/discovery/v2.0/keys")
@blueprint.get("/<tenant>/discovery/keys", endpoint="jwks_v1")
@fault_point("jwks")
def jwks(tenant: str) -> Response:
    ctx = current()
    found = tenant_or_error(tenant)
    issuer = ctx.urls.v2_issuer(found.id if found else "{tenantid}")
    keys = ctx.state.published_keys(request.args.get("appid"))
    return json_response({"keys": [key.jwk(issuer) for key in keys]})
