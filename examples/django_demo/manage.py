#!/usr/bin/env python
"""The Django demo's ``manage.py`` (``python examples/django_demo/manage.py check``, ``migrate``,
``createsuperuser`` ...). ``make demo-django`` (``run.py``) starts the local Entra ID, migrates
and serves; this is for everything else, with the ``ENTRA_*`` settings in the environment."""

from __future__ import annotations

import os
import sys
from pathlib import Path


def main() -> None:
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the repository: `examples`
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "examples.django_demo.settings")
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)


if __name__ == "__main__":
    main()
