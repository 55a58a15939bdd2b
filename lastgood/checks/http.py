"""``type = "http"``: is the service answering, and is its answer what we expect?

One request per probe, with the check's timeout. The probe passes when the status matches (any
2xx unless ``status`` says otherwise), the body contains ``contains``, the JSON body has the
values in ``json`` and the bounds in ``json_min`` / ``json_max``, and the answer came within
``max_latency``. ``value`` names the number the check measures (a dotted path into the JSON
answer, as in ``json_min``), which ``max_drop`` / ``max_rise`` compare with its baseline; an
answer without that number fails. Every problem found is reported, each with what was expected
and what was seen, so one failed round tells the whole story. Reads only; redirects are not
followed, so a health endpoint that starts redirecting to a login page shows up as a failure.
"""

from __future__ import annotations

import json
import time
from typing import Any

import httpx

from lastgood.checks.base import (
    MISSING,
    Check,
    CheckContext,
    CheckResult,
    number_at,
    reject_unknown_options,
    value_at,
)
from lastgood.config import CheckSpec
from lastgood.errors import ConfigError
from lastgood.tls import verifying
from lastgood.units import parse_duration

_OPTIONS = (
    "url",
    "method",
    "status",
    "contains",
    "json",
    "json_min",
    "json_max",
    "max_latency",
    "headers",
    "value",
)
_BODY_EXCERPT = 120


class HttpCheck(Check):
    """Probe an HTTP endpoint once and compare its answer with the configured expectations."""

    type_name = "http"

    def __init__(self, spec: CheckSpec) -> None:
        """Validate every option now, so a typo stops the deploy before anything goes live."""
        super().__init__(spec)
        options = spec.options
        reject_unknown_options(spec, _OPTIONS)
        self.url = _require_url(spec)
        self.method = _string(spec, "method", "GET").upper()
        self.statuses = _statuses(spec)
        self.contains = options.get("contains")
        if self.contains is not None and not isinstance(self.contains, str):
            raise _option_error(spec, "contains", "must be text", 'write contains = "ok"')
        self.json_equals = _table(spec, "json")
        self.json_min = _number_table(spec, "json_min")
        self.json_max = _number_table(spec, "json_max")
        self.headers = _headers(spec)
        self.value = _value_path(spec)
        latency = options.get("max_latency")
        where = f"check {spec.name!r} max_latency"
        self.max_latency = None if latency is None else parse_duration(latency, name=where)

    @property
    def measures_value(self) -> bool:
        return self.value is not None

    @property
    def value_name(self) -> str:
        return self.value or "value"

    def probe(self, context: CheckContext) -> CheckResult:
        """Send the request and judge the answer; a transport error is a failed result."""
        started = time.monotonic()
        try:
            proxies_allowed = not _is_loopback(self.url)
            with httpx.Client(timeout=self.spec.timeout, trust_env=proxies_allowed,
                              verify=verifying(proxies_allowed)) as client:  # fmt: skip
                response = client.request(self.method, self.url, headers=self.headers)
        except httpx.TimeoutException:
            return self._failed(f"no answer within {self.spec.timeout:g} s")
        except httpx.HTTPError as exc:
            return self._failed(f"{type(exc).__name__}: {exc}")
        latency = time.monotonic() - started
        seen = f"{self.method} {self.url} → {response.status_code}"
        status_ok = self._status_ok(response.status_code)
        if not status_ok:
            seen += f" (expected {self._expected_status()})"
        problems = self._judge(response, latency)
        if status_ok and not problems:
            return self._result(True, f"{seen} in {_milliseconds(latency)}", response, latency)
        detail = f"{seen}: {'; '.join(problems)}" if problems else seen
        return self._result(False, detail, response, latency)

    def _judge(self, response: httpx.Response, latency: float) -> list[str]:
        """Every way the body or timing differs from what the config expects, as phrases."""
        problems: list[str] = []
        if self.max_latency is not None and latency > self.max_latency:
            took, limit = _milliseconds(latency), _milliseconds(self.max_latency)
            problems.append(f"took {took} (expected ≤ {limit})")
        if self.contains is not None and self.contains not in response.text:
            excerpt = _excerpt(response.text)
            problems.append(f"body does not contain {self.contains!r} (body: {excerpt})")
        if self.json_equals or self.json_min or self.json_max or self.value:
            problems.extend(self._judge_json(response))
        return problems

    def _judge_json(self, response: httpx.Response) -> list[str]:
        """Compare the JSON body with ``json``, ``json_min`` and ``json_max``."""
        try:
            document = json.loads(response.content)
        except ValueError:
            return [f"body is not JSON (body: {_excerpt(response.text)})"]
        problems = [
            problem
            for path, expected in self.json_equals.items()
            if (problem := _compare_equal(document, path, expected))
        ]
        for path, bound in self.json_min.items():
            problems.extend(_compare_bound(document, path, bound, "≥"))
        for path, bound in self.json_max.items():
            problems.extend(_compare_bound(document, path, bound, "≤"))
        if self.value is not None and number_at(document, self.value) is None:
            shown = value_at(document, self.value)
            seen = "is missing" if shown is MISSING else f"= {_show(shown)} is not a number"
            problems.append(f"json {self.value} {seen} (the value this check measures)")
        return problems

    def _status_ok(self, status: int) -> bool:
        if self.statuses is None:
            return 200 <= status < 300
        return status in self.statuses

    def _expected_status(self) -> str:
        if self.statuses is None:
            return "2xx"
        return " or ".join(str(status) for status in self.statuses)

    def _failed(self, problem: str) -> CheckResult:
        return CheckResult(self.name, False, f"{self.method} {self.url} → {problem}")

    def _result(
        self, ok: bool, detail: str, response: httpx.Response, latency: float
    ) -> CheckResult:
        data: dict[str, Any] = {"status": response.status_code, "latency": latency}
        if self.value is not None:
            data["value"] = _measured(response, self.value)
        return CheckResult(self.name, ok, detail, data=data)


def _measured(response: httpx.Response, path: str) -> float | None:
    """The number at ``path`` in the JSON answer, or None."""
    try:
        return number_at(json.loads(response.content), path)
    except ValueError:
        return None


def _compare_equal(document: Any, path: str, expected: Any) -> str | None:
    """A phrase when the value at ``path`` is not ``expected`` (``True`` never equals ``1``)."""
    actual = value_at(document, path)
    if actual is MISSING:
        return f"json {path} is missing (expected {_show(expected)})"
    same_kind = isinstance(actual, bool) == isinstance(expected, bool)
    if same_kind and actual == expected:
        return None
    return f"json {path} = {_show(actual)} (expected {_show(expected)})"


def _compare_bound(document: Any, path: str, bound: float, sign: str) -> list[str]:
    """Phrases when the value at ``path`` is missing, not a number, or beyond ``bound``."""
    actual = value_at(document, path)
    if actual is MISSING:
        return [f"json {path} is missing (expected {sign} {bound:g})"]
    if isinstance(actual, bool) or not isinstance(actual, int | float):
        return [f"json {path} = {_show(actual)} is not a number (expected {sign} {bound:g})"]
    if (actual < bound) if sign == "≥" else (actual > bound):
        return [f"json {path} = {_show(actual)} (expected {sign} {bound:g})"]
    return []


def _show(value: Any) -> str:
    """JSON spelling, so people see ``"3"`` and ``3`` and ``null`` as they differ."""
    return _excerpt(json.dumps(value, ensure_ascii=False, default=str))


def _excerpt(text: str) -> str:
    text = " ".join(text.split())
    if len(text) > _BODY_EXCERPT:
        return text[:_BODY_EXCERPT] + "…"
    return text or "(empty)"


def _milliseconds(seconds: float) -> str:
    return f"{seconds * 1000:.0f} ms"


def _require_url(spec: CheckSpec) -> str:
    url = spec.options.get("url")
    if not isinstance(url, str) or not url.startswith(("http://", "https://")):
        raise _option_error(
            spec,
            "url",
            "is missing" if url is None else f"= {url!r} is not an http(s) URL",
            'write url = "http://127.0.0.1:8080/health"',
        )
    return url


def _string(spec: CheckSpec, key: str, default: str) -> str:
    value = spec.options.get(key, default)
    if not isinstance(value, str) or not value:
        raise _option_error(spec, key, f"= {value!r} must be text", f'write {key} = "{default}"')
    return value


def _statuses(spec: CheckSpec) -> tuple[int, ...] | None:
    """``status`` as a tuple of codes, or None for "any 2xx"."""
    value = spec.options.get("status")
    if value is None:
        return None
    codes = value if isinstance(value, list) else [value]
    valid = all(isinstance(c, int) and not isinstance(c, bool) and 100 <= c <= 599 for c in codes)
    if not codes or not valid:
        raise _option_error(
            spec, "status", f"= {value!r} is not a status code", "write status = 200 or [200, 204]"
        )
    return tuple(codes)


def _table(spec: CheckSpec, key: str) -> dict[str, Any]:
    value = spec.options.get(key, {})
    if not isinstance(value, dict):
        raise _option_error(
            spec, key, "must be a table of dotted paths", f'write {key} = {{ "data.count" = 3 }}'
        )
    return dict(value)


def _number_table(spec: CheckSpec, key: str) -> dict[str, float]:
    table = _table(spec, key)
    for path, bound in table.items():
        if isinstance(bound, bool) or not isinstance(bound, int | float):
            hint = f'write {key} = {{ "{path}" = 1 }}'
            raise _option_error(spec, key, f"{path} = {bound!r} is not a number", hint)
    return table


def _value_path(spec: CheckSpec) -> str | None:
    value = spec.options.get("value")
    if value is not None and (not isinstance(value, str) or not value.strip()):
        hint = 'write value = "scores.mean" (a dotted path to a number in the JSON answer)'
        raise _option_error(spec, "value", f"= {value!r} must be a dotted path", hint)
    return value


def _headers(spec: CheckSpec) -> dict[str, str]:
    table = _table(spec, "headers")
    if not all(isinstance(value, str) for value in table.values()):
        raise _option_error(
            spec, "headers", "values must be text", 'write headers = { Authorization = "Bearer …" }'
        )
    return table


def _option_error(spec: CheckSpec, key: str, problem: str, hint: str) -> ConfigError:
    return ConfigError(f"http check {spec.name!r}: {key} {problem}", hint=hint)


def _is_loopback(url: str) -> bool:
    """Loopback checks never go through HTTP_PROXY: a proxy cannot reach our 127.0.0.1."""
    import ipaddress
    from urllib.parse import urlsplit

    host = (urlsplit(url).hostname or "").lower()
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
