"""Durable file operations and the on-disk release store shared by the filesystem targets.

Every write here is crash-safe: a file is written to a temporary name in the same folder,
fsynced, renamed over its destination, and the folder is fsynced, so after a ``kill -9`` or a
power cut a reader sees the old bytes or the new bytes, never a mix. Temporary names start with
``.lastgood-tmp-`` (files) or ``.tmp-`` (release folders) so that ``recover()`` can recognise and
remove what a killed process left behind.

:class:`ReleaseStore` keeps complete copies of releases in ``BASE/releases/<name>/`` with their
metadata in ``BASE/meta/<name>.json`` and the activation history and verdicts in
``BASE/meta/state.json``. The directory target uses it with ``BASE = PATH``; the files target with
``BASE = STATE``.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import stat
import time
from collections.abc import Iterable, Mapping
from pathlib import Path, PurePosixPath
from typing import Any

from lastgood import failpoint
from lastgood.bundle import file_hash, manifest_hash
from lastgood.errors import ConfigError, DamagedCopyError, TargetError
from lastgood.rows import AuditHead
from lastgood.targets.base import AuditHeads, Release

TMP_FILE_PREFIX = ".lastgood-tmp-"
TMP_DIR_PREFIX = ".tmp-"
VERDICTS = ("good", "bad", "withdrawn")
MAX_ACTIVATIONS = 100
KEPT_HEADS = 10
"""Audit heads kept per target: the newest and the ones it replaced. A chain cut short and then
grown past the newest head again still disagrees with one of them."""
_NAME = re.compile(r"^v(\d+)-([0-9a-f]+)$")


def random_suffix() -> str:
    """A short random token that keeps temporary names from colliding."""
    return os.urandom(6).hex()


def fsync_dir(path: Path) -> None:
    """Flush a folder's entries (new, renamed or removed names) to disk."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_new_file(path: Path, data: bytes, mode: int = 0o644) -> None:
    """Create ``path`` (which must not exist), write ``data`` and fsync it."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    try:
        with os.fdopen(fd, "wb", closefd=False) as handle:
            handle.write(data)
            handle.flush()
        os.fsync(fd)
    finally:
        os.close(fd)


def write_atomic(
    path: Path, data: bytes, *, mode: int | None = None, sync_dir: bool = True
) -> None:
    """Replace ``path`` with ``data`` atomically: temp file beside it, fsync, rename, fsync folder.

    ``mode`` sets the permission bits of the new file (default 0o644 less the umask). With
    ``sync_dir=False`` the caller fsyncs the folder itself, once for a batch of files.
    """
    tmp = path.parent / f"{TMP_FILE_PREFIX}{random_suffix()}"
    try:
        _write_new_file(tmp, data)
        if mode is not None:
            os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    if sync_dir:
        fsync_dir(path.parent)


def write_unsynced(path: Path, data: bytes) -> None:
    """Replace ``path`` with ``data`` by a rename, without any fsync: for a file whose loss in a
    power cut costs nothing but a weaker proof (the audit head), written on the rollback path
    where every fsync counts. Readers still see the old bytes or the new, never a mix."""
    tmp = path.parent / f"{TMP_FILE_PREFIX}{random_suffix()}"
    try:
        tmp.write_bytes(data)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise


def write_json(path: Path, data: Any, *, sync_dir: bool = True) -> None:
    """Write ``data`` as JSON to ``path`` atomically (see :func:`write_atomic`)."""
    text = json.dumps(data, indent=2, sort_keys=True) + "\n"
    write_atomic(path, text.encode("utf-8"), sync_dir=sync_dir)


def read_json(path: Path) -> Any:
    """The JSON in ``path``, or ``None`` when the file does not exist. Reads only."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    try:
        return json.loads(text)
    except ValueError as exc:
        raise TargetError(
            f"{path} is not valid JSON ({exc})",
            hint="lastgood writes this file atomically, so it was edited by hand: restore it "
            "from a backup or move it away",
        ) from exc


def check_relative(path: str) -> PurePosixPath:
    """Refuse a release file path that is absolute or climbs out of its folder."""
    pure = PurePosixPath(path)
    if pure.is_absolute() or not pure.parts or any(part in ("", ".", "..") for part in pure.parts):
        raise TargetError(
            f"release file path {path!r} is not a plain relative path",
            hint="paths in a release must be relative and stay inside it (no '..', no leading '/')",
        )
    return pure


def write_tree(folder: Path, files: Mapping[str, bytes]) -> None:
    """Create ``folder`` holding ``files`` (relative POSIX path → bytes), every file and folder
    fsynced. ``folder`` must not exist yet."""
    folder.mkdir()
    folders = {folder}
    for path, data in files.items():
        destination = folder.joinpath(*check_relative(path).parts)
        for parent in destination.relative_to(folder).parents:
            folders.add(folder / parent)
        destination.parent.mkdir(parents=True, exist_ok=True)
        _write_new_file(destination, data)
    for each in sorted(folders, key=lambda p: len(p.parts), reverse=True):
        fsync_dir(each)


def regular_file_bytes(path: Path) -> bytes | None:
    """The bytes of ``path`` if it is a regular file (not a link, not a folder), else ``None``."""
    try:
        if not stat.S_ISREG(os.lstat(path).st_mode):
            return None
        return path.read_bytes()
    except (FileNotFoundError, NotADirectoryError):
        return None


def tree_hash(folder: Path) -> str:
    """Content hash of every regular file under ``folder``, by relative POSIX path. Reads only."""
    pairs = []
    for dirpath, _dirnames, filenames in os.walk(folder):
        for filename in filenames:
            full = Path(dirpath, filename)
            data = regular_file_bytes(full)
            if data is not None:
                pairs.append((full.relative_to(folder).as_posix(), file_hash(data)))
    return manifest_hash(pairs)


def repair_tree(folder: Path, files: Mapping[str, bytes], *, remove_extra: bool) -> list[str]:
    """Make ``folder`` hold exactly ``files`` again, each file replaced atomically.

    Only files that differ are rewritten (keeping their mode); with ``remove_extra`` regular
    files that are not in ``files`` are removed too. Returns the relative paths changed.
    """
    changed, touched = [], set()
    for path, data in sorted(files.items()):
        destination = folder.joinpath(*check_relative(path).parts)
        present = regular_file_bytes(destination)
        if present == data:
            continue
        destination.parent.mkdir(parents=True, exist_ok=True)
        mode = stat.S_IMODE(destination.stat().st_mode) if present is not None else None
        write_atomic(destination, data, mode=mode, sync_dir=False)
        changed.append(path)
        touched.add(destination.parent)
    if remove_extra:
        for dirpath, _dirnames, filenames in os.walk(folder):
            for filename in filenames:
                full = Path(dirpath, filename)
                if full.relative_to(folder).as_posix() not in files:
                    full.unlink()
                    changed.append(full.relative_to(folder).as_posix())
                    touched.add(full.parent)
    for each in touched:
        fsync_dir(each)
    return changed


def tree_fingerprint(folder: Path) -> str:
    """A cheap seal of a folder: every path, and each file's size, mtime, ctime and inode.

    Any edit, replacement, addition or removal changes it (ctime cannot be set by hand), so a
    matching fingerprint proves the files are as staged without reading them. Reads only.
    """
    entries: list[str] = []
    for dirpath, dirnames, filenames in os.walk(folder):
        relative = Path(dirpath).relative_to(folder).as_posix()
        entries.extend(f"d {relative}/{name}" for name in dirnames)
        for name in filenames:
            info = os.lstat(os.path.join(dirpath, name))
            entries.append(
                f"f {relative}/{name} {info.st_size} {info.st_mtime_ns} {info.st_ctime_ns} "
                f"{info.st_ino} {info.st_mode}"
            )
    return hashlib.sha256("\n".join(sorted(entries)).encode()).hexdigest()


def remove_leftovers(folder: Path, prefix: str) -> list[str]:
    """Remove entries of ``folder`` whose names start with ``prefix``; return their names."""
    removed = []
    try:
        entries = list(os.scandir(folder))
    except (FileNotFoundError, NotADirectoryError):
        return []
    for entry in entries:
        if not entry.name.startswith(prefix):
            continue
        if entry.is_dir(follow_symlinks=False):
            import shutil

            shutil.rmtree(entry.path)
        else:
            os.unlink(entry.path)
        removed.append(entry.name)
    return removed


def option_path(options: Mapping[str, Any], key: str, root: Path) -> Path | None:
    """Option ``key`` as an absolute path, relative paths against ``root``; ``None`` if unset."""
    value = options.get(key)
    if value is None:
        return None
    if not isinstance(value, str) or not value:
        raise ConfigError(f"target option {key} must be a folder path, got {value!r}")
    return (root / Path(value).expanduser()).resolve()


def option_keep(options: Mapping[str, Any], key: str = "target option") -> int:
    """The ``keep`` option: how many releases to retain (default 10). ``key`` names the table
    in the error (``env.production.target``)."""
    keep: object = options.get("keep", 10)
    if isinstance(keep, bool) or not isinstance(keep, int) or keep < 1:
        where = "target option keep" if key == "target option" else f"{key}.keep"
        raise ConfigError(
            f"{where} must be a whole number of at least 1, got {keep!r}",
            hint="write keep = 10 in the target table",
        )
    return keep


def reject_unknown_options(options: Mapping[str, Any], known: Iterable[str], kind: str) -> None:
    """Stop on a misspelt target option instead of silently ignoring it."""
    names = sorted(known)
    for key in options:
        if key not in names:
            import difflib

            close = difflib.get_close_matches(key, names, n=1)
            hint = f"did you mean {close[0]!r}?" if close else f"known options: {', '.join(names)}"
            raise ConfigError(f"unknown option {key!r} for a {kind} target", hint=hint)


def release_from_name(name: str) -> Release:
    """Parse ``v12-3f2a9c1d`` (the content hash is then only its prefix)."""
    match = _NAME.match(name)
    if match is None:
        raise TargetError(f"{name!r} is not a lastgood release name (like 'v12-3f2a9c1d')")
    return Release(int(match.group(1)), match.group(2))


class ReleaseStore:
    """Complete, fsynced copies of releases under ``base``, their metadata and verdicts.

    A release counts as retained only when both ``releases/<name>/`` and ``meta/<name>.json``
    exist; staging writes the metadata before the folder is renamed into place and pruning
    removes the folder before the metadata, so an interrupted stage or prune never leaves a
    retained release that is incomplete.
    """

    def __init__(self, base: Path) -> None:
        self.base = base
        self.releases = base / "releases"
        self.meta = base / "meta"
        self.state_path = self.meta / "state.json"
        self.audit_head_path = self.meta / "audit-head.json"

    def release_path(self, name: str) -> Path:
        return self.releases / name

    def meta_path(self, name: str) -> Path:
        return self.meta / f"{name}.json"

    def read_meta(self, name: str) -> dict[str, Any] | None:
        """The metadata of release ``name``, or ``None`` when it is missing or unreadable."""
        try:
            data = read_json(self.meta_path(name))
        except TargetError:
            return None
        if not isinstance(data, dict) or not {"version", "content_hash"} <= set(data):
            return None
        return data

    def release(self, name: str) -> Release:
        """The release called ``name``: from its metadata, else parsed from the name."""
        meta = self.read_meta(name)
        if meta is None:
            return release_from_name(name)
        return Release(int(meta["version"]), str(meta["content_hash"]))

    def manifest(self, name: str) -> dict[str, str]:
        """Path → file hash of a staged release; empty when its metadata is missing."""
        meta = self.read_meta(name) or {}
        return dict(meta.get("manifest", {}))

    def is_retained(self, release: Release) -> bool:
        return self.release_path(release.name).is_dir() and self.meta_path(release.name).is_file()

    def retained(self) -> list[Release]:
        """Releases whose folder and metadata both exist, oldest version first. Reads only."""
        try:
            names = [e.name for e in os.scandir(self.releases) if e.is_dir(follow_symlinks=False)]
        except FileNotFoundError:
            return []
        found = []
        for name in names:
            meta = None if name.startswith(".") else self.read_meta(name)
            if meta is not None:
                found.append(Release(int(meta["version"]), str(meta["content_hash"])))
        return sorted(found)

    def stage(self, release: Release, files: Mapping[str, bytes]) -> bool:
        """Write ``release`` into ``releases/<name>/`` all-or-nothing; ``False`` if already there.

        Writes the files into ``releases/.tmp-<name>-<random>/``, then ``meta/<name>.json``, then
        renames the folder into place and fsyncs ``releases/``.
        """
        if self.is_retained(release):
            return False
        manifest = {str(check_relative(path)): file_hash(data) for path, data in files.items()}
        self.clean_leftovers()
        self._make_folders()
        final = self.release_path(release.name)
        if final.exists():
            return self._adopt_existing(release, final, manifest)
        tmp = self.releases / f"{TMP_DIR_PREFIX}{release.name}-{random_suffix()}"
        try:
            write_tree(tmp, files)
        except OSError:
            import shutil

            shutil.rmtree(tmp, ignore_errors=True)  # a full disk gets its space back at once
            raise
        failpoint.hit("target.after-stage-files")
        self._write_meta(release, manifest, tree_fingerprint(tmp))
        failpoint.hit("target.before-rename-release")
        os.rename(tmp, final)
        fsync_dir(self.releases)
        return True

    def _make_folders(self) -> None:
        for folder in (self.base, self.releases, self.meta):
            if not folder.is_dir():
                folder.mkdir(parents=True, exist_ok=True)
                fsync_dir(folder.parent)

    def _adopt_existing(self, release: Release, folder: Path, manifest: dict[str, str]) -> bool:
        """A release folder without metadata (edited by hand): keep it only if it is intact.

        It may be the live folder, so it is never moved away here.
        """
        if tree_hash(folder) != manifest_hash(manifest.items()):
            raise TargetError(
                f"{folder} exists without its metadata and does not hold release {release.name}",
                hint=f"move {folder} away, then deploy again",
            )
        self._write_meta(release, manifest, tree_fingerprint(folder))
        return True

    def _write_meta(
        self, release: Release, manifest: dict[str, str], fingerprint: str | None = None
    ) -> None:
        meta = {
            "version": release.version,
            "content_hash": release.content_hash,
            "manifest": manifest,
            "staged_at": time.time(),
            "fingerprint": fingerprint,
        }
        write_json(self.meta_path(release.name), meta)

    def untouched(self, release: Release) -> bool:
        """True when the release folder still carries the fingerprint recorded for it."""
        meta = self.read_meta(release.name) or {}
        sealed = meta.get("fingerprint")
        folder = self.release_path(release.name)
        return bool(sealed) and folder.is_dir() and tree_fingerprint(folder) == sealed

    def copy_problems(self, release: Release) -> list[str]:
        """What is wrong with the kept copy of ``release``: paths missing, changed or extra, or
        ``metadata`` when its manifest does not hash to the release. Empty when intact.

        Reads no file of the copy when its sealed fingerprint still matches. Reads only.
        """
        manifest = self.manifest(release.name)
        if manifest_hash(manifest.items()) != release.content_hash:
            return ["metadata"]
        if self.untouched(release):
            return []
        folder = self.release_path(release.name)
        found: dict[str, str] = {}
        for dirpath, _dirnames, filenames in os.walk(folder):
            for filename in filenames:
                data = regular_file_bytes(Path(dirpath, filename))
                if data is not None:
                    found[Path(dirpath, filename).relative_to(folder).as_posix()] = file_hash(data)
        paths = set(manifest) | set(found)
        return sorted(path for path in paths if found.get(path) != manifest.get(path))

    def rewrite(self, release: Release, files: Mapping[str, bytes]) -> list[str]:
        """Make the kept copy of ``release`` exactly ``files`` again (from the store's bytes),
        rewrite its metadata if that was damaged, and seal it. Returns the paths rewritten."""
        if manifest_hash(self.manifest(release.name).items()) != release.content_hash:
            manifest = {str(check_relative(path)): file_hash(data) for path, data in files.items()}
            self._write_meta(release, manifest)
        changed = repair_tree(self.release_path(release.name), files, remove_extra=True)
        self.seal(release)
        return changed

    def require_intact(self, release: Release, env: str, unchanged: str) -> None:
        """Refuse, before anything changes, to put a damaged kept copy live (``unchanged`` says
        what was left as it was); an intact one is sealed, so the next check is free."""
        problems = self.copy_problems(release)
        if not problems:
            if not self.untouched(release):
                self.seal(release)  # proven by reading every file
            return
        shown = ", ".join(problems[:5]) + (" …" if len(problems) > 5 else "")
        raise DamagedCopyError(
            f"the kept copy of {release.name} in {self.release_path(release.name)} is "
            f"damaged ({shown}); {unchanged}",
            hint=f"run 'lastgood rollback {env} --to v{release.version}' (not --offline) "
            f"or 'lastgood deploy {env} --version v{release.version}': lastgood rewrites "
            "the copy from its store first",
        )

    def seal(self, release: Release) -> None:
        """Record the folder's fingerprint as proven good (after a full hash or a repair)."""
        meta = self.read_meta(release.name)
        if meta is None:
            return
        meta["fingerprint"] = tree_fingerprint(self.release_path(release.name))
        write_json(self.meta_path(release.name), meta)

    def clean_leftovers(self) -> list[str]:
        """Remove temporary folders and files a killed stage, prune or write left behind."""
        return [
            *remove_leftovers(self.releases, TMP_DIR_PREFIX),
            *remove_leftovers(self.meta, TMP_FILE_PREFIX),
        ]

    def read_state(self) -> dict[str, Any]:
        """``{"activations": [{"release", "at"}…], "verdicts": {name: verdict}}``. Reads only."""
        state = read_json(self.state_path) or {}
        return {
            "activations": list(state.get("activations", [])),
            "verdicts": dict(state.get("verdicts", {})),
        }

    def record_activation(self, name: str) -> bool:
        """Append ``name`` to the activation history unless it is already the newest entry."""
        state = self.read_state()
        activations = state["activations"]
        if activations and activations[-1].get("release") == name:
            return False
        activations.append({"release": name, "at": time.time()})
        state["activations"] = activations[-MAX_ACTIVATIONS:]
        self._make_folders()
        # no folder fsync: the switch itself is the truth, and recover() re-records an activation
        # this write lost to a power cut; one fsync less on every rollback
        write_json(self.state_path, state, sync_dir=False)
        return True

    def record_verdict(self, name: str, verdict: str) -> None:
        """Remember ``good`` or ``bad`` for release ``name`` in ``meta/state.json``."""
        if verdict not in VERDICTS:
            raise TargetError(f"verdict must be one of {', '.join(VERDICTS)}, got {verdict!r}")
        state = self.read_state()
        if state["verdicts"].get(name) == verdict:
            return  # already known: no write, no fsync on the rollback path
        state["verdicts"][name] = verdict
        self._make_folders()
        write_json(self.state_path, state)

    def record_audit_head(self, head: AuditHead) -> None:
        """Keep ``head`` first in ``meta/audit-head.json``, with the heads it replaces; never
        an older one. Only where ``meta/`` exists already: a target that holds nothing yet
        keeps no head (its folder stays as the user left it). No fsync: see write_unsynced."""
        if not self.meta.is_dir():
            return
        try:
            kept = self.audit_heads()
        except TargetError:
            kept = []  # a file damaged by a power cut: start it again
        if kept and kept[0].seq >= head.seq:
            return
        heads = [head, *kept][:KEPT_HEADS]
        data = {"heads": [{"seq": each.seq, "hash": each.hash} for each in heads]}
        write_unsynced(self.audit_head_path, json.dumps(data, sort_keys=True).encode() + b"\n")

    def audit_heads(self) -> list[AuditHead]:
        """The heads in ``meta/audit-head.json``, newest first; empty when there is no file,
        TargetError when it cannot be read. Reads only."""
        data = read_json(self.audit_head_path)
        if data is None:
            return []
        try:
            return [AuditHead(int(each["seq"]), str(each["hash"])) for each in data["heads"]]
        except (TypeError, KeyError, ValueError) as exc:
            raise TargetError(
                f"{self.audit_head_path} does not hold audit heads ({exc!r})",
                hint="lastgood writes this file itself: it was edited by hand; move it away "
                "(the next chained write of this environment writes a new one)",
            ) from exc

    def kept_heads(self) -> AuditHeads | None:
        """The audit heads kept here with the file's name, or None when there are none."""
        heads = self.audit_heads()
        return AuditHeads(tuple(heads), str(self.audit_head_path)) if heads else None

    def previous(self, live: Release | None) -> Release | None:
        """Newest earlier activation that is not live, proven good here, and still retained."""
        state = self.read_state()
        retained = {release.name: release for release in self.retained()}
        for record in reversed(state["activations"]):
            name = record.get("release")
            if live is not None and name == live.name:
                continue
            if state["verdicts"].get(name) != "good" or name not in retained:
                continue
            return retained[name]
        return None

    def prune(self, keep: int, protect: Iterable[str]) -> list[Release]:
        """Drop retained releases older than the newest ``keep``, except names in ``protect``.

        Each folder is renamed to ``.tmp-trash-…`` (so it stops counting at once), deleted, and
        then its metadata is removed.
        """
        if keep < 0:
            raise TargetError(f"cannot keep {keep} releases; keep must be 0 or more")
        protected = set(protect)
        newest_first = sorted(self.retained(), reverse=True)
        dropped = [r for r in newest_first[keep:] if r.name not in protected]
        for release in reversed(dropped):
            trash = self.releases / f"{TMP_DIR_PREFIX}trash-{release.name}-{random_suffix()}"
            os.rename(self.release_path(release.name), trash)
            fsync_dir(self.releases)
            import shutil

            shutil.rmtree(trash)
            self.meta_path(release.name).unlink(missing_ok=True)
            fsync_dir(self.meta)
        return sorted(dropped)
