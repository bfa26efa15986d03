"""The lean core: a bare install validates tokens with Flask, Flask-Session, redis, click and rich
absent; every part that needs an extra says which one; the pytest plugin loads nothing heavy.

The bare install is real: a fresh venv, ``pip install`` of a copy of this tree (from the package
index, as a user gets it), and scripts run by that venv's Python.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
EXTRAS = ("flask", "flask_session", "redis", "click", "rich", "dotenv", "werkzeug", "tomli")


def run(python: Path | str, script: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(python), "-c", textwrap.dedent(script)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd="/",  # never the source tree: the installed package only
    )


@pytest.fixture(scope="module")
def bare_python(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh venv with ``pip install entra-auth`` and no extras."""
    work = tmp_path_factory.mktemp("bare-install")
    source = work / "entra-auth"
    shutil.copytree(ROOT / "src", source / "src", ignore=shutil.ignore_patterns("*.egg-info"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    venv = work / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300)
    python = venv / "bin" / "python"
    subprocess.run(
        [
            str(python),
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            str(source),
        ],
        check=True,
        timeout=900,
    )
    return python


def test_the_bare_install_validates_tokens_without_any_framework(bare_python: Path) -> None:
    result = run(
        bare_python,
        f"""
        import importlib.util, json, sys, time
        absent = [m for m in {EXTRAS!r} if importlib.util.find_spec(m) is not None]
        assert absent == [], absent

        import jwt
        from cryptography.hazmat.primitives.asymmetric import rsa
        from entra_auth import AccessTokenValidator, EntraConfig, StaticKeys

        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        tenant = "8c3dad1d-b6bc-4f8b-939b-8263372eced6"
        api = "a1c3e5f7-2b4d-4e6f-8a0c-1d3e5f7a9b2c"
        now = int(time.time())
        token = jwt.encode(
            {{"aud": api, "iss": f"https://login.microsoftonline.com/{{tenant}}/v2.0",
              "tid": tenant, "oid": "o", "sub": "s", "azp": "c", "scp": "access_as_user",
              "ver": "2.0", "iat": now, "nbf": now, "exp": now + 600}},
            key, algorithm="RS256", headers={{"kid": "k1"}},
        )
        config = EntraConfig(
            authority=f"https://login.microsoftonline.com/{{tenant}}", client_id=api
        )
        validator = AccessTokenValidator(config, StaticKeys({{"k1": key.public_key()}}))
        principal = validator.validate(token, scopes=["access_as_user"])
        print(json.dumps({{"oid": principal.oid, "heavy": sorted(
            m for m in ("flask", "redis", "click", "rich") if m in sys.modules)}}))
        """,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == '{"oid": "o", "heavy": []}'


@pytest.mark.parametrize(
    ("module", "extra"),
    [
        ("entra_auth.integrations.flask", "entra-auth[flask]"),
        ("entra_auth.emulator", "entra-auth[emulator]"),
        ("entra_auth.client.redis_cache", "entra-auth[redis]"),
        ("entra_auth.cli", "entra-auth[cli]"),
    ],
)
def test_a_part_without_its_extra_names_the_extra(
    bare_python: Path, module: str, extra: str
) -> None:
    result = run(bare_python, f"import {module}")
    assert result.returncode != 0
    last_line = result.stderr.strip().splitlines()[-1]
    assert f"pip install '{extra}'" in last_line


def test_the_command_without_the_cli_extra_says_what_to_install(bare_python: Path) -> None:
    command = bare_python.parent / "entra-auth"
    result = subprocess.run(
        [str(command), "--help"], capture_output=True, text=True, timeout=120, cwd="/"
    )
    assert result.returncode != 0
    assert "pip install 'entra-auth[cli]'" in result.stderr
    assert "Traceback" not in result.stderr


def test_the_pytest_plugin_loads_nothing_heavy() -> None:
    # What every project with entra-auth installed pays at pytest's start.
    result = run(
        sys.executable,
        """
        import sys
        import entra_auth.testing.pytest_plugin
        heavy = ("flask", "werkzeug", "msal", "cryptography", "requests", "entra_auth.emulator")
        print(sorted(m for m in sys.modules if m.split(".")[0] in heavy or m in heavy))
        """,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


def test_the_fastapi_sign_in_needs_no_flask() -> None:
    """The FastAPI adapter, its sign-in with Redis included, imports nothing of the Flask
    integration's (Flask, Flask-Session, cachelib are not in the fastapi extra): run with
    those imports refused."""
    script = """
import sys
for name in ("flask", "flask_session", "cachelib", "werkzeug"):
    sys.modules[name] = None  # `import flask` now raises ImportError
from cryptography.fernet import Fernet
from fastapi import FastAPI
from entra_auth.config import EntraConfig
from entra_auth.integrations.fastapi import EntraAuth
config = EntraConfig.from_mapping({
    "ENTRA_AUTHORITY": "https://login.microsoftonline.com/72f988bf-86f1-41af-91ab-2d7cd011db47",
    "ENTRA_CLIENT_ID": "4b7d2f1c-3a5e-4c8b-9d61-2e0f7a9b3c15",
    "ENTRA_CLIENT_SECRET": "not-a-real-secret",
    "ENTRA_TOKEN_CACHE_KEY": Fernet.generate_key().decode(),
})
EntraAuth(config, secret_key="k" * 32, redis_url="redis://127.0.0.1:9").init_app(FastAPI())
assert not [m for m in sys.modules if m.startswith("entra_auth.integrations.flask")]
print("ok")
"""
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"
