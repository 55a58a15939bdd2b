"""The directory target: releases side by side, ``current`` a symlink switched atomically.

Layout under ``PATH`` (the ``path`` option, relative to the workspace)::

    PATH/current -> releases/v12-3f2a9c1d     # apps read PATH/current/…
    PATH/releases/v11-…/  PATH/releases/v12-…/
    PATH/meta/v12-3f2a9c1d.json               # version, content hash, manifest, staged_at
    PATH/meta/state.json                      # activation history and verdicts
    PATH/meta/audit-head.json                 # the audit chain's newest heads

Staging writes into a temporary folder, fsyncs and renames it into place; activation renames a
new symlink over ``current`` and fsyncs ``PATH``. Readers therefore always see one complete
release, and a rollback is one rename. Metadata lives beside ``releases/``, never inside a release,
so the files an app reads are exactly the version's files.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from pathlib import Path, PurePosixPath
from typing import Any, ClassVar

from lastgood import failpoint
from lastgood.errors import ConfigError, TargetError
from lastgood.rows import AuditHead
from lastgood.targets import _fs
from lastgood.targets.base import AuditHeads, Release, Target

_OPTIONS = ("path", "keep")


class DirectoryTarget(Target):
    """Serve each release from ``PATH/releases/<name>/`` behind the ``PATH/current`` symlink."""

    type_name: ClassVar[str] = "directory"

    def __init__(self, env: str, options: Mapping[str, Any], root: Path) -> None:
        super().__init__(env, options, root)
        _fs.reject_unknown_options(self.options, _OPTIONS, self.type_name)
        path = _fs.option_path(self.options, "path", root)
        if path is None:
            raise ConfigError(
                f"the directory target of {env!r} has no path",
                hint=f'write target = {{ type = "directory", path = "../live/{env}" }}',
            )
        self.path = path
        self.keep = _fs.option_keep(self.options)
        self.current = path / "current"
        self.store = _fs.ReleaseStore(path)

    def stage(self, release: Release, files: Mapping[str, bytes]) -> None:
        """Write ``release`` to ``PATH/releases/<name>/`` unless already retained (a no-op).

        Creates ``PATH``, ``releases/`` and ``meta/`` as needed; refuses a folder it does not own.
        """
        if self.store.is_retained(release):
            return
        self._claim_folder()
        self.store.stage(release, files)

    def _claim_folder(self) -> None:
        """Refuse to write into a file or into someone else's non-empty folder."""
        if self.path.exists() and not self.path.is_dir():
            raise TargetError(
                f"directory target path {self.path} is a file, not a folder",
                hint="point target.path in lastgood.toml at a new or empty folder",
            )
        owned = self.store.releases.is_dir() or os.path.lexists(self.current)
        if self.path.is_dir() and not owned and any(self.path.iterdir()):
            raise TargetError(
                f"{self.path} is a non-empty folder that is not a lastgood directory target "
                "(it has no releases/ and no current)",
                hint="point target.path at a new or empty folder, or move its files away; "
                "lastgood never writes into a folder it does not own",
            )
        if not self.path.is_dir():
            self.path.mkdir(parents=True)
            _fs.fsync_dir(self.path.parent)

    def activate(self, release: Release) -> None:
        """Point ``PATH/current`` at ``releases/<name>`` with one atomic rename, then record it.

        Writes a temporary ``PATH/.current-<random>`` link, renames it over ``current``, fsyncs
        ``PATH`` and appends the activation to ``meta/state.json``.
        """
        self._require_retained(release)
        link = self.path / f".current-{_fs.random_suffix()}"
        os.symlink(f"releases/{release.name}", link)
        failpoint.hit("target.mid-switch")
        try:
            os.replace(link, self.current)
        except OSError as exc:
            link.unlink(missing_ok=True)
            raise TargetError(
                f"could not switch {self.current} to {release.name}: {exc.strerror}",
                hint=f"{self.current} must be a symlink lastgood made; move it away and "
                "run the command again",
            ) from exc
        _fs.fsync_dir(self.path)
        failpoint.hit("target.after-switch")
        self.store.record_activation(release.name)

    def _require_retained(self, release: Release) -> None:
        if self.store.is_retained(release):
            return
        staged = ", ".join(r.name for r in self.store.retained()) or "none"
        raise TargetError(
            f"release {release.name} is not staged in {self.store.releases}",
            hint=f"deploy it again to stage it; releases staged there: {staged}",
        )

    def live(self) -> Release | None:
        """The release ``PATH/current`` points at, or ``None`` when there is no link. Reads only."""
        try:
            link = os.readlink(self.current)
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise TargetError(
                f"{self.current} is not a symlink, so lastgood cannot tell what it serves",
                hint=f"move {self.current} away and activate a release again",
            ) from exc
        return self.store.release(PurePosixPath(link).name)

    def repair(self, release: Release, files: Mapping[str, bytes]) -> list[str]:
        """Rewrite the live release folder's hand-edited files, each atomically; remove strays."""
        self._require_retained(release)
        changed = _fs.repair_tree(self.store.release_path(release.name), files, remove_extra=True)
        self.store.seal(release)
        return changed

    def untouched(self, release: Release) -> bool:
        """The release folder's stat fingerprint still matches the one taken when staged."""
        return self.store.untouched(release)

    def seal(self, release: Release) -> None:
        """Take a fresh fingerprint of the release folder, just proven intact."""
        self.store.seal(release)

    def holds(self, release: Release) -> bool:
        """A folder and a metadata file exist for it; nothing is parsed."""
        return self.store.is_retained(release)

    def retained(self) -> list[Release]:
        """Releases whose folder and metadata both exist, oldest first. Reads only."""
        return self.store.retained()

    def actual_hash(self) -> str | None:
        """Content hash of the files ``PATH/current`` really serves, hashed afresh from disk.

        Changes when someone edits, adds or deletes a file by hand. ``None`` when ``current`` is
        missing or dangling.
        """
        resolved = Path(os.path.realpath(self.current))
        if not resolved.is_dir():
            return None
        return _fs.tree_hash(resolved)

    def recover(self) -> str | None:
        """Remove temporaries a killed stage, switch or prune left, and record an unrecorded switch.

        Returns a sentence saying what was done, or ``None`` when there was nothing to do.
        """
        done = []
        removed = [*self.store.clean_leftovers(), *_fs.remove_leftovers(self.path, ".current-")]
        if removed:
            done.append(f"removed leftover temporaries {', '.join(sorted(removed))}")
        live = self.live()
        if live is not None and self.store.record_activation(live.name):
            done.append(f"recorded the switch to {live.name} in {self.store.state_path}")
        if not done:
            return None
        return f"cleaned up after an interrupted operation on {self.path}: {'; '.join(done)}"

    def staged_path(self, release: Release) -> Path | None:
        """``PATH/releases/<name>``: where a preflight finds the staged candidate."""
        return self.store.release_path(release.name)

    def live_path(self) -> Path | None:
        """``PATH/current``: the folder apps read."""
        return self.current

    def record_verdict(self, release: Release, verdict: str) -> None:
        """Remember ``good`` or ``bad`` for ``release`` in ``PATH/meta/state.json``."""
        self.store.record_verdict(release.name, verdict)

    def verdict(self, release: Release) -> str | None:
        """The verdict kept for ``release`` in ``meta/state.json``, or None. Reads only."""
        found = self.store.read_state()["verdicts"].get(release.name)
        return str(found) if found is not None else None

    def record_audit_head(self, head: AuditHead) -> None:
        """Keep the audit chain's newest head in ``PATH/meta/audit-head.json`` (no fsync)."""
        self.store.record_audit_head(head)

    def audit_head(self) -> AuditHeads | None:
        """The audit heads kept in ``PATH/meta/audit-head.json``, or None."""
        return self.store.kept_heads()

    def previous(self) -> Release | None:
        """The newest earlier activation that is not live, not bad and still retained."""
        return self.store.previous(self.live())

    def prune(self, keep: int, protect: Iterable[Release]) -> list[Release]:
        """Delete releases older than the newest ``keep``; never the live one or ``protect``."""
        live = self.live()
        protected = {release.name for release in protect}
        if live is not None:
            protected.add(live.name)
        return self.store.prune(keep, protected)
