"""Check types by name; plugins register through the ``lastgood.checks`` entry point group.

The lookup itself is :class:`lastgood.registry.Registry`, the one loader every plugin family uses.
"""

from __future__ import annotations

from lastgood.checks.base import Check
from lastgood.config import CheckSpec
from lastgood.registry import Registry

BUILTIN = {
    "http": "lastgood.checks.http:HttpCheck",
    "command": "lastgood.checks.command:CommandCheck",
    "sql": "lastgood.checks.sql:SqlCheck",
}
CHECKS: Registry[Check] = Registry("check", Check, "lastgood.checks", BUILTIN)


def register(name: str, cls: type[Check]) -> None:
    """Make ``cls`` available as ``type = name`` in a check or preflight table."""
    CHECKS.register(name, cls)


def check_class(name: str) -> type[Check]:
    """The class for a check type name: registered, built-in, or from an entry point."""
    return CHECKS.lookup(name)


def build_check(spec: CheckSpec) -> Check:
    """Instantiate the check described by ``spec`` (validates its options)."""
    return check_class(spec.type)(spec)
