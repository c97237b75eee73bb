"""The web page at ``/`` and the API docs at ``/docs`` and ``/redoc``, all served from the package.

The page is static HTML, CSS and JavaScript in ``static/`` (no build step) that calls the public ``/v1``
API like any other client; it needs one thing the API does not list, the saliency methods, which
``/ui/config.json`` gives. A Content-Security-Policy of ``'self'`` keeps the page from loading anything
from elsewhere, so it works on a machine with no internet access.

FastAPI's own ``/docs`` and ``/redoc`` load Swagger UI and ReDoc from a CDN, so they are blank offline.
Here they are FastAPI's "self-hosting JavaScript and CSS for docs" recipe, with the assets that the
``fastapi-offline`` package ships (Swagger UI 5 and the ReDoc 2 standalone bundle). ReDoc's sidebar
always draws a logo from its vendor's CDN; the bundle is served with that one URL replaced by an empty
``data:`` image, which fails to decode, so ReDoc's own error handler hides the logo and nothing leaves
the machine.
"""

from __future__ import annotations

import functools
import importlib.resources
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html, get_swagger_ui_oauth2_redirect_html
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles

STATIC_DIR = Path(__file__).with_name("static")
UI_PREFIX = "/ui"  # the page's own assets: /ui/app.js, /ui/samples/chelsea.jpg, ...
DOCS_ASSETS_PREFIX = "/docs-assets"  # Swagger UI and ReDoc bundles
DOCS_URL, REDOC_URL, OAUTH2_REDIRECT_URL = "/docs", "/redoc", "/docs/oauth2-redirect"
DEFAULT_SALIENCY_METHOD = "gradcam"  # the /v1/saliency route's default: cheap and readable

REDOC_OFFSITE_LOGO = b'"https://cdn.redoc.ly/redoc/logo-mini.svg"'
REDOC_NO_LOGO = b'"data:,"'

# blob: and data: for images the page made itself (results, SSE preview frames); nothing off-site.
PAGE_CSP = (
    "default-src 'self'; img-src 'self' blob: data:; object-src 'none'; base-uri 'none'; "
    "form-action 'self'; frame-ancestors 'none'"
)


def docs_assets_dir() -> Path:
    """The folder of Swagger UI and ReDoc files inside the installed ``fastapi-offline`` package."""
    folder = Path(str(importlib.resources.files("fastapi_offline") / "static"))
    if not (folder / "swagger-ui-bundle.js").is_file() or not (folder / "redoc.standalone.js").is_file():
        raise RuntimeError(f"fastapi-offline is installed without its docs assets (looked in {folder})")
    return folder


@functools.cache
def redoc_bundle() -> bytes:
    """ReDoc's standalone bundle without its one off-site request (the sidebar logo); read once."""
    return (docs_assets_dir() / "redoc.standalone.js").read_bytes().replace(REDOC_OFFSITE_LOGO, REDOC_NO_LOGO)


def install_pages(app: FastAPI) -> None:
    """Add ``/``, ``/ui/...``, ``/docs``, ``/docs/oauth2-redirect`` and ``/redoc`` to ``app``.

    ``app`` must be created with ``docs_url=None, redoc_url=None`` so FastAPI's CDN pages are not there.
    """
    assets = DOCS_ASSETS_PREFIX
    openapi_url = app.openapi_url or "/openapi.json"

    @app.api_route("/", methods=["GET", "HEAD"], include_in_schema=False)  # HEAD: uptime checks, curl -I
    def index() -> FileResponse:
        # no-cache: a new server version's page must not run against an old cached script
        headers = {"Content-Security-Policy": PAGE_CSP, "Cache-Control": "no-cache"}
        return FileResponse(STATIC_DIR / "index.html", media_type="text/html", headers=headers)

    # Registered before the /ui mount: routes match in order, and the mount would answer 404 for it.
    @app.get(f"{UI_PREFIX}/config.json", include_in_schema=False)
    def ui_config() -> JSONResponse:
        """What the page offers that ``/v1`` does not list: the saliency methods."""
        from service.core.saliency import METHODS  # torch-heavy; imported when asked, like the data plane

        return JSONResponse(
            {"saliency_methods": list(METHODS), "saliency_default": DEFAULT_SALIENCY_METHOD},
            headers={"Cache-Control": "no-cache"},
        )

    @app.get(DOCS_URL, include_in_schema=False)
    def swagger_ui(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "")
        return get_swagger_ui_html(
            openapi_url=f"{root}{openapi_url}",
            title=f"{app.title} - Swagger UI",
            oauth2_redirect_url=f"{root}{OAUTH2_REDIRECT_URL}",
            swagger_js_url=f"{root}{assets}/swagger-ui-bundle.js",
            swagger_css_url=f"{root}{assets}/swagger-ui.css",
            swagger_favicon_url=f"{root}{assets}/favicon.png",
            # validatorUrl None: Swagger UI would otherwise send the spec to an online validator
            swagger_ui_parameters={**(app.swagger_ui_parameters or {}), "validatorUrl": None},
        )

    @app.get(OAUTH2_REDIRECT_URL, include_in_schema=False)
    def swagger_ui_redirect() -> HTMLResponse:
        return get_swagger_ui_oauth2_redirect_html()

    @app.get(f"{assets}/redoc.standalone.js", include_in_schema=False)  # before the mount, as above
    def redoc_js() -> Response:
        return Response(
            redoc_bundle(), media_type="text/javascript", headers={"Cache-Control": "max-age=3600"}
        )

    @app.get(REDOC_URL, include_in_schema=False)
    def redoc(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "")
        return get_redoc_html(
            openapi_url=f"{root}{openapi_url}",
            title=f"{app.title} - ReDoc",
            redoc_js_url=f"{root}{assets}/redoc.standalone.js",
            redoc_favicon_url=f"{root}{assets}/favicon.png",
            with_google_fonts=False,
        )

    app.mount(UI_PREFIX, StaticFiles(directory=STATIC_DIR), name="ui")
    app.mount(assets, StaticFiles(directory=docs_assets_dir()), name="docs-assets")
