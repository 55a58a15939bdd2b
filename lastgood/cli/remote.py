"""The CLI's side of ``--server URL``: the server's JSON API, called like the verbs it wraps.

Every method returns what the API returns, which has the shapes of the CLI's ``--json``, so the
commands render a server's answer with the same code as a local result. Errors come back as
``{"error", "hint", "exit_code"}``; they are raised again here as the :class:`LastgoodError` the
HTTP status stands for, carrying the server's exit code, so ``guarded`` prints them and exits
exactly as if the verb had run here. A server that cannot be reached, or something at the URL
that is not a lastgood server, is a :class:`ServerError` (exit 1) naming the URL; so is one that
drops the connection after it took a request (it stopped or crashed), which says that the
outcome of a change is unknown from here and where to look.

The token travels only in the ``Authorization`` header; it is scrubbed from anything printed.
Reads time out after 30 s; deploys, rollbacks, reverts, checks and drills answer when they are
done (a bake may last minutes), so those wait as long as it takes, once connected.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

import httpx

from lastgood import __version__, errors
from lastgood.address import parse_server_url
from lastgood.settings import mask_url

CONNECT_SECONDS = 10.0
READ_SECONDS = 30.0
READ = httpx.Timeout(READ_SECONDS, connect=CONNECT_SECONDS)
ACTION = httpx.Timeout(None, connect=CONNECT_SECONDS)  # a deploy answers after its bake

# The error class each status stands for (lastgood.errors gives every class its status).
_BY_STATUS: dict[int, type[errors.LastgoodError]] = {
    400: errors.UsageError,
    401: errors.AuthError,
    403: errors.ForbiddenError,
    404: errors.NotFoundError,
    409: errors.RefusedError,
    422: errors.RefusedError,
    423: errors.LockedError,
    502: errors.TargetError,
    503: errors.StoreError,
}
_BY_EXIT = {2: errors.UsageError, 5: errors.RefusedError}
_NOT_LASTGOOD = "is --server the address of 'lastgood serve' (scheme, host and port)?"


def display_url(url: str) -> str:
    """The server URL as it may be printed: no password, no trailing slash."""
    return mask_url(url).rstrip("/")


def _segment(text: str) -> str:
    return quote(text, safe="")


class Remote:
    """A lastgood server, reached with one HTTP connection pool for the whole command."""

    def __init__(self, url: str, token: str | None) -> None:
        url = url.strip()
        parse_server_url(url, what="--server", credentials=True)
        if token is not None and not (token.isascii() and token.isprintable()):
            raise errors.UsageError(
                "the API token has characters no lastgood token has",
                hint="copy the token again as 'lastgood token create' printed it",
            )
        self.url = url.strip().rstrip("/")
        self.shown = display_url(self.url)
        self.token = token
        self._http: httpx.Client | None = None

    # ---- the verbs ---------------------------------------------------------------------------

    def status(self, env: str | None) -> list[dict[str, Any]]:
        """Like ``status --json``: a list, even for one environment."""
        if env is None:
            return list(self._json("GET", "/envs"))
        return [self._json("GET", f"/envs/{_segment(env)}")]

    def history(self, env: str, limit: int) -> dict[str, Any]:
        return dict(self._json("GET", f"/envs/{_segment(env)}/history", params={"limit": limit}))

    def versions(self, limit: int) -> list[dict[str, Any]]:
        return list(self._json("GET", "/versions", params={"limit": limit}))

    def show(self, ref: str, path: str | None) -> tuple[dict[str, Any], dict[str, bytes]]:
        """A version and its files (or the one file ``path``), as ``operations.versions.show``."""
        data = self._json("GET", f"/versions/{_segment(ref)}")
        files = {name: self._decode(name, item) for name, item in data["files"].items()}
        if path is None:
            return data["version"], files
        if path not in files:
            label = f"v{data['version']['number']}"
            raise errors.NotFoundError(f"{label} has no file {path!r}",
                                       hint=f"'lastgood show {label}' lists its files")  # fmt: skip
        return data["version"], {path: files[path]}

    def diff(self, old: str, new: str) -> dict[str, Any]:
        return dict(self._json("GET", "/diff", params={"old": old, "new": new}))

    def upload(
        self, files: Mapping[str, bytes], message: str, *, git: Mapping[str, Any] | None = None
    ) -> dict[str, Any]:
        """Record ``files`` as a version on the server (as ``snapshot --json``), with the git
        commit they came from when there is one. Writes there."""
        body = {"files": {path: _encode(data) for path, data in sorted(files.items())},
                "message": message}  # fmt: skip
        body.update({key: value for key, value in (git or {}).items() if value is not None})
        return dict(self._json("POST", "/versions", body=body, timeout=ACTION))

    def deploy(self, env: str, body: dict[str, Any]) -> dict[str, Any]:
        return self._action(env, "deploy", body)

    def rollback(self, env: str, body: dict[str, Any]) -> dict[str, Any]:
        return self._action(env, "rollback", body)

    def revert(
        self, env: str, paths: list[str], message: str, source: str | None = None
    ) -> dict[str, Any]:
        """As ``revert --json``: the new version, ``taken``, and the outcome or the request."""
        body: dict[str, Any] = {"paths": paths, "message": message}
        if source is not None:
            body["from"] = source
        return self._action(env, "revert", body)

    def rollout(self, env: str) -> dict[str, Any]:
        return dict(self._json("GET", f"/envs/{_segment(env)}/rollout"))

    def steer_rollout(self, env: str, action: str, reason: str) -> dict[str, Any]:
        body = {"action": action, "message": reason}
        return self._action(env, "rollout", body)

    def check(self, env: str) -> dict[str, Any]:
        return self._action(env, "check", None)

    def drill(self, env: str, body: dict[str, Any]) -> dict[str, Any]:
        return self._action(env, "drill", body)

    def report(self, since: str, envs: list[str], fmt: str) -> str:
        """The digest as ``lastgood.report.render`` writes it (JSON indented the same way)."""
        params: dict[str, Any] = {"since": since, "format": fmt, "env": envs}
        if fmt == "json":
            return json.dumps(self._json("GET", "/report", params=params), indent=2) + "\n"
        return self._send("GET", "/report", params=params).text

    def tokens(self, include_revoked: bool) -> list[dict[str, Any]]:
        found = list(self._json("GET", "/tokens"))
        return [t for t in found if include_revoked or t.get("revoked_at") is None]

    def create_token(self, name: str, role: str, envs: list[str]) -> dict[str, Any]:
        """A new token, with its secret under ``token`` (shown once)."""
        body = {"name": name, "role": role, "envs": envs}
        return dict(self._json("POST", "/tokens", body=body))

    def revoke_token(self, token_id: int) -> dict[str, Any]:
        return dict(self._json("DELETE", f"/tokens/{token_id}"))

    # change requests: every step that may apply one (the last approval, on an environment that
    # applies on approval) waits as long as a deploy does

    def open_request(
        self,
        env: str,
        version: str,
        message: str,
        *,
        apply_at: float | None = None,
        emergency: bool = False,
    ) -> dict[str, Any]:
        body = {"version": version, "message": message, "apply_at": apply_at,
                "emergency": emergency}  # fmt: skip
        path = f"/envs/{_segment(env)}/requests"
        return dict(self._json("POST", path, body=body, timeout=ACTION))

    def requests(self, env: str | None, state: str | None, limit: int) -> list[dict[str, Any]]:
        params: dict[str, Any] = {"limit": limit}
        params.update({k: v for k, v in (("env", env), ("state", state)) if v is not None})
        return list(self._json("GET", "/requests", params=params))

    def request(self, number: int) -> dict[str, Any]:
        """One request as ``request show --json``: its view and its ``diff``."""
        return dict(self._json("GET", f"/requests/{number}"))

    def review_request(
        self, number: int, *, approve: bool, comment: str, content: str | None = None
    ) -> dict[str, Any]:
        """Approve or reject; with ``content``, only while the request holds that content."""
        verb = "approve" if approve else "reject"
        body: dict[str, Any] = {"message": comment}
        if content is not None:
            body["content_hash"] = content
        return self._request_step(number, verb, body)

    def update_request(self, number: int, version: str, message: str) -> dict[str, Any]:
        return self._request_step(number, "update", {"version": version, "message": message})

    def withdraw_request(self, number: int, message: str) -> dict[str, Any]:
        return self._request_step(number, "withdraw", {"message": message})

    def sign_off_request(self, number: int, comment: str) -> dict[str, Any]:
        return self._request_step(number, "signoff", {"message": comment})

    def apply_request(self, number: int) -> dict[str, Any]:
        """The outcome, as ``deploy`` through the server answers."""
        return self._request_step(number, "apply", None)

    def _request_step(self, number: int, verb: str, body: dict[str, Any] | None) -> dict[str, Any]:
        path = f"/requests/{number}/{verb}"
        return dict(self._json("POST", path, body=body, timeout=ACTION))

    def _action(self, env: str, verb: str, body: dict[str, Any] | None) -> dict[str, Any]:
        path = f"/envs/{_segment(env)}/{verb}"
        return dict(self._json("POST", path, body=body or {}, timeout=ACTION))

    # ---- HTTP --------------------------------------------------------------------------------

    def _json(self, method: str, path: str, **options: Any) -> Any:
        response = self._send(method, path, **options)
        try:
            return response.json()
        except ValueError:
            raise self._not_lastgood(response) from None

    def _send(
        self,
        method: str,
        path: str,
        *,
        params: dict[str, Any] | None = None,
        body: Any = None,
        timeout: httpx.Timeout = READ,
    ) -> httpx.Response:
        """One request; raises the server's error, or ServerError when there is no answer."""
        try:
            response = self._client().request(
                method, f"/api/v1{path}", params=params, json=body, timeout=timeout
            )
        except httpx.TimeoutException as exc:
            raise self._timed_out(exc) from None
        except (httpx.RemoteProtocolError, httpx.ReadError):  # sent, then the server went
            raise self._dropped(method, path) from None
        except httpx.HTTPError as exc:
            raise self._unreachable(exc) from None
        if response.status_code >= 400:
            raise self._error(response)
        return response

    def _client(self) -> httpx.Client:
        if self.token is None:
            raise errors.AuthError(
                "this needs an API token",
                hint="set LASTGOOD_TOKEN (or pass --token); an admin creates one with "
                "'lastgood token create'",
            )
        if self._http is None:
            headers = {"Authorization": f"Bearer {self.token}", "Accept": "application/json",
                       "User-Agent": f"lastgood-cli/{__version__}"}  # fmt: skip
            self._http = httpx.Client(base_url=self.url, headers=headers, timeout=READ)
        return self._http

    def close(self) -> None:
        if self._http is not None:
            self._http.close()

    # ---- errors ------------------------------------------------------------------------------

    def _scrub(self, text: str) -> str:
        return text.replace(self.token, "***") if self.token else text

    def _error(self, response: httpx.Response) -> errors.LastgoodError:
        """The server's ``{"error", "hint", "exit_code"}`` as the error the status stands for."""
        try:
            body = response.json()
        except ValueError:
            body = None
        if not isinstance(body, dict) or not isinstance(body.get("error"), str):
            return self._not_lastgood(response)
        code = body.get("exit_code")
        code = code if isinstance(code, int) and 0 < code < 126 else 1
        kind = _BY_STATUS.get(response.status_code, errors.LastgoodError)
        if kind.exit_code != code:
            kind = _BY_EXIT.get(code, errors.LastgoodError)
        hint = body.get("hint") if isinstance(body.get("hint"), str) else None
        error = kind(self._scrub(body["error"]), hint=self._scrub(hint) if hint else None)
        error.exit_code = code  # the server's word on how the CLI exits
        return error

    def _not_lastgood(self, response: httpx.Response) -> errors.ServerError:
        kind = response.headers.get("content-type", "no content type").split(";")[0]
        return errors.ServerError(
            f"{self.shown} answered HTTP {response.status_code} ({kind}), not lastgood's JSON",
            hint=_NOT_LASTGOOD,
        )

    def _unreachable(self, exc: httpx.HTTPError) -> errors.ServerError:
        reason = self._scrub(str(exc)) or type(exc).__name__
        if "CERTIFICATE_VERIFY_FAILED" in reason:
            return errors.ServerError(
                f"{self.shown} has a certificate this machine does not trust: {reason}",
                hint="set SSL_CERT_FILE to the CA that signed the server's certificate",
            )
        return errors.ServerError(
            f"cannot reach the lastgood server at {self.shown}: {reason}",
            hint="check that 'lastgood serve' runs there and that --server (or LASTGOOD_SERVER) "
            "is its address",
        )

    def _dropped(self, method: str, path: str) -> errors.ServerError:
        """The server took the request and closed the connection without an answer: it was
        stopped or crashed while it worked. A read can simply be tried again; a change (a
        deploy through the server runs there) may or may not have happened."""
        went = f"the lastgood server at {self.shown} closed the connection before it answered"
        if method == "GET":
            return errors.ServerError(
                f"{went} (it stopped or crashed)",
                hint="check that 'lastgood serve' runs there (its log says why it stopped), "
                "then try again",
            )
        what, env = _change_of(path)
        look = (
            f"'lastgood status {env}' shows what is live on {env} now (and closes a record the "
            f"crash left running), 'lastgood history {env}' what was recorded"
            if env
            else "'lastgood status' shows what is live, 'lastgood log' the versions recorded"
        )
        return errors.ServerError(
            f"{went} {what} (it stopped or crashed while it worked): whether it happened is "
            "unknown from here",
            hint=f"{look}; look there before you try again, with this server or without",
        )

    def _timed_out(self, exc: httpx.TimeoutException) -> errors.ServerError:
        if isinstance(exc, httpx.ConnectTimeout):
            return errors.ServerError(
                f"cannot reach the lastgood server at {self.shown}: no connection within "
                f"{CONNECT_SECONDS:.0f} s",
                hint="check the address, and that a firewall lets you reach it",
            )
        return errors.ServerError(
            f"the lastgood server at {self.shown} did not answer within {READ_SECONDS:.0f} s",
            hint="it may be overloaded or stuck: look at its log, then try again",
        )

    @staticmethod
    def _decode(path: str, item: Mapping[str, str]) -> bytes:
        if item.get("encoding") != "base64":
            return item.get("content", "").encode("utf-8")
        try:
            return base64.b64decode(item.get("content", ""), validate=True)
        except (binascii.Error, ValueError):
            raise errors.ServerError(f"the server sent {path!r} as invalid base64") from None


def _change_of(path: str) -> tuple[str, str | None]:
    """``the deploy of staging`` and ``staging`` for ``/envs/staging/deploy``; the request
    itself, and no environment, for any other path."""
    from urllib.parse import unquote

    parts = path.strip("/").split("/")
    if len(parts) == 3 and parts[0] == "envs":
        env = unquote(parts[1])
        return f"the {parts[2]} of {env}", env
    if parts[0] == "versions":
        return "the upload of the version", None
    return f"the request to /api/v1{path}", None


def _encode(data: bytes) -> dict[str, str]:
    """A file as the API takes it: UTF-8 text as is, anything else base64."""
    try:
        return {"encoding": "utf-8", "content": data.decode("utf-8")}
    except UnicodeDecodeError:
        return {"encoding": "base64", "content": base64.b64encode(data).decode("ascii")}
