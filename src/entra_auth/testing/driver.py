"""Walk the local Entra ID's sign-in pages over HTTP, as a browser would, without one.

For tests and benchmarks that need an authorization code quickly: ``BrowserlessUser`` follows
the authorize URL, signs in (a picked demo user or username and password), answers the consent
page, and returns the parameters the IdP sent to the app's redirect URI. Its ``sign_out`` goes
to the end-session URL (answering the account picker when the browser holds several accounts),
reports the front-channel logout URLs the sign-out page frames, and can GET them as the page's
iframes would (single sign-out without a browser).
Reads the pages with the standard library's HTMLParser: they are the emulator's own.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from html.parser import HTMLParser
from urllib.parse import SplitResult, parse_qsl, unquote, urljoin, urlsplit

import requests

from ..errors import EmulatorError


@dataclass
class _Form:
    action: str
    fields: dict[str, str] = field(default_factory=dict)
    buttons: list[dict[str, str]] = field(default_factory=list)


@dataclass
class _Capture:
    key: str  # which text it collects: alert, code, notice; details only masks
    tag: str
    depth: int = 1


class _Page(HTMLParser):
    """What the driver reads on one of the emulator's pages: forms, the error shown (and its
    AADSTS code for developers), and on the sign-out page its frames and continue link."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.forms: list[_Form] = []
        self.texts: dict[str, str] = {"alert": "", "code": "", "notice": ""}
        self.frames: list[str] = []
        self.continue_to: str | None = None
        self._open: list[_Capture] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {k: v or "" for k, v in attrs}
        for capture in self._open:
            if capture.tag == tag:
                capture.depth += 1
        if tag == "form":
            self.forms.append(_Form(values.get("action", "")))
        elif tag == "input" and self.forms and values.get("type") == "hidden":
            self.forms[-1].fields[values.get("name", "")] = values.get("value", "")
        elif tag == "button" and self.forms:
            self.forms[-1].buttons.append(values)
        elif tag == "iframe" and "data-front-channel" in values:
            self.frames.append(values.get("src", ""))
        elif tag == "a" and values.get("id") == "continue":
            self.continue_to = values.get("href", "")
        keys = []
        if values.get("role") == "alert" or "error" in values.get("class", "").split():
            keys.append("alert")
        if values.get("id") == "aadsts":
            keys.append("code")
        if values.get("id") == "notice":
            keys.append("notice")
        if tag == "details":  # developers' detail: not part of what the user is told
            keys.append("details")
        self._open.extend(_Capture(key, tag) for key in keys)

    def handle_endtag(self, tag: str) -> None:
        for capture in self._open:
            if capture.tag == tag:
                capture.depth -= 1
        self._open = [c for c in self._open if c.depth > 0]

    def handle_data(self, data: str) -> None:
        folded = any(c.key == "details" for c in self._open)
        for capture in self._open:
            if capture.key in self.texts and not (capture.key == "alert" and folded):
                self.texts[capture.key] += data

    def text(self, key: str) -> str:
        return " ".join(self.texts[key].split())

    @property
    def problem(self) -> str:
        """The error the page shows, with its AADSTS code when that is only in the details."""
        alert, code = self.text("alert"), self.text("code")
        if code and code not in alert:
            return f"{alert} ({code})" if alert else code
        return alert


def _page(html: str) -> _Page:
    parser = _Page()
    parser.feed(html)
    parser.close()
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
            page = _page(response.text)
            if response.status_code >= 400:
                raise SignInRefused(
                    f"The local Entra ID refused the request: {page.problem}",
                    remedy="Read the AADSTS code with `entra-auth explain`.",
                )
            if any(f.fields.get("code") or f.fields.get("error") for f in page.forms):
                return dict(page.forms[0].fields)  # response_mode=form_post
            consent_form = next((f for f in page.forms if "consent" in f.action), None)
            if consent_form is not None:
                data = {**consent_form.fields, "decision": "accept" if consent else "decline"}
                response = self._post(response.url, consent_form.action, data)
                continue
            if page.problem:
                raise SignInRefused(page.problem, remedy="Check the username and password.")
            response = self._sign_in(response.url, page, user, password)
        raise SignInRefused("The sign-in did not finish.", remedy="Check the emulator's log.")

    def _sign_in(
        self, url: str, page: _Page, user: str | None, password: str | None
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

    def sign_out(
        self,
        logout_url: str,
        *,
        account: str | None = None,
        load_frames: bool = False,
        send_cookies: bool = False,
    ) -> SignOut:
        """Go to the IdP's end-session URL (``end_session_endpoint`` with its parameters).

        Returns what the browser would do next: the front-channel logout URLs the sign-out
        page loads in iframes, the frames its Content-Security-Policy would block, and where
        it continues (the 302's ``Location`` or the page's continue link). With
        ``load_frames`` it also GETs each allowed front-channel URL, as the iframes would
        (see ``load_front_channel``); the answers are in ``frames``.

        A browser signed in with several accounts is asked which one to sign out (unless the
        URL has a ``logout_hint`` naming one): ``account`` (a sign-in name) picks it. Without
        it, the result lists the picker's choices in ``accounts`` and nothing is signed out.
        """
        response = self.session.get(logout_url, allow_redirects=False, timeout=30)
        picker = _picker(response)
        if picker is not None:
            names = tuple(b.get("data-upn", "") for b in picker.buttons)
            if account is None:
                return SignOut(response.status_code, (), (), None, "", accounts=names)
            button = next(
                (b for b in picker.buttons if b.get("data-upn", "").lower() == account.lower()),
                None,
            )
            if button is None:
                raise SignInRefused(
                    f"No account {account!r} to sign out; the IdP offers: {', '.join(names)}.",
                    remedy="Pick one of the accounts this browser signed in with.",
                )
            response = self._post(
                response.url,
                picker.action,
                {**picker.fields, button.get("name", "logout_hint"): button.get("value", "")},
            )
        if response.is_redirect:
            return SignOut(response.status_code, (), (), response.headers["Location"], "")
        page = _page(response.text)
        if response.status_code >= 400:
            raise SignInRefused(
                f"The local Entra ID refused the sign-out: {page.problem}",
                remedy="Read the AADSTS code with `entra-auth explain`.",
            )
        policy = response.headers.get("Content-Security-Policy", "")
        urls = [urljoin(response.url, src) for src in page.frames]
        allowed = tuple(u for u in urls if csp_allows_frame(policy, u))
        blocked = tuple(u for u in urls if u not in allowed)
        continue_to = urljoin(response.url, page.continue_to) if page.continue_to else None
        frames = self.load_front_channel(allowed, send_cookies=send_cookies) if load_frames else ()
        return SignOut(
            response.status_code, allowed, blocked, continue_to, page.text("notice"), frames
        )

    def load_front_channel(
        self, urls: Iterable[str], *, send_cookies: bool = False
    ) -> tuple[requests.Response, ...]:
        """GET each front-channel logout URL, following redirects: the sign-out page's iframes.

        Without cookies by default, as in production: there the IdP's page and the app are
        different sites, so a browser sends no ``SameSite=Lax``/``Strict`` cookie with the
        frame's request (and none at all where third-party cookies are blocked); the app must
        find the session to end by the ``sid`` in the URL. ``send_cookies=True`` sends this
        browser's cookies (what a browser does when both are on one site, e.g. localhost).
        """
        client = self.session if send_cookies else requests.Session()
        client.trust_env = False
        try:
            return tuple(client.get(url, allow_redirects=True, timeout=30) for url in urls)
        finally:
            if client is not self.session:
                client.close()


@dataclass(frozen=True)
class SignOut:
    """What the IdP's sign-out did, as a browser would see it."""

    status: int  # 302 straight back to the app (nothing to frame), or 200 for the page
    front_channel_urls: tuple[str, ...]  # the iframes the page loads (their CSP allows them)
    blocked_urls: tuple[str, ...]  # iframes the page asks for but its own CSP would block
    continue_to: str | None  # where the browser goes next; None when it stays on the page
    notice: str  # the page's notice (e.g. an unregistered post-logout URI); "" when none
    frames: tuple[requests.Response, ...] = ()  # the front-channel answers, when loaded
    # The account picker's choices (sign-in names) when the IdP asked which account to sign
    # out and none was given: nothing was signed out then.
    accounts: tuple[str, ...] = ()


def csp_allows_frame(policy: str, url: str) -> bool:
    """Whether a Content-Security-Policy lets a page frame ``url`` (CSP3 source matching for
    the host sources and ``'none'`` the emulator uses; anything else is not matched)."""
    directives: dict[str, list[str]] = {}
    for part in policy.split(";"):
        words = part.split()
        if words and words[0].lower() not in directives:  # the first of a name counts (CSP)
            directives[words[0].lower()] = words[1:]
    sources = next(
        (directives[d] for d in ("frame-src", "child-src", "default-src") if d in directives),
        None,
    )
    if sources is None:
        return True
    target = urlsplit(url)
    return any(_source_matches(source, target) for source in sources)


def _source_matches(source: str, target: SplitResult) -> bool:
    if "://" not in source:  # 'none', 'self', a scheme source...: not used for frames here
        return False
    expected = urlsplit(source)
    schemes = {"http": ("http", "https"), "https": ("https",)}.get(expected.scheme, ())
    if target.scheme not in schemes or target.hostname != expected.hostname:
        return False
    defaults = {"http": 80, "https": 443}
    if (expected.port or defaults[expected.scheme]) != (target.port or defaults[target.scheme]):
        return False
    if not expected.path:
        return True
    wanted, actual = unquote(expected.path), unquote(target.path or "/")
    return actual.startswith(wanted) if wanted.endswith("/") else actual == wanted


def _picker(response: requests.Response) -> _Form | None:
    """The sign-out account picker's form, when ``response`` is that page."""
    if response.is_redirect or response.status_code != 200:
        return None
    for form in _page(response.text).forms:
        if form.buttons and all(b.get("name") == "logout_hint" for b in form.buttons):
            return form
    return None


def _response_params(location: str) -> list[tuple[str, str]]:
    parts = urlsplit(location)
    return parse_qsl(parts.fragment or parts.query, keep_blank_values=True)
