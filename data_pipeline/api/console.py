"""The web console: GET / serves one page; its assets are plain files under data_pipeline/console/static/.

The page talks to the API like any client (with the API key the user typed, if the server needs
one), so the console itself needs no authentication: it holds no data. Everything is served from
this server — no CDN, no build step.
"""
from __future__ import annotations

from pathlib import Path

from flask import Blueprint, send_from_directory

STATIC_DIR = Path(__file__).resolve().parent.parent / "console" / "static"

bp = Blueprint("console", __name__, static_folder=str(STATIC_DIR), static_url_path="/console/static")

# The page runs only its own scripts and talks only to this server.
CONTENT_SECURITY_POLICY = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
                           "connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'")


@bp.get("/")
def index():
    response = send_from_directory(STATIC_DIR, "index.html", max_age=0)
    response.headers["Cache-Control"] = "no-cache"
    return response


@bp.after_request
def console_headers(response):
    response.headers.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY)
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("Referrer-Policy", "no-referrer")
    return response
