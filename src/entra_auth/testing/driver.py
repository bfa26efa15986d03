"""Walk the local Entra ID's sign-in pages over HTTP, as a browser would, without one.

For tests and benchmarks that need an authorization code quickly: ``BrowserlessUser`` follows
the authorize URL, signs in (a picked demo user or username and password), answers the consent
page, and returns the parameters the IdP sent to the app's redirect URI.
Reads the pages with the standard library's HTMLParser: they are the emulator's own.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from html.parser import HTMLParser
from urllib.parse import parse_qsl, urljoin, urlsplit

import requests

from ..errors import EmulatorError


@dataclass
class _Form:
    action: str
    fields: dict[str, str] = field(default_factory=dict)
    buttons: list[dict[str, str]] = field(default_factory=list)


class _Forms(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.forms: list[_Form] = []
        self.alert = ""
        self._in_alert = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {k: v or "" for k, v in attrs}
        if tag == "form":
            self.forms.append(_Form(values.get("action", "")))
        elif tag == "input" and self.forms and values.get("type") == "hidden":
            self.forms[-1].fields[values.get("name", "")] = values.get("value", "")
        elif tag == "button" and self.forms:
            self.forms[-1].buttons.append(values)
        elif tag == "p" and ("error" in values.get("class", "")):
            self._in_alert = True

    def handle_endtag(self, tag: str) -> None:
        if tag == "p":
            self._in_alert = False

    def handle_data(self, data: str) -> None:
        if self._in_alert:
            self.alert += data


def _forms(html: str) -> _Forms:
    parser = _Forms()
    parser.feed(html)
    return parser


class SignInRefused(EmulatorError):
    """The IdP answered with an error page or an error at the redirect URI."""

    code = "sign_in_refused"


class BrowserlessUser:
    """A user at a browser, without the browser: cookies persist across sign-ins (SSO)."""

    def __init__(self, session: requests.Session | None = None):
        self.session = session or requests.Session()
        self.session.trust_env = False

    def authorize(
        self,
        auth_uri: str,
        *,
        user: str | None = None,
        password: str | None = None,
        consent: bool = True,
    ) -> dict[str, str]:
        """The authorization response (``code``, ``state``… or ``error``) for ``auth_uri``.

        ``user`` picks a demo user by sign-in name; with ``password`` it is typed instead.
        """
        response = self.session.get(auth_uri, allow_redirects=False, timeout=30)
        for _ in range(6):
            if response.is_redirect:
                return dict(_response_params(response.headers["Location"]))
            page = _forms(response.text)
            if response.status_code >= 400:
                raise SignInRefused(
                    f"The local Entra ID refused the request: {page.alert.strip()}",
                    remedy="Read the AADSTS code with `entra-auth explain`.",
                )
            if any(f.fields.get("code") or f.fields.get("error") for f in page.forms):
                return dict(page.forms[0].fields)  # response_mode=form_post
            consent_form = next((f for f in page.forms if "consent" in f.action), None)
            if consent_form is not None:
                data = {**consent_form.fields, "decision": "accept" if consent else "decline"}
                response = self._post(response.url, consent_form.action, data)
                continue
            if page.alert.strip():
                raise SignInRefused(page.alert.strip(), remedy="Check the username and password.")
            response = self._sign_in(response.url, page, user, password)
        raise SignInRefused("The sign-in did not finish.", remedy="Check the emulator's log.")

    def _sign_in(
        self, url: str, page: _Forms, user: str | None, password: str | None
    ) -> requests.Response:
        if user is None:
            raise SignInRefused(
                "The IdP asks who signs in, and no user was given.",
                remedy="Pass user= (and password= to type it).",
            )
        if password is not None:
            form = page.forms[0]
            return self._post(
                url, form.action, {**form.fields, "username": user, "password": password}
            )
        for form in page.forms:
            for button in form.buttons:
                if button.get("data-upn", "").lower() == user.lower():
                    return self._post(url, form.action, {**form.fields, "user": button["value"]})
        raise SignInRefused(f"No demo user {user!r} on the sign-in page.", remedy="Check the seed.")

    def _post(self, base: str, action: str, data: dict[str, str]) -> requests.Response:
        return self.session.post(
            urljoin(base, action), data=data, allow_redirects=False, timeout=30
        )


def _response_params(location: str) -> list[tuple[str, str]]:
    parts = urlsplit(location)
    return parse_qsl(parts.fragment or parts.query, keep_blank_values=True)
