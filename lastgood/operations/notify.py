"""``notify``: deliver an event now and wait for the outcome, send a test message, read the
delivery log. The verbs behind ``lastgood notify test`` and ``lastgood notify log``.

Everything else reaches the routes by emitting an event, which the project's notifier
(:mod:`lastgood.notify.notifier`) delivers beside the work.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from lastgood.project import Project

if TYPE_CHECKING:
    from lastgood.events import Event
    from lastgood.notify.notifier import Result
    from lastgood.rows import Delivery


def send(
    project: Project,
    event: Event,
    *,
    route: str | None = None,
    every: bool = False,
    wait: float | None = None,
) -> list[Result]:
    """Deliver ``event`` now and wait for the outcome; one :class:`Result` per destination.

    ``route`` limits delivery to the route of that name; ``every`` sends to the chosen routes
    even when their ``events``/``envs`` would not take the event (a test message). Waits at
    most ``wait`` seconds (default: long enough for every attempt to time out); destinations
    still being tried then are returned as ``pending`` and finish while the project drains.
    The event does not go through the event bus, so the ledger and other subscribers never see
    it. ConfigError when there are no routes, NotFoundError for an unknown ``route``.
    """
    from lastgood.notify.routing import route_named

    notifier = project.notifier
    routes = list(project.config.notify.routes)
    if route is not None:
        routes = [route_named(project.config, route)]
    if notifier is None or not routes:
        from lastgood.notify.routing import no_routes

        raise no_routes(project.config)
    jobs = notifier.submit(event, routes=routes, every=every)
    limit = notifier.bound(sum(len(job.route.to) for job in jobs)) if wait is None else wait
    notifier.wait(jobs, limit)
    return [result for job in jobs for result in job.result_list()]


def test(project: Project, *, route: str | None = None) -> list[Result]:
    """Send a ``notify-test`` message to every route (or the one named), ignoring their
    ``events`` and ``envs`` filters, and wait for the outcome. Writes the delivery log."""
    import os
    import socket

    from lastgood.events import Event, EventKind

    where = socket.gethostname()
    event = Event(
        EventKind.NOTIFY_TEST,
        f"test message from lastgood on {where}, sent by {project.actor or 'someone'}: "
        "if you can read this, the route works",
        data={"workspace": str(project.root), "host": where},
        key=f"notify-test:{os.urandom(6).hex()}",
    )
    return send(project, event, route=route, every=True)


def delivery_log(
    project: Project,
    *,
    limit: int = 50,
    route: str | None = None,
    status: str | None = None,
) -> list[Delivery]:
    """Delivery attempts, newest first. ConfigError (with a route example) when the workspace
    has no routes and nothing was ever delivered; NotFoundError for an unknown route with no
    history. Reads the store only."""
    entries = project.store.deliveries(limit=limit, route=route, status=status)
    if not entries and route is None and not project.config.notify.routes:
        from lastgood.notify.routing import no_routes

        raise no_routes(project.config)
    if not entries and route is not None:
        from lastgood.notify.routing import route_named

        route_named(project.config, route)  # raises when there is no such route
    return entries
