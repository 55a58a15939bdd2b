"""``lastgood.operations.restore``: put a version back byte for byte, stage it again when the
target no longer holds it, and verify it with rounds of the real checks."""

from __future__ import annotations

import pytest

from lastgood.errors import LeaseLostError, TargetError
from lastgood.operations.lease import EnvLease
from lastgood.operations.place import Place
from lastgood.operations.restore import (
    ensure_intact,
    release_of,
    still_ours,
    switch_to,
    verify,
)
from lastgood.project import Project
from tests.operations.conftest import ProjectFactory, deployed, listen, live_folder, outage

# fails its first round, passes from the second on (it counts in ../rounds)
SECOND_TIME_LUCKY = """
[[env.staging.check]]
name = "warms-up"
type = "command"
run = 'n=$(( $(cat ../rounds 2>/dev/null || echo 0) + 1 )); echo $n > ../rounds; test $n -ge 2'
"""


def two_deployed(made: Project) -> Project:
    deployed(made, marker="one")
    deployed(made, marker="two")
    return made


def test_hand_edits_to_the_live_files_are_rewritten_and_said(project: ProjectFactory) -> None:
    made = project()
    deployed(made, marker="one")
    one = made.store.version(1)
    assert ensure_intact(Place(made, "staging"), one, deployment=None) == []
    (live_folder(made) / "health.txt").write_text("edited\n")
    (live_folder(made) / "stray.txt").write_text("left behind\n")
    heard = listen(made)

    repaired = ensure_intact(Place(made, "staging"), one, deployment=7)

    assert repaired == ["health.txt", "stray.txt"]
    assert (live_folder(made) / "health.txt").read_text() == "ok\n"
    assert not (live_folder(made) / "stray.txt").exists()
    [event] = heard
    assert event.message == (
        "the live files of v1 on staging had been changed by hand; rewrote 2 of them: "
        "health.txt, stray.txt"
    )
    assert (event.deployment, event.data) == (7, {"paths": ["health.txt", "stray.txt"]})
    assert made.target("staging").actual_hash() == one.content_hash


def test_a_release_the_target_no_longer_holds_is_staged_again_from_the_store(
    project: ProjectFactory,
) -> None:
    made = two_deployed(project())
    target, one = made.target("staging"), made.store.version(1)
    target.prune(0, [release_of(made.store.version(2))])
    assert not target.holds(release_of(one))

    with EnvLease(Place(made, "staging"), "rollback") as lease:
        switch_to(Place(made, "staging"), lease, one, point="test")

    assert target.live() == release_of(one) and target.actual_hash() == one.content_hash
    assert made.store.env_state("staging").live_version == 1


def test_a_switch_that_cannot_stage_says_nothing_was_switched(project: ProjectFactory) -> None:
    made = two_deployed(project())
    target, one = made.target("staging"), made.store.version(1)
    target.prune(0, [release_of(made.store.version(2))])
    (made.root.parent / "live" / "releases" / release_of(one).name).write_text("in the way\n")

    with (
        pytest.raises(TargetError) as failed,
        EnvLease(Place(made, "staging"), "rollback") as lease,
    ):
        switch_to(Place(made, "staging"), lease, one, point="test")

    assert failed.value.message.startswith(f"could not stage {release_of(one).name} on directory")
    assert failed.value.message.endswith("; staging was not switched")  # never "nothing changed"
    assert target.live() == release_of(made.store.version(2))


def test_still_ours_stops_a_process_whose_target_was_switched(project: ProjectFactory) -> None:
    made = two_deployed(project())
    two = release_of(made.store.version(2))
    with EnvLease(Place(made, "staging"), "deploy") as lease:
        still_ours(Place(made, "staging"), lease, two)
        made.target("staging").activate(release_of(made.store.version(1)))
        with pytest.raises(LeaseLostError) as lost:
            still_ours(Place(made, "staging"), lease, two)
    assert "switched to v1 by someone else while v2 was being checked" in lost.value.message
    assert lost.value.hint == "see 'lastgood status staging' and 'lastgood history staging'"


def test_verify_runs_rounds_until_one_passes_at_most_verify_rounds(
    project: ProjectFactory,
) -> None:
    made = project(checks=False, toml=SECOND_TIME_LUCKY, verify_rounds=3)
    (made.root.parent / "rounds").write_text("1\n")  # the bake's round: warm already
    deployed(made, marker="one")
    (made.root.parent / "rounds").unlink()  # cold again: the first verify round fails
    one = made.store.version(1)
    with EnvLease(Place(made, "staging"), "rollback") as lease:
        warmed = verify(Place(made, "staging"), one, deployment=1, lease=lease)
    assert warmed.ok and [r.ok for r in warmed.rounds] == [False, True]
    assert warmed.summary() == "1/1 checks passed"


def test_verify_gives_up_after_verify_rounds_and_says_what_failed(
    project: ProjectFactory,
) -> None:
    made = project(verify_rounds=3)
    deployed(made, marker="one")
    outage(made)
    with EnvLease(Place(made, "staging"), "rollback") as lease:
        failed = verify(Place(made, "staging"), made.store.version(1), deployment=1, lease=lease)
    assert not failed.ok and [r.number for r in failed.rounds] == [1, 2, 3]
    assert failed.summary().startswith("'health-file-ok' failed: ")


def test_verify_without_checks_is_one_empty_round(
    project: ProjectFactory,
) -> None:
    made = project(checks=False)
    deployed(made, marker="one")
    with EnvLease(Place(made, "staging"), "rollback") as lease:
        unchecked = verify(Place(made, "staging"), made.store.version(1), deployment=1, lease=lease)
    assert unchecked.ok and [r.results for r in unchecked.rounds] == [()]
    assert unchecked.summary() == "no checks"
