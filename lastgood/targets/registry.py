"""Target types by name. Built-ins register here the same way a plugin does.

A third-party package adds a target type with an entry point in the ``lastgood.targets`` group::

    [project.entry-points."lastgood.targets"]
    crm = "our_crm.lastgood:CrmTarget"
"""

from __future__ import annotations

from importlib import import_module
from pathlib import Path

from lastgood.config import TargetSpec
from lastgood.errors import ConfigError
from lastgood.targets.base import Target

BUILTIN = {
    "directory": "lastgood.targets.directory:DirectoryTarget",
    "files": "lastgood.targets.files:FilesTarget",
    "served": "lastgood.targets.served:ServedTarget",
}
_registered: dict[str, type[Target]] = {}


def register(name: str, cls: type[Target]) -> None:
    """Make ``cls`` available as ``target = { type = name }``."""
    _registered[name] = cls


def _load(dotted: str) -> type[Target]:
    module, _, attribute = dotted.partition(":")
    cls = getattr(import_module(module), attribute)
    if not (isinstance(cls, type) and issubclass(cls, Target)):
        raise ConfigError(f"{dotted} is not a lastgood Target subclass")
    return cls


def target_class(name: str) -> type[Target]:
    """The class for a target type name: registered, built-in, or from an entry point."""
    if name in _registered:
        return _registered[name]
    if name in BUILTIN:
        return _load(BUILTIN[name])
    for entry in _entry_points(group="lastgood.targets"):
        if entry.name == name:
            return _load(entry.value)
    known = sorted({*BUILTIN, *_registered})
    raise ConfigError(
        f"unknown target type {name!r}",
        hint=f"known types: {', '.join(known)}; a plugin adds one through the "
        "'lastgood.targets' entry point group",
    )


def open_target(env: str, spec: TargetSpec, root: Path) -> Target:
    """Build the target of environment ``env``."""
    return target_class(spec.type)(env, spec.options, root)


def _entry_points(group: str) -> list:  # type: ignore[type-arg]
    """Plugins of ``group``; importlib.metadata loads only when a name is not built in."""
    from importlib.metadata import entry_points

    return list(entry_points(group=group))
