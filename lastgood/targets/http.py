"""The ``http`` target: put a version live in a tool through its HTTP API, and read it back.

Many tools hold configuration behind a REST API: a workflow tool takes workflow JSON, a
prompt service keeps prompts under labels, a CRM holds a property. This target pushes a version
there without any script, on :class:`lastgood.targets.remote.RemoteTarget` (kept copies,
read-back, retries, drift, offline rollback, crash recovery come from it)::

    [env.production.target]
    type = "http"
    method = "PUT"
    url = "${TOOL_URL}/api/config/{env}"
    headers = { Authorization = "Bearer ${TOOL_TOKEN}", X-Version = "{version}" }
    live = { url = "${TOOL_URL}/api/config/{env}", pointer = "/config", label = "/version" }

- **Push** (:meth:`HttpTarget.push`): ``body = "bundle"`` sends the whole version as one JSON
  document ``{path: {"encoding", "content"}}``; ``body = "file"`` sends one request per file
  with its raw bytes (``{path}`` in the URL). A status outside ``expect`` is a TargetError with
  the method, the URL, the status and the start of the answer; no answer within ``timeout`` is
  one too. Retried (by the base class) only when ``idempotent``, which is true for PUT unless
  set otherwise: a PUT replaces, so sending it twice is harmless.
- **Live** (:meth:`HttpTarget.read_live`): a GET of ``live.url``; the part of the answer that
  ``live.pointer`` names is the configuration. When ``live.label`` names a field holding the
  label lastgood sent (``v12``), that label says which version is served; otherwise the
  pointed part's canonical JSON is hashed and compared with the same form of each kept version
  (:mod:`lastgood.targets._json_form`). A ``404`` or a ``null`` part means nothing is live.
- **Fetch**: the pointed part is written back as files, so drift shows a real diff.
- **Secrets**: ``${VAR}`` in the URL or headers is taken from the environment when a request
  is made, never stored; the values of those variables (and of any variable whose name looks
  secret) are replaced with ``***`` in every message.
"""

from __future__ import annotations

import json
import os
import urllib.parse
from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar

import httpx

from lastgood.errors import TargetError, TargetTimeoutError
from lastgood.targets import _fs, _json_form, _process
from lastgood.targets._http_settings import PLACEHOLDER, parse_options
from lastgood.targets.base import Release
from lastgood.targets.remote import RemoteTarget, state_folder
from lastgood.tls import verifying

ANSWER_CHARS = 300
"""How much of an error answer's body a message shows."""
UNMATCHED = "content matching no kept version"


class HttpTarget(RemoteTarget):
    """Push a version to a tool's HTTP API and read back, through a GET, what it serves."""

    type_name: ClassVar[str] = "http"
    readback_hint: ClassVar[str] = (
        "live.label must name the field where the tool keeps the {version} it was sent, or "
        "live.pointer the part of the answer that holds what was sent; see docs/targets.md"
    )

    def __init__(self, env: str, options: Mapping[str, Any], root: Path) -> None:
        self.settings = parse_options(options, f"env.{env}.target")
        state = state_folder(env, self.settings.state, root)
        super().__init__(env, options, root, state=state)
        self.idempotent = self.settings.idempotent
        self.keep = self.settings.keep
        self._forms: dict[str, str] = {}
        self._pushing: Release | None = None

    # ---- push -------------------------------------------------------------------------------

    def push(self, release: Release, folder: Path) -> None:
        """Send the kept files of ``release``: one JSON bundle, or one request per file."""
        files = self._kept_files(release.name, folder)
        fields = {
            "env": self.env,
            "version": f"v{release.version}",
            "release": release.name,
            "hash": release.content_hash,
        }
        self._pushing = release
        if self.settings.body == "bundle":
            body = _json_form.bundle_body(files)
            self._send(fields, body, "application/json")
            return
        if len(files) > 1 and "{path}" not in self.settings.url:
            raise TargetError(
                f"{release.name} has {len(files)} files, but the url of the http target of "
                f"{self.env} has no {{path}}: one request per file would all go to one place",
                hint='put {path} in url, or send the whole version with body = "bundle"',
            )
        for path in sorted(files):
            self._send({**fields, "path": path}, files[path], _content_type(path, files[path]))

    def _send(self, fields: dict[str, str], body: bytes, content_type: str) -> None:
        settings = self.settings
        headers = {"Content-Type": content_type, **self._fill_headers(settings.headers, fields)}
        url = self._fill(settings.url, fields, "url", in_url=True)
        response = self._request(settings.method, url, headers, body)
        if response.status_code not in settings.expect:
            raise TargetError(
                f"{settings.method} {self._shown(url)} for {self.env} answered "
                f"{response.status_code} {response.reason_phrase}{self._answer(response)}",
                hint=f"fix the tool or env.{self.env}.target in lastgood.toml (expect lists the "
                "statuses that mean done), then run the command again",
            )

    # ---- live -------------------------------------------------------------------------------

    def read_live(self) -> str:
        """The label the tool keeps, else the kept release whose comparable form equals the
        pointed part of the GET's answer, else a line naming no release; ``""`` for nothing."""
        seen: dict[str, tuple[Any, str | None] | None] = {}
        answers = self._live_answers(None, seen)
        if answers is None:
            return ""
        parts, labels = answers
        if labels:
            shown = sorted(set(labels))
            return shown[0] if len(shown) == 1 else f"labels disagree: {', '.join(shown)}"
        form = _live_form(parts)
        for release in self._candidates():
            paths = sorted(self.store.manifest(release.name))
            if self.settings.body == "file" and paths != sorted(parts):
                other = self._live_answers(paths, seen)  # a release with other files
                if other is not None and _live_form(other[0]) == self._form_hash(release):
                    return release.name
            elif self._form_hash(release) == form:
                return release.name
        return f"{UNMATCHED} (sha256 {form[:16]})"

    @property
    def can_fetch(self) -> bool:
        return True

    def fetch(self, folder: Path) -> None:
        """Write what the tool serves into ``folder`` (a copy of the kept files of the release
        it names): a file whose comparable form is unchanged keeps lastgood's bytes, so a tool
        that re-serialises JSON is not drift; a changed one gets the tool's value."""
        answers = self._live_answers()
        if answers is None:
            return
        for path, value in answers[0].items():
            target = folder / _fs.check_relative(path)
            kept = _fs.regular_file_bytes(target)
            if kept is not None and _json_form.of_bytes(kept) == _json_form.of_value(value):
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(_json_form.file_bytes(value))

    def _live_answers(
        self,
        paths: list[str] | None = None,
        seen: dict[str, tuple[Any, str | None] | None] | None = None,
    ) -> tuple[dict[str, Any], list[str]] | None:
        """Path → the pointed part of the tool's answer, and the labels it keeps; None when
        the tool holds nothing. One GET for a bundle; for ``body = "file"`` one per path of
        ``paths`` (default: :meth:`_reference_paths`), each path read once per ``seen``."""
        if self.settings.body == "bundle":
            got = self._get({"env": self.env})
            if got is None:
                return None
            part, label = got
            if not isinstance(part, dict):
                raise self._not_a_bundle(part)
            return {str(k): v for k, v in part.items()}, [label] if label else []
        seen = {} if seen is None else seen
        parts: dict[str, Any] = {}
        labels: list[str] = []
        for path in self._reference_paths() if paths is None else paths:
            if path not in seen:
                seen[path] = self._get({"env": self.env, "path": path})
            got = seen[path]
            if got is not None:
                parts[path] = got[0]
                labels += [got[1]] if got[1] else []
        return (parts, labels) if parts else None

    def _get(self, fields: dict[str, str]) -> tuple[Any, str | None] | None:
        """GET ``live.url``: the pointed part and the label, or None for 404 / a null part."""
        live = self.settings.live
        url = self._fill(live.url, fields, "live.url", in_url=True)
        headers = {"Accept": "application/json", **self._fill_headers(live.headers, fields)}
        response = self._request("GET", url, headers, None)
        if response.status_code == 404:
            return None
        if not 200 <= response.status_code < 300:
            raise TargetError(
                f"GET {self._shown(url)} (what {self.env} serves) answered "
                f"{response.status_code} {response.reason_phrase}{self._answer(response)}",
                hint=f"fix the tool or env.{self.env}.target.live in lastgood.toml",
            )
        try:
            document = json.loads(response.content)
        except ValueError:
            raise TargetError(
                f"GET {self._shown(url)} (what {self.env} serves) did not answer JSON"
                f"{self._answer(response)}",
                hint="live.url must answer JSON; live.pointer names the configuration in it",
            ) from None
        return self._pointed(document, url)

    def _pointed(self, document: Any, url: str) -> tuple[Any, str | None] | None:
        live = self.settings.live
        label = None
        if live.label is not None:
            try:
                found = _json_form.resolve(document, live.label)
            except KeyError:
                found = None
            label = str(found) if isinstance(found, str | int) and str(found) else None
        try:
            part = _json_form.resolve(document, live.pointer)
        except KeyError:
            raise TargetError(
                f"the answer of GET {self._shown(url)} has nothing at {live.pointer!r}",
                hint="set live.pointer to the part of the answer that is the configuration "
                '("" for the whole answer)',
            ) from None
        return None if part is None else (part, label)

    def _reference_paths(self) -> list[str]:
        """The paths to GET one by one: those of the release being pushed, else of the one
        pushed last, else of the newest kept one."""
        for release in self._candidates():
            return sorted(self.store.manifest(release.name))
        return []

    def _candidates(self) -> list[Release]:
        """Kept releases, the one being pushed and the one pushed last first."""
        retained = self.store.retained()
        first = [r for r in (self._pushing, self.recorded()) if r is not None and r in retained]
        rest = sorted((r for r in retained if r not in first), key=lambda r: -r.version)
        return [*dict.fromkeys(first), *rest]

    def _form_hash(self, release: Release) -> str:
        """The hash of the comparable form of a kept release (cached: releases never change)."""
        if release.name not in self._forms:
            folder = self.store.release_path(release.name)
            files = self._kept_files(release.name, folder)
            self._forms[release.name] = _json_form.canonical_hash(
                {path: _json_form.of_bytes(data) for path, data in files.items()}
            )
        return self._forms[release.name]

    def _kept_files(self, name: str, folder: Path) -> dict[str, bytes]:
        files = {}
        for path in sorted(self.store.manifest(name)):
            data = _fs.regular_file_bytes(folder / path)
            if data is not None:
                files[path] = data
        return files

    def _not_a_bundle(self, part: Any) -> TargetError:
        return TargetError(
            f"the tool of {self.env} answered {type(part).__name__} at "
            f"{self.settings.live.pointer!r}, not an object of paths",
            hint='with body = "bundle", live.pointer must name the bundle {path: content} '
            "in the answer of live.url",
        )

    # ---- requests, templates, secrets -------------------------------------------------------

    def _request(
        self, method: str, url: str, headers: dict[str, str], body: bytes | None
    ) -> httpx.Response:
        """One request under ``timeout``; a timeout or a transport failure is a TargetError."""
        timeout = self.settings.timeout
        try:
            with httpx.Client(timeout=timeout, verify=verifying()) as client:
                return client.request(method, url, headers=headers, content=body)
        except httpx.TimeoutException:
            raise TargetTimeoutError(
                f"{method} {self._shown(url)} for {self.env} gave no answer within {timeout:g} s",
                hint="see why the tool is slow, or raise target.timeout in lastgood.toml",
            ) from None
        except httpx.HTTPError as exc:
            raise TargetError(
                f"{method} {self._shown(url)} for {self.env} failed: "
                f"{self._mask(str(exc) or type(exc).__name__)}",
                hint="is the tool up and the URL right? 'lastgood status' reads it back",
            ) from None

    def _fill_headers(self, headers: Mapping[str, str], fields: dict[str, str]) -> dict[str, str]:
        return {
            name: self._fill(value, fields, f"headers.{name}", in_url=False)
            for name, value in headers.items()
        }

    def _fill(self, template: str, fields: dict[str, str], where: str, *, in_url: bool) -> str:
        """``template`` with ``${VAR}`` from the environment and ``{field}`` filled in."""

        def one(match: Any) -> str:
            variable, field = match.group(1), match.group(2)
            if variable is not None:
                value = os.environ.get(variable)
                if value is None:
                    raise TargetError(
                        f"env.{self.env}.target.{where} uses ${{{variable}}}, which is not set "
                        "in the environment (a configuration error)",
                        hint=f"export {variable}=… where lastgood runs",
                    )
                return value
            value = fields.get(field, "")
            return urllib.parse.quote(value, safe="/") if in_url else value

        return PLACEHOLDER.sub(one, template)

    def _secrets(self) -> list[str]:
        """Values never shown: of every variable the templates use, and of secret-looking
        names."""
        used = {
            match.group(1)
            for template in self._templates()
            for match in PLACEHOLDER.finditer(template)
            if match.group(1)
        }
        values = {os.environ[name] for name in used if len(os.environ.get(name, "")) >= 4}
        values.update(_process.secret_values(os.environ))
        return sorted(values, key=len, reverse=True)

    def _templates(self) -> list[str]:
        settings = self.settings
        return [*settings.headers.values(), *settings.live.headers.values()]

    def _mask(self, text: str) -> str:
        return _process.mask(text, self._secrets())

    def _shown(self, url: str) -> str:
        """The URL for a message: secret values masked, the query string dropped."""
        return self._mask(url.split("?", 1)[0])

    def _answer(self, response: httpx.Response) -> str:
        text = response.content[:ANSWER_CHARS].decode("utf-8", errors="replace").strip()
        if not text:
            return ""
        more = "…" if len(response.content) > ANSWER_CHARS else ""
        return f"; the answer: {self._mask(' '.join(text.split()))}{more}"

    def describe(self) -> str:
        shown = f"{self.settings.method} {self.settings.url}"
        return f"http {shown if len(shown) <= 60 else shown[:57] + '...'}"


def _live_form(parts: Mapping[str, Any]) -> str:
    """The hash of the comparable form of what the tool returned, path by path."""
    return _json_form.canonical_hash(
        {path: _json_form.of_value(value) for path, value in parts.items()}
    )


def _content_type(path: str, data: bytes) -> str:
    if path.endswith(".json"):
        return "application/json"
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return "application/octet-stream"
    return "text/plain; charset=utf-8"
