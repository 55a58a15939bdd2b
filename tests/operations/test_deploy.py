"""``lastgood.operations.deploy`` in process: the plan, each step announced and recorded, and
every refusal before anything live changes. (``tests/test_deploy_rollback.py`` replays the
deploy-and-rollback sequences on SQLite and PostgreSQL.)"""

from __future__ import annotations

import pytest

from lastgood.bundle import Bundle
from lastgood.errors import (
    ConfigError,
    LockedError,
    PreflightError,
    QuarantinedError,
    StagingError,
    ValidationError,
)
from lastgood.events import EventKind
from lastgood.operations.deploy import deploy, plan_deploy
from lastgood.operations.restore import release_of
from lastgood.operations.rollback import rollback
from lastgood.operations.snapshot import snapshot
from lastgood.outcome import NEEDS_HUMAN, OK, RESTORED
from tests.conftest import CHECK_OK, broken_files, healthy_files
from tests.operations.conftest import (
    ProjectFactory,
    deployed,
    kinds,
    listen,
    live_folder,
    version,
    write,
)

# passes only when the candidate it is given says "marker: three"
PREFLIGHT = """
[[env.staging.preflight]]
name = "candidate-is-three"
type = "command"
run = 'grep -q "marker: three" "$LASTGOOD_PATH/scoring/thresholds.yaml"'
"""
PRODUCTION = f"""
[env.production]
target = {{ type = "directory", path = "../live-production" }}
bake = "0s"
interval = "10ms"

[[env.production.check]]
name = "health-file-ok"
type = "command"
run = '{CHECK_OK}'
"""


def test_a_deploy_announces_every_step_in_order_and_records_its_times(
    project: ProjectFactory,
) -> None:
    made = project()
    heard = listen(made)

    outcome = deployed(made, marker="one", message="first")

    assert (outcome.exit_code, outcome.summary) == (OK, "v1 is live on staging and passed its bake")
    assert kinds(heard) == [
        "snapshot-created", "deploy-started", "staged", "activated", "check-round",
        "bake-passed", "deploy-succeeded",
    ]  # fmt: skip
    assert heard[1].message == "deploying nothing → v1 on staging by tester"
    assert heard[3].message == "v1 is live on staging; baking for 0 ms"
    record = outcome.deployment
    assert record is not None and record == made.store.deployments("staging")[0]
    assert (record.kind, record.status, record.from_version, record.to_version) == (
        "deploy", "succeeded", None, 1,
    )  # fmt: skip
    assert (record.actor, record.reason, record.source) == ("tester", "first", "cli")
    assert record.activated_at is not None and record.verified_at is not None
    assert record.requested_at <= record.activated_at <= record.verified_at
    assert record.verified_at <= (record.finished_at or 0)
    assert all(e.deployment == record.id for e in heard[1:])
    [checked] = made.store.check_records(deployment=record.id)
    assert (checked.phase, checked.round, checked.ok) == ("bake", 1, True)


def test_a_failed_bake_is_recorded_with_its_automatic_rollback(project: ProjectFactory) -> None:
    made = project(failures=3)
    deployed(made, marker="one")
    heard = listen(made)

    outcome = deployed(made, files=broken_files("two"), message="raise the threshold")

    assert outcome.exit_code == RESTORED
    deploy_record, restore = outcome.deployment, outcome.restore
    assert deploy_record is not None and restore is not None
    assert (deploy_record.status, deploy_record.to_version) == ("failed-restored", 2)
    assert deploy_record.detail.startswith("'health-file-ok' on staging (`grep -qx ok")
    bake = made.store.check_records(deployment=deploy_record.id)
    assert [(c.phase, c.ok) for c in reversed(bake)] == [("baseline", True)] + [("bake", False)] * 3
    assert (restore.kind, restore.status, restore.actor, restore.source, restore.parent) == (
        "auto-rollback", "succeeded", "lastgood", "auto", deploy_record.id,
    )  # fmt: skip
    assert (restore.from_version, restore.to_version) == (2, 1)
    assert restore.reason == f"v2 failed: {deploy_record.detail}"
    assert restore.trigger_at == deploy_record.failed_at  # timed from the tripping round
    assert kinds(heard)[-4:] == ["deploy-failed", "auto-rollback-started", "check-round",
                                 "auto-rolled-back"]  # fmt: skip
    assert made.store.verdicts("staging") == {1: "good", 2: "bad"}


def test_a_quarantined_version_is_refused_with_the_way_to_insist(project: ProjectFactory) -> None:
    made = project()
    deployed(made, marker="one")
    deployed(made, files=broken_files("two"))
    records = len(made.store.deployments("staging"))
    heard = listen(made)

    with pytest.raises(QuarantinedError) as refused:
        deploy(made, "staging", ref="v2")

    assert refused.value.message == (
        "v2 failed its checks on staging before and is quarantined there"
    )
    assert "'lastgood deploy staging --version v2 --force'" in str(refused.value.hint)
    assert kinds(heard) == ["deploy-refused"]
    twin = made.store.add_version(  # the same content again, under a number that never ran
        Bundle(made.store.files(2)), author="tester", message="v2 again", source="cli"
    )
    with pytest.raises(QuarantinedError) as again:
        deploy(made, "staging", ref=twin.label)
    assert again.value.message == (
        f"{twin.label} has the same content as v2, which failed its checks on staging, so it is "
        "quarantined there"
    )
    with pytest.raises(QuarantinedError, match=f"^{twin.label} has the same content as v2, wh"):
        rollback(made, "staging", to=twin.label)
    assert len(made.store.deployments("staging")) == records  # refused before any record
    assert "marker: one" in (live_folder(made) / "scoring" / "thresholds.yaml").read_text()


def test_a_first_version_that_fails_stays_live_and_says_a_person_is_needed(
    project: ProjectFactory,
) -> None:
    made = project()
    heard = listen(made)
    outcome = deployed(made, files=broken_files("one"))
    assert outcome.exit_code == NEEDS_HUMAN
    assert outcome.deployment is not None and outcome.deployment.status == "failed"
    assert outcome.restore is None
    [event] = [e for e in heard if e.kind is EventKind.RESTORE_FAILED]
    assert event.message == outcome.summary
    assert "there is no last known good version to restore: v1 is still live" in outcome.summary
    assert "'lastgood rollback staging --to REF'" in outcome.summary
    assert made.store.verdicts("staging") == {1: "bad"}


@pytest.mark.parametrize("target", ["directory", "files"])
def test_the_preflight_judges_the_staged_candidate_not_what_is_live(
    project: ProjectFactory, target: str
) -> None:
    made = project(target, toml=PREFLIGHT)
    assert deployed(made, marker="three").exit_code == OK  # the candidate says three
    heard = listen(made)

    with pytest.raises(PreflightError) as refused:
        deployed(made, marker="four")  # live says three; the candidate does not

    assert refused.value.message.startswith(
        "preflight failed for v2 on staging: 'candidate-is-three' failed: `grep -q"
    )
    assert refused.value.message.endswith("; nothing live changed (v1 still live)")
    assert kinds(heard) == ["snapshot-created", "deploy-started", "check-round", "staged",
                            "check-round", "check-failed", "preflight-failed"]  # fmt: skip
    record = made.store.deployments("staging")[0]
    assert (record.status, record.activated_at) == ("refused", None)
    assert made.target("staging").live() == release_of(made.store.version(1))


def test_a_version_named_by_reference_is_validated_before_anything_is_staged(
    project: ProjectFactory,
) -> None:
    made = project()
    deployed(made, marker="one")
    version(made, {**healthy_files("two"), "routing/rules.json": '{"region": '})

    with pytest.raises(ValidationError, match=r"routing/rules\.json"):
        deploy(made, "staging", ref="v2")

    assert [r.to_version for r in made.store.deployments("staging")] == [1]
    assert [r.version for r in made.target("staging").retained()] == [1]


def test_what_staging_proved_is_promoted_to_production_as_the_same_version(
    project: ProjectFactory,
) -> None:
    made = project(toml=PRODUCTION)
    deployed(made, marker="one")
    deployed(made, marker="two")
    write(made, healthy_files("not yet proven"))

    outcome = deploy(made, "production", ref="staging:last-good", message="promote")

    assert (outcome.exit_code, outcome.version) == (OK, 2)
    assert made.store.head() is not None and made.store.head().number == 2  # type: ignore[union-attr]
    assert made.store.env_state("production").last_good == 2
    promoted = made.root.parent / "live-production" / "current" / "scoring" / "thresholds.yaml"
    assert promoted.read_text().endswith("marker: two\n")


def test_a_broken_check_option_is_refused_before_the_folder_is_recorded(
    project: ProjectFactory,
) -> None:
    made = project(toml='\n[[env.staging.check]]\nname = "scorer-up"\ntype = "http"\n')
    write(made, healthy_files())
    with pytest.raises(ConfigError, match="scorer-up"):
        deploy(made, "staging")
    assert made.store.head() is None


def test_an_unknown_environment_names_the_known_ones(project: ProjectFactory) -> None:
    made = project()
    write(made, healthy_files())
    with pytest.raises(ConfigError) as refused:
        deploy(made, "prod")
    assert refused.value.message.startswith("no environment named 'prod'")
    assert "known environments: staging" in str(refused.value.hint)
    assert made.store.head() is None


def test_a_held_lease_refuses_the_deploy_before_it_opens_a_record(
    project: ProjectFactory,
) -> None:
    made = project()
    made.store.acquire_lease("env:staging", purpose="rollback", holder_name="ana", ttl=600)
    with pytest.raises(LockedError, match="env:staging is locked by ana"):
        deployed(made, marker="one")
    assert made.store.deployments("staging") == []
    assert made.target("staging").live() is None


def test_a_target_that_cannot_stage_refuses_and_closes_the_record(project: ProjectFactory) -> None:
    made = project()
    theirs = made.root.parent / "live"
    theirs.mkdir()
    (theirs / "index.html").write_text("someone else's\n")
    with pytest.raises(StagingError) as refused:
        deployed(made, marker="one")
    assert refused.value.exit_code == 5
    assert refused.value.message.startswith("could not stage v1-")
    assert refused.value.message.endswith(
        "is a non-empty folder that is not a lastgood directory target (it has no releases/ "
        "and no current); nothing live changed"
    )
    assert "lastgood never writes into a folder it does not own" in str(refused.value.hint)
    assert sorted(p.name for p in theirs.iterdir()) == ["index.html"]
    [record] = made.store.deployments("staging")
    assert (record.status, record.detail) == ("refused", refused.value.message)


def test_a_good_deploy_keeps_only_the_newest_releases(project: ProjectFactory) -> None:
    made = project()  # target keep = 5
    for number in range(1, 8):
        deployed(made, marker=str(number))
    assert [r.version for r in made.target("staging").retained()] == [3, 4, 5, 6, 7]


def test_the_plan_of_a_first_deploy_and_of_a_named_version(project: ProjectFactory) -> None:
    made = project(checks=False)
    write(made, healthy_files("one"))
    first = plan_deploy(made, "staging")
    assert [(s.action, s.detail) for s in first.plan] == [
        ("snapshot", "record the folder as a new version"),
        ("validate", "2 files, syntax and schemas"),
        ("stage", "a new version on directory ../live"),
        ("preflight", "none configured"),
        ("activate", "a new version (live now: nothing)"),
        ("bake", "0 ms of no checks configured every 10 ms; 2 failed rounds roll back to no "
                 "last known good yet"),
    ]  # fmt: skip
    assert first.changes["added"] == ["health.txt", "scoring/thresholds.yaml"]
    deployed(made, marker="one")
    write(made, {"scoring/thresholds.yaml": "threshold: 0.5\n"})
    (made.root / "health.txt").unlink()
    snapshot(made, "two")
    named = plan_deploy(made, "staging", ref="v2")
    assert (named.version, named.from_version, named.summary) == (
        2,
        1,
        "plan: deploy v2 to staging",
    )
    assert named.plan[0].action == "validate"  # recorded already: no snapshot step
    assert named.changes == {"added": [], "changed": ["scoring/thresholds.yaml"],
                             "removed": ["health.txt"]}  # fmt: skip
    assert made.store.deployments("staging")[0].to_version == 1  # planning changed nothing
