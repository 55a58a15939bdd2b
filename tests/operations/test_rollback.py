"""``lastgood.operations.rollback`` in process: what a rollback records and announces, how it is
timed, that a held lease never blocks it for good, and the offline rollback's log. (The
sequences of deploys and rollbacks are in ``tests/test_deploy_rollback.py``.)"""

from __future__ import annotations

import json
import time

import pytest

from lastgood.errors import LockedError, NotFoundError
from lastgood.operations.reconcile import offline_log_path
from lastgood.operations.restore import release_of
from lastgood.operations.rollback import rollback, rollback_offline
from lastgood.outcome import NEEDS_HUMAN, OK
from lastgood.project import Project
from lastgood.units import format_duration
from tests.operations.conftest import ProjectFactory, deployed, kinds, listen, outage


def two_deployed(made: Project) -> Project:
    deployed(made, marker="one")
    deployed(made, marker="two")
    return made


def test_a_rollback_is_recorded_announced_and_withdraws_what_it_left(
    project: ProjectFactory,
) -> None:
    made = two_deployed(project())
    heard = listen(made)

    outcome = rollback(made, "staging", reason="scores look off")

    assert (outcome.exit_code, outcome.version, outcome.from_version) == (OK, 1, 2)
    record = outcome.deployment
    assert record is not None and record == made.store.deployments("staging")[0]
    assert (record.kind, record.status, record.actor, record.reason, record.source) == (
        "rollback", "succeeded", "tester", "scores look off", "cli",
    )  # fmt: skip
    assert record.trigger_at == record.requested_at  # a person asked: timed from the asking
    assert record.detail == "1/1 checks passed"
    assert record.time_to_active is not None and record.time_to_verified is not None
    took, verified = map(format_duration, (record.time_to_active, record.time_to_verified))
    assert outcome.summary == (
        f"restored v1 on staging in {took} (verified in {verified}); v2 is withdrawn"
    )
    assert kinds(heard) == ["rollback-started", "check-round", "rollback-performed"]
    assert heard[0].message == "rolling back staging: v2 → v1 by tester (scores look off)"
    assert heard[-1].message == f"restored v1 on staging in {took}, verified in {verified}"
    assert made.store.verdicts("staging") == {1: "good", 2: "withdrawn"}
    assert made.store.env_state("staging").last_good == 1


def test_an_automatic_rollback_is_timed_from_its_trigger_and_reports_a_broken_budget(
    project: ProjectFactory,
) -> None:
    """The watcher decided ten minutes ago (a trigger in the past, rather than a wait)."""
    made = two_deployed(project(budget="5m"))
    heard = listen(made)
    decided = time.time() - 600

    outcome = rollback(made, "staging", reason="health failed", automatic=True, trigger_at=decided)

    record = outcome.deployment
    assert record is not None
    assert (record.kind, record.actor, record.trigger_at) == ("auto-rollback", "lastgood", decided)
    assert record.time_to_verified is not None and record.time_to_verified > 600
    assert kinds(heard) == ["auto-rollback-started", "check-round", "auto-rolled-back",
                            "budget-exceeded"]  # fmt: skip
    assert heard[-1].message.startswith("restoring v1 on staging took 10m 0")
    assert heard[-1].message.endswith("over the budget of 5m 00s")
    assert heard[-1].data["kind"] == "auto-rollback"


def test_a_held_lease_refuses_a_rollback_until_it_is_forced_and_the_break_recorded(
    project: ProjectFactory,
) -> None:
    made = two_deployed(project())
    made.store.acquire_lease("env:staging", purpose="deploy", holder_name="ana", ttl=600)

    with pytest.raises(LockedError) as refused:
        rollback(made, "staging")
    assert "wait for it to finish, or break the lock with --force" in str(refused.value.hint)
    assert made.target("staging").live() == release_of(made.store.version(2))

    heard = listen(made)
    assert rollback(made, "staging", force=True).exit_code == OK
    assert kinds(heard)[0] == "lease-broken"
    assert heard[0].message.startswith("rollback by tester broke the live lease of ana (deploy")
    assert made.target("staging").live() == release_of(made.store.version(1))


def test_an_expired_lease_never_blocks_a_rollback(project: ProjectFactory) -> None:
    made = two_deployed(project())
    made.store.acquire_lease("env:staging", purpose="deploy", holder_name="ana", ttl=-1)
    heard = listen(made)
    assert rollback(made, "staging").exit_code == OK
    assert kinds(heard)[0] == "lease-taken-over"


def test_nothing_to_roll_back_to_says_how_to_name_a_version(project: ProjectFactory) -> None:
    made = project()
    deployed(made, marker="one")
    with pytest.raises(NotFoundError) as missing:
        rollback(made, "staging")
    assert missing.value.message == "no known good version to roll back to on staging (live: v1)"
    assert "'lastgood rollback staging --to REF'" in str(missing.value.hint)
    assert [r.kind for r in made.store.deployments("staging")] == ["deploy"]


def test_a_rollback_to_what_is_live_records_nothing(project: ProjectFactory) -> None:
    made = two_deployed(project())
    outcome = rollback(made, "staging", to="staging:live")
    assert outcome.summary == "v2 is already live on staging; nothing to do"
    assert [r.kind for r in made.store.deployments("staging")] == ["deploy", "deploy"]


def test_a_restore_whose_checks_fail_is_unverified_and_says_so(project: ProjectFactory) -> None:
    made = two_deployed(project())
    outage(made)
    heard = listen(made)

    outcome = rollback(made, "staging")

    assert outcome.exit_code == NEEDS_HUMAN
    record = outcome.deployment
    assert record is not None
    assert (record.status, record.verified_at) == ("unverified", None)
    assert record.failed_at is not None and record.activated_at is not None
    assert kinds(heard)[-1] == "restore-failed"
    assert heard[-1].message.startswith("v1 is live again on staging but its checks still fail")
    assert made.store.verdicts("staging")[2] == "withdrawn"  # switched away all the same


def test_a_rollback_that_cannot_stage_needs_a_person_and_says_what_is_live(
    project: ProjectFactory,
) -> None:
    """v1's kept release is gone and a file stands where it would be staged again."""
    made = two_deployed(project())
    one = release_of(made.store.version(1))
    made.target("staging").prune(0, [release_of(made.store.version(2))])
    (made.root.parent / "live" / "releases" / one.name).write_text("in the way\n")
    heard = listen(made)

    outcome = rollback(made, "staging", to="v1")

    assert outcome.exit_code == NEEDS_HUMAN
    assert outcome.summary.startswith(
        f"could not restore v1 on staging: could not stage {one.name}"
    )
    assert outcome.summary.endswith(
        ". v2 is live. A person is needed: see 'lastgood status staging'"
    )
    record = made.store.deployments("staging")[0]
    assert (record.kind, record.status, record.activated_at) == ("rollback", "failed", None)
    assert kinds(heard) == ["rollback-started", "restore-failed"]


def test_an_offline_rollback_switches_and_leaves_its_record_for_the_next_command(
    project: ProjectFactory,
) -> None:
    made = two_deployed(project())
    records = made.store.deployments("staging")

    outcome = rollback_offline(made.config, "staging", reason="the store is down")

    assert (outcome.exit_code, outcome.version, outcome.from_version) == (OK, 1, 2)
    assert (
        outcome.summary.startswith("switched staging to v1-") and "checks pass" in outcome.summary
    )
    assert made.target("staging").live() == release_of(made.store.version(1))
    [line] = offline_log_path(made.root).read_text().splitlines()
    entry = json.loads(line)
    assert {k: entry[k] for k in ("env", "from_version", "to_version", "reason", "status")} == {
        "env": "staging", "from_version": 2, "to_version": 1, "reason": "the store is down",
        "status": "succeeded",
    }  # fmt: skip
    assert made.store.deployments("staging") == records  # the store was not touched
    with pytest.raises(NotFoundError, match="holds no earlier good release"):
        rollback_offline(made.config, "staging")  # v2 is withdrawn on the target: no way back
