"""Target types by name. Built-ins register here the same way a plugin does.

A third-party package adds a target type with an entry point in the ``lastgood.targets`` group::

    [project.entry-points."lastgood.targets"]
    crm = "our_crm.lastgood:CrmTarget"

The lookup itself is :class:`lastgood.registry.Registry`, the one loader every plugin family uses.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, Protocol

from lastgood.registry import Registry
from lastgood.targets.base import Target

BUILTIN = {
    "command": "lastgood.targets.command:CommandTarget",
    "directory": "lastgood.targets.directory:DirectoryTarget",
    "files": "lastgood.targets.files:FilesTarget",
    "http": "lastgood.targets.http:HttpTarget",
    "served": "lastgood.targets.served:ServedTarget",
}
TARGETS: Registry[Target] = Registry("target", Target, "lastgood.targets", BUILTIN)


def register(name: str, cls: type[Target]) -> None:
    """Make ``cls`` available as ``target = { type = name }``."""
    TARGETS.register(name, cls)


def target_class(name: str) -> type[Target]:
    """The class for a target type name: registered, built-in, or from an entry point."""
    return TARGETS.lookup(name)


class Spec(Protocol):
    """What building a target needs of ``[env.NAME] target = {…}`` (lastgood.config's
    ``TargetSpec``; named by its shape, so the targets need nothing from the config reader,
    which calls on them to check their options)."""

    @property
    def type(self) -> str: ...

    @property
    def options(self) -> Mapping[str, Any]: ...


def open_target(env: str, spec: Spec, root: Path) -> Target:
    """Build the target of environment ``env``."""
    return target_class(spec.type)(env, spec.options, root)
