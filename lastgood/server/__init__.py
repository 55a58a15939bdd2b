"""``lastgood serve``: the JSON API, live config for applications, and the web page.

FastAPI and uvicorn come with the ``server`` extra (``pip install 'lastgood[server]'``); nothing
else in lastgood imports this package, so the CLI and the SDK stay light without them.
"""

from __future__ import annotations

from lastgood.errors import ConfigError

INSTALL_HINT = "pip install 'lastgood[server]'"


def require_extra() -> None:
    """Stop with the install hint when the server's libraries are missing."""
    try:
        import fastapi  # noqa: F401
        import python_multipart  # noqa: F401  (FastAPI reads forms with it)
        import uvicorn  # noqa: F401
    except ImportError as exc:
        raise ConfigError(
            f"lastgood serve needs the server extra ({exc.name} is not installed)",
            hint=f"install it with: {INSTALL_HINT}",
        ) from exc
