"""``blame PATH [REF]``: for each line of a file, the version (and commit) that last changed it.

As ``git blame`` does, over lastgood's versions: walk the versions up to REF that changed the
file (found from the trees, see :mod:`lastgood.operations.file_history`, so only the file's own
versions are read), and carry each line's origin through a line diff (difflib) from one to the
next; a line that is new or changed takes the version that made it so. A version that removed
the file starts it afresh when it comes back. Drill variants are rehearsals, never the history
of the folder, unless REF names one.

What a person reads is masked as ``show`` masks it (``[secrets]``): the lines are compared on
their real bytes (a rotated key is a changed line, blamed on the version that rotated it), and
printed masked; a secret file is one line, ``(secret file: N bytes)``. Reads only.
"""

from __future__ import annotations

import difflib

from lastgood.errors import NotFoundError, UsageError
from lastgood.operations.file_history import DRILL, Entry, clean_path
from lastgood.project import Project
from lastgood.record import Record, as_dict, field
from lastgood.rows import VersionInfo


class BlameLine(Record):
    """One line of the file, as shown, and the version that last changed it."""

    number: int
    version: VersionInfo
    text: str

    def to_json(self) -> dict[str, object]:
        v = self.version
        return {"line": self.number, "version": v.number, "commit": v.git_commit,
                "author": v.author, "when": v.created_at, "text": self.text}  # fmt: skip


class Blame(Record):
    """The lines of ``path`` in ``version``, each with its origin."""

    path: str
    version: VersionInfo
    lines: list[BlameLine] = field(default_factory=list)

    def to_json(self) -> dict[str, object]:
        return {
            "path": self.path,
            "version": as_dict(self.version),
            "lines": [line.to_json() for line in self.lines],
        }


def blame(project: Project, path: str, ref: str | None = None) -> Blame:
    """Who last changed each line of ``path`` as version ``ref`` holds it (default: live on
    the default environment, else the newest version). Reads only."""
    path = clean_path(path)
    target = _target(project, ref)
    history = [
        (version, entry)
        for version, entry in project.store.path_history(path)
        if version.number <= target.number
        and (version.source != DRILL or version.number == target.number)
    ]
    entry = history[-1][1] if history and history[-1][0].number == target.number else None
    blob = _file_entry(path, target, entry)
    lines: list[str] = []
    origins: list[VersionInfo] = []
    current: Entry = None
    changed_by = target
    for version, held in history:
        if held == current:
            continue
        current, changed_by = held, version
        new = (None if held is None else _text_lines(project, path, version, held[1])) or []
        origins, lines = _carried(lines, origins, new, version), new
    return Blame(path, target, _shown(project, path, (target, blob), origins, changed_by))


def _target(project: Project, ref: str | None) -> VersionInfo:
    from lastgood.operations.resolve import resolve
    from lastgood.operations.versions import default_old

    if ref is None:
        ref = default_old(project)[0]
        if ref is None:
            raise NotFoundError("no version is recorded yet", hint="lastgood snapshot -m MESSAGE")
    return resolve(project, ref)


def _file_entry(path: str, target: VersionInfo, entry: Entry) -> str:
    """The blob of ``path`` in ``target``; NotFoundError or UsageError when it is no file."""
    if entry is None:
        raise NotFoundError(
            f"{target.label} has no file {path!r}",
            hint=f"'lastgood log {path}' lists the versions that added or removed it; "
            f"'lastgood show {target.label}' lists the files of {target.label}",
        )
    if entry[0] != "b":
        raise UsageError(
            f"{path} is a folder in {target.label}; blame works on one file",
            hint=f"'lastgood log {path}' lists the versions that changed the folder",
        )
    return entry[1]


def _text_lines(project: Project, path: str, version: VersionInfo, blob: str) -> list[str] | None:
    """The lines of one version of the file; None when it is not text (binary)."""
    data = project.store.file_content(blob, path=path, number=version.number)
    if b"\0" in data[:8192]:
        return None
    try:
        return data.decode("utf-8").splitlines()
    except UnicodeDecodeError:
        return None


def _carried(
    old: list[str], origins: list[VersionInfo], new: list[str], version: VersionInfo
) -> list[VersionInfo]:
    """The origin of each line of ``new``: the old line's where it is unchanged, else
    ``version``."""
    result = [version] * len(new)
    matcher = difflib.SequenceMatcher(None, old, new, autojunk=False)
    for tag, old_start, old_end, new_start, _new_end in matcher.get_opcodes():
        if tag == "equal":
            result[new_start : new_start + old_end - old_start] = origins[old_start:old_end]
    return result


def _shown(
    project: Project,
    path: str,
    file: tuple[VersionInfo, str],
    origins: list[VersionInfo],
    changed_by: VersionInfo,
) -> list[BlameLine]:
    """The lines of ``file`` (a version and the blob it holds at ``path``) as a person may
    see them: masked as ``show`` masks the file; a secret file is one line, blamed on the
    version that last changed it."""
    from lastgood.secrets.mask import Masker

    target, blob = file
    masker = Masker(project.config.secrets)
    data = project.store.file_content(blob, path=path, number=target.number)
    if masker.policy.is_secret_file(path):
        return [BlameLine(1, changed_by, masker.content(path, data).decode().rstrip("\n"))]
    if b"\0" in data[:8192] or not _decodes(data):
        raise UsageError(
            f"{path} in {target.label} is a binary file; blame works on text",
            hint=f"'lastgood log {path}' lists the versions that changed it",
        )
    masked = masker.content(path, data).decode("utf-8").splitlines()
    if len(masked) != len(origins):  # masking never joins or splits lines; if it did, hide all
        masked = ["(masked)"] * len(origins)
    return [
        BlameLine(number, origin, text)
        for number, (origin, text) in enumerate(zip(origins, masked, strict=True), start=1)
    ]


def _decodes(data: bytes) -> bool:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True
