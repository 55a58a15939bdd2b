"""Drift: the target serves content the ledger did not put there (someone edited a live file).

Detection is cheap when nothing changed: the target's stat fingerprint, taken when the release
was staged or last proven intact, answers without reading a byte. Only when it no longer matches
are the files hashed, and only when the hash differs is a diff built: the live bytes against the
version's bytes from the store, secrets masked (the diff goes out in ``drift-detected`` alerts
and stays in the ledger).
"""

from __future__ import annotations

import difflib
import os
from pathlib import Path
from typing import TYPE_CHECKING

from lastgood.errors import TargetError
from lastgood.project import Project
from lastgood.record import Record
from lastgood.targets import Release
from lastgood.targets._fs import regular_file_bytes

if TYPE_CHECKING:
    from lastgood.secrets.mask import Masker

MAX_DIFF = 16_000


class Drift(Record):
    """What differs between the live files of ``env`` and version ``version``."""

    env: str
    version: int
    expected_hash: str
    actual_hash: str | None
    modified: tuple[str, ...]
    missing: tuple[str, ...]
    extra: tuple[str, ...]
    diff: str

    @property
    def paths(self) -> tuple[str, ...]:
        return self.modified + self.missing + self.extra

    def summary(self) -> str:
        parts = [
            f"{len(names)} {what}"
            for names, what in (
                (self.modified, "edited"),
                (self.missing, "deleted"),
                (self.extra, "added"),
            )
            if names
        ]
        shown = ", ".join(self.paths[:5]) + (" …" if len(self.paths) > 5 else "")
        return f"{', '.join(parts) or 'content changed'} by hand: {shown}"


def detect(project: Project, env: str) -> Drift | None:
    """The drift of ``env``, or None when the target serves its live version byte for byte
    (or serves nothing yet). Reads only."""
    target = project.target(env)
    live = target.live()
    if live is None:
        return None
    release = Release(live.version, live.content_hash)
    if target.untouched(release):
        return None
    actual = target.actual_hash()
    if actual == live.content_hash:
        return None
    folder = target.live_path()
    if folder is None:
        raise TargetError(f"the target of {env} has no live folder to compare")
    expected = project.store.files(live.version)
    whole_folder = project.config.environment(env).target.type == "directory"
    from lastgood.secrets.mask import Masker

    masker = Masker(project.config.secrets)
    return _compare(
        env, live.version, live.content_hash, actual, folder, expected, whole_folder, masker
    )


def _compare(
    env: str,
    version: int,
    expected_hash: str,
    actual_hash: str | None,
    folder: Path,
    expected: dict[str, bytes],
    whole_folder: bool,
    masker: Masker,
) -> Drift:
    root = Path(os.path.realpath(folder))
    modified, missing, chunks = [], [], []
    for path, want in sorted(expected.items()):
        have = regular_file_bytes(root / path)
        if have is None:
            missing.append(path)
            chunks.append(_diff(path, want, b"", masker))
        elif have != want:
            modified.append(path)
            chunks.append(_diff(path, want, have, masker))
    extra = []
    if whole_folder and root.is_dir():
        for dirpath, _dirs, names in os.walk(root):
            for name in names:
                relative = Path(dirpath, name).relative_to(root).as_posix()
                if relative not in expected:
                    data = regular_file_bytes(Path(dirpath, name))
                    if data is not None:
                        extra.append(relative)
                        chunks.append(_diff(relative, b"", data, masker))
    diff = "".join(chunks)
    if len(diff) > MAX_DIFF:
        diff = diff[:MAX_DIFF] + f"\n… diff cut at {MAX_DIFF} characters\n"
    return Drift(
        env, version, expected_hash, actual_hash, tuple(modified), tuple(missing),
        tuple(sorted(extra)), diff,
    )  # fmt: skip


def _diff(path: str, before: bytes, after: bytes, masker: Masker) -> str:
    try:
        before.decode(), after.decode()
    except UnicodeDecodeError:
        return f"Binary file {path} changed ({len(before)} → {len(after)} bytes)\n"
    shown_before, shown_after = masker.pair(path, before, after)
    old, new = (shown_before or b"").decode(), (shown_after or b"").decode()
    lines = difflib.unified_diff(
        old.splitlines(keepends=True),
        new.splitlines(keepends=True),
        fromfile=f"ledger/{path}",
        tofile=f"live/{path}",
    )
    return "".join(line if line.endswith("\n") else line + "\n" for line in lines)
