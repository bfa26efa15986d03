"""The demo as a Django app: after ``migrate``, the group that the app role ``Admin`` maps to
(``ENTRA_ROLE_GROUPS``) may view the users and their Entra ID identities in the admin."""

from __future__ import annotations

from typing import Any

from django.apps import AppConfig
from django.db.models.signals import post_migrate

ADMINS = "Demo admins"
VIEWABLE = (("auth", "user"), ("auth", "group"), ("entra_auth", "entrauser"))


def grant_admins(**kwargs: Any) -> None:
    from django.contrib.auth.models import Group, Permission

    group, _ = Group.objects.get_or_create(name=ADMINS)
    for app_label, model in VIEWABLE:
        found = Permission.objects.filter(
            content_type__app_label=app_label, codename=f"view_{model}"
        )
        group.permissions.add(*found)


class DjangoDemoConfig(AppConfig):
    name = "examples.django_demo"
    label = "django_demo"
    verbose_name = "entra-auth Django demo"

    def ready(self) -> None:
        post_migrate.connect(grant_admins, dispatch_uid="django_demo.grant_admins")
