"""The rollout verbs in process: the steps, an abort between two steps, a failed step with no
last known good, and the fleet counted per cohort. (End to end with a server and real
consumers: ``tests/test_rollout.py``.)"""

from __future__ import annotations

import time

from lastgood.events import Event, EventKind
from lastgood.operations.place import Place
from lastgood.operations.rollout_control import cohort_fleets, rolling_standing
from lastgood.outcome import OK, RESTORED
from lastgood.rollout import Pointer, gets_new, remove_pointer
from lastgood.rows import WITHDRAWN, Consumer
from lastgood.targets.served import ServedTarget
from tests.conftest import broken_files
from tests.operations.conftest import ProjectFactory, deployed, kinds, listen, outage

ROLLOUT = """
[env.staging.rollout]
steps = ["5%", "25%", "100%"]
step_bake = "0s"
"""


def served(project: object) -> ServedTarget:
    target = Place(project, "staging").target  # type: ignore[arg-type]
    assert isinstance(target, ServedTarget)
    return target


def test_every_step_bakes_then_current_is_switched(project: ProjectFactory) -> None:
    proj = project(target="served", toml=ROLLOUT)
    assert deployed(proj, marker="one").exit_code == OK  # nothing live: everyone at once
    heard = listen(proj)
    done = deployed(proj, marker="two")
    assert done.exit_code == OK, done.summary
    steps = [e.data["percent"] for e in heard if e.kind is EventKind.ROLLOUT_STEP]
    assert steps == [5.0, 25.0, 100.0]
    order = kinds(heard)
    assert order.index("rollout-step") < order.index("activated") < order.index("bake-passed")
    assert served(proj).rollout() is None and served(proj).live().version == 2  # type: ignore[union-attr]
    state = proj.store.env_state("staging")
    assert state.live_version == 2 and state.last_good == 2


def test_an_abort_between_two_steps_is_never_undone(project: ProjectFactory) -> None:
    """The pointer goes while step 1's last round runs: the deploy must not write step 2's."""
    proj = project(target="served", toml=ROLLOUT)
    deployed(proj, marker="one")
    target = served(proj)

    def abort_in_round(event: Event) -> None:
        if event.kind is EventKind.CHECK_ROUND and target.rollout() is not None:
            remove_pointer(target.path)

    proj.events.subscribe(abort_in_round)
    done = deployed(proj, marker="two")
    assert done.exit_code == OK
    assert "was aborted at step 1/3 (5%); every consumer is back on v1" in done.summary
    assert target.rollout() is None and target.live().version == 1  # type: ignore[union-attr]
    assert done.deployment is not None and done.deployment.status == "aborted"
    assert proj.store.verdicts("staging")[2] == WITHDRAWN


def test_a_failed_step_with_no_last_known_good_leaves_the_stable_version(
    project: ProjectFactory,
) -> None:
    proj = project(target="served", toml=ROLLOUT)
    outage(proj)
    assert deployed(proj, marker="one").exit_code != OK  # v1 live, never proven good
    (proj.root.parent / "outage").unlink()
    done = deployed(proj, files=broken_files("two"))
    assert done.exit_code == RESTORED
    assert "at step 1/3 (5%); every consumer is back on v1" in done.summary
    assert "never proven good here" in done.summary
    assert served(proj).rollout() is None and served(proj).live().version == 1  # type: ignore[union-attr]
    assert proj.store.verdicts("staging")[2] == "bad"


def test_the_fleet_of_a_rollout_counts_each_cohort_against_its_version() -> None:
    now = time.time()
    pointer = Pointer(release="v8-x", version=8, stable="v7-y", stable_version=7, percent=25.0,
                      step=2, steps=(5.0, 25.0, 100.0), started_at=now, step_started_at=now,
                      deployment=1)  # fmt: skip
    ids = [f"app-{n}" for n in range(40)]
    rows = [
        Consumer(
            env="prod",
            consumer_id=i,
            name=i,
            content_hash=None,
            since=now,
            seen_at=now,
            version=8 if gets_new("prod", i, 25.0) else 7,
        )
        for i in ids
    ]
    standing = rolling_standing("prod", rows, pointer)
    assert standing.complete and standing.total == 40 and not standing.behind
    new, stable = cohort_fleets("prod", rows, pointer)
    assert new.total + stable.total == 40 and new.following == new.total
    lagging = [*rows[:-1], Consumer(env="prod", consumer_id="late", name="late", version=6,
                                    content_hash=None, since=now, seen_at=now)]  # fmt: skip
    behind = rolling_standing("prod", lagging, pointer)
    assert not behind.complete and behind.behind[0].startswith("late (v6, wants v")
