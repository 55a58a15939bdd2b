"""What must hold before an agent touches its target: the target is usable, and no other agent
works on it or on the same host workspace.

Two agents on one target would race: each one's ``recover()`` deletes the other's temporaries
mid-stage. So an agent holds an exclusive ``flock`` on a lock file in the target's ``meta/``
folder and one in the host workspace for its whole life; the kernel releases them when it ends,
``kill -9`` included, so a crashed agent never blocks its restart. The file holds the pid of
the agent that has it, for the refusal message.

A target error that retrying cannot fix (a folder that is someone else's, a file where the
folder should be, a ``files`` folder that does not exist) is refused here, at start, with exit
2, instead of failing every placement forever.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from pathlib import Path
from typing import IO

from lastgood.errors import UsageError
from lastgood.targets._fs import ReleaseStore
from lastgood.targets.base import Target
from lastgood.targets.directory import DirectoryTarget
from lastgood.targets.files import FilesTarget

LOCK_NAME = "agent.lock"


def check_target(target: Target, where: str) -> None:
    """UsageError (exit 2) when ``target`` can never take a version; ``where`` says where its
    path was given (``--target`` or ``target.path in FILE``). Reads only."""
    if isinstance(target, DirectoryTarget):
        path = target.path
        if path.exists() and not path.is_dir():
            raise UsageError(f"{path} is a file, not a folder", hint=f"fix {where}: a folder "
                             "that is new, empty or a lastgood directory target")  # fmt: skip
        owned = target.store.releases.is_dir() or os.path.lexists(target.current)
        if path.is_dir() and not owned and any(path.iterdir()):
            raise UsageError(
                f"{path} is a non-empty folder that is not a lastgood directory target "
                "(it has no releases/ and no current)",
                hint=f"fix {where}: a new or empty folder (lastgood never writes into a folder "
                "it does not own), or move its files away",
            )
    elif isinstance(target, FilesTarget):
        if target.path.exists() and not target.path.is_dir():
            raise UsageError(f"{target.path} is a file, not a folder", hint=f"fix {where}")
        if not target.path.is_dir():
            raise UsageError(
                f"{target.path} does not exist: a files target writes into the folder the "
                "application reads, so it must be there",
                hint=f"create it (mkdir -p {target.path}), or fix {where}",
            )


def lock_folders(target: Target, state: Path) -> list[tuple[Path, str]]:
    """Where the locks go, and what each guards: the target's ``meta/`` folder and the host
    workspace."""
    folders = [(state, f"the host workspace {state}")]
    store = getattr(target, "store", None)
    if isinstance(store, ReleaseStore):
        # releases/ too: a folder with meta/ alone would look like someone else's to stage()
        try:
            store.releases.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise UsageError(
                f"cannot create {store.releases}: {exc.strerror}",
                hint="run the agent as a user who may write there",
            ) from exc
        folders.insert(0, (store.meta, target.describe()))
    return folders


class AgentLock:
    """The exclusive locks an agent holds for its life (see the module docstring)."""

    def __init__(self) -> None:
        self._held: list[IO[str]] = []

    def take(self, folders: list[tuple[Path, str]]) -> None:
        """Lock ``FOLDER/agent.lock`` each; UsageError naming what it guards and the other
        agent's pid when one is held already (everything taken so far is released)."""
        for folder, guarded in folders:
            try:
                self._take_one(folder, guarded)
            except BaseException:
                self.release()
                raise

    def _take_one(self, folder: Path, guarded: str) -> None:
        path = folder / LOCK_NAME
        try:
            folder.mkdir(parents=True, exist_ok=True)
            handle = path.open("a+")
        except OSError as exc:
            raise UsageError(
                f"cannot create the agent lock {path}: {exc.strerror}",
                hint="run the agent as a user who may write there",
            ) from exc
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            handle.seek(0)
            pid = handle.read().strip() or "unknown"
            handle.close()
            raise UsageError(
                f"another lastgood agent (pid {pid}) already works on {guarded}",
                hint="run one agent per target and host workspace: stop that one first, or "
                "pass another --target / --state",
            ) from None
        handle.seek(0)
        handle.truncate()
        handle.write(f"{os.getpid()}\n")
        handle.flush()
        self._held.append(handle)

    def release(self) -> None:
        """Close the lock files (the kernel drops the locks); safe to call twice."""
        for handle in self._held:
            with contextlib.suppress(OSError):
                handle.close()
        self._held = []
