"""``[notify]`` and its ``[[notify.route]]`` tables of ``lastgood.toml``, checked when read.

Where each chosen event goes: destinations are apprise URLs with a scheme, events and
environments are ones that exist, an inline title parses as Jinja2 and a body template stays in
the workspace. What is sent, and how, is :mod:`lastgood.notify`'s.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from lastgood.config_tables import inside, reject_unknown, string_list
from lastgood.errors import ConfigError
from lastgood.record import Record
from lastgood.units import parse_duration

_NOTIFY_KEYS = {"timeout", "retries", "drain", "route"}
_ROUTE_KEYS = {"name", "to", "events", "envs", "format", "template", "title"}
FORMATS = ("text", "markdown", "html")


class Route(Record):
    """Where chosen events of chosen environments are sent (``[[notify.route]]``).

    ``events`` and ``envs`` empty mean the default event set and every environment.
    """

    name: str
    to: tuple[str, ...]
    events: tuple[str, ...] = ()
    envs: tuple[str, ...] = ()
    format: str = "markdown"
    template: str | None = None
    title: str | None = None


class NotifySettings(Record):
    """Delivery limits and routes (``[notify]``)."""

    timeout: float = 10.0
    retries: int = 2
    drain: float = 15.0
    routes: tuple[Route, ...] = ()


def parse_notify(table: dict[str, Any], envs: set[str], where: str, root: Path) -> NotifySettings:
    reject_unknown(table, _NOTIFY_KEYS, where, "notify.")
    retries = table.get("retries", 2)
    if not isinstance(retries, int) or isinstance(retries, bool) or not 0 <= retries <= 10:
        raise ConfigError(
            f"notify.retries = {retries!r} in {where} must be a whole number from 0 to 10"
        )
    durations = {
        key: parse_duration(table[key], name=f"notify.{key}")
        for key in ("timeout", "drain")
        if key in table
    }
    items = table.get("route", [])
    if not isinstance(items, list):
        raise ConfigError(f"notify.route in {where} must be an array of tables ([[notify.route]])")
    routes: list[Route] = []
    for index, item in enumerate(items):
        route = _parse_route(item, index, envs, where)
        _check_templates(route, where, root)
        if any(r.name == route.name for r in routes):
            raise ConfigError(f"notify.route: two routes are named {route.name!r} in {where}")
        routes.append(route)
    return NotifySettings(retries=retries, routes=tuple(routes), **durations)


def _parse_route(item: Any, index: int, envs: set[str], where: str) -> Route:
    key = f"notify.route #{index + 1}"
    if not isinstance(item, dict):
        raise ConfigError(f"{key} in {where} must be a table")
    reject_unknown(item, _ROUTE_KEYS, where, "notify.route.")
    name = item.get("name", f"route-{index + 1}")
    if not isinstance(name, str) or not name:
        raise ConfigError(f"{key}.name in {where} must be a non-empty string")
    key = f"notify.route {name!r}"
    to = item.get("to")
    if isinstance(to, str):
        to = [to]
    if not to:
        raise ConfigError(
            f"{key} in {where} has no destination",
            hint='add to = ["mailto://user:pass@example.com"] (any apprise URL)',
        )
    to = string_list(to, f"{key}.to", where)
    for number, url in enumerate(to, 1):
        _require_scheme(url, f"{key}.to entry {number}", where)
    events = string_list(item.get("events", []), f"{key}.events", where)
    from lastgood.events import EventKind

    known = {kind.value for kind in EventKind}
    for event in events:
        if event != "*" and event not in known:
            import difflib

            close = difflib.get_close_matches(event, sorted(known), n=1)
            hint = f"did you mean {close[0]}?" if close else "docs/operations.md lists every event"
            raise ConfigError(
                f"{key}.events names an unknown event {event!r} in {where}", hint=hint
            )
    route_envs = string_list(item.get("envs", []), f"{key}.envs", where)
    for env in route_envs:
        if env not in envs:
            known_envs = ", ".join(sorted(envs)) or "none"
            raise ConfigError(
                f"{key}.envs names {env!r}, which has no [env.{env}] table in {where}",
                hint=f"known environments: {known_envs}",
            )
    fmt = item.get("format", "markdown")
    if fmt not in FORMATS:
        choices = ", ".join(f'"{f}"' for f in FORMATS)
        raise ConfigError(f"{key}.format = {fmt!r} in {where} must be one of {choices}")
    for optional in ("template", "title"):
        if optional in item and not isinstance(item[optional], str):
            raise ConfigError(f"{key}.{optional} in {where} must be a string")
    return Route(
        name=name,
        to=tuple(to),
        events=tuple(events),
        envs=tuple(route_envs),
        format=fmt,
        template=item.get("template"),
        title=item.get("title"),
    )


def _check_templates(route: Route, where: str, root: Path) -> None:
    """What ``lastgood.toml`` itself says about a route's templates is checked now: the body
    template's path stays in the workspace and the inline title parses as Jinja2. The body
    file's content is not read here: every command reads this file, rollback included, and a
    broken notification template must never stand in a rollback's way (a template that fails
    when an alert is sent falls back to the default message; 'lastgood notify test' shows it)."""
    key = f"notify.route {route.name!r}"
    if route.template is not None and not inside(root, route.template):
        raise ConfigError(
            f"{key}.template = {route.template!r} in {where} is outside the workspace",
            hint="keep the template in the workspace, e.g. templates/alert.md.j2",
        )
    if route.title is not None:
        _parse_jinja(route.title, f"{key}.title", where)


def _parse_jinja(source: str, key: str, where: str) -> None:
    from jinja2 import TemplateSyntaxError
    from jinja2.sandbox import SandboxedEnvironment

    try:
        SandboxedEnvironment().parse(source)
    except TemplateSyntaxError as exc:
        raise ConfigError(
            f"{key} in {where} is not a valid Jinja2 template: line {exc.lineno}: {exc.message}",
            hint="see docs/notifications.md for the variables and filters a template gets",
        ) from None


def _require_scheme(url: str, key: str, where: str) -> None:
    """A destination is an apprise URL: ``scheme://…``. Anything else would lose every alert."""
    import re

    if re.match(r"^[A-Za-z][A-Za-z0-9+.-]*://\S", url):
        return
    raise ConfigError(  # the value is not shown: a webhook path or an address may be a secret
        f"{key} in {where} is not a URL with a scheme (scheme://…): every alert sent there "
        "would be lost",
        hint='write an apprise URL such as "mailto://user:pass@example.com", '
        '"slack://TokenA/TokenB/TokenC" or "json://hooks.example.com/lastgood"',
    )
