"""The Django admin's page for ``EntraUser``: who each user is in Entra ID, and the one way
to link a local user that existed before Entra sign-in (add a row naming their tenant id and
object id: their next sign-in is that user). Loaded by the admin's autodiscovery when
``django.contrib.admin`` is installed."""

from __future__ import annotations

from typing import Any

from django.contrib import admin

from .models import EntraUser


@admin.register(EntraUser)
class EntraUserAdmin(admin.ModelAdmin):  # type: ignore[misc]
    list_display = ("username", "display_name", "tenant_id", "object_id", "last_sign_in_at")
    search_fields = ("username", "display_name", "email", "object_id")
    list_filter = ("tenant_id",)
    raw_id_fields = ("user",)
    readonly_fields = (
        "username",
        "display_name",
        "email",
        "home_tenant_issuer",
        "roles",
        "created_at",
        "last_sign_in_at",
    )

    # Pointing an Entra ID identity at a Django user is signing in as that user: superusers
    # only, whatever model permissions staff were given.
    def has_add_permission(self, request: Any) -> bool:
        return bool(getattr(request.user, "is_superuser", False))

    def has_change_permission(self, request: Any, obj: Any = None) -> bool:
        return bool(getattr(request.user, "is_superuser", False))
