"""Which events go to which route, and the key that stops a route sending the same news twice.

Pure functions over config and events: no I/O, no third-party imports, cheap enough to run on
every event a deploy emits (check rounds included).
"""

from __future__ import annotations

import os

from lastgood.config import Config
from lastgood.config_notify import Route
from lastgood.errors import ConfigError, NotFoundError
from lastgood.events import Event, EventKind

DEFAULT_EVENTS: frozenset[str] = frozenset(
    kind.value
    for kind in (
        EventKind.DEPLOY_FAILED,
        EventKind.AUTO_ROLLED_BACK,
        EventKind.ROLLBACK_PERFORMED,
        EventKind.RESTORE_FAILED,
        EventKind.ROLLOUT_ABORTED,
        EventKind.ROLLOUT_INTERRUPTED,
        EventKind.DRIFT_DETECTED,
        EventKind.DOCUMENT_CHANGED,
        EventKind.DRILL_FINISHED,
        EventKind.DRILL_OVERDUE,
        EventKind.BUDGET_EXCEEDED,
        EventKind.LAST_GOOD_CHANGED,
        EventKind.HEALTH_FAILED,
        EventKind.HEALTH_RECOVERED,
        EventKind.WATCH_ALERT,
        EventKind.WATCH_RECOVERED,
        EventKind.DIGEST,
        EventKind.NOTIFY_TEST,
        EventKind.REQUEST_OPENED,
        EventKind.REQUEST_UPDATED,
        EventKind.REQUEST_APPROVED,
        EventKind.REQUEST_REJECTED,
        EventKind.REQUEST_APPLIED,
        EventKind.REQUEST_FAILED,
        EventKind.REQUEST_STALE,
        EventKind.REQUEST_HELD,
        EventKind.REQUEST_EXPIRED,
        EventKind.REQUEST_WITHDRAWN,
        EventKind.REQUEST_SIGNED_OFF,
        EventKind.REQUEST_REMINDER,
    )
)
"""What a route without ``events`` sends: the events a person has to know about (something
broke, was undone, drifted, or is overdue, and every step of a change request, which waits on
people), never the play-by-play of a healthy deploy."""


def wants(route: Route, event: Event) -> bool:
    """True when ``route`` sends ``event``: its kind is chosen and its environment passes.

    An event that belongs to no environment (a digest, a test) passes every ``envs`` filter.
    """
    kinds = route.events or DEFAULT_EVENTS
    if "*" not in kinds and event.kind.value not in kinds:
        return False
    return event.env is None or not route.envs or event.env in route.envs


def dedupe_key(event: Event) -> tuple[str, bool]:
    """The event's delivery key and whether it deduplicates.

    ``event.key`` when set; else ``kind:env:deployment:version`` when the event belongs to a
    deployment (the same deployment's news is sent once, even when two processes report it);
    else a one-off key that never suppresses anything, because two such events may be two
    different things that merely look alike.
    """
    if event.key:
        return event.key, True
    env = event.env or "-"
    if event.deployment is not None:
        version = "-" if event.version is None else str(event.version)
        return f"{event.kind.value}:{env}:{event.deployment}:{version}", True
    return f"{event.kind.value}:{env}:once-{os.urandom(6).hex()}", False


ROUTE_EXAMPLE = (
    'add one to lastgood.toml, e.g.\n\n    [[notify.route]]\n    name = "ops"\n'
    '    to = ["mailtos://user:app-password@mail.example.com?to=ops@example.com"]\n'
    '    events = ["auto-rolled-back", "restore-failed"]\n\n'
    "  see docs/notifications.md for Slack, webhooks and JSON"
)


def no_routes(config: Config) -> ConfigError:
    """The error for a command that needs routes in a workspace that has none."""
    return ConfigError(
        f"no [[notify.route]] in {config.path}: nothing to send to", hint=ROUTE_EXAMPLE
    )


def route_named(config: Config, name: str) -> Route:
    """The route called ``name``; NotFoundError naming the routes there are."""
    for route in config.notify.routes:
        if route.name == name:
            return route
    if not config.notify.routes:
        raise no_routes(config)
    known = ", ".join(repr(route.name) for route in config.notify.routes)
    raise NotFoundError(
        f"no route named {name!r} in {config.path}",
        hint=f'routes: {known}; a route is named with name = "…" under [[notify.route]]',
    )
