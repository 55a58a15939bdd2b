"""Deploy and rollback semantics through the verbs, on SQLite and on PostgreSQL."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from lastgood.errors import (
    BaselineError,
    NotFoundError,
    PreflightError,
    QuarantinedError,
    ValidationError,
)
from lastgood.operations.deploy import deploy, plan_deploy
from lastgood.operations.restore import release_of
from lastgood.operations.rollback import rollback
from lastgood.operations.snapshot import snapshot
from lastgood.operations.status import history, status
from lastgood.outcome import NEEDS_HUMAN, OK, RESTORED
from tests.conftest import FAST, Workspace

Factory = Callable[..., Workspace]


def live_text(ws: Workspace) -> str:
    return (ws.base / "live" / "current" / "scoring" / "thresholds.yaml").read_text()


def without_checks(ws: Workspace) -> Workspace:
    """``ws`` with its environment's checks removed from lastgood.toml."""
    config = (ws.root / "lastgood.toml").read_text()
    (ws.root / "lastgood.toml").write_text(config.split("[[env.staging.check]]")[0])
    return ws


@pytest.fixture
def ws(workspace: Factory, store_url: str) -> Workspace:
    return workspace(store=store_url, **FAST)


def test_good_deploy_becomes_last_known_good(ws: Workspace) -> None:
    ws.healthy("one")
    project = ws.project()
    outcome = deploy(project, "staging", message="first")
    assert outcome.exit_code == OK
    assert "passed its bake" in outcome.summary
    assert "marker: one" in live_text(ws)
    state = project.store.env_state("staging")
    assert (state.live_version, state.last_good) == (1, 1)
    assert project.store.verdicts("staging") == {1: "good"}


def test_failed_bake_restores_last_known_good_and_quarantines(ws: Workspace) -> None:
    project = ws.project()
    ws.healthy("one")
    deploy(project, "staging")
    ws.broken()
    outcome = deploy(project, "staging", message="raise threshold")
    assert outcome.exit_code == RESTORED
    assert "restored v1" in outcome.summary and "failed" in outcome.summary
    assert "marker: one" in live_text(ws)
    assert outcome.restore is not None and outcome.restore.kind == "auto-rollback"
    assert outcome.restore.time_to_active is not None and outcome.restore.time_to_active < 5
    assert project.store.verdicts("staging")[2] == "bad"
    kinds = [(d.kind, d.status) for d in history(project, "staging").deployments]
    assert kinds[:2] == [("auto-rollback", "succeeded"), ("deploy", "failed-restored")]


def test_bad_version_is_refused_even_as_a_new_snapshot(ws: Workspace) -> None:
    project = ws.project()
    ws.healthy("one")
    deploy(project, "staging")
    ws.broken()
    deploy(project, "staging")
    ws.healthy("two")
    deploy(project, "staging")  # v3, good
    ws.broken()  # same content as v2: a new snapshot v4 with v2's hash
    with pytest.raises(QuarantinedError, match="quarantined"):
        deploy(project, "staging")
    forced = deploy(project, "staging", force=True)
    assert forced.exit_code == RESTORED
    assert "marker: two" in live_text(ws)


def test_rollback_twice_walks_back_and_never_lands_on_bad(ws: Workspace) -> None:
    project = ws.project()
    for marker in ("one", "two"):
        ws.healthy(marker)
        deploy(project, "staging")
    ws.broken()
    deploy(project, "staging")  # v3 bad, auto-rollback to v2
    ws.healthy("four")
    deploy(project, "staging")  # v4 good
    first = rollback(project, "staging", reason="scores look off")
    assert (first.exit_code, first.version) == (OK, 2)
    assert "marker: two" in live_text(ws)
    second = rollback(project, "staging")
    assert (second.exit_code, second.version) == (OK, 1)
    assert "marker: one" in live_text(ws)
    with pytest.raises(NotFoundError, match="no known good version"):
        rollback(project, "staging")
    assert project.store.verdicts("staging")[3] == "bad"


def test_rolling_back_to_and_fro_keeps_a_last_known_good_and_the_next_bad_deploy_is_undone(
    ws: Workspace,
) -> None:
    """A person rolls back to v1, changes their mind and rolls back to v2 again: v2 passed its
    bake before and is verified now, so it is last known good again (it used to stay
    withdrawn, with v1 withdrawn too: no last known good, and the next bad deploy stayed
    live)."""
    project = ws.project()
    for marker in ("one", "two"):
        ws.healthy(marker)
        deploy(project, "staging")
    assert rollback(project, "staging", to="v1").version == 1
    assert project.store.env_state("staging").last_good == 1
    again = rollback(project, "staging", to="v2")
    assert (again.exit_code, again.version) == (OK, 2)
    assert project.store.verdicts("staging") == {1: "withdrawn", 2: "good"}
    assert project.store.env_state("staging").last_good == 2
    ws.broken()
    bad = deploy(project, "staging")
    assert bad.exit_code == RESTORED  # v3 failed and v2 is back
    assert "marker: two" in live_text(ws)


def test_a_withdrawn_version_that_never_passed_a_bake_does_not_become_good(ws: Workspace) -> None:
    """Forced live with ``--to --force`` (never baked), rolled away from, then rolled back to:
    verified, live, but not last known good: only a bake makes a version good."""
    project = ws.project()
    ws.healthy("one")
    deploy(project, "staging")
    ws.broken()
    deploy(project, "staging")  # v2 bad
    ws.healthy("three")
    deploy(project, "staging")  # v3 good
    assert rollback(project, "staging", to="v2", force=True).version == 2
    rollback(project, "staging", to="v3")
    assert project.store.verdicts("staging")[2] == "bad"
    assert project.store.env_state("staging").last_good == 3


def test_rollback_to_a_named_version_and_refusing_a_bad_one(ws: Workspace) -> None:
    project = ws.project()
    ws.healthy("one")
    deploy(project, "staging")
    ws.broken()
    deploy(project, "staging")
    ws.healthy("three")
    deploy(project, "staging")
    with pytest.raises(QuarantinedError, match="v2 failed its checks"):
        rollback(project, "staging", to="v2")
    done = rollback(project, "staging", to="1")
    assert done.version == 1 and "marker: one" in live_text(ws)
    assert rollback(project, "staging", to="v1").summary.endswith("nothing to do")


def test_dry_run_changes_nothing(ws: Workspace) -> None:
    project = ws.project()
    ws.healthy("one")
    deploy(project, "staging")
    ws.write("scoring/extra.yaml", "a: 1\n")
    plan = plan_deploy(project, "staging")
    assert plan.dry_run and plan.changes["added"] == ["scoring/extra.yaml"]
    assert plan.plan[0].action == "snapshot"
    steps = [step.action for step in plan.plan]
    assert steps == ["snapshot", "validate", "baseline", "stage", "preflight", "activate", "bake"]
    assert "health-file-ok against v1" in plan.plan[2].detail
    assert project.store.head().number == 1  # type: ignore[union-attr]
    assert not (ws.base / "live" / "current" / "scoring" / "extra.yaml").exists()


def test_preflight_failure_refuses_before_anything_live_changes(
    workspace: Factory, tmp_path: Path
) -> None:
    ws = workspace(**FAST)
    config = (ws.root / "lastgood.toml").read_text()
    config += (
        '\n[[env.staging.preflight]]\nname = "candidate-ok"\ntype = "command"\n'
        "run = 'grep -q ok \"$LASTGOOD_PATH/health.txt\"'\n"
    )
    (ws.root / "lastgood.toml").write_text(config)
    project = ws.project()
    ws.healthy("one")
    deploy(project, "staging")
    ws.broken()
    with pytest.raises(PreflightError, match="'candidate-ok' failed") as raised:
        deploy(project, "staging")
    assert raised.value.exit_code == 5
    assert "v1 still live" in str(raised.value)
    assert "marker: one" in live_text(ws)
    assert project.store.verdicts("staging").get(2) is None


def test_validation_failure_is_refused(ws: Workspace) -> None:
    project = ws.project()
    ws.healthy("one")
    ws.write("scoring/broken.yaml", "a: [1, 2\n")
    with pytest.raises(ValidationError, match=r"scoring/broken\.yaml") as raised:
        deploy(project, "staging")
    assert raised.value.exit_code == 5
    assert not (ws.base / "live").exists() or not (ws.base / "live" / "current").exists()
    assert project.store.head() is None  # an invalid folder never becomes a version


def test_first_deploy_failing_needs_a_human(ws: Workspace) -> None:
    project = ws.project()
    ws.broken()
    outcome = deploy(project, "staging")
    assert outcome.exit_code == NEEDS_HUMAN
    assert "no last known good" in outcome.summary


def test_unchanged_deploy_is_a_recorded_no_op(ws: Workspace) -> None:
    project = ws.project()
    ws.healthy("one")
    deploy(project, "staging")
    again = deploy(project, "staging")
    assert again.exit_code == OK and "nothing to do" in again.summary
    assert history(project, "staging").deployments[0].status == "unchanged"


def test_status_reports_drift_and_restore_times(ws: Workspace) -> None:
    project = ws.project()
    ws.healthy("one")
    deploy(project, "staging")
    ws.broken()
    deploy(project, "staging")
    (report,) = status(project, "staging")
    assert report.live_version == 1 and report.last_good == 1
    assert len(report.restores) == 1 and report.within_budget
    assert not report.drifted
    live_file = ws.base / "live" / "current" / "scoring" / "thresholds.yaml"
    live_file.write_text("threshold: 0.0\n")
    (report,) = status(project, "staging")
    assert report.drifted
    assert any("drift" in warning for warning in report.warnings)


def test_restore_that_cannot_be_verified_needs_a_human(ws: Workspace) -> None:
    project = ws.project()
    ws.healthy("one")
    deploy(project, "staging")
    ws.healthy("two")
    deploy(project, "staging")
    (ws.base / "outage").write_text("the CRM is down\n")  # the world breaks, not the config
    outcome = rollback(project, "staging")
    assert outcome.exit_code == NEEDS_HUMAN
    assert "A person is needed" in outcome.summary


def test_rollback_never_lands_on_hand_edited_content(ws: Workspace) -> None:
    project = ws.project()
    ws.healthy("one")
    deploy(project, "staging")
    ws.healthy("two")
    deploy(project, "staging")
    # someone "fixed" v1's retained release by hand; a pointer switch alone would serve it
    release = next((ws.base / "live" / "releases").glob("v1-*"))
    (release / "scoring" / "thresholds.yaml").write_text("threshold: 0.0\n")
    (release / "stray.txt").write_text("left behind\n")
    outcome = rollback(project, "staging", to="v1")
    assert outcome.exit_code == OK
    live = ws.base / "live" / "current"
    assert (live / "scoring" / "thresholds.yaml").read_bytes() == project.store.files(1)[
        "scoring/thresholds.yaml"
    ]
    assert not (live / "stray.txt").exists()
    kinds = [event.kind for event in history(project, "staging").events]
    assert "drift-repaired" in kinds


def test_deploying_the_live_version_repairs_drift(ws: Workspace) -> None:
    project = ws.project()
    ws.healthy("one")
    deploy(project, "staging")
    (ws.base / "live" / "current" / "health.txt").write_text("edited\n")
    (report,) = status(project, "staging")
    assert report.drifted and "--version v1" in report.warnings[0]
    outcome = deploy(project, "staging", ref="v1")
    assert "rewrote 1 file edited by hand: health.txt" in outcome.summary
    (report,) = status(project, "staging")
    assert not report.drifted


# ---- sequences found in review: last known good must always be a good version --------------


def test_auto_rollback_skips_a_last_good_that_was_rolled_away_from(ws: Workspace) -> None:
    project = ws.project()
    for marker in ("one", "two"):
        ws.healthy(marker)
        deploy(project, "staging")
    (ws.base / "outage").write_text("down\n")
    assert rollback(project, "staging").exit_code == NEEDS_HUMAN  # v1 live, unverified
    (ws.base / "outage").unlink()
    assert project.store.env_state("staging").last_good == 1  # not the withdrawn v2
    ws.broken()
    outcome = deploy(project, "staging")
    assert outcome.exit_code == RESTORED and outcome.restored_version == 1
    assert "marker: one" in live_text(ws)


def test_a_last_good_that_fails_later_is_not_the_fallback(ws: Workspace) -> None:
    project = ws.project()
    for marker in ("one", "two", "three"):
        ws.healthy(marker)
        deploy(project, "staging")
    (ws.base / "outage").write_text("down\n")
    # v2 fails now and is marked bad (deployed into the outage on purpose, past the baseline)
    failed = deploy(project, "staging", ref="v2", ignore_baseline=True)
    # v3 is put back, but the outage fails its checks too: a person is needed
    assert (failed.exit_code, failed.restored_version) == (NEEDS_HUMAN, 3)
    (ws.base / "outage").unlink()
    assert project.store.verdicts("staging")[2] == "bad"
    assert project.store.env_state("staging").last_good == 3
    ws.broken()
    again = deploy(project, "staging")
    assert (again.exit_code, again.restored_version) == (RESTORED, 3)
    assert project.store.verdicts("staging")[2] == "bad"  # never silently made good again


def test_rollback_to_a_version_that_never_ran_here_is_refused(ws: Workspace) -> None:
    project = ws.project()
    ws.healthy("one")
    deploy(project, "staging")
    ws.write("x.json", "{bad json")
    from lastgood.errors import RefusedError
    from lastgood.operations.snapshot import snapshot

    snapshot(project, "never deployed")
    with pytest.raises(RefusedError, match="v2 never ran on staging") as raised:
        rollback(project, "staging", to="v2")
    assert "lastgood deploy staging --version v2" in str(raised.value)
    assert "marker: one" in live_text(ws)


def test_previous_never_names_the_live_version(ws: Workspace) -> None:
    project = ws.project()
    from lastgood.operations.resolve import resolve

    for marker in ("one", "two"):
        ws.healthy(marker)
        deploy(project, "staging")
    ws.healthy("three")
    deploy(project, "staging")
    deploy(project, "staging", ref="v3")  # redeploy of the live version: v3 → v3
    assert resolve(project, "staging:previous").number == 2


def test_an_unverified_restore_counts_against_the_budget(ws: Workspace) -> None:
    project = ws.project()
    for marker in ("one", "two"):
        ws.healthy(marker)
        deploy(project, "staging")
    (ws.base / "outage").write_text("down\n")
    assert rollback(project, "staging").exit_code == NEEDS_HUMAN
    (report,) = status(project, "staging")
    assert len(report.restores) == 1 and report.verified == []  # it switched, never verified
    assert report.unverified_restores == 1
    assert not report.within_budget
    assert any("never verified" in warning for warning in report.warnings)


def test_a_broken_check_is_not_blamed_on_the_new_version(workspace: Factory) -> None:
    """A typo in a check fails the baseline round: nothing switches, nothing is quarantined."""
    ws = workspace(**FAST)
    ws.healthy("one")
    assert ws.run("deploy", "staging", "-m", "first").returncode == 0
    config = (ws.root / "lastgood.toml").read_text()
    (ws.root / "lastgood.toml").write_text(config.replace("grep -qx ok", "grepp -qx ok"))
    ws.healthy("two")

    refused = ws.run("deploy", "staging", "-m", "second")

    assert refused.returncode == 5, refused.stderr
    assert "the checks of staging already fail before the change, against v1" in refused.stderr
    assert "v2 is not blamed" in refused.stderr
    assert "--ignore-baseline" in refused.stderr
    assert "marker: one" in live_text(ws)
    project = ws.project()
    assert project.store.verdicts("staging") == {1: "good"}
    [last, _] = history(project, "staging").deployments
    assert (last.kind, last.status, last.to_version) == ("deploy", "refused", 2)
    assert [c.phase for c in project.store.check_records(deployment=last.id)] == ["baseline"]

    (ws.root / "lastgood.toml").write_text(config)  # the check fixed: v2 deploys, unblamed
    again = ws.run("deploy", "staging", "-m", "second, checks fixed")
    assert again.returncode == 0, again.stderr
    assert "marker: two" in live_text(ws)


def test_ignore_baseline_deploys_into_a_failing_environment(ws: Workspace) -> None:
    project = ws.project()
    ws.healthy("one")
    deploy(project, "staging")
    (ws.base / "outage").write_text("the world is down\n")
    ws.healthy("two")
    with pytest.raises(BaselineError):
        deploy(project, "staging")
    outcome = deploy(project, "staging", ignore_baseline=True)
    assert outcome.exit_code in (RESTORED, NEEDS_HUMAN)  # the bake judged it, as asked
    kinds = [e.kind for e in project.store.events("staging")]
    assert "baseline-ignored" in kinds


def test_an_environment_without_checks_is_never_called_verified(workspace: Factory) -> None:
    ws = without_checks(workspace(**FAST))
    for marker in ("one", "two"):
        ws.healthy(marker)
        done = ws.run("deploy", "staging", "-m", marker)
        assert done.returncode == 0, done.stderr
        assert "no checks are configured, so nothing proved it healthy" in done.stdout
        assert "passed its bake" not in done.stdout

    back = ws.run("rollback", "staging", "-m", "undo")
    assert back.returncode == 0, back.stderr
    assert "no checks are configured, so nothing proved it healthy" in back.stdout
    assert "verified in" not in back.stdout and "verified in" not in back.stderr  # the events

    shown = ws.run("status", "staging")
    assert "no checks configured: nothing proves it healthy" in shown.stdout
    assert "healthy" not in shown.stdout.replace("nothing proves it healthy", "")
    assert "not verified (no checks configured)" in shown.stdout
    assert "verified in" not in shown.stdout
    [record] = [
        d
        for d in json.loads(ws.run("history", "staging", "--json").stdout)["deployments"]
        if d["kind"] == "rollback"
    ]
    assert record["verified_at"] is None and record["time_to_verified"] is None
    for fmt in ("text", "markdown", "html"):
        report = ws.run("report", "staging", "--format", fmt).stdout
        assert "nothing proved it healthy" in report, fmt
        assert "passed its checks" not in report, fmt
    text = ws.run("report", "staging").stdout
    assert "not verified (no checks configured)" in text
    assert "verified in" not in text


@pytest.mark.parametrize("kind", ["directory", "files"])
def test_rolling_back_a_drifted_last_good_restores_its_bytes(workspace: Factory, kind: str) -> None:
    ws = workspace(target=kind, **FAST)
    project = ws.project()
    ws.healthy("one")
    deploy(project, "staging")
    ws.healthy("two")
    deploy(project, "staging")
    live = ws.base / ("live/current" if kind == "directory" else "app")
    (live / "scoring" / "thresholds.yaml").write_text("threshold: 0.0\n")  # a hand edit

    outcome = rollback(project, "staging", reason="undo the hand edit")

    assert outcome.exit_code == OK, outcome.summary
    assert "restored its exact bytes" in outcome.summary and "nothing withdrawn" in outcome.summary
    assert (live / "scoring" / "thresholds.yaml").read_bytes() == project.store.files(2)[
        "scoring/thresholds.yaml"
    ]
    assert project.store.verdicts("staging") == {1: "good", 2: "good"}
    state = project.store.env_state("staging")
    assert (state.live_version, state.last_good) == (2, 2)
    (report,) = status(project, "staging")
    assert not report.drifted
    [record, *_] = history(project, "staging").deployments
    assert (record.kind, record.status, record.from_version, record.to_version) == (
        "rollback", "succeeded", 2, 2,
    )  # fmt: skip
    walked = rollback(project, "staging")  # intact now: a plain rollback walks back as before
    assert walked.version == 1


def test_rollback_to_a_kept_release_whose_copy_was_damaged_is_not_called_never_run(
    workspace: Factory,
) -> None:
    """A release the files target keeps (staged, refused by a preflight, never judged) stays a
    valid --to even when its kept copy was damaged: the copy is rewritten from the store."""
    ws = workspace(target="files", **FAST)
    project = ws.project()
    ws.healthy("one")
    deploy(project, "staging")
    ws.healthy("two")
    assert deploy(project, "staging").exit_code == OK
    ws.healthy("three")
    three = snapshot(project, "staged only").version
    target = project.target("staging")
    target.stage(release_of(three), project.store.files(three.number))  # kept, never judged
    copy = next((ws.base / "app" / ".lastgood-target" / "releases").glob("v3-*"))
    (copy / "health.txt").write_text("damaged\n")
    outcome = rollback(project, "staging", to="v3")
    assert outcome.exit_code == OK, outcome.summary
    assert (ws.base / "app" / "scoring" / "thresholds.yaml").read_text().endswith("three\n")


def test_a_fix_for_a_live_version_that_failed_is_not_held_by_the_baseline(
    workspace: Factory,
) -> None:
    """The first version failed and stayed live (nothing to restore): its checks fail, and that
    is exactly what the next deploy fixes. The baseline round is only for a proven live
    version."""
    ws = workspace(**FAST)
    project = ws.project()
    ws.broken("one")
    assert deploy(project, "staging").exit_code == NEEDS_HUMAN
    ws.healthy("fixed")
    outcome = deploy(project, "staging")
    assert outcome.exit_code == OK, outcome.summary
    assert "marker: fixed" in live_text(ws)


def test_an_offline_rollback_without_checks_is_not_called_verified(workspace: Factory) -> None:
    ws = without_checks(workspace(**FAST))
    for marker in ("one", "two"):
        ws.healthy(marker)
        assert ws.run("deploy", "staging").returncode == 0
    offline = ws.run("rollback", "staging", "--offline")
    assert offline.returncode == 0, offline.stderr
    assert "not verified: no checks are configured" in offline.stdout
    assert "checks pass" not in offline.stdout
    [status] = json.loads(ws.run("status", "staging", "--json").stdout)  # records it
    assert status["within_budget"] and status["verified"] == []
    [record] = [
        d
        for d in json.loads(ws.run("history", "staging", "--json").stdout)["deployments"]
        if d["kind"] == "offline-rollback"
    ]
    assert record["verified_at"] is None
