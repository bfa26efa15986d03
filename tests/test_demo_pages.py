"""The demo's own pages: dates for NumericDate claims, the 404 page, the icon."""

from __future__ import annotations

import re

import pytest
from examples.demo.app import ago, claim_rows, numeric_date

from .security.web import Web

# 2026-11-25 14:03:20 UTC
MOMENT = 1795615400


@pytest.mark.parametrize(
    ("seconds", "words"),
    [
        (0, "just now"),
        (-4.9, "just now"),
        (5, "in 5 s"),
        (45, "in 45 s"),
        (-45, "45 s ago"),
        (52 * 60 + 59, "in 52 min"),
        (-3 * 60, "3 min ago"),
        (3600, "in 1 h"),
        (3600 + 5 * 60, "in 1 h 5 min"),
        (-(47 * 3600 + 59 * 60), "47 h 59 min ago"),
        (-2 * 86400, "2 days ago"),
        (400 * 86400, "in 400 days"),
    ],
)
def test_ago_in_words(seconds: int, words: str) -> None:
    assert ago(seconds) == words


def test_a_numeric_date_as_a_date_and_how_far_away() -> None:
    when = numeric_date(MOMENT, now=MOMENT - 52 * 60 - 10)
    assert when is not None
    assert when.text == "2026-11-25 14:03 UTC (in 52 min)"
    assert when.iso == "2026-11-25T14:03:20Z"
    past = numeric_date(MOMENT, now=MOMENT + 120)
    assert past is not None
    assert past.text == "2026-11-25 14:03 UTC (2 min ago)"


@pytest.mark.parametrize("value", [True, "1795615400", None, 10**30, [MOMENT]])
def test_what_is_not_a_numeric_date_is_shown_as_it_is(value: object) -> None:
    assert numeric_date(value, now=MOMENT) is None


def test_claim_rows() -> None:
    rows = {
        row.name: row
        for row in claim_rows(
            {"exp": MOMENT, "roles": ["Admin", "Reader"], "nbf": "soon", "ver": "2.0", "x": {}},
            now=MOMENT - 60,
        )
    }
    assert rows["exp"].when is not None
    assert rows["exp"].when.text == "2026-11-25 14:03 UTC (in 1 min)"
    assert rows["exp"].what == "Expires"
    assert rows["roles"].text == "Admin, Reader"
    assert rows["roles"].when is None
    assert rows["nbf"].when is None  # not a number: shown as given
    assert rows["nbf"].text == "soon"
    assert rows["x"].text == "{}"
    assert rows["x"].what is None


def test_the_claims_page_shows_dates_and_keeps_the_raw_value(web: Web) -> None:
    web.sign_in()
    page = web.client.get("/claims").get_data(as_text=True)
    for claim in ("iat", "exp"):
        found = re.search(
            rf'<tr id="claim-{claim}">.*?<time datetime="([^"]+)" title="{claim} = (\d+)">'
            r"([^<]+)</time><small class=\"raw\">(\d+)</small>",
            page,
            re.S,
        )
        assert found is not None, claim
        iso, title_raw, shown, raw = found.groups()
        assert title_raw == raw
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", iso)
        assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d UTC \((in .+|.+ ago|just now)\)", shown)


def test_the_404_page_is_the_demo_s_own(web: Web) -> None:
    response = web.client.get("/no-such-page")
    assert response.status_code == 404
    page = response.get_data(as_text=True)
    assert "<h1>Page not found</h1>" in page
    assert "/static/demo.css" in page  # the demo's layout
    assert "Not signed in" in page  # the same header as every page


def test_the_icon_is_served_and_linked(web: Web) -> None:
    home = web.client.get("/").get_data(as_text=True)
    assert '<link rel="icon" type="image/svg+xml" href="/static/favicon.svg">' in home
    for path in ("/static/favicon.svg", "/favicon.ico"):
        response = web.client.get(path)
        assert response.status_code == 200, path
        assert response.mimetype == "image/svg+xml", path
        assert response.get_data().startswith(b"<svg ")
