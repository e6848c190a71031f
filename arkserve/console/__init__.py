"""The web console: a small vanilla-JS single-page app served by the API process.

:func:`mount` adds three things to the API's FastAPI app:

* ``/`` and ``/console/...``: the HTML shell (``templates/index.html``); the page's own router picks
  the view from the path, so every console URL can be bookmarked and reloaded;
* ``/static/...``: the console's JavaScript modules, stylesheet and icon (``static/``), revalidated
  on every load (``Cache-Control: no-cache`` + ETag), so an upgrade never serves stale code.

:func:`mount_api_docs` serves the API reference (Swagger UI) the same way: its script and stylesheet come from
the ``fastapi-swagger`` package (a dependency: installed with arkserve, never fetched from a CDN), under the
console's CSP.

The console talks only to the REST API under ``/api/v1`` with the session cookie and the
``X-CSRF-Token`` header, exactly like any other client; it holds no server-side state of its own.
"""

from __future__ import annotations

from functools import cache
from importlib import metadata, resources
from pathlib import Path

from fastapi import FastAPI, HTTPException
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.staticfiles import StaticFiles
from starlette.types import Scope

import arkserve

HERE = Path(__file__).parent
TEMPLATES = HERE / "templates"
STATIC = HERE / "static"

#: Everything the shell loads comes from this origin; no inline script, no third-party code.
CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
       "connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; "
       "frame-ancestors 'none'")
SHELL_HEADERS = {"Content-Security-Policy": CSP, "X-Frame-Options": "DENY", "X-Content-Type-Options": "nosniff",
                 "Referrer-Policy": "no-referrer", "Cache-Control": "no-cache"}


@cache
def shell_html() -> str:
    """The HTML shell with the version filled in (read once per process)."""
    return (TEMPLATES / "index.html").read_text(encoding="utf-8").replace("{{version}}", arkserve.__version__)


class ConsoleStatic(StaticFiles):
    """Static files that browsers revalidate on every load (cheap: ETag answers 304)."""

    async def get_response(self, path: str, scope: Scope) -> Response:
        response = await super().get_response(path, scope)
        response.headers["Cache-Control"] = "no-cache"
        response.headers["X-Content-Type-Options"] = "nosniff"
        return response


SWAGGER_PACKAGE = "fastapi-swagger"  # Swagger UI 5 (OpenAPI 3.1, which FastAPI writes) as a Python package


def swagger_ui_dir() -> Path:
    """The folder of the package's ``swagger-ui-bundle.js`` and ``swagger-ui.css`` (a package of its own)."""
    return Path(str(resources.files("fastapi_swagger.resources")))


class SwaggerAssets(StaticFiles):
    """Swagger UI's script and stylesheet, and nothing else of the package; revalidated like the console's files.
    Under ``/api/``: the API's middleware adds ``nosniff``."""

    FILES = frozenset({"swagger-ui-bundle.js", "swagger-ui.css"})

    async def get_response(self, path: str, scope: Scope) -> Response:
        if path not in self.FILES:
            raise HTTPException(status_code=404)
        response = await super().get_response(path, scope)
        response.headers["Cache-Control"] = "no-cache"
        return response


def _shell() -> HTMLResponse:
    return HTMLResponse(shell_html(), headers=SHELL_HEADERS)


def mount(app: FastAPI) -> None:
    """Serve the console on ``app``: the shell at ``/`` and ``/console/...``, assets under ``/static``."""

    @app.get("/", include_in_schema=False)
    def console_root() -> HTMLResponse:
        return _shell()

    @app.get("/console", include_in_schema=False)
    def console_index() -> RedirectResponse:
        return RedirectResponse("/console/services", status_code=307)

    @app.get("/console/{path:path}", include_in_schema=False)
    def console_page(path: str) -> HTMLResponse:
        return _shell()

    app.mount("/static", ConsoleStatic(directory=STATIC), name="console-static")


def mount_api_docs(app: FastAPI, docs_url: str, openapi_url: str) -> None:
    """The API reference at ``docs_url``: Swagger UI reading ``openapi_url``, every file from this origin."""
    assets = f"{docs_url}/assets"
    html = ((TEMPLATES / "api-docs.html").read_text(encoding="utf-8")
            .replace("{{assets}}", assets).replace("{{openapi}}", openapi_url)
            .replace("{{swagger}}", metadata.version(SWAGGER_PACKAGE)).replace("{{version}}", arkserve.__version__))

    headers = {k: v for k, v in SHELL_HEADERS.items() if k != "X-Content-Type-Options"}  # the API middleware's

    @app.get(docs_url, include_in_schema=False)
    def api_docs() -> HTMLResponse:
        return HTMLResponse(html, headers=headers)

    app.mount(assets, SwaggerAssets(directory=swagger_ui_dir()), name="api-docs-assets")
