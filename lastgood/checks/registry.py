"""Check types by name; plugins register through the ``lastgood.checks`` entry point group.

The lookup itself is :class:`lastgood.registry.Registry`, the one loader every plugin family uses.
"""

from __future__ import annotations

from lastgood.checks.base import Check
from lastgood.config import CheckSpec
from lastgood.errors import ConfigError
from lastgood.registry import Registry

BUILTIN = {
    "http": "lastgood.checks.http:HttpCheck",
    "command": "lastgood.checks.command:CommandCheck",
    "sql": "lastgood.checks.sql:SqlCheck",
    "fleet": "lastgood.checks.fleet:FleetCheck",
}
_VALUE_HINTS = {
    "http": 'add value = "scores.mean" (a dotted path to a number in its JSON answer)',
    "command": 'add value = "last-line" (the number it prints last) or a dotted path into '
    "the JSON object it prints last",
}
CHECKS: Registry[Check] = Registry("check", Check, "lastgood.checks", BUILTIN)


def register(name: str, cls: type[Check]) -> None:
    """Make ``cls`` available as ``type = name`` in a check or preflight table."""
    CHECKS.register(name, cls)


def check_class(name: str) -> type[Check]:
    """The class for a check type name: registered, built-in, or from an entry point."""
    return CHECKS.lookup(name)


def build_check(spec: CheckSpec) -> Check:
    """Instantiate the check described by ``spec`` (validates its options).

    ``max_drop`` / ``max_rise`` need a number to compare: a check that measures none is
    refused here, naming the check, before anything runs."""
    check = check_class(spec.type)(spec)
    if spec.compare is not None and not check.measures_value:
        raise ConfigError(
            f"{spec.type} check {spec.name!r}: max_drop and max_rise need a value it measures, "
            "and it measures none",
            hint=_VALUE_HINTS.get(spec.type, "give it a value to measure, or drop the limits"),
        )
    return check
