"""The web console: static pages served at `/` that operate the host through the public management API.

Plain HTML, CSS and JavaScript modules — no build step and no Node toolchain to run or test it;
see docs/console.md for why. The console holds no key of its own: the operator types the
management key, the page keeps it in session storage and sends it with every API call.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import FileResponse
from starlette.staticfiles import StaticFiles

STATIC = Path(__file__).parent / "static"
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; img-src 'self' data: https: http:; style-src 'self'; script-src 'self'; "
    "connect-src 'self'; frame-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
)
"""Scripts and styles only from the console's own files; plugin pages are framed sandboxed."""
HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}


def mount_console(app: FastAPI) -> None:
    """Serve the console: `/` is the page, `/assets/…` its files."""

    async def index() -> FileResponse:
        return FileResponse(STATIC / "index.html", headers=HEADERS)

    app.add_api_route("/", index, methods=["GET"], include_in_schema=False)
    app.mount("/assets", StaticFiles(directory=STATIC), name="console-assets")
