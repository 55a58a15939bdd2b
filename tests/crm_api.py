"""A small real HTTP service that behaves like a CRM's settings / custom-property API.

A plain module (not a conftest), like :mod:`tests.tool_apis`: the CRM recipe's tests import it.
It holds settings objects whose custom properties are strings, behind a bearer token (401
without), shaped the way CRMs' v3 object APIs answer::

    GET   /crm/v3/objects/settings/{id}?properties=a,b   {"id", "properties": {a, b}, "updatedAt"}
    PATCH /crm/v3/objects/settings/{id}                  body {"properties": {...}}: a partial
                                                          update; answers the whole object

A GET without ``properties`` answers every property; a property asked for that the object does
not hold is ``null``. ``mode`` makes it misbehave the way real ones do: ``"slow"`` answers
everything after ``delay`` seconds, ``"error"`` answers 500 to every write, ``"rate-limited"``
answers 429 with ``Retry-After`` to every request. :meth:`CrmApi.edit_by_hand` changes a
property the way someone in the CRM's settings page would (drift). ``in_flight`` counts the
requests being answered, so a test can look at the machine while a command waits on the CRM.
"""

from __future__ import annotations

import json
import re
import threading
import time
import urllib.parse
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler
from typing import Any

from tests.http_fakes import running

TOKEN = "crm-pat-na1-6f0d2b7e-91c4"
OBJECT = "lead-scoring"

_SETTINGS = re.compile(r"^/crm/v3/objects/settings/([\w.-]+)$")


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class CrmApi:
    """The CRM's state, shared with its handler threads: object id -> its properties."""

    def __init__(self) -> None:
        self.objects: dict[str, dict[str, str | None]] = {OBJECT: {}}
        self.updated: dict[str, str] = {OBJECT: _now()}
        self.mode = "normal"
        self.delay = 0.0
        self.patches: list[dict[str, Any]] = []
        self.in_flight = 0
        self.lock = threading.Lock()
        self.url = ""

    def edit_by_hand(self, properties: dict[str, str], object_id: str = OBJECT) -> None:
        """Change properties in the CRM's settings page; ``lastgood_version`` is left alone."""
        with self.lock:
            self.objects[object_id].update(properties)
            self.updated[object_id] = _now()

    def property(self, name: str, object_id: str = OBJECT) -> str | None:
        """What the CRM holds for one property now."""
        with self.lock:
            return self.objects[object_id].get(name)

    def answer(self, object_id: str, names: list[str] | None) -> dict[str, Any]:
        """The object as the API returns it, with every property or only ``names``."""
        held = self.objects[object_id]
        shown = dict(held) if names is None else {name: held.get(name) for name in names}
        return {"id": object_id, "properties": shown, "updatedAt": self.updated[object_id]}

    def patch(self, object_id: str, body: bytes) -> tuple[int, dict[str, Any]]:
        """Apply a partial update of the properties given; the others stay as they are."""
        try:
            properties = json.loads(body)["properties"]
            if not isinstance(properties, dict):
                raise TypeError
        except (ValueError, KeyError, TypeError):
            return 400, {"status": "error", "message": 'expected {"properties": {...}}'}
        with self.lock:
            self.objects[object_id].update(
                {k: None if v is None else str(v) for k, v in properties.items()}
            )
            self.updated[object_id] = _now()
            self.patches.append(properties)
            return 200, self.answer(object_id, None)


def _handler(api: CrmApi) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:
            return

        def _answer(self, code: int, body: Any, headers: dict[str, str] | None = None) -> None:
            data = json.dumps(body).encode() + b"\n"
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(data)

        def _object(self) -> tuple[str, dict[str, str]] | None:
            """The object id asked for, when the request may be answered; else answers it."""
            if api.mode == "slow":
                time.sleep(api.delay)
            if self.headers.get("Authorization") != f"Bearer {TOKEN}":
                self._answer(401, {"status": "error", "category": "INVALID_AUTHENTICATION"})
                return None
            if api.mode == "rate-limited":
                self._answer(
                    429, {"status": "error", "category": "RATE_LIMITS"}, {"Retry-After": "1"}
                )
                return None
            parsed = urllib.parse.urlsplit(self.path)
            match = _SETTINGS.match(parsed.path)
            if match is None or match.group(1) not in api.objects:
                self._answer(404, {"status": "error", "category": "OBJECT_NOT_FOUND"})
                return None
            return match.group(1), dict(urllib.parse.parse_qsl(parsed.query))

        def _counted(self, answer: Any) -> None:
            with api.lock:
                api.in_flight += 1
            try:
                answer()
            finally:
                with api.lock:
                    api.in_flight -= 1

        def _get(self) -> None:
            found = self._object()
            if found is None:
                return
            object_id, query = found
            names = query["properties"].split(",") if query.get("properties") else None
            with api.lock:
                self._answer(200, api.answer(object_id, names))

        def _patch(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            found = self._object()
            if found is None:
                return
            if api.mode == "error":
                self._answer(500, {"status": "error", "message": "internal error, try later"})
                return
            self._answer(*api.patch(found[0], body))

        def do_GET(self) -> None:
            self._counted(self._get)

        def do_PATCH(self) -> None:
            self._counted(self._patch)

    return Handler


@contextmanager
def serving() -> Iterator[CrmApi]:
    """Run the CRM on 127.0.0.1 (a free port) for the duration of the block."""
    api = CrmApi()
    with running(_handler(api)) as url:
        api.url = url
        yield api
