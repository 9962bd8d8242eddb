"""What every HTML page the API serves carries, so no other site can frame it or run script in it.

`/admin` is clickjacking's ideal target: a click inside a frame is same-origin and passes the
Origin check. Every HTML answer therefore says `frame-ancestors 'none'` and `X-Frame-Options:
DENY`, and its CSP allows script and style only from the API itself (`default-src 'self'`): the
admin page's script and styles are files under `/admin/static/`, and it sets widths through the
DOM, never an inline `style`. `/docs` is FastAPI's Swagger UI, which loads its bundle from a CDN
and starts it with one inline script: its CSP names that CDN and the script's hash, nothing more.
"""

from __future__ import annotations

import base64
import hashlib
import re
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse

from lab.api.access import ASGIApp, Scope

PAGE_CSP = (
    "default-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'; "
    "object-src 'none'"
)
PAGE_HEADERS = {
    "x-frame-options": "DENY",
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
}
SWAGGER_CDN = "https://cdn.jsdelivr.net"
_INLINE_SCRIPT = re.compile(r"<script>(.*?)</script>", re.DOTALL)


class PageHeaders:
    """ASGI middleware: the headers above on every HTML answer (a page that set its own CSP,
    like `/docs`, keeps it); `nosniff` on every answer."""

    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": with_page_headers(message.get("headers", []))}
            await send(message)

        await self.app(scope, receive, send_with_headers)


def with_page_headers(raw: list[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
    """The response's headers plus what a page needs (pure)."""
    names = {k.lower() for k, _ in raw}
    html = any(k.lower() == b"content-type" and v.startswith(b"text/html") for k, v in raw)
    extra = PAGE_HEADERS if html else {"x-content-type-options": "nosniff"}
    if html and b"content-security-policy" not in names:
        extra = {**extra, "content-security-policy": PAGE_CSP}
    return [*raw, *((k.encode(), v.encode()) for k, v in extra.items() if k.encode() not in names)]


def _sha256(text: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(text.encode()).digest()).decode() + "'"


def add_docs(app: FastAPI) -> None:
    """`/docs` (Swagger UI) with a CSP that lets exactly its CDN bundle and its own inline
    script run. Call on an app made with `docs_url=None`."""

    @app.get("/docs", include_in_schema=False)
    def docs() -> HTMLResponse:
        page = get_swagger_ui_html(openapi_url=app.openapi_url or "/openapi.json", title="lab")
        text = bytes(page.body).decode()
        hashes = " ".join(_sha256(s) for s in _INLINE_SCRIPT.findall(text))
        csp = (
            f"default-src 'self'; script-src 'self' {SWAGGER_CDN} {hashes}; "
            f"style-src 'self' {SWAGGER_CDN}; img-src 'self' data: https://fastapi.tiangolo.com; "
            "frame-ancestors 'none'; base-uri 'none'; object-src 'none'"
        )
        return HTMLResponse(text, headers={"content-security-policy": csp})
