"""The `entra_emulator` fixture, as a user of entra-auth gets it from the pytest11 entry point."""

from __future__ import annotations

import pytest

pytest_plugins = ["pytester"]


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
