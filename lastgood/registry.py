"""One plugin loader for every plugin family (targets, checks): a type name to its class, found
the same way for the built-ins as for a team's own plugin.

A name is looked up in this order: classes registered in Python (``register``: handy in tests
and when embedding lastgood), then the built-ins, then the installed packages' entry points in
the family's group (``lastgood.targets``, ``lastgood.checks``), so an entry point cannot replace
a built-in name. A built-in is named by ``module:Class`` exactly as an entry point is, and is
imported only when it is used; :mod:`importlib.metadata` is read only for a name that is not
built in. The class must subclass the family's base class, otherwise it is a ConfigError.
"""

from __future__ import annotations

from collections.abc import Mapping
from importlib import import_module
from typing import Any, Generic, TypeVar, cast

from lastgood.errors import ConfigError

Plugin = TypeVar("Plugin")


class Registry(Generic[Plugin]):
    """The classes of one family, by type name, as
    ``Registry("target", Target, "lastgood.targets", BUILTIN)`` makes them for targets."""

    def __init__(self, family: str, base: type, group: str, builtin: Mapping[str, str]) -> None:
        # ``base`` is a plain ``type``: the families' base classes are abstract, and a type
        # checker refuses an abstract class where ``type[Plugin]`` is asked for
        self.family = family
        self.base = base
        self.group = group
        self.builtin = builtin
        self.registered: dict[str, type[Plugin]] = {}

    def register(self, name: str, cls: type[Plugin]) -> None:
        """Make ``cls`` available as ``type = name``, ahead of the built-ins and plugins."""
        self.registered[name] = cls

    def lookup(self, name: str) -> type[Plugin]:
        """The class for type ``name``: registered, built-in, or from an entry point.
        ConfigError listing the known types when there is none."""
        if name in self.registered:
            return self.registered[name]
        dotted = self.builtin.get(name)
        if dotted is None:
            dotted = next((e.value for e in _entry_points(self.group) if e.name == name), None)
        if dotted is None:
            known = ", ".join(sorted({*self.builtin, *self.registered}))
            raise ConfigError(
                f"unknown {self.family} type {name!r}",
                hint=f"known types: {known}; a plugin adds one through the '{self.group}' "
                "entry point group",
            )
        return self._load(dotted)

    def _load(self, dotted: str) -> type[Plugin]:
        module, _, attribute = dotted.partition(":")
        cls = getattr(import_module(module), attribute)
        if not (isinstance(cls, type) and issubclass(cls, self.base)):
            raise ConfigError(f"{dotted} is not a lastgood {self.base.__name__} subclass")
        return cast("type[Plugin]", cls)  # issubclass proved it; base is a plain type: see init


def _entry_points(group: str) -> list[Any]:
    """Plugins of ``group``; importlib.metadata loads only when a name is not built in."""
    from importlib.metadata import entry_points

    return list(entry_points(group=group))
