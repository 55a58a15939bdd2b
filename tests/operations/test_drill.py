"""``lastgood.operations.drill`` in process: what a drill proves and records, the refusals that
keep it off a protected or unproven environment, and a drill stopped half-way. (The same drills
through the real CLI, SIGTERM included, are in ``tests/test_drill.py``.)"""

from __future__ import annotations

import json

import pytest

from lastgood.errors import ConfigError, RefusedError
from lastgood.events import Event, EventKind
from lastgood.operations.drill import BROKEN_VARIANT, INJECTED, MARKER, drill
from lastgood.outcome import NEEDS_HUMAN, OK
from lastgood.project import Project
from tests.operations.conftest import ProjectFactory, deployed, kinds, listen, outage, write

BROKEN = '\n[env.staging.drill]\nfiles = { "health.txt" = "drills/broken-health.txt" }\n'
UNSEEN = '\n[env.staging.drill]\nfiles = { "scoring/thresholds.yaml" = "drills/zero.yaml" }\n'
DRILLS_NOT_VERSIONED = '\n[versioning]\nexclude = ["drills/**"]\n'


def ready(project: ProjectFactory, drill_toml: str = BROKEN, **policy: object) -> Project:
    """v1 deployed and good on staging, with the drill's broken files in the workspace."""
    made = project(toml=drill_toml + DRILLS_NOT_VERSIONED, **policy)
    write(made, {"drills/broken-health.txt": "fail\n", "drills/zero.yaml": "threshold: 99\n"})
    deployed(made, marker="one")
    return made


def test_a_drill_catches_its_variant_restores_the_bytes_and_keeps_the_figures(
    project: ProjectFactory,
) -> None:
    made = ready(project)
    heard = listen(made)

    result = drill(made, "staging", reason="monthly")

    assert (result.passed, result.exit_code, result.kind) == (True, OK, BROKEN_VARIANT)
    assert (result.live_version, result.variant, result.bytes_verified) == (1, 2, True)
    assert result.time_to_detect is not None and result.time_to_detect >= 0
    assert result.time_to_verified is not None and result.time_to_verified <= result.budget
    assert result.summary.startswith("drill passed: v2 was caught and v1 restored; detected in ")
    variant = made.store.version(2)
    assert (variant.source, variant.message) == ("drill", "drill: broken-variant of v1 on staging")
    assert made.store.files(2)["health.txt"] == b"fail\n"
    assert made.store.verdicts("staging") == {1: "good", 2: "bad"}
    record = result.record
    assert record is not None and record == made.store.deployments("staging")[0]
    assert (record.kind, record.status, record.reason, record.source) == (
        "drill", "passed", "monthly", "drill",
    )  # fmt: skip
    figures = json.loads(record.detail)
    assert figures["time_to_verified"] == result.time_to_verified
    assert (figures["override_protection"], figures["summary"]) == (False, result.summary)
    assert kinds(heard)[:2] == ["check-round", "drill-started"]  # healthy now, then break it
    assert heard[0].data == {"ok": True, "phase": "drill", "round": 0}
    assert heard[1].message == "drill on staging: breaking v1 on purpose with v2"
    assert kinds(heard)[-1] == "drill-finished"
    assert heard[-1].data["passed"] is True and heard[-1].deployment == record.id


def test_without_drill_files_a_failure_is_injected_and_the_drill_says_it_is_weaker(
    project: ProjectFactory,
) -> None:
    made = ready(project, drill_toml="")
    heard = listen(made)
    result = drill(made, "staging")
    assert result.passed and result.kind == INJECTED
    assert "(the weaker drill: a failing round was injected" in result.summary
    assert MARKER in made.store.files(2)
    assert heard[1].message.endswith("(the weaker kind: no broken variant is configured)")


def test_a_variant_the_checks_miss_fails_the_drill_and_is_undone(project: ProjectFactory) -> None:
    made = ready(project, drill_toml=UNSEEN)
    result = drill(made, "staging")
    assert (result.passed, result.exit_code) == (False, NEEDS_HUMAN)
    assert result.summary == (
        "the checks did not catch v2, the broken variant: they let it pass its bake. v1 was "
        "restored by a rollback. Add a check that sees this breakage"
    )
    assert made.store.verdicts("staging")[2] == "bad"  # broken by construction
    assert made.target("staging").live() is not None
    assert made.target("staging").live().version == 1  # type: ignore[union-attr]


def test_a_restore_slower_than_the_budget_fails_the_drill(project: ProjectFactory) -> None:
    made = ready(project, budget="0s")
    result = drill(made, "staging")
    assert not result.passed and result.bytes_verified
    assert result.summary.startswith("the restore took longer than the budget: detected in ")
    assert result.record is not None and result.record.status == "failed"


def test_a_protected_environment_is_drilled_only_when_overridden_and_it_is_recorded(
    project: ProjectFactory,
) -> None:
    made = ready(project, protected=True)
    with pytest.raises(RefusedError) as refused:
        drill(made, "staging")
    assert refused.value.message.startswith("staging is protected: drills rehearse on")
    assert "'lastgood drill staging --override-protection'" in str(refused.value.hint)
    assert made.store.head() is not None and made.store.head().number == 1  # type: ignore[union-attr]

    result = drill(made, "staging", override_protection=True)
    assert result.passed and result.record is not None
    assert json.loads(result.record.detail)["override_protection"] is True


@pytest.mark.parametrize("state", ["nothing live", "unhealthy"])
def test_a_drill_starts_only_from_a_proven_healthy_version(
    project: ProjectFactory, state: str
) -> None:
    made = project(toml=BROKEN + DRILLS_NOT_VERSIONED)
    if state == "unhealthy":
        deployed(made, marker="one")
        outage(made)
    with pytest.raises(RefusedError) as refused:
        drill(made, "staging")
    expected = (
        "staging serves nothing, which is not its last known good version"
        if state == "nothing live"
        else "staging is not healthy right now ('health-file-ok' failed: "
    )
    assert refused.value.message.startswith(expected)
    assert [v.source for v in made.store.versions()] == ["cli"] * (state == "unhealthy")


def test_a_drill_file_that_cannot_be_read_is_a_config_error_naming_it(
    project: ProjectFactory,
) -> None:
    made = ready(project)
    (made.root / "drills" / "broken-health.txt").unlink()
    with pytest.raises(ConfigError) as refused:
        drill(made, "staging")
    assert refused.value.message == (
        "env.staging.drill.files: cannot read 'drills/broken-health.txt' for 'health.txt': No "
        "such file or directory"
    )


def test_a_drill_stopped_half_way_puts_the_live_version_back_and_records_why(
    project: ProjectFactory,
) -> None:
    """Ctrl-C arrives the moment the broken variant goes live (an event, not a wait)."""
    made = ready(project, drill_toml=UNSEEN)
    interrupted: list[Event] = []

    def interrupt(event: Event) -> None:
        if event.kind is EventKind.ACTIVATED and not interrupted:
            interrupted.append(event)
            raise KeyboardInterrupt

    made.events.subscribe(interrupt)
    with pytest.raises(KeyboardInterrupt):
        drill(made, "staging")

    assert interrupted[0].version == 2
    assert made.target("staging").live() is not None
    assert made.target("staging").live().version == 1  # type: ignore[union-attr]
    assert (made.root.parent / "live" / "current" / "scoring" / "thresholds.yaml").read_text() == (
        "threshold: 0.4\nmarker: one\n"
    )
    ledger = [(r.kind, r.status) for r in made.store.deployments("staging")]
    assert ledger[:3] == [("drill", "failed"), ("rollback", "succeeded"), ("deploy", "interrupted")]
    detail = json.loads(made.store.deployments("staging")[0].detail)["summary"]
    assert detail == (
        "the drill was stopped before it ended: stopped by an interrupt (Ctrl-C or SIGTERM) "
        "before it finished; v1 was put back"
    )
