"""Environments in git: with ``[git] refs = true``, ``refs/lastgood/ENV/live`` and
``refs/lastgood/ENV/last-good`` follow every switch, so ``git log --decorate --all`` shows where
each environment stands.

Why an event subscriber: every switch already ends in an event emitted after its ledger write
(``activated``, ``deploy-succeeded``, ``rollback-performed``, ``auto-rolled-back`` …), whether
it was a deploy, a rollback, a request applied or a revert, here or on a server. Reacting to
those keeps git out of the verbs, and out of the process altogether when the option is off: the
project imports this module only when ``refs = true``.

What a ref says: on each such event the refs are set from the ledger's truth (its live and last
known good versions), never from the event, so one event more or less cannot leave them wrong,
and a ref names a commit only when that commit holds exactly the version: a version without a
commit, or taken from a folder with uncommitted changes (``git_dirty``), deletes the ref. A
commit this repository does not hold (a store shared by several clones) deletes it too, with a
``git-refs-failed`` warning saying to fetch.

Crash safety: the refs are written after the ledger, so they lag it at worst; the next switch of
that environment, or ``lastgood status``, sets them again. A drill's own switches do not move
them: the drill ends where it started, and its broken variant is no commit of the team's; the
refs are set once more when it finishes.

Never slows a rollback more than one short ``git update-ref`` (a few milliseconds; at most
:data:`TIMEOUT` when git hangs), and never fails one: a failure is a ``git-refs-failed`` event.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from lastgood.errors import GitError, LastgoodError
from lastgood.events import Event, EventKind

if TYPE_CHECKING:
    from lastgood.gitrepo import Repo
    from lastgood.store.core import Store

LIVE, LAST_GOOD = "live", "last-good"
TIMEOUT = 5.0
"""Seconds one ref update may take before it is given up (and reported)."""

SWITCHES = frozenset(
    {
        EventKind.ACTIVATED,
        EventKind.DEPLOY_SUCCEEDED,
        EventKind.AUTO_ROLLED_BACK,
        EventKind.ROLLBACK_PERFORMED,
        EventKind.RESTORE_FAILED,
        EventKind.LAST_GOOD_CHANGED,
        EventKind.RECONCILED,
        EventKind.OFFLINE_ROLLBACK_RECORDED,
    }
)
"""The events after which the ledger's live or last known good version may have moved."""

STARTS = frozenset(
    {
        EventKind.DEPLOY_STARTED,
        EventKind.ROLLBACK_STARTED,
        EventKind.AUTO_ROLLBACK_STARTED,
        EventKind.DRILL_STARTED,
    }
)
"""The events that begin a switch: what this process wrote or warned before is forgotten, so a
long-lived process (the watcher, a server) sets the refs at least once per switch."""


def ref_name(env: str, which: str) -> str:
    """``refs/lastgood/ENV/live`` or ``refs/lastgood/ENV/last-good``."""
    return f"refs/lastgood/{env}/{which}"


class EnvironmentRefs:
    """The event subscriber that keeps each environment's refs on the ledger's versions."""

    def __init__(self, root: Path, store: Callable[[], Store], emit: Callable[[Event], None]):
        """Refs in the repository holding ``root``; ``store`` opens the project's store,
        ``emit`` sends the warning event. Writes nothing until an event asks for it."""
        self.root = root
        self._store = store
        self._emit = emit
        self._repo: Repo | None = None
        self._drilling: set[str] = set()
        self._written: dict[str, dict[str, str | None]] = {}
        self._warned: dict[str, set[str]] = {}

    def __call__(self, event: Event) -> None:
        env = event.env
        if env is None or event.kind is EventKind.GIT_REFS_FAILED:
            return
        if event.kind in STARTS:
            self._written.pop(env, None)
            self._warned.pop(env, None)
        if event.kind is EventKind.DRILL_STARTED:
            self._drilling.add(env)
        elif event.kind is EventKind.DRILL_FINISHED:
            self._drilling.discard(env)
            self.sync(env)
        elif event.kind in SWITCHES and env not in self._drilling:
            self.sync(env)

    def sync(self, env: str, *, again: bool = False) -> str | None:
        """Set ``env``'s two refs from the ledger (writes git), unless this switch set them so
        already and not ``again``. Never raises: returns what went wrong, after emitting it as
        a ``git-refs-failed`` event, or None."""
        try:
            wanted = self.wanted(env)
            if again or self._written.get(env) != wanted:
                self._write(env, wanted)
        except (LastgoodError, OSError) as exc:
            return self._warn(env, str(exc))
        self._written[env] = wanted
        return None

    def wanted(self, env: str) -> dict[str, str | None]:
        """Each of ``env``'s refs and the commit it should name (None: no such ref). Reads the
        store only."""
        store = self._store()
        state = store.env_state(env)
        return {
            ref_name(env, LIVE): self._commit_of(store, state.live_version),
            ref_name(env, LAST_GOOD): self._commit_of(store, state.last_good),
        }

    @staticmethod
    def _commit_of(store: Store, number: int | None) -> str | None:
        """The commit that holds exactly version ``number``, if one does."""
        if number is None:
            return None
        version = store.version(number)
        return version.git_commit if version.git_commit and not version.git_dirty else None

    def _write(self, env: str, wanted: dict[str, str | None]) -> None:
        """One ``git update-ref --stdin`` transaction; when git refuses it, the commits this
        repository does not hold are found, their refs deleted instead, and that is raised."""
        repo = self._repository()
        try:
            repo.update_refs(wanted, timeout=TIMEOUT)
            return
        except GitError:
            absent = repo.missing([sha for sha in wanted.values() if sha])
            if not absent:
                raise
        repo.update_refs(
            {name: None if sha in absent else sha for name, sha in wanted.items()},
            timeout=TIMEOUT,
        )
        shown = ", ".join(sorted(sha[:12] for sha in absent))
        raise GitError(
            f"the git repository of {self.root} does not hold commit {shown}, so the refs that "
            f"would name it were deleted; run 'git fetch' there, then 'lastgood status {env}'"
        )

    def _repository(self) -> Repo:
        if self._repo is None:
            from lastgood.gitrepo import Repo

            self._repo = Repo.at(self.root)
        return self._repo

    def _warn(self, env: str, why: str) -> str:
        message = f"refs/lastgood/{env}/* not updated: {why}"
        warned = self._warned.setdefault(env, set())
        if message in warned:  # once per switch: a deploy sets the refs twice
            return message
        warned.add(message)
        try:
            self._emit(Event(EventKind.GIT_REFS_FAILED, message, env=env, data={"error": why}))
        except LastgoodError as exc:  # the ledger too is down: say it where it can be seen
            import logging  # only here: logging costs a rollback about 5 ms to import

            logging.getLogger("lastgood.gitrefs").warning(
                "%s (and the event could not be recorded: %s)", message, exc
            )
        return message
