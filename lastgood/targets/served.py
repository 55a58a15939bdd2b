"""The served target: the server hands the live version to applications over HTTP.

Activating a version on a ``served`` environment makes ``lastgood serve`` serve it at
``GET /api/v1/envs/{env}/config``; applications read it through :mod:`lastgood.client`.

Why a directory underneath: the version an application gets must survive a crash exactly like a
file-based target, and a rollback must stay a pointer switch that works with the store down. So a
served environment keeps its releases in a directory target (by default
``.lastgood/served/<env>/`` in the workspace) and the server follows its ``current`` link. Any
process may deploy or roll back (the CLI, the watcher, the server itself); the server sees the
switch at once when the store is PostgreSQL (LISTEN/NOTIFY, see ``lastgood.store.switches``),
else within its poll interval, and pushes it to every waiting consumer.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, ClassVar

from lastgood.rollout import Pointer
from lastgood.targets.base import Release
from lastgood.targets.directory import DirectoryTarget
from lastgood.targets.rollout_pointer import read_pointer

SERVED_DIR = Path(".lastgood") / "served"


def default_path(env: str) -> str:
    """Where a served environment keeps its releases unless ``path`` says otherwise."""
    return str(SERVED_DIR / env)


class ServedTarget(DirectoryTarget):
    """A directory target whose live release the server publishes to SDK consumers."""

    type_name: ClassVar[str] = "served"

    def __init__(self, env: str, options: Mapping[str, Any], root: Path) -> None:
        merged = {"path": default_path(env), **options}
        super().__init__(env, merged, root)
        self.options = dict(options)

    def describe(self) -> str:
        return f"served (releases in {self.path})"

    def rollout(self) -> Pointer | None:
        """The gradual rollout in progress here (``PATH/rollout.json``), or None. Reads only."""
        return read_pointer(self.path)

    def prune(self, keep: int, protect: Iterable[Release]) -> list[Release]:
        """As a directory target, but never the release a rollout is giving to some consumers."""
        pointer = self.rollout()
        if pointer is not None:
            protect = [*protect, self.store.release(pointer.release)]
        return super().prune(keep, protect)
