"""``lastgood.operations.reconcile``: the ledger made to tell the truth about what the target
serves, after a process died, a hand switch, or an offline rollback."""

from __future__ import annotations

import json

import pytest

from lastgood.errors import TargetError
from lastgood.operations.lease import EnvLease
from lastgood.operations.place import Place
from lastgood.operations.reconcile import offline_log_path, reconcile
from lastgood.operations.restore import release_of
from lastgood.operations.rollback import rollback_offline
from lastgood.project import Project
from tests.operations.conftest import ProjectFactory, deployed, kinds, listen, version


def reconciled(project: Project) -> list[str]:
    """Reconcile staging as every command does: holding its lease."""
    with EnvLease(Place(project, "staging"), "status"):
        return reconcile(Place(project, "staging"))


def two_deployed(made: Project) -> Project:
    deployed(made, marker="one")
    deployed(made, marker="two")
    return made


def test_a_target_and_ledger_in_agreement_need_nothing(project: ProjectFactory) -> None:
    made = two_deployed(project())
    heard = listen(made)
    assert reconciled(made) == []
    assert heard == []


def test_a_record_its_process_left_running_is_closed_as_interrupted(
    project: ProjectFactory,
) -> None:
    made = two_deployed(project())
    version(made, {"notes.txt": "three\n"})
    left = made.store.begin_deployment(
        env="staging", kind="deploy", from_version=2, to_version=3, actor="ana", reason="",
        source="cli",
    )  # fmt: skip
    heard = listen(made)

    [note] = reconciled(made)

    assert note == (
        f"deploy #{left.id} (v2 → v3) was interrupted before it finished; the target serves v2"
    )
    closed = made.store.deployment(left.id)
    assert (closed.status, closed.detail) == ("interrupted", note)
    assert kinds(heard) == ["reconciled"] and heard[0].deployment == left.id


def test_a_rollback_that_switched_before_it_died_withdraws_what_it_left(
    project: ProjectFactory,
) -> None:
    made = two_deployed(project())
    left = made.store.begin_deployment(
        env="staging", kind="rollback", from_version=2, to_version=1, actor="ana", reason="",
        source="cli",
    )  # fmt: skip
    made.target("staging").activate(release_of(made.store.version(1)))  # then it was killed

    notes = reconciled(made)

    assert made.store.deployment(left.id).status == "interrupted"
    assert made.store.verdicts("staging") == {1: "good", 2: "withdrawn"}
    assert notes[-1] == (
        "the ledger said v2 is live on staging, but the target serves v1; the ledger now says v1"
    )
    assert made.store.env_state("staging").live_version == 1


def test_an_offline_rollback_is_recorded_and_other_environments_lines_kept(
    project: ProjectFactory,
) -> None:
    made = two_deployed(project())
    rollback_offline(made.config, "staging", reason="store down")
    log = offline_log_path(made.root)
    other = json.dumps({"env": "production", "from_version": 4, "to_version": 3})
    log.write_text(log.read_text() + other + "\n" + '{"env": "staging", "from_ver\n')
    heard = listen(made)

    notes = reconciled(made)

    assert notes[0].startswith("recorded the offline rollback on staging: v2 → v1 by ")
    assert notes[1] == (
        f"set aside 1 unreadable line of {log} in {log}.bad (an offline rollback interrupted "
        "while it wrote its record?)"
    )
    assert log.read_text() == other + "\n"  # production's, for production's next command
    assert (log.parent / "offline.jsonl.bad").read_text() == '{"env": "staging", "from_ver\n'
    record = made.store.deployments("staging")[0]
    assert (record.kind, record.source, record.status, record.reason) == (
        "offline-rollback", "offline", "succeeded", "store down",
    )  # fmt: skip
    assert made.store.verdicts("staging") == {1: "good", 2: "withdrawn"}
    assert made.store.env_state("staging").last_good == 1
    assert "offline-rollback-recorded" in kinds(heard)


def test_leftovers_of_an_interrupted_switch_are_cleaned_and_said(project: ProjectFactory) -> None:
    made = two_deployed(project())
    leftover = made.root.parent / "live" / ".current-abc123"
    leftover.symlink_to("releases/nowhere")
    heard = listen(made)

    [note] = reconciled(made)

    assert note.startswith("cleaned up after an interrupted operation on ")
    assert ".current-abc123" in note
    assert not leftover.is_symlink()
    assert kinds(heard) == ["target-recovered"]


def test_a_target_that_cannot_be_checked_is_said_as_a_failure_not_a_recovery(
    project: ProjectFactory,
) -> None:
    made = two_deployed(project())
    current = made.root.parent / "live" / "current"
    current.unlink()
    current.write_text("someone put a file here\n")  # the target cannot say what it serves
    heard = listen(made)

    with pytest.raises(TargetError, match="is not a symlink"):  # reading live afterwards
        reconciled(made)

    assert kinds(heard) == ["target-recovery-failed"]
    assert heard[0].message.startswith("could not check the target of staging for an interrupted")
