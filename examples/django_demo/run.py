"""``make demo-django``: the local Entra ID and the Django demo at http://localhost:5000, until
Ctrl-C.

As ``make demo`` (``examples/demo/run.py``, whose helpers this reuses): with ``ENTRA_AUTHORITY``
set the demo runs against that tenant and no emulator starts; ``DEMO_PORT`` (5000),
``DEMO_EMULATOR_PORT`` (8443) and ``DEMO_EMULATOR_BROWSER_PORT`` (8444), ``0`` for a free one;
a port that is taken is one line naming it. The settings reach Django through the environment
(``settings.py`` reads ``ENTRA_*`` there); the database is migrated before the first request
and the project's system checks run (a setting that would fail stops the start, in one line).
"""

from __future__ import annotations

import io
import os
from pathlib import Path

from entra_auth.logs import redact_logger
from examples.demo.run import CannotStart
from examples.demo.run import main as demo_main
from examples.demo.run import run as demo_run

COMMAND = "make demo-django"
SETTINGS = "examples.django_demo.settings"


def prepare_django(config: dict[str, str]) -> object:
    """Django set up with ``config`` in the environment, the database migrated, the checks
    passed; its WSGI app, serving the static files (the admin's, the demo's) too."""
    os.environ.update(config)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", SETTINGS)
    state = Path(os.environ.get("DEMO_STATE_DIR") or ".entra-emulator")
    database = Path(os.environ.get("DJANGO_DB_PATH") or state / "django-demo.sqlite3")
    database.parent.mkdir(parents=True, exist_ok=True)

    import django
    from django.contrib.staticfiles.handlers import StaticFilesHandler
    from django.core.management import call_command
    from django.core.management.base import SystemCheckError
    from django.core.wsgi import get_wsgi_application

    django.setup()
    try:
        call_command("check", fail_level="ERROR", stdout=io.StringIO())
    except SystemCheckError as problem:
        lines = [line.strip() for line in str(problem).splitlines() if line.strip()]
        raise CannotStart(" ".join(lines[1:]) or str(problem)) from None
    call_command("migrate", interactive=False, verbosity=0)
    return StaticFilesHandler(get_wsgi_application())


def main() -> None:
    demo_main(run, command=COMMAND)  # one line on stderr for a problem, as `make demo` does


def run() -> None:
    redact_logger("werkzeug")  # its request lines carry the callback's ?code=…&state=…
    demo_run(
        prepare_django,
        name="entra-auth Django demo",
        users="adele@contoso.example (app role Admin: the Django admin at {here}/admin/), "
        "megan@contoso.example, bob@fabrikam.example (a guest)",
    )


if __name__ == "__main__":
    main()
