"""Turn an event into a title and a body in the route's format, never failing to produce one.

Default messages are Jinja2 templates in ``lastgood/notify/templates/``; a route may replace the
body (``template``, a file in the workspace) and the title (``title``, inline). Every template,
ours included, renders in Jinja2's sandbox, with autoescaping for HTML bodies: a route's template
is configuration, and configuration must not be able to reach Python internals. A template that
fails (missing file, syntax error, sandbox violation, any exception) falls back to the default
message, and :attr:`Message.note` says why so the delivery log shows it: a broken template must
never lose an alert. Runs on the notifier's worker thread; jinja2 is imported here, on first use.
"""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lastgood.config_notify import Route
from lastgood.events import Event, EventKind
from lastgood.record import Record
from lastgood.units import format_duration

if TYPE_CHECKING:
    from jinja2.sandbox import SandboxedEnvironment

TEMPLATES = Path(__file__).with_name("templates")
TITLE_LIMIT = 250


class Message(Record):
    """A rendered notification: what apprise sends, and a note when a template was bypassed."""

    title: str
    body: str
    format: str
    severity: str = "info"
    note: str = ""


@cache
def _environment(html: bool) -> SandboxedEnvironment:
    from jinja2 import FileSystemLoader
    from jinja2.sandbox import SandboxedEnvironment

    from lastgood.notify.context import when

    env = SandboxedEnvironment(
        loader=FileSystemLoader(str(TEMPLATES)),
        autoescape=html,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["duration"] = format_duration
    env.filters["when"] = when
    env.filters["label"] = lambda number: "-" if number is None else f"v{number}"
    return env


def render(event: Event, route: Route, context: dict[str, Any], root: Path) -> Message:
    """The message for ``event`` on ``route``: overrides when they work, defaults otherwise."""
    notes: list[str] = []
    title = _title(event, route, context, notes)
    body = _body(event, route, context, root, notes)
    severity = context["details"]["severity"]
    return Message(title, body, route.format, severity, "; ".join(notes))


def _title(event: Event, route: Route, context: dict[str, Any], notes: list[str]) -> str:
    if route.title is not None:
        try:
            text = _environment(False).from_string(route.title).render(context)
            return _one_line(text) or _default_title(event, context)
        except Exception as exc:  # any template failure falls back; the note says why
            notes.append(f"title template failed ({_why(exc)}); sent the default title")
    return _default_title(event, context)


def _default_title(event: Event, context: dict[str, Any]) -> str:
    if event.kind is EventKind.DIGEST and isinstance(event.data.get("title"), str):
        return _one_line(event.data["title"])
    return _one_line(_environment(False).get_template("title.j2").render(context))


def _body(event: Event, route: Route, context: dict[str, Any], root: Path, notes: list[str]) -> str:
    html = route.format == "html"
    if route.template is not None:
        try:
            source = _read_template(root, route.template)
            return _environment(html).from_string(source).render(context).strip() + "\n"
        except Exception as exc:  # any template failure falls back; the note says why
            notes.append(
                f"template {route.template!r} failed ({_why(exc)}); sent the default message"
            )
    if event.kind is EventKind.DIGEST:
        rendered = event.data.get(route.format)
        if isinstance(rendered, str) and rendered.strip():
            return rendered
    template = _environment(html).get_template(f"body.{route.format}.j2")
    return template.render(context).strip() + "\n"


def _read_template(root: Path, relative: str) -> str:
    """The override's text; a path outside the workspace is refused like a missing one."""
    path = (root / relative).resolve()
    if not path.is_relative_to(root.resolve()):
        raise ValueError(f"{relative} is outside the workspace")
    return path.read_text(encoding="utf-8")


def _why(exc: Exception) -> str:
    text = str(exc).splitlines()[0] if str(exc) else ""
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _one_line(text: str) -> str:
    line = re.sub(r"\s+", " ", text).strip()
    return line if len(line) <= TITLE_LIMIT else line[: TITLE_LIMIT - 1] + "…"
