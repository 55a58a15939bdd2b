"""``lastgood.operations.status``: ``status``, ``history`` and ``check`` in process, read from a
real target and a real ledger, and the rules status shares with the digest."""

from __future__ import annotations

import time

import pytest

from lastgood.config import Environment, TargetSpec
from lastgood.errors import ConfigError
from lastgood.operations.deploy import deploy
from lastgood.operations.restore import release_of
from lastgood.operations.rollback import rollback
from lastgood.operations.status import (
    check_now,
    drill_standing,
    history,
    outside_drills,
    status,
)
from lastgood.outcome import OK
from lastgood.rows import Deployment
from tests.conftest import broken_files, healthy_files
from tests.operations.conftest import ProjectFactory, deployed, live_folder, outage, version

DAY = 86400.0
OVERDUE = (
    "drill overdue on staging: last successful drill never (drill_every 30d); run 'lastgood "
    "drill staging'"
)


def record(kind: str, at: float, status: str = "succeeded", **values: object) -> Deployment:
    fields: dict[str, object] = {
        "id": 1, "env": "staging", "kind": kind, "status": status, "from_version": 1,
        "to_version": 2, "actor": "ana", "reason": "", "source": "cli", "parent": None,
        "trigger_at": None, "requested_at": at, "activated_at": at, "verified_at": at,
        "failed_at": None, "finished_at": at + 1, "detail": "",
    }  # fmt: skip
    return Deployment(**{**fields, **values})  # type: ignore[arg-type]


def test_a_fresh_environment_says_nothing_ran_yet(project: ProjectFactory) -> None:
    [found] = status(project(), "staging")
    assert (found.live_version, found.last_good, found.health) == (None, None, "no checks run yet")
    assert found.target == "directory ../live" and found.warnings == []
    assert found.within_budget and found.lock is None


def test_a_healthy_deploy_reads_back_from_the_target(project: ProjectFactory) -> None:
    made = project()
    deployed(made, marker="one")
    [found] = status(made, "staging")
    one = made.store.version(1)
    assert (found.live_version, found.live_hash, found.actual_hash) == (
        1, one.content_hash, one.content_hash,
    )  # fmt: skip
    assert (found.ledger_version, found.last_good, found.live_verdict) == (1, 1, "good")
    assert found.health == "healthy" and found.health_at is not None
    assert found.last_change is not None and found.last_change["kind"] == "deploy"
    assert found.to_json()["drifted"] is False
    assert found.warnings == [OVERDUE]  # the only thing left to do: rehearse a rollback


def test_a_failed_live_version_is_flagged_with_its_failing_check(project: ProjectFactory) -> None:
    made = project()
    deployed(made, files=broken_files("one"))
    [found] = status(made, "staging")
    assert found.health == "failing: health-file-ok"
    assert "v1 is live on staging and FAILED its checks" in found.warnings


def test_a_version_switched_by_hand_is_reconciled_and_never_called_verified(
    project: ProjectFactory,
) -> None:
    made = project()
    deployed(made, marker="one")
    two = version(made, healthy_files("two"))
    target = made.target("staging")
    target.stage(release_of(two), made.store.files(2))
    target.activate(release_of(two))

    [found] = status(made, "staging")

    assert (found.live_version, found.ledger_version, found.live_verdict) == (2, 2, None)
    assert found.warnings == [
        "reconciled: the ledger said v1 is live on staging, but the target serves v2; the ledger "
        "now says v2",
        "v2 is live on staging but was never verified (interrupted deploy?); 'lastgood deploy "
        "staging --version v2' bakes it (a passing 'lastgood check staging' does not make it "
        "good), 'lastgood rollback staging' goes to last known good",
        OVERDUE,  # the least urgent, last
    ]
    assert check_now(made, "staging").ok  # only looks: the warning stays, and says so
    assert any("never verified" in w for w in status(made, "staging")[0].warnings)
    baked = deploy(made, "staging", ref="v2")  # what the warning advises: it clears it
    assert baked.exit_code == OK, baked.summary
    [after] = status(made, "staging")
    assert after.live_verdict == "good" and after.last_good == 2
    assert not any("never verified" in w for w in after.warnings), after.warnings


def test_while_another_process_holds_the_lease_status_reads_without_reconciling(
    project: ProjectFactory,
) -> None:
    made = project()
    deployed(made, marker="one")
    version(made, {"notes.txt": "two\n"})
    running = made.store.begin_deployment(
        env="staging", kind="deploy", from_version=1, to_version=2, actor="ana", reason="",
        source="cli",
    )  # fmt: skip
    made.store.acquire_lease("env:staging", purpose="deploy", holder_name="ana", ttl=600)
    [found] = status(made, "staging")
    assert found.lock == "deploy by ana"
    assert made.store.deployment(running.id).status == "running"  # it may well be running


def test_a_restore_over_budget_is_a_warning_and_a_miss(project: ProjectFactory) -> None:
    made = project(budget="1m")
    deployed(made, marker="one")
    deployed(made, marker="two")
    rollback(made, "staging", automatic=True, trigger_at=time.time() - 120)
    [found] = status(made, "staging")
    assert not found.within_budget
    assert found.verified_max is not None and found.verified_max > 120
    assert any(
        w.startswith("a restore took 2m 0") and w.endswith("over the 1m 00s budget")
        for w in found.warnings
    ), found.warnings


def test_without_checks_nothing_is_called_healthy(project: ProjectFactory) -> None:
    made = project(checks=False)
    deployed(made, marker="one")
    [found] = status(made, "staging")
    assert found.health == "no checks configured: nothing proves it healthy"
    assert found.checked is False


def test_drift_is_shown_with_the_command_that_repairs_it(project: ProjectFactory) -> None:
    made = project()
    deployed(made, marker="one")
    (live_folder(made) / "health.txt").write_text("edited by hand\n")
    [found] = status(made, "staging")
    assert found.drifted and found.actual_hash != found.live_hash
    assert found.warnings[0].startswith("drift: the files live on staging do not match v1")
    assert "'lastgood deploy staging --version v1'" in found.warnings[0]


def test_check_now_runs_and_records_one_round_against_what_is_live(
    project: ProjectFactory,
) -> None:
    made = project()
    deployed(made, marker="one")
    outage(made)
    done = check_now(made, "staging")
    assert not done.ok and done.phase == "check"
    [kept] = made.store.check_records(env="staging", limit=1)
    assert (kept.phase, kept.round, kept.deployment) == ("check", done.number, None)
    assert status(made, "staging")[0].health == "failing: health-file-ok"


def test_history_is_newest_first_and_knows_only_configured_environments(
    project: ProjectFactory,
) -> None:
    made = project()
    for marker in ("one", "two", "three"):
        deployed(made, marker=marker)
    timeline = history(made, "staging", limit=2)
    assert [d.to_version for d in timeline.deployments] == [3, 2]
    assert timeline.events[0].kind == "deploy-succeeded"
    with pytest.raises(ConfigError, match="no environment named 'prod'"):
        history(made, "prod")


def test_the_drill_rule_status_and_the_digest_share() -> None:
    now = 1_000_000_000.0
    staging = Environment("staging", TargetSpec("directory", {}), drill_every=30 * DAY)
    deployed_once = [record("deploy", now - DAY)]
    assert drill_standing(staging, [], now=now).overdue is None  # no ledger: nothing to rehearse
    assert drill_standing(staging, deployed_once, now=now).overdue == OVERDUE
    recent = [record("drill", now - DAY, "passed"), *deployed_once]
    assert drill_standing(staging, recent, now=now).overdue is None
    failed = [record("drill", now - DAY, "failed"), record("drill", now - 40 * DAY, "passed")]
    standing = drill_standing(staging, failed, now=now)
    assert standing.last == failed[0] and standing.age == DAY  # the last drill, whatever it did
    assert standing.overdue is not None and "last successful drill 40d ago" in standing.overdue
    protected = Environment("production", TargetSpec("directory", {}), protected=True)
    assert drill_standing(protected, deployed_once, now=now).overdue is None


def test_records_inside_a_drills_time_belong_to_the_drill() -> None:
    drill = record("drill", 100.0, "passed", finished_at=110.0, source="drill")
    variant = record("deploy", 101.0, source="drill")
    undo = record("auto-rollback", 105.0, source="auto")
    before, after = record("deploy", 90.0), record("rollback", 111.0)
    assert outside_drills([after, undo, variant, drill, before]) == [after, before]
