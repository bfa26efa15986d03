"""A daemon: no user, no browser. It calls the demo API's app-only endpoint and Microsoft
Graph's ``/users`` as itself, with whichever credential its settings give (a client secret, a
certificate, a federated token file, or a managed identity: ``entra_auth.credentials``).

    python -m examples.daemon.daemon          # configured by the environment (ENTRA_*)
    make demo-daemon                          # against the local Entra ID, every credential

Settings: ``ENTRA_AUTHORITY`` and ``ENTRA_CLIENT_ID`` (the daemon's registration) and one
credential, ``DEMO_API_URL`` (the demo API, default http://localhost:8000) and
``DEMO_API_SCOPE`` (default ``api://a1c3e5f7-2b4d-4e6f-8a0c-1d3e5f7a9b2c/.default``, the demo
API's App ID URI). The token is never printed; what the API and Graph answered is.
"""

from __future__ import annotations

import json
import os
import ssl
import sys
from collections.abc import Mapping
from typing import Any

import httpx
import requests

from entra_auth.client.app_tokens import AppTokenProvider
from entra_auth.config import EntraConfig
from entra_auth.errors import EntraAuthError

DEMO_API = "api://a1c3e5f7-2b4d-4e6f-8a0c-1d3e5f7a9b2c/.default"
GRAPH = "https://graph.microsoft.com/.default"


def run(settings: Mapping[str, str] | None = None) -> dict[str, Any]:
    """Call the API and Graph once; what each answered."""
    env = dict(os.environ if settings is None else settings)
    config = EntraConfig.from_mapping(env)
    tokens = AppTokenProvider(config)
    api_url = env.get("DEMO_API_URL", "http://localhost:8000").rstrip("/")
    # The local Entra ID's CA when the settings name one (ENTRA_CA_BUNDLE), else the system's.
    trusted = ssl.create_default_context(cafile=config.ca_bundle)
    auth = tokens.httpx_auth(env.get("DEMO_API_SCOPE") or DEMO_API)
    with httpx.Client(auth=auth, verify=trusted, timeout=10, trust_env=False) as api:
        answer = api.get(f"{api_url}/all-data")
    graph = requests.Session()
    graph.verify, graph.trust_env = config.ca_bundle or True, False
    graph.auth = tokens.requests_auth(GRAPH)
    graph_url = (config.graph_url or "https://graph.microsoft.com").rstrip("/")
    users = graph.get(f"{graph_url}/v1.0/users?$select=displayName", timeout=10)
    return {
        "credential": tokens.credential.describe(),
        "api": {"status": answer.status_code, "body": _json(answer.text)},
        "graph": {
            "status": users.status_code,
            "users": [u.get("displayName") for u in _json(users.text).get("value", [])],
        },
    }


def _json(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return {"not JSON": text[:500]}


def main() -> None:
    try:
        print(json.dumps(run(), indent=2))
    except EntraAuthError as exc:
        print(f"error: {exc}", file=sys.stderr)
        raise SystemExit(1) from None


if __name__ == "__main__":
    main()
