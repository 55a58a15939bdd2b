"""``lastgood.operations.checking``: a round runs every check at once, records the results and
says what failed, with real command checks against a real live folder."""

from __future__ import annotations

import pytest

from lastgood.checks import CheckResult
from lastgood.config import CheckSpec
from lastgood.errors import ConfigError
from lastgood.operations.checking import Round, build_checks, live_context, run_round
from lastgood.operations.place import Place
from lastgood.project import Project
from tests.operations.conftest import ProjectFactory, deployed, kinds, listen, live_folder

# each of the two checks waits for the other to have started: run one after the other, the
# first gives up after a second and fails; run at once, both pass at once
MEET = """
[[env.staging.check]]
name = "{me}"
type = "command"
run = 'touch ../{me}; for i in $(seq 50); do test -e ../{other} && exit 0; sleep 0.02; done; exit 1'
timeout = "5s"
"""


def round_of(project: Project, *, phase: str = "check", **options: object) -> Round:
    live = project.target("staging").live()
    checks = build_checks(project.config.environment("staging").checks)
    place = Place(project, "staging")
    return run_round(
        place, checks, live_context(place, live), phase=phase,
        number=1, deployment=None, **options,  # type: ignore[arg-type]
    )  # fmt: skip


def test_the_checks_of_a_round_run_at_once(project: ProjectFactory) -> None:
    meet = MEET.format(me="a", other="b") + MEET.format(me="b", other="a")
    made = project(checks=False, toml=meet)
    done = round_of(made)
    assert done.ok, done.summary()
    assert done.summary() == "2/2 checks passed"


def test_a_round_is_recorded_and_announced_with_what_failed(project: ProjectFactory) -> None:
    made = project()
    deployed(made)
    (live_folder(made) / "health.txt").write_text("fail\n")
    heard = listen(made)

    done = round_of(made, phase="check")

    assert not done.ok and done.failed_names() == "'health-file-ok'"
    assert done.summary().startswith("'health-file-ok' failed: `grep -qx ok")
    assert kinds(heard) == ["check-round", "check-failed"]
    assert heard[0].message == f"check round 1: {done.summary()}"
    assert heard[0].data == {"ok": False, "phase": "check", "round": 1}
    assert heard[1].message == f"check round 1 on staging: {done.summary()}"
    assert heard[1].data == {"failed": ["health-file-ok"], "phase": "check"}
    [kept] = made.store.check_records(env="staging", deployment=None, limit=1)
    assert (kept.phase, kept.name, kept.ok, kept.detail) == (
        "check", "health-file-ok", False, done.results[0].detail,
    )  # fmt: skip
    events = [e.kind for e in made.store.events("staging", limit=1)]
    assert events == ["check-failed"]  # the round itself is kept as check records, not events


def test_a_watchers_passing_rounds_are_not_kept_but_its_failures_are(
    project: ProjectFactory,
) -> None:
    made = project()
    deployed(made)
    kept = len(made.store.check_records(env="staging"))
    assert round_of(made, phase="watch", record_passing=False).ok
    assert len(made.store.check_records(env="staging")) == kept
    (live_folder(made) / "health.txt").write_text("fail\n")
    assert not round_of(made, phase="watch", record_passing=False).ok
    assert made.store.check_records(env="staging", limit=1)[0].phase == "watch"


def test_checks_get_the_live_folder_the_version_and_the_workspace(
    project: ProjectFactory,
) -> None:
    made = project()
    deployed(made)
    context = live_context(Place(made, "staging"), made.target("staging").live())
    assert (context.env, context.version, context.root) == ("staging", 1, made.root)
    assert context.path is not None and context.path.resolve() == live_folder(made).resolve()
    assert context.environ()["LASTGOOD_VERSION"] == "v1"


def test_round_sentences() -> None:
    failed = CheckResult("scores-not-zero", False, "query returned 0.0")
    passed = CheckResult("scorer-up", True, "200")
    assert Round("bake", 1, (), 0.0).summary() == "no checks"
    assert Round("bake", 1, (passed,), 0.0).failed_names() == "its checks"
    mixed = Round("bake", 2, (passed, failed, failed), 0.0)
    assert mixed.summary() == (
        "'scores-not-zero' failed: query returned 0.0; 'scores-not-zero' failed: query returned 0.0"
    )
    assert mixed.failed_details() == "query returned 0.0; query returned 0.0"


def test_a_check_with_a_bad_option_is_refused_before_any_runs() -> None:
    with pytest.raises(ConfigError, match="run"):
        build_checks((CheckSpec("up", "command", 5.0, {}),))
