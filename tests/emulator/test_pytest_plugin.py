"""The `entra_emulator` fixture, as a user of entra-auth gets it from the pytest11 entry point,
and what it gives an app to point at it (``env_for``, ``config_for``)."""

from __future__ import annotations

from pathlib import Path

import pytest

from entra_auth import AccessTokenValidator, EntraConfig, JwksCache
from entra_auth.emulator import EntraEmulator
from entra_auth.emulator.seed import seed_from_dict
from entra_auth.errors import EmulatorError

from ..helpers import (
    ADELE,
    API,
    API_URI,
    CONTOSO,
    DAEMON,
    LEGACY,
    LEGACY_URI,
    REDIRECT,
    WEB,
    secret_of,
)

pytest_plugins = ["pytester"]


@pytest.fixture(autouse=True)
def _a_users_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """The user's project has no Django settings of ours (pytest-django, when installed, put
    this suite's into the environment the pytester subprocesses inherit)."""
    monkeypatch.delenv("DJANGO_SETTINGS_MODULE", raising=False)


def test_users_get_the_fixture_without_configuration(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import requests

        def test_graph_me(entra_emulator):
            token = entra_emulator.issue_token(
                client_id="4b7d2f1c-3a5e-4c8b-9d61-2e0f7a9b3c15",
                resource="https://graph.microsoft.com",
                user="megan@contoso.example",
                scopes=["User.Read"],
            )
            me = entra_emulator.http_session().get(
                entra_emulator.graph_base + "/v1.0/me",
                headers={"Authorization": "Bearer " + token},
            )
            assert me.json()["displayName"] == "Megan Bowen"

        def test_state_is_reset_between_tests(entra_emulator):
            assert entra_emulator.request_counts()["graph"] == 0
        """
    )
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=2)


def test_seed_from_ini_option(pytester: pytest.Pytester) -> None:
    pytester.makefile(
        ".toml",
        seed="""
        [[tenants]]
        id = "11111111-1111-1111-1111-111111111111"
        domain = "mine.example"
        """,
    )
    pytester.makeini("[pytest]\nentra_emulator_seed = seed.toml\n")
    pytester.makepyfile(
        """
        def test_my_tenant(entra_emulator):
            assert entra_emulator.tenant_id == "11111111-1111-1111-1111-111111111111"
        """
    )
    pytester.runpytest_subprocess("-p", "no:cacheprovider").assert_outcomes(passed=1)


# -- what an app needs to point at the emulator -----------------------------------------------
WEB_SECRET = "Dem8Q~local-web-app-secret.not-for-production"  # the seed's, public


def test_env_for_the_seeds_web_app_by_default(entra_emulator: EntraEmulator) -> None:
    env = entra_emulator.env_for()
    assert env == {
        "ENTRA_AUTHORITY": entra_emulator.authority,
        "ENTRA_CLIENT_ID": WEB,
        "ENTRA_CA_BUNDLE": Path(entra_emulator.ca_path).resolve().as_posix(),
        "ENTRA_CLIENT_SECRET": WEB_SECRET,  # the first one not expired
        "ENTRA_REDIRECT_URI": "http://localhost:5000/get_token",
        "ENTRA_API_AUDIENCE": f"{API},{API_URI}",  # the first API of its tenant
    }
    assert Path(env["ENTRA_CA_BUNDLE"]).is_absolute()
    # The same app by display name; its API named by App ID URI, client id or display name.
    assert entra_emulator.env_for("entra-auth demo web app", api=API_URI) == env
    assert entra_emulator.env_for(WEB, api="entra-auth demo API") == env


def test_env_for_an_api_and_a_v1_api(entra_emulator: EntraEmulator) -> None:
    api = entra_emulator.env_for(API_URI)
    assert api["ENTRA_CLIENT_ID"] == API
    assert api["ENTRA_API_AUDIENCE"] == f"{API},{API_URI}"  # its own
    # a middle tier too: its secret for the on-behalf-of flow,
    assert api["ENTRA_CLIENT_SECRET"] == secret_of(entra_emulator, API)
    assert "ENTRA_REDIRECT_URI" not in api  # and it signs no one in
    legacy = entra_emulator.env_for(WEB, api=LEGACY)
    assert legacy["ENTRA_API_AUDIENCE"] == f"{LEGACY},{LEGACY_URI}"
    assert legacy["ENTRA_ACCEPTED_TOKEN_VERSIONS"] == "1"  # its tokens are v1
    daemon = entra_emulator.env_for(DAEMON)
    assert daemon["ENTRA_CLIENT_SECRET"] == secret_of(entra_emulator, DAEMON)
    assert "ENTRA_REDIRECT_URI" not in daemon


def test_env_for_a_redirect_uri_only_when_registered(entra_emulator: EntraEmulator) -> None:
    uri = "http://localhost:5001/get_token"
    with pytest.raises(EmulatorError, match="not a redirect URI") as refused:
        entra_emulator.env_for(WEB, redirect_uri=uri)
    assert "add_redirect_uri" in refused.value.remedy
    entra_emulator.add_redirect_uri(WEB, uri)
    assert entra_emulator.env_for(WEB, redirect_uri=uri)["ENTRA_REDIRECT_URI"] == uri
    assert entra_emulator.env_for(WEB)["ENTRA_REDIRECT_URI"] == REDIRECT  # still the first


def test_config_for_validates_the_emulators_tokens(entra_emulator: EntraEmulator) -> None:
    config = entra_emulator.config_for(WEB, api=API_URI)
    assert isinstance(config, EntraConfig)
    assert config.client_secret == WEB_SECRET
    assert config.redirect_uri == REDIRECT
    assert config.audiences == (API, API_URI)
    token = entra_emulator.issue_token(
        client_id=WEB, resource=API_URI, user=ADELE, scopes=["access_as_user"]
    )
    principal = AccessTokenValidator(config, JwksCache(config)).validate(
        token, scopes=["access_as_user"]
    )
    assert principal.name == "Adele Vance"
    legacy = entra_emulator.config_for(WEB, api=LEGACY_URI)
    v1_token = entra_emulator.issue_token(
        client_id=WEB, resource=LEGACY_URI, user=ADELE, scopes=["Legacy.Read"]
    )
    assert AccessTokenValidator(legacy, JwksCache(legacy)).validate(v1_token).oid


def test_env_for_names_the_apps_when_it_has_none_to_give(tmp_path: Path) -> None:
    seed = seed_from_dict(
        {
            "tenants": [{"id": CONTOSO, "domain": "contoso.example"}],
            "apps": [
                {
                    "client_id": "22222222-2222-2222-2222-222222222222",
                    "tenant": "contoso.example",
                    "display_name": "daemon",
                    "secrets": [
                        {"value": "expired", "expires": "2020-01-01T00:00:00Z"},
                        {"value": "current", "expires": "2099-01-01T00:00:00Z"},
                    ],
                }
            ],
        }
    )
    with EntraEmulator(seed, state_dir=tmp_path, port=0, browser_port=0) as emulator:
        with pytest.raises(EmulatorError, match="no web app"):
            emulator.env_for()  # no app has a redirect URI and a secret
        with pytest.raises(EmulatorError, match="no app 'web'") as unknown:
            emulator.env_for("web")
        assert "'daemon' (22222222-2222-2222-2222-222222222222)" in unknown.value.remedy
        env = emulator.env_for("daemon")
        assert env["ENTRA_CLIENT_SECRET"] == "current"  # expired secrets are skipped
        assert "ENTRA_API_AUDIENCE" not in env  # the seed has no API


def test_env_for_needs_a_running_emulator(tmp_path: Path) -> None:
    with pytest.raises(EmulatorError, match="not running"):
        EntraEmulator(state_dir=tmp_path).env_for()
