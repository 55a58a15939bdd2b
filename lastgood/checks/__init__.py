"""Health checks and preflights. See :mod:`lastgood.checks.base` for the contract."""

from lastgood.checks.base import Check, CheckContext, CheckResult, run_check
from lastgood.checks.registry import build_check, check_class, register

__all__ = [
    "Check",
    "CheckContext",
    "CheckResult",
    "build_check",
    "check_class",
    "register",
    "run_check",
]
