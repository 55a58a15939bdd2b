"""Check types by name; plugins register through the ``lastgood.checks`` entry point group."""

from __future__ import annotations

from importlib import import_module

from lastgood.checks.base import Check
from lastgood.config import CheckSpec
from lastgood.errors import ConfigError

BUILTIN = {
    "http": "lastgood.checks.http:HttpCheck",
    "command": "lastgood.checks.command:CommandCheck",
    "sql": "lastgood.checks.sql:SqlCheck",
}
_registered: dict[str, type[Check]] = {}


def register(name: str, cls: type[Check]) -> None:
    """Make ``cls`` available as ``type = name`` in a check or preflight table."""
    _registered[name] = cls


def check_class(name: str) -> type[Check]:
    """The class for a check type name: registered, built-in, or from an entry point."""
    if name in _registered:
        return _registered[name]
    dotted = BUILTIN.get(name)
    if dotted is None:
        dotted = next(
            (e.value for e in _entry_points(group="lastgood.checks") if e.name == name), None
        )
    if dotted is None:
        known = ", ".join(sorted({*BUILTIN, *_registered}))
        raise ConfigError(f"unknown check type {name!r}", hint=f"known types: {known}")
    module, _, attribute = dotted.partition(":")
    cls = getattr(import_module(module), attribute)
    if not (isinstance(cls, type) and issubclass(cls, Check)):
        raise ConfigError(f"{dotted} is not a lastgood Check subclass")
    return cls


def build_check(spec: CheckSpec) -> Check:
    """Instantiate the check described by ``spec`` (validates its options)."""
    return check_class(spec.type)(spec)


def _entry_points(group: str) -> list:  # type: ignore[type-arg]
    """Plugins of ``group``; importlib.metadata loads only when a name is not built in."""
    from importlib.metadata import entry_points

    return list(entry_points(group=group))
