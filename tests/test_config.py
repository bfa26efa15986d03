"""EntraConfig: from the environment, bad values named at start, secrets never shown."""

from __future__ import annotations

from pathlib import Path

import pytest

from entra_auth.config import EntraConfig, fingerprint
from entra_auth.errors import ConfigurationError

from .helpers import API, CONTOSO

SECRET = "Dem8Q~local-web-app-secret.not-for-production"


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
