"""The access log (``lastgood serve --access-log``): one line per request, whichever code
answered it (the ASGI app through :class:`lastgood.server.runner.AccessLog`, or the config read
taken in the HTTP protocol, :mod:`lastgood.server.fastpath`). Never a query string, a header or
a body, so never a token."""

from __future__ import annotations

import logging

access_log = logging.getLogger("lastgood.access")


def log_access(
    client: tuple[str, int] | None, method: str, path: str, status: int | None, seconds: float
) -> None:
    """One access line: ``CLIENT METHOD PATH STATUS DURATION`` (``-`` when nothing was sent)."""
    where = f"{client[0]}:{client[1]}" if client else "-"
    access_log.info("%s %s %s %s %.1f ms", where, method, path,
                    status if status is not None else "-", seconds * 1000)  # fmt: skip
