"""Collect the versioned files of a workspace, refusing raw data and anything that escapes it.

The rule from the field: version the logic, never the data. A file that looks like data (by its
extension), is larger than ``max_file_size``, or leads outside the folder stops the snapshot with
an error that names the file and says how to allow or exclude it. Reads only.
"""

from __future__ import annotations

import os
from pathlib import Path

from lastgood.bundle import Bundle
from lastgood.config import CONFIG_NAME, Versioning
from lastgood.errors import RawDataError
from lastgood.globs import matches

ALWAYS_EXCLUDED = (
    ".git",
    ".lastgood",
    ".hg",
    ".svn",
    "__pycache__",
    ".DS_Store",
    "lastgood.toml",
    ".gitignore",
)
DATA_EXTENSIONS = frozenset(
    {
        ".csv",
        ".tsv",
        ".parquet",
        ".feather",
        ".arrow",
        ".avro",
        ".orc",
        ".xlsx",
        ".xls",
        ".xlsm",
        ".ods",
        ".jsonl",
        ".ndjson",
        ".sqlite",
        ".sqlite3",
        ".db",
        ".duckdb",
        ".mdb",
        ".accdb",
        ".zip",
        ".tar",
        ".gz",
        ".tgz",
        ".bz2",
        ".xz",
        ".7z",
        ".rar",
        ".zst",
        ".pkl",
        ".pickle",
        ".npy",
        ".npz",
        ".h5",
        ".hdf5",
        ".dump",
        ".bak",
    }
)


def collect(root: Path, versioning: Versioning) -> Bundle:
    """Read every versioned file under ``root`` into a :class:`Bundle`.

    Every file that cannot be versioned (raw data, too large, a name that is not UTF-8, a link
    out of the workspace) is found before anything is refused, so one error lists them all."""
    files: dict[str, bytes] = {}
    refused: list[RawDataError] = []
    for path in _walk(root, versioning):
        relative = path.relative_to(root).as_posix()
        try:
            _refuse_undecodable(relative)
            _refuse_escape(root, path, relative)
            refuse_data(relative, path.stat().st_size, versioning)
        except RawDataError as exc:
            refused.append(exc)
            continue
        files[relative] = path.read_bytes()
    if refused:
        raise all_refused(refused)
    return Bundle(files)


def all_refused(refused: list[RawDataError]) -> RawDataError:
    if len(refused) == 1:
        return refused[0]
    lines = "\n".join(f"  - {exc.message}" for exc in refused)
    return RawDataError(
        f"{len(refused)} files cannot be versioned; nothing was recorded:\n{lines}",
        hint=f"exclude them under [versioning] exclude (or, for configuration that looks like "
        f"data, list them in allow) in {CONFIG_NAME}; the first one: {refused[0].hint}",
    )


def _refuse_undecodable(relative: str) -> None:
    """A file name that is not valid UTF-8 (read with surrogate escapes) cannot be stored."""
    try:
        relative.encode("utf-8")
    except UnicodeEncodeError:
        shown = relative.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
        raise RawDataError(
            f"{shown!r} has a file name that is not valid UTF-8; lastgood stores names as UTF-8",
            hint="rename the file (e.g. with 'convmv -f latin1 -t utf-8 --notest'), or exclude "
            f"it under [versioning] exclude in {CONFIG_NAME}",
        ) from None


def _walk(root: Path, versioning: Versioning) -> list[Path]:
    found: list[Path] = []
    for folder, dirs, names in os.walk(root, followlinks=False):
        here = Path(folder)
        relative_dir = here.relative_to(root).as_posix()
        dirs[:] = sorted(
            d
            for d in dirs
            if d not in ALWAYS_EXCLUDED
            and not matches(_join(relative_dir, d) + "/", versioning.exclude)
            and not matches(_join(relative_dir, d), versioning.exclude)
            and not _escapes_dir(root, here / d, _join(relative_dir, d))
        )
        for name in sorted(names):
            relative = _join(relative_dir, name)
            if name in ALWAYS_EXCLUDED or matches(relative, versioning.exclude):
                continue
            found.append(here / name)
    return found


def excluded(relative: str, versioning: Versioning) -> bool:
    """Whether the file at ``relative`` (from a listing such as a git tree, not the walk) is
    left out of versions exactly as the walk leaves it out: a part of its path is always
    excluded, or it or a folder above it matches ``[versioning] exclude``."""
    parts = relative.split("/")
    if any(part in ALWAYS_EXCLUDED for part in parts):
        return True
    for depth in range(1, len(parts)):
        folder = "/".join(parts[:depth])
        if matches(folder + "/", versioning.exclude) or matches(folder, versioning.exclude):
            return True
    return matches(relative, versioning.exclude)


def _join(folder: str, name: str) -> str:
    return name if folder == "." else f"{folder}/{name}"


def _escapes_dir(root: Path, path: Path, relative: str) -> bool:
    """Directory symlinks are never followed; one leading outside is refused outright."""
    if path.is_symlink():
        _refuse_escape(root, path, relative)
        return True  # a link inside the workspace: its target is versioned where it lives
    return False


def _refuse_escape(root: Path, path: Path, relative: str) -> None:
    if not path.is_symlink():
        return
    resolved = path.resolve()
    if not resolved.is_relative_to(root.resolve()):
        raise RawDataError(
            f"{relative} is a symlink to {resolved}, outside the workspace {root}",
            hint=f'copy the file into the workspace, or add "{relative}" to '
            f"[versioning] exclude in {CONFIG_NAME}",
        )


def refuse_data(relative: str, size: int, versioning: Versioning) -> None:
    """RawDataError when the file at ``relative`` (of ``size`` bytes) looks like data."""
    if matches(relative, versioning.allow):
        return
    suffix = Path(relative).suffix.lower()
    if suffix in DATA_EXTENSIONS:
        raise RawDataError(
            f"{relative} looks like raw data ({suffix} files are data, not configuration); "
            "lastgood versions logic, never data",
            hint=f'exclude it with exclude = ["{relative}"] under [versioning], or if it really '
            f'is configuration, allow = ["{relative}"] in {CONFIG_NAME}',
        )
    if size > versioning.max_file_size:
        raise RawDataError(
            f"{relative} is {size:,} bytes, more than max_file_size "
            f"({versioning.max_file_size:,} bytes)",
            hint=f"exclude it under [versioning] exclude, list it in allow, or raise "
            f"max_file_size in {CONFIG_NAME}",
        )


def check_relative_path(path: str) -> str:
    """Refuse a stored path that is absolute or climbs out with ``..`` (from API or import)."""
    pure = Path(path)
    if pure.is_absolute() or ".." in pure.parts or path.startswith("/"):
        raise RawDataError(
            f"path {path!r} escapes the workspace", hint="use a path relative to the workspace"
        )
    return pure.as_posix()
