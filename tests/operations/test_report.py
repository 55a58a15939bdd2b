"""``lastgood.operations.report``: the digest built from a real ledger, handed to the event
stream, and the routes that take it. (What a stakeholder reads, in every format, through the
CLI: ``tests/test_report.py``.)"""

from __future__ import annotations

import time

import pytest

from lastgood.errors import ConfigError
from lastgood.operations.drill import drill
from lastgood.operations.report import build, digest_routes, send
from lastgood.operations.rollback import rollback
from lastgood.project import Project
from tests.conftest import broken_files
from tests.operations.conftest import ProjectFactory, deployed, kinds, listen, write

DRILLABLE = (
    '\n[env.staging.drill]\nfiles = { "health.txt" = "drills/broken.txt" }\n'
    '\n[versioning]\nexclude = ["drills/**"]\n'
)


def a_week(made: Project) -> Project:
    """Two good deploys, a failing one restored by itself, a rollback by hand, then a drill."""
    write(made, {"drills/broken.txt": "fail\n"})
    deployed(made, marker="one", message="first")
    deployed(made, marker="two", message="second")
    deployed(made, files=broken_files("three"), message="break it")
    rollback(made, "staging", reason="two looks off")
    assert drill(made, "staging").passed
    return made


def test_the_digest_counts_changes_incidents_and_rollbacks_but_not_the_drills_own(
    project: ProjectFactory,
) -> None:
    made = a_week(project(toml=DRILLABLE))

    [env] = build(made, since=time.time() - 3600).envs

    assert (env.env, env.live_version, env.last_good) == ("staging", 1, 1)
    assert [(c.version, c.result, c.reason) for c in env.changes] == [
        (1, "succeeded", "first"), (2, "succeeded", "second"), (3, "failed-restored", "break it"),
    ]  # fmt: skip
    [incident] = env.incidents
    assert (incident.kind, incident.version) == ("deploy-failed", 3)
    assert incident.message == (
        "v3 failed 'health-file-ok' on staging; the last known good version was restored"
    )
    assert [(r.kind, r.from_version, r.to_version, r.over_budget) for r in env.rollbacks] == [
        ("auto-rollback", 3, 2, False), ("rollback", 2, 1, False),
    ]  # fmt: skip
    [run] = env.drills
    assert run.status == "passed" and run.summary.startswith("drill passed: v4 was caught")
    assert env.last_drill == run and env.drill_overdue is None


def test_the_period_bounds_what_is_counted(project: ProjectFactory) -> None:
    made = project()
    deployed(made, marker="one")
    between = time.time()
    deployed(made, marker="two")
    [after] = build(made, since=between).envs
    [before] = build(made, since=between - 3600, until=between).envs
    assert [c.version for c in after.changes] == [2]
    assert [c.version for c in before.changes] == [1]
    [empty] = build(made, since=time.time()).envs
    assert empty.changes == [] and empty.incidents == [] and empty.rollbacks == []
    assert empty.live_version == 2  # what is live now, whatever the period


def test_an_unknown_environment_names_the_known_ones(project: ProjectFactory) -> None:
    with pytest.raises(ConfigError, match="no environment named 'prod'"):
        build(project(), since=0.0, envs=["prod"])


def test_sending_hands_every_rendering_to_the_stream_and_keeps_none(
    project: ProjectFactory,
) -> None:
    made = project()
    deployed(made, marker="one")
    digest = build(made, since=time.time() - 3600)
    heard = listen(made)

    send(made, digest)

    assert kinds(heard) == ["digest"]
    [event] = heard
    assert event.env == "staging"  # the digest of one environment is about it
    assert set(event.data) == {"title", "text", "markdown", "html", "since", "until"}
    assert "<" in event.data["html"] and "staging" in event.data["text"]
    assert event.key == f"digest:staging:{digest.since:.0f}-{digest.until:.0f}"
    assert made.store.events(None, kind="digest") == []


ROUTES = """
[env.production]
target = {{ type = "directory", path = "../live-production" }}

[[notify.route]]
name = "ops"
to = "json://127.0.0.1:9/ops"
events = ["auto-rolled-back"]

[[notify.route]]
name = "{name}"
to = "json://127.0.0.1:9/{name}"
{events}
{envs}
"""


@pytest.mark.parametrize(
    ("events", "envs", "chosen"),
    [
        ("", "", ["team"]),  # no events: the default set, which includes digests
        ('events = ["digest"]', "", ["team"]),
        ('events = ["*"]', 'envs = ["staging"]', ["team"]),
        ('events = ["digest"]', 'envs = ["production"]', []),
        ('events = ["deploy-failed"]', "", []),
    ],
)
def test_the_routes_that_take_a_digest(
    project: ProjectFactory, events: str, envs: str, chosen: list[str]
) -> None:
    made = project(toml=ROUTES.format(name="team", events=events, envs=envs))
    digest = build(made, since=time.time(), envs=["staging"])
    if chosen:
        assert digest_routes(made, digest) == chosen
        return
    with pytest.raises(ConfigError) as refused:
        digest_routes(made, digest)
    assert refused.value.message.endswith("sends 'digest' events for staging")
    assert 'events = ["digest"]' in str(refused.value.hint)


def test_without_any_route_the_digest_has_nowhere_to_go(project: ProjectFactory) -> None:
    made = project()
    with pytest.raises(ConfigError) as refused:
        digest_routes(made, build(made, since=time.time()))
    assert refused.value.message.endswith(": there is nowhere to send the digest")
    assert "see docs/reports.md" in str(refused.value.hint)


def test_a_deploy_whose_switch_failed_is_an_incident_not_a_change(
    project: ProjectFactory,
) -> None:
    made = project()
    deployed(made, marker="one", message="first")
    deployed(made, marker="two", message="second")
    record = made.store.begin_deployment(
        env="staging", kind="deploy", from_version=2, to_version=1, actor="ana", reason="again",
        source="cli",
    )  # fmt: skip
    detail = "the activate command of staging `./push.sh` exited 22; tried 3 times"
    made.store.update_deployment(
        record.id, by="ana", status="failed", finished_at=time.time(), detail=detail
    )  # the tool refused the push: nothing went live

    [env] = build(made, since=time.time() - 3600).envs

    assert [c.version for c in env.changes] == [1, 2]
    [incident] = env.incidents
    assert incident.message == (
        "v1 could not be put live: the activate command of staging `./push.sh` exited 22"
    )
