"""EntraConfig: from the environment, bad values named at start, secrets never shown."""

from __future__ import annotations

from pathlib import Path

import pytest

from entra_auth.config import DOTENV_RULE, EntraConfig, fingerprint, names_in_dotenv
from entra_auth.errors import ConfigurationError, MissingSettingError

from .helpers import API, CONTOSO

SECRET = "Dem8Q~local-web-app-secret.not-for-production"


# What a confidential client needs, any one of which satisfies it.
CREDENTIAL = (
    "ENTRA_CLIENT_SECRET (or ENTRA_CLIENT_CERTIFICATE, ENTRA_CLIENT_CERTIFICATE_BASE64, "
    "ENTRA_CLIENT_ASSERTION_FILE)"
)


def test_from_env_reads_every_variable(tmp_path: Path) -> None:
    ca = tmp_path / "ca.pem"
    ca.write_text("x")
    config = EntraConfig.from_env(
        {
            "ENTRA_AUTHORITY": f"https://localhost:8443/{CONTOSO}/",
            "ENTRA_CLIENT_ID": API,
            "ENTRA_CLIENT_SECRET": SECRET,
            "ENTRA_API_AUDIENCE": f"{API}, api://{API}",
            "ENTRA_CA_BUNDLE": str(ca),
            "ENTRA_ACCEPTED_TOKEN_VERSIONS": "1,2",
            "ENTRA_LEEWAY": "30",
            "ENTRA_ALLOW_GUESTS": "false",
            "ENTRA_SCOPES": "User.Read api://x/y",
        }
    )
    assert config.authority == f"https://localhost:8443/{CONTOSO}"
    assert config.tenant_id == CONTOSO  # learned from the authority
    assert config.audiences == (API, f"api://{API}")
    assert config.accepted_token_versions == ("1.0", "2.0")
    assert config.leeway == 30
    assert config.allow_guests is False
    assert config.scopes == ("User.Read", "api://x/y")


def test_defaults_public_cloud_and_audiences() -> None:
    config = EntraConfig.from_env({"ENTRA_TENANT_ID": CONTOSO, "ENTRA_CLIENT_ID": API})
    assert config.authority == f"https://login.microsoftonline.com/{CONTOSO}"
    assert config.audiences == (API, f"api://{API}")
    assert config.accepted_token_versions == ("2.0",)


@pytest.mark.parametrize(
    ("env", "variable"),
    [
        ({}, "ENTRA_TENANT_ID"),
        ({"ENTRA_AUTHORITY": "http://login.microsoftonline.com/x"}, "ENTRA_AUTHORITY"),
        ({"ENTRA_AUTHORITY": "https://login.microsoftonline.com"}, "ENTRA_AUTHORITY"),
        ({"ENTRA_AUTHORITY": "https://host/a/b"}, "ENTRA_AUTHORITY"),
        ({"ENTRA_TENANT_ID": "contoso"}, "ENTRA_TENANT_ID"),
        ({"ENTRA_TENANT_ID": CONTOSO, "ENTRA_CLIENT_ID": "my-app"}, "ENTRA_CLIENT_ID"),
        ({"ENTRA_TENANT_ID": CONTOSO, "ENTRA_LEEWAY": "soon"}, "ENTRA_LEEWAY"),
        ({"ENTRA_TENANT_ID": CONTOSO, "ENTRA_LEEWAY": "3600"}, "ENTRA_LEEWAY"),
        (
            {"ENTRA_TENANT_ID": CONTOSO, "ENTRA_ACCEPTED_TOKEN_VERSIONS": "3"},
            "ENTRA_ACCEPTED_TOKEN_VERSIONS",
        ),
        ({"ENTRA_TENANT_ID": CONTOSO, "ENTRA_CA_BUNDLE": "/nonexistent/ca.pem"}, "ENTRA_CA_BUNDLE"),
        (
            {"ENTRA_TENANT_ID": CONTOSO, "ENTRA_ALLOWED_TENANTS": "fabrikam"},
            "ENTRA_ALLOWED_TENANTS",
        ),
        ({"ENTRA_TENANT_ID": CONTOSO, "ENTRA_ALLOW_GUESTS": "maybe"}, "ENTRA_ALLOW_GUESTS"),
        (
            {
                "ENTRA_TENANT_ID": CONTOSO,
                "ENTRA_AUTHORITY": "https://h/f4d2b1a0-6e2c-4f8e-9a57-3c1d2e4b5a69",
            },
            "ENTRA_TENANT_ID",
        ),
    ],
)
def test_bad_configuration_names_the_variable(env: dict[str, str], variable: str) -> None:
    with pytest.raises(ConfigurationError) as caught:
        EntraConfig.from_env(env)
    assert variable in str(caught.value)
    assert caught.value.remedy


def test_required_values_fail_at_start() -> None:
    from entra_auth.tokens import AccessTokenValidator

    with pytest.raises(ConfigurationError, match="ENTRA_API_AUDIENCE"):
        AccessTokenValidator(EntraConfig(tenant_id=CONTOSO))


def test_secret_is_shown_only_as_fingerprint() -> None:
    config = EntraConfig(tenant_id=CONTOSO, client_id=API, client_secret=SECRET)
    shown = repr(config) + str(config)
    assert SECRET not in shown
    assert fingerprint(SECRET) in shown
    assert fingerprint(SECRET) != fingerprint(SECRET + "x")


# -- native values (a framework's config) as well as the environment's strings -------------------
def test_from_mapping_takes_native_values() -> None:
    config = EntraConfig.from_mapping(
        {
            "ENTRA_TENANT_ID": "8c3dad1d-b6bc-4f8b-939b-8263372eced6",
            "ENTRA_API_AUDIENCE": ["a1c3e5f7-2b4d-4e6f-8a0c-1d3e5f7a9b2c", "api://x"],
            "ENTRA_ACCEPTED_TOKEN_VERSIONS": [1, 2],
            "ENTRA_LEEWAY": 30,
            "ENTRA_ALLOW_GUESTS": False,
            "ENTRA_SCOPES": ("User.Read", "Mail.Read"),
        }
    )
    assert config.api_audiences == ("a1c3e5f7-2b4d-4e6f-8a0c-1d3e5f7a9b2c", "api://x")
    assert config.accepted_token_versions == ("1.0", "2.0")
    assert config.leeway == 30
    assert config.allow_guests is False
    assert config.scopes == ("User.Read", "Mail.Read")
    same = EntraConfig.from_env(
        {
            "ENTRA_TENANT_ID": "8c3dad1d-b6bc-4f8b-939b-8263372eced6",
            "ENTRA_API_AUDIENCE": "a1c3e5f7-2b4d-4e6f-8a0c-1d3e5f7a9b2c,api://x",
            "ENTRA_ACCEPTED_TOKEN_VERSIONS": "1,2",
            "ENTRA_LEEWAY": "30",
            "ENTRA_ALLOW_GUESTS": "false",
            "ENTRA_SCOPES": "User.Read Mail.Read",
        }
    )
    assert same == config


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("ENTRA_LEEWAY", 1.5),
        ("ENTRA_LEEWAY", True),
        ("ENTRA_LEEWAY", "soon"),
        ("ENTRA_ALLOW_GUESTS", "maybe"),
        ("ENTRA_ALLOW_GUESTS", 2),
        ("ENTRA_API_AUDIENCE", 42),
        ("ENTRA_CLIENT_ID", ["a", "b"]),
    ],
)
def test_from_mapping_names_a_value_of_the_wrong_type(key: str, value: object) -> None:
    settings = {"ENTRA_TENANT_ID": "8c3dad1d-b6bc-4f8b-939b-8263372eced6", key: value}
    with pytest.raises(ConfigurationError) as caught:
        EntraConfig.from_mapping(settings)
    assert caught.value.message.startswith(f"{key} is ")
    assert caught.value.remedy


# -- missing settings: all at once, where they were looked for, and the .env rule ----------------
REQUIRED = ("client_id", "client_secret")


@pytest.fixture
def no_entra_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """An environment without ENTRA_*, in an empty working directory (no ./.env)."""
    import os

    for name in [n for n in os.environ if n.startswith("ENTRA_")]:
        monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_every_missing_setting_is_named_at_once(no_entra_environment: Path) -> None:
    with pytest.raises(MissingSettingError) as caught:
        EntraConfig.from_env({}, require=REQUIRED)
    error = caught.value
    assert isinstance(error, ConfigurationError)  # still the family callers catch
    assert error.code == "missing_setting"
    assert error.missing == (
        "ENTRA_AUTHORITY (or ENTRA_TENANT_ID)",
        "ENTRA_CLIENT_ID",
        "ENTRA_CLIENT_SECRET",
    )
    assert error.message == (
        "ENTRA_AUTHORITY (or ENTRA_TENANT_ID), ENTRA_CLIENT_ID and ENTRA_CLIENT_SECRET are not "
        "set: looked in the environment."
    )
    for what in (
        "Directory (tenant) ID",
        "Application (client) ID",
        "the Value, not the Secret ID",
    ):
        assert what in error.remedy
    assert DOTENV_RULE in error.remedy
    assert "nothing loaded it" not in error.remedy  # there is no ./.env here
    # With the authority set, the remaining two are still named together.
    with pytest.raises(MissingSettingError) as rest:
        EntraConfig.from_env({"ENTRA_TENANT_ID": CONTOSO}, require=REQUIRED)
    assert rest.value.missing == ("ENTRA_CLIENT_ID", "ENTRA_CLIENT_SECRET")
    assert EntraConfig.from_env(
        {"ENTRA_TENANT_ID": CONTOSO, "ENTRA_CLIENT_ID": API, "ENTRA_CLIENT_SECRET": SECRET},
        require=REQUIRED,
    ).sources == ("the environment",)


def test_a_dotenv_nothing_loaded_is_named(no_entra_environment: Path) -> None:
    (no_entra_environment / ".env").write_text(
        "# the tutorial's settings\n"
        f"export ENTRA_TENANT_ID={CONTOSO}\n"
        f"ENTRA_CLIENT_ID = '{API}'\n"
        f'ENTRA_CLIENT_SECRET="{SECRET}"  # from the portal\n'
        "ENTRA_REDIRECT_URI=\n"
    )
    with pytest.raises(MissingSettingError) as caught:
        EntraConfig.from_env({}, require=(*REQUIRED, "redirect_uri"))
    remedy = caught.value.remedy
    assert remedy.startswith(
        "./.env sets ENTRA_TENANT_ID, ENTRA_CLIENT_ID and ENTRA_CLIENT_SECRET but nothing loaded "
        "it: run with `flask run` or call `load_dotenv()`"
    )
    assert "ENTRA_REDIRECT_URI" in caught.value.message  # empty in the file: not set there either
    assert "ENTRA_REDIRECT_URI but" not in remedy
    assert SECRET not in str(caught.value)  # names only, never a value
    assert API not in str(caught.value)


def test_without_python_dotenv_the_fix_says_to_install_it(
    no_entra_environment: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`flask run` skips .env silently when python-dotenv is missing."""
    import importlib.util

    find_spec = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "dotenv" else find_spec(name)
    )
    (no_entra_environment / ".env").write_text(f"ENTRA_TENANT_ID={CONTOSO}\n")
    with pytest.raises(MissingSettingError) as caught:
        EntraConfig.from_env({})
    assert caught.value.remedy.startswith(
        "./.env sets ENTRA_TENANT_ID but nothing loaded it: install python-dotenv, then run with "
        "`flask run` or call `load_dotenv()`"
    )


def test_a_config_built_in_code_says_so(no_entra_environment: Path) -> None:
    (no_entra_environment / ".env").write_text(f"ENTRA_CLIENT_SECRET={SECRET}\n")
    config = EntraConfig(tenant_id=CONTOSO)
    with pytest.raises(MissingSettingError) as caught:
        config.require("api_audiences", "client_secret")
    error = caught.value
    assert error.missing == ("ENTRA_API_AUDIENCE (or ENTRA_CLIENT_ID)", "ENTRA_CLIENT_SECRET")
    assert error.message.endswith("looked in the EntraConfig built in code.")
    assert ".env" not in str(error)  # no environment was read, so a .env file is beside the point


def test_the_flask_adapter_says_where_it_looked(no_entra_environment: Path) -> None:
    from flask import Flask

    from entra_auth.integrations.flask import ApiProtector, EntraAuth, config_from_app

    (no_entra_environment / ".env").write_text(f"ENTRA_CLIENT_SECRET={SECRET}\n")
    app = Flask(__name__)
    app.config.update(SECRET_KEY="k" * 32, ENTRA_TENANT_ID=CONTOSO)
    with pytest.raises(MissingSettingError) as caught:
        config_from_app(app, require=REQUIRED)
    assert caught.value.message == (
        "ENTRA_CLIENT_ID and ENTRA_CLIENT_SECRET are not set: looked in app.config and the "
        "environment."
    )
    assert "./.env sets ENTRA_CLIENT_SECRET but nothing loaded it" in caught.value.remedy
    assert DOTENV_RULE in caught.value.remedy
    # The adapters themselves: sign-in needs the client id and secret, an API its audience.
    with pytest.raises(MissingSettingError) as signin:
        EntraAuth(app)
    assert set(signin.value.missing) == {"ENTRA_CLIENT_ID", CREDENTIAL}
    assert signin.value.sources == ("app.config", "the environment")
    with pytest.raises(MissingSettingError) as api:
        ApiProtector(app)
    assert api.value.missing == ("ENTRA_API_AUDIENCE (or ENTRA_CLIENT_ID)",)
    assert "looked in app.config and the environment" in api.value.message
    with pytest.raises(MissingSettingError) as nothing:
        ApiProtector(Flask(__name__))
    assert nothing.value.missing == ("ENTRA_AUTHORITY (or ENTRA_TENANT_ID)",)
    assert "looked in app.config and the environment" in nothing.value.message


@pytest.mark.parametrize(
    ("line", "sets"),
    [
        ("ENTRA_CLIENT_ID=x", True),
        ("export ENTRA_CLIENT_ID=x", True),
        ("  ENTRA_CLIENT_ID = x  ", True),
        ("ENTRA_CLIENT_ID='x'", True),
        ('ENTRA_CLIENT_ID="x # not a comment"', True),
        ("ENTRA_CLIENT_ID=", False),
        ("ENTRA_CLIENT_ID=''", False),
        ('ENTRA_CLIENT_ID=""', False),
        ("ENTRA_CLIENT_ID= # only a comment", False),
        ("# ENTRA_CLIENT_ID=x", False),
        ("ENTRA_CLIENT_IDx=x", False),
    ],
)
def test_names_in_dotenv(tmp_path: Path, line: str, sets: bool) -> None:
    path = tmp_path / "settings.env"
    path.write_text(f"{line}\nOTHER=1\n")
    assert ("ENTRA_CLIENT_ID" in names_in_dotenv(path)) is sets
    assert "OTHER" in names_in_dotenv(path)
    assert names_in_dotenv(tmp_path / "absent.env") == frozenset()
