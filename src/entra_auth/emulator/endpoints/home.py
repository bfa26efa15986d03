"""The index page of the browser port: the directory the emulator serves, and where things are."""

from __future__ import annotations

from flask import Blueprint, render_template

from ..context import current

blueprint = Blueprint("home", __name__)


@blueprint.get("/")
def home() -> str:
    ctx = current()
    return render_template("home.html", seed=ctx.state.seed, urls=ctx.urls)
