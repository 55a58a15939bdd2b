"""Small real HTTP services that behave like the tools of the ``http`` target's recipes.

A plain module (not a conftest), like :mod:`tests.scoring_api`. Each holds its state behind an
API key or a bearer token and misbehaves on demand (``mode``): ``"slow"`` answers everything
after ``delay`` seconds, ``"slow-writes"`` only writes so (and still applies them after the
client gave up), ``"error"`` answers 500 to every write.

**Workflow tool** (takes workflow JSON over REST; the GET wraps it in metadata)::

    PUT /api/v1/workflows/{name}   body = JSON, header X-Version = label   (X-API-KEY)
    GET /api/v1/workflows/{name}   {"id", "name", "versionTag", "updatedAt", "config": body}

**Prompt service** (prompts with versions and labels; each POST makes a new version)::

    POST /api/prompts/{path}/versions?label=L  body = text, header X-Commit = message (bearer)
    GET  /api/prompts/{path}?label=L           {"name", "version", "labels", "prompt", "commit"}
"""

from __future__ import annotations

import json
import re
import threading
import time
import urllib.parse
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler
from typing import Any

from tests.http_fakes import running

WORKFLOW_KEY = "wf-api-key-5b9d17c3e2"
PROMPT_TOKEN = "pr-token-0c4e8a91f6"


class ToolApi:
    """State shared by a service's handler threads; ``kind`` is "workflow" or "prompts"."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self.workflows: dict[str, dict[str, Any]] = {}
        self.prompts: dict[str, list[dict[str, Any]]] = {}
        self.labels: dict[tuple[str, str], int] = {}
        self.mode = "normal"
        self.delay = 0.0
        self.writes: list[str] = []
        self.seen_headers: list[dict[str, str]] = []
        self.lock = threading.Lock()
        self.url = ""

    def edit_workflow(self, name: str, config: Any) -> None:
        """Change a workflow's config in the tool's editor (its version tag stays)."""
        with self.lock:
            self.workflows[name]["config"] = config

    def publish_prompt(self, path: str, text: str, label: str, commit: str = "") -> None:
        """Publish a prompt version in the tool's UI and move ``label`` to it."""
        with self.lock:
            self._add_prompt(path, text, label, commit)

    def _add_prompt(self, path: str, text: str, label: str, commit: str) -> None:
        versions = self.prompts.setdefault(path, [])
        versions.append({"prompt": text, "commit": commit, "version": len(versions) + 1})
        self.labels[(path, label)] = len(versions)

    def prompt(self, path: str, label: str) -> dict[str, Any] | None:
        number = self.labels.get((path, label))
        return None if number is None else self.prompts[path][number - 1]


def _handler(api: ToolApi) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:
            return

        def _answer(self, code: int, body: Any) -> None:
            data = json.dumps(body).encode() + b"\n"
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _allowed(self) -> bool:
            api.seen_headers.append(dict(self.headers.items()))
            if api.mode == "slow" or (api.mode == "slow-writes" and self.command != "GET"):
                time.sleep(api.delay)
            if api.kind == "workflow":
                ok = self.headers.get("X-API-KEY") == WORKFLOW_KEY
            else:
                ok = self.headers.get("Authorization") == f"Bearer {PROMPT_TOKEN}"
            if not ok:
                self._answer(401, {"error": "unauthorized"})
            return ok

        def _body(self) -> bytes:
            return self.rfile.read(int(self.headers.get("Content-Length", "0")))

        def do_GET(self) -> None:
            if not self._allowed():
                return
            parsed = urllib.parse.urlsplit(self.path)
            query = dict(urllib.parse.parse_qsl(parsed.query))
            with api.lock:
                found = _read(api, urllib.parse.unquote(parsed.path), query)
            self._answer(200, found) if found is not None else self._answer(404, {"error": "none"})

        def _write(self) -> None:
            if not self._allowed():
                return
            body = self._body()
            if api.mode == "error":
                self._answer(500, {"error": "database is read-only", "echo": dict(self.headers)})
                return
            parsed = urllib.parse.urlsplit(self.path)
            query = dict(urllib.parse.parse_qsl(parsed.query))
            with api.lock:
                code, answer = _write(api, urllib.parse.unquote(parsed.path), query, self, body)
            self._answer(code, answer)

        do_PUT = _write
        do_POST = _write

    return Handler


_WORKFLOW = re.compile(r"^/api/v1/workflows/([\w.-]+)$")
_PROMPT = re.compile(r"^/api/prompts/(.+?)(/versions)?$")


def _read(api: ToolApi, path: str, query: dict[str, str]) -> Any:
    if api.kind == "workflow" and (match := _WORKFLOW.match(path)):
        return api.workflows.get(match.group(1))
    if api.kind == "prompts" and (match := _PROMPT.match(path)) and not match.group(2):
        label = query.get("label", "latest")
        found = api.prompt(match.group(1), label)
        if found is None:
            return None
        labels = [lab for (p, lab), n in api.labels.items() if p == match.group(1)]
        return {"name": match.group(1), "labels": sorted(labels), **found}
    return None


def _write(
    api: ToolApi, path: str, query: dict[str, str], request: BaseHTTPRequestHandler, body: bytes
) -> tuple[int, Any]:
    if api.kind == "workflow" and request.command == "PUT" and (match := _WORKFLOW.match(path)):
        try:
            config = json.loads(body)
        except ValueError:
            return 400, {"error": "workflow JSON expected"}
        tag = request.headers.get("X-Version", "")
        api.workflows[match.group(1)] = {
            "id": match.group(1),
            "name": match.group(1),
            "versionTag": tag,
            "updatedAt": time.time(),
            "config": config,
        }
        api.writes.append(tag)
        return 200, {"ok": True}
    match = _PROMPT.match(path) if api.kind == "prompts" and request.command == "POST" else None
    if match is not None and match.group(2):
        commit = request.headers.get("X-Commit", "")
        api._add_prompt(match.group(1), body.decode(), query.get("label", "latest"), commit)
        api.writes.append(f"{match.group(1)}@{commit}")
        return 201, {"version": len(api.prompts[match.group(1)])}
    return 404, {"error": "not found"}


@contextmanager
def serving(kind: str) -> Iterator[ToolApi]:
    """Run one service on 127.0.0.1 (a free port) for the duration of the block."""
    api = ToolApi(kind)
    with running(_handler(api)) as url:
        api.url = url
        yield api
