"""``log``, ``show`` and ``diff``: read versions and compare them. Reads only.

Whatever a person reads is masked (``[secrets]``, see :mod:`lastgood.secrets.mask`): every
diff that :func:`unified` makes, and the content :func:`view` gives. :func:`show` gives the real
bytes, for code that needs them (deploying, comparing), never for showing.
"""

from __future__ import annotations

import difflib
from typing import TYPE_CHECKING

from lastgood.errors import NotFoundError
from lastgood.operations.resolve import resolve
from lastgood.operations.snapshot import read_workspace
from lastgood.project import Project
from lastgood.record import Record
from lastgood.rows import VersionInfo

if TYPE_CHECKING:
    from lastgood.secrets.policy import SecretPolicy

WORKSPACE = "workspace"


def log(project: Project, *, limit: int | None = 20) -> list[VersionInfo]:
    """Versions newest first."""
    return project.store.versions(limit=limit)


def show(
    project: Project, ref: str, path: str | None = None
) -> tuple[VersionInfo, dict[str, bytes]]:
    """A version and its files (or the one file ``path``), the real bytes: to show them to
    anyone, use :func:`view`."""
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


def view(
    project: Project, ref: str, path: str | None = None, *, reveal: bool = False
) -> tuple[VersionInfo, dict[str, bytes]]:
    """:func:`show`, masked for people to read (``reveal``: the real bytes, for a person with
    the store on their own terminal; never through the server)."""
    version, files = show(project, ref, path)
    if reveal:
        return version, files
    from lastgood.secrets.mask import mask_files

    return version, mask_files(files, project.config.secrets)


def shown_file(project: Project, ref: str, path: str) -> tuple[bytes, bool]:
    """One file of a version to hand to someone else (the server's files endpoint): its
    secret values masked, and whether any was. A file whose whole content is secret is
    refused (ForbiddenError) rather than replaced: a placeholder would be taken for the file."""
    version, files = show(project, ref, path)
    from lastgood.secrets.mask import Masker

    masker = Masker(project.config.secrets)
    if masker.policy.is_secret_file(path):
        from lastgood.errors import ForbiddenError

        raise ForbiddenError(
            f"{path} of {version.label} is a secret file ([secrets] paths in lastgood.toml): "
            "its bytes never leave the store through the server",
            hint=f"read it where the store is: 'lastgood show {version.label} {path} --reveal'",
        )
    shown = masker.content(path, files[path])
    return shown, masker.masked > 0


class Side(Record):
    """One side of a diff. ``secrets`` is the policy that masks it (None: the defaults), so a
    diff is masked even where a side was made without a project at hand."""

    label: str
    files: dict[str, bytes]
    secrets: SecretPolicy | None = None


def side_of(project: Project, version: VersionInfo) -> Side:
    """A recorded version as one side of a diff, masked by the project's ``[secrets]``."""
    return Side(version.label, project.store.files(version.number), project.config.secrets)


def _side(project: Project, ref: str | None) -> Side:
    if ref is None or ref == WORKSPACE:
        return Side(WORKSPACE, dict(read_workspace(project).files), project.config.secrets)
    return side_of(project, resolve(project, ref))


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


def unified(before: Side, after: Side, *, reveal: bool = False) -> str:
    """Text diff of two sides, file by file; binary files are named, not shown. Secrets are
    masked (``reveal``: not, for counting lines or a person with the store, never to send)."""
    masker = None
    if not reveal:
        from lastgood.secrets.mask import Masker

        masker = Masker(before.secrets or after.secrets)
    chunks: list[str] = []
    for path in sorted(set(before.files) | set(after.files)):
        old, new = before.files.get(path), after.files.get(path)
        if old == new:
            continue
        if masker is not None:
            old, new = masker.pair(path, old, new)
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
