"""The files target: write a release's files into an existing folder an app already reads.

For apps that read fixed paths and cannot follow a symlink switch. lastgood keeps a full copy of
every staged release in its own state folder (``STATE``, default ``PATH/.lastgood-target``)::

    STATE/releases/v12-3f2a9c1d/…     # complete, fsynced copies
    STATE/meta/v12-3f2a9c1d.json      # version, content hash, manifest, staged_at
    STATE/meta/state.json             # activation history and verdicts
    STATE/meta/audit-head.json        # the audit chain's newest heads
    STATE/current.json                # the release PATH serves
    STATE/journal.json                # only while a switch is under way
    STATE/originals/…                 # files that were in PATH before lastgood took them over

A switch replaces files one at a time (each atomically), so it is made crash-safe by a journal:
the kept copy is verified, the plan is written, and ``recover()`` rolls an interrupted switch
forward, which is always possible because the release is fully staged and checked, and copying
identical bytes again is a no-op.

Nothing that lastgood did not write is ever lost: when a release takes over a path that holds a
file, that file is copied to ``STATE/originals/`` before anything is written, and when a later
release no longer has the path, the original is put back instead of deleting it. The journal
records that this adoption is done before ``PATH`` changes, and carries every path lastgood may
have written, so neither a replay nor a superseding switch ever keeps lastgood's own file as
someone else's. Anything else in ``PATH`` is left alone.
"""

from __future__ import annotations

import os
import shutil
import stat
from collections.abc import Iterable, Mapping
from pathlib import Path, PurePosixPath
from typing import Any, ClassVar

from lastgood import failpoint
from lastgood.bundle import file_hash, manifest_hash
from lastgood.errors import ConfigError, StagingError, TargetError
from lastgood.rows import AuditHead
from lastgood.targets import _fs
from lastgood.targets.base import AuditHeads, Release, Target
from lastgood.units import format_size

_OPTIONS = ("path", "keep", "state")
DEFAULT_STATE = ".lastgood-target"
_SLACK = 4096  # a file system block per file written, for the space check


class FilesTarget(Target):
    """Copy the live release's files into ``PATH`` through a journal that ``recover()`` finishes."""

    type_name: ClassVar[str] = "files"

    def __init__(self, env: str, options: Mapping[str, Any], root: Path) -> None:
        super().__init__(env, options, root)
        _fs.reject_unknown_options(self.options, _OPTIONS, self.type_name)
        path = _fs.option_path(self.options, "path", root)
        if path is None:
            raise ConfigError(
                f"the files target of {env!r} has no path",
                hint='write target = { type = "files", path = "../app/config" }',
            )
        self.path = path
        self.keep = _fs.option_keep(self.options)
        self.state = _fs.option_path(self.options, "state", root) or path / DEFAULT_STATE
        self.store = _fs.ReleaseStore(self.state)
        self.journal_path = self.state / "journal.json"
        self.current_path = self.state / "current.json"
        self.originals = self.state / "originals"

    def stage(self, release: Release, files: Mapping[str, bytes]) -> None:
        """Store a full copy of ``release`` in ``STATE/releases/<name>/``.

        When it is retained already this only makes sure the kept copy is intact, rewriting the
        files that differ from ``files`` (the store's bytes). Nothing in ``PATH`` outside
        ``STATE`` changes.
        """
        if self.store.is_retained(release):
            if self.store.copy_problems(release):
                self._rewrite_copy(release, files)
            return
        self._require_folder()
        self._refuse_state_paths(files)
        self.store.stage(release, files)

    def _rewrite_copy(self, release: Release, files: Mapping[str, bytes]) -> None:
        """Repair a damaged kept copy from the store's bytes; a disk problem names the folder."""
        copy = self.store.release_path(release.name)
        try:
            self.store.rewrite(release, files)
        except OSError as exc:
            raise TargetError(
                f"could not repair the kept copy of {release.name} in {copy}: {exc}",
                hint=f"move {copy} and {self.store.meta_path(release.name)} away, then run the "
                "command again: the release is staged afresh",
            ) from exc

    def _require_folder(self) -> None:
        if not self.path.is_dir():
            raise TargetError(
                f"the files target folder {self.path} does not exist",
                hint=f"create it (mkdir -p {self.path}) or fix target.path in lastgood.toml",
            )

    def _refuse_state_paths(self, files: Mapping[str, bytes]) -> None:
        """A release must not write into lastgood's own state folder."""
        if not self.state.is_relative_to(self.path):
            return
        inner = PurePosixPath(self.state.relative_to(self.path).as_posix())
        for path in files:
            pure = _fs.check_relative(path)
            if pure == inner or inner in pure.parents:
                raise TargetError(
                    f"release file {path!r} would land in lastgood's state folder {self.state}",
                    hint="exclude it from versioning, or set target.state to a folder outside "
                    f"{self.path}",
                )

    def activate(self, release: Release) -> None:
        """Make ``PATH`` serve ``release``: check its kept copy, write the journal, apply it.

        Every file of the kept copy is verified against the release before the journal is
        written, so a switch that could not complete is never started. A switch left half-done
        (even one that cannot finish, say a file in the way) is superseded rather than replayed,
        so a rollback is never blocked by it: files it may have written are part of what this
        switch deletes, and never taken for someone else's. Writes ``STATE/journal.json``, the
        changed files in ``PATH``, ``STATE/current.json`` and ``STATE/meta/state.json``.
        """
        self._require_folder()
        self._require_retained(release)
        unchanged = f"nothing was switched, {self.path} is unchanged"
        self.store.require_intact(release, self.env, unchanged)  # before anything changes
        pending = self._read_journal()
        live = self._recorded_live()
        owned = set(self.store.manifest(live.name)) if live is not None else set()
        if pending is not None:
            owned |= self._may_hold(pending)
        new = self.store.manifest(release.name)
        self._require_space(release, sorted(new), set(new) - owned)
        journal = {
            "to": release.name,
            "from": live.name if live is not None else None,
            "write": sorted(new),
            "delete": sorted(owned - set(new)),
            "adopt": sorted(set(new) - owned),
            "owned": sorted(owned),
            "adopted": False,
        }
        _fs.write_json(self.journal_path, journal)
        self._apply(journal)

    def _require_space(self, release: Release, writes: list[str], adopted: set[str]) -> None:
        """Refuse, before the journal, a switch the disk cannot hold to its end.

        Plays the switch through on paper: originals kept first, then each file written next
        to the one it replaces (the old one's space comes back after the rename), with a block
        of slack per file. Reads the release's and the live files; writes nothing."""
        free = shutil.disk_usage(self.path).free
        needed_at_most, balance = 0, 0
        for path in sorted(adopted):
            balance += len(_fs.regular_file_bytes(self._destination(path)) or b"")
        needed_at_most = balance
        source = self.store.release_path(release.name)
        for path in writes:
            data = (source / path).read_bytes()
            present = _fs.regular_file_bytes(self._destination(path))
            if present == data:
                continue
            needed_at_most = max(needed_at_most, balance + len(data) + _SLACK)
            balance += len(data) - len(present or b"")
        if needed_at_most > free:
            raise StagingError(
                f"not enough space in {self.path} to switch it to {release.name}: the switch "
                f"needs {format_size(needed_at_most)} at its peak and {format_size(free)} is "
                f"free; nothing was switched, {self.path} is unchanged",
                hint="free space on that file system, then run the command again",
            )

    def _may_hold(self, journal: dict[str, Any]) -> set[str]:
        """Paths in ``PATH`` that may hold a file lastgood wrote, as far as ``journal`` goes.

        Before its adoption phase is recorded as done a switch has changed nothing, so only
        the paths it inherited count; after it, every path it writes does too. A journal from
        an earlier lastgood records neither: then every path of its two releases counts.
        """
        if "owned" not in journal:
            owned = set(self.store.manifest(str(journal["from"]))) if journal["from"] else set()
            return owned | set(journal["write"])
        owned = set(journal["owned"])
        return owned | set(journal["write"]) if journal.get("adopted") else owned

    def _require_retained(self, release: Release) -> None:
        if self.store.is_retained(release):
            return
        staged = ", ".join(r.name for r in self.store.retained()) or "none"
        raise TargetError(
            f"release {release.name} is not staged in {self.store.releases}",
            hint=f"deploy it again to stage it; releases staged there: {staged}",
        )

    def _apply(self, journal: dict[str, Any]) -> None:
        """Carry out ``journal``; idempotent, so a killed switch is finished by running it again.

        Order: keep originals of paths taken over and record that in the journal, then deletes
        (so a file may become a folder and back), then writes. Recording the adoption before
        the first change means a replay never keeps a file lastgood wrote as someone else's.
        A disk problem becomes a TargetError naming the path.
        """
        name = journal["to"]
        release = self.store.release(name)
        self._require_retained(release)
        manifest = self.store.manifest(name)
        try:
            self._adopt(journal, manifest)
            touched = self._delete(journal["delete"])
            replaced = 0
            for path in journal["write"]:
                if self._install(name, path, manifest.get(path)):
                    touched.update(self._folders_of(path))
                    replaced += 1
                    if replaced == 1:
                        failpoint.hit("target.mid-switch")
            for folder in touched:
                _fs.fsync_dir(folder)
        except OSError as exc:
            raise TargetError(
                f"could not switch {self.path} to {name}: {exc}",
                hint="fix the file or folder named above (permissions, a full disk, a file where "
                "a folder must go), then run any lastgood command: it finishes the switch",
            ) from exc
        self._finish(release, manifest)

    def _adopt(self, journal: dict[str, Any], manifest: Mapping[str, str]) -> None:
        """Keep what sits at each path being taken over, then mark the journal adopted.

        Runs at most once per journal before ``PATH`` changes; a replay skips it. A journal
        from an earlier lastgood has no mark, so a file already holding the release's bytes
        is then taken to be lastgood's own, never kept as an original.
        """
        if journal.get("adopted"):
            return
        legacy = "adopted" not in journal
        for path in journal.get("adopt", []):
            present = _fs.regular_file_bytes(self._destination(path))
            if legacy and present is not None and file_hash(present) == manifest.get(path):
                continue
            self._keep_original(path, present)
        _fs.write_json(self.journal_path, {**journal, "adopted": True})

    def _keep_original(self, path: str, present: bytes | None) -> None:
        """Copy the file lastgood did not write at ``path`` to ``STATE/originals``.

        The copy is refreshed (or dropped when nothing is there) because adoption runs before
        anything in ``PATH`` changes: what is there now is the other owner's current file.
        """
        backup = self.originals.joinpath(*_fs.check_relative(path).parts)
        if present is None:
            if backup.is_file():  # a stale copy must not outlive a power cut: it would come back
                backup.unlink()
                _fs.fsync_dir(backup.parent)
            return
        if _fs.regular_file_bytes(backup) == present:
            return
        backup.parent.mkdir(parents=True, exist_ok=True)
        _fs.write_atomic(backup, present)

    def _delete(self, paths: list[str]) -> set[Path]:
        """Remove paths the new release no longer has, or put back the file that was there
        before lastgood; then drop folders this emptied. Returns the folders changed."""
        touched: set[Path] = set()
        for path in paths:
            destination = self._destination(path)
            backup = self.originals.joinpath(*_fs.check_relative(path).parts)
            if backup.is_file():
                _fs.write_atomic(destination, backup.read_bytes(), sync_dir=False)
            elif os.path.lexists(destination) and not destination.is_dir():
                destination.unlink()
            touched.add(destination.parent)
            self._remove_empty_folders(destination.parent)
        return {folder for folder in touched if folder.exists()}

    def _remove_empty_folders(self, folder: Path) -> None:
        while folder != self.path and folder.is_dir() and not any(folder.iterdir()):
            folder.rmdir()
            folder = folder.parent

    def _finish(self, release: Release, manifest: Mapping[str, str]) -> None:
        current = {
            "release": release.name,
            "version": release.version,
            "content_hash": release.content_hash,
        }
        _fs.write_json(self.current_path, current)
        self.store.record_activation(release.name)
        self.journal_path.unlink()
        _fs.fsync_dir(self.state)
        self._drop_originals(manifest)
        failpoint.hit("target.after-switch")

    def _drop_originals(self, manifest: Mapping[str, str]) -> None:
        """Drop kept originals of paths the live release does not have: they were put back,
        or their owner's file never left ``PATH``. Only after the journal is gone, so a replay
        can never lose one."""
        if not self.originals.is_dir():
            return
        for dirpath, _dirnames, filenames in os.walk(self.originals, topdown=False):
            for filename in filenames:
                backup = Path(dirpath, filename)
                if backup.relative_to(self.originals).as_posix() not in manifest:
                    backup.unlink()
            if dirpath != str(self.originals) and not os.listdir(dirpath):
                os.rmdir(dirpath)

    def _destination(self, path: str) -> Path:
        return self.path.joinpath(*_fs.check_relative(path).parts)

    def _folders_of(self, path: str) -> list[Path]:
        """The folders between ``PATH`` and ``path`` whose entries a write may have changed."""
        parents = _fs.check_relative(path).parents
        return [self.path.joinpath(*parent.parts) for parent in parents]

    def _install(self, name: str, path: str, expected: str | None) -> bool:
        """Copy one file from the staged release into ``PATH`` atomically, keeping its mode.

        Returns ``False`` without writing when the bytes there are already identical.
        """
        source = self.store.release_path(name).joinpath(*_fs.check_relative(path).parts)
        data = source.read_bytes()
        if file_hash(data) != expected:
            raise TargetError(
                f"the staged copy {source} does not match its manifest (changed during the switch)",
                hint=f"run 'lastgood rollback {self.env} --to v{self.store.release(name).version}' "
                "(not --offline): it rewrites the copy from the store and finishes the switch",
            )
        destination = self._destination(path)
        present = _fs.regular_file_bytes(destination)
        if present == data:
            return False
        if destination.is_dir() and not destination.is_symlink():
            raise TargetError(
                f"{destination} is a folder, but release {name} has a file there",
                hint=f"move {destination} away and run the command again",
            )
        destination.parent.mkdir(parents=True, exist_ok=True)
        mode = stat.S_IMODE(destination.stat().st_mode) if present is not None else None
        _fs.write_atomic(destination, data, mode=mode, sync_dir=False)
        return True

    def _read_journal(self) -> dict[str, Any] | None:
        journal = _fs.read_json(self.journal_path)
        if journal is None:
            return None
        if not isinstance(journal, dict) or not {"to", "from", "write", "delete"} <= set(journal):
            raise TargetError(
                f"{self.journal_path} is not a lastgood switch journal",
                hint="restore it from a backup, or move it away and run 'lastgood rollback'",
            )
        return journal

    def recover(self) -> str | None:
        """Roll an interrupted switch forward and remove leftover ``.lastgood-tmp-*`` files.

        Returns a sentence saying what was done, or ``None`` when there was nothing to do.
        """
        removed = [
            *self.store.clean_leftovers(),
            *_fs.remove_leftovers(self.state, _fs.TMP_FILE_PREFIX),
        ]
        journal = self._read_journal()
        if journal is None:
            if not removed:
                return None
            return f"removed leftover temporaries {', '.join(sorted(removed))} from {self.state}"
        for path in (*journal["write"], *journal["delete"]):
            _fs.remove_leftovers(self._destination(path).parent, _fs.TMP_FILE_PREFIX)
        self._apply(journal)
        return f"finished the interrupted switch to {journal['to']} on {self.path}"

    def live(self) -> Release | None:
        """The release ``PATH`` serves, from ``STATE/current.json``; ``None`` before the first.

        While a switch journal exists (a switch is under way, or was killed and ``recover()`` has
        not run yet) this reports the journal's ``from``: the last release that was completely in
        place. It deliberately does not call ``recover()``: reading must never write, and another
        process may be mid-switch. Until the switch is finished ``actual_hash()`` then differs,
        which shows the target as drifted. Reads only.
        """
        journal = self._read_journal()
        if journal is not None:
            name = journal["from"]
            return None if name is None else self.store.release(str(name))
        return self._recorded_live()

    def _recorded_live(self) -> Release | None:
        current = _fs.read_json(self.current_path)
        if current is None:
            return None
        return Release(int(current["version"]), str(current["content_hash"]))

    def repair(self, release: Release, files: Mapping[str, bytes]) -> list[str]:
        """Rewrite hand-edited files of the live release in ``PATH`` (and its staged copy).

        Files in ``PATH`` that lastgood did not write are left alone."""
        self._require_retained(release)
        _fs.repair_tree(self.store.release_path(release.name), files, remove_extra=True)
        if self._read_journal() is None:
            return _fs.repair_tree(self.path, files, remove_extra=False)
        # a switch left half-done shows as drift: a switch to ``release`` supersedes it, so no
        # later command can finish it and put the other version live
        differing = [p for p, data in files.items() if self._bytes_at(p) != data]
        self.activate(release)
        return sorted(differing)

    def _bytes_at(self, path: str) -> bytes | None:
        return _fs.regular_file_bytes(self._destination(path))

    def holds(self, release: Release) -> bool:
        """Its kept copy exists and is intact (its sealed fingerprint matches, or every file
        hashes right). A damaged copy is not held, so the caller stages it again from the store,
        which rewrites it, before the switch. Reads only."""
        return self.store.is_retained(release) and not self.store.copy_problems(release)

    def retained(self) -> list[Release]:
        """Releases with a complete copy in ``STATE/releases/``, oldest first. Reads only."""
        return self.store.retained()

    def actual_hash(self) -> str | None:
        """Content hash of the live release's files as they are in ``PATH`` now.

        Only files lastgood manages count (other files in ``PATH`` are not lastgood's); a
        missing one is left out, so deleting or editing a file changes the hash. After a
        complete switch those are exactly the live release's files: every other path lastgood
        wrote was deleted or given back to its owner. While a switch journal exists, every path
        it (or a switch it superseded) may have written counts too, so a half-done switch never
        hashes like a complete release. ``None`` when nothing is live or its manifest is gone.
        Reads only.
        """
        live = self.live()
        if live is None or not self.store.meta_path(live.name).is_file():
            return None
        managed = set(self.store.manifest(live.name))
        journal = self._read_journal()
        if journal is not None:
            managed |= self._may_hold(journal) | set(journal["write"])
        pairs = []
        for path in sorted(managed):
            data = _fs.regular_file_bytes(self._destination(path))
            if data is not None:
                pairs.append((path, file_hash(data)))
        return manifest_hash(pairs)

    def staged_path(self, release: Release) -> Path | None:
        """``STATE/releases/<name>``: the staged candidate's files, for preflights."""
        return self.store.release_path(release.name)

    def live_path(self) -> Path | None:
        """``PATH``: the folder the app reads."""
        return self.path

    def record_verdict(self, release: Release, verdict: str) -> None:
        """Remember ``good`` or ``bad`` for ``release`` in ``STATE/meta/state.json``."""
        self.store.record_verdict(release.name, verdict)

    def verdict(self, release: Release) -> str | None:
        """The verdict kept for ``release`` in ``meta/state.json``, or None. Reads only."""
        found = self.store.read_state()["verdicts"].get(release.name)
        return str(found) if found is not None else None

    def record_audit_head(self, head: AuditHead) -> None:
        """Keep the audit chain's newest head in ``STATE/meta/audit-head.json`` (no fsync)."""
        self.store.record_audit_head(head)

    def audit_head(self) -> AuditHeads | None:
        """The audit heads kept in ``STATE/meta/audit-head.json``, or None."""
        return self.store.kept_heads()

    def previous(self) -> Release | None:
        """The newest earlier activation that is not live, not bad and still retained."""
        return self.store.previous(self.live())

    def prune(self, keep: int, protect: Iterable[Release]) -> list[Release]:
        """Delete copies older than the newest ``keep``; never the live one, one a pending switch
        needs, or one in ``protect``. Files in ``PATH`` are not touched."""
        protected = {release.name for release in protect}
        for release in (self.live(), self._recorded_live()):
            if release is not None:
                protected.add(release.name)
        journal = self._read_journal()
        if journal is not None:
            protected.add(str(journal["to"]))
        return self.store.prune(keep, protected)
