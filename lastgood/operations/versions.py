"""``log``, ``show`` and ``diff``: read versions and compare them. Reads only."""

from __future__ import annotations

import difflib

from lastgood.errors import NotFoundError
from lastgood.operations.resolve import resolve
from lastgood.operations.snapshot import read_workspace
from lastgood.project import Project
from lastgood.record import Record
from lastgood.rows import VersionInfo

WORKSPACE = "workspace"


def log(project: Project, *, limit: int | None = 20) -> list[VersionInfo]:
    """Versions newest first."""
    return project.store.versions(limit=limit)


def show(
    project: Project, ref: str, path: str | None = None
) -> tuple[VersionInfo, dict[str, bytes]]:
    """A version and its files (or the one file ``path``)."""
    version = resolve(project, ref)
    files = project.store.files(version.number)
    if path is None:
        return version, files
    if path not in files:
        raise NotFoundError(
            f"{version.label} has no file {path!r}",
            hint=f"'lastgood show {version.label}' lists its files",
        )
    return version, {path: files[path]}


class Side(Record):
    label: str
    files: dict[str, bytes]


def _side(project: Project, ref: str | None) -> Side:
    if ref is None or ref == WORKSPACE:
        return Side(WORKSPACE, dict(read_workspace(project).files))
    version = resolve(project, ref)
    return Side(version.label, project.store.files(version.number))


def diff(project: Project, old: str | None = None, new: str | None = None) -> str:
    """Unified diff. Default: what is live on the default environment against the folder."""
    before, after = sides(project, old, new)
    return unified(before, after)


def sides(project: Project, old: str | None, new: str | None) -> tuple[Side, Side]:
    """The two sides a diff compares (see :func:`diff` for the defaults)."""
    if old is None:
        old, _ = default_old(project)
    before = Side("empty", {}) if old is None else _side(project, old)
    return before, _side(project, new)


def default_old(project: Project) -> tuple[str | None, str]:
    """What a diff without OLD compares against, and a sentence that says so (and why): live
    on the default environment, else the newest version, else nothing. Reads only."""
    env = project.config.default_environment()
    live = project.target(env).live() if env else None
    if env and live is not None:
        return f"{env}:live", f"comparing v{live.version} (live on {env}) with the folder"
    from lastgood.operations.snapshot import newest_recorded

    head = newest_recorded(project)
    why = f"nothing is live on {env} yet" if env else "no environment is configured"
    if head is None:
        return None, f"comparing nothing ({why}, and no version is recorded) with the folder"
    return head.label, f"comparing {head.label}, the newest version ({why}), with the folder"


def changes(before: Side, after: Side) -> dict[str, list[str]]:
    """Paths added, changed and removed from ``before`` to ``after``."""
    old, new = before.files, after.files
    return {
        "added": sorted(set(new) - set(old)),
        "changed": sorted(p for p in set(new) & set(old) if new[p] != old[p]),
        "removed": sorted(set(old) - set(new)),
    }


def unified(before: Side, after: Side) -> str:
    """Text diff of two sides, file by file; binary files are named, not shown."""
    chunks: list[str] = []
    for path in sorted(set(before.files) | set(after.files)):
        old, new = before.files.get(path), after.files.get(path)
        if old == new:
            continue
        try:
            old_lines = (old or b"").decode("utf-8").splitlines(keepends=True)
            new_lines = (new or b"").decode("utf-8").splitlines(keepends=True)
        except UnicodeDecodeError:
            chunks.append(f"Binary file {path} differs\n")
            continue
        from_name = f"{before.label}/{path}" if old is not None else "/dev/null"
        to_name = f"{after.label}/{path}" if new is not None else "/dev/null"
        lines = difflib.unified_diff(old_lines, new_lines, from_name, to_name)
        chunks.append("".join(line if line.endswith("\n") else line + "\n" for line in lines))
    return "".join(chunks)
