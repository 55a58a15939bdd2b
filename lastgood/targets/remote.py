"""Targets whose live state is held by another system: a workflow tool, a CRM, an admin API.

The ``command`` target (and an ``http`` target built the same way) cannot switch a symlink: the
truth about what is live lives in the tool, reached over the network. What they share is here:

- **Retained releases are kept locally.** Every staged release is a complete, fsynced copy in
  ``STATE/releases/<name>/`` (default ``STATE`` = ``WORKSPACE/.lastgood/targets/<env>/``), so a
  rollback pushes the retained files again without the store, and ``rollback --offline`` works
  when the tool is reachable but the store is not. Verdicts and the activation history live in
  ``STATE/meta/state.json``, as for the filesystem targets (``_fs.ReleaseStore``).
- **Live is read back from the tool.** :meth:`RemoteTarget.read_live` returns what the tool says
  it serves: the version label lastgood gave it (``v12``), the release name (``v12-3f2a9c1d``)
  or a content hash (or a prefix of 8 or more hex digits). :func:`match_label` maps it to a
  retained release; a plain ``v12`` kept on another machine only (several machines share the
  store) is that version with an unverified hash (:func:`kept_elsewhere`). Anything else means
  the tool serves something lastgood did not put there: ``live()`` then still names the release
  lastgood put there last and ``actual_hash()`` returns a value starting with
  :data:`lastgood.targets.base.UNKNOWN`, which status shows as ``live: unknown`` and the
  watcher treats as drift (restored where ``on_drift = "restore"``).
- **Activation is verified.** After the push, the live reading must name the release, otherwise
  the activation failed; when the subclass says pushing is idempotent, a failed push is tried
  again (:data:`ATTEMPTS` in all), never otherwise.
- **Crash safety goes through the tool.** A process killed after the push but before anything
  was recorded leaves the tool serving the new release; ``recover()`` (run before every command)
  reads the tool and records the switch, and the reconcile step corrects the ledger from
  ``live()``.
- **Fetch shows real drift.** When the subclass can fetch what the tool serves into a folder,
  ``actual_hash()`` hashes the fetched files laid over the kept copy of the release the tool
  claims (paths the tool does not hold come from the copy), so a value edited in the tool by hand
  is seen even when its label still says ``v12``, and the watcher's diff shows the edit.
"""

from __future__ import annotations

import contextlib
import hashlib
import re
import shutil
import time
from abc import abstractmethod
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any, ClassVar

from lastgood import failpoint
from lastgood.errors import ConfigError, TargetError
from lastgood.record import Record
from lastgood.rows import AuditHead
from lastgood.targets import _fs
from lastgood.targets.base import UNKNOWN, UNVERIFIED, AuditHeads, Release, Target

ATTEMPTS = 3
"""Pushes of one activation when the push is idempotent (one otherwise)."""
RETRY_PAUSE = 0.5
"""Seconds before the second push; doubled before each further one."""
STATE_DIR = Path(".lastgood") / "targets"
FETCH_PREFIX = ".tmp-fetch-"
NOT_HERE = UNVERIFIED
"""The content hash of a release named by the tool but kept on another machine only."""
_LABEL = re.compile(r"^v(\d+)(?:-([0-9a-f]{4,64}))?$")
_HASH = re.compile(r"^[0-9a-f]{8,64}$")


def default_state(env: str) -> str:
    """Where a remote target keeps its releases unless ``state`` says otherwise."""
    return str(STATE_DIR / env)


def state_folder(env: str, configured: str | None, root: Path) -> Path:
    """The folder a remote target keeps its releases in: ``state`` as configured (relative to
    the workspace), else :func:`default_state`. ConfigError when it is a file. Reads only."""
    state = _fs.option_path({"state": configured or default_state(env)}, "state", root)
    assert state is not None
    if state.exists() and not state.is_dir():
        raise ConfigError(
            f"env.{env}.target.state {state} is a file, not a folder",
            hint="point state at a new folder (or leave it out: .lastgood/targets/ENV)",
        )
    return state


def match_label(line: str, retained: Iterable[Release]) -> Release | None:
    """The one retained release that ``line`` names (``v12``, ``v12-3f2a9c1d``, a content hash
    or a prefix of one), or None. Surrounding quotes are ignored (a JSON string printed as is)."""
    text = line.strip().strip("\"'").strip()
    label = _LABEL.match(text)
    if label is not None:
        number, prefix = int(label.group(1)), label.group(2) or ""
        found = [r for r in retained if r.version == number and r.content_hash.startswith(prefix)]
    elif _HASH.match(text):
        found = [r for r in retained if r.content_hash.startswith(text)]
    else:
        found = []
    return found[0] if len(found) == 1 else None


def kept_elsewhere(line: str, retained: Iterable[Release]) -> Release | None:
    """A version label (``v12``) of a version this machine keeps no copy of: another machine
    sharing the store put it live. Its number is known, its hash is not (``content_hash`` is
    ``""``), so status reports the version without claiming to have verified its bytes."""
    label = _LABEL.match(line.strip().strip("\"'").strip())
    if label is None or label.group(2):
        return None
    number = int(label.group(1))
    return None if any(r.version == number for r in retained) else Release(number, NOT_HERE)


def unknown_hash(output: str) -> str:
    """What ``actual_hash()`` returns for content lastgood did not put there: never equal to a
    content hash, the same for the same reading (so one drift is announced once)."""
    return UNKNOWN + hashlib.sha256(output.encode()).hexdigest()[:16]


class Reading(Record):
    """What the tool said it serves: its last non-empty line, and the release it names."""

    output: str
    release: Release | None


class RemoteTarget(Target):
    """Base class of a target whose live state is outside the disk. Subclasses implement
    :meth:`push` and :meth:`read_live`, and may implement :meth:`prepare` and :meth:`fetch`."""

    idempotent: bool = False
    """Whether pushing the same release twice is harmless: only then is a failed push retried."""
    readback_hint: ClassVar[str] = (
        "the live command must print the LASTGOOD_VERSION (or LASTGOOD_HASH) the activate "
        "command was given; see docs/targets.md"
    )
    """What to fix when the tool, read back right after a push, names another release."""

    def __init__(self, env: str, options: Mapping[str, Any], root: Path, *, state: Path) -> None:
        super().__init__(env, options, root)
        self.state = state
        self.store = _fs.ReleaseStore(state)
        self.fetched = state / "fetched"
        self._fetched_for: Release | None = None
        self._answers: list[str | TargetError] | None = None  # inside one_reading: the answer

    # ---- what a subclass provides ------------------------------------------------------------

    @abstractmethod
    def push(self, release: Release, folder: Path) -> None:
        """Put ``release`` (its files are in ``folder``) live in the tool; TargetError if not."""

    @abstractmethod
    def read_live(self) -> str:
        """What the tool says it serves now (a label or hash), ``""`` for nothing. Reads only."""

    def prepare(self, release: Release, folder: Path) -> None:
        """Stage ``release`` in the tool without making it live (optional; idempotent)."""

    @property
    def can_fetch(self) -> bool:
        """Whether :meth:`fetch` can write what the tool serves."""
        return False

    def fetch(self, folder: Path) -> None:
        """Write the files the tool serves into ``folder``, over the copy of the kept files of
        the release the tool names that it holds (paths the tool lacks keep those bytes)."""
        raise TargetError(f"the {self.type_name} target of {self.env} cannot fetch")

    # ---- the contract ------------------------------------------------------------------------

    def read(self) -> Reading:
        """Ask the tool what it serves and map the answer to a retained release, or to a
        version kept on another machine only (see :func:`kept_elsewhere`). Reads only."""
        lines = [line.strip() for line in self._ask().splitlines() if line.strip()]
        output = lines[-1] if lines else ""
        if not output:
            return Reading(output, None)
        retained = self.store.retained()
        return Reading(output, match_label(output, retained) or kept_elsewhere(output, retained))

    @contextlib.contextmanager
    def one_reading(self) -> Iterator[None]:
        """Ask the tool once in the block: its answer, or its error, is reused."""
        outer, self._answers = self._answers, []
        try:
            yield
        finally:
            self._answers = outer

    def _ask(self) -> str:
        if self._answers is None:
            return self.read_live()
        if not self._answers:
            try:
                self._answers.append(self.read_live())
            except TargetError as exc:
                self._answers.append(exc)
        found = self._answers[0]
        if isinstance(found, TargetError):
            raise type(found)(found.message, hint=found.hint)
        return found

    def stage(self, release: Release, files: Mapping[str, bytes]) -> None:
        """Keep a complete copy of ``release`` in ``STATE/releases/<name>/`` and let the tool
        stage it (:meth:`prepare`). A release kept here already is only mended from ``files``
        if its copy was damaged: the tool staged it before, and a rollback never re-stages.
        Nothing goes live."""
        if self.store.is_retained(release):
            if self.store.copy_problems(release):
                self.store.rewrite(release, files)
            return
        self.store.stage(release, files)
        try:
            self.prepare(release, self.store.release_path(release.name))
        except TargetError:
            self.store.prune(0, [r.name for r in self.store.retained() if r != release])
            raise  # not kept: the next deploy stages it in the tool again

    def activate(self, release: Release) -> None:
        """Push the kept copy of ``release`` to the tool and read it back; retried only when the
        push is idempotent. Records the activation in ``STATE/meta/state.json``."""
        self._require_retained(release)
        unchanged = f"nothing was pushed to the tool of {self.env}"
        self.store.require_intact(release, self.env, unchanged)  # before anything changes
        attempts = ATTEMPTS if self.idempotent else 1
        for attempt in range(1, attempts + 1):
            try:
                self._push_and_read_back(release)
                return
            except TargetError as exc:
                if attempt == attempts:
                    raise self._gave_up(exc, attempts) from exc
                time.sleep(RETRY_PAUSE * 2 ** (attempt - 1))

    def _push_and_read_back(self, release: Release) -> None:
        self.push(release, self.store.release_path(release.name))
        if self._answers:
            self._answers.clear()  # what the tool served before the push is no longer true
        failpoint.hit("target.after-switch")
        reading = self.read()
        if reading.release != release:
            said = repr(reading.output) if reading.output else "nothing"
            raise TargetError(
                f"the tool of {self.env} was told to serve {release.name}, but reading it back "
                f"says {said}",
                hint=self.readback_hint,
            )
        self._fetched_for = None
        self.store.record_activation(release.name)

    def _gave_up(self, exc: TargetError, attempts: int) -> TargetError:
        tried = (
            f"tried {attempts} times (idempotent = true)"
            if attempts > 1
            else "not retried: the target is not marked idempotent"
        )
        return type(exc)(  # a timeout stays one: the push may still land
            f"{exc.message}; {tried}",
            hint=(exc.hint + "; " if exc.hint else "")
            + f"'lastgood status {self.env}' reads back what the tool serves now",
        )

    def live(self) -> Release | None:
        """The retained release the tool names; when it names none, the release lastgood put
        there last (``actual_hash()`` then says it is not what is served), or None."""
        reading = self.read()
        if reading.release is not None:
            return reading.release
        return self.recorded()

    def recorded(self) -> Release | None:
        """The release lastgood activated last here, if still retained. Reads only."""
        activations = self.store.read_state()["activations"]
        if not activations:
            return None
        name = str(activations[-1].get("release"))
        return next((r for r in self.store.retained() if r.name == name), None)

    def actual_hash(self) -> str | None:
        """The content hash of what the tool serves: of the fetched files when the target can
        fetch, else of the release its label names; an ``unknown:`` value when the label names
        no release lastgood put there; None when nothing was ever put there."""
        reading = self.read()
        if reading.release is not None and reading.release.content_hash == NOT_HERE:
            return NOT_HERE  # not kept here: nothing to compare the tool's files with
        if reading.release is not None and not self.can_fetch:
            return reading.release.content_hash
        recorded = self.recorded()
        if reading.release is None:
            if recorded is None and not reading.output:
                return None
            if not self.can_fetch:
                return unknown_hash(reading.output)
        served = _fs.tree_hash(self._refresh_fetched(reading.release or recorded))
        if reading.release is None:  # a foreign label, whatever the bytes (fetched for the diff)
            return unknown_hash(f"{reading.output}\n{served}")
        return served

    def _refresh_fetched(self, base: Release | None) -> Path:
        """Fetch what the tool serves into ``STATE/fetched/``, laid over the kept copy of
        ``base`` (paths the tool does not hold). Writes only inside ``STATE``."""
        fresh = self.state / f"{FETCH_PREFIX}{_fs.random_suffix()}"
        try:
            self.state.mkdir(parents=True, exist_ok=True)
            if base is not None and self.store.is_retained(base):
                shutil.copytree(self.store.release_path(base.name), fresh, symlinks=True)
            else:
                fresh.mkdir()
            self.fetch(fresh)
            shutil.rmtree(self.fetched, ignore_errors=True)
            fresh.rename(self.fetched)
        except OSError as exc:
            raise TargetError(
                f"could not keep what the tool of {self.env} serves in {self.fetched}: {exc}",
                hint=f"free space or fix the permissions of {self.state}, then run it again",
            ) from exc
        finally:
            shutil.rmtree(fresh, ignore_errors=True)
        self._fetched_for = base
        return self.fetched

    def repair(self, release: Release, files: Mapping[str, bytes]) -> list[str]:
        """Push the live ``release`` again (the tool's copy was edited by hand); returns the
        paths that differed as far as a fetch shows (every path of the release without one).
        A release not kept here (another machine put it live) is kept from ``files`` first."""
        if not self.store.is_retained(release):
            self.store.stage(release, files)
        elif self.store.copy_problems(release):
            self.store.rewrite(release, files)
        changed = self._differing(release, files)
        self.activate(release)
        return changed

    def _differing(self, release: Release, files: Mapping[str, bytes]) -> list[str]:
        if not self.can_fetch or self._fetched_for != release or not self.fetched.is_dir():
            return sorted(files)
        found = [p for p in sorted(files) if _fs.regular_file_bytes(self.fetched / p) != files[p]]
        return found or sorted(files)

    def recover(self) -> str | None:
        """Remove leftovers of a killed stage or fetch, and record a push that a killed process
        made but did not record (the tool names a retained release lastgood did not record)."""
        done = []
        removed = [*self.store.clean_leftovers(), *_fs.remove_leftovers(self.state, FETCH_PREFIX)]
        if removed:
            done.append(f"removed leftover temporaries {', '.join(sorted(removed))}")
        served = self.read().release
        if served is not None and self.holds(served) and self.store.record_activation(served.name):
            done.append(f"recorded that the tool serves {served.name}")
        if not done:
            return None
        return f"cleaned up after an interrupted operation on {self.describe()}: {'; '.join(done)}"

    def _require_retained(self, release: Release) -> None:
        if self.store.is_retained(release):
            return
        staged = ", ".join(r.name for r in self.store.retained()) or "none"
        raise TargetError(
            f"release {release.name} is not kept in {self.store.releases}",
            hint=f"deploy it again to stage it; releases kept there: {staged}",
        )

    def holds(self, release: Release) -> bool:
        """Kept here with an intact copy: a damaged copy is not held, so a rollback stages it
        again from the store (mending it) before pushing. Reads only."""
        return self.store.is_retained(release) and not self.store.copy_problems(release)

    def retained(self) -> list[Release]:
        return self.store.retained()

    def staged_path(self, release: Release) -> Path | None:
        return self.store.release_path(release.name)

    def live_path(self) -> Path | None:
        """What the tool serves as files: the last fetch when it was of the release the tool
        names, else the kept copy of that release (what lastgood pushed)."""
        live = self.live()
        if live is None:
            return None
        if self._fetched_for == live and self.fetched.is_dir():
            return self.fetched
        return self.store.release_path(live.name)

    def record_verdict(self, release: Release, verdict: str) -> None:
        self.store.record_verdict(release.name, verdict)

    def verdict(self, release: Release) -> str | None:
        found = self.store.read_state()["verdicts"].get(release.name)
        return str(found) if found is not None else None

    def previous(self) -> Release | None:
        return self.store.previous(self.live())

    def prune(self, keep: int, protect: Iterable[Release]) -> list[Release]:
        """Drop kept copies beyond ``keep``; never the live one, the recorded one or ``protect``."""
        protected = {release.name for release in protect}
        for release in (self.live(), self.recorded()):
            if release is not None:
                protected.add(release.name)
        return self.store.prune(keep, protected)

    def record_audit_head(self, head: AuditHead) -> None:
        self.store.record_audit_head(head)

    def audit_head(self) -> AuditHeads | None:
        return self.store.kept_heads()
