"""The rollout pointer's files on a served target: read, write and remove them atomically.

A gradual rollout (see :mod:`lastgood.rollout` for what the pointer says and who is in which
cohort) lives on disk beside the served target's ``current``: ``PATH/rollout.json`` names the
new release and the share of consumers that get it, ``PATH/rollout-promote.json`` asks the
running deploy to move on, and ``PATH/rollout.lock`` keeps an abort from racing a step. This
module owns those files, so the target layer holds everything that touches the target's folder
and :mod:`lastgood.rollout` stays pure logic that every layer may import. Writes go through
``_fs.write_json``: a temporary file, fsync, rename, fsync of the folder.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Iterator
from pathlib import Path

from lastgood.errors import TargetError
from lastgood.rollout import POINTER, Pointer, parse_pointer
from lastgood.targets import _fs

PROMOTE = "rollout-promote.json"
LOCK = "rollout.lock"


def read_pointer(folder: Path) -> Pointer | None:
    """The rollout in progress on the served target in ``folder``, or None. Reads only;
    TargetError for a pointer edited by hand into something unreadable."""
    path = folder / POINTER
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise TargetError(f"cannot read {path}: {exc.strerror}") from exc
    return parse_pointer(raw, path)


@contextlib.contextmanager
def pointer_lock(folder: Path) -> Iterator[None]:
    """Hold the pointer still: the deploy checks that its rollout was not aborted and moves the
    pointer (next step, or ``current`` switched) under this lock, and an abort removes it under
    the same lock, so an abort can never be undone by a step that was about to begin. An
    ``flock`` on ``PATH/rollout.lock``: the deploy, the server and the CLI share the machine
    that holds a served target."""
    import fcntl

    with open(folder / LOCK, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def write_pointer(folder: Path, pointer: Pointer) -> None:
    """Start or move the rollout (atomic: consumers see the old step or the new, never half)."""
    _fs.write_json(folder / POINTER, pointer.to_json())


def remove_pointer(folder: Path) -> bool:
    """End the rollout: one unlink puts every consumer back on ``current``. True if there was one.
    The promote flag goes with it. Durable once it returns (the folder is fsynced)."""
    try:
        os.unlink(folder / POINTER)
    except FileNotFoundError:
        return False
    with_flag = folder / PROMOTE
    with_flag.unlink(missing_ok=True)
    _fs.fsync_dir(folder)
    return True


def request_promote(folder: Path, step: int, by: str) -> None:
    """Ask the running deploy to end step ``step`` now (it reads the flag between rounds)."""
    _fs.write_json(folder / PROMOTE, {"step": step, "by": by, "at": time.time()})


def promote_requested(folder: Path, step: int) -> str | None:
    """Who asked to promote past ``step``, or None. Reads only; a torn flag counts as none."""
    try:
        data = _fs.read_json(folder / PROMOTE)
    except TargetError:
        return None
    if isinstance(data, dict) and data.get("step") == step:
        return str(data.get("by") or "someone")
    return None


__all__ = [
    "LOCK",
    "PROMOTE",
    "pointer_lock",
    "promote_requested",
    "read_pointer",
    "remove_pointer",
    "request_promote",
    "write_pointer",
]
