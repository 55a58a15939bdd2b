"""The options of an ``http`` target, checked completely when ``lastgood.toml`` is read.

Every option is checked once, before any command runs, so a misspelt key or a template naming a
placeholder that does not exist stops every command with exit 2 and a suggestion, never a
request half-built at deploy time. Templates are kept as written: ``${VAR}`` (a value from the
environment, such as a token) is filled in only when a request is made, so secrets never reach
the config dump, the ledger or a message (see :mod:`lastgood.targets.http`).

Reads nothing but the options; writes nothing.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Mapping
from typing import Any

from lastgood.errors import ConfigError
from lastgood.record import Record
from lastgood.targets import _fs
from lastgood.units import parse_duration

OPTIONS = (
    "url",
    "method",
    "body",
    "headers",
    "expect",
    "timeout",
    "idempotent",
    "live",
    "keep",
    "state",
)
LIVE_OPTIONS = ("url", "pointer", "label", "headers")
METHODS = ("PUT", "POST", "PATCH")
BODIES = ("bundle", "file")
PUSH_FIELDS = ("env", "version", "release", "hash", "path")
LIVE_FIELDS = ("env", "path")
DEFAULT_TIMEOUT = "30s"
DEFAULT_POINTER = "/config"
DEFAULT_EXPECT = tuple(range(200, 300))
PLACEHOLDER = re.compile(r"\$\{([^}]*)\}|\{([^}]*)\}")
_VARIABLE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_EXAMPLE = (
    'target = { type = "http", url = "${TOOL_URL}/config/{env}", '
    'live = { url = "${TOOL_URL}/config/{env}" } }'
)


class LiveSettings(Record):
    """How to read back what the tool serves: a GET, and where in its answer to look."""

    url: str
    pointer: str
    label: str | None
    headers: dict[str, str]


class HttpSettings(Record):
    """The checked options of one ``http`` target."""

    url: str
    method: str
    body: str
    headers: dict[str, str]
    expect: tuple[int, ...]
    timeout: float
    idempotent: bool
    live: LiveSettings
    keep: int
    state: str | None


def parse_options(options: Mapping[str, Any], key: str) -> HttpSettings:
    """Check every option of an ``http`` target; ``key`` (``env.prod.target``) names them in
    errors. Called when ``lastgood.toml`` is read, and again when the target is built."""
    _reject_unknown(options, OPTIONS, key)
    if "url" not in options:
        raise ConfigError(f"{key} has no url", hint=f"write {_EXAMPLE}")
    if "live" not in options:
        raise ConfigError(
            f"{key} has no live table: lastgood must read back what the tool serves",
            hint=f"write {_EXAMPLE}",
        )
    method = _choice(options, "method", METHODS, "PUT", key).upper()
    body = _choice(options, "body", BODIES, "bundle", key)
    url = _template(options.get("url"), f"{key}.url", PUSH_FIELDS)
    headers = _headers(options.get("headers", {}), f"{key}.headers", PUSH_FIELDS)
    return HttpSettings(
        url=url,
        method=method,
        body=body,
        headers=headers,
        expect=_expect(options.get("expect"), f"{key}.expect"),
        timeout=_timeout(options, key),
        idempotent=_idempotent(options, key, method),
        live=_live(options.get("live"), f"{key}.live", headers),
        keep=_fs.option_keep(options, key),
        state=_state(options, key),
    )


def _reject_unknown(options: Mapping[str, Any], known: tuple[str, ...], key: str) -> None:
    for name in options:
        if name not in known:
            close = difflib.get_close_matches(name, known, n=1)
            hint = f"did you mean {key}.{close[0]}?" if close else f"known: {', '.join(known)}"
            raise ConfigError(f"unknown option {key}.{name} of an http target", hint=hint)


def _choice(
    options: Mapping[str, Any], name: str, allowed: tuple[str, ...], default: str, key: str
) -> str:
    value = options.get(name, default)
    if not isinstance(value, str) or value.lower() not in {a.lower() for a in allowed}:
        raise ConfigError(
            f"{key}.{name} = {value!r} is not one of {', '.join(allowed)}",
            hint=f'write {name} = "{default}"',
        )
    return value.lower() if name == "body" else value


def _template(value: Any, name: str, fields: tuple[str, ...]) -> str:
    """A string whose ``{field}`` placeholders are all known and whose ``${VAR}`` are names."""
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(f"{name} = {value!r} must be a non-empty string")
    for match in PLACEHOLDER.finditer(value):
        variable, field = match.group(1), match.group(2)
        if variable is not None and not _VARIABLE.match(variable):
            raise ConfigError(
                f"{name} holds ${{{variable}}}, which is not an environment variable name",
                hint="write ${NAME} with letters, digits and _",
            )
        if field is not None and field not in fields:
            close = difflib.get_close_matches(field, fields, n=1)
            hint = f"did you mean {{{close[0]}}}?" if close else f"known: {', '.join(fields)}"
            raise ConfigError(f"{name} holds an unknown placeholder {{{field}}}", hint=hint)
    return value


def _headers(value: Any, name: str, fields: tuple[str, ...]) -> dict[str, str]:
    if not isinstance(value, dict):
        raise ConfigError(
            f"{name} must be a table of header names and values",
            hint='write headers = { Authorization = "Bearer ${TOOL_TOKEN}" }',
        )
    return {str(k): _template(v, f"{name}.{k}", fields) for k, v in value.items()}


def _expect(value: Any, name: str) -> tuple[int, ...]:
    if value is None:
        return DEFAULT_EXPECT
    codes = [value] if isinstance(value, int) and not isinstance(value, bool) else value
    if (
        not isinstance(codes, list)
        or not codes
        or not all(isinstance(c, int) and not isinstance(c, bool) and 100 <= c < 600 for c in codes)
    ):
        raise ConfigError(
            f"{name} = {value!r} must be a status code or a list of them",
            hint="write expect = [200, 204] (the default is any 2xx)",
        )
    return tuple(codes)


def _timeout(options: Mapping[str, Any], key: str) -> float:
    timeout = parse_duration(options.get("timeout", DEFAULT_TIMEOUT), name=f"{key}.timeout")
    if timeout <= 0:
        raise ConfigError(f"{key}.timeout must be more than 0", hint='write timeout = "30s"')
    return timeout


def _idempotent(options: Mapping[str, Any], key: str, method: str) -> bool:
    """PUT replaces the document: sending it twice is harmless, so it is retried by default."""
    value = options.get("idempotent", method == "PUT")
    if not isinstance(value, bool):
        raise ConfigError(
            f"{key}.idempotent = {value!r} must be true or false",
            hint="true only when sending the same version twice is harmless",
        )
    return value


def _live(value: Any, key: str, push_headers: dict[str, str]) -> LiveSettings:
    if not isinstance(value, dict):
        raise ConfigError(
            f"{key} must be a table with the url to GET",
            hint='write live = { url = "${TOOL_URL}/config/{env}", pointer = "/config" }',
        )
    _reject_unknown(value, LIVE_OPTIONS, key)
    if "url" not in value:
        raise ConfigError(f"{key} has no url", hint=f"write {_EXAMPLE}")
    label = value.get("label")
    if label is not None:
        label = _pointer(label, f"{key}.label")
    headers = value.get("headers")
    return LiveSettings(
        url=_template(value["url"], f"{key}.url", LIVE_FIELDS),
        pointer=_pointer(value.get("pointer", DEFAULT_POINTER), f"{key}.pointer"),
        label=label,
        headers=push_headers
        if headers is None
        else _headers(headers, f"{key}.headers", LIVE_FIELDS),
    )


def _pointer(value: Any, name: str) -> str:
    """A JSON pointer (RFC 6901): ``""`` for the whole answer, else ``/a/b``."""
    if not isinstance(value, str) or (value and not value.startswith("/")):
        raise ConfigError(
            f"{name} = {value!r} is not a JSON pointer",
            hint='write "/config" (a field of the answer) or "" (the whole answer)',
        )
    return value


def _state(options: Mapping[str, Any], key: str) -> str | None:
    value = options.get("state")
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(f"{key}.state = {value!r} must be a folder path")
    return value
