"""Every ledger record a command opens is closed by that command, whatever ends it.

A deploy or rollback opens its record (``running``) before it touches the target. Any way out of
the verb that is not its normal end — a full disk, a target error, a lost lease, Ctrl-C, SIGTERM
turned into an exception by the CLI — goes through :func:`closed_on_error`, which writes the
truth before the error travels on: ``refused`` when nothing live changed and the error says so,
``failed`` when the verb failed on its own — a deploy whose switch failed (the tool answered
an error, the activate command exited non-zero or timed out) or that had already failed its
bake (its restore was what got stopped), a rollback whose own step failed (a target or store
error) — and ``interrupted`` only when something from outside stopped it (Ctrl-C, SIGTERM, a
lost lease), with the error's own sentence as the detail. Only a process killed
outright (kill -9, power loss) leaves a ``running`` record, and the next command that looks at
the environment closes it (``operations.reconcile``).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator

from lastgood.errors import LastgoodError, LeaseLostError, RefusedError, SwitchFailedError
from lastgood.project import Project

RUNNING = "running"


@contextlib.contextmanager
def closed_on_error(project: Project, record_id: Callable[[], int | None]) -> Iterator[None]:
    """Run the body; if it raises, close the record ``record_id()`` names, then re-raise.

    ``record_id`` is called only after the error, so a verb may open its record inside the body.
    Writes the store only on the error path, and never hides the original error: a store that
    fails here too leaves the record to the next command's reconciliation.
    """
    try:
        yield
    except BaseException as exc:
        number = record_id()
        if number is not None:
            with contextlib.suppress(Exception):
                close_after_error(project, number, exc)
        raise


def close_after_error(project: Project, record_id: int, error: BaseException) -> None:
    """Close a record still ``running`` after ``error`` stopped its process (writes)."""
    record = project.store.deployment(record_id)
    if record.status != RUNNING:
        return
    untouched = isinstance(error, RefusedError) and record.activated_at is None
    status = "refused" if untouched and record.kind != "auto-rollback" else "interrupted"
    if record.kind == "deploy" and record.failed_at is not None:
        status = "failed"  # it had failed its bake; what stopped was the restore after it
    if _failed_on_its_own(error) or isinstance(error, SwitchFailedError):
        status = "failed"  # the switch or the restore could not be carried out: detail says why
    project.store.update_deployment(
        record_id, by=project.actor, status=status, finished_at=time.time(),
        detail=describe(error),
    )  # fmt: skip


def _failed_on_its_own(error: BaseException) -> bool:
    """An error of the restore itself (a target, the store), not an interruption from outside
    (Ctrl-C, SIGTERM, another process taking the lease)."""
    return isinstance(error, LastgoodError) and not isinstance(error, LeaseLostError | RefusedError)


def describe(error: BaseException) -> str:
    """The sentence a closed record keeps about what stopped it."""
    if isinstance(error, LastgoodError):
        return error.message
    if isinstance(error, KeyboardInterrupt):
        return "stopped by an interrupt (Ctrl-C or SIGTERM) before it finished"
    if isinstance(error, SystemExit):
        return f"the process exited ({error.code}) before it finished"
    return f"stopped by an unexpected error: {type(error).__name__}: {error}"
