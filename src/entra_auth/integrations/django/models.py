"""``EntraUser``: who a Django ``User`` is in Entra ID, keyed on ``(tenant_id, object_id)``.

Never on email or UPN: both are mutable and reassignable (an address given to the next
employee, a UPN renamed, an unverified ``email`` claim), so matching on them hands one
person's account to another. ``oid`` is the user's immutable id in the tenant that signed them
in (a guest has an ``oid`` of their own in the resource tenant), and ``tid`` that tenant.

A local ``User`` that existed before Entra sign-in is linked only by an administrator, on
purpose: a row created here (the Django admin's "Entra ID users", or ``EntraUser.objects.link``)
names the user's ``tid`` and ``oid``; nothing links by matching names.
"""

from __future__ import annotations

import uuid
from typing import Any, cast

from django.conf import settings
from django.db import models


class EntraUserManager(models.Manager):  # type: ignore[misc]
    def link(self, user: Any, *, tenant_id: str, object_id: str) -> EntraUser:
        """Link an existing local ``user`` to the Entra ID user ``(tenant_id, object_id)``
        (Entra admin center → Users → the user → Object ID; the tenant's ID on Overview): their
        next sign-in is that ``user``. The explicit, documented way to keep a local account.
        ``ValueError`` unless both are GUIDs (Entra's ids always are)."""
        for name, value in (("tenant_id", tenant_id), ("object_id", object_id)):
            try:
                uuid.UUID(value)
            except (ValueError, AttributeError, TypeError):
                raise ValueError(f"{name} must be a GUID, not {str(value)[:40]!r}.") from None
        link = self.create(user=user, tenant_id=tenant_id.lower(), object_id=object_id.lower())
        return cast("EntraUser", link)


class EntraUser(models.Model):  # type: ignore[misc]
    """The Entra ID identity of one Django user; the display fields as of the last sign-in."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="entra"
    )
    tenant_id = models.CharField("tenant id (tid)", max_length=36)
    object_id = models.CharField("object id (oid)", max_length=36)
    # For display only (never to find or authorize anyone): as the last ID token said.
    username = models.CharField("sign-in name", max_length=255, blank=True)
    display_name = models.CharField(max_length=255, blank=True)
    email = models.CharField(max_length=255, blank=True)
    home_tenant_issuer = models.CharField(
        max_length=255, blank=True, help_text="A guest's home identity provider (idp claim)."
    )
    roles = models.JSONField(default=list, blank=True, help_text="App roles at the last sign-in.")
    created_at = models.DateTimeField(auto_now_add=True)
    last_sign_in_at = models.DateTimeField(null=True, blank=True)

    objects = EntraUserManager()

    class Meta:
        app_label = "entra_auth"
        verbose_name = "Entra ID user"
        verbose_name_plural = "Entra ID users"
        constraints = [  # noqa: RUF012 - Django's Meta
            models.UniqueConstraint(
                fields=["tenant_id", "object_id"], name="entra_user_unique_tid_oid"
            )
        ]

    def save(self, *args: Any, **kwargs: Any) -> None:
        # GUIDs compare case-insensitively: one spelling, so the unique pair means one person.
        self.tenant_id, self.object_id = self.tenant_id.lower(), self.object_id.lower()
        super().save(*args, **kwargs)

    def __str__(self) -> str:
        return f"{self.username or self.object_id} ({self.tenant_id})"


__all__ = ["EntraUser"]
