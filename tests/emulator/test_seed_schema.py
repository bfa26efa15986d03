"""The seed file's schema: a typo fails at start, naming the path of the bad value.

An unknown key, a value of the wrong type and a missing key are caught by the msgspec schema;
a reference to something the seed does not have is caught after it.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from entra_auth.emulator import EntraEmulator, load_seed
from entra_auth.emulator.policy import assigned
from entra_auth.emulator.seed import seed_from_dict
from entra_auth.errors import EmulatorError

TENANT = """
[[tenants]]
id = "11111111-1111-1111-1111-111111111111"
domain = "t.example"
"""


def app(number: int, extra: str = "") -> str:
    return f"""
[[apps]]
client_id = "2222222{number}-2222-2222-2222-222222222222"
tenant = "t.example"
display_name = "app {number}"
{extra}
"""


USER = """
[[users]]
oid = "33333333-3333-3333-3333-333333333333"
tenant = "t.example"
upn = "u@t.example"
name = "U"
"""


def refusal(tmp_path: Path, text: str) -> EmulatorError:
    path = tmp_path / "seed.toml"
    path.write_text(text)
    with pytest.raises(EmulatorError) as caught:
        load_seed(path)
    assert str(path) in caught.value.message  # which file
    assert caught.value.remedy  # and what to do
    return caught.value


def test_wrong_type_names_its_path(tmp_path: Path) -> None:
    # The string "false" used to be read as true; now it is refused.
    text = TENANT + app(0) + app(1) + app(2, 'multi_tenant = "false"')
    error = refusal(tmp_path, text)
    assert "apps[2].multi_tenant: expected bool, got str" in error.message
    with pytest.raises(EmulatorError, match=re.escape("apps[2].multi_tenant")):
        EntraEmulator(tmp_path / "seed.toml", state_dir=tmp_path / "state")  # fails at start


def test_unknown_key_names_its_path(tmp_path: Path) -> None:
    error = refusal(tmp_path, TENANT + app(0) + app(1, "multi_tenent = true"))
    assert "apps[1].multi_tenent: unknown key (did you mean 'multi_tenant'?)" in error.message
    assert "multi_tenant" in error.remedy  # the keys allowed there
    nested = refusal(tmp_path, TENANT + app(0, "[[apps.scopes]]\nvalue = 'a'\ndescriptoin = 'b'"))
    assert "apps[0].scopes[0].descriptoin: unknown key" in nested.message


def test_missing_required_key_names_its_path(tmp_path: Path) -> None:
    error = refusal(tmp_path, TENANT + app(0) + USER)  # the user has no password
    assert "users[0].password: missing" in error.message
    no_name = refusal(tmp_path, TENANT + app(0).replace('display_name = "app 0"', ""))
    assert "apps[0].display_name: missing" in no_name.message


def test_wrong_values_inside_lists_name_their_index(tmp_path: Path) -> None:
    error = refusal(tmp_path, TENANT + app(0, 'redirect_uris = ["http://a", 5]'))
    assert "apps[0].redirect_uris[1]: expected str, got int" in error.message
    expired = refusal(tmp_path, TENANT + app(0, "[[apps.secrets]]\nvalue = 's'\nexpires = 'soon'"))
    assert "apps[0].secrets[0].expires: must be a date and time" in expired.message
    assert "(got 'soon')" in expired.message


def test_json_seed_is_checked_the_same(tmp_path: Path) -> None:
    path = tmp_path / "seed.json"
    path.write_text('{"tenants": [{"id": "11111111-1111-1111-1111-111111111111", "domain": 1}]}')
    with pytest.raises(EmulatorError, match=re.escape("tenants[0].domain: expected str, got int")):
        load_seed(path)
    with pytest.raises(EmulatorError, match="the file: expected object, got array"):
        seed_from_dict([])


def test_user_app_role_names_an_app_and_a_role_of_the_seed(tmp_path: Path) -> None:
    api = app(0, 'identifier_uris = ["api://the-api"]') + (
        "[[apps.app_roles]]\nvalue = 'Data.Read'\n"
        "[[apps.app_roles]]\nvalue = 'Daemon.Only'\nallowed_member_types = ['Application']\n"
    )
    user = USER + "password = 'p'\n"
    no_app = refusal(
        tmp_path,
        TENANT + api + user + "[[users.app_roles]]\napp = 'api://nope'\nrole = 'Data.Read'\n",
    )
    assert "users[0].app_roles[0].app: names no app of the seed ('api://nope')" in no_app.message
    app_only = refusal(
        tmp_path,
        TENANT + api + user + "[[users.app_roles]]\napp = 'api://the-api'\nrole = 'Daemon.Only'\n",
    )
    assert "users[0].app_roles[0].role: 'app 0' has no app role 'Daemon.Only'" in app_only.message
    assert "Data.Read" in app_only.remedy
    path = tmp_path / "good.toml"
    path.write_text(
        TENANT + api + user + "[[users.app_roles]]\napp = 'API://the-api/'\nrole = 'data.read'\n"
    )
    (holder,) = load_seed(path).users
    assert [(r.app, r.role) for r in holder.app_roles] == [("API://the-api/", "data.read")]


@pytest.mark.parametrize(
    "url",
    [
        "https://app.example/logout/front-channel",
        "https://app.example:8443/signout?from=entra",  # a query is kept when sid is added
        "http://localhost:5000/logout/front-channel",
        "http://127.0.0.1:5000/logout",
        "http://127.8.9.10/logout",  # all of 127.0.0.0/8 is the local machine
        "HTTPS://App.Example/Logout",
    ],
)
def test_front_channel_logout_url_is_accepted(tmp_path: Path, url: str) -> None:
    path = tmp_path / "seed.toml"
    path.write_text(TENANT + app(0, f"front_channel_logout_url = {url!r}"))
    (only,) = load_seed(path).apps
    assert only.front_channel_logout_url == url


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("http://app.example/logout", "must use https (plain http only for localhost"),
        ("http://localhost.evil.example/logout", "must use https"),
        ("/logout/front-channel", "must be an absolute https:// URL"),
        ("localhost:5000/logout", "must be an absolute https:// URL"),
        ("ftp://app.example/logout", "must be an absolute https:// URL"),
        ("javascript:alert(1)", "must be an absolute https:// URL"),
        ("https://app.example/logout#top", "must not have a fragment"),
        ("https://app.example/logout#", "must not have a fragment"),
        ("https://app.example/log out", "without spaces, quotes"),
        ('https://app.example/"><script>', "without spaces, quotes"),
        ("https://app.example/a\\b", "without spaces, quotes"),  # a backslash
        ("https://user:pw@app.example/logout", "must not carry a user name or password"),
        ("http://[::1]:5000/logout", "letters, digits, dots and hyphens"),
        ("https://app_1.example/logout", "letters, digits, dots and hyphens"),
        ("https://app.example:99999/logout", "port that is not a number"),
        ("", "must be an absolute https:// URL"),
    ],
)
def test_front_channel_logout_url_is_refused_with_its_path(
    tmp_path: Path, url: str, problem: str
) -> None:
    text = TENANT + app(0) + app(1, f"front_channel_logout_url = {url!r}")
    error = refusal(tmp_path, text)
    assert "apps[1].front_channel_logout_url: " in error.message
    assert problem in error.message
    assert "http://localhost:5000/logout/front-channel" in error.remedy  # an example to copy


@pytest.mark.parametrize("url", ["https://app.example/\nlogout", "https://app.example/\x00"])
def test_front_channel_logout_url_with_a_control_character_is_refused(url: str) -> None:
    raw = {
        "tenants": [{"id": "11111111-1111-1111-1111-111111111111", "domain": "t.example"}],
        "apps": [
            {
                "client_id": "22222220-2222-2222-2222-222222222222",
                "tenant": "t.example",
                "display_name": "app",
                "front_channel_logout_url": url,
            }
        ],
    }
    with pytest.raises(EmulatorError, match=r"apps\[0\]\.front_channel_logout_url: must be a URL"):
        seed_from_dict(raw)


def test_front_channel_logout_url_is_one_string(tmp_path: Path) -> None:
    # Entra has one front-channel logout URL per app (manifest `logoutUrl`), not a list.
    error = refusal(tmp_path, TENANT + app(0, 'front_channel_logout_url = ["https://a/"]'))
    assert "apps[0].front_channel_logout_url: expected str" in error.message


def test_app_role_display_name_defaults_to_its_value(tmp_path: Path) -> None:
    roles = "[[apps.app_roles]]\nvalue = 'Admin'\ndisplay_name = 'Demo administrator'\n"
    roles += "[[apps.app_roles]]\nvalue = 'Reader'\n"
    path = tmp_path / "seed.toml"
    path.write_text(TENANT + app(0, roles))
    (only,) = load_seed(path).apps
    assert [(r.value, r.display_name) for r in only.app_roles] == [
        ("Admin", "Demo administrator"),
        ("Reader", "Reader"),
    ]


def test_the_default_seed_registers_the_demo_front_channel_url_and_admin_role() -> None:
    seed = load_seed()
    web = seed.app("4b7d2f1c-3a5e-4c8b-9d61-2e0f7a9b3c15")
    assert web is not None
    assert web.front_channel_logout_url == "http://localhost:5000/logout/front-channel"
    admin = web.role("Admin")
    assert admin is not None
    assert admin.display_name == "Demo administrator"
    assert admin.allowed_member_types == ("User",)
    holders = {u.upn for u in seed.users for r in u.app_roles if r.app == web.client_id}
    assert holders == {"adele@contoso.example"}  # not Megan: the demo shows both sides


def test_an_assignment_spelled_as_the_seed_accepts_it_counts_as_assigned(tmp_path: Path) -> None:
    # The seed takes `API://the-api/` for `api://the-api`, tokens carry its role: so must the
    # check of an assignment-required app (AADSTS50105 otherwise).
    api = app(0, 'identifier_uris = ["api://the-api"]\nassignment_required = true\n')
    api += "[[apps.app_roles]]\nvalue = 'Data.Read'\n"
    user = (
        USER + "password = 'p'\n[[users.app_roles]]\napp = 'API://the-api/'\nrole = 'Data.Read'\n"
    )
    path = tmp_path / "seed.toml"
    path.write_text(TENANT + api + user)
    seed = load_seed(path)
    (only,), (holder,) = seed.apps, seed.users
    assert assigned(holder, only)
