"""``lastgood.operations.verdicts``: good, bad and withdrawn per environment, and the last known
good pointer they move, in the store and on the target alike."""

from __future__ import annotations

from lastgood.bundle import Bundle
from lastgood.operations.place import Place
from lastgood.operations.restore import release_of
from lastgood.operations.verdicts import (
    is_quarantined,
    mark_bad,
    mark_good,
    repoint_last_good,
    withdraw,
)
from lastgood.project import Project
from tests.operations.conftest import ProjectFactory, deployed, kinds, listen


def three_good(project: Project) -> Project:
    for marker in ("one", "two", "three"):
        deployed(project, marker=marker)
    assert project.store.env_state("staging").last_good == 3
    return project


def test_a_bad_last_good_hands_over_to_the_most_recently_proven_version(
    project: ProjectFactory,
) -> None:
    made = three_good(project())
    store = made.store
    mark_good(Place(made, "staging"), store.version(1), None)  # v1 proven again, after v2 was

    mark_bad(Place(made, "staging"), store.version(3), None)

    assert store.verdicts("staging") == {1: "good", 2: "good", 3: "bad"}
    assert store.env_state("staging").last_good == 1
    assert is_quarantined(Place(made, "staging"), store.version(3))


def test_with_no_good_version_left_last_good_is_none(project: ProjectFactory) -> None:
    made = project()
    deployed(made, marker="one")
    mark_bad(Place(made, "staging"), made.store.version(1), None)
    assert made.store.env_state("staging").last_good is None
    assert repoint_last_good(Place(made, "staging")) is None


def test_the_same_content_as_a_bad_version_is_quarantined_too(project: ProjectFactory) -> None:
    made = three_good(project())
    mark_bad(Place(made, "staging"), made.store.version(2), None)
    twin = made.store.add_version(
        Bundle(made.store.files(2)), author="tester", message="v2 again", source="cli"
    )
    assert is_quarantined(Place(made, "staging"), twin)
    assert not is_quarantined(Place(made, "staging"), made.store.version(1))


def test_withdrawing_moves_last_good_back_but_never_lifts_a_quarantine(
    project: ProjectFactory,
) -> None:
    made = three_good(project())
    store, target = made.store, made.target("staging")

    withdraw(Place(made, "staging"), 3, 2, deployment=None)
    assert store.verdicts("staging")[3] == "withdrawn"
    assert store.env_state("staging").last_good == 2

    mark_bad(Place(made, "staging"), store.version(1), None)
    withdraw(Place(made, "staging"), 1, 2, deployment=None)
    assert store.verdicts("staging")[1] == "bad"
    target.activate(release_of(store.version(2)))
    assert target.previous() is None  # v3 withdrawn and v1 bad: the target offers neither


def test_withdrawing_nothing_or_the_destination_itself_changes_nothing(
    project: ProjectFactory,
) -> None:
    made = three_good(project())
    withdraw(Place(made, "staging"), None, 3, deployment=None)
    withdraw(Place(made, "staging"), 3, 3, deployment=None)
    assert made.store.verdicts("staging") == {1: "good", 2: "good", 3: "good"}


def test_a_new_last_good_in_a_protected_environment_is_announced_once(
    project: ProjectFactory,
) -> None:
    made = project(protected=True)
    deployed(made, marker="one")
    heard = listen(made)

    mark_good(Place(made, "staging"), made.store.version(1), 7)  # already last known good: quiet
    deployed(made, marker="two")

    [event] = [e for e in heard if e.kind.value == "last-good-changed"]
    assert event.message == "v2 is now last known good on staging (was v1)"
    assert event.data == {"previous": 1, "message": "two", "author": "tester"}
    assert event.key == f"last-good-changed:staging:2:{event.deployment}"


def test_an_unprotected_environment_moves_last_good_quietly(project: ProjectFactory) -> None:
    made = project()
    heard = listen(made)
    deployed(made, marker="one")
    assert "last-good-changed" not in kinds(heard)
    assert made.store.env_state("staging").last_good == 1
