"""The seed file's schema: a typo fails at start, naming the path of the bad value.

An unknown key, a value of the wrong type and a missing key are caught by the msgspec schema;
a reference to something the seed does not have is caught after it.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from entra_auth.emulator import EntraEmulator, load_seed
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
