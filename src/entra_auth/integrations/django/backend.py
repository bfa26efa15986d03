"""``EntraBackend``: the Django authentication backend the sign-in callback uses.

``authenticate(request, signed_in=...)`` takes only a ``SignedIn`` the core verified
(``entra_auth.client.callback.redeem``: the code redeemed through MSAL, the ID token's
signature, issuer, audience, nonce and lifetime checked); it never sees a password, so the
username/password form (``ModelBackend``, the admin's login) cannot reach it. It finds the user
by ``(tid, oid)`` alone, creates them on first sign-in (username ``<oid>@<tid>``, no usable
password), refreshes the display fields, and maps app roles (and groups) to Django groups and
the staff/superuser flags at each sign-in: a role removed in Entra ID is removed here at the
user's next sign-in. The permission checks are ``ModelBackend``'s (groups' permissions).
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

import msal
from django.contrib.auth import get_user_model
from django.contrib.auth.backends import ModelBackend
from django.db import IntegrityError, transaction
from django.utils import timezone

from ...client.graph import GraphClient
from ...client.signin import SignedIn
from ...errors import EntraAuthError
from ...logs import inert

if TYPE_CHECKING:
    from .conf import DjangoSettings, EntraAuth

log = logging.getLogger("entra_auth.django")
BACKEND = "entra_auth.integrations.django.backend.EntraBackend"
# What Graph answers the groups of a user with (transitive: nested groups count, as in the
# groups claim), ids only.
OVERAGE_PATH = "/v1.0/me/transitiveMemberOf/microsoft.graph.group?$select=id"
MAX_OVERAGE_GROUPS = 5000


class EntraBackend(ModelBackend):  # type: ignore[misc]
    """Users by ``(tid, oid)``; the rest (permissions, ``get_user``) as ``ModelBackend``."""

    def authenticate(
        self,
        request: Any,
        signed_in: SignedIn | None = None,
        token_cache: msal.SerializableTokenCache | None = None,
        **kwargs: Any,
    ) -> Any:
        """The ``User`` of a verified sign-in, created or updated; None when this backend is
        not the one asked (no ``signed_in``) or the user may not sign in (inactive, or a
        local account holds their username: linking it is an administrator's act)."""
        if not isinstance(signed_in, SignedIn):
            return None
        from .conf import get_auth

        auth = get_auth()
        groups = _group_ids(auth, signed_in, token_cache)
        user = user_for(signed_in, auth.options, group_ids=groups)
        if user is None or not self.user_can_authenticate(user):
            return None
        return user

    def get_user(self, user_id: Any) -> Any:
        model = get_user_model()
        try:
            user = model._default_manager.select_related("entra").get(pk=user_id)
        except model.DoesNotExist:
            return None
        return user if self.user_can_authenticate(user) else None


def user_for(
    signed_in: SignedIn, options: DjangoSettings, *, group_ids: Iterable[str] | None = None
) -> Any:
    """The Django user of ``(tid, oid)``, made on first sign-in; display fields, roles and
    groups brought up to date. None when a local user already holds the username it would get.
    """
    from .models import EntraUser

    principal = signed_in.user
    tid, oid = principal.tid.lower(), principal.oid.lower()
    claims = dict(principal.claims)
    for attempt in (1, 2):  # a second time after losing a race to create the same user
        with transaction.atomic():
            link = (
                EntraUser.objects.select_for_update()
                .select_related("user")
                .filter(tenant_id=tid, object_id=oid)
                .first()
            )
            if link is None:
                user = _new_user(f"{oid}@{tid}", claims)
                if user is None:
                    if attempt == 1 and _exists(tid, oid):
                        continue  # another request created this user just now
                    # A local account took this user's name (sign-up, by hand): it is not
                    # theirs, whatever it is called. They get a user of their own.
                    log.warning(
                        "A local user already has the username %s, unlinked: the Entra ID user "
                        "gets a new one (never that account).",
                        inert(f"{oid}@{tid}", 80),
                    )
                    user = _new_user(f"{oid}@{tid}-{secrets.token_hex(4)}", claims)
                    if user is None:
                        return None
                link = EntraUser(user=user, tenant_id=tid, object_id=oid)
            user = link.user
            _update_user(user, claims)
            link.username = _text(claims.get("preferred_username"), 255)
            link.display_name = _text(claims.get("name"), 255)
            link.email = _text(claims.get("email"), 255)
            link.home_tenant_issuer = _text(claims.get("idp"), 255)
            link.roles = sorted(principal.roles)
            link.last_sign_in_at = timezone.now()
            link.save()
            granting = tid in options.admin_tenants  # another tenant's roles grant nothing
            sync_authorization(
                user,
                principal.roles if granting else (),
                (group_ids or ()) if granting else (),
                options,
            )
            user.entra = link
            return user
    return None  # pragma: no cover - the loop returns


def _exists(tid: str, oid: str) -> bool:
    from .models import EntraUser

    return bool(EntraUser.objects.filter(tenant_id=tid, object_id=oid).exists())


def _new_user(username: str, claims: dict[str, Any]) -> Any:
    """A new user with no usable password (they sign in through Entra ID only), or None when
    the username is taken."""
    model = get_user_model()
    user = model(**{model.USERNAME_FIELD: username})
    user.set_unusable_password()
    _fill_display(user, claims)
    try:
        with transaction.atomic():  # a savepoint: the outer transaction goes on
            user.save()
    except IntegrityError:
        return None
    return user


def _update_user(user: Any, claims: dict[str, Any]) -> None:
    before = {f: getattr(user, f, None) for f in ("first_name", "last_name", "email")}
    _fill_display(user, claims)
    if any(getattr(user, f, None) != v for f, v in before.items()):
        user.save()


def _fill_display(user: Any, claims: dict[str, Any]) -> None:
    """First/last name and email, for display (the admin, templates): what the ID token says
    now. Never used to find anyone."""
    given, family = claims.get("given_name"), claims.get("family_name")
    # Never the field users are found by (a custom user model may log in by email): what a
    # token says would then name the account.
    fields = {f.name for f in user._meta.get_fields()} - {type(user).USERNAME_FIELD}
    if "first_name" in fields:
        if isinstance(given, str) or isinstance(family, str):
            user.first_name, user.last_name = _text(given, 150), _text(family, 150)
        else:
            user.first_name = _text(claims.get("name"), 150)
            if "last_name" in fields:
                user.last_name = ""
    if "email" in fields:
        user.email = _text(claims.get("email"), 254)


def _text(value: Any, limit: int) -> str:
    return value[:limit] if isinstance(value, str) else ""


def sync_authorization(
    user: Any, roles: Iterable[str], group_ids: Iterable[str], options: DjangoSettings
) -> None:
    """The user's Django groups and flags as their roles (and groups) say now: the groups of
    ``ENTRA_ROLE_GROUPS``/``ENTRA_GROUP_GROUPS`` added or removed (others, given in Django,
    untouched), ``is_staff``/``is_superuser`` set when ``ENTRA_STAFF_ROLES``/
    ``ENTRA_SUPERUSER_ROLES`` is."""
    from django.contrib.auth.models import Group

    held = set(roles)
    ids = {g.lower() for g in group_ids}
    managed = {n for names in options.role_groups.values() for n in names}
    managed |= {n for names in options.group_groups.values() for n in names}
    wanted = {n for role in held for n in options.role_groups.get(role, ())}
    wanted |= {n for gid in ids for n in options.group_groups.get(gid, ())}
    if managed and hasattr(user, "groups"):
        current = set(user.groups.filter(name__in=managed).values_list("name", flat=True))
        for name in sorted(wanted - current):
            group, _ = Group.objects.get_or_create(name=name)
            user.groups.add(group)
        gone = current - wanted
        if gone:
            user.groups.remove(*Group.objects.filter(name__in=gone))
    changed = False
    staff, superuser = options.staff_roles, options.superuser_roles
    if staff is not None and hasattr(user, "is_staff"):
        # A superuser is staff: the admin lets in only staff.
        value = bool(held & set(staff + (superuser or ())))
        changed |= user.is_staff != value
        user.is_staff = value
    elif superuser is not None and hasattr(user, "is_staff") and held & set(superuser):
        changed |= not user.is_staff  # staff is the app's to set; a superuser is staff
        user.is_staff = True
    if superuser is not None and hasattr(user, "is_superuser"):
        value = bool(held & set(superuser))
        changed |= user.is_superuser != value
        user.is_superuser = value
    if changed:
        user.save()


def _overflowed(claims: Mapping[str, Any]) -> bool:
    """The token had too many groups to list (over 200 in a JWT): Entra ID leaves them out and
    says so with ``_claim_names`` (or ``hasgroups``, in implicit-flow tokens)."""
    names = claims.get("_claim_names")
    return (isinstance(names, dict) and "groups" in names) or claims.get("hasgroups") is True


def _group_ids(
    auth: EntraAuth, signed_in: SignedIn, cache: msal.SerializableTokenCache | None
) -> set[str]:
    """The user's group object ids: the ID token's ``groups`` claim, or Graph's list when it
    overflowed. Empty when groups are not mapped (``ENTRA_GROUP_GROUPS``) or Graph could not
    tell (the group-mapped Django groups are then removed: fail closed, logged)."""
    if not auth.options.group_groups:
        return set()
    claims = signed_in.user.claims
    if not _overflowed(claims):
        listed = claims.get("groups")
        return {g for g in listed if isinstance(g, str)} if isinstance(listed, list) else set()
    if cache is None:
        return set()
    try:
        return overage_groups(auth, signed_in, cache)
    except EntraAuthError as exc:
        log.warning(
            "The user's groups overflowed the token and Microsoft Graph could not list them "
            "(%s): their group-mapped Django groups are removed until a sign-in can. %s",
            inert(exc.code, 64),
            inert(exc.remedy, 300),
        )
        return set()


class _RedeemedTokens:
    """The tokens of the sign-in being completed (its cache, before any session holds it), as
    ``GraphClient`` asks for them."""

    def __init__(self, auth: EntraAuth, signed_in: SignedIn, cache: msal.SerializableTokenCache):
        self.auth, self.signed_in, self.cache = auth, signed_in, cache

    def get_token(self, scopes: Iterable[str], *, claims: str | None = None) -> str:
        return self.auth.sign_in.acquire_token(
            self.cache,
            self.signed_in.account_id,
            tuple(scopes),
            user=self.signed_in.user,
            claims=claims,
        )


def overage_groups(
    auth: EntraAuth, signed_in: SignedIn, cache: msal.SerializableTokenCache
) -> set[str]:
    """The user's groups from Graph (``transitiveMemberOf``), as the signed-in user
    (``ENTRA_GROUP_OVERAGE_SCOPES``, default ``User.Read``)."""
    timeout = auth.config.http_timeout
    client = GraphClient(
        _RedeemedTokens(auth, signed_in, cache),
        base_url=auth.graph_url,
        session=auth.graph_http,
        timeout=timeout,
        max_retries=1,
        max_wait=timeout,
        scopes=auth.options.overage_scopes,
    )
    found = client.paged(OVERAGE_PATH, limit=MAX_OVERAGE_GROUPS)
    return {item["id"].lower() for item in found if isinstance(item.get("id"), str)}


__all__ = ["BACKEND", "EntraBackend", "sync_authorization", "user_for"]
