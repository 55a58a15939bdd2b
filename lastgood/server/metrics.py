"""``/metrics`` (Prometheus text format) and ``/healthz``.

Figures are read from the store at scrape time by a custom collector, so they are right after a
restart and for changes made by other processes: deploys and rollbacks by environment, kind and
outcome, a restore time histogram, failed checks, and consumers by version.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.responses import Response

from lastgood.server.deps import State

router = APIRouter(tags=["operations"])


@router.get("/healthz", summary="Liveness: the server answers and its store is reachable")
def healthz(state: State) -> dict[str, Any]:
    state.project.store.head()  # raises StoreError (503) when the store is gone
    feeds = {
        env: (f.current.version if f.current else None) for env, f in state.feeds.feeds.items()
    }
    return {"ok": True, "served": feeds}


@router.get("/metrics", summary="Prometheus metrics", response_class=Response)
def metrics(state: State) -> Response:
    from lastgood.server.prometheus import render

    body, media = render(state)
    return Response(body, media_type=media)
