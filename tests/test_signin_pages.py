"""Sign-in as users expect it, on the web adapters (``web_adapter``: Flask, FastAPI, Django):
current_user, user_loader, roles on pages, the library's own pages (replaceable templates),
sign-out without questions, the signed-out notice, and front-channel sign-out."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit

import pytest
import redis
from flask import Flask, render_template_string

from entra_auth.client.session import ANONYMOUS
from entra_auth.emulator import EntraEmulator
from entra_auth.errors import ConfigurationError
from entra_auth.integrations.flask import EntraAuth, SignedInUser, current_user

from .helpers import ADELE, MEGAN, demo_config
from .security.web import WEB_ADAPTERS, Web, age_session_files, session_files

every_web = pytest.mark.parametrize("web_adapter", WEB_ADAPTERS)
flask_fastapi = pytest.mark.parametrize("web_adapter", ["flask", "fastapi"])


def make_app(
    web_adapter: str,
    emulator: EntraEmulator,
    tmp_path: Path,
    *,
    loader: Any = None,
    templates: Path | None = None,
    **settings: Any,
) -> Any:
    """An app as the README builds one (``auth = EntraAuth()``, ``init_app``), on the adapter."""
    config = demo_config(emulator, ENTRA_SESSION_DIR=str(tmp_path / "s"), **settings)
    if web_adapter == "django":  # Django's users are its own: no user loader
        from .security.django_web import DjangoWebApp

        assert loader is None
        if templates is not None:
            config["ENTRA_TEMPLATE_DIRS"] = [str(templates)]
        return DjangoWebApp(config, urlconf="tests.security.django_pages")
    if web_adapter == "fastapi":
        from .security.fastapi_pages import pages_app

        return pages_app(config, loader=loader, templates=templates)
    auth = EntraAuth()
    app = Flask(__name__, template_folder=str(templates) if templates else None)
    app.config.update(config)
    auth.init_app(app)
    if loader is not None:
        auth.user_loader(loader)

    @app.get("/")
    def home() -> str:
        return render_template_string(
            '{% if current_user.is_authenticated %}<span id="who">{{ current_user.name }}'
            '</span>{% endif %}{% if entra_signed_out %}<p id="signed-out">You are signed '
            "out.</p>{% endif %}anonymous={{ current_user.is_anonymous }}"
        )

    @app.get("/page")
    @auth.login_required
    def page() -> dict[str, Any]:
        return {"key": list(current_user.key), "record": current_user.record}  # type: ignore[arg-type]

    @app.get("/admin")
    @auth.login_required(roles=["Admin"])
    def admin() -> str:
        return "admin page"

    return app


def auth_of(web: Web) -> Any:
    """The app's ``EntraAuth``."""
    return web.app.extensions["entra_auth"] if web.adapter == "flask" else web.app.auth


@every_web
def test_current_user_is_an_object_when_signed_out(
    entra_emulator: EntraEmulator, tmp_path: Path, web_adapter: str
) -> None:
    app = make_app(web_adapter, entra_emulator, tmp_path)
    if web_adapter == "flask":  # the proxy, outside a template
        with app.test_request_context("/"):
            app.preprocess_request()
            assert current_user.is_authenticated is False
            assert current_user.is_anonymous is True
            assert not current_user  # `{% if current_user %}` keeps working
            assert current_user.has_roles("Admin") is False
    else:
        assert not ANONYMOUS
        assert ANONYMOUS.is_authenticated is False
        assert ANONYMOUS.has_roles("Admin") is False
    web = Web(entra_emulator, app)
    assert "anonymous=True" in web.client.get("/").get_data(as_text=True)
    web.sign_in()
    assert web.who() == "Adele Vance"
    assert "anonymous=False" in web.client.get("/").get_data(as_text=True)


# Not Django: its users are Django's own User (backend.py), no user loader.
@flask_fastapi
def test_user_loader_maps_the_entra_user_to_a_record(
    entra_emulator: EntraEmulator, tmp_path: Path, web_adapter: str
) -> None:
    records: dict[tuple[str, str], dict[str, Any]] = {}
    calls: list[tuple[str, str]] = []

    def load(user: SignedInUser) -> dict[str, Any] | None:
        calls.append(user.key)
        if user.username == MEGAN:
            return None  # the app has no account for Megan
        return records.setdefault(user.key, {"id": len(records) + 1, "name": user.name})

    web = Web(entra_emulator, make_app(web_adapter, entra_emulator, tmp_path, loader=load))
    assert web.sign_in().status_code == 302
    adele = entra_emulator.user(ADELE)
    assert calls == [
        (adele.oid, entra_emulator.tenant_id)
    ]  # after the verified sign-in, keyed on oid+tid
    page = web.client.get("/page")
    assert page.json == {
        "key": [adele.oid, entra_emulator.tenant_id],
        "record": {"id": 1, "name": "Adele Vance"},
    }
    assert len(calls) == 2  # once for that request, not per access
    # A user the app does not know is refused at sign-in: a 403 page and no session.
    megan = Web(entra_emulator, web.app)
    refused = megan.sign_in(user=MEGAN)
    assert refused.status_code == 403
    assert "has no account for you" in refused.get_data(as_text=True)
    assert megan.who() is None
    assert megan.cookie() is None
    # A record removed later ends the session at the next protected page.
    asked: list[tuple[str, str]] = []

    def removed(user: SignedInUser) -> None:
        asked.append(user.key)
        return None

    auth_of(web).user_loader(removed)
    assert web.client.get("/page").status_code == 403
    assert asked == [(adele.oid, entra_emulator.tenant_id)]
    assert web.who() is None


@every_web
def test_role_protected_page(
    entra_emulator: EntraEmulator, tmp_path: Path, web_adapter: str
) -> None:
    app = make_app(web_adapter, entra_emulator, tmp_path)
    adele, megan = Web(entra_emulator, app), Web(entra_emulator, app)
    # Signed out: to sign-in first, coming back to the page.
    first = adele.client.get("/admin")
    assert first.status_code == 302
    assert "next=/admin" in first.headers["Location"]
    adele.sign_in()
    megan.sign_in(user=MEGAN)
    assert adele.client.get("/admin").get_data(as_text=True) == "admin page"
    refused = megan.client.get("/admin")
    assert refused.status_code == 403
    text = refused.get_data(as_text=True)
    assert "have access to this page" in text
    assert MEGAN in text  # whom they are signed in as, and a way to switch
    assert "prompt=select_account" in text
    main, detail = text.split('<details id="detail">')
    assert "Admin" in detail
    assert "roles claim" not in main
    api_style = megan.client.get("/admin", headers={"Accept": "application/json"})
    assert api_style.status_code == 403
    assert api_style.json["roles"] == ["Admin"]


@every_web
def test_the_apps_own_template_replaces_the_librarys(
    entra_emulator: EntraEmulator, tmp_path: Path, web_adapter: str
) -> None:
    templates = tmp_path / "templates"
    (templates / "entra_auth").mkdir(parents=True)
    (templates / "entra_auth" / "forbidden.html").write_text(
        '<h1 id="own">Our own 403</h1><p>{{ title }}</p><p>{{ detail }}</p>'
    )
    (templates / "entra_auth" / "layout.html").write_text(
        '<html><body class="our-look">{% block content %}{% endblock %}</body></html>'
    )
    app = make_app(web_adapter, entra_emulator, tmp_path, templates=templates)
    web = Web(entra_emulator, app)
    web.sign_in(user=MEGAN)
    forbidden = web.client.get("/admin").get_data(as_text=True)
    assert '<h1 id="own">Our own 403</h1>' in forbidden
    assert "lacks: Admin" in forbidden
    # Pages not replaced keep theirs, inside the app's layout.
    web.client.get("/")  # signed in: GET /logout asks
    ask = web.client.get("/logout").get_data(as_text=True)
    assert 'class="our-look"' in ask
    assert 'id="sign-out"' in ask


@every_web
def test_get_logout_asks_only_when_someone_is_signed_in(
    entra_emulator: EntraEmulator, tmp_path: Path, web_adapter: str
) -> None:
    web = Web(entra_emulator, make_app(web_adapter, entra_emulator, tmp_path))
    quiet = web.client.get("/logout")
    assert quiet.status_code == 302
    assert quiet.headers["Location"] == "/"
    web.sign_in()
    ask = web.client.get("/logout")
    assert ask.status_code == 200
    assert 'method="post"' in ask.get_data(as_text=True)
    assert web.who() == "Adele Vance"  # a GET (a link, an image) signed no one out


@every_web
def test_signed_out_notice_is_shown_once(
    entra_emulator: EntraEmulator, tmp_path: Path, web_adapter: str
) -> None:
    web = Web(entra_emulator, make_app(web_adapter, entra_emulator, tmp_path))
    web.sign_in()
    assert 'id="signed-out"' not in web.client.get("/").get_data(as_text=True)
    out = web.client.post("/logout")
    assert out.status_code == 302
    assert "/oauth2/v2.0/logout" in out.headers["Location"]
    back = web.client.get("/").get_data(as_text=True)  # the IdP returns the browser here
    assert 'id="signed-out"' in back
    assert 'id="signed-out"' not in web.client.get("/").get_data(as_text=True)


@every_web
def test_a_signed_in_users_pages_are_private_the_apps_own_too(
    entra_emulator: EntraEmulator, tmp_path: Path, web_adapter: str
) -> None:
    """No shared or back-button caching of a signed-in user's pages (the app's own, not only
    the library's): ``no-store`` and ``Vary: Cookie`` while signed in, not before."""
    web = Web(entra_emulator, make_app(web_adapter, entra_emulator, tmp_path))
    anonymous = web.client.get("/")
    assert "no-store" not in anonymous.headers.get("Cache-Control", "")
    web.sign_in()
    for path in ("/", "/page"):
        page = web.client.get(path)
        assert page.status_code == 200
        assert page.headers["Cache-Control"] == "no-store"
        assert "Cookie" in page.headers["Vary"]


# Not Django: its sessions are its session engine's, no file store of ours to bound.
@flask_fastapi
def test_the_file_store_holds_at_most_its_limit_the_longest_idle_go_first(
    entra_emulator: EntraEmulator, tmp_path: Path, web_adapter: str
) -> None:
    """Without Redis, ``ENTRA_SESSION_FILE_LIMIT`` bounds the signed-in sessions kept in files:
    one more sign-in drops the session nearest expiry (that user signs in again), never a
    failed sign-in."""
    app = make_app(web_adapter, entra_emulator, tmp_path, ENTRA_SESSION_FILE_LIMIT="1")
    adele, megan = Web(entra_emulator, app), Web(entra_emulator, app)
    adele.sign_in()
    assert adele.who() == "Adele Vance"
    age_session_files(adele, 60)  # Adele's expires first (expiries are whole seconds)
    assert megan.sign_in(user=MEGAN).status_code == 302
    assert megan.who() == "Megan Bowen"
    assert megan.who() == "Megan Bowen"  # (cachelib makes room at the write after the one over)
    assert adele.who() is None  # dropped to make room
    assert len(session_files(megan)) == 1
    age_session_files(megan, 60)
    assert adele.sign_in().status_code == 302  # and back, dropping Megan's now
    assert adele.who() == "Adele Vance"
    assert adele.who() == "Adele Vance"
    assert megan.who() is None
    assert len(session_files(adele)) == 1
    # The front-channel index is kept beside the sessions, not among them: making room for
    # sessions evicted none of it, and the IdP's sign-out still ends Adele's session.
    assert front_channel(app, _sid(adele)).status_code == 200
    assert session_files(adele) == []  # her record was there: the session deleted, not marked
    assert adele.who() is None


# Not Django: no user loader (Django's User).
@flask_fastapi
def test_an_async_user_loader_is_refused_at_registration(
    entra_emulator: EntraEmulator, tmp_path: Path, web_adapter: str
) -> None:
    """Its coroutine is never None: registered, it would let every user in."""
    app = make_app(web_adapter, entra_emulator, tmp_path)

    async def load(user: SignedInUser) -> None:
        return None

    with pytest.raises(ConfigurationError, match="is async"):
        auth_of(Web(entra_emulator, app)).user_loader(load)


# -- front-channel sign-out ------------------------------------------------------------------
def _sid(web: Web) -> str:
    sid = web.session()["entra_user"]["sid"]
    assert isinstance(sid, str)
    assert sid
    return sid


def front_channel(app: Any, sid: str, **extra: str) -> Any:
    """What the IdP's hidden frame does: a GET with no cookie of the app's."""
    return app.test_client().get("/logout/front-channel?" + urlencode({"sid": sid, **extra}))


@every_web
def test_front_channel_logout_ends_the_sign_in_without_its_cookie(
    entra_emulator: EntraEmulator, tmp_path: Path, web_adapter: str
) -> None:
    app = make_app(web_adapter, entra_emulator, tmp_path)
    web, other = Web(entra_emulator, app), Web(entra_emulator, app)
    web.sign_in()
    other.sign_in(user=MEGAN)
    answer = front_channel(app, _sid(web))
    assert answer.status_code == 200
    # The IdP's sign-out page frames it: its origin, nobody else's.
    csp = answer.headers["Content-Security-Policy"]
    assert csp.startswith("frame-ancestors ")
    assert "'none'" not in csp
    assert entra_emulator.urls.browser_base.rstrip("/") in csp.split()
    assert "X-Frame-Options" not in answer.headers
    assert answer.headers["Cache-Control"] == "no-store"
    assert web.who() is None
    assert other.who() == "Megan Bowen"  # another sign-in is untouched


@every_web
def test_front_channel_logout_refuses_what_is_not_its_sign_in(
    entra_emulator: EntraEmulator, tmp_path: Path, web_adapter: str
) -> None:
    app = make_app(web_adapter, entra_emulator, tmp_path)
    web = Web(entra_emulator, app)
    web.sign_in()
    sid = _sid(web)
    assert app.test_client().get("/logout/front-channel").status_code == 400
    assert front_channel(app, sid, iss="https://sts.windows.net/another-tenant/").status_code == 200
    assert web.who() == "Adele Vance"  # another issuer's sid: not ours to end
    assert front_channel(app, "some-other-sid").status_code == 200
    assert web.who() == "Adele Vance"
    issuer = web.session()["entra_user"]["iss"]
    front_channel(app, sid, iss=issuer)
    assert web.who() is None


# Not Django: its front-channel index is in CACHES, not the files this test counts.
@flask_fastapi
def test_made_up_sids_store_nothing_and_bring_no_one_back(
    entra_emulator: EntraEmulator, tmp_path: Path, web_adapter: str
) -> None:
    """The front-channel route takes requests from anyone: a sid no sign-in of ours has writes
    nothing (no disk filled, no record of a real sign-in evicted), so after a real front-channel
    sign-out a flood of made-up ones cannot undo it."""
    app = make_app(web_adapter, entra_emulator, tmp_path, ENTRA_SESSION_FILE_LIMIT="2")
    web = Web(entra_emulator, app)
    web.sign_in()
    index = tmp_path / "s" / "sign-ins"
    before = sorted(index.iterdir())
    for i in range(30):
        assert front_channel(app, f"made-up-{i}").status_code == 200
    assert sorted(index.iterdir()) == before
    assert web.who() == "Adele Vance"
    assert front_channel(app, _sid(web)).status_code == 200
    for i in range(30):
        front_channel(app, f"more-{i}")
    assert web.who() is None


@every_web
def test_a_new_sign_in_is_not_ended_by_an_earlier_front_channel_logout(
    entra_emulator: EntraEmulator, tmp_path: Path, web_adapter: str
) -> None:
    app = make_app(web_adapter, entra_emulator, tmp_path)
    web = Web(entra_emulator, app)
    web.sign_in()
    front_channel(app, _sid(web))
    assert web.who() is None
    web.sign_in()  # signs in again (a new IdP session)
    assert web.who() == "Adele Vance"


# Not Django: its instances share CACHES (ENTRA_CACHE_ALIAS), not REDIS_URL.
@flask_fastapi
def test_front_channel_logout_across_instances_removes_the_token_cache(
    entra_emulator: EntraEmulator, tmp_path: Path, redis_url: str, web_adapter: str
) -> None:
    from cryptography.fernet import Fernet

    shared = {"REDIS_URL": redis_url, "ENTRA_TOKEN_CACHE_KEY": Fernet.generate_key().decode()}
    one = make_app(web_adapter, entra_emulator, tmp_path, **shared)
    two = make_app(web_adapter, entra_emulator, tmp_path, **shared)
    web = Web(entra_emulator, one)
    web.sign_in()
    store = redis.Redis.from_url(redis_url)
    cache_key = f"entra:tokens:{web.session()['entra_cache_id']}"
    assert store.exists(cache_key)
    # A request in flight on instance one, saving its session after the sign-out, brings
    # nobody back: the mark left for the sid is checked on every signed-in request.
    in_flight = web.session()
    assert front_channel(two, _sid(web)).status_code == 200
    assert not store.exists(cache_key)
    assert web.who() is None
    with web.client.session_transaction() as session:
        session.update(in_flight)
    assert web.who() is None


@every_web
@pytest.mark.parametrize("path", ["/page", "/admin"])
def test_back_to_the_callback_after_sign_in_goes_on_quietly(
    entra_emulator: EntraEmulator, tmp_path: Path, path: str, web_adapter: str
) -> None:
    web = Web(entra_emulator, make_app(web_adapter, entra_emulator, tmp_path))
    first = web.client.get(path)
    assert first.status_code == 302
    params = web.authorize(web.begin(first.headers["Location"]))
    assert web.callback(params).headers["Location"] == path
    again = web.callback(params)  # the Back button
    assert again.status_code == 302
    assert again.headers["Location"] == path


@every_web
def test_signing_out_of_one_app_signs_the_user_out_of_the_other(
    tmp_path: Path, web_adapter: str
) -> None:
    """Two apps (two registrations, two EntraAuth apps) share one Entra sign-in; signing out of
    one makes the IdP's page frame both front-channel URLs, and both sessions end."""
    from importlib.resources import files

    import tomllib

    from entra_auth.emulator.seed import seed_from_dict
    from entra_auth.testing.driver import BrowserlessUser

    other = "5c8e3a1d-7b2f-4d6e-9a0c-3f1e5d7b9a2c"
    raw = tomllib.loads(files("entra_auth.emulator").joinpath("default_seed.toml").read_text())
    raw["apps"].append(
        {
            "client_id": other,
            "tenant": "contoso.example",
            "display_name": "Second web app",
            "redirect_uris": ["http://localhost:5001/get_token"],
            "post_logout_redirect_uris": ["http://localhost:5001/"],
            "front_channel_logout_url": "http://localhost:5001/logout/front-channel",
            "secrets": [{"value": "second-app-local-secret", "expires": "2099-01-01T00:00:00Z"}],
        }
    )
    with EntraEmulator(
        seed_from_dict(raw), state_dir=tmp_path / "idp", port=0, browser_port=0
    ) as emulator:
        first = make_app(web_adapter, emulator, tmp_path / "one")
        second = make_app(
            web_adapter,
            emulator,
            tmp_path / "two",
            ENTRA_CLIENT_ID=other,
            ENTRA_CLIENT_SECRET="second-app-local-secret",
            ENTRA_REDIRECT_URI="http://localhost:5001/get_token",
        )
        browser = BrowserlessUser()  # one browser: one sign-in at the IdP for both apps
        one, two = Web(emulator, first), Web(emulator, second)
        one.idp = two.idp = browser
        one.sign_in()
        two.sign_in()
        assert one.who() == "Adele Vance"
        assert two.who() == "Adele Vance"
        assert _sid(one) == _sid(two)

        leaving = one.client.post("/logout")
        out = browser.sign_out(leaving.headers["Location"])
        by_port = {5000: first, 5001: second}
        assert sorted(urlsplit(u).port for u in out.front_channel_urls) == [5000, 5001]
        for url in out.front_channel_urls:  # the hidden frames, with no cookie of the apps'
            parts = urlsplit(url)
            assert parts.path == "/logout/front-channel"
            app = by_port[parts.port or 80]
            assert app.test_client().get(f"{parts.path}?{parts.query}").status_code == 200
        assert one.who() is None
        assert two.who() is None
        assert out.continue_to == "http://localhost:5000/"
