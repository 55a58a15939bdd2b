"""The target contract: how a version goes live.

A target type is a subclass of :class:`Target` registered under a name (see
``lastgood.targets.registry``), exactly as a third-party plugin would register one. The contract:

- ``stage(release, files)`` puts the content in place without making it live. Idempotent: staging
  a release that is already staged is a no-op. Must be all-or-nothing: a crash mid-stage leaves
  no release that ``retained()`` reports.
- ``activate(release)`` makes a *retained* release live, atomically for readers of the target, or
  through a journal that ``recover()`` finishes. Afterwards ``live()`` reports it.
- ``live()`` reads back from the target itself which release it serves now (``None`` if nothing).
- ``retained()`` lists releases staged there and still complete, so a rollback to one of them is
  ``activate`` alone: a pointer switch.
- ``actual_hash()`` hashes what the target really serves now, for drift and verification. A
  target that cannot tell what it serves (a tool whose answer names no release lastgood put
  there) returns a value starting with :data:`UNKNOWN`: status then says ``live: unknown``; one
  that serves a version it keeps no copy of returns :data:`UNVERIFIED`.
- ``repair(release, files)`` rewrites a live release whose files were edited by hand.
- ``recover()`` finishes or undoes whatever a killed process left half-done. Called before every
  operation; cheap when there is nothing to do.
- ``record_verdict(release, verdict)`` remembers on the target itself that a release was proven
  good or bad, so an offline rollback never lands on a bad one.
- ``verdict(release)`` reads back what ``record_verdict`` kept (None by default).
- ``previous()`` is the release that was live before the current one and is retained and not
  known bad: the offline rollback's destination.
- ``prune(keep, protect)`` drops old releases, never one in ``protect``.
- ``record_audit_head(head)`` / ``audit_head()`` keep the audit chain's newest head beside the
  target's own state, so ``lastgood audit verify`` can prove the store's chain was not cut short
  (optional: the default keeps nothing).

Errors are raised as :class:`lastgood.errors.TargetError` with the path and the fix.
"""

from __future__ import annotations

import contextlib
from abc import ABC, abstractmethod
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, ClassVar

from lastgood.bundle import release_name
from lastgood.errors import TargetError
from lastgood.record import Record
from lastgood.rows import AuditHead

UNVERIFIED = ""
"""The ``actual_hash()`` (and ``live().content_hash``) of a release the target serves but keeps
no copy of, so cannot hash: another machine sharing the store put it live. Not drift."""
UNKNOWN = "unknown:"
"""How an ``actual_hash()`` starts when the target serves something lastgood did not put there
and cannot hash it (see :mod:`lastgood.targets.remote`)."""


class Release(Record, order=True):
    """One version as a target knows it: its number and content hash."""

    version: int
    content_hash: str

    @property
    def name(self) -> str:
        return release_name(self.version, self.content_hash)


class AuditHeads(Record):
    """The audit heads a target keeps: the newest first, then a few it replaced, so a chain
    cut short and grown again past the newest is still caught. ``where`` names the file."""

    heads: tuple[AuditHead, ...]
    where: str


class Target(ABC):
    """Base class for every target type. Subclasses set ``type_name`` and the abstract methods."""

    type_name: ClassVar[str] = ""

    def __init__(self, env: str, options: Mapping[str, Any], root: Path) -> None:
        """``options`` are the keys of ``target = {…}``; relative paths resolve against ``root``."""
        self.env = env
        self.options = dict(options)
        self.root = root

    @abstractmethod
    def stage(self, release: Release, files: Mapping[str, bytes]) -> None: ...

    @abstractmethod
    def activate(self, release: Release) -> None: ...

    @abstractmethod
    def live(self) -> Release | None: ...

    @abstractmethod
    def retained(self) -> list[Release]: ...

    @abstractmethod
    def actual_hash(self) -> str | None: ...

    def holds(self, release: Release) -> bool:
        """Whether ``release`` is retained here: the rollback's cheap question, asked before a
        pointer switch. Override when ``retained()`` is costly."""
        return release in self.retained()

    def repair(self, release: Release, files: Mapping[str, bytes]) -> list[str]:
        """Rewrite, in place and one file at a time atomically, whatever of the *live*
        ``release`` no longer matches ``files`` (edited by hand); return the paths changed.

        Called when ``actual_hash()`` disagrees with the live release, so a rollback can never
        "work" while hand-edited content stays live. The default cannot repair.
        """
        raise TargetError(
            f"the {self.type_name} target of {self.env} cannot repair files edited by hand",
            hint="deploy a new version to replace them",
        )

    def untouched(self, release: Release) -> bool:
        """Cheap proof that the live ``release`` is as staged (no file read); False = unknown.

        When False, the caller hashes the content with ``actual_hash()`` instead."""
        return False

    def seal(self, release: Release) -> None:  # noqa: B027
        """Remember that ``release`` was just proven intact, so ``untouched`` can say so later."""

    def one_reading(self) -> contextlib.AbstractContextManager[None]:
        """A block in which the target is asked what it serves at most once (its answer, or
        its error, is reused): ``status`` asks the same question several times, and a tool
        that hangs would cost its timeout each time. Nothing may be switched inside."""
        return contextlib.nullcontext()

    def recover(self) -> str | None:
        """Finish an interrupted switch; return a sentence saying what was done, or None."""
        return None

    def staged_path(self, release: Release) -> Path | None:
        """A folder holding the staged release's files (for preflights), if the target has one."""
        return None

    def live_path(self) -> Path | None:
        """A folder holding the live files (``LASTGOOD_PATH`` for checks), if the target has one."""
        return None

    def record_verdict(self, release: Release, verdict: str) -> None:  # noqa: B027
        """Remember ``good``, ``bad`` or ``withdrawn`` for ``release`` on the target.

        An offline rollback reads these, so it never lands on a bad or withdrawn release.
        The default does nothing."""

    def verdict(self, release: Release) -> str | None:
        """The verdict :meth:`record_verdict` kept for ``release`` (``good``, ``bad``,
        ``withdrawn``), or None. A host agent reads it so that a release withdrawn by an offline
        rollback on this host is not put back by the server serving it again. Default: None."""
        return None

    def previous(self) -> Release | None:
        """The release live before the current one, retained, not bad or withdrawn (or None)."""
        return None

    def prune(self, keep: int, protect: Iterable[Release]) -> list[Release]:
        """Drop old releases beyond ``keep``; never one in ``protect``. Returns what was dropped."""
        return []

    def record_audit_head(self, head: AuditHead) -> None:  # noqa: B027
        """Keep ``head`` (the audit chain's newest link) beside the target's own state, never
        moving back to an older one. Best effort and cheap: called after every chained write
        of this environment, rollbacks included. The default keeps nothing."""

    def audit_head(self) -> AuditHeads | None:
        """The heads :meth:`record_audit_head` kept (newest first), where they are, or None."""
        return None

    def describe(self) -> str:
        """A short human description: ``directory ../live/staging``."""
        return f"{self.type_name} {self.options.get('path', '')}".strip()
