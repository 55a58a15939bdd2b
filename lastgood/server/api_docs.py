"""``/docs``: the API browsable in Swagger UI, with every asset served by this server.

FastAPI's own ``/docs`` loads Swagger UI's script and style sheet from a CDN, so on a machine
without internet (where lastgood often runs) the page stays blank. Here the page is FastAPI's
(:func:`fastapi.openapi.docs.get_swagger_ui_html`), but its script, style sheet and icon come
from the ``fastapi-swagger`` package (Swagger UI's release files, Apache-2.0, pinned in the
``server`` extra) under ``/docs/assets/``. The online validator badge is off, so the page asks
nothing of any other host; a Content-Security-Policy says so to the browser too.
"""

from __future__ import annotations

from functools import cache
from importlib import resources

from fastapi import APIRouter, Request
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import Response

from lastgood.errors import NotFoundError, ServerError

router = APIRouter(include_in_schema=False)

ASSETS = "/docs/assets"
# name → media type: the only files served (never a path taken from the request)
FILES = {
    "swagger-ui-bundle.js": "text/javascript; charset=utf-8",
    "swagger-ui.css": "text/css; charset=utf-8",
    "favicon-32x32.png": "image/png",
}
# Swagger UI sets inline styles and an inline start script, and draws icons as data: images.
POLICY = (
    "default-src 'none'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; connect-src 'self'; font-src 'self'; frame-ancestors 'none'; "
    "base-uri 'none'; form-action 'none'"
)


@router.get("/docs")
async def swagger_ui(request: Request) -> Response:
    """The Swagger UI page for ``/openapi.json`` (behind a proxy prefix too)."""
    prefix = request.scope.get("root_path", "").rstrip("/")
    page = get_swagger_ui_html(
        openapi_url=f"{prefix}/openapi.json",
        title="lastgood API",
        swagger_js_url=f"{prefix}{ASSETS}/swagger-ui-bundle.js",
        swagger_css_url=f"{prefix}{ASSETS}/swagger-ui.css",
        swagger_favicon_url=f"{prefix}{ASSETS}/favicon-32x32.png",
        swagger_ui_parameters={"validatorUrl": None},  # its badge would ask another host
    )
    page.headers["Content-Security-Policy"] = POLICY
    page.headers["Cache-Control"] = "no-cache"
    return page


@router.get(ASSETS + "/{name}")
async def swagger_asset(name: str) -> Response:
    """One of Swagger UI's files, from the installed package."""
    media_type = FILES.get(name)
    if media_type is None:
        raise NotFoundError(f"/docs has no asset {name[:80]!r}",
                            hint=f"its assets are: {', '.join(FILES)}")  # fmt: skip
    return Response(asset(name), media_type=media_type,
                    headers={"Cache-Control": "public, max-age=86400"})  # fmt: skip


@cache
def asset(name: str) -> bytes:
    """The bytes of one Swagger UI file, read once; ServerError when the package is missing."""
    try:
        return (resources.files("fastapi_swagger") / "resources" / name).read_bytes()
    except (ModuleNotFoundError, OSError) as exc:
        raise ServerError(
            f"Swagger UI's {name} is not installed, so /docs cannot show the API",
            hint="install the server extra: pip install 'lastgood[server]' (it brings "
            "fastapi-swagger); /openapi.json works without it",
        ) from exc
