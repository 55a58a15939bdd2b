"""``lastgood.operations.ledger`` in process: every record a verb opens is closed with the truth,
whatever stopped it. (``tests/test_ledger.py`` stops real processes with SIGTERM and full disks.)
"""

from __future__ import annotations

import time

import pytest

from lastgood.bundle import Bundle
from lastgood.errors import (
    LeaseLostError,
    LockedError,
    PreflightError,
    RefusedError,
    StoreError,
    SwitchFailedError,
    TargetError,
    TargetTimeoutError,
)
from lastgood.operations.ledger import closed_on_error, describe
from lastgood.project import Project
from lastgood.rows import Deployment
from tests.operations.conftest import ProjectFactory

INTERRUPT = "stopped by an interrupt (Ctrl-C or SIGTERM) before it finished"


def opened(project: Project, kind: str = "deploy", **values: object) -> Deployment:
    """A record as a verb opens it (``running``), with ``values`` already written; the
    versions it moves between are in the store, as a verb's always are."""
    while (head := project.store.head()) is None or head.number < 2:
        content = {"n.txt": str(0 if head is None else head.number).encode()}
        project.store.add_version(Bundle(content), author="t", message="m", source="cli")
    record = project.store.begin_deployment(
        env="staging", kind=kind, from_version=1, to_version=2, actor="tester", reason="",
        source="cli",
    )  # fmt: skip
    return project.store.update_deployment(record.id, by="tester", **values) if values else record


def stopped(project: Project, record: Deployment, error: BaseException) -> Deployment:
    """Raise ``error`` inside ``closed_on_error`` and return the record as it was left."""
    with pytest.raises(type(error)) as raised, closed_on_error(project, lambda: record.id):
        raise error
    assert raised.value is error  # never hidden, never replaced
    return project.store.deployment(record.id)


@pytest.mark.parametrize(
    ("kind", "values", "error", "status", "detail"),
    [
        ("deploy", {}, PreflightError("preflight failed for v2"), "refused",
         "preflight failed for v2"),
        ("deploy", {"activated_at": 1.0}, LockedError("locked"), "interrupted", "locked"),
        ("deploy", {}, KeyboardInterrupt(), "interrupted", INTERRUPT),
        ("deploy", {"activated_at": 1.0, "failed_at": 2.0}, KeyboardInterrupt(), "failed",
         INTERRUPT),
        ("deploy", {"activated_at": 1.0}, TargetError("the disk went away"), "failed",
         "the disk went away"),
        ("deploy", {}, SwitchFailedError("the tool answered 500"), "failed",
         "the tool answered 500"),
        ("deploy", {}, TargetTimeoutError("no answer within 2 s"), "failed",
         "no answer within 2 s"),
        ("deploy", {}, SystemExit(143), "interrupted",
         "the process exited (143) before it finished"),
        ("deploy", {}, ValueError("boom"), "interrupted",
         "stopped by an unexpected error: ValueError: boom"),
        ("rollback", {}, TargetError("no space left"), "failed", "no space left"),
        ("rollback", {}, StoreError("the store is gone"), "failed", "the store is gone"),
        ("rollback", {}, LeaseLostError("lost the lease"), "interrupted", "lost the lease"),
        ("rollback", {}, RefusedError("refused"), "refused", "refused"),
        ("auto-rollback", {}, LockedError("locked"), "interrupted", "locked"),
        ("auto-rollback", {}, TargetError("cannot switch"), "failed", "cannot switch"),
    ],
)  # fmt: skip
def test_the_status_a_stopped_record_is_closed_with(
    project: ProjectFactory,
    kind: str,
    values: dict[str, float],
    error: BaseException,
    status: str,
    detail: str,
) -> None:
    made = project()
    before = time.time()
    closed = stopped(made, opened(made, kind, **values), error)
    assert (closed.status, closed.detail) == (status, detail)
    assert closed.finished_at is not None and closed.finished_at >= before


def test_a_record_already_closed_is_left_as_it_is(project: ProjectFactory) -> None:
    made = project()
    done = opened(made, status="succeeded", finished_at=1.0, detail="verified")
    assert stopped(made, done, KeyboardInterrupt()) == done


def test_nothing_is_written_before_the_record_exists(project: ProjectFactory) -> None:
    made = project()
    with pytest.raises(KeyboardInterrupt), closed_on_error(made, lambda: None):
        raise KeyboardInterrupt
    assert made.store.deployments("staging") == []
    with closed_on_error(made, lambda: 1 / 0):  # type: ignore[arg-type, return-value]
        pass  # the record is asked for only after an error


def test_a_store_that_fails_while_closing_never_hides_the_error(project: ProjectFactory) -> None:
    made = project()
    with pytest.raises(TargetError, match="the target broke"), closed_on_error(made, lambda: 99):
        raise TargetError("the target broke")  # record #99 does not exist: closing it fails


def test_the_sentence_kept_for_each_kind_of_stop() -> None:
    assert describe(PreflightError("preflight failed", hint="fix it")) == "preflight failed"
    assert describe(KeyboardInterrupt()) == INTERRUPT
    assert describe(SystemExit(2)) == "the process exited (2) before it finished"
    assert describe(OSError(28, "No space left on device")) == (
        "stopped by an unexpected error: OSError: [Errno 28] No space left on device"
    )
