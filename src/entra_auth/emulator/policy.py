"""The directory's rules for a sign-in or a token: where an app may be used, who is assigned to
it, and which of the scopes asked for a user (or an admin) has consented to.

Shared by the authorize endpoint (which shows the consent page) and the grants (which refuse a
token without consent), so both apply the same rules.
"""

from __future__ import annotations

from .oauth_errors import AadError
from .scopes import ScopeRequest
from .seed import GRAPH_APP_ID, App, Seed, Tenant, User
from .state import EmulatorState


def usable_in(client: App, tenant: Tenant) -> bool:
    """Whether ``client`` may sign users in (or get tokens) in ``tenant``."""
    return client.tenant_id == tenant.id or client.multi_tenant


def assigned(user: User, client: App) -> bool:
    """Whether ``user`` holds one of ``client``'s app roles (for assignment-required apps)."""
    # Compared as the seed and the token minter compare them (case and a trailing slash aside):
    # a role that reaches the token must also count as an assignment.
    names = {client.client_id.lower(), *(u.lower().rstrip("/") for u in client.identifier_uris)}
    return any(a.app.lower().rstrip("/") in names for a in user.app_roles)


def admin_granted(seed: Seed, client: App) -> set[str]:
    """The consent records an admin granted ``client`` for every user (``app_id|scope``).

    A scope is named as a request names it: ``User.Read`` (Graph), or ``<App ID URI or client
    id>/<scope>``; an API of the directory is recorded by its client id, as consent is."""
    keys: set[str] = set()
    for item in client.admin_consented_scopes:
        if "/" in item:
            identifier, _, value = item.rpartition("/")
        else:
            identifier, value = "https://graph.microsoft.com", item
        if "graph.microsoft.com" in identifier:
            app_id = GRAPH_APP_ID
        else:
            api = seed.app_by_identifier(identifier)
            app_id = api.client_id if api is not None else identifier
        keys.add(f"{app_id}|{value}")
    return keys


def needs_admin(key: str, scopes: ScopeRequest) -> bool:
    """Whether the consent record ``key`` is for a scope only an admin may consent to."""
    app_id, _, value = key.partition("|")
    entry = scopes.resources.get(app_id)
    if entry is None:
        return False
    scope = entry[0].scope(value)
    return bool(scope and scope.admin_consent_required)


def missing_consent(
    state: EmulatorState, client: App, user: User, scopes: ScopeRequest
) -> list[str]:
    """The consent records of ``scopes`` that neither the user nor an admin has granted."""
    granted = state.consented(user.tenant_id, user.oid, client.client_id)
    granted |= admin_granted(state.seed, client)
    return [k for k in scopes.consent_keys if k not in granted]


def require_consent(state: EmulatorState, client: App, user: User, scopes: ScopeRequest) -> None:
    """AADSTS65001 unless every scope but the OpenID Connect ones has consent."""
    missing = [k for k in missing_consent(state, client, user, scopes) if not k.startswith("oidc|")]
    if missing:
        raise AadError(
            65001,
            suberror="consent_required",
            client_id=client.client_id,
            app_name=client.display_name,
        )
