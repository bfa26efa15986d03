"""The README's "Test your own app offline", followed to the letter by a newcomer.

The app module and the test module are the README's fenced blocks marked with
``<!-- readme-project: NAME -->`` just before them. They are copied verbatim into a project of
their own and run with ``python -m pytest`` in a child process, as a user of an installed
entra-auth runs them (the ``entra_emulator`` fixture comes from the pytest11 entry point).

``ENTRA_AUTH_README`` names another README to check, e.g. a draft before it is merged.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
README = Path(os.environ.get("ENTRA_AUTH_README") or ROOT / "README.md")
PROJECT_FILES = (
    "myapp.py",
    "test_myapp.py",
    "myapi.py",
    "test_myapi.py",
    "mywebapp.py",
    "test_mywebapp.py",
    "mydaemon.py",
    "test_mydaemon.py",
)
# A marker, then the fenced block right after it: its body is the file.
_MARKED_BLOCK = re.compile(
    r"^<!-- readme-project: (?P<name>[\w.-]+) -->\n```[\w-]*\n(?P<body>.*?)^```$",
    re.DOTALL | re.MULTILINE,
)
# Far beyond the few seconds the project's tests take; reached only by a hang, and then the
# child is killed (subprocess.run kills it when the timeout expires).
RUN_LIMIT = 90.0


def project_files(readme: str) -> dict[str, str]:
    return {m["name"]: m["body"] for m in _MARKED_BLOCK.finditer(readme)}


def test_the_readme_project_passes(tmp_path: Path) -> None:
    files = project_files(README.read_text(encoding="utf-8"))
    missing = [name for name in PROJECT_FILES if name not in files]
    assert not missing, (
        f"{README} has no fenced block marked <!-- readme-project: NAME --> for {missing}"
    )
    for name, body in files.items():
        (tmp_path / name).write_text(body, encoding="utf-8")
    # Every test module the README shows (the Flask app's and the FastAPI API's) runs.
    expected = sum(
        len(re.findall(r"^def test_", body, re.MULTILINE))
        for name, body in files.items()
        if name.startswith("test_")
    )
    assert expected >= 3  # the API's 200 and 403, and a page behind sign-in
    # The user's shell, without the settings of this run: no ENTRA_*, FLASK_* or REDIS_URL that
    # the README's code does not set, and no PYTEST_* or DJANGO_SETTINGS_MODULE of the pytest
    # running this test.
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("ENTRA_", "FLASK_", "REDIS_", "PYTEST_", "DJANGO_"))
    }
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--rootdir", "."],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=RUN_LIMIT,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    summary = result.stdout.strip().splitlines()[-1]
    assert re.match(rf"{expected} passed\b", summary), output
    assert not re.search(r"\b(failed|error|skipped)", summary), output
