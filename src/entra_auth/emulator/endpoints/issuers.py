"""The emulator's stand-in token issuers, for federated identity credentials.

``https://<emulator>/_issuers/<name>`` is an OpenID Connect issuer as a Kubernetes cluster's
service-account issuer or GitHub Actions' is: ``/.well-known/openid-configuration`` names it and
its key set (``/keys``), whose one RS256 key signs the tokens ``EntraEmulator.federated_token``
mints. Any name is an issuer; all share the key kept in the state directory. HTTPS only, like
the rest of the back channel.
"""

from __future__ import annotations

from flask import Blueprint, Response, abort

from ..app_credentials import ISSUER_NAME
from ..client_assertions import issuer_url
from ..context import current
from .common import json_response

blueprint = Blueprint("issuers", __name__, url_prefix="/_issuers")


def _issuer(name: str) -> str:
    if not ISSUER_NAME.fullmatch(name):
        abort(404, description="A stand-in issuer's name is letters, digits, '-' and '_'.")
    return issuer_url(current().urls.https_base, name)


@blueprint.get("/<name>/.well-known/openid-configuration")
def openid_configuration(name: str) -> Response:
    issuer = _issuer(name)
    return json_response(
        {
            "issuer": issuer,
            "jwks_uri": f"{issuer}/keys",
            "response_types_supported": ["id_token"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["RS256"],
        }
    )


@blueprint.get("/<name>/keys")
def keys(name: str) -> Response:
    issuer = _issuer(name)
    key = current().state.issuer_key
    assert key is not None  # EmulatorState makes one
    jwk = key.jwk(issuer)
    del jwk["issuer"]  # Entra's key sets carry one; an OIDC issuer's do not
    return json_response({"keys": [jwk]})
