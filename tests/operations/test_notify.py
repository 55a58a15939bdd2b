"""``lastgood.operations.notify`` in process: a message sent now and waited for, a test message
that ignores the routes' filters, and the delivery log, against a real HTTP receiver.
(Routing, templates, retries and email are in ``tests/test_notify.py``.)"""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest

from lastgood.errors import ConfigError, NotFoundError
from lastgood.events import Event, EventKind
from lastgood.operations import notify
from lastgood.operations.notify import delivery_log, send
from lastgood.project import Project
from tests.operations.conftest import ProjectFactory, listen
from tests.test_notify import Webhook, free_port


@pytest.fixture(scope="module")
def receiver() -> Iterator[Webhook]:
    started = Webhook()  # one for the module: stopping one takes half a second
    yield started
    started.close()


@pytest.fixture
def hook(receiver: Webhook) -> Webhook:
    receiver.requests.clear()
    return receiver


def routed(project: ProjectFactory, hook: Webhook) -> Project:
    """Two routes: ``ops`` takes only auto-rolled-back events, ``dead`` points at no one."""
    return project(
        toml=f"""
        [notify]
        retries = 0
        timeout = "2s"

        [[notify.route]]
        name = "ops"
        to = "{hook.url()}"
        events = ["auto-rolled-back"]

        [[notify.route]]
        name = "dead"
        to = "json://127.0.0.1:{free_port()}/nobody"
        """
    )


def test_a_test_message_reaches_every_route_whatever_its_filters(
    project: ProjectFactory, hook: Webhook
) -> None:
    made = routed(project, hook)
    heard = listen(made)

    results = notify.test(made)

    assert [(r.route, r.event, r.status, r.attempts) for r in results] == [
        ("ops", "notify-test", "sent", 1), ("dead", "notify-test", "failed", 1),
    ]  # fmt: skip
    [body] = hook.bodies()
    assert "if you can read this, the route works" in body["message"]
    assert "sent by tester" in body["message"]
    assert heard == [] and made.store.events(None) == []  # not something that happened
    logged = delivery_log(made)
    assert sorted((d.route, d.status) for d in logged) == [("dead", "failed"), ("ops", "sent")]
    assert [d.route for d in delivery_log(made, status="failed")] == ["dead"]
    assert [d.status for d in delivery_log(made, route="ops")] == ["sent"]


def test_one_route_can_be_tested_alone(project: ProjectFactory, hook: Webhook) -> None:
    made = routed(project, hook)
    assert [r.route for r in notify.test(made, route="ops")] == ["ops"]
    with pytest.raises(NotFoundError) as unknown:
        notify.test(made, route="pager")
    assert unknown.value.message.startswith("no route named 'pager' in ")
    assert unknown.value.hint is not None and unknown.value.hint.startswith("routes: 'ops', 'dead'")


def test_an_event_goes_only_where_the_routes_take_it(
    project: ProjectFactory, hook: Webhook
) -> None:
    made = routed(project, hook)
    quiet = Event(EventKind.DEPLOY_SUCCEEDED, "v2 is live on staging", env="staging")
    loud = Event(EventKind.AUTO_ROLLED_BACK, "restored v1 on staging", env="staging")

    assert send(made, quiet, route="ops") == []  # ops does not take deploy-succeeded
    [sent] = send(made, loud, route="ops")

    assert (sent.route, sent.event, sent.env, sent.status) == (
        "ops", "auto-rolled-back", "staging", "sent",
    )  # fmt: skip
    [body] = hook.bodies()
    assert "restored v1 on staging" in body["message"]


def test_without_routes_each_verb_says_how_to_add_one(project: ProjectFactory) -> None:
    made = project()
    for attempt in (lambda: notify.test(made), lambda: delivery_log(made)):
        with pytest.raises(ConfigError) as refused:
            attempt()
        assert refused.value.message.startswith("no [[notify.route]] in ")
        assert "[[notify.route]]" in str(refused.value.hint)


def test_the_log_of_a_route_that_never_existed_names_the_real_ones(
    project: ProjectFactory, hook: Webhook
) -> None:
    made = routed(project, hook)
    assert delivery_log(made, route="ops") == []  # a real route that sent nothing yet
    with pytest.raises(NotFoundError, match="no route named 'pager'"):
        delivery_log(made, route="pager")


def test_a_destination_still_being_tried_is_pending_and_finishes_in_the_background(
    project: ProjectFactory, hook: Webhook
) -> None:
    made = routed(project, hook)
    loud = Event(EventKind.AUTO_ROLLED_BACK, "restored v1 on staging", env="staging")
    hook.hang, hook.release = True, threading.Event()  # answers once released
    try:
        [waiting] = send(made, loud, route="ops", wait=0)
        assert waiting.status == "pending"
    finally:
        hook.release.set()
        hook.hang = False
    assert made.notifier is not None and made.notifier.flush(30)
    assert [d.status for d in delivery_log(made, route="ops")] == ["sent"]
