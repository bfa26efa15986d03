"""The Django app (``INSTALLED_APPS``: ``"entra_auth.integrations.django"``, label
``entra_auth``): the ``EntraUser`` model and its migration, the system checks, and the settings
read again when a test changes them."""

from __future__ import annotations

from django.apps import AppConfig


class EntraAuthConfig(AppConfig):  # type: ignore[misc]
    name = "entra_auth.integrations.django"
    label = "entra_auth"
    verbose_name = "Microsoft Entra ID"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from django.core import checks
        from django.test.signals import setting_changed

        from ...logs import redact_logger
        from . import checks as entra_checks
        from .conf import reset

        setting_changed.connect(reset, dispatch_uid="entra_auth.conf.reset")
        checks.register(entra_checks.check_settings, "entra_auth")
        # runserver logs each request line, the callback's ?code=…&state=… included.
        redact_logger("django.server")
