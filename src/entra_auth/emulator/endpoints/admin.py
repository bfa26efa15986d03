"""The emulator's control API over HTTP, for tests that run it in another process.

Bound to loopback callers and guarded by the admin key the emulator prints at start
(header ``X-Emulator-Key``). The same operations exist in Python on ``EntraEmulator``.
"""

from __future__ import annotations

import hmac
import ipaddress
from typing import Any

from flask import Blueprint, Response, abort, jsonify, request

from ...errors import EmulatorError
from ..app_credentials import TOKEN_EXCHANGE_AUDIENCE, FederatedCredential, certificate_or_error
from ..context import current
from ..faults import FAULT_KINDS, Fault
from ..grants import GRANT_COUNTERS

ADMIN_HEADER = "X-Emulator-Key"

blueprint = Blueprint("admin", __name__, url_prefix="/_emulator")


@blueprint.before_request
def guard() -> None:
    remote = request.remote_addr or ""
    try:
        loopback = ipaddress.ip_address(remote.split("%")[0]).is_loopback
    except ValueError:
        loopback = False
    expected: str = current().state.admin_key
    given = request.headers.get(ADMIN_HEADER, "")
    if not loopback or not hmac.compare_digest(given.encode(), expected.encode()):
        abort(403, description="The control API needs the admin key, from loopback.")


@blueprint.errorhandler(EmulatorError)
def emulator_error(exc: EmulatorError) -> Response:
    response = jsonify({"error": exc.code, "error_description": str(exc)})
    response.status_code = 404 if exc.code == "unknown_app" else 400
    return response


def _body() -> dict[str, Any]:
    data = request.get_json(silent=True)
    return data if isinstance(data, dict) else {}


@blueprint.get("/counts")
def counts() -> Response:
    return jsonify(current().state.faults.counts(also=GRANT_COUNTERS))


@blueprint.post("/counts/reset")
def reset_counts() -> Response:
    current().state.faults.reset_counts()
    return jsonify({})


@blueprint.post("/keys/rotate")
def rotate() -> Response:
    key = current().state.rotate_keys(keep_old=bool(_body().get("keep_old", True)))
    return jsonify({"kid": key.kid})


@blueprint.post("/users/<ref>/revoke")
def revoke(ref: str) -> Response:
    current().state.revoke_refresh_tokens(ref)
    return jsonify({})


@blueprint.post("/users/<ref>/revoke-sessions")
def revoke_sessions(ref: str) -> Response:
    """Graph's revokeSignInSessions for the user (``EntraEmulator.revoke_sessions``): the
    moment of the revocation, epoch seconds, in ``revoked_at``."""
    return jsonify({"revoked_at": current().state.revoke_sessions(ref)})


@blueprint.post("/clock")
def clock() -> Response:
    state = current().state
    shift = _body().get("shift", 0)
    if not isinstance(shift, (int, float)):
        abort(400, description="'shift' must be a number of seconds.")
    state.shift_clock(float(shift))
    return jsonify({"offset": state.clock_offset})


@blueprint.post("/faults/<endpoint>")
def fault(endpoint: str) -> Response:
    data = _body()
    # Faults model failures. A body of the caller's choosing at discovery or JWKS would let
    # whoever holds the admin key publish their own signing keys to every client of the
    # emulator, so "garbage" over HTTP is always the fixed page that is not JSON. In-process
    # tests (EntraEmulator.inject_fault) already hold the keys and may still set a body.
    if "body" in data:
        abort(
            400,
            description="The control API takes no fault body: a garbage fault serves a fixed "
            "page that is not JSON. Set a custom body from Python (EntraEmulator.inject_fault) "
            "in the test's own process.",
        )
    try:
        spec = Fault(
            kind=data.get("kind", "status"),
            status=int(data.get("status", 503)),
            delay=float(data.get("delay", 0.0)),
            retry_after=data.get("retry_after"),
            times=data.get("times"),
        )
    except (TypeError, ValueError):
        abort(400, description="A fault has kind, status, delay, retry_after, times.")
    if spec.kind not in FAULT_KINDS:
        abort(400, description=f"kind is one of {', '.join(FAULT_KINDS)}.")
    current().state.faults.inject(endpoint, spec)
    return jsonify({})


@blueprint.post("/apps/<client_id>/redirect-uris")
def add_redirect_uri(client_id: str) -> Response:
    """Register one more redirect URI for the app, checked as Entra checks it; until reset."""
    uri = _body().get("uri")
    if not isinstance(uri, str):
        abort(400, description='Send JSON {"uri": "http://localhost:5001/get_token"}.')
    uris = current().state.add_redirect_uri(client_id, uri)  # EmulatorError: a 400 that says why
    return jsonify({"client_id": client_id, "redirect_uris": list(uris)})


@blueprint.post("/apps/<client_id>/certificates")
def add_certificate(client_id: str) -> Response:
    """Register a certificate (its PEM, without the private key) for the app; until reset."""
    data = _body()
    if not isinstance(data.get("pem"), str):
        abort(400, description='Send JSON {"pem": "-----BEGIN CERTIFICATE-----..."}.')
    cert = certificate_or_error(
        data["pem"], key_id=data.get("id"), display_name=data.get("display_name")
    )  # EmulatorError: a 400 that says why
    current().state.add_certificate(client_id, cert)
    return jsonify(
        {
            "client_id": client_id,
            "key_id": cert.key_id,
            "display_name": cert.display_name,
            "thumbprint": cert.thumbprint,
            "thumbprint_sha256": cert.thumbprint_sha256,
            "start": cert.start.isoformat(),
            "end": cert.end.isoformat(),
        }
    )


@blueprint.post("/apps/<client_id>/federated-credentials")
def add_federated_credential(client_id: str) -> Response:
    """Register a federated identity credential for the app, checked as Entra; until reset."""
    data = _body()
    fields = ("name", "issuer", "subject")
    audiences = data.get("audiences", [TOKEN_EXCHANGE_AUDIENCE])
    if not all(isinstance(data.get(f), str) for f in fields) or not (
        isinstance(audiences, list) and all(isinstance(a, str) for a in audiences)
    ):
        abort(
            400,
            description='Send JSON {"name": …, "issuer": …, "subject": …, "audiences": […]}.',
        )
    credential = FederatedCredential(
        name=data["name"],
        issuer=data["issuer"],
        subject=data["subject"],
        audiences=tuple(audiences),
        description=str(data.get("description", "")),
    )
    current().state.add_federated_credential(client_id, credential)  # EmulatorError: a 400
    return jsonify({"client_id": client_id, "name": credential.name})


@blueprint.delete("/faults")
def clear() -> Response:
    current().state.faults.clear()
    return jsonify({})


@blueprint.post("/reset")
def reset() -> Response:
    current().state.reset()
    return jsonify({})
